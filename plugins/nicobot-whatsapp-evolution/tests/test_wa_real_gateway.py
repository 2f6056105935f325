"""Contract tests against the real Evolution API v2.3.7, built and run offline by the kit in
../shared/real-evolution (see its README: offline it never produces a QR, redials forever
flooding ``connection.update`` "connecting", flips its state between connecting and close,
and answers sendText with 500 "Connection Closed").

A real ``nicobot serve`` process is paired with it: nicobot creates the instance with its
webhook and secret header, the gateway's own sender delivers the flood, a reply waits in the
outbox, and logout and teardown follow the README's recipe. Inbound customer messages cannot
happen offline: the one here is posted to nicobot's webhook as the gateway would post it.
"""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from nicobot.testing import ServerProcess, free_port, make_project, wait_until

from evo_support import SHARED, load_fixture

KIT = SHARED / "real-evolution" / "real-evolution.sh"
START_TIMEOUT = 900  # the first start builds the gateway (1-2 minutes, more on a busy runner)


@pytest.fixture(scope="session")
def real_evolution() -> Iterator[dict[str, str]]:
    """``real-evolution.sh start`` for the session (``stop`` after it); fails, never
    skips, when the kit cannot start."""
    if not KIT.is_file():
        pytest.fail(f"the real Evolution API kit is missing: {KIT}")
    try:
        started = subprocess.run(
            ["bash", str(KIT), "start"], capture_output=True, text=True, timeout=START_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"real-evolution.sh start took over {START_TIMEOUT} s")
    if started.returncode != 0:
        tail = "\n".join(started.stderr.strip().splitlines()[-15:])
        pytest.fail(f"the real Evolution API did not start ({KIT} start):\n{tail}")
    env = dict(
        line.split("=", 1) for line in started.stdout.splitlines() if re.match(r"^[A-Z_]+=", line)
    )
    yield env
    subprocess.run(["bash", str(KIT), "stop"], capture_output=True, timeout=60)


class Gateway:
    """Direct calls to the real gateway, with its global key."""

    def __init__(self, env: dict[str, str]) -> None:
        self.http = httpx.Client(
            base_url=env["EVOLUTION_API_URL"], headers={"apikey": env["EVOLUTION_API_KEY"]}
        )
        self.log = Path(env["EVOLUTION_LOG"])

    def instances(self) -> list[str]:
        answer = self.http.get("/instance/fetchInstances").json()
        return [str(i.get("name")) for i in answer]

    def teardown(self, instance: str) -> None:
        """The README's recipe: log out every 0.15 s until it succeeds, go on until it has
        answered 400 for a second (no dialing loop left), then delete."""
        deadline = time.monotonic() + 30
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            status = self.http.delete(f"/instance/logout/{instance}").status_code
            if status == 404:
                return
            if status == 200:
                quiet_since = None
            else:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= 1.5:
                    break
            time.sleep(0.15)
        self.http.delete(f"/instance/delete/{instance}")


@pytest.fixture
def gateway(real_evolution: dict[str, str]) -> Iterator[Gateway]:
    gw = Gateway(real_evolution)
    yield gw
    gw.http.close()


@pytest.fixture
def instance(gateway: Gateway) -> Iterator[str]:
    name = f"contract-{uuid.uuid4().hex[:8]}"
    yield name
    gateway.teardown(name)
    wait_until("the instance deleted", lambda: name not in gateway.instances(), timeout=30)


@pytest.fixture
def nicobot(
    tmp_path: Path, real_evolution: dict[str, str], instance: str
) -> Iterator[ServerProcess]:
    port = free_port()
    server = ServerProcess(
        make_project(tmp_path / "bot"),
        {
            "EVOLUTION_API_URL": real_evolution["EVOLUTION_API_URL"],
            "EVOLUTION_API_KEY": real_evolution["EVOLUTION_API_KEY"],
            "EVOLUTION_INSTANCE_NAME": instance,
            "EVOLUTION_WEBHOOK_SECRET": "contract-secret",
            "NICOBOT_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "NICOBOT_CHANNELS__WHATSAPP__DEBOUNCE_SECONDS": "0",
            "NICOBOT_CHANNELS__WHATSAPP__TYPING_MAX_SECONDS": "0",
            "NICOBOT_PIPELINE__SEND_BACKOFF_SECONDS": "0.2",
            "NICOBOT_PIPELINE__SEND_BACKOFF_MAX_SECONDS": "1",
        },
        port=port,
    ).start()
    yield server
    server.stop()


def webhook_calls(server: ServerProcess, outcome: str = "handled") -> int:
    """How many gateway webhook calls nicobot took so far (its /metrics)."""
    with server.client() as api:
        text = api.get("/metrics").text
    pattern = rf'^nicobot_webhook_calls_total{{outcome="{outcome}",slug="evolution"}} (\S+)$'
    match = re.search(pattern, text, re.M)
    return int(float(match.group(1))) if match else 0


