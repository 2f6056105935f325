"""The message pipeline's two workers: turns (inbox to reply) and deliveries (outbox).

All state lives in the store, so a crash loses nothing: claimed work has a lease, and
work held by a dead process is given back on start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .channels import PermanentSendError, RetryLater, SendOutcomeUnknown, SentState
from .logs import conversation
from .models import ClaimedTurn, OutboxEntry, OutgoingMessage

if TYPE_CHECKING:
    from .channels import Channel
    from .context import PipelineHost

log = logging.getLogger("nicobot.pipeline")

IDLE_POLL_SECONDS = 1.0
CLAIM_RETRY_SECONDS = 1.0
SEND_LEASE_SECONDS = 90.0
#: How often a worker looks for dead workers of this host that still hold work.
REAP_EVERY_SECONDS = 3.0
LAG_PROBE_SECONDS = 0.01
#: With no turn in flight there is nothing to govern: the probe waits this long, or until
#: woken by new work, before looking again (timers a hundred times a second cost an idle
#: server 2% of a core).
IDLE_PROBE_SECONDS = 1.0
#: Above this event-loop lag turns in flight shrink; below LAG_LOW they grow back. A loop
#: busy with webhooks and turns but keeping up runs timers a few milliseconds late; limits
#: that counted that as late held a moderately loaded server to a turn or two at a time,
#: and its replies waited seconds.
LAG_HIGH_SECONDS = 0.05
LAG_LOW_SECONDS = 0.02
SHRINK_EVERY_SECONDS = 0.1
#: Below this share of a core used by this process, a late loop is other processes'
#: doing (a busy machine): fewer turns in flight would not help, and slow LLM calls
#: waiting cost no CPU, so the limit is not cut.
BUSY_CPU_SHARE = 0.5
#: Longest wait between attempts at answering a turn.
BACKOFF_MAX_SECONDS = 300.0
JITTER = 0.2
#: Platform timestamps have whole seconds, and clocks differ a little.
RECONCILE_SLACK_SECONDS = 5.0
#: A delivery failing for hours logs its first attempts, then every LOUD_EVERY-th.
LOUD_ATTEMPTS = 3
LOUD_EVERY = 20


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
    (a webhook) waits for its turn. Rises at once, falls gradually. Measured while
    ``working()`` says there is work to govern; otherwise 0, and the probe sleeps until
    :meth:`wake` (or IDLE_PROBE_SECONDS)."""

    def __init__(self, working: Callable[[], bool] = lambda: True) -> None:
        self.seconds = 0.0
        self.cpu_share = 0.0  # of one core, by this process's threads, smoothed
        self._working = working
        self._woken = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Work arrived: measure again at once if the probe was resting."""
        self._woken.set()

    @property
    def own_seconds(self) -> float:
        """The lag, when this process is busy enough to be its cause; else 0."""
        return self.seconds if self.cpu_share >= BUSY_CPU_SHARE else 0.0

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
            if not self._working():
                self.seconds = 0.0
                self._woken.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(IDLE_PROBE_SECONDS):
                        await self._woken.wait()
                continue
            started, cpu_started = loop.time(), time.process_time()
            await asyncio.sleep(LAG_PROBE_SECONDS)
            elapsed = loop.time() - started
            late = max(0.0, elapsed - LAG_PROBE_SECONDS)
            self.seconds = late if late > self.seconds else 0.7 * self.seconds + 0.3 * late
            share = (time.process_time() - cpu_started) / max(elapsed, 1e-6)
            self.cpu_share = 0.8 * self.cpu_share + 0.2 * share


class AdaptiveLimit:
    """Busy work allowed now (work in flight that is not waiting on the LLM): ``bound``
    while the event loop keeps up; cut by a quarter (at most every SHRINK_EVERY_SECONDS)
    while it runs late; a quarter more (at least one) per look once it keeps up again."""

    def __init__(self, bound: int) -> None:
        self.bound = bound
        self.value = bound
        self._shrunk_at = -SHRINK_EVERY_SECONDS

    def update(self, lag_seconds: float, busy: int, now: float) -> int:
        if lag_seconds > LAG_HIGH_SECONDS:
            if now - self._shrunk_at >= SHRINK_EVERY_SECONDS:
                self.value = max(1, min(self.value, busy) * 3 // 4)
                self._shrunk_at = now
        elif lag_seconds < LAG_LOW_SECONDS:
            self.value = min(self.bound, self.value + max(1, self.value // 4))
        return self.value


class Loop:
    """A claim-and-run loop with a bound on work in flight and a wake-up signal.

    With a ``lag`` probe the bound adapts: busy work (work in flight not inside
    :meth:`waiting`) shrinks while the event loop runs late and grows back (up to
    ``bound``) once it keeps up, so that a saturated server still answers webhooks at once
    and lets the backlog wait in the store. Work waiting on something else (a turn's LLM
    call) costs no CPU: only ``bound`` limits it, so that many slow calls stay in flight."""

    def __init__(self, name: str, bound: int, lag: LoopLag | None = None) -> None:
        self.name = name
        self.bound = bound
        self.lag = lag
        self._limit = AdaptiveLimit(bound)
        self.wakeup = asyncio.Event()
        self.active: set[asyncio.Task[None]] = set()
        self.waiting_count = 0
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

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        """Mark work in flight as waiting on something else, not using the CPU."""
        self.waiting_count += 1
        if self.limit < self.bound:
            self.wakeup.set()  # room for busy work
        try:
            yield
        finally:
            self.waiting_count -= 1

    @property
    def busy(self) -> int:
        return len(self.active) - self.waiting_count

    def room(self) -> int:
        """How much more work may be claimed now."""
        return max(0, min(self.bound - len(self.active), self.limit - self.busy))

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
                claimed = await claim(self.room())
            except Exception:
                log.exception("%s: could not claim work; trying again in a second", self.name)
                await asyncio.sleep(CLAIM_RETRY_SECONDS)
                continue
            for item in claimed:
                task: asyncio.Task[None] = asyncio.create_task(run(item))
                self.active.add(task)
                task.add_done_callback(self._done)
            if claimed and self.lag is not None:
                self.lag.wake()
            # no claiming again at once: a claim returns all the ready work there is room
            # for, and what arrives or finishes meanwhile sets the wake-up
            timeout = IDLE_POLL_SECONDS
            if self.limit < self.bound:
                timeout = LAG_PROBE_SECONDS  # look again soon: the loop may have caught up
            if next_at is not None and self.room() > 0:
                try:
                    ready = await next_at()
                except Exception:
                    ready = None
                if ready is not None:
                    timeout = min(timeout, max(0.0, ready - time.time()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(timeout, 0.005)):  # no task per wait
                    await self.wakeup.wait()

    @property
    def limit(self) -> int:
        return self._limit.value

    def _adapt(self) -> None:
        if self.lag is not None:
            self._limit.update(self.lag.own_seconds, self.busy, time.monotonic())

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
        self.lag = LoopLag(working=lambda: bool(self.turns.active))
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
            busy = {k: v for k, v in counts.items() if v and not k.endswith("_failed")}
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
            try:
                await self.bot.answer_turn(turn)
            except Exception as exc:
                await self._turn_failed(turn, exc)
            self.sends.wake()
        except Exception:
            log.exception("could not record the outcome of turn %s", turn.entry_ids)
        finally:
            conversation.reset(token)
            self._in_flight.pop(task, None)

    async def _turn_failed(self, turn: ClaimedTurn, exc: Exception) -> None:
        """Retry later with backoff, or park the turn (and apologise once) after the
        last attempt. The traceback is logged at the first attempt only."""
        settings = self.bot.settings.pipeline
        error = describe(exc)
        self.bot.metrics.turn_failures.labels(turn.session.channel).inc()
        if turn.attempts >= settings.turn_attempts:
            log.error(
                "could not answer turn %s after %d attempts; it is kept as failed: %s",
                turn.entry_ids,
                turn.attempts,
                error,
                exc_info=turn.attempts == 1,
            )
            await self.bot.park_turn(turn, error)
            return
        delay = backoff(settings.turn_backoff_seconds, BACKOFF_MAX_SECONDS, turn.attempts)
        log.warning(
            "could not answer turn %s (attempt %d of %d), retrying in %.0f s: %s",
            turn.entry_ids,
            turn.attempts,
            settings.turn_attempts,
            delay,
            error,
            exc_info=turn.attempts == 1,
        )
        await self.bot.store.retry_turn_later(turn, error, time.time() + delay)
        self.turns.wake()

    async def _claim_sends(self, limit: int) -> list[OutboxEntry]:
        return await self.bot.store.claim_outbox(self.worker, limit, SEND_LEASE_SECONDS)

    async def _run_send(self, entry: OutboxEntry) -> None:
        token = conversation.set(entry.session_id)
        try:
            await self._deliver(entry)
        finally:
            conversation.reset(token)

    async def _deliver(self, entry: OutboxEntry) -> None:
        bot, store = self.bot, self.bot.store
        channel = bot.channels.get(entry.channel)
        if channel is None or not channel.configured:
            await self._give_up(entry, f"channel {entry.channel!r} is not available")
            return
        message = OutgoingMessage(entry.channel, entry.address, entry.text)
        if entry.uncertain and not await self._reconcile(channel, entry, message):
            return
        try:
            await self._typing(channel, entry)
            platform_id = await channel.send_message(message)
        except Exception as exc:
            await self._send_failed(channel, entry, exc)
            return
        await store.outbox_sent(entry.id, platform_id)
        bot.metrics.sends.labels(entry.channel).inc()
        if entry.attempts > 1:
            await self._channel_works_again(entry.channel)
        await bot.after_delivery(entry)

    async def _channel_works_again(self, channel: str) -> None:
        """A retried delivery went through: the other replies waiting for that channel
        need not wait out their backoff."""
        if await self.bot.store.outbox_due_now(channel):
            self.sends.wake()

    async def _typing(self, channel: Channel, entry: OutboxEntry) -> None:
        if not channel.supports_typing or channel.config.typing_max_seconds <= 0:
            return
        seconds = min(
            channel.config.typing_max_seconds,
            len(entry.text) / channel.config.typing_chars_per_second,
        )
        try:
            await channel.send_typing(entry.address, seconds)
        except Exception as exc:  # typing is a courtesy; the message still goes
            log.info("typing indicator failed: %s", exc)

    async def _reconcile(
        self, channel: Channel, entry: OutboxEntry, message: OutgoingMessage
    ) -> bool:
        """An earlier attempt may have reached the platform: ask the channel. True when
        the message should be sent (again); False when that is settled otherwise."""
        bot, metrics = self.bot, self.bot.metrics
        since = datetime.fromtimestamp(
            (entry.first_attempt_at or entry.created_at.timestamp()) - RECONCILE_SLACK_SECONDS,
            UTC,
        )
        try:
            check = await channel.find_sent(message, since)
        except Exception as exc:
            error = f"could not check whether it went out: {describe(exc)}"
            log.warning("delivery %d: %s; asking again later", entry.id, error)
            await self._retry_later(entry, error, self._retry_delay(entry), uncertain=True)
            return False
        if check.state is SentState.SENT:
            log.info(
                "delivery %d had reached %s already; not sending it again", entry.id, channel.name
            )
            metrics.reconciled.labels(entry.channel, "sent").inc()
            await bot.store.outbox_sent(entry.id, check.platform_id)
            metrics.sends.labels(entry.channel).inc()
            await bot.after_delivery(entry)
            return False
        if check.state is SentState.NOT_SENT:
            metrics.reconciled.labels(entry.channel, "not_sent").inc()
            log.info("delivery %d had not reached %s; sending it", entry.id, channel.name)
        else:
            metrics.resends.labels(entry.channel).inc()
            log.warning(
                "delivery %d may have reached %s already and the channel cannot tell; "
                "sending it again",
                entry.id,
                channel.name,
            )
        return True

    async def _send_failed(self, channel: Channel, entry: OutboxEntry, exc: Exception) -> None:
        settings, metrics = self.bot.settings.pipeline, self.bot.metrics
        metrics.send_failures.labels(entry.channel).inc()
        error = describe(exc)
        if isinstance(exc, PermanentSendError):
            await self._give_up(entry, error)
            return
        started = entry.first_attempt_at or entry.created_at.timestamp()
        too_old = time.time() - started >= settings.send_max_age_seconds
        too_many = 0 < settings.send_attempts <= entry.attempts
        if too_old or too_many:
            limit = (
                f"not delivered within {settings.send_max_age_seconds:g} s"
                if too_old
                else f"{entry.attempts} attempts"
            )
            await self._give_up(entry, f"gave up ({limit}): {error}")
            return
        uncertain = isinstance(exc, SendOutcomeUnknown)
        delay = self._retry_delay(entry)
        if isinstance(exc, RetryLater):
            delay = exc.seconds
        if uncertain:
            delay = max(delay, channel.reconcile_after_seconds)
        await self._retry_later(entry, error, delay, uncertain=uncertain)
        quiet = entry.attempts > LOUD_ATTEMPTS and entry.attempts % LOUD_EVERY != 0
        log.log(
            logging.DEBUG if quiet else logging.WARNING,
            "delivery %d failed (attempt %d)%s, retrying in %.0f s: %s",
            entry.id,
            entry.attempts,
            "; it may have gone out, which is checked first" if uncertain else "",
            delay,
            error,
        )

    def _retry_delay(self, entry: OutboxEntry) -> float:
        settings = self.bot.settings.pipeline
        return backoff(
            settings.send_backoff_seconds, settings.send_backoff_max_seconds, entry.attempts
        )

    async def _retry_later(
        self, entry: OutboxEntry, error: str, delay: float, *, uncertain: bool
    ) -> None:
        await self.bot.store.outbox_failed(
            entry.id, error, time.time() + delay, uncertain=uncertain
        )

    async def _give_up(self, entry: OutboxEntry, error: str) -> None:
        await self.bot.store.outbox_failed(entry.id, error, None)
        self.bot.metrics.sends_given_up.labels(entry.channel).inc()
        log.error("delivery %d failed, kept as failed: %s", entry.id, error)


def describe(exc: BaseException) -> str:
    """One line for logs and the admin page: the exception's type and message."""
    return f"{type(exc).__name__}: {exc}"[:500]


def backoff(base: float, limit: float, attempt: int) -> float:
    """``base`` doubled per attempt up to ``limit``, with ±20 % jitter so that retries
    of many deliveries (or workers) spread out."""
    delay = min(base * 2.0 ** max(0, min(attempt - 1, 30)), limit)
    return delay * random.uniform(1 - JITTER, 1 + JITTER)
