"""The durable pipeline in one process: ordering, dedup, retries, debounce, handoff, pacing;
on every store (``store_env``, parametrised in conftest.py)."""

from __future__ import annotations

import asyncio
import os

import pytest

from nicobot import hookimpl
from nicobot.rag.chroma_store import ChromaKnowledgeBase
from nicobot.testing import FAKE_SECRET

HEADERS = {"Authorization": "", "X-Fake-Secret": FAKE_SECRET}


@pytest.fixture
def nicobot_env(fake_llm, store_env):
    return {**fake_llm.env, **store_env, "NICOBOT_PIPELINE__SEND_BACKOFF_SECONDS": "0.01"}


async def eventually(what: str, check, within: float = 20.0) -> None:
    """Poll the async ``check`` until it is true (the store is polled: no event to await)."""
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def deliver(client, message_id: str, address: str, text: str, **extra) -> dict:
    response = await client.post(
        "/api/webhooks/fake",
        json={"id": message_id, "address": address, "text": text, **extra},
        headers=HEADERS,
    )
    assert response.status_code == 200
    return await response.get_json()


async def test_every_message_answered_once_and_in_order(nicobot_client, nicobot_bot, fake_channel):
    deliveries = []
    for n in range(10):
        for conversation in range(5):
            address = f"54911000000{conversation:02d}"
            deliveries.append(deliver(nicobot_client, f"{address}-{n}", address, f"msg {n}"))
            if n % 3 == 0:
                deliveries.append(deliver(nicobot_client, f"{address}-{n}", address, f"msg {n}"))
    results = await asyncio.gather(*deliveries)
    assert sum(r["accepted"] for r in results) == 50
    assert sum(r["duplicates"] for r in results) == len(results) - 50
    await nicobot_bot.pipeline.wait_idle(30)
    by_address: dict[str, list[str]] = {}
    for message in fake_channel.sent:
        by_address.setdefault(message.address, []).append(message.text)
    assert len(by_address) == 5
    for texts in by_address.values():
        assert texts == [f"Echo: msg {n}" for n in range(10)]


async def test_the_webhook_answers_before_the_llm_does(
    nicobot_client, nicobot_bot, fake_channel, fake_llm
):
    fake_llm.latency = 1.5
    result = await deliver(nicobot_client, "slow-1", "5491100000001", "hola")
    assert result["accepted"] == 1
    assert fake_channel.sent == []  # the webhook did not wait for the model
    async with asyncio.timeout(30):
        sent = await fake_channel.wait_for_sent(1)
    assert [m.text for m in sent] == ["Echo: hola"]


async def test_failed_sends_are_retried_then_kept_and_can_be_retried(
    nicobot_client, nicobot_bot, fake_channel
):
    fake_channel.fail_sends = 3
    await deliver(nicobot_client, "down-1", "5491100000002", "hola")
    await nicobot_bot.pipeline.wait_idle(20)
    assert [m.text for m in fake_channel.sent] == ["Echo: hola"]

    nicobot_bot.settings.pipeline.send_attempts = 2
    fake_channel.fail_sends = 5
    await deliver(nicobot_client, "down-2", "5491100000002", "otra")
    await nicobot_bot.pipeline.wait_idle(20)
    failed = (await (await nicobot_client.get("/api/outbox?status=failed")).get_json())["outbox"]
    assert [(e["text"], e["attempts"]) for e in failed] == [("Echo: otra", 2)]
    assert "fake channel is down" in failed[0]["last_error"]
    fake_channel.fail_sends = 0
    retried = await nicobot_client.post(f"/api/outbox/{failed[0]['id']}/retry")
    assert retried.status_code == 200
    await nicobot_bot.pipeline.wait_idle(20)
    assert [m.text for m in fake_channel.sent] == ["Echo: hola", "Echo: otra"]
    again = await nicobot_client.post(f"/api/outbox/{failed[0]['id']}/retry")
    assert again.status_code == 404
    metrics = await (await nicobot_client.get("/metrics")).get_data(as_text=True)
    assert 'nicobot_send_failures_total{channel="fake"} 5.0' in metrics
    assert 'nicobot_sends_given_up_total{channel="fake"} 1.0' in metrics


