"""Two knowledge bases on one real Chroma server (`chroma run`), as two machines' workers
share it: each searches its own copy in memory, and sees the other's writes, deletions and
re-index."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from knowledge_helpers import write_project

from nicobot.rag.chroma_store import SHARED_CHECK_SECONDS

#: Long enough for a busy machine; a change shows after about SHARED_CHECK_SECONDS.
SEEN_WITHIN = 30 * SHARED_CHECK_SECONDS


def host(directory: Path, url: str) -> Path:
    return write_project(directory, f'embedder = "hashing"\nchroma_url = "{url}"')


async def sources_found(kb, question: str) -> set[str]:
    return {s.source for s in await kb.search(question, 4) if s.score >= 0.2}


async def eventually(what: str, check: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``check`` until it is true (the other worker's copy is refreshed)."""
    deadline = time.monotonic() + SEEN_WITHIN
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {SEEN_WITHIN}s: {what}")
        await asyncio.sleep(0.05)


async def test_each_worker_sees_the_others_changes(tmp_path, chroma_server, open_kb):
    writer = open_kb(host(tmp_path / "a", chroma_server.url))
    reader = open_kb(host(tmp_path / "b", chroma_server.url))
    await writer.open()
    await reader.open()
    assert await sources_found(reader, "horarios del local") == set()
    assert reader._snapshot is not None  # searched in memory, not through the server

    document = tmp_path / "a" / "knowledge" / "horarios.md"
    document.write_text("# Horarios\n\nEl local abre de lunes a viernes de 10 a 19.")
    await writer.ingest_file(document)
    await eventually(
        "the reader finds the new document",
        lambda: _has(reader, "horarios del local", "horarios.md"),
    )

    await writer.reindex()  # drops the collection and makes it again
    await eventually(
        "the reader finds it in the re-made collection",
        lambda: _has(reader, "horarios del local", "horarios.md"),
    )

    assert await writer.delete("horarios.md")
    await eventually(
        "the reader no longer finds it",
        lambda: _lacks(reader, "horarios del local", "horarios.md"),
    )


async def _has(kb, question: str, source: str) -> bool:
    return source in await sources_found(kb, question)


async def _lacks(kb, question: str, source: str) -> bool:
    return source not in await sources_found(kb, question)
