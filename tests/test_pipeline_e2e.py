"""The pipeline end to end: real `nicobot serve` processes, the fake Evolution gateway as a
process echoing every sent message back (as the real one does), and the fake LLM."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from nicobot_whatsapp_evolution.testing import GatewayProcess

from nicobot.testing import FakeLLM, ServerProcess, free_port, make_project, wait_until

SHARED = Path(os.environ.get("NICOBOT_SHARED") or Path(__file__).resolve().parents[2] / "shared")
SCHEMAS = SHARED / "fixtures" / "evolution" / "schemas"
API_KEY = "pipeline-e2e-key"
DEADLINE = 90.0


@pytest.fixture
def gateway() -> Iterator[GatewayProcess]:
    gw = GatewayProcess(API_KEY, SCHEMAS)
    yield gw
    gw.stop()


@pytest.fixture
def start(
    tmp_path: Path, gateway: GatewayProcess, fake_llm: FakeLLM
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


def metric(server: ServerProcess, name: str, **labels: str) -> float:
    with server.client() as api:
        text = api.get("/metrics").text
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    match = re.search(rf"^{name}\{{{re.escape(wanted)}\}} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def test_a_send_whose_answer_is_lost_reaches_each_customer_once(start, gateway):
    """The gateway sends each reply, then answers after the client's timeout (slow) or
    resets the connection (reset): nicobot finds them with findMessages instead of
    sending them again."""
    server = start(NICOBOT_CHANNELS__WHATSAPP__TIMEOUT_SECONDS="1")
    batches = {"slow": "54911000006", "reset": "54911000007"}
    for round_number, (fault, prefix) in enumerate(batches.items(), start=1):
        numbers = [f"{prefix}{n:02d}" for n in range(5)]
        gateway.control("send-fault", mode=fault, seconds=2.5, count=len(numbers))
        for number in numbers:
            assert gateway.deliver(f"{number} hola", number)["answer"]["accepted"] == 1

        def reconciled(expected: int = round_number * len(numbers)) -> bool:
            found = metric(
                server, "nicobot_sends_reconciled_total", channel="whatsapp", found="sent"
            )
            return found >= expected

        wait_until(f"every reply of the {fault} round reconciled", reconciled, timeout=DEADLINE)
        for number in numbers:
            assert gateway.texts_to(number) == [f"Echo: {number} hola"], fault
    with server.client() as api:
        sent = api.get("/api/outbox", params={"status": "sent"}).json()["outbox"]
    known = {s["id"] for s in gateway.sent()}
    assert len(sent) == 10 and {e["platform_id"] for e in sent} <= known
    assert len(gateway.sent()) == 10
    assert metric(server, "nicobot_resends_after_crash_total", channel="whatsapp") == 0


def test_replies_wait_out_a_long_outage_and_go_when_it_ends(start, gateway):
    """The gateway drops every call (a dead process) for longer than the old attempt
    budget; the first delivery that works again brings the others forward."""
    server = start(
        NICOBOT_CHANNELS__WHATSAPP__TIMEOUT_SECONDS="1",
        NICOBOT_PIPELINE__SEND_BACKOFF_SECONDS="0.1",
        NICOBOT_PIPELINE__SEND_BACKOFF_MAX_SECONDS="0.5",
    )
    gateway.control("down", mode="drop")
    numbers = [f"54911000008{n:02d}" for n in range(4)]
    for number in numbers:
        assert gateway.deliver(f"{number} m0", number)["answer"]["accepted"] == 1

    def many_attempts() -> bool:
        with server.client() as api:
            pending = api.get("/api/outbox", params={"status": "pending"}).json()["outbox"]
        return len(pending) == len(numbers) and all(e["attempts"] >= 10 for e in pending)

    wait_until("ten attempts each while the gateway is down", many_attempts, timeout=DEADLINE)
    assert gateway.sent() == []
    gateway.control("down", mode=None)
    wait_until("every reply", lambda: len(gateway.sent()) >= len(numbers), timeout=DEADLINE)
    for number in numbers:
        assert gateway.texts_to(number) == [f"Echo: {number} m0"]
    with server.client() as api:
        assert api.get("/api/outbox", params={"status": "failed"}).json()["outbox"] == []


def test_customers_who_wrote_while_nicobot_was_down_are_answered_once(start, gateway):
    """nicobot stops; customers write meanwhile (the gateway stores their messages, its
    webhook calls fail); on start nicobot fetches them with findMessages, and the
    gateway's late retries of the same messages are duplicates. The limits are scaled
    down: messages a few seconds old count as late (the old rule dropped them)."""
    limits = {
        "NICOBOT_CHANNELS__WHATSAPP__MAX_MESSAGE_AGE_SECONDS": "1",
        "NICOBOT_PIPELINE__DELAYED_REPLY_SECONDS": "1",
    }
    server = start(**limits)
    first = "5491100000901"
    assert gateway.deliver("before", first)["answer"]["accepted"] == 1
    wait_until("the first reply", lambda: gateway.texts_to(first))
    server.stop()
    numbers = [f"54911000009{n:02d}" for n in range(10, 14)]
    for n, number in enumerate(numbers[:3]):
        gateway.control("store-message", text=f"{number} missed", number=number, message_id=f"m{n}")
    [refused] = gateway.control("deliver", text="retried", number=numbers[3], message_id="r1")
    assert refused["status"] is None  # nicobot is down: the webhook call failed
    restarted = start(**limits)
    wait_until(
        "the missed messages fetched",
        lambda: "queued 4 WhatsApp messages" in restarted.log_path.read_text(),
        timeout=DEADLINE,
    )
    # the gateway's retries arrive after the restart, late: duplicates
    retried = gateway.deliver("retried", numbers[3], message_id="r1")
    assert retried["status"] == 200 and retried["answer"]["accepted"] == 0, retried
    for n, number in enumerate(numbers[:3]):
        gateway.deliver(f"{number} missed", number, message_id=f"m{n}")
    expected = {
        **{number: f"{number} missed" for number in numbers[:3]},
        numbers[3]: "retried",
    }
    wait_until(
        "every missed message answered",
        lambda: all(gateway.texts_to(number) for number in numbers),
        timeout=DEADLINE,
    )
    for number, text in expected.items():
        assert gateway.texts_to(number) == [f"Sorry for the late reply.\n\nEcho: {text}"]
    assert len(gateway.texts_to(first)) == 1
    assert "Unclosed" not in restarted.log_path.read_text(), "the first stop closed its clients"


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
    # a reply caught between the gateway accepting it and nicobot recording it is found
    # with findMessages after the restart, not sent again: every reply goes exactly once
    for number in numbers:
        assert gateway.texts_to(number) == [f"Echo: {number} k{n}" for n in range(8)]
    assert metric(restarted, "nicobot_resends_after_crash_total", channel="whatsapp") == 0


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