async def test_replies_in_one_conversation_leave_in_order_even_after_a_failure(
    nicobot_client, nicobot_bot, fake_channel
):
    fake_channel.fail_sends = 2
    for n in range(3):
        await deliver(nicobot_client, f"ord-{n}", "5491100000003", f"m{n}")
    await nicobot_bot.pipeline.wait_idle(20)
    assert [m.text for m in fake_channel.sent] == ["Echo: m0", "Echo: m1", "Echo: m2"]


async def test_long_replies_are_split_on_paragraphs(
    nicobot_client, nicobot_bot, fake_channel, fake_llm
):
    paragraphs = [f"Paragraph {n}: " + "word " * 300 for n in range(5)]
    fake_llm.reply = lambda messages: "\n\n".join(paragraphs)
    await deliver(nicobot_client, "long-1", "5491100000004", "tell me everything")
    await nicobot_bot.pipeline.wait_idle(20)
    parts = [m.text for m in fake_channel.sent]
    assert len(parts) > 1
    assert all(len(p) <= 4096 for p in parts)
    assert parts[0].startswith("Paragraph 0")
    assert "\n\n".join(parts).split() == "\n\n".join(paragraphs).split()


async def test_an_operator_message_pauses_the_bot(nicobot_client, nicobot_bot, fake_channel):
    operator = await deliver(
        nicobot_client, "op-1", "5491100000005", "Hola, soy Marta de la tienda", from_business=True
    )
    assert operator["accepted"] == 1
    [session] = await nicobot_bot.store.list_sessions(channel="fake")
    assert session.paused
    await deliver(nicobot_client, "c-1", "5491100000005", "gracias Marta")
    await nicobot_bot.pipeline.wait_idle(20)
    assert fake_channel.sent == []
    roles = [m.role.value for m in await nicobot_bot.store.list_messages(session.id)]
    assert roles == ["operator", "user"]
    listing = (await (await nicobot_client.get("/api/sessions")).get_json())["sessions"]
    assert listing[0]["paused"] is True
    resumed = await nicobot_client.post(f"/api/sessions/{session.id}/resume")
    assert (await resumed.get_json())["paused"] is False
    await deliver(nicobot_client, "c-2", "5491100000005", "una pregunta más")
    await nicobot_bot.pipeline.wait_idle(20)
    assert [m.text for m in fake_channel.sent] == ["Echo: una pregunta más"]


async def test_the_echo_of_our_own_reply_is_not_an_operator(
    nicobot_client, nicobot_bot, fake_channel
):
    await deliver(nicobot_client, "e-1", "5491100000006", "hola")
    await nicobot_bot.pipeline.wait_idle(20)
    [sent] = fake_channel.sent
    echo = await deliver(nicobot_client, "sent-1", "5491100000006", sent.text, from_business=True)
    assert echo["accepted"] == 0
    [session] = await nicobot_bot.store.list_sessions(channel="fake")
    assert not session.paused


async def test_admin_can_pause_and_resume(nicobot_client, nicobot_bot, fake_channel):
    await deliver(nicobot_client, "p-1", "5491100000007", "hola")
    await nicobot_bot.pipeline.wait_idle(20)
    [session] = await nicobot_bot.store.list_sessions(channel="fake")
    paused = await nicobot_client.post(f"/api/sessions/{session.id}/pause", json={"minutes": 5})
    assert (await paused.get_json())["paused"] is True
    await deliver(nicobot_client, "p-2", "5491100000007", "¿hay alguien?")
    await nicobot_bot.pipeline.wait_idle(20)
    assert len(fake_channel.sent) == 1
    bad = await nicobot_client.post(f"/api/sessions/{session.id}/pause", json={"minutes": -1})
    assert bad.status_code == 400
    assert (await nicobot_client.post("/api/sessions/nope/pause")).status_code == 404


