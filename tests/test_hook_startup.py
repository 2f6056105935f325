"""startup: awaited when the server starts, with the store open; a failing plugin is logged."""

from __future__ import annotations

import pytest

from nicobot import hookimpl
from nicobot.testing import FakeChannelPlugin


class Recorder:
    def __init__(self) -> None:
        self.seen: list[object] = []

    @hookimpl
    async def startup(self, bot):
        self.seen.append(await bot.store.get_setting("bot.prompt"))


class Raises:
    @hookimpl
    def startup(self, bot):
        raise RuntimeError("boom")


RECORDER = Recorder()


@pytest.fixture
def nicobot_plugins():
    RECORDER.seen.clear()
    return [FakeChannelPlugin(), (Raises(), "raiser"), (RECORDER, "recorder")]


async def test_hook_startup(nicobot_client, caplog):
    assert RECORDER.seen == [None]  # called once, and the store answered
    logged = [r.getMessage() for r in caplog.get_records("setup")]
    assert "plugin 'raiser': startup failed; the others carry on" in logged
    assert (await nicobot_client.get("/healthz")).status_code == 200