def app_log_lines(server: ServerProcess) -> list[str]:
    """nicobot's own log lines (not the access log)."""
    lines = server.log_path.read_text(errors="replace").splitlines()
    return [line for line in lines if " nicobot." in line]


def flood_rate(server: ServerProcess, seconds: float) -> float:
    """Webhook calls per second nicobot takes, over ``seconds``."""
    start, began = webhook_calls(server), time.monotonic()
    time.sleep(seconds)  # observing a rate over time
    return (webhook_calls(server) - start) / (time.monotonic() - began)


def statuses(server: ServerProcess, samples: int, every: float) -> list[str]:
    seen = []
    with server.client() as api:
        for _ in range(samples):
            seen.append(api.get("/api/channels/whatsapp/status").json()["state"])
            time.sleep(every)  # sampling over time, not waiting for anything
    return seen


def eventually(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    return wait_until(what, check, timeout=timeout)


def test_pairing_the_flood_and_logout_against_the_real_gateway(
    nicobot: ServerProcess, gateway: Gateway, instance: str
) -> None:
    with nicobot.client(timeout=60) as api:
        connected = api.post("/api/channels/whatsapp/connect")
    assert connected.status_code == 200, connected.text
    status = connected.json()
    assert status["connected"] is False and status["state"] == "scanning"  # no QR offline
    assert "qr" not in status or status["qr"] is None

    hook = gateway.http.get(f"/webhook/find/{instance}").json()
    assert hook["url"] == f"{nicobot.url}/api/webhooks/evolution"
    assert hook["headers"] == {"x-nicobot-secret": "contract-secret"}
    assert hook["enabled"] is True and "CONNECTION_UPDATE" in hook["events"]

    # the real sender delivers the "connecting" flood; nicobot takes every call quietly
    logged_before = len(app_log_lines(nicobot))
    eventually("ten connection.update calls", lambda: webhook_calls(nicobot) >= 10)
    rate_before = flood_rate(nicobot, seconds=3.0)
    seen = statuses(nicobot, samples=12, every=0.25)  # the gateway's state flips meanwhile
    assert set(seen) == {"scanning"}, seen
    rate_after = flood_rate(nicobot, seconds=3.0)
    print(f"connection.update flood: {rate_before:.1f}/s, after 12 status looks {rate_after:.1f}/s")
    # looking at the status starts no more dialing loops: the flood does not grow
    assert rate_after <= rate_before * 1.25 + 1  # one more loop adds about 3/s
    assert webhook_calls(nicobot, "rejected") == webhook_calls(nicobot, "failed") == 0
    new_lines = app_log_lines(nicobot)[logged_before:]
    assert len(new_lines) <= 2, new_lines  # no line per webhook

    with nicobot.client(timeout=60) as api:
        disconnected = api.post("/api/channels/whatsapp/disconnect")
    assert disconnected.status_code == 200
    assert disconnected.json()["state"] == "disconnected"
    calls = webhook_calls(nicobot)
    time.sleep(2.0)  # observing that the flood ended
    assert webhook_calls(nicobot) - calls <= 1  # at most a call that was in flight
    assert (
        gateway.http.get(f"/instance/connectionState/{instance}").json()["instance"]["state"]
        == "close"
    )


def test_a_reply_while_the_gateway_dials_waits_in_the_outbox(
    nicobot: ServerProcess, gateway: Gateway, instance: str
) -> None:
    with nicobot.client(timeout=60) as api:
        assert api.post("/api/channels/whatsapp/connect").status_code == 200
    # offline the gateway receives no messages: post one as its sender would
    payload = load_fixture("v2_messages_upsert_conversation_with_http_headers.json")["body"]
    payload["instance"] = instance
    payload["data"]["messageTimestamp"] = int(time.time())
    payload["data"]["key"]["id"] = uuid.uuid4().hex.upper()
    answer = httpx.post(
        f"{nicobot.url}/api/webhooks/evolution",
        json=payload,
        headers={"x-nicobot-secret": "contract-secret", "user-agent": "axios/1.13.2"},
    )
    assert answer.status_code == 200 and answer.json()["accepted"] == 1

    def retried() -> dict[str, Any] | None:
        with nicobot.client() as api:
            pending = api.get("/api/outbox", params={"status": "pending"}).json()["outbox"]
        return next((e for e in pending if e["attempts"] >= 3), None)

    entry = eventually("three failed attempts at the reply", retried)
    assert "Connection Closed" in entry["last_error"]  # the 500 is a retry-later
    with nicobot.client() as api:
        assert api.get("/api/outbox", params={"status": "failed"}).json()["outbox"] == []
        assert api.get("/api/outbox", params={"status": "sent"}).json()["outbox"] == []
