"""message_received: once per stored customer message (paused conversations too), with the
platform's payload, in the background: a slow, failing or hanging plugin delays no reply."""

from __future__ import annotations

import asyncio

import pytest

from hook_support import deliver
from nicobot import hookimpl
from nicobot.testing import FakeChannelPlugin


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, object]] = []

    @hookimpl
    def message_received(self, bot, session, message):
        self.seen.append((session.address, message.text, message.raw))


class Slow:
    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.finished = 0

    @hookimpl
    async def message_received(self, message):
        await self.release.wait()
        self.finished += 1


class Raises:
    @hookimpl
    def message_received(self, message):
        raise RuntimeError("boom")


class Hangs:
    @hookimpl
    async def message_received(self, message):
        await asyncio.Event().wait()


RECORDER = Recorder()


@pytest.fixture
def nicobot_env(fake_llm):
    return fake_llm.env


@pytest.fixture
def nicobot_plugins():
    RECORDER.seen.clear()
    return [FakeChannelPlugin(), (RECORDER, "recorder")]


async def test_hook_message_received(nicobot_client, nicobot_bot, fake_channel):
    await deliver(nicobot_client, "m-1", "5550001", "hola", name="Ana")
    await deliver(nicobot_client, "m-1", "5550001", "hola", name="Ana")  # a duplicate
    await nicobot_bot.pipeline.wait_idle(20)
    await nicobot_bot.notifications.drain(5)
    body = {"id": "m-1", "address": "5550001", "text": "hola", "name": "Ana"}
    assert RECORDER.seen == [("5550001", "hola", body)]


async def test_it_fires_in_a_paused_conversation(nicobot_client, nicobot_bot, fake_channel):
    await deliver(nicobot_client, "m-1", "5550002", "hola")
    await nicobot_bot.pipeline.wait_idle(20)
    [session] = await nicobot_bot.store.list_sessions(channel="fake")
    assert await nicobot_bot.pause(session.id)
    await deliver(nicobot_client, "m-2", "5550002", "¿hay alguien?")
    await nicobot_bot.pipeline.wait_idle(20)
    await nicobot_bot.notifications.drain(5)
    assert [text for _, text, _ in RECORDER.seen] == ["hola", "¿hay alguien?"]
    assert [m.text for m in fake_channel.sent] == ["Echo: hola"]


SLOW = Slow()


@pytest.mark.parametrize("nicobot_plugins", [[FakeChannelPlugin(), (SLOW, "slow")]])
async def test_a_slow_plugin_does_not_delay_the_reply(nicobot_client, nicobot_bot, fake_channel):
    await deliver(nicobot_client, "m-1", "5550003", "hola")
    async with asyncio.timeout(20):
        [sent] = await fake_channel.wait_for_sent(1)
    assert sent.text == "Echo: hola"
    assert SLOW.finished == 0  # the reply went out while the plugin was still busy
    SLOW.release.set()
    await nicobot_bot.notifications.drain(5)
    assert SLOW.finished == 1


class TestIsolation:
    @pytest.fixture
    def nicobot_env(self, fake_llm):
        return {**fake_llm.env, "NICOBOT_PLUGINS__HOOK_TIMEOUT_SECONDS": "0.2"}

    @pytest.fixture
    def nicobot_plugins(self):
        RECORDER.seen.clear()
        plugins = [(RECORDER, "recorder"), (Raises(), "raiser"), (Hangs(), "hanger")]
        return [FakeChannelPlugin(), *plugins]

    async def test_failing_and_hanging_plugins_are_logged_by_name(
        self, nicobot_client, nicobot_bot, fake_channel, caplog
    ):
        for n in range(2):
            await deliver(nicobot_client, f"m-{n}", "5550004", f"hola {n}")
        async with asyncio.timeout(20):
            sent = await fake_channel.wait_for_sent(2)
        assert [m.text for m in sent] == ["Echo: hola 0", "Echo: hola 1"]
        await nicobot_bot.notifications.drain(5)
        assert [text for _, text, _ in RECORDER.seen] == ["hola 0", "hola 1"]
        assert caplog.text.count("plugin 'raiser': message_received failed") == 2
        assert caplog.text.count("plugin 'hanger': message_received took longer than 0.2 s") == 2
