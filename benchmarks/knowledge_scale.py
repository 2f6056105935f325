"""Knowledge at scale: `nicobot knowledge ingest` speed and the query latency of a running
`nicobot serve`, at about 1,000 and 10,000 chunks (the default hashing embedder).

    .venv/bin/python benchmarks/knowledge_scale.py [--quick]

The corpus is La Formula's sample documents copied until it holds the wanted number of
chunks, each copy made distinct so that nothing is deduplicated. Ingest is timed as the
whole CLI command (a user's wait, process start included) and, from its own summary line,
without start-up; queries go through `GET /api/knowledge/query` over HTTP, one at a time.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _harness import PYTHON, ROOT, BenchError, machine, main, percentile, table, write_result

from nicobot.testing import ServerProcess, make_project

SOURCE = ROOT / "examples" / "laformula" / "knowledge"
QUESTIONS = [
    "¿A qué hora abren los sábados?",
    "hacen envios al interior?",
    "cuanto sale el envio",
    "puedo devolver un producto",
    "tienen shampoo solido",
    "donde queda el local",
    "aceptan mercado pago",
    "precio de la crema",
]


def build_corpus(target: Path, copies: int) -> None:
    for copy in range(copies):
        folder = target / f"copia-{copy:04d}"
        folder.mkdir(parents=True)
        for document in SOURCE.glob("*.md"):
            text = document.read_text(encoding="utf-8")
            (folder / document.name).write_text(f"{text}\n\nCopia {copy}.\n", encoding="utf-8")


def measure(copies: int, queries: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="nicobot-kb-") as tmp:
        project = make_project(Path(tmp) / "bot", language="es")
        knowledge = project / "knowledge"
        shutil.rmtree(knowledge)
        build_corpus(knowledge, copies)
        started = time.perf_counter()
        done = subprocess.run(
            [PYTHON, "-m", "nicobot", "knowledge", "ingest", "--project", str(project)],
            capture_output=True, text=True, timeout=3600,
        )  # fmt: skip
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise BenchError(f"ingest failed: {done.stderr.strip()[-300:]}")
        summary = done.stdout + done.stderr
        found = re.search(r"(\d[\d,]*) chunks", summary)
        if found is None:
            raise BenchError(f"no chunk count in the ingest summary: {summary[-300:]}")
        chunks = int(found.group(1).replace(",", ""))
        server = ServerProcess(project).start(timeout=120)
        try:
            with server.client(timeout=60) as client:
                latencies = []
                for n in range(queries):
                    question = QUESTIONS[n % len(QUESTIONS)]
                    started = time.perf_counter()
                    answer = client.get("/api/knowledge/query", params={"q": question})
                    latencies.append(time.perf_counter() - started)
                    if answer.status_code != 200 or not answer.json()["snippets"]:
                        raise BenchError(f"query failed: {answer.status_code} {answer.text[:200]}")
        finally:
            server.stop()
    return {
        "copies": copies,
        "chunks": chunks,
        "ingest_wall_seconds": round(wall, 2),
        "ingest_chunks_per_second": round(chunks / wall, 1),
        "query_ms_p50": round(percentile(latencies, 50) * 1000, 1),
        "query_ms_p95": round(percentile(latencies, 95) * 1000, 1),
        "queries": queries,
    }


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="about 100 chunks only")
    args = parser.parse_args()
    per_copy = 37  # chunks in one copy of the sample documents
    sizes = [3] if args.quick else [1000 // per_copy + 1, 10000 // per_copy + 1]
    results = [measure(copies, 20 if args.quick else 200) for copies in sizes]
    rows = [
        [r["chunks"], r["ingest_wall_seconds"], r["ingest_chunks_per_second"],
         r["query_ms_p50"], r["query_ms_p95"]]
        for r in results
    ]  # fmt: skip
    print(table(rows, ["chunks", "ingest s", "chunks/s", "query p50 ms", "query p95 ms"]))
    path = write_result(
        "knowledge_scale", {"machine": machine(), "quick": args.quick, "results": results}
    )
    print(f"\nwrote {path.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main(run)
