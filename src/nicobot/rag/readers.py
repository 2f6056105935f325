"""Read documents (Markdown, plain text, HTML, PDF) into sections of text.

Every reader is linear in its input, and each document is read within bounds: regular
files only (a symbolic link is refused, so a link to ``../.env`` cannot leak secrets),
at most ``MAX_FILE_MB`` on disk and ``MAX_TEXT_CHARS`` of text. :func:`read_chunks` reads
in a separate process (:mod:`.reader_process`) with a memory and time budget, so a
decompression bomb or a pathological file costs that process, never the server's memory
or its event loop.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import stat
from pathlib import Path
from typing import Any

from . import SUPPORTED_SUFFIXES
from .chunking import (
    DEFAULT_MAX_CHARS,
    DEFAULT_OVERLAP,
    Chunk,
    Section,
    chunk_sections,
    markdown_sections,
)

MAX_FILE_MB = 64
MAX_TEXT_CHARS = 5_000_000
MAX_PDF_PAGES = 3000
#: Largest decompressed size of one PDF stream (pypdf's own default is 75 MB).
MAX_PDF_STREAM_BYTES = 32 * 1024 * 1024

_BLOCK_TAGS = frozenset(
    (
        "p", "div", "section", "article", "main", "aside", "header", "footer", "nav", "ul",
        "ol", "table", "tr", "blockquote", "pre", "dl", "dt", "dd", "figure", "figcaption",
        "form", "hr", "address", "details", "summary",
    )
)  # fmt: skip
_DROP_TAGS = frozenset(("script", "style", "noscript", "template", "svg", "iframe", "head"))
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_SPACES = re.compile(r"\s+")
# no symbolic links; a FIFO must not block the open (it is refused just after)
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)


class UnreadableDocument(Exception):
    """A file that cannot be read as a document; the message says why, in one line."""


def is_supported(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED_SUFFIXES


def read_file(path: Path) -> bytes:
    """The bytes of a regular file that is not a symbolic link, up to ``MAX_FILE_MB``."""
    try:
        fd = os.open(
            path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        )
    except FileNotFoundError:
        raise UnreadableDocument("no such file") from None
    except OSError as exc:
        if path.is_symlink():
            raise UnreadableDocument(
                "a symbolic link: put the file itself in the knowledge folder"
            ) from None
        raise UnreadableDocument(f"cannot read it ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableDocument("not a regular file")
        if info.st_size > MAX_FILE_MB * 1024 * 1024:
            raise UnreadableDocument(f"larger than {MAX_FILE_MB} MB")
        return handle.read(MAX_FILE_MB * 1024 * 1024 + 1)


def decode(data: bytes) -> str:
    """Text from bytes: UTF-8 (with or without BOM), else Windows-1252, else Latin-1."""
    if b"\x00" in data[:8192]:
        raise UnreadableDocument("looks like a binary file, not text")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def strip_html_comments(text: str) -> str:
    """``text`` without ``<!-- ... -->`` (an unclosed one runs to the end), in one pass."""
    parts: list[str] = []
    position = 0
    while (start := text.find("<!--", position)) >= 0:
        parts.append(text[position:start])
        end = text.find("-->", start + 4)
        if end < 0:
            return "".join(parts)
        position = end + 3
    parts.append(text[position:])
    return "".join(parts)


def html_to_markdown(html: str) -> str:
    """The readable text of an HTML page, with its headings, paragraphs and lists kept.

    libxml2 parses (linear, and it bounds the nesting depth); one walk over the tree
    writes the text."""
    from lxml import etree
    from lxml import html as lxml_html

    if not html.strip():
        return ""
    try:
        root = lxml_html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return ""
    title = _squash(root.findtext(".//title") or "")
    parts: list[str] = []
    has_h1 = False
    walker = etree.iterwalk(root, events=("start", "end"))
    for event, element in walker:
        tag = element.tag if isinstance(element.tag, str) else None
        if event == "start":
            if tag is None or tag in _DROP_TAGS:
                walker.skip_subtree()
                continue
            if tag in _HEADINGS:
                has_h1 = has_h1 or tag == "h1"
                text = _squash(element.text_content())
                parts.append(f"\n\n{'#' * _HEADINGS[tag]} {text}\n\n" if text else "\n\n")
                walker.skip_subtree()
                continue
            if tag == "pre":
                parts.append(f"\n\n{element.text_content()}\n\n")
                walker.skip_subtree()
                continue
            parts.append(_opening(tag))
            if element.text:
                parts.append(_SPACES.sub(" ", element.text))
        else:
            if tag is not None and tag not in _DROP_TAGS:
                parts.append(_closing(tag))
            if element.tail and element is not root:
                parts.append(_SPACES.sub(" ", element.tail))
    lines = [re.sub(r"[ \t\xa0]+", " ", line).strip() for line in "".join(parts).split("\n")]
    body = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    if title and not has_h1:
        body = f"# {title}\n\n{body}"
    return body


def _squash(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def _opening(tag: str) -> str:
    if tag == "br":
        return "\n"
    if tag == "li":
        return "\n- "
    return "\n\n" if tag in _BLOCK_TAGS else ""


def _closing(tag: str) -> str:
    if tag in ("td", "th"):
        return " | "
    if tag == "li":
        return "\n"
    return "\n\n" if tag in _BLOCK_TAGS else ""


def pdf_text(data: bytes) -> tuple[str, str | None]:
    """The text of a PDF, pages separated by blank lines, and its title if it has one."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        with _pdf_limits():
            return _pdf_text(PdfReader(io.BytesIO(data)))
    except UnreadableDocument:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError, RecursionError) as exc:
        raise UnreadableDocument(f"not a readable PDF ({type(exc).__name__}: {exc})") from None


