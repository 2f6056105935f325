"""Calling the runtime hooks: each implementation on its own, isolated and time-limited.

- ``run_each`` awaits every implementation in pluggy's call order (``startup``,
  ``shutdown``, ``before_reply``); ``chain`` passes each one the previous one's value
  (``after_reply``); ``first`` stops at the first text (``transcribe_audio``);
  ``Notifications.emit`` queues a notification for each plugin and
  returns at once (``message_received``, ``reply_sent``, ``channel_status_changed``).
- An implementation that raises, or takes longer than the time limit, is logged with
  its plugin's name and skipped; the other plugins and the caller carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from dataclasses import dataclass, field
from typing import Any, Literal

import pluggy

log = logging.getLogger("nicobot.plugins")

#: Notifications waiting for one plugin beyond this are dropped (and logged).
MAX_PENDING_NOTIFICATIONS = 1000


class _Failed:
    """The result of an implementation that raised or timed out."""


FAILED = _Failed()


def implementations(pm: pluggy.PluginManager, hook_name: str) -> list[pluggy.HookImpl]:
    """The hook's implementations in the order pluggy calls them: ``tryfirst`` ones,
    then the others from the last registered to the first, then ``trylast`` ones."""
    return list(reversed(getattr(pm.hook, hook_name).get_hookimpls()))


class HookRunner:
    """Runs hook implementations one by one with a time limit of ``timeout`` seconds."""

    def __init__(self, pm: pluggy.PluginManager, timeout: float) -> None:
        self.pm = pm
        self.timeout = timeout

    async def call(self, impl: pluggy.HookImpl, hook_name: str, kwargs: dict[str, Any]) -> Any:
        """One implementation's result, or FAILED (already logged)."""
        try:
            async with asyncio.timeout(self.timeout):
                result = impl.function(*[kwargs[name] for name in impl.argnames])
                if inspect.isawaitable(result):
                    result = await result
                return result
        except TimeoutError:
            log.error(
                "plugin %r: %s took longer than %.1f s; it was cancelled "
                "([plugins] hook_timeout_seconds)",
                impl.plugin_name,
                hook_name,
                self.timeout,
            )
        except Exception:
            log.exception("plugin %r: %s failed; the others carry on", impl.plugin_name, hook_name)
        return FAILED

    async def run_each(self, hook_name: str, **kwargs: Any) -> None:
        for impl in implementations(self.pm, hook_name):
            await self.call(impl, hook_name, kwargs)

    async def first(self, hook_name: str, **kwargs: Any) -> str | None:
        """Ask implementations in turn until one returns a non-empty string; return it."""
        for impl in implementations(self.pm, hook_name):
            result = await self.call(impl, hook_name, kwargs)
            if isinstance(result, str) and result.strip():
                return result.strip()
        return None

    async def chain(self, hook_name: str, value_name: str, **kwargs: Any) -> Any:
        """Give each implementation the value the previous one returned (None keeps it);
        return the last value."""
        value = kwargs[value_name]
        for impl in implementations(self.pm, hook_name):
            result = await self.call(impl, hook_name, {**kwargs, value_name: value})
            if result is None or result is FAILED:
                continue
            if isinstance(result, type(value)) and (not isinstance(result, str) or result.strip()):
                value = result
            else:
                log.warning(
                    "plugin %r: %s returned %s, not a non-empty %s or None; ignored",
                    impl.plugin_name,
                    hook_name,
                    type(result).__name__,
                    type(value).__name__,
                )
        return value


@dataclass
class _PluginQueue:
    queue: asyncio.Queue[tuple[pluggy.HookImpl, str, dict[str, Any]]] = field(
        default_factory=lambda: asyncio.Queue(MAX_PENDING_NOTIFICATIONS)
    )
    worker: asyncio.Task[None] | None = None


class Notifications:
    """One ordered queue per plugin: a plugin sees notifications in the order the core
    emitted them, and a slow plugin holds up only its own later notifications."""

    def __init__(self, runner: HookRunner) -> None:
        self.runner = runner
        self._queues: dict[str, _PluginQueue] = {}
        self._closed = False

    def wanted(self, hook_name: str) -> bool:
        """Whether any plugin implements ``hook_name`` (so its arguments are worth
        gathering)."""
        return not self._closed and bool(implementations(self.runner.pm, hook_name))

    def emit(self, hook_name: str, **kwargs: Any) -> None:
        """Queue ``hook_name`` for each implementation; never raises, never waits."""
        if self._closed:
            return
        for impl in implementations(self.runner.pm, hook_name):
            pending = self._queue_for(impl.plugin_name)
            try:
                pending.queue.put_nowait((impl, hook_name, kwargs))
            except asyncio.QueueFull:
                log.error(
                    "plugin %r: %d notifications are waiting; dropped %s",
                    impl.plugin_name,
                    MAX_PENDING_NOTIFICATIONS,
                    hook_name,
                )

    def _queue_for(self, plugin_name: str) -> _PluginQueue:
        pending = self._queues.get(plugin_name)
        if pending is None:
            pending = self._queues[plugin_name] = _PluginQueue()
        if pending.worker is None:
            pending.worker = asyncio.create_task(
                self._work(pending), name=f"notifications:{plugin_name}"
            )
        return pending

    async def _work(self, pending: _PluginQueue) -> None:
        while True:
            impl, hook_name, kwargs = await pending.queue.get()
            try:
                await self.runner.call(impl, hook_name, kwargs)
            finally:
                pending.queue.task_done()

    async def drain(self, within: float) -> None:
        """Wait up to ``within`` seconds for what is queued to be delivered."""
        waits = [asyncio.create_task(p.queue.join()) for p in self._queues.values()]
        if not waits:
            return
        _done, late = await asyncio.wait(waits, timeout=within)
        for task in late:
            task.cancel()

    async def close(self, within: float) -> None:
        """Deliver what is queued (up to ``within`` seconds), then stop the workers."""
        await self.drain(within)
        self._closed = True
        workers = [p.worker for p in self._queues.values() if p.worker is not None]
        for worker in workers:
            worker.cancel()
        for worker in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    def pending(self) -> int:
        """Notifications queued and not yet taken by their plugin's worker."""
        return sum(p.queue.qsize() for p in self._queues.values())


@dataclass
class _OpenReply:
    text: str
    parts: list[str]
    delivered: int = 0


class ReplyParts:
    """Which delivered outbox parts complete which reply, so that ``reply_sent`` fires
    once per reply. A session's parts are delivered one at a time in the order they
    were queued; a part that never comes (it failed for good) is skipped over."""

    def __init__(self) -> None:
        self._open: dict[str, list[_OpenReply]] = {}

    def expect(self, session_id: str, text: str, parts: list[str]) -> None:
        self._open.setdefault(session_id, []).append(_OpenReply(text, list(parts)))

    def delivered(
        self, session_id: str, part: str
    ) -> tuple[str, list[str]] | Literal[False] | None:
        """``(reply, parts)`` once ``part`` completes a reply, None while parts are
        missing, False for a part this process did not queue (resumed after a restart,
        retried from the admin page, queued by another worker): only the store knows."""
        replies = self._open.get(session_id, [])
        while replies:
            head = replies[0]
            if head.parts[head.delivered] != part:
                replies.pop(0)  # its next part failed for good: it was never sent whole
                continue
            head.delivered += 1
            if head.delivered < len(head.parts):
                return None
            replies.pop(0)
            if not replies:
                self._open.pop(session_id, None)
            return head.text, head.parts
        self._open.pop(session_id, None)
        return False
