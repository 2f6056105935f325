"""The WhatsApp webhook path, end to end, with every part a real process on 127.0.0.1:

    load generator (this process, aiohttp)  --messages.upsert-->  nicobot serve
    nicobot serve  --chat/completions-->  fake LLM (``Echo: <text>``, fixed latency)
    nicobot serve  --sendText-->  fake Evolution gateway (records each reply's time)

For each LLM latency (default 0 and 1000 ms) one fresh stack is paired as an operator
pairs it (``POST /api/channels/whatsapp/connect``, then a QR "scan"), warmed up, and
loaded twice: open loop at ``--rate`` webhooks per second (latency counted from each
request's scheduled time), then closed loop with ``--connections`` senders as fast as
nicobot answers. Messages are spread over ``--conversations`` numbers, each text is
unique, and ``--dup`` of them are delivered twice (an identical body a few ms later, as
the gateway retries). Reported: webhook answer latency, message-to-reply latency (reply
accepted by the gateway minus the message's send time), webhooks/s and answered
messages/s, lost and duplicated replies (both must be 0), nicobot's CPU and peak RSS.

``limits.py`` runs first (``--skip-limits`` reuses its last result) so that nicobot's
throughput is also given as a fraction of what the stack can do.

    .venv/bin/python benchmarks/webhook.py [--quick] [--rate 200] [--seconds 30]
"""

from __future__ import annotations

import argparse
import json
import subprocess
from typing import Any

import _harness as h

SETTINGS = (
    "rate",
    "seconds",
    "closed_messages",
    "conversations",
    "concurrency",
    "connections",
    "dup",
    "echo_sent",
)


def run_latency(latency_ms: float, args: argparse.Namespace) -> dict[str, Any]:
    with h.Processes() as procs:
        stack = h.start_stack(
            procs, latency=latency_ms / 1000, concurrency=args.concurrency, echo_sent=args.echo_sent
        )
        idle = h.proc_stats(stack.pid)
        h.warm_up(stack)
        phases = []
        for mode, count, rate in (
            ("open", round(args.rate * args.seconds / (1 + args.dup)), args.rate),
            ("closed", args.closed_messages, None),
        ):
            result = h.measure_load(
                stack,
                count=count,
                conversations=args.conversations,
                dup=args.dup,
                rate=rate,
                connections=args.connections,
                drain_idle=args.drain_idle,
                cap=args.cap,
            )
            phases.append({"mode": mode, "llm_latency_ms": latency_ms, **result})
        log_lines = len(stack.server.log().splitlines())
    return {
        "llm_latency_ms": latency_ms,
        "idle_memory": idle,
        "log_lines": log_lines,
        "phases": phases,
    }


def report(data: dict[str, Any]) -> str:
    rows = []
    for run in data["runs"]:
        for p in run["phases"]:
            rows.append(
                [
                    p["mode"],
                    int(p["llm_latency_ms"]),
                    p["messages"],
                    p["offered_per_s"] or "max",
                    p["webhooks_per_s"],
                    f"{p['webhook_ms']['p50']}/{p['webhook_ms']['p99']}",
                    f"{p['reply_ms']['p50']}/{p['reply_ms']['p99']}",
                    p["answered_per_s"],
                    p["backlog_at_last_send"],
                    p["lost_replies"],
                    p["duplicated_replies"],
                    f"{p['cpu_pct']['nicobot']}%",
                    "{}/{}".format(
                        p["nicobot_memory"].get("hwm_mb", "?"),
                        p["nicobot_memory"].get("tree_hwm_mb", "?"),
                    ),
                ]
            )
    headers = [
        "mode",
        "LLM ms",
        "msgs",
        "offered/s",
        "webhooks/s",
        "webhook p50/p99 ms",
        "reply p50/p99 ms",
        "answered/s",
        "backlog",
        "lost",
        "dup",
        "nicobot CPU",
        "peak RSS MB server/+LLM",
    ]
    stages = [
        [
            p["mode"],
            int(p["llm_latency_ms"]),
            "{p50}/{p99}".format(**p["stages"]["received_to_stored_ms"]),
            "{p50}/{p99}".format(**p["stages"]["stored_to_sent_ms"]),
        ]
        for run in data["runs"]
        for p in run["phases"]
    ]
    lines = [h.table(rows, headers), "", "where the reply time goes (nicobot's database):"]
    lines += [
        h.table(
            stages,
            ["mode", "LLM ms", "inbox to reply stored p50/p99 ms", "stored to sent p50/p99 ms"],
        ),
        "",
    ]
    lines += [f"{name}: {value:.0%}" for name, value in data.get("fractions", {}).items()]
    ordered = sum(p["out_of_order_replies"] for run in data["runs"] for p in run["phases"])
    lines.append(f"replies out of order within a conversation: {ordered}")
    return "\n".join(lines)


