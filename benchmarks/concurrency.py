"""Does the pipeline's concurrency bound deliver what it promises?

The fake LLM answers in ``--latency-ms`` (1000 ms); ``--messages`` conversations (500)
send one message each, all at once (closed loop, ``--connections`` senders), through the
same real stack as ``webhook.py``. For each ``NICOBOT_PIPELINE__CONCURRENCY`` in
``--bounds`` (8, 32, 128) a fresh ``nicobot serve`` answers them all; the answered
messages per second (first webhook to last reply) are compared with the ideal,
bound / latency. ``--workers`` runs that many server processes (each with the bound);
``--embedder`` is the knowledge base's (``hashing`` by default, as in ``peers.py``: the
ideal assumes the LLM is the only wait; ``e5`` embeds each question, about 40 ms of CPU).

    .venv/bin/python benchmarks/concurrency.py [--quick] [--bounds 8,32,128] [--workers 2]
"""

from __future__ import annotations

import argparse
from typing import Any

import _harness as h


def run_bound(bound: int, args: argparse.Namespace) -> dict[str, Any]:
    with h.Processes() as procs:
        stack = h.start_stack(
            procs,
            latency=args.latency_ms / 1000,
            concurrency=bound,
            extra_env={
                "NICOBOT_SERVER__WORKERS": str(args.workers),
                "NICOBOT_KNOWLEDGE__EMBEDDER": args.embedder,
            },
        )
        h.warm_up(stack)
        result = h.measure_load(
            stack,
            count=args.messages,
            conversations=args.messages,
            connections=args.connections,
            drain_idle=max(20.0, 3 * args.latency_ms / 1000),
        )
    ideal = bound * args.workers / (args.latency_ms / 1000)
    return {
        "bound": bound,
        "ideal_per_s": ideal,
        "ratio": result["answered_per_s"] / ideal,
        **result,
    }


def report(data: dict[str, Any]) -> str:
    rows = [
        [
            r["bound"],
            r["messages"],
            r["ideal_per_s"],
            r["answered_per_s"],
            f"{r['ratio']:.2f}",
            f"{r['reply_ms']['p50']}/{r['reply_ms']['p99']}",
            r["lost_replies"],
            r["duplicated_replies"],
            f"{r['cpu_pct']['nicobot']}%",
            "{}/{}".format(
                r["nicobot_memory"].get("hwm_mb", "?"),
                r["nicobot_memory"].get("tree_hwm_mb", "?"),
            ),
        ]
        for r in data["runs"]
    ]
    headers = [
        "bound",
        "msgs",
        "ideal/s",
        "answered/s",
        "ratio",
        "reply p50/p99 ms",
        "lost",
        "dup",
        "nicobot CPU",
        "peak RSS MB server/+LLM",
    ]
    return h.table(rows, headers)


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="64 messages, bounds 8 and 32")
    parser.add_argument("--bounds", help="concurrency bounds (8,32,128)")
    parser.add_argument("--messages", type=int, help="conversations, one message each (500)")
    parser.add_argument("--latency-ms", type=float, default=1000.0, help="fake LLM latency")
    parser.add_argument("--connections", type=int, default=64, help="generator connection pool")
    parser.add_argument("--workers", type=int, default=1, help="nicobot serve --workers")
    parser.add_argument("--embedder", default="hashing", help="[knowledge] embedder")
    args = parser.parse_args()
    args.bounds = args.bounds or ("8,32" if args.quick else "8,32,128")
    args.messages = args.messages or (64 if args.quick else 500)

    data: dict[str, Any] = {
        "mode": "quick" if args.quick else "full",
        "machine": h.machine(),
        "settings": {
            "messages": args.messages,
            "latency_ms": args.latency_ms,
            "workers": args.workers,
            "embedder": args.embedder,
        },
        "runs": [run_bound(int(b), args) for b in args.bounds.split(",")],
    }
    print(report(data))
    print(f"wrote {h.write_result('concurrency', data)}")
    problems = [x for r in data["runs"] for x in h.problems(f"bound {r['bound']}", r)]
    if problems:
        raise h.BenchError("; ".join(problems))


if __name__ == "__main__":
    h.main(run)
