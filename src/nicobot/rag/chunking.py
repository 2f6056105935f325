"""Split documents into chunks that follow headings and paragraphs.

A chunk never crosses a heading; within a section, paragraphs are packed up to
``max_chars``, and a paragraph too long for one chunk is cut at sentences, then at words.
Consecutive chunks of one section share up to ``overlap`` characters (the end of the
previous chunk, cut at a word boundary) so that a fact split between them is found whole.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

DEFAULT_MAX_CHARS = 900
DEFAULT_OVERLAP = 150
MIN_MAX_CHARS = 200

_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_BLOCK_LINE = re.compile(r"^\s*([-*+]\s|\d+[.)]\s|\||>|#)")
_SENTENCE_END = re.compile(r"(?<=[.!?…:;])\s+")


@dataclass(frozen=True, slots=True)
class Chunk:
    text: str
    heading: str | None
    index: int


@dataclass(frozen=True, slots=True)
class Section:
    heading: str | None
    body: str


def _clean_heading(text: str) -> str:
    return re.sub(r"[*_`]+", "", text).strip()


def markdown_sections(text: str) -> list[Section]:
    """Sections of a Markdown text, each with its heading path ("Envíos > Costo")."""
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    lines: list[str] = []
    in_fence = False

    def flush() -> None:
        body = "\n".join(lines).strip()
        if body:
            heading = " > ".join(title for _level, title in stack) or None
            sections.append(Section(heading, body))
        lines.clear()

    def open_heading(level: int, title: str) -> None:
        flush()
        while stack and stack[-1][0] >= level:
            stack.pop()
        if title:
            stack.append((level, title))

    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
            lines.append(line)
            continue
        if in_fence:
            lines.append(line)
            continue
        atx = _ATX.match(line)
        if atx:
            open_heading(len(atx.group(1)), _clean_heading(atx.group(2)))
            continue
        setext = _SETEXT.match(line)
        if setext and _is_setext_title(lines):
            title = lines.pop().strip()
            open_heading(1 if setext.group(1)[0] == "=" else 2, _clean_heading(title))
            continue
        lines.append(line)
    flush()
    return sections


def _is_setext_title(lines: list[str]) -> bool:
    """A one-line paragraph just above an underline of ``===`` or ``---``."""
    if not lines or not lines[-1].strip():
        return False
    candidate = lines[-1].lstrip()
    if candidate.startswith(("-", "*", "+", ">", "|")) or "|" in candidate:
        return False
    return len(lines) == 1 or not lines[-2].strip()


def paragraphs(body: str) -> list[str]:
    """The blank-line separated paragraphs of ``body``, with soft line breaks unwrapped."""
    return [_unwrap(p.strip()) for p in re.split(r"\n[ \t]*\n", body) if p.strip()]


def _unwrap(paragraph: str) -> str:
    """Join lines that only wrap a sentence ("según el código" / "postal."), keeping list
    items, table rows, quotes, Markdown hard breaks and code as they are."""
    if _FENCE.match(paragraph) or paragraph.startswith(("    ", "\t")):
        return paragraph
    lines = paragraph.split("\n")
    out = [lines[0].rstrip()]
    for before, line in itertools.pairwise(lines):
        keep = (
            _BLOCK_LINE.match(line)
            or before.lstrip().startswith("|")
            or before.endswith("  ")
            or not line.strip()
        )
        if keep:
            out.append(line.rstrip())
        else:
            out[-1] = f"{out[-1]} {line.strip()}"
    return "\n".join(out)


def _split_long(text: str, limit: int) -> list[str]:
    """Cut ``text`` into pieces of at most ``limit`` characters: sentences, then words."""
    if len(text) <= limit:
        return [text]
    pieces: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(text):
        for part in _split_words(sentence, limit):
            if current and len(current) + 1 + len(part) > limit:
                pieces.append(current)
                current = part
            else:
                current = f"{current} {part}" if current else part
    if current:
        pieces.append(current)
    return pieces


def _split_words(text: str, limit: int) -> list[str]:
    if len(text) <= limit:
        return [text]
    pieces: list[str] = []
    current = ""
    for word in text.split():
        while len(word) > limit:  # a "word" longer than a chunk: cut it
            if current:
                pieces.append(current)
                current = ""
            pieces.append(word[:limit])
            word = word[limit:]
        if current and len(current) + 1 + len(word) > limit:
            pieces.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        pieces.append(current)
    return pieces


def _tail(text: str, size: int) -> str:
    """The last ``size`` characters of ``text`` or fewer, starting at a word."""
    if size <= 0 or not text:
        return ""
    if len(text) <= size:
        return text
    tail = text[-size:]
    space = re.search(r"\s", tail)
    return tail[space.end() :].lstrip() if space else ""


def chunk_sections(
    sections: list[Section],
    max_chars: int = DEFAULT_MAX_CHARS,
    overlap: int = DEFAULT_OVERLAP,
) -> list[Chunk]:
    """Pack each section's paragraphs into chunks of at most ``max_chars`` characters."""
    max_chars = max(max_chars, MIN_MAX_CHARS)
    overlap = max(0, min(overlap, max_chars // 3))
    piece_limit = max_chars - overlap - 2
    chunks: list[Chunk] = []
    for section in sections:
        texts: list[str] = []
        current = ""
        for paragraph in paragraphs(section.body):
            for piece in _split_long(paragraph, piece_limit):
                if not current:
                    current = piece
                elif len(current) + 2 + len(piece) <= max_chars:
                    current = f"{current}\n\n{piece}"
                else:
                    texts.append(current)
                    carried = _tail(current, overlap)
                    current = f"{carried}\n\n{piece}" if carried else piece
        if current:
            texts.append(current)
        start = len(chunks)
        chunks.extend(Chunk(text, section.heading, start + i) for i, text in enumerate(texts))
    return chunks


def chunk_markdown(
    text: str, max_chars: int = DEFAULT_MAX_CHARS, overlap: int = DEFAULT_OVERLAP
) -> list[Chunk]:
    return chunk_sections(markdown_sections(text), max_chars, overlap)


def chunk_plain(
    text: str,
    heading: str | None = None,
    max_chars: int = DEFAULT_MAX_CHARS,
    overlap: int = DEFAULT_OVERLAP,
) -> list[Chunk]:
    return chunk_sections([Section(heading, text)], max_chars, overlap)