def fractions(runs: list[dict[str, Any]], limits: dict[str, Any]) -> dict[str, float]:
    fastest = min(runs, key=lambda run: run["llm_latency_ms"])
    closed = next(p for p in fastest["phases"] if p["mode"] == "closed")
    quart = limits["quart_trivial"]["req_per_s"]
    inserts = limits["sqlite_transaction_insert"]["rows_per_s"]
    llm = limits["litellm_acompletion"]["calls_per_s"]
    return {
        "closed-loop webhooks/s vs trivial Quart route": closed["webhooks_per_s"] / quart,
        "closed-loop webhooks/s vs SQLite transactions/s": closed["webhooks_per_s"] / inserts,
        "closed-loop answered msg/s vs trivial Quart route": closed["answered_per_s"] / quart,
        "closed-loop answered msg/s vs litellm calls/s": closed["answered_per_s"] / llm,
    }


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small N, a few seconds a phase")
    parser.add_argument("--rate", type=float, help="open loop: webhooks per second (200)")
    parser.add_argument("--seconds", type=float, help="open loop: how long to send (30)")
    parser.add_argument("--closed-messages", type=int, help="closed loop: messages (3000)")
    parser.add_argument("--conversations", type=int, help="distinct numbers (1000)")
    parser.add_argument("--latencies", default="0,1000", help="fake LLM latencies, ms")
    parser.add_argument(
        "--concurrency", type=int, default=256, help="NICOBOT_PIPELINE__CONCURRENCY"
    )
    parser.add_argument("--connections", type=int, default=64, help="generator connection pool")
    parser.add_argument("--dup", type=float, default=0.1, help="share delivered twice")
    parser.add_argument("--drain-idle", type=float, default=20.0, help="give up after s idle")
    parser.add_argument("--cap", type=float, default=600.0, help="longest phase, s")
    parser.add_argument("--echo-sent", action="store_true", help="gateway echoes replies back")
    parser.add_argument("--skip-limits", action="store_true", help="reuse results/limits.json")
    args = parser.parse_args()
    defaults = (50, 3, 150, 100) if args.quick else (200, 30, 3000, 1000)
    for name, value in zip(
        ("rate", "seconds", "closed_messages", "conversations"), defaults, strict=True
    ):
        if getattr(args, name) is None:
            setattr(args, name, value)

    if not args.skip_limits:
        command = [h.PYTHON, str(h.HERE / "limits.py"), *(["--quick"] if args.quick else [])]
        if subprocess.run(command, timeout=900).returncode != 0:
            raise h.BenchError("limits.py failed")
    limits_path = h.RESULTS / "limits.json"
    limits = json.loads(limits_path.read_text()) if limits_path.exists() else None

    data: dict[str, Any] = {
        "mode": "quick" if args.quick else "full",
        "machine": h.machine(),
        "settings": {k: getattr(args, k) for k in SETTINGS},
        "runs": [run_latency(float(ms), args) for ms in args.latencies.split(",")],
    }
    if limits:
        data["limits"] = {k: v for k, v in limits.items() if k != "machine"}
        data["fractions"] = fractions(data["runs"], limits)
    print(report(data))
    print(f"wrote {h.write_result('webhook', data)}")
    problems = [
        problem
        for run in data["runs"]
        for p in run["phases"]
        for problem in h.problems(f"{p['mode']} loop at {p['llm_latency_ms']:.0f} ms", p)
    ]
    if problems:
        raise h.BenchError("; ".join(problems))


if __name__ == "__main__":
    h.main(run)
