"""Live pages: ``GET /api/events``, a server-sent event stream.

Events come from the store's change log (:meth:`nicobot.Store.changes_since`), polled
by each stream, so a page sees what every worker sharing the store did. Channel states
come from the channels themselves, asked by one watcher per process while any page
listens. An event's ``id`` is its change id: a browser that reconnects sends it back as
``Last-Event-ID`` and misses nothing; one that comes back too late gets ``reset``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import threading
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from quart import Blueprint, Quart, current_app, make_response, request

from .auth import admin_required

if TYPE_CHECKING:
    from ..bot import Bot

log = logging.getLogger("nicobot.events")
blueprint = Blueprint("events", __name__)

POLL_SECONDS = 0.5
CHANNEL_POLL_SECONDS = 4.0
HEARTBEAT_SECONDS = 15.0
#: A stream ends after this long; the browser reconnects at once where it left off.
STREAM_SECONDS = 300.0
RETRY_MILLISECONDS = 2000
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def sse(event: str, data: Any, event_id: int | None = None) -> str:
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append("data: " + json.dumps(data, ensure_ascii=False))
    return "\n".join(lines) + "\n\n"


class ChannelWatch:
    """The channels' statuses, asked every few seconds while some page listens."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self.statuses: dict[str, dict[str, Any]] = {}
        self.version = 0
        self.listeners = 0
        self._task: asyncio.Task[None] | None = None
        self.changed = asyncio.Event()

    def join(self) -> None:
        self.listeners += 1
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._watch(), name="channel-watch")

    def leave(self) -> None:
        self.listeners -= 1
        if self.listeners <= 0 and self._task is not None:
            self._task.cancel()
            self._task = None

    async def _watch(self) -> None:
        while True:
            try:
                found = {
                    name: status.to_dict()
                    for name, status in (await self.bot.channels.statuses()).items()
                }
            except Exception:
                log.exception("could not read the channels' statuses")
                found = self.statuses
            if found != self.statuses:
                self.statuses = found
                self.version += 1
                self.changed.set()
                self.changed = asyncio.Event()
            await asyncio.sleep(CHANNEL_POLL_SECONDS)


class LiveStreams:
    """What the streams of one process share: the channel watcher and the closing flag."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self.channels = ChannelWatch(bot)
        #: Set when the server begins to stop, so that open streams end at once.
        self.closing = False

    def close(self) -> None:
        self.closing = True


def install(app: Quart, bot: Bot) -> None:
    """Add the event stream to ``app``; open streams end as soon as a stop signal comes."""
    streams = LiveStreams(bot)
    app.extensions["nicobot_live"] = streams
    app.register_blueprint(blueprint)
    chained: dict[int, Any] = {}

    @app.before_serving
    async def end_streams_on_stop_signals() -> None:
        # The server (uvicorn, in one process or in each worker) installed its signal
        # handlers before starting the app, and waits for open responses once a signal
        # came: an endless stream would hold the stop for its whole grace period.
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in STOP_SIGNALS:
            previous = signal.getsignal(sig)
            if callable(previous):
                chained[sig] = previous
                signal.signal(sig, _closing_first(streams, previous))

    @app.after_serving
    async def restore_signal_handlers() -> None:
        for sig, previous in chained.items():
            signal.signal(sig, previous)
        chained.clear()


def _closing_first(streams: LiveStreams, previous: Any) -> Any:
    def handler(sig: int, frame: Any) -> None:
        streams.close()
        previous(sig, frame)

    return handler


def live_streams() -> LiveStreams:
    streams: LiveStreams = current_app.extensions["nicobot_live"]
    return streams


def _cursor_arg() -> int | None:
    raw = request.headers.get("Last-Event-ID") or request.args.get("after")
    if raw is None or not raw.strip().isdigit():
        return None
    return int(raw.strip())


async def _events(streams: LiveStreams, after: int | None) -> AsyncIterator[str]:
    store = streams.bot.store
    latest = await store.latest_change()
    cursor = latest if after is None or after > latest else after
    yield f"retry: {RETRY_MILLISECONDS}\n\n"
    if after is not None and after < latest and after + 1 < await store.oldest_change():
        yield sse("reset", {"cursor": latest}, latest)
        cursor = latest
    yield sse("hello", {"cursor": cursor}, cursor)
    watch = streams.channels
    watch.join()
    seen_channels = watch.version
    started = last_sent = time.monotonic()
    try:
        if watch.statuses:
            yield sse("channels", watch.statuses)
        while not streams.closing and time.monotonic() - started < STREAM_SECONDS:
            for change in await store.changes_since(cursor):
                cursor = change.id
                last_sent = time.monotonic()
                yield sse("change", change.to_dict(), change.id)
            if watch.version != seen_channels:
                seen_channels = watch.version
                last_sent = time.monotonic()
                yield sse("channels", watch.statuses)
            if time.monotonic() - last_sent > HEARTBEAT_SECONDS:
                last_sent = time.monotonic()
                yield ": ping\n\n"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(watch.changed.wait(), POLL_SECONDS)
    finally:
        watch.leave()


@blueprint.get("/api/events")
@admin_required
async def events() -> Any:
    """Server-sent events: ``change`` (new messages, delivery states, pauses,
    deletions), ``channels`` (every channel's status when one changes), ``hello`` and
    ``reset`` (reload everything)."""
    streams = live_streams()
    response = await make_response(
        _events(streams, _cursor_arg()),
        200,
        {
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        },
    )
    response.timeout = None  # type: ignore[union-attr]
    return response
