"""Group commit: concurrent calls of one write share a transaction.

The first caller starts a batch at once; callers that arrive while it is being written wait
for it and go together in the next one. Under light load every batch holds one call (no
added wait); under a burst of webhooks, one transaction and one commit carry many inserts.
Each caller gets its own result or its own error, and only once the batch is committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Request = TypeVar("Request")
Result = TypeVar("Result")

#: A batch writes every request and returns, in order, each one's result or the error
#: that request alone met (the others still commit); raising fails the whole batch.
WriteBatch = Callable[[list[Request]], Awaitable[Sequence[Result | Exception]]]


class GroupCommit(Generic[Request, Result]):
    def __init__(self, write: WriteBatch[Request, Result], max_batch: int = 256) -> None:
        self._write = write
        self._max_batch = max_batch
        self._waiting: list[tuple[Request, asyncio.Future[Result]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, request: Request) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((request, future))
        writer = self._writer
        if writer is None or writer.done() or writer.get_loop() is not future.get_loop():
            self._writer = asyncio.create_task(self._write_all())
        # the write goes on if this caller gives up: its result is committed all the same
        return await asyncio.shield(future)

    async def _write_all(self) -> None:
        while self._waiting:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            try:
                results = await self._write([request for request, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    _settle(future, exc)
                continue
            except BaseException:  # cancelled (the loop is closing): nobody is left waiting
                for _, future in batch + self._waiting:
                    future.cancel()
                self._waiting.clear()
                raise
            for (_, future), result in zip(batch, results, strict=True):
                _settle(future, result)


def _settle(future: asyncio.Future[Result], outcome: Result | Exception) -> None:
    if future.done():
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
