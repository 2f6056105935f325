"""The message pipeline's two workers: turns (inbox to reply) and deliveries (outbox).

All state lives in the store, so a crash loses nothing: claimed work has a lease, and
work held by a dead process is given back on start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from .logs import conversation
from .models import ClaimedTurn, OutboxEntry, OutgoingMessage

if TYPE_CHECKING:
    from .context import PipelineHost

log = logging.getLogger("nicobot.pipeline")

IDLE_POLL_SECONDS = 1.0
CLAIM_RETRY_SECONDS = 1.0
SEND_LEASE_SECONDS = 90.0
#: How often a worker looks for dead workers of this host that still hold work.
REAP_EVERY_SECONDS = 3.0
LAG_PROBE_SECONDS = 0.01
#: Above this event-loop lag turns in flight shrink; below LAG_LOW they grow back.
LAG_HIGH_SECONDS = 0.015
LAG_LOW_SECONDS = 0.005
SHRINK_EVERY_SECONDS = 0.1


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def worker_is_dead(worker: str, me: str) -> bool:
    """True for a worker of this host whose process is gone (or an earlier life of ours)."""
    host, _, rest = worker.partition(":")
    pid_text, _, _ = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit() or worker == me:
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class LoopLag:
    """How late the event loop runs a short timer: how long anything that arrives now
    (a webhook) waits for its turn. Rises at once, falls gradually."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._probe(), name="loop-lag")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _probe(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(LAG_PROBE_SECONDS)
            late = max(0.0, loop.time() - started - LAG_PROBE_SECONDS)
            self.seconds = late if late > self.seconds else 0.7 * self.seconds + 0.3 * late