async def test_asking_for_a_person_hands_over(nicobot_client, nicobot_bot, fake_channel, fake_llm):
    await deliver(nicobot_client, "h-1", "5491100000008", "I want to talk to a person please")
    await nicobot_bot.pipeline.wait_idle(20)
    assert [m.text for m in fake_channel.sent] == [
        "Got it, I'll pass you on to a person from our team."
    ]
    assert fake_llm.requests == []
    [session] = await nicobot_bot.store.list_sessions(channel="fake")
    assert session.paused


async def test_non_text_gets_one_kind_reply_per_interval(nicobot_bot, fake_channel):
    from nicobot import IncomingMessage, MessageKind

    for n in range(3):
        await nicobot_bot.submit(
            IncomingMessage(
                channel="fake",
                address="5491100000009",
                text="",
                message_id=f"audio-{n}",
                kind=MessageKind.AUDIO,
            )
        )
    await nicobot_bot.pipeline.wait_idle(20)
    assert [m.text for m in fake_channel.sent] == [
        "Sorry, I can only read text messages for now. Could you write it to me?"
    ]


class TestDebounce:
    @pytest.fixture
    def nicobot_env(self, fake_llm, store_env):
        return {**fake_llm.env, **store_env, "NICOBOT_CHANNELS__FAKE__DEBOUNCE_SECONDS": "0.5"}

    async def test_a_burst_gets_one_reply(self, nicobot_client, nicobot_bot, fake_channel):
        for n, text in enumerate(["hola", "una consulta", "¿abren el domingo?"]):
            await deliver(nicobot_client, f"b-{n}", "5491100000010", text)
        await nicobot_bot.pipeline.wait_idle(20)
        assert [m.text for m in fake_channel.sent] == [
            "Echo: hola\nuna consulta\n¿abren el domingo?"
        ]


async def test_work_of_a_dead_process_is_resumed(nicobot_bot, fake_channel):
    from nicobot import IncomingMessage

    await nicobot_bot.store.enqueue(
        IncomingMessage(channel="fake", address="5491100000011", text="perdido", message_id="x1"),
        debounce=0,
        max_wait=0,
    )
    import socket

    dead = f"{socket.gethostname()}:999999999:dead"
    assert len(await nicobot_bot.store.claim_turns(dead, 1, lease=3600)) == 1
    assert await nicobot_bot.store.workers_holding_work() == {dead}
    await nicobot_bot.pipeline.stop(1)
    from nicobot.pipeline import Pipeline

    nicobot_bot.pipeline = Pipeline(nicobot_bot)
    await nicobot_bot.pipeline.start()
    await nicobot_bot.pipeline.wait_idle(20)
    assert [m.text for m in fake_channel.sent] == ["Echo: perdido"]


@pytest.mark.parametrize("went_out", [True, False])
async def test_a_send_a_dead_process_had_in_flight_is_looked_up_first(
    nicobot_bot, fake_channel, went_out
):
    """Killed while sending: the platform may have the reply. The restarted pipeline
    asks the channel before sending it again."""
    from hook_support import DEAD_WORKER, answered_by_a_dead_worker
    from nicobot import SentCheck
    from nicobot.pipeline import Pipeline

    await nicobot_bot.pipeline.stop(1)
    store = nicobot_bot.store
    await answered_by_a_dead_worker(store, "5491100000012", "k1", "Echo: hola", ["Echo: hola"])
    [entry] = await store.claim_outbox(DEAD_WORKER, 1, lease=3600)  # then the process died
    fake_channel.sent_check = SentCheck.sent("P-1") if went_out else SentCheck.not_sent()
    nicobot_bot.pipeline = Pipeline(nicobot_bot)
    await nicobot_bot.pipeline.start()
    await nicobot_bot.pipeline.wait_idle(20)
    [(asked, since)] = fake_channel.checks
    assert asked.text == "Echo: hola" and since.timestamp() <= entry.first_attempt_at
    assert [m.text for m in fake_channel.sent] == ([] if went_out else ["Echo: hola"])
    [sent] = await store.list_outbox("sent")
    assert sent.id == entry.id and (sent.platform_id == "P-1") == went_out


class BrokenKnowledge(ChromaKnowledgeBase):
    """A real knowledge plugin whose search fails while ``failing`` is set (a failing
    hook would not do: hooks are isolated, their errors never fail a turn)."""

    name = "broken"
    failing = True
    calls = 0

    async def query(self, text, k=4):
        type(self).calls += 1
        if type(self).failing:
            raise RuntimeError("the knowledge base is broken")
        return await super().query(text, k)


