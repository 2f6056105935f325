"""reply_sent: once per reply, after its last part, with the parts as the channel sent them."""

from __future__ import annotations

import asyncio

import pytest

from hook_support import DEAD_WORKER, answered_by_a_dead_worker, deliver
from nicobot import IncomingMessage, hookimpl
from nicobot.testing import FakeChannelPlugin


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, list[str]]] = []

    @hookimpl
    async def reply_sent(self, bot, session, message, parts):
        self.seen.append((message.channel, message.text, parts))


class Raises:
    @hookimpl
    def reply_sent(self, message):
        raise RuntimeError("boom")


RECORDER = Recorder()


@pytest.fixture
def nicobot_env(fake_llm):
    return {
        **fake_llm.env,
        "NICOBOT_PIPELINE__SEND_BACKOFF_SECONDS": "0.01",
        "NICOBOT_PIPELINE__SEND_ATTEMPTS": "3",
    }


@pytest.fixture
def nicobot_plugins():
    RECORDER.seen.clear()
    return [FakeChannelPlugin(), (RECORDER, "recorder"), (Raises(), "raiser")]


async def test_hook_reply_sent(nicobot_client, nicobot_bot, fake_channel, fake_llm, caplog):
    paragraphs = [f"Paragraph {n}: " + "word " * 300 for n in range(5)]
    fake_llm.reply = lambda messages: "\n\n".join(paragraphs)
    fake_channel.fail_sends = 1  # the first part is retried: still one notification
    await deliver(nicobot_client, "long-1", "5550001", "tell me everything")
    await nicobot_bot.pipeline.wait_idle(20)
    await nicobot_bot.notifications.drain(5)
    parts = [m.text for m in fake_channel.sent]
    assert len(parts) > 1
    [(channel, text, reported)] = RECORDER.seen
    assert (channel, reported) == ("fake", parts)
    assert text == "\n\n".join(paragraphs).strip()
    assert "plugin 'raiser': reply_sent failed" in caplog.text


async def test_a_local_channel_reports_its_reply_once(nicobot_bot):
    turn = await nicobot_bot.converse(IncomingMessage("simulator", "5550002", "hola", "m-1"))
    await nicobot_bot.notifications.drain(5)
    assert RECORDER.seen == [("simulator", turn.reply, [turn.reply])]


async def test_a_reply_that_never_left_is_not_reported(nicobot_client, nicobot_bot, fake_channel):
    fake_channel.fail_sends = 3  # every attempt
    await deliver(nicobot_client, "m-1", "5550003", "first")
    await nicobot_bot.pipeline.wait_idle(30)
    fake_channel.fail_sends = 0
    await deliver(nicobot_client, "m-2", "5550003", "second")
    async with asyncio.timeout(20):
        await fake_channel.wait_for_sent(1)
    await nicobot_bot.pipeline.wait_idle(20)
    await nicobot_bot.notifications.drain(5)
    assert [text for _, text, _ in RECORDER.seen] == ["Echo: second"]


async def test_a_reply_another_process_queued_is_reported_once_when_whole(
    nicobot_bot, fake_channel
):
    """Queued by a worker that died (or by another worker): this process never saw the
    reply being stored, and reports it once its last part is sent, from the store."""
    from nicobot.pipeline import Pipeline

    await nicobot_bot.pipeline.stop(1)
    store = nicobot_bot.store
    parts = ["First part.", "Second part.", "Third part."]
    await answered_by_a_dead_worker(
        store, "5550009", "other-1", "First part. Second part. Third part.", parts
    )
    await store.release_worker(DEAD_WORKER)
    nicobot_bot.pipeline = Pipeline(nicobot_bot)
    await nicobot_bot.pipeline.start()
    await nicobot_bot.pipeline.wait_idle(20)
    await nicobot_bot.notifications.drain(5)
    assert [m.text for m in fake_channel.sent] == parts
    assert RECORDER.seen == [("fake", "First part. Second part. Third part.", parts)]
