"""nicobot side by side with the inline design (``benchmarks/peers/``), on the same load.

For each LLM latency, the same open-loop load (``--rate`` webhooks/s for ``--seconds``,
``--dup`` of them delivered twice, over ``--conversations`` numbers) goes to:

- the inline design: FastAPI, check-then-insert dedup in SQLite, the agent (a sleep of the
  latency, no LLM client) awaited in the request, the reply sent, then 200;
- nicobot, once per variant: ``--workers`` (1,2,4), ``--stores`` (sqlite, postgres) and
  ``--clients`` (``auto``: the code's choice, a direct POST to this OpenAI-compatible
  fake; ``litellm``: the same server through litellm, as ``hosted_vllm/...``), with
  ``--embedder`` for its knowledge base (``hashing`` by default: the inline design has no
  knowledge base at all; ``e5`` adds a neural embedding per question).

Each gets a fresh fake gateway (and nicobot a fresh fake LLM). Printed per run: replies/s,
that ÷ the inline design's with as many workers, CPU per answered reply (the whole process
tree: workers, LLM process, Chroma server), reply p50/p95 (message sent to reply accepted
by the gateway), lost and doubled replies. nicobot must lose and double none (exit 1 otherwise); the
inline design's doubles are its design, and are reported. "lost" counts replies that had
not arrived when the run ended (``cap``, 120 s after the first message): under overload,
the backlog still waiting. "out_of_order" is measured against the order the generator
sent a conversation's messages in, on 64 concurrent connections: once webhooks wait
seconds for an answer, a conversation's messages reach the server in another order, and
nobody can answer them in the order they were meant. "late" counts replies that came with
the late-reply apology (``[pipeline] delayed_reply_seconds``); they are matched as replies.

    .venv/bin/python benchmarks/peers.py --rate 1000 --seconds 10 --latencies 0
    .venv/bin/python benchmarks/peers.py --rate 100 --seconds 20 --latencies 0 --stores sqlite
    .venv/bin/python benchmarks/peers.py --quick
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass
from typing import Any

import _harness as h

PEER_INSTANCE = "peer"
PEER_APP = h.HERE / "peers" / "inline_app.py"


@dataclass
class PeerStack:
    """The inline design and its own fake gateway (what measure_load needs of a stack)."""

    gateway: h.Gateway
    hook: h.Hook
    process_pid: int
    server: None = None

    @property
    def pid(self) -> int:
        return self.process_pid


def start_peer(procs: h.Processes, latency: float, workers: int) -> PeerStack:
    gateway = h.start_gateway(procs)
    created = h.httpx.post(
        f"{gateway.url}/instance/create",
        json={"instanceName": PEER_INSTANCE, "integration": "WHATSAPP-BAILEYS", "qrcode": True},
        headers={"apikey": h.API_KEY},
        timeout=30,
    )
    if created.status_code != 201:
        raise h.BenchError(f"the fake gateway refused the peer's instance: {created.text}")
    gateway.control("scan")
    port = h.free_port()
    args = ["--port", str(port), "--gateway", gateway.url, "--api-key", h.API_KEY]
    args += ["--instance", PEER_INSTANCE, "--latency", str(latency), "--workers", str(workers)]
    args += ["--db", str(procs.dir / f"inline-{port}.sqlite3")]
    process = procs.spawn([h.PYTHON, str(PEER_APP), *args])
    url = f"http://127.0.0.1:{port}"
    h.wait_http(url + "/docs", timeout=60, process=process)
    template = json.loads(h.FIXTURE.read_text(encoding="utf-8"))["body"]
    hook = h.Hook(
        url + "/webhook",
        {"content-type": "application/json"},
        PEER_INSTANCE,
        created.json()["hash"],
        template,
    )
    return PeerStack(gateway, hook, process.pid)


def nicobot_settings(
    workers: int, store: str, client: str, postgres: Any, embedder: str
) -> dict[str, str]:
    env = {"NICOBOT_SERVER__WORKERS": str(workers), "NICOBOT_KNOWLEDGE__EMBEDDER": embedder}
    if store == "postgres":
        env.update(NICOBOT_STORE__BACKEND="postgres", NICOBOT_STORE__URL=postgres.create_database())
    if client == "litellm":
        env["NICOBOT_MODEL"] = "hosted_vllm/gpt-4o-mini"  # the same server, through litellm
    return env


def summary(label: str, result: dict[str, Any], inline_rate: float | None) -> dict[str, Any]:
    answered = result["messages"] - result["lost_replies"]
    cpu_s = result["nicobot_cpu_ms_per_message"] * result["messages"] / 1000
    return {
        "variant": label,
        "replies_per_s": result["answered_per_s"],
        "vs_inline": round(result["answered_per_s"] / inline_rate, 2) if inline_rate else None,
        "cpu_ms_per_reply": round(1000 * cpu_s / answered, 2) if answered else None,
        "reply_p50_ms": result["reply_ms"].get("p50"),
        "reply_p99_ms": result["reply_ms"].get("p99"),
        "webhook_p50_ms": result["webhook_ms"].get("p50"),
        "lost": result["lost_replies"],
        "doubled": result["duplicated_replies"],
        "out_of_order": result["out_of_order_replies"],
        "late": result["late_apologies"],
    }


def measure(stack: Any, args: argparse.Namespace) -> dict[str, Any]:
    return h.measure_load(
        stack,
        count=round(args.rate * args.seconds / (1 + args.dup)),
        conversations=args.conversations,
        dup=args.dup,
        rate=args.rate,
        drain_idle=15.0,
        cap=120.0,
    )


def run(args: argparse.Namespace) -> None:
    postgres = None
    if "postgres" in args.stores:
        from nicobot_postgres.testing import PostgresServer

        postgres = PostgresServer().start()
    rows: list[dict[str, Any]] = []
    failures: list[str] = []
    raw: list[dict[str, Any]] = []
    try:
        for latency_ms in args.latencies:
            latency = latency_ms / 1000
            inline_rates: dict[int, float] = {}  # by workers: like is compared with like
            for workers in args.workers:
                with h.Processes() as procs:
                    peer = start_peer(procs, latency, workers)
                    h.warm_up(peer)  # type: ignore[arg-type]
                    result = measure(peer, args)
                label = f"inline, LLM {latency_ms:g} ms, {workers} worker(s)"
                rows.append(summary(label, result, None))
                raw.append({"variant": label, **result})
                inline_rates[workers] = result["answered_per_s"]
            for workers in args.workers:
                for store in args.stores:
                    for client in args.clients:
                        label = (
                            f"nicobot, LLM {latency_ms:g} ms, {workers} worker(s), {store}, "
                            f"{client}"
                        )
                        with h.Processes() as procs:
                            env = nicobot_settings(workers, store, client, postgres, args.embedder)
                            stack = h.start_stack(
                                procs,
                                latency=latency,
                                concurrency=args.concurrency,
                                extra_env=env,
                            )
                            h.warm_up(stack)
                            result = measure(stack, args)
                        rows.append(summary(label, result, inline_rates.get(workers)))
                        raw.append({"variant": label, **result})
                        failures += h.problems(label, result)
    finally:
        if postgres is not None:
            postgres.stop()
    headers = list(rows[0])
    print(h.table([[row[k] for k in headers] for row in rows], headers))
    h.write_result(
        "peers",
        {"settings": {k: v for k, v in vars(args).items()}, "rows": rows, "runs": raw},
    )
    if failures:
        raise h.BenchError("; ".join(failures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    csv_int = lambda text: [int(x) for x in text.split(",")]  # noqa: E731
    parser.add_argument("--rate", type=float, default=1000.0, help="webhooks per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--latencies", type=csv_int, default=[0], help="LLM ms, comma list")
    parser.add_argument("--workers", type=csv_int, default=[1], help="comma list, e.g. 1,2,4")
    parser.add_argument("--stores", type=lambda t: t.split(","), default=["sqlite"])
    parser.add_argument("--clients", type=lambda t: t.split(","), default=["auto"])
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--dup", type=float, default=0.1)
    parser.add_argument(
        "--embedder",
        default="hashing",
        help="nicobot's knowledge embedder ([knowledge] embedder); the inline design has "
        "no knowledge base, and hashing costs least",
    )
    parser.add_argument("--quick", action="store_true", help="a short run that checks it works")
    args = parser.parse_args()
    if args.quick:
        args.rate, args.seconds, args.conversations = 50.0, 2.0, 20
    random.seed(0)
    h.main(lambda: run(args))


if __name__ == "__main__":
    main()
