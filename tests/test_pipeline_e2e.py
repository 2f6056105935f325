"""The pipeline end to end: real `nicobot serve` processes, the fake Evolution gateway as a
process echoing every sent message back (as the real one does), and the fake LLM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from nicobot.testing import FakeLLM, ServerProcess, free_port, make_project, wait_until

SHARED = Path(os.environ.get("NICOBOT_SHARED") or Path(__file__).resolve().parents[2] / "shared")
SCHEMAS = SHARED / "fixtures" / "evolution" / "schemas"
API_KEY = "pipeline-e2e-key"
DEADLINE = 90.0


class Gateway:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "nicobot_whatsapp_evolution.fake_gateway",
                "--port",
                "0",
                "--api-key",
                API_KEY,
                "--schemas",
                str(SCHEMAS),
                "--echo-sent",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        match = re.search(r"listening on (http://\S+)", self.process.stdout.readline())
        assert match, "the fake gateway did not start"
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


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    gw = Gateway()
    yield gw
    gw.stop()


@pytest.fixture
def start(
    tmp_path: Path, gateway: Gateway, fake_llm: FakeLLM
) -> Iterator[Callable[..., ServerProcess]]:
    """Start (or restart) `nicobot serve` for one project, paired with the fake gateway."""
    project = make_project(tmp_path / "bot")
    port = free_port()
    servers: list[ServerProcess] = []

    def run(**env: str) -> ServerProcess:
        server = ServerProcess(
            project,
            {
                **fake_llm.env,
                "EVOLUTION_API_URL": gateway.url,
                "EVOLUTION_API_KEY": API_KEY,
                "NICOBOT_PUBLIC_URL": f"http://127.0.0.1:{port}",
                "NICOBOT_CHANNELS__WHATSAPP__DEBOUNCE_SECONDS": "0",
                "NICOBOT_CHANNELS__WHATSAPP__TYPING_MAX_SECONDS": "0.5",
                "NICOBOT_PIPELINE__SEND_BACKOFF_SECONDS": "0.2",
                "NICOBOT_PIPELINE__SEND_BACKOFF_MAX_SECONDS": "1",
                **env,
            },
            port=port,
        ).start()
        servers.append(server)
        if len(servers) == 1:
            with server.client() as api:
                assert api.post("/api/channels/whatsapp/connect").status_code == 200
            gateway.control("scan")
        return server

    yield run
    for server in servers:
        server.stop()


def test_200_messages_over_20_conversations_answered_once_and_in_order(start, gateway):
    start()
    numbers = [f"54911000001{n:02d}" for n in range(20)]

    def conversation(number: str) -> int:
        accepted = 0
        for n in range(10):
            copies = 2 if n % 4 == 0 else 1  # duplicate deliveries, as the gateway retries
            deliveries = gateway.control(
                "deliver",
                text=f"{number} m{n}",
                number=number,
                copies=copies,
                message_id=f"{number}-{n}",
            )
            assert all(d["status"] == 200 for d in deliveries), deliveries
            accepted += sum(d["answer"].get("accepted", 0) for d in deliveries)
        return accepted

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=20) as pool:
        assert sum(pool.map(conversation, numbers)) == 200
    t1 = time.monotonic()
    wait_until("200 replies", lambda: len(gateway.sent()) >= 200, timeout=DEADLINE)
    print("TIMING deliver", t1 - t0, "replies", time.monotonic() - t1)
    for number in numbers:
        assert gateway.texts_to(number) == [f"Echo: {number} m{n}" for n in range(10)]
    assert len(gateway.sent()) == 200
    assert gateway.presences(), "a typing indicator goes before replies"


def test_replies_wait_while_the_gateway_is_down(start, gateway):
    server = start()
    gateway.control("down", mode="closed")
    for n in range(3):
        assert gateway.deliver(f"down m{n}", "5491100000201")["answer"]["accepted"] == 1

    def retrying() -> bool:
        with server.client() as api:
            pending = api.get("/api/outbox", params={"status": "pending"}).json()["outbox"]
        return any(entry["attempts"] >= 2 for entry in pending)

    wait_until("failed attempts while the gateway is down", retrying)
    assert gateway.sent() == []
    gateway.control("down", mode=None)
    wait_until("the replies", lambda: len(gateway.sent()) == 3)
    assert gateway.texts_to("5491100000201") == [f"Echo: down m{n}" for n in range(3)]


def test_sigkill_mid_burst_loses_nothing(start, gateway, fake_llm):
    fake_llm.latency = 0.2
    server = start(NICOBOT_PIPELINE__CONCURRENCY="2")
    numbers = [f"54911000003{n:02d}" for n in range(6)]
    accepted: list[str] = []
    for n in range(8):
        for number in numbers:
            text = f"{number} k{n}"
            if gateway.deliver(text, number)["answer"].get("accepted") == 1:
                accepted.append(text)
    assert len(accepted) == 48
    wait_until("a few replies before the kill", lambda: len(gateway.sent()) >= 5)
    server.stop(signal.SIGKILL)
    restarted = start()
    wait_until(
        "every accepted message answered",
        lambda: {s["text"] for s in gateway.sent()} >= {f"Echo: {t}" for t in accepted},
        timeout=DEADLINE,
    )
    counts = Counter(s["text"] for s in gateway.sent())
    resent = [text for text, count in counts.items() if count > 1]
    with restarted.client() as api:
        metrics = api.get("/metrics").text
    match = re.search(r'nicobot_resends_after_crash_total\{channel="whatsapp"\} (\d+)', metrics)
    recovered = int(match.group(1)) if match else 0
    print(f"SIGKILL: {len(resent)} duplicate sends, {recovered} interrupted sends resumed")
    # only a reply caught between the gateway accepting it and nicobot recording it can go
    # twice: every such reply is one the restarted server counted as resumed, and at most
    # one send per conversation is ever in flight
    assert len(resent) <= recovered <= len(numbers), (resent, recovered)
    for number in numbers:
        texts = gateway.texts_to(number)
        assert sorted(set(texts), key=texts.index) == [f"Echo: {number} k{n}" for n in range(8)]


def test_an_operator_on_the_phone_pauses_the_bot(start, gateway):
    server = start()
    number = "5491100000401"
    assert gateway.deliver("hola", number)["answer"]["accepted"] == 1
    wait_until("the first reply", lambda: gateway.texts_to(number))
    # the gateway echoed that reply back as fromMe: it must not count as an operator
    with server.client() as api:
        [session] = api.get("/api/sessions", params={"channel": "whatsapp"}).json()["sessions"]
        assert session["paused"] is False
    gateway.deliver("Hola, te escribe Marta de la tienda", number, from_me=True)
    with server.client() as api:
        detail = api.get(f"/api/sessions/{session['id']}").json()
    assert detail["session"]["paused"] is True
    assert detail["messages"][-1]["role"] == "operator"
    gateway.deliver("gracias Marta", number)
    with server.client() as api:
        roles = [m["role"] for m in api.get(f"/api/sessions/{session['id']}").json()["messages"]]
        metrics = api.get("/metrics").text
    assert roles == ["user", "assistant", "operator", "user"]
    assert 'nicobot_queue{queue="turns_pending"} 0.0' in metrics
    assert 'nicobot_handoffs_total{channel="whatsapp"} 1.0' in metrics
    assert gateway.texts_to(number) == ["Echo: hola"]


def test_a_burst_inside_the_debounce_window_gets_one_reply(start, gateway):
    start(NICOBOT_CHANNELS__WHATSAPP__DEBOUNCE_SECONDS="1.5")
    number = "5491100000501"
    for text in ("hola", "quería saber", "¿tienen envíos?"):
        assert gateway.deliver(text, number)["answer"]["accepted"] == 1
    wait_until("the reply", lambda: gateway.texts_to(number))
    assert gateway.texts_to(number) == ["Echo: hola\nquería saber\n¿tienen envíos?"]
