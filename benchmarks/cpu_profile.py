"""Where nicobot's CPU goes per message, by part: the same stack and closed-loop load as
``webhook.py`` (fake LLM at 0 ms), with py-spy sampling ``nicobot serve`` meanwhile.

Only samples of a thread holding the GIL count (``py-spy --gil``): what competes for the
one core a Python process can use. Each sample is charged to the first part found in its
stack, innermost frame first, so time inside litellm's HTTP client is litellm's. The
figures are shares of the samples, and, from nicobot's CPU time per message measured
without py-spy running, milliseconds per message.

    .venv/bin/python benchmarks/cpu_profile.py [--quick] [--messages 1500]

Needs py-spy (``pip install py-spy``); it reads another process's memory, which some
containers forbid (then the script says so).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import _harness as h

#: (part, what identifies it in a frame's file path), searched innermost frame first.
PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("store (SQLite)", ("nicobot/store/", "aiosqlite/", "sqlite3/")),
    ("knowledge (Chroma, embedder)", ("nicobot/rag/", "chromadb/", "numpy/")),
    ("LLM call (litellm, openai, its HTTP)", ("litellm/", "openai/")),
    ("gateway sends (aiohttp)", ("nicobot_whatsapp_evolution/client.py",)),
    ("webhook parsing and auth", ("nicobot_whatsapp_evolution/",)),
    ("pipeline and bot", ("nicobot/pipeline.py", "nicobot/bot.py", "nicobot/agent.py")),
    # uvicorn's server.py and _compat.py are below every task: only its protocols count
    ("web (Quart, uvicorn)", ("quart/", "uvicorn/protocols/", "werkzeug/", "httptools/")),
    ("metrics, logging", ("prometheus_client/", "logging/")),
)


def part_of(stack: str) -> str:
    frames = stack.split(";")[1:]
    for frame in reversed(frames):
        path = frame.rpartition("(")[2]
        for part, needles in PARTS:
            if any(needle in path for needle in needles):
                # a frame of ours calling a library is charged to the library found deeper
                return part
    if any("asyncio/" in f or "uvloop" in f for f in frames):
        return "event loop, other"
    return "other"


def profile(
    messages: int, rate: int, embedder: str, offered: float | None, samples: Path | None = None
) -> dict[str, Any]:
    if shutil.which("py-spy") is None and not Path(h.PYTHON).with_name("py-spy").exists():
        raise h.BenchError("py-spy is not installed (pip install py-spy)")
    spy_bin = shutil.which("py-spy") or str(Path(h.PYTHON).with_name("py-spy"))
    with h.Processes() as procs, tempfile.TemporaryDirectory() as tmp:
        stack = h.start_stack(
            procs,
            latency=0.0,
            concurrency=256,
            extra_env={"NICOBOT_KNOWLEDGE__EMBEDDER": embedder},
        )
        h.warm_up(stack)
        plain = h.measure_load(stack, count=messages, conversations=1000, dup=0.1, rate=offered)
        raw = Path(tmp) / "samples.txt"
        spy = subprocess.Popen(
            [
                spy_bin,
                "record",
                "--pid",
                str(stack.pid),
                "--gil",
                "--threads",
                "--subprocesses",
                "--rate",
                str(rate),
                "--format",
                "raw",
                "--output",
                str(raw),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        sampled = h.measure_load(stack, count=messages, conversations=1000, dup=0.1, rate=offered)
        spy.send_signal(signal.SIGINT)
        _out, err = spy.communicate(timeout=60)
        if not raw.exists():
            reason = err.decode(errors="replace").strip().splitlines()
            raise h.BenchError(f"py-spy recorded nothing: {reason[-1] if reason else '?'}")
        if samples is not None:
            shutil.copyfile(raw, samples)
        counts: collections.Counter[str] = collections.Counter()
        for line in raw.read_text().splitlines():
            stack_text, _, n = line.rpartition(" ")
            if stack_text:
                counts[part_of(stack_text)] += int(n)
    total = sum(counts.values())
    per_message = plain["nicobot_cpu_ms_per_message"]
    return {
        "messages": messages,
        "offered_per_s": offered,
        "samples": total,
        "cpu_ms_per_message": per_message,
        "answered_per_s": plain["answered_per_s"],
        "answered_per_s_sampled": sampled["answered_per_s"],
        "parts": [
            {"part": part, "share": n / total, "ms_per_message": per_message * n / total}
            for part, n in counts.most_common()
        ],
    }


def report(data: dict[str, Any]) -> str:
    r = data["result"]
    rows = [
        [p["part"], f"{100 * p['share']:.1f}%", f"{p['ms_per_message']:.2f}"] for p in r["parts"]
    ]
    lines = [h.table(rows, ["part", "share of GIL samples", "CPU ms per message"])]
    lines.append(
        f"\n{r['cpu_ms_per_message']} ms of nicobot CPU per message ({r['answered_per_s']} "
        f"answered/s without py-spy, {r['answered_per_s_sampled']} with), {r['samples']} samples"
    )
    return "\n".join(lines)


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="200 messages")
    parser.add_argument("--messages", type=int, default=1500)
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument(
        "--offered",
        type=float,
        default=None,
        help="webhooks/s, open loop (default: closed loop, as fast as nicobot answers)",
    )
    parser.add_argument(
        "--embedder",
        default="hashing",
        help="[knowledge] embedder (hashing: as peers.py; e5 spends most of its CPU outside "
        "the GIL, where py-spy --gil does not see it)",
    )
    parser.add_argument(
        "--samples",
        type=Path,
        help="also write py-spy's raw samples (collapsed stacks) to this file",
    )
    args = parser.parse_args()
    messages = 200 if args.quick else args.messages
    data: dict[str, Any] = {
        "mode": "quick" if args.quick else "full",
        "machine": h.machine(),
        "embedder": args.embedder,
        "result": profile(messages, args.rate, args.embedder, args.offered, args.samples),
    }
    print(report(data))
    print(f"wrote {h.write_result('cpu_profile', data)}")


if __name__ == "__main__":
    h.main(run)
