"""shutdown: awaited when the server stops, after queued notifications, with the store open."""

from __future__ import annotations

import asyncio

from nicobot import IncomingMessage, hookimpl
from nicobot.app import create_app
from nicobot.config import load_settings
from nicobot.plugins import make_plugin_manager
from nicobot.testing import make_project


class Recorder:
    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl
    async def reply_sent(self, message):
        await asyncio.sleep(0.05)  # still queued when the server begins to stop
        self.seen.append(f"reply_sent {message.text}")

    @hookimpl
    async def shutdown(self, bot):
        sessions = await bot.store.list_sessions()
        self.seen.append(f"shutdown with {len(sessions)} session(s)")


class Raises:
    @hookimpl
    def shutdown(self, bot):
        raise RuntimeError("boom")


async def test_hook_shutdown(tmp_path, caplog):
    project = make_project(tmp_path / "p")
    settings = load_settings(project, environ={"NICOBOT_LLM__PROCESS": "inline"})
    pm = make_plugin_manager(load_entry_points=False)
    recorder = Recorder()
    pm.register(recorder, name="recorder")
    pm.register(Raises(), name="raiser")
    app = create_app(settings, pm=pm)
    async with app.test_app():
        bot = app.extensions["nicobot"]
        turn = await bot.converse(IncomingMessage("simulator", "5550001", "hours?", "m-1"))
        assert recorder.seen == []
    assert recorder.seen == [f"reply_sent {turn.reply}", "shutdown with 1 session(s)"]
    assert "plugin 'raiser': shutdown failed" in caplog.text
