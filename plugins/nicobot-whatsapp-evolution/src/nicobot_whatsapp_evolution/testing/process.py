"""The fake gateway in a process of its own, for tests that run nicobot as a server."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx


class GatewayProcess:
    """``python -m ...testing.fake_gateway`` on a free port, and its controls; with
    ``echo_sent`` (the default) it echoes every sent message back, as the real gateway does."""

    def __init__(self, api_key: str, schemas: str | Path, *, echo_sent: bool = True) -> None:
        self.api_key = api_key
        command = [sys.executable, "-m", "nicobot_whatsapp_evolution.testing.fake_gateway"]
        command += ["--port", "0", "--api-key", api_key, "--schemas", str(schemas)]
        self.process = subprocess.Popen(
            command + (["--echo-sent"] if echo_sent else []),
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        match = re.search(r"listening on (http://\S+)", self.process.stdout.readline())
        if match is None:
            self.stop()
            raise RuntimeError("the fake gateway did not start")
        self.url = match.group(1)

    def control(self, action: str, **body: Any) -> Any:
        response = httpx.post(f"{self.url}/_fake/{action}", json=body, timeout=60)
        response.raise_for_status()
        return response.json()

    def sent(self) -> list[dict[str, Any]]:
        return list(httpx.get(f"{self.url}/_fake/sent").json()["sent"])

    def presences(self) -> list[dict[str, Any]]:
        return list(httpx.get(f"{self.url}/_fake/sent").json()["presences"])

    def texts_to(self, number: str) -> list[str]:
        return [s["text"] for s in self.sent() if s["number"] == number]

    def deliver(self, text: str, number: str, **extra: Any) -> dict[str, Any]:
        [delivery] = self.control("deliver", text=text, number=number, **extra)
        return dict(delivery)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)
