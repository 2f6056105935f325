"""Render ``benchmarks/RESULTS.md`` from the JSON files in ``benchmarks/results/``, with
each script's own table code, so that the figures and the page never disagree.

    .venv/bin/python benchmarks/write_results.py
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from typing import Any

import _harness as h
import concurrency
import cpu_profile
import limits
import startup
import webhook

OUT = h.HERE / "RESULTS.md"

SECTIONS: list[tuple[str, str, str, Callable[[dict[str, Any]], str] | None]] = [
    (
        "webhook",
        "Webhook path (`webhook.py`)",
        "Authentic Evolution v2 `messages.upsert` webhooks from an aiohttp load generator to "
        "`nicobot serve`, replies to the fake gateway, the fake LLM at a fixed latency; 10% "
        "of messages delivered twice. Open loop at a fixed rate (latency from each request's "
        "scheduled time), then closed loop. *reply* is message-to-reply: from the webhook's "
        "send to the gateway accepting the reply (timed by the gateway). *answered/s* is "
        "messages answered from the first send to the last reply. Lost and duplicated "
        "replies must be 0.",
        webhook.report,
    ),
    (
        "limits",
        "What the stack can do (`limits.py`, run by `webhook.py`)",
        "The load generator against a bare ASGI endpoint (its ceiling), the same load "
        "against a one-route Quart app served by uvicorn as `nicobot serve` does, aiosqlite "
        "single-row committed inserts, and the per-answer libraries: litellm calls to the "
        "fake LLM at 0 ms and nicobot's Chroma queries.",
        limits.report,
    ),
    (
        "cpu_profile",
        "Where a message's CPU goes (`cpu_profile.py`)",
        "The closed-loop load of `webhook.py` (fake LLM at 0 ms) with py-spy sampling "
        "`nicobot serve`: samples of a thread holding the GIL, by part, and what that is in "
        "milliseconds of nicobot's CPU per message (measured in a run without py-spy).",
        cpu_profile.report,
    ),
    (
        "concurrency",
        "Pipeline concurrency bound (`concurrency.py`)",
        "500 conversations with one message each, the fake LLM at 1 s; answered messages "
        "per second for each `NICOBOT_PIPELINE__CONCURRENCY`, against the ideal "
        "bound / latency.",
        concurrency.report,
    ),
    (
        "startup",
        "Start-up and idle memory (`startup.py`)",
        "Console-script wall times; `nicobot serve` time to the first 200 on `/healthz`, "
        "to `/readyz` reporting `llm: ready` (a model configured), idle RSS of the server "
        "alone and with its LLM process, and the time "
        "SIGTERM takes to stop it; first start of a fresh project and restart.",
        startup.report,
    ),
    (
        "knowledge_eval",
        "Knowledge base retrieval (`knowledge_eval.py`)",
        "Per question set (heldout is never tuned on) and embedder: hit@1, hit@3, MRR, "
        "false answers (unanswerable questions that get a passage), the offline reply "
        "containing the fact, query latency; see the script's docstring.",
        None,
    ),
    (
        "knowledge_scale",
        "Knowledge base at scale (`knowledge_scale.py`)",
        "`nicobot knowledge ingest` wall time (process start included) and the query latency "
        "of `GET /api/knowledge/query` on a running server, hashing embedder.",
        lambda data: knowledge_scale_table(data),
    ),
]


def knowledge_scale_table(data: dict[str, Any]) -> str:
    rows = [
        [r["chunks"], r["ingest_wall_seconds"], r["ingest_chunks_per_second"],
         r["query_ms_p50"], r["query_ms_p95"]]
        for r in data.get("results", [])
    ]  # fmt: skip
    return h.table(rows, ["chunks", "ingest s", "chunks/s", "query p50 ms", "query p95 ms"])


def knowledge_table(data: dict[str, Any]) -> str:
    """Per question set and embedder: ranking, "I don't know" and the offline answer."""
    rows = []
    for set_name, results in data.get("sets", {}).items():
        for r in results:
            false = r.get("false_answers")
            rows.append(
                [
                    set_name,
                    r.get("embedder"),
                    f"{r.get('hit_at_1', 0):.2f}",
                    f"{r.get('hit_at_3', 0):.2f}",
                    f"{r.get('mrr', 0):.2f}",
                    "-" if false is None else f"{false:.2f}",
                    f"{r.get('fact_in_offline_reply', 0):.2f}",
                    round(r.get("query_ms_p50", 0), 1),
                    round(r.get("query_ms_p95", 0), 1),
                    round(r.get("query_cpu_ms_p95", 0), 1),
                ]
            )
    headers = ["set", "embedder", "hit@1", "hit@3", "MRR", "false answers",
               "fact in reply", "query p50 ms", "query p95 ms", "query CPU p95 ms"]  # fmt: skip
    return h.table(rows, headers)


def machine_line(machine: dict[str, Any]) -> str:
    start, end = (
        "/".join(str(x) for x in machine.get(key, [])) or "?"
        for key in ("loadavg_at_start", "loadavg_at_end")
    )
    return (
        f"{machine.get('date', '?')}, commit {machine.get('commit') or '?'}, "
        f"load average (1/5/15 min) {start} at start, {end} at end, uvicorn on "
        f"{machine.get('uvicorn_loop', '?')} + {machine.get('uvicorn_http', '?')}"
    )


def other_sections() -> list[tuple[str, str, str, Callable[[dict[str, Any]], str] | None]]:
    """Result files of other scripts: their own ``report(data)`` if they have one."""
    known = {name for name, *_ in SECTIONS}
    found = []
    for path in sorted(h.RESULTS.glob("*.json")):
        if path.stem in known:
            continue
        try:
            table = getattr(importlib.import_module(path.stem), "report", None)
        except ImportError:
            table = None
        found.append((path.stem, f"`{path.stem}.py`", "", table))
    return found


def render() -> str:
    machines = {}
    parts = []
    for name, title, about, table in SECTIONS + other_sections():
        path = h.RESULTS / f"{name}.json"
        parts += [f"## {title}", ""] + ([about, ""] if about else [])
        if not path.exists():
            parts += [f"Not run yet: `.venv/bin/python benchmarks/{name}.py`.", ""]
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        machine = data.get("machine")
        if isinstance(machine, dict) and {"nproc", "cpu", "ram_gb", "python"} <= machine.keys():
            key = (machine["nproc"], machine["cpu"], machine["ram_gb"], machine["python"])
            machines[key] = machine
            mode = data.get("mode", "full")
            parts.append(f"Run: {machine_line(machine)}; mode {mode}.")
            if mode == "quick":
                parts.append(
                    "**Quick run: small N and short, noisy; it checks that the script "
                    "works, it is not a measurement.**"
                )
            parts.append("")
        if name == "webhook":
            settings = ", ".join(f"{k} {v}" for k, v in data.get("settings", {}).items())
            parts += [f"Settings: {settings}.", ""]
        if name == "knowledge_eval":
            text = knowledge_table(data)
        elif table is not None:
            text = table(data)
        else:
            text = json.dumps(data, indent=1)
        parts += ["```", text, "```", ""]
    head = [
        "# Benchmark results",
        "",
        "Rendered by `benchmarks/write_results.py` from `benchmarks/results/*.json`; do not "
        "edit by hand. How to run them: `benchmarks/README.md`.",
        "",
        "## Machine",
        "",
    ]
    if not machines:
        head += ["No results yet.", ""]
    for nproc, cpu, ram, python in machines:
        head.append(f"- {nproc} CPUs ({cpu}), {ram} GB RAM, Python {python}")
    head += [
        "",
        "Every process (load generator, nicobot, fake gateway, fake LLM) shares these CPUs; "
        "the load average at the start and end of each run says how busy the machine was "
        "(above the CPU count, figures are noisy).",
        "",
    ]
    return "\n".join(head + parts).rstrip() + "\n"


def run() -> None:
    OUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    h.main(run)