class AdaptiveLimit:
    """Work in flight allowed now: ``bound`` while the event loop keeps up; cut by a
    quarter (at most every SHRINK_EVERY_SECONDS) while it runs late; one more per look
    once it keeps up again."""

    def __init__(self, bound: int) -> None:
        self.bound = bound
        self.value = bound
        self._shrunk_at = -SHRINK_EVERY_SECONDS

    def update(self, lag_seconds: float, active: int, now: float) -> int:
        if lag_seconds > LAG_HIGH_SECONDS:
            if now - self._shrunk_at >= SHRINK_EVERY_SECONDS:
                self.value = max(1, min(self.value, active) * 3 // 4)
                self._shrunk_at = now
        elif lag_seconds < LAG_LOW_SECONDS:
            self.value = min(self.bound, self.value + 1)
        return self.value


class Loop:
    """A claim-and-run loop with a bound on work in flight and a wake-up signal.

    With a ``lag`` probe the bound adapts: work in flight shrinks while the event loop
    runs late and grows back (up to ``bound``) once it keeps up, so that a saturated
    server still answers webhooks at once and lets the backlog wait in the store."""

    def __init__(self, name: str, bound: int, lag: LoopLag | None = None) -> None:
        self.name = name
        self.bound = bound
        self.lag = lag
        self._limit = AdaptiveLimit(bound)
        self.wakeup = asyncio.Event()
        self.active: set[asyncio.Task[None]] = set()
        self.stopping = False
        self._runner: asyncio.Task[None] | None = None

    def start(
        self,
        claim: Callable[[int], Awaitable[list[Any]]],
        run: Callable[[Any], Coroutine[Any, Any, None]],
        next_at: Callable[[], Awaitable[float | None]] | None = None,
    ) -> None:
        self._runner = asyncio.create_task(self._loop(claim, run, next_at), name=self.name)

    def wake(self) -> None:
        self.wakeup.set()

    async def _loop(
        self,
        claim: Callable[[int], Awaitable[list[Any]]],
        run: Callable[[Any], Coroutine[Any, Any, None]],
        next_at: Callable[[], Awaitable[float | None]] | None,
    ) -> None:
        while not self.stopping:
            self.wakeup.clear()
            self._adapt()
            claimed: list[Any] = []
            try:
                claimed = await claim(self.limit - len(self.active))
            except Exception:
                log.exception("%s: could not claim work; trying again in a second", self.name)
                await asyncio.sleep(CLAIM_RETRY_SECONDS)
                continue
            for item in claimed:
                task: asyncio.Task[None] = asyncio.create_task(run(item))
                self.active.add(task)
                task.add_done_callback(self._done)
            if claimed and len(self.active) < self.limit:
                continue
            timeout = IDLE_POLL_SECONDS
            if self.limit < self.bound:
                timeout = LAG_PROBE_SECONDS  # look again soon: the loop may have caught up
            if next_at is not None and len(self.active) < self.limit:
                try:
                    ready = await next_at()
                except Exception:
                    ready = None
                if ready is not None:
                    timeout = min(timeout, max(0.0, ready - time.time()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), timeout=max(timeout, 0.005))

    @property
    def limit(self) -> int:
        return self._limit.value

    def _adapt(self) -> None:
        if self.lag is not None:
            self._limit.update(self.lag.seconds, len(self.active), time.monotonic())

    def _done(self, task: asyncio.Task[None]) -> None:
        self.active.discard(task)
        self.wakeup.set()

    async def stop(self, grace: float) -> set[asyncio.Task[None]]:
        """Stop claiming; wait up to ``grace`` for work in flight; return what did not finish."""
        self.stopping = True
        self.wakeup.set()
        if self._runner is not None:
            await self._runner
        if not self.active:
            return set()
        _done, pending = await asyncio.wait(set(self.active), timeout=grace)
        return pending


class Pipeline:
    """Runs turns and deliveries for one bot."""

    def __init__(self, bot: PipelineHost) -> None:
        self.bot = bot
        self.worker = new_worker_id()
        settings = bot.settings.pipeline
        self.lag = LoopLag()
        self.turns = Loop("turns", settings.concurrency, self.lag)
        self.sends = Loop("sends", settings.send_concurrency)
        self.turn_lease = bot.settings.llm.timeout_seconds + 60.0
        self._in_flight: dict[asyncio.Task[Any], ClaimedTurn] = {}
        self._reaper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        store = self.bot.store
        await self._release_dead_workers()
        self.lag.start()
        self.turns.start(self._claim_turns, self._run_turn, store.next_turn_at)
        self.sends.start(self._claim_sends, self._run_send)
        self._reaper = asyncio.create_task(self._reap(), name="reap-dead-workers")

    async def _release_dead_workers(self) -> None:
        """Give back the work of this host's workers whose process is gone (another
        worker of a `--workers N` server, or a second `nicobot serve`, killed)."""
        store = self.bot.store
        for worker in await store.workers_holding_work():
            if worker_is_dead(worker, self.worker):
                turns, sends = await store.release_worker(worker)
                log.warning(
                    "resuming work of a stopped process (%s): %d turns, %d deliveries",
                    worker,
                    turns,
                    sends,
                )
                if turns:
                    self.turns.wake()
                if sends:
                    self.sends.wake()

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(REAP_EVERY_SECONDS)
            try:
                await self._release_dead_workers()
            except Exception:
                log.exception("could not look for the work of stopped processes")

    async def stop(self, grace: float) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        unfinished = await self.turns.stop(grace)
        for task in unfinished:
            turn = self._in_flight.get(task)
            task.cancel()
            if turn is not None:
                await self.bot.store.release_turn(turn)
        for task in await self.sends.stop(grace):
            task.cancel()
        await self.lag.stop()

    def wake_turns(self) -> None:
        self.turns.wake()

    async def wait_idle(self, within: float) -> None:
        """Return once nothing is queued, claimed or being sent (for tests and tools)."""
        deadline = time.monotonic() + within
        while True:
            counts = await self.bot.store.pipeline_counts()
            busy = {k: v for k, v in counts.items() if v and k != "outbox_failed"}
            if not busy and not self.turns.active and not self.sends.active:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the pipeline is still busy: {busy}")
            await asyncio.sleep(0.02)

    async def _claim_turns(self, limit: int) -> list[ClaimedTurn]:
        return await self.bot.store.claim_turns(self.worker, limit, self.turn_lease)

    async def _run_turn(self, turn: ClaimedTurn) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._in_flight[task] = turn
        token = conversation.set(turn.session.id)
        try:
            await self.bot.answer_turn(turn)
            self.sends.wake()
        except Exception:
            log.exception("could not answer turn %s; it will be retried", turn.entry_ids)
            await self.bot.store.release_turn(turn)
        finally:
            conversation.reset(token)
            self._in_flight.pop(task, None)

    async def _claim_sends(self, limit: int) -> list[OutboxEntry]:
        return await self.bot.store.claim_outbox(self.worker, limit, SEND_LEASE_SECONDS)

    async def _run_send(self, entry: OutboxEntry) -> None:
        token = conversation.set(entry.session_id)
        try:
            await self._deliver(entry)
        finally:
            conversation.reset(token)

    async def _deliver(self, entry: OutboxEntry) -> None:
        bot, store, settings = self.bot, self.bot.store, self.bot.settings.pipeline
        metrics = bot.metrics
        channel = bot.channels.get(entry.channel)
        if entry.recovered:
            metrics.resends.labels(entry.channel).inc()
            log.warning("delivery %d was interrupted while sending; sending it again", entry.id)
        if channel is None or not channel.configured:
            await store.outbox_failed(entry.id, f"channel {entry.channel!r} is not available", None)
            metrics.sends_given_up.labels(entry.channel).inc()
            log.error("delivery %d failed: no channel %r", entry.id, entry.channel)
            return
        try:
            if channel.supports_typing and channel.config.typing_max_seconds > 0:
                seconds = min(
                    channel.config.typing_max_seconds,
                    len(entry.text) / channel.config.typing_chars_per_second,
                )
                try:
                    await channel.send_typing(entry.address, seconds)
                except Exception as exc:  # typing is a courtesy; the message still goes
                    log.info("typing indicator failed: %s", exc)
            platform_id = await channel.send_message(
                OutgoingMessage(entry.channel, entry.address, entry.text)
            )
        except Exception as exc:
            metrics.send_failures.labels(entry.channel).inc()
            error = f"{type(exc).__name__}: {exc}"[:500]
            if entry.attempts >= settings.send_attempts:
                await store.outbox_failed(entry.id, error, None)
                metrics.sends_given_up.labels(entry.channel).inc()
                log.error(
                    "delivery %d failed after %d attempts, kept as failed: %s",
                    entry.id,
                    entry.attempts,
                    error,
                )
                return
            delay = min(
                settings.send_backoff_seconds * 2 ** (entry.attempts - 1),
                settings.send_backoff_max_seconds,
            )
            await store.outbox_failed(entry.id, error, time.time() + delay)
            log.warning(
                "delivery %d failed (attempt %d), retrying in %.0f s: %s",
                entry.id,
                entry.attempts,
                delay,
                error,
            )
            return
        await store.outbox_sent(entry.id, platform_id)
        metrics.sends.labels(entry.channel).inc()
        await bot.after_delivery(entry)
