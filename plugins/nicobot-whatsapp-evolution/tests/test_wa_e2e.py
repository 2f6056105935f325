"""End to end: a real ``nicobot serve`` process and the fake gateway as another process.

connect -> QR -> scan -> a customer writes -> nicobot answers through the gateway;
duplicate deliveries get one reply; an unauthenticated webhook gets 401.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from nicobot.testing import free_port, wait_until

from evo_support import SCHEMAS
from nicobot_whatsapp_evolution.testing import GatewayProcess

API_KEY = "e2e-global-key"
CUSTOMER = "5491100000001"
DEADLINE = 60.0


def read_env(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip().strip("'\"")
    return values


@dataclass
class Stack:
    fake: str
    server: str
    admin: dict[str, str]
    env: dict[str, str]
    log: Path

    def sent(self) -> list[dict[str, Any]]:
        return list(httpx.get(f"{self.fake}/_fake/sent").json()["sent"])

    def replies_to(self, number: str) -> list[str]:
        return [s["text"] for s in self.sent() if s["number"] == number]

    def deliver(self, **body: Any) -> list[dict[str, Any]]:
        answer = httpx.post(f"{self.fake}/_fake/deliver", json=body, timeout=30)
        answer.raise_for_status()
        return list(answer.json())

    def server_log(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@pytest.fixture
def stack(tmp_path: Path, fake_llm: Any) -> Iterator[Stack]:
    """``nicobot init``, the fake gateway process, then ``nicobot serve``."""
    project = tmp_path / "bot"
    subprocess.run(
        [sys.executable, "-m", "nicobot", "init", str(project), "--yes"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    secrets = read_env(project / ".env")
    fake = GatewayProcess(API_KEY, SCHEMAS, echo_sent=False)
    server: subprocess.Popen[bytes] | None = None
    log = tmp_path / "server.log"
    try:
        fake_url = fake.url
        port = free_port()
        server_url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            **fake_llm.env,
            "EVOLUTION_API_URL": fake_url,
            "EVOLUTION_API_KEY": API_KEY,
            "NICOBOT_PUBLIC_URL": server_url,
            "NICOBOT_CHANNELS__WHATSAPP__DEBOUNCE_SECONDS": "0",
            # litellm otherwise fetches its model price list from the internet on import
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        }
        with log.open("wb") as out:
            server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "nicobot",
                    "serve",
                    "--project",
                    str(project),
                    "--port",
                    str(port),
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

        def healthy() -> bool:
            assert server is not None
            if server.poll() is not None:
                raise AssertionError(f"nicobot serve exited:\n{log.read_text(errors='replace')}")
            try:
                return httpx.get(f"{server_url}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until("nicobot serve to answer /healthz", healthy)
        admin = {"Authorization": f"Bearer {secrets['NICOBOT_ADMIN_PASSWORD']}"}
        yield Stack(fake_url, server_url, admin, env, log)
    finally:
        for process in (server, fake.process):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def test_whatsapp_end_to_end(stack: Stack) -> None:
    with httpx.Client(base_url=stack.server, headers=stack.admin, timeout=30) as api:
        # pairing: create the instance, point its webhook here, show the QR
        status = api.post("/api/channels/whatsapp/connect")
        assert status.status_code == 200, status.text
        data = status.json()
        assert data["state"] == "scanning", data
        assert data["qr"].startswith("data:image/png;base64,") and data["qr_code"]
        state = httpx.get(f"{stack.fake}/_fake/state").json()["instances"]["laformula"]
        assert state["webhook"]["url"] == f"{stack.server}/api/webhooks/evolution"
        secret_header = state["webhook"]["headers"]

        # the phone scans: the gateway tells nicobot through the authenticated webhook
        (scan,) = httpx.post(f"{stack.fake}/_fake/scan", json={}, timeout=30).json()
        assert scan["status"] == 200, scan
        assert api.get("/api/channels/whatsapp/status").json()["connected"] is True

        # a customer writes; nicobot answers through the gateway
        (delivery,) = stack.deliver(text="Hola", number=CUSTOMER, push_name="Ana Pérez")
        assert delivery["status"] == 200 and delivery["answer"]["accepted"] == 1, delivery
        replies = wait_until("the reply", lambda: stack.replies_to(CUSTOMER))
        assert replies == ["Echo: Hola"], stack.server_log()

        sessions = api.get("/api/sessions", params={"channel": "whatsapp"}).json()
        found = [s for s in _sessions(sessions) if s["channel"] == "whatsapp"]
        assert len(found) == 1, sessions
        assert found[0]["phone_number"] == CUSTOMER
        assert found[0]["sender_name"] == "Ana Pérez"

        # the same message delivered five times at once: one reply
        deliveries = stack.deliver(
            text="Otra vez", number=CUSTOMER, push_name="Ana Pérez", copies=5, message_id="DUP1"
        )
        assert [d["status"] for d in deliveries] == [200] * 5
        assert sum(d["answer"].get("accepted", 0) for d in deliveries) == 1
        assert sum(d["answer"].get("duplicates", 0) for d in deliveries) == 4
        # a later message in the same chat is answered after it: once its reply is
        # there, every reply to the duplicates would be too
        stack.deliver(text="Gracias", number=CUSTOMER, push_name="Ana Pérez")
        wait_until("the last reply", lambda: "Echo: Gracias" in stack.replies_to(CUSTOMER))
        assert stack.replies_to(CUSTOMER) == ["Echo: Hola", "Echo: Otra vez", "Echo: Gracias"]

    # unauthenticated webhooks (the global webhook sends no auth) are refused
    body = deliveries[0]["body"]
    body["data"]["key"]["id"] = "FORGED1"
    url = f"{stack.server}/api/webhooks/evolution"
    assert httpx.post(url, json=body).status_code == 401
    assert httpx.post(url, json=body, headers={"x-nicobot-secret": "guess"}).status_code == 401
    assert httpx.post(url + "/guess/messages-upsert", json=body).status_code == 401
    # with the header nicobot configured it is accepted (and, being an hour old, dropped)
    body["data"]["messageTimestamp"] = int(time.time()) - 3600
    accepted = httpx.post(url, json=body, headers=secret_header)
    assert accepted.status_code == 200 and accepted.json()["messages"] == 0


def _sessions(answer: Any) -> list[dict[str, Any]]:
    if isinstance(answer, list):
        return answer
    for key in ("sessions", "items", "results"):
        if isinstance(answer.get(key), list):
            return list(answer[key])
    raise AssertionError(f"unexpected /api/sessions answer: {answer}")
