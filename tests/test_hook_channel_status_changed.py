"""channel_status_changed: what a channel reports reaches plugins; their errors never reach it."""

from __future__ import annotations

import pytest

from nicobot import hookimpl
from nicobot.testing import FakeChannelPlugin


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    @hookimpl
    def channel_status_changed(self, bot, channel, status):
        self.seen.append((channel.name, status.state))


class Raises:
    @hookimpl
    async def channel_status_changed(self, status):
        raise RuntimeError("boom")


RECORDER = Recorder()


@pytest.fixture
def nicobot_plugins():
    RECORDER.seen.clear()
    return [FakeChannelPlugin(), (Raises(), "raiser"), (RECORDER, "recorder")]


async def test_hook_channel_status_changed(nicobot_bot, fake_channel, caplog):
    status = await fake_channel.connect()  # reports its new status; the raiser does not stop it
    assert status.connected
    await nicobot_bot.notifications.drain(5)
    assert RECORDER.seen == [("fake", "connected")]
    assert "plugin 'raiser': channel_status_changed failed" in caplog.text
