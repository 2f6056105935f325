"""Read documents (Markdown, plain text, HTML, PDF) into sections of text."""

from __future__ import annotations

import re
from pathlib import Path

from . import SUPPORTED_SUFFIXES
from .chunking import (
    DEFAULT_MAX_CHARS,
    DEFAULT_OVERLAP,
    Chunk,
    Section,
    chunk_sections,
    markdown_sections,
)

_BLOCK_TAGS = (
    "p", "div", "section", "article", "main", "aside", "header", "footer", "nav", "ul", "ol",
    "table", "tr", "blockquote", "pre", "dl", "dt", "dd", "figure", "figcaption", "form",
    "hr", "address", "details", "summary",
)  # fmt: skip
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_DROP_TAGS = ("script", "style", "noscript", "template", "svg", "iframe", "head")


class UnreadableDocument(Exception):
    """A file that cannot be read as a document; the message says why, in one line."""


def is_supported(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED_SUFFIXES


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


def html_to_markdown(html: str) -> str:
    """The readable text of an HTML page, with its headings, paragraphs and lists kept."""
    from bs4 import BeautifulSoup
    from bs4.element import NavigableString, Tag

    soup = BeautifulSoup(html, "html.parser")
    title_tag = soup.find("title")
    title = title_tag.get_text(" ", strip=True) if isinstance(title_tag, Tag) else ""
    for tag in soup.find_all(_DROP_TAGS):
        tag.decompose()
    for string in list(soup.find_all(string=True)):
        if isinstance(string, NavigableString) and not string.find_parent("pre"):
            string.replace_with(re.sub(r"\s+", " ", str(string)))
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for cell in soup.find_all(["td", "th"]):
        cell.insert_after(" | ")
    for item in soup.find_all(["li"]):
        item.insert_before("\n- ")
        item.insert_after("\n")
    for block in soup.find_all(_BLOCK_TAGS):
        block.insert_before("\n\n")
        block.insert_after("\n\n")
    has_h1 = False
    for level in range(1, 7):
        for heading in soup.find_all(f"h{level}"):
            has_h1 = has_h1 or level == 1
            text = heading.get_text(" ", strip=True)
            heading.replace_with(f"\n\n{'#' * level} {text}\n\n" if text else "\n\n")
    text = soup.get_text()
    lines = [re.sub(r"[ \t\xa0]+", " ", line).strip() for line in text.split("\n")]
    body = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    if title and not has_h1:
        body = f"# {title}\n\n{body}"
    return body


def pdf_text(path: Path) -> tuple[str, str | None]:
    """The text of a PDF, pages separated by blank lines, and its title if it has one."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnreadableDocument("the PDF is password-protected")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = reader.metadata.title if reader.metadata else None
    except UnreadableDocument:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise UnreadableDocument(f"not a readable PDF ({type(exc).__name__}: {exc})") from None
    text = "\n\n".join(page.strip() for page in pages if page.strip())
    if not text:
        raise UnreadableDocument("no text found in the PDF (is it a scanned image?)")
    return text, (str(title).strip() or None) if title else None


def read_sections(path: Path) -> list[Section]:
    """The sections of the document at ``path``."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        kinds = ", ".join(SUPPORTED_SUFFIXES)
        raise UnreadableDocument(f"unsupported file type {suffix or '(none)'} (use {kinds})")
    if not path.is_file():
        raise UnreadableDocument("no such file")
    if suffix == ".pdf":
        text, title = pdf_text(path)
        sections = [Section(title, text)]
    else:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UnreadableDocument(f"cannot read it ({exc.strerror or exc})") from None
        text = decode(data)
        if suffix in (".html", ".htm"):
            sections = markdown_sections(html_to_markdown(text))
        elif suffix == ".txt":
            sections = [Section(None, text)] if text.strip() else []
        else:  # Markdown; its HTML comments are notes for the editor, not content
            sections = markdown_sections(_COMMENT.sub("", text))
    if not sections:
        raise UnreadableDocument("no text found in it")
    return sections


def read_chunks(
    path: Path, max_chars: int = DEFAULT_MAX_CHARS, overlap: int = DEFAULT_OVERLAP
) -> list[Chunk]:
    """Read and chunk one document; raise :class:`UnreadableDocument` when it cannot be."""
    chunks = chunk_sections(read_sections(path), max_chars, overlap)
    if not chunks:
        raise UnreadableDocument("no text found in it")
    return chunks
