"""What claiming a turn costs as the backlog grows: ``backlog`` pending messages (one per
conversation, the worst case for the claim query), then claims of ``limit`` turns each,
completed at once, timed per claim. SQLite on a temporary file; ``--postgres`` adds a
throw-away PostgreSQL cluster (the nicobot-postgres plugin's test server).

    .venv/bin/python benchmarks/claim_scale.py [--backlogs 100,2000,10000] [--postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import _harness as h

from nicobot import IncomingMessage
from nicobot.store.sqlite import SQLiteStore

CLAIMS = 200


async def measure(store: Any, backlog: int, limit: int) -> dict[str, float]:
    await store.open()
    try:
        for start in range(0, backlog, 500):
            await asyncio.gather(
                *(
                    store.enqueue(
                        IncomingMessage(
                            channel="whatsapp",
                            address=f"54911{n:08d}",
                            text="hola",
                            message_id=f"m{n}",
                        ),
                        debounce=0,
                        max_wait=0,
                    )
                    for n in range(start, min(backlog, start + 500))
                )
            )
        times = []
        for _ in range(CLAIMS):
            started = time.perf_counter()
            turns = await store.claim_turns("bench-worker", limit, 60)
            times.append((time.perf_counter() - started) * 1000)
            for turn in turns:
                await store.complete_turn(turn, None, {}, [])
        return {"claim_ms_p50": statistics.median(times), "claim_ms_p95": h.percentile(times, 95)}
    finally:
        await store.close()


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backlogs", default="100,2000,10000")
    parser.add_argument("--limit", type=int, default=1, help="turns per claim")
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    backlogs = [int(b) for b in args.backlogs.split(",")]
    rows = []
    postgres = None
    if args.postgres:
        from nicobot_postgres.testing import PostgresServer

        postgres = PostgresServer().start()
    try:
        for backlog in backlogs:
            with tempfile.TemporaryDirectory() as tmp:
                result = h.run_async(
                    measure(SQLiteStore(Path(tmp) / "bench.sqlite3"), backlog, args.limit)
                )
            rows.append({"store": "sqlite", "backlog": backlog, **result})
            if postgres is not None:
                from nicobot_postgres.store import PostgresStore

                url = postgres.create_database()
                result = h.run_async(measure(PostgresStore(url), backlog, args.limit))
                rows.append({"store": "postgres", "backlog": backlog, **result})
    finally:
        if postgres is not None:
            postgres.stop()
    print(
        h.table(
            [
                [r["store"], r["backlog"], round(r["claim_ms_p50"], 2), round(r["claim_ms_p95"], 2)]
                for r in rows
            ],
            ["store", "pending", "claim ms p50", "claim ms p95"],
        )
    )
    h.write_result("claim_scale", {"settings": vars(args), "rows": rows})


if __name__ == "__main__":
    h.main(run)
