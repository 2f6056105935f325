"""Group commit: calls that arrive while a batch is written share the next one."""

from __future__ import annotations

import asyncio

import pytest

from nicobot.store.group_commit import GroupCommit


class Writer:
    """A batch writer that records its batches and holds each until released."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.release.set()
        self.writing = asyncio.Event()

    async def __call__(self, requests: list[int]) -> list[int | Exception]:
        self.batches.append(list(requests))
        self.writing.set()
        await self.release.wait()
        return [ValueError(f"bad {r}") if r < 0 else r * 10 for r in requests]


async def held_in_a_write(
    request: int,
) -> tuple[Writer, GroupCommit[int, int], asyncio.Future[int]]:
    """A group commit whose writer holds ``request``'s batch until released."""
    writer = Writer()
    writer.release.clear()
    commit = GroupCommit(writer)
    call = asyncio.ensure_future(commit.submit(request))
    await writer.writing.wait()
    return writer, commit, call


async def test_alone_a_call_is_written_at_once_in_a_batch_of_its_own():
    writer = Writer()
    commit = GroupCommit(writer)
    assert [await commit.submit(n) for n in (1, 2, 3)] == [10, 20, 30]
    assert writer.batches == [[1], [2], [3]]


async def test_calls_arriving_during_a_write_go_together_in_the_next_batch():
    writer, commit, first = await held_in_a_write(1)
    assert writer.batches == [[1]]  # being written
    later = [asyncio.ensure_future(commit.submit(n)) for n in range(2, 8)]
    await asyncio.sleep(0)
    writer.release.set()
    assert await first == 10
    assert await asyncio.gather(*later) == [n * 10 for n in range(2, 8)]
    assert writer.batches == [[1], list(range(2, 8))]


async def test_each_caller_gets_its_own_error_and_a_failed_batch_fails_only_its_callers():
    writer = Writer()
    commit = GroupCommit(writer, max_batch=2)
    results = await asyncio.gather(*(commit.submit(n) for n in (1, -1, 2)), return_exceptions=True)
    assert results[0] == 10 and results[2] == 20
    assert isinstance(results[1], ValueError) and str(results[1]) == "bad -1"

    async def broken(requests: list[int]) -> list[int | Exception]:
        if 99 in requests:
            raise OSError("disk full")
        return list(requests)

    commit = GroupCommit(broken, max_batch=2)
    results = await asyncio.gather(*(commit.submit(n) for n in (99, 1, 2)), return_exceptions=True)
    assert [type(r) for r in results[:2]] == [OSError, OSError]  # the batch with 99
    assert results[2] == 2  # the next batch is written all the same


async def test_a_caller_that_gives_up_still_has_its_request_written():
    writer, commit, waiting = await held_in_a_write(5)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    writer.release.set()
    assert await commit.submit(6) == 60
    assert writer.batches == [[5], [6]]  # 5 was written, not dropped