class BrokenKnowledgePlugin:
    @hookimpl
    def register_knowledge_bases(self):
        return [BrokenKnowledge]


class TestPoisonTurns:
    @pytest.fixture
    def broken(self):
        BrokenKnowledge.failing, BrokenKnowledge.calls = True, 0
        return BrokenKnowledge

    @pytest.fixture
    async def nicobot_app(self, nicobot_project, fake_llm, broken):
        """The test app with the broken knowledge base, three attempts per turn."""
        from nicobot.app import create_app
        from nicobot.config import load_settings
        from nicobot.plugins import make_plugin_manager
        from nicobot.testing import FakeChannelPlugin

        environ = {
            **os.environ,
            **fake_llm.env,
            "NICOBOT_LLM__PROCESS": "inline",
            "NICOBOT_KNOWLEDGE__BACKEND": "broken",
            "NICOBOT_PIPELINE__TURN_ATTEMPTS": "3",
            "NICOBOT_PIPELINE__TURN_BACKOFF_SECONDS": "0.05",
        }
        settings = load_settings(nicobot_project, environ=environ)
        pm = make_plugin_manager()
        pm.register(FakeChannelPlugin(), name="nicobot-fake-channel")
        pm.register(BrokenKnowledgePlugin(), name="broken-knowledge")
        app = create_app(settings, pm=pm)
        async with app.test_app():
            yield app

    async def test_a_turn_that_always_raises_is_tried_turn_attempts_times(
        self, nicobot_client, nicobot_bot, fake_channel, fake_llm, broken
    ):
        await deliver(nicobot_client, "poison-1", "5491100000020", "hola")
        await nicobot_bot.pipeline.wait_idle(30)
        # nothing is left to run: the count cannot grow later
        assert broken.calls == 3
        assert fake_llm.requests == []  # it failed before the model was asked
        [apology] = [m.text for m in fake_channel.sent]
        assert apology.startswith("Sorry, I can't answer right now.")
        counts = await nicobot_bot.store.pipeline_counts()
        assert counts["turns_failed"] == 1
        assert counts["turns_pending"] == counts["turns_claimed"] == 0
        failed = (await (await nicobot_client.get("/api/turns/failed")).get_json())["turns"]
        assert [(t["text"], t["attempts"]) for t in failed] == [("hola", 3)]
        assert failed[0]["last_error"] == "RuntimeError: the knowledge base is broken"

        broken.failing = False
        retried = await nicobot_client.post(f"/api/turns/{failed[0]['id']}/retry")
        assert retried.status_code == 200
        await nicobot_bot.pipeline.wait_idle(30)
        assert [m.text for m in fake_channel.sent] == [apology, "Echo: hola"]
        again = await nicobot_client.post(f"/api/turns/{failed[0]['id']}/retry")
        assert again.status_code == 404
        assert (await (await nicobot_client.get("/api/turns/failed")).get_json())["turns"] == []
        metrics = await (await nicobot_client.get("/metrics")).get_data(as_text=True)
        assert 'nicobot_turn_failures_total{channel="fake"} 3.0' in metrics
        assert 'nicobot_turns_failed_total{channel="fake"} 1.0' in metrics


async def test_a_permanent_refusal_fails_at_once_and_retry_after_is_obeyed(
    nicobot_client, nicobot_bot, fake_channel
):
    from nicobot import PermanentSendError, RetryLater

    fake_channel.failures = [PermanentSendError("5491100000030 is not on WhatsApp")]
    await deliver(nicobot_client, "perm-1", "5491100000030", "hola")
    await nicobot_bot.pipeline.wait_idle(20)
    assert fake_channel.sent == []
    [failed] = await nicobot_bot.store.list_outbox("failed")
    assert failed.attempts == 1
    assert failed.last_error == "PermanentSendError: 5491100000030 is not on WhatsApp"

    fake_channel.failures = [RetryLater("slow down", 3600)]
    await deliver(nicobot_client, "later-1", "5491100000031", "hola")

    async def waiting() -> bool:
        # pending from the start: it waits once the first attempt was refused
        return any(entry.attempts for entry in await nicobot_bot.store.list_outbox("pending"))

    await eventually("the reply to wait", waiting)
    assert await nicobot_bot.store.claim_outbox("probe", 5, lease=1) == []  # waits an hour
    assert fake_channel.sent == []


