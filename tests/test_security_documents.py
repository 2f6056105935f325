"""Documents cannot leak files, exhaust the server or stall it."""

from __future__ import annotations

import asyncio
import os
import resource
import zlib
from pathlib import Path

import pytest

from nicobot.rag.reader_process import ReadLimits
from nicobot.rag.readers import UnreadableDocument, read_chunks
from nicobot.testing import wait_until

#: Generous for any linear reader on a slow machine; the quadratic ones took minutes.
ADVERSARIAL = ReadLimits(seconds=60)

ADVERSARIAL_HTML = {
    "flat.html": "<p>x</p>" * 100_000,
    "deep.html": "<div>" * 100_000 + "deep text" + "</div>" * 100_000,
    "open-items.html": "<ul>" + "<li>item " * 100_000 + "</ul>",
    "unclosed-comments.html": "<p>visible</p>" + "<!--" * 100_000,
    "unclosed-tags.html": "<p>visible</p>" + "<a " * 100_000,
    "cells.html": "<table>" + "<tr><td>a<td>b" * 50_000 + "</table>",
    "entities.html": "<p>" + "&" * 200_000 + "&#" * 100_000 + "</p>",
}


def flate_pdf(path: Path, decompressed_bytes: int) -> Path:
    """A one-page PDF whose content stream inflates to ``decompressed_bytes`` (a bomb:
    a few kilobytes on disk)."""
    compressor = zlib.compressobj(9)
    block = b" " * (1024 * 1024)
    stream = b"".join(compressor.compress(block) for _ in range(decompressed_bytes // len(block)))
    stream += compressor.flush()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    path.write_bytes(bytes(out))
    return path


def peak_rss_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


@pytest.mark.parametrize("name", sorted(ADVERSARIAL_HTML))
def test_adversarial_html_reads_in_linear_time(tmp_path, name):
    path = tmp_path / name
    path.write_text(ADVERSARIAL_HTML[name], encoding="utf-8")
    try:
        chunks = read_chunks(path, limits=ADVERSARIAL)
    except UnreadableDocument as exc:  # allowed, as long as it is not the time limit
        assert "longer than" not in str(exc)
    else:
        assert chunks


def test_adversarial_markdown_comments_read_in_linear_time(tmp_path):
    path = tmp_path / "notes.md"
    path.write_text("# Title\n\nText.\n\n" + "<!--" * 300_000, encoding="utf-8")
    [chunk] = read_chunks(path, limits=ADVERSARIAL)
    assert chunk.text == "Text."


def test_a_pdf_bomb_costs_the_reader_process_not_the_server(tmp_path):
    bomb = flate_pdf(tmp_path / "bomb.pdf", 30 * 1024 * 1024)
    assert bomb.stat().st_size < 100_000
    before = peak_rss_mb()
    with pytest.raises(UnreadableDocument, match="more than 16 MB of memory"):
        read_chunks(bomb, limits=ReadLimits(memory_mb=16))
    bigger = flate_pdf(tmp_path / "bigger.pdf", 200 * 1024 * 1024)
    with pytest.raises(UnreadableDocument, match="PDF"):
        read_chunks(bigger)  # the default limits: beyond one stream's bound
    assert peak_rss_mb() - before < 50


def test_a_document_that_takes_too_long_is_abandoned_and_the_next_one_reads(tmp_path):
    slow = tmp_path / "slow.html"
    slow.write_text("<p>x</p>" * 600_000, encoding="utf-8")
    quick = ReadLimits(seconds=0.05)
    with pytest.raises(UnreadableDocument, match="longer than"):
        read_chunks(slow, limits=quick)
    fine = tmp_path / "fine.md"
    fine.write_text("# Hours\n\nOpen from 9 to 18.\n", encoding="utf-8")
    [chunk] = read_chunks(fine, limits=quick)
    assert "9 to 18" in chunk.text


def test_symlinks_and_special_files_are_refused(tmp_path):
    secret = tmp_path / ".env"
    secret.write_text("NICOBOT_ADMIN_PASSWORD=hunter2\n", encoding="utf-8")
    link = tmp_path / "leak.md"
    link.symlink_to(secret)
    with pytest.raises(UnreadableDocument, match="symbolic link"):
        read_chunks(link)
    fifo = tmp_path / "pipe.md"
    os.mkfifo(fifo)
    with pytest.raises(UnreadableDocument, match="not a regular file"):
        read_chunks(fifo)


@pytest.fixture
def leaky_project(nicobot_project: Path) -> Path:
    (nicobot_project / "knowledge" / "leak.md").symlink_to(nicobot_project / ".env")
    return nicobot_project


async def test_a_symlink_in_the_knowledge_folder_is_not_ingested(leaky_project, nicobot_bot):
    kb = nicobot_bot.knowledge
    assert [why for _source, why in kb.synced.failed] == [
        "a symbolic link: put the file itself in the knowledge folder"
    ]
    found = await kb.search("NICOBOT_ADMIN_PASSWORD test-password secret key", 10)
    assert all("test-password" not in snippet.text for snippet in found)
    assert {document.source for document in await kb.documents()} == {"about.md"}


async def test_searches_go_on_while_a_document_is_being_read(nicobot_bot):
    """The reading and embedding of a document hold no lock that searches need: while a
    file's reading cannot finish (a FIFO whose writer sends nothing yet), a search does."""
    kb = nicobot_bot.knowledge
    fifo = kb.knowledge_dir / "stuck.md"
    os.mkfifo(fifo)
    ingest = asyncio.create_task(kb.ingest_file(fifo))
    writer = await asyncio.to_thread(open_writer_once_read, fifo)  # the ingest is reading
    try:
        async with asyncio.timeout(30):
            found = await kb.search("opening hours", 4)
        assert found
        assert not ingest.done()
    finally:
        os.write(writer, b"# Stuck\n")
        os.close(writer)
    with pytest.raises(UnreadableDocument, match="not a regular file"):
        await ingest


def open_writer_once_read(fifo: Path) -> int:
    """A FIFO opens for writing without blocking only once a reader has it open."""

    def attempt() -> int | None:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            return None

    return wait_until("the ingest to open the file", attempt, timeout=30)


def test_the_word_feature_cache_is_bounded():
    from nicobot.rag import hashing

    hashing.embed(f"palabra{n}x{n * 7}" for n in range(hashing.WORD_CACHE_SIZE + 500))
    assert hashing._word_features.cache_info().currsize <= hashing.WORD_CACHE_SIZE
