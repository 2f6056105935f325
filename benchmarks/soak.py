"""Memory over a long run: does ``nicobot serve`` stay flat under steady traffic?

One stack as in ``webhook.py`` (nicobot, the fake LLM, the fake gateway, paired as an
operator pairs them) takes ``--rate`` WhatsApp messages per second for ``--minutes``, in
rounds of ``--round-seconds``. Every message has words never seen before (so the
embedder's word cache and the knowledge search see a growing vocabulary, as with real
customers), and after each round, once its replies are in, the server's resident memory
is sampled. Reported: RSS over time, its growth from the first round to the last (the
first rounds warm caches up, so growth over the second half is given too), and lost and
duplicated replies (both must be 0).

    .venv/bin/python benchmarks/soak.py [--quick] [--minutes 3] [--rate 20]
"""

from __future__ import annotations

import argparse
import random
import string
import time
import uuid
from typing import Any

import _harness as h


def unique_words(rng: random.Random, count: int) -> str:
    return " ".join(
        "".join(rng.choices(string.ascii_lowercase, k=rng.randint(5, 11))) for _ in range(count)
    )


def round_requests(
    stack: h.Stack, count: int, conversations: int, rng: random.Random
) -> tuple[list[h.Request], dict[str, str]]:
    tag = uuid.uuid4().hex[:6]
    requests, expected = [], {}
    for i in range(count):
        conversation = rng.randrange(conversations)
        number = f"54911{conversation:08d}"
        text = f"soak {tag} m{i} {unique_words(rng, 6)}"
        body = stack.hook.body(text, number, uuid.uuid4().hex.upper(), name=f"C{conversation}")
        requests.append(h.Request(stack.hook.url, body, stack.hook.headers, tag=text))
        expected["Echo: " + text] = number
    return requests, expected


def soak(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(17)
    samples: list[dict[str, Any]] = []
    lost = duplicated = sent_total = 0
    with h.Processes() as procs:
        stack = h.start_stack(procs, latency=args.llm_ms / 1000, concurrency=64)
        h.warm_up(stack)
        started = time.monotonic()
        samples.append({"seconds": 0.0, "messages": 0, **h.proc_stats(stack.pid)})
        deadline = started + args.minutes * 60
        while time.monotonic() < deadline:
            count = max(1, round(args.rate * args.round_seconds))
            requests, expected = round_requests(stack, count, args.conversations, rng)
            sent, _ = h.run_async(h.send_all(requests, rate=args.rate, connections=32))
            replies = h.collect_replies(stack.gateway, expected, idle=20, cap=300)
            texts = [text for _, _, text in replies if text in expected]
            lost += len(set(expected) - set(texts))
            duplicated += len(texts) - len(set(texts))
            sent_total += len(sent)
            samples.append(
                {
                    "seconds": round(time.monotonic() - started, 1),
                    "messages": sent_total,
                    **h.proc_stats(stack.pid),
                }
            )
            print(
                f"  {samples[-1]['seconds']:7.1f} s  {sent_total:6d} messages  "
                f"RSS {samples[-1].get('rss_mb', '?')} MB",
                flush=True,
            )
    first, last = samples[1] if len(samples) > 1 else samples[0], samples[-1]
    middle = samples[len(samples) // 2]
    return {
        "samples": samples,
        "messages": sent_total,
        "lost_replies": lost,
        "duplicated_replies": duplicated,
        "rss_growth_mb": round(last["rss_mb"] - first["rss_mb"], 1),
        "rss_growth_second_half_mb": round(last["rss_mb"] - middle["rss_mb"], 1),
        "rss_growth_mb_per_1000_messages": round(
            1000
            * (last["rss_mb"] - middle["rss_mb"])
            / max(1, last["messages"] - middle["messages"]),
            2,
        ),
    }


def report(data: dict[str, Any]) -> str:
    rows = [
        [s["seconds"], s["messages"], s.get("rss_mb"), s.get("hwm_mb"), s.get("tree_rss_mb")]
        for s in data["result"]["samples"]
    ]
    result = data["result"]
    return "\n".join(
        [
            h.table(rows, ["s", "messages", "RSS MB", "peak RSS MB", "RSS MB with LLM process"]),
            "",
            f"messages: {result['messages']}, lost: {result['lost_replies']}, "
            f"duplicated: {result['duplicated_replies']}",
            f"RSS growth after the first round: {result['rss_growth_mb']} MB; "
            f"over the second half: {result['rss_growth_second_half_mb']} MB "
            f"({result['rss_growth_mb_per_1000_messages']} MB per 1000 messages)",
        ]
    )


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one minute, to check it works")
    parser.add_argument("--minutes", type=float, help="how long to send (3)")
    parser.add_argument("--rate", type=float, default=20.0, help="messages per second")
    parser.add_argument("--round-seconds", type=float, default=15.0, help="between samples")
    parser.add_argument("--conversations", type=int, default=500, help="distinct numbers")
    parser.add_argument("--llm-ms", type=float, default=0.0, help="fake LLM latency")
    args = parser.parse_args()
    if args.minutes is None:
        args.minutes = 1.0 if args.quick else 3.0
    data = {
        "mode": "quick" if args.quick else "full",
        "machine": h.machine(),
        "settings": {
            k: getattr(args, k)
            for k in ("minutes", "rate", "round_seconds", "conversations", "llm_ms")
        },
    }
    data["result"] = soak(args)
    print(report(data))
    print(f"wrote {h.write_result('soak', data)}")
    result = data["result"]
    if result["lost_replies"] or result["duplicated_replies"]:
        raise h.BenchError(
            f"{result['lost_replies']} lost and {result['duplicated_replies']} duplicated replies"
        )


if __name__ == "__main__":
    h.main(run)