class TestOutage:
    @pytest.fixture
    def nicobot_env(self, fake_llm):
        return {
            **fake_llm.env,
            "NICOBOT_PIPELINE__SEND_BACKOFF_SECONDS": "600",
            "NICOBOT_PIPELINE__SEND_BACKOFF_MAX_SECONDS": "3600",
        }

    async def test_waiting_replies_go_out_when_the_channel_reconnects(
        self, nicobot_client, nicobot_bot, fake_channel
    ):
        fake_channel.fail_sends = 3
        for n in range(3):
            await deliver(nicobot_client, f"out-{n}", f"54911000000{40 + n}", f"m{n}")

        async def all_waiting() -> bool:
            pending = await nicobot_bot.store.list_outbox("pending")
            return len(pending) == 3 and all(entry.attempts == 1 for entry in pending)

        await eventually("three failed sends waiting to retry", all_waiting)
        assert fake_channel.fail_sends == 0 and fake_channel.sent == []
        # every retry is minutes away; the channel coming back sends them now
        await fake_channel.connect()
        await nicobot_bot.pipeline.wait_idle(20)
        assert sorted(m.text for m in fake_channel.sent) == ["Echo: m0", "Echo: m1", "Echo: m2"]
        assert await nicobot_bot.store.list_outbox("failed") == []


@pytest.mark.parametrize("found", ["sent", "not_sent", "unknown", "cannot_ask"])
async def test_a_send_of_unknown_outcome_is_reconciled_before_any_resend(
    nicobot_client, nicobot_bot, fake_channel, found
):
    from nicobot import SendOutcomeUnknown, SentCheck

    fake_channel.failures = [SendOutcomeUnknown("no answer within 15 s")]
    fake_channel.sent_check = {
        "sent": SentCheck.sent("GATEWAY-ID-1"),
        "not_sent": SentCheck.not_sent(),
        "unknown": None,  # the base class: cannot tell
        "cannot_ask": ConnectionError("gateway unreachable"),
    }[found]
    await deliver(nicobot_client, f"unk-{found}", "5491100000050", "hola")
    if found == "cannot_ask":

        async def asked_twice() -> bool:
            return len(fake_channel.checks) >= 2

        await eventually("a second check", asked_twice)
        assert fake_channel.sent == []  # never sent again while it cannot be checked
        fake_channel.sent_check = SentCheck.not_sent()
    await nicobot_bot.pipeline.wait_idle(20)
    message, since = fake_channel.checks[-1]
    assert (message.address, message.text) == ("5491100000050", "Echo: hola")
    [entry] = await nicobot_bot.store.list_outbox("sent")
    assert since.timestamp() <= entry.first_attempt_at
    if found == "sent":
        assert fake_channel.sent == []
        assert entry.platform_id == "GATEWAY-ID-1"
    else:
        assert [m.text for m in fake_channel.sent] == ["Echo: hola"]
    metrics = await (await nicobot_client.get("/metrics")).get_data(as_text=True)
    resent = 'nicobot_resends_after_crash_total{channel="fake"} 1.0' in metrics
    assert resent == (found == "unknown")


async def test_a_reply_undelivered_for_the_maximum_age_is_kept_as_failed(
    nicobot_client, nicobot_bot, fake_channel
):
    nicobot_bot.settings.pipeline.send_max_age_seconds = 0.3
    fake_channel.fail_sends = 1000
    await deliver(nicobot_client, "age-1", "5491100000051", "hola")
    await nicobot_bot.pipeline.wait_idle(20)
    [failed] = await nicobot_bot.store.list_outbox("failed")
    assert failed.last_error.startswith("gave up (not delivered within 0.3 s): ConnectionError")
    assert failed.attempts > 1