def _pdf_limits() -> contextlib.AbstractContextManager[Any]:
    """pypdf's own bounds on decompressed streams, tightened."""
    import pypdf

    limits = {
        "zlib_maximum_output_length": MAX_PDF_STREAM_BYTES,
        "lzw_maximum_output_length": MAX_PDF_STREAM_BYTES,
        "run_length_maximum_output_length": MAX_PDF_STREAM_BYTES,
        "array_based_stream_maximum_output_length": MAX_PDF_STREAM_BYTES,
    }
    apply = getattr(pypdf, "apply_configuration", None)
    if apply is None:  # pypdf before 7: module-level limits
        import pypdf.filters

        pypdf.filters.ZLIB_MAX_OUTPUT_LENGTH = MAX_PDF_STREAM_BYTES
        return contextlib.nullcontext()
    manager: contextlib.AbstractContextManager[Any] = apply(**limits)
    return manager


def _pdf_text(reader: Any) -> tuple[str, str | None]:
    if reader.is_encrypted and not reader.decrypt(""):
        raise UnreadableDocument("the PDF is password-protected")
    if len(reader.pages) > MAX_PDF_PAGES:
        raise UnreadableDocument(f"more than {MAX_PDF_PAGES} pages")
    pages: list[str] = []
    total = 0
    for page in reader.pages:
        text = (page.extract_text() or "").strip()
        total += len(text)
        if total > MAX_TEXT_CHARS:
            raise UnreadableDocument(_too_much_text())
        if text:
            pages.append(text)
    if not pages:
        raise UnreadableDocument("no text found in the PDF (is it a scanned image?)")
    title = reader.metadata.title if reader.metadata else None
    return "\n\n".join(pages), (str(title).strip() or None) if title else None


def _too_much_text() -> str:
    return f"more than {MAX_TEXT_CHARS:,} characters of text; split it into smaller files"


def read_sections(path: Path) -> list[Section]:
    """The sections of the document at ``path``, read in this process."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        kinds = ", ".join(SUPPORTED_SUFFIXES)
        raise UnreadableDocument(f"unsupported file type {suffix or '(none)'} (use {kinds})")
    data = read_file(path)
    if suffix == ".pdf":
        text, title = pdf_text(data)
        sections = [Section(title, text)]
    else:
        text = decode(data)
        if len(text) > MAX_TEXT_CHARS:
            raise UnreadableDocument(_too_much_text())
        if suffix in (".html", ".htm"):
            sections = markdown_sections(html_to_markdown(text))
        elif suffix == ".txt":
            sections = [Section(None, text)] if text.strip() else []
        else:  # Markdown; its HTML comments are notes for the editor, not content
            sections = markdown_sections(strip_html_comments(text))
    if not sections:
        raise UnreadableDocument("no text found in it")
    return sections


def chunks_of(
    path: Path, max_chars: int = DEFAULT_MAX_CHARS, overlap: int = DEFAULT_OVERLAP
) -> list[Chunk]:
    """Read and chunk one document in this process."""
    chunks = chunk_sections(read_sections(path), max_chars, overlap)
    if not chunks:
        raise UnreadableDocument("no text found in it")
    return chunks


def read_chunks(
    path: Path,
    max_chars: int = DEFAULT_MAX_CHARS,
    overlap: int = DEFAULT_OVERLAP,
    limits: Any = None,
) -> list[Chunk]:
    """Read and chunk one document in the reader process, within its memory and time
    budget (``limits``: a :class:`.reader_process.ReadLimits`, the defaults if None);
    raise :class:`UnreadableDocument` when it cannot be read."""
    from .reader_process import read_in_reader_process

    return read_in_reader_process(path, max_chars, overlap, limits)
