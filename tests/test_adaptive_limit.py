"""Turns in flight shrink while the event loop runs late, so that webhooks are answered
at once and the backlog waits in the store; they grow back once it keeps up."""

from __future__ import annotations

import asyncio
import time

from nicobot.pipeline import (
    LAG_HIGH_SECONDS,
    LAG_LOW_SECONDS,
    SHRINK_EVERY_SECONDS,
    AdaptiveLimit,
    Loop,
    LoopLag,
)


async def until(check, within: float = 10.0) -> None:
    """Let the event loop run until ``check()`` holds; fail after ``within`` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "the loop never got there"
        await asyncio.sleep(0.001)


LATE = LAG_HIGH_SECONDS * 2
ON_TIME = LAG_LOW_SECONDS / 2
BETWEEN = (LAG_HIGH_SECONDS + LAG_LOW_SECONDS) / 2


def test_the_limit_is_the_bound_while_the_loop_keeps_up():
    limit = AdaptiveLimit(32)
    assert [limit.update(ON_TIME, active, now) for now, active in enumerate((0, 32, 5))] == [
        32,
        32,
        32,
    ]


def test_a_busy_loop_that_keeps_up_lets_the_limit_grow_back():
    """A server answering 100 messages a second runs its timers 5 to 15 ms late: that is
    keeping up, and a limit cut earlier must grow back rather than hold."""
    limit = AdaptiveLimit(64)
    limit.update(LATE, 2, now=0.0)
    assert limit.value == 1
    for look in range(30):
        limit.update(0.012, limit.value, now=1.0 + look)
    assert limit.value == 64


def test_a_late_loop_cuts_what_is_in_flight_by_a_quarter_at_most_every_interval():
    limit = AdaptiveLimit(32)
    assert limit.update(LATE, 20, now=100.0) == 15  # from what is in flight, not the bound
    assert limit.update(LATE, 15, now=100.0 + SHRINK_EVERY_SECONDS / 2) == 15
    assert limit.update(LATE, 15, now=100.0 + SHRINK_EVERY_SECONDS * 1.01) == 11
    for step in range(2, 40):
        limit.update(LATE, limit.value, now=100.0 + step * SHRINK_EVERY_SECONDS * 1.01)
    assert limit.value == 1  # never zero: the backlog always moves


def test_it_grows_back_by_a_quarter_at_least_one_and_holds_in_between():
    limit = AdaptiveLimit(8)
    limit.update(LATE, 4, now=0.0)
    assert limit.value == 3
    assert limit.update(BETWEEN, 3, now=1.0) == 3
    assert [limit.update(ON_TIME, 3, now=2.0 + i) for i in range(7)] == [4, 5, 6, 7, 8, 8, 8]
    # from deep down a large bound comes back in a few dozen looks, not hundreds
    limit = AdaptiveLimit(256)
    for step in range(40):
        limit.update(LATE, limit.value, now=step * SHRINK_EVERY_SECONDS * 1.01)
    assert limit.value == 1
    looks = 0
    while limit.update(ON_TIME, limit.value, now=100.0 + looks) < 256:
        looks += 1
    assert looks < 40


async def test_the_loop_claims_no_more_than_the_limit_allows():
    lag = LoopLag()  # not started: the test says how late the loop runs
    loop = Loop("turns", 8, lag)
    gates: list[asyncio.Event] = []
    asked: list[int] = []

    async def claim(n: int) -> list[asyncio.Event]:
        asked.append(n)
        new = [asyncio.Event() for _ in range(n)]
        gates.extend(new)
        return new

    async def run(gate: asyncio.Event) -> None:
        await gate.wait()

    loop.start(claim, run)
    await until(lambda: len(loop.active) == 8)
    lag.seconds, lag.cpu_share = LATE, 1.0  # late, and this process is busy
    gates[0].set()  # a turn ends: the loop looks again, sees it runs late
    await until(lambda: loop.limit < 8)
    assert loop.limit == 5 and len(loop.active) == 7  # nothing new claimed
    lag.seconds = ON_TIME
    for gate in gates:
        gate.set()
    await until(lambda: loop.limit == 8 and len(loop.active) == 8)
    assert max(len(loop.active), *asked) <= 8
    loop.stopping = True
    for gate in gates:
        gate.set()
    await loop.stop(grace=5)


async def test_work_waiting_on_the_llm_does_not_hold_back_new_work():
    """A late loop cuts the busy work, not the turns parked on a slow LLM call: they cost
    no CPU, and only the configured bound limits them."""
    lag = LoopLag()
    loop = Loop("turns", 8, lag)
    gates: list[asyncio.Event] = []
    busy_gate = asyncio.Event()

    async def claim(n: int) -> list[int]:
        start = len(gates)
        gates.extend(asyncio.Event() for _ in range(n))
        return list(range(start, start + n))

    async def run(index: int) -> None:
        if index == 0:
            await busy_gate.wait()  # one turn stays busy: it makes the loop look again
            return
        with loop.waiting():
            await gates[index].wait()

    loop.start(claim, run)
    await until(lambda: len(loop.active) == 8 and loop.busy == 1)
    lag.seconds, lag.cpu_share = LATE, 1.0
    busy_gate.set()  # it ends: the loop looks again while late
    await until(lambda: loop.limit < 8)
    await until(lambda: len(loop.active) == 8)  # the free place is taken all the same
    assert loop.busy <= loop.limit and loop.waiting_count >= 7
    loop.stopping = True
    for gate in gates:
        gate.set()
    await loop.stop(grace=5)


async def test_a_late_loop_on_a_busy_machine_keeps_the_limit():
    """Other processes make the loop late; this one is idle (its turns wait for the LLM):
    fewer turns in flight would only slow the answers down."""
    lag = LoopLag()
    lag.seconds, lag.cpu_share = LATE, 0.1
    assert lag.own_seconds == 0.0
    lag.cpu_share = 0.9
    assert lag.own_seconds == LATE


async def test_the_lag_is_measured_only_while_there_is_work_to_govern():
    """An idle server's probe rests (a timer a hundred times a second cost 2% of a core);
    new work wakes it, and a late loop is seen at once."""
    working = False
    lag = LoopLag(working=lambda: working)
    lag.start()

    def late_once() -> bool:
        time.sleep(LATE)  # the event loop is blocked: everything on it runs late
        return lag.seconds >= LAG_HIGH_SECONDS

    try:
        for _ in range(3):
            assert not late_once()
            await asyncio.sleep(0.02)  # a probe at work would have run twice meanwhile
        assert lag.seconds == 0.0
        working = True
        lag.wake()
        await until(late_once)
        working = False
        await until(lambda: lag.seconds == 0.0)
    finally:
        await lag.stop()


async def test_metrics_show_the_loop_lag_and_the_limit(nicobot_client):
    metrics = await (await nicobot_client.get("/metrics")).get_data(as_text=True)
    assert "nicobot_event_loop_lag_seconds " in metrics
    assert "nicobot_turns_in_flight_limit 8.0" in metrics
