"""The fake Evolution gateway as a process, plus a clock: each ``sendText`` it accepts is
also recorded with ``time.monotonic()`` (one clock for every process on a Linux host).

The fake itself is unchanged; ``POST /_fake/bench-sent {"after": N}`` returns the timed
sends from index N on, as ``[[monotonic, number, text], ...]``.

    python benchmarks/_gateway.py --api-key K [--schemas DIR] [--echo-sent]
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from pathlib import Path
from typing import Any

from nicobot_whatsapp_evolution.testing import FakeGateway, Instance


class TimedGateway(FakeGateway):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.timed: list[tuple[float, str, str]] = []

    def _send_text(self, instance: Instance, body: Any) -> tuple[int, Any]:
        status, answer = super()._send_text(instance, body)
        with self._lock:
            self.timed.append((time.monotonic(), body["number"], body["text"]))
        return status, answer

    def control(self, action: str, body: dict[str, Any]) -> Any:
        if action == "bench-sent":
            with self._lock:
                return {"sent": self.timed[int(body.get("after", 0)) :]}
        return super().control(action, body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--schemas", type=Path, default=None)
    parser.add_argument("--echo-sent", action="store_true")
    args = parser.parse_args()
    gateway = TimedGateway(
        api_key=args.api_key, port=args.port, schemas_dir=args.schemas, echo_sent=args.echo_sent
    )
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    with gateway:
        print(f"fake evolution gateway listening on {gateway.url}", flush=True)
        stopped.wait()


if __name__ == "__main__":
    main()
