"""What the stack under nicobot can do at most, on this machine, right now:

- the load generator's ceiling: the aiohttp generator of ``_harness`` against a bare ASGI
  endpoint on uvicorn (one worker, nicobot's options), closed loop;
- the framework's floor: the same load against a one-route Quart app on uvicorn, served
  exactly as ``nicobot serve`` serves nicobot;
- SQLite: aiosqlite single-row inserts per second on one connection (WAL,
  synchronous=NORMAL), each committed: as a bare autocommit INSERT, and as
  BEGIN IMMEDIATE + INSERT + COMMIT (the store's transaction pattern);
- the two libraries every answer goes through: ``litellm.acompletion`` calls per second
  against the fake LLM process at 0 ms (32 in flight, nicobot's arguments and model
  name, litellm's INFO logging off), and nicobot's Chroma knowledge base queries per
  second on the ``nicobot init`` sample document (one at a time: nicobot serialises them).

Every request carries a webhook-sized body (the recorded Evolution v2 fixture).
``webhook.py`` runs this first and states nicobot's throughput as a fraction of it.

    .venv/bin/python benchmarks/limits.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import _harness as h


def load_request(url: str) -> h.Request:
    template = json.loads(h.FIXTURE.read_text(encoding="utf-8"))["body"]
    hook = h.Hook(url, {"content-type": "application/json"}, "bench", "token", template)
    return h.Request(url, hook.body("Hola", "5491100000001", "ABC"), hook.headers)


def http_ceiling(kind: str, requests: int, connections: int) -> dict[str, Any]:
    with h.Processes() as procs:
        port = h.free_port()
        server = procs.spawn(
            [h.PYTHON, str(h.HERE / "_trivial.py"), "--kind", kind, "--port", str(port)]
        )
        url = f"http://127.0.0.1:{port}/hook"
        h.wait_http(url, process=server)
        request = load_request(url)
        h.run_async(h.send_all([request] * 200, connections=connections))  # warm up
        server_cpu = h.proc_stats(server.pid).get("cpu_s", 0.0)
        cpu = time.process_time()
        sent, wall = h.run_async(
            h.send_all([request] * requests, connections=connections, limit_seconds=120)
        )
        gen_cpu = time.process_time() - cpu
        server_cpu = h.proc_stats(server.pid).get("cpu_s", 0.0) - server_cpu
    ok = [s for s in sent if s.status == 200]
    if len(ok) != requests:
        raise h.BenchError(f"{kind}: {requests - len(ok)} of {requests} requests failed")
    return {
        "requests": requests,
        "connections": connections,
        "req_per_s": round(len(ok) / wall, 1),
        "latency_ms": h.ms([s.latency for s in ok]),
        "generator_cpu_pct": round(100 * gen_cpu / wall),
        "server_cpu_pct": round(100 * server_cpu / wall),
    }


async def sqlite_inserts(seconds: float, transaction: bool) -> dict[str, Any]:
    import aiosqlite

    with tempfile.TemporaryDirectory(prefix="nicobot-bench-sqlite-") as tmp:
        db = await aiosqlite.connect(Path(tmp) / "bench.sqlite3", isolation_level=None)
        try:
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA synchronous = NORMAL")
            await db.execute(
                "CREATE TABLE inbox (id INTEGER PRIMARY KEY, platform_id TEXT UNIQUE, "
                "payload TEXT NOT NULL, received_at REAL NOT NULL)"
            )
            payload = "x" * 400
            count, started = 0, time.perf_counter()
            while time.perf_counter() - started < seconds and count < 10_000_000:
                if transaction:
                    await db.execute("BEGIN IMMEDIATE")
                await db.execute(
                    "INSERT INTO inbox (platform_id, payload, received_at) VALUES (?, ?, ?)",
                    (f"m{count}", payload, time.time()),
                )
                if transaction:
                    await db.execute("COMMIT")
                count += 1
            elapsed = time.perf_counter() - started
        finally:
            await db.close()
    return {"rows": count, "rows_per_s": round(count / elapsed, 1)}


async def litellm_calls(llm_url: str, calls: int, in_flight: int) -> dict[str, Any]:
    os.environ.setdefault("LITELLM_LOG", "ERROR")
    started = time.perf_counter()
    litellm = importlib.import_module("litellm")
    import_seconds = time.perf_counter() - started
    messages = [
        {"role": "system", "content": "You are Nico, the friendly assistant for Test Shop."},
        {"role": "user", "content": "Hola, a que hora abren?"},
    ]

    async def call() -> None:
        response = await litellm.acompletion(
            model=h.MODEL,
            messages=messages,
            api_base=llm_url + "/v1",
            api_key="fake-key",
            timeout=25,
            temperature=0.3,
            max_tokens=600,
            max_retries=1,
        )
        assert response.choices[0].message.content.startswith("Echo: ")

    await call()  # the first call loads the provider's modules
    queue = iter(range(calls))

    async def worker() -> None:
        for _ in queue:
            await call()

    cpu, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "calls": calls,
        "in_flight": in_flight,
        "calls_per_s": round(calls / wall, 1),
        "cpu_ms_per_call": round(1000 * cpu / calls, 2),
        "import_seconds": round(import_seconds, 2),
    }


async def chroma_queries(queries: int) -> dict[str, Any]:
    from nicobot.config import load_settings
    from nicobot.rag.chroma_store import ChromaKnowledgeBase

    with tempfile.TemporaryDirectory(prefix="nicobot-bench-chroma-") as tmp:
        kb = ChromaKnowledgeBase.from_settings(load_settings(h.make_project(Path(tmp) / "p")))
        await kb.open()
        try:
            await kb.query("warm up", 4)
            cpu, started = time.process_time(), time.perf_counter()
            for i in range(queries):
                await kb.query(f"bench c{i} m{i}: when do you open on saturday?", 4)
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        finally:
            await kb.close()
    return {
        "queries": queries,
        "queries_per_s": round(queries / wall, 1),
        "cpu_ms_per_query": round(1000 * cpu / queries, 2),
    }


def measure(quick: bool) -> dict[str, Any]:
    requests, seconds, calls = (2000, 1.0, 300) if quick else (20000, 5.0, 3000)
    result = {
        "generator_vs_bare_asgi": http_ceiling("asgi", requests, 64),
        "quart_trivial": http_ceiling("quart", requests, 64),
        "sqlite_autocommit_insert": asyncio.run(sqlite_inserts(seconds, transaction=False)),
        "sqlite_transaction_insert": asyncio.run(sqlite_inserts(seconds, transaction=True)),
        "chroma_query": asyncio.run(chroma_queries(calls)),
    }
    with h.Processes() as procs:
        llm_url = h.start_fake_llm(procs, 0.0)
        result["litellm_acompletion"] = h.run_async(litellm_calls(llm_url, calls, 32))
    return result


def report(result: dict[str, Any]) -> str:
    rows = []
    for key in ("generator_vs_bare_asgi", "quart_trivial"):
        r = result[key]
        rows.append(
            [
                key,
                r["req_per_s"],
                r["latency_ms"]["p50"],
                r["latency_ms"]["p99"],
                f"{r['generator_cpu_pct']}%",
                f"server {r['server_cpu_pct']}%",
            ]
        )
    for key in ("sqlite_autocommit_insert", "sqlite_transaction_insert"):
        rows.append([key, result[key]["rows_per_s"], "", "", "", ""])
    r = result["chroma_query"]
    rows.append(
        ["chroma_query", r["queries_per_s"], "", "", "", f"{r['cpu_ms_per_query']} ms each"]
    )
    r = result["litellm_acompletion"]
    rows.append(
        ["litellm_acompletion", r["calls_per_s"], "", "", "", f"{r['cpu_ms_per_call']} ms each"]
    )
    return h.table(rows, ["limit", "per s", "p50 ms", "p99 ms", "generator CPU", "CPU"])


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small N, a few seconds")
    args = parser.parse_args()
    data = {"mode": "quick" if args.quick else "full", "machine": h.machine()}
    data.update(measure(args.quick))
    print(report(data))
    print(f"wrote {h.write_result('limits', data)}")


if __name__ == "__main__":
    h.main(run)
