"""Split documents into chunks that follow headings and paragraphs.

A chunk never crosses a heading: each section (an FAQ entry, a list of prices, a
schedule) is its own passage, carrying its heading path with the document's title
("Envíos > Costo del envío"). Within a section, paragraphs are packed up to ``max_chars``;
a table too long for one chunk is cut into groups of rows that each repeat the header row,
a list into groups of items, and any other paragraph at sentences, then at words.
Consecutive chunks of one section share up to ``overlap`` characters (the end of the
previous chunk, cut at a word boundary) so that a fact split between them is found whole.

Every pattern here is matched at the start of one line, or scans it once: the work is
linear in the size of the document, whatever its content.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

DEFAULT_MAX_CHARS = 900
DEFAULT_OVERLAP = 150
MIN_MAX_CHARS = 200
#: Rows of a table per passage at most (each passage repeats the header).
TABLE_ROWS = 4

_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_BLOCK_LINE = re.compile(r"^\s*([-*+]\s|\d+[.)]\s|\||>|#)")
_SENTENCE_END = re.compile(r"(?<=[.!?…:;])\s+")
_TABLE_RULE_CHARS = frozenset("|:- \t")
_LIST_ITEM = re.compile(r"\s*([-*+]|\d+[.)])\s")


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
        atx = atx_heading(line)
        if atx:
            open_heading(atx[0], _clean_heading(atx[1]))
            continue
        setext = _SETEXT.match(line)
        if setext and _is_setext_title(lines):
            title = lines.pop().strip()
            open_heading(1 if setext.group(1)[0] == "=" else 2, _clean_heading(title))
            continue
        lines.append(line)
    flush()
    return sections


def atx_heading(line: str) -> tuple[int, str] | None:
    """The level and title of an ATX heading line (``## Envíos ##``), or None.

    Plain string operations, so that a long line of spaces or ``#`` costs one pass
    (a regular expression for this backtracked for minutes on a 3 KB line).
    """
    stripped = line.lstrip(" ")
    if len(line) - len(stripped) > 3 or not stripped.startswith("#"):
        return None
    level = len(stripped) - len(stripped.lstrip("#"))
    rest = stripped[level:]
    if level > 6 or not rest or rest[0] not in " \t":
        return None
    title = rest.strip(" \t")
    unclosed = title.rstrip("#")
    if not unclosed:
        title = ""  # "## ##": an empty heading
    elif unclosed != title and unclosed[-1] in " \t":
        title = unclosed.rstrip(" \t")  # the optional closing sequence
    return level, title


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


def is_table(lines: list[str]) -> bool:
    return len(lines) > 2 and all(line.lstrip().startswith("|") for line in lines)


def split_block(paragraph: str, limit: int) -> tuple[list[str], bool]:
    """Cut a paragraph into pieces of at most ``limit`` characters, by its kind; and
    whether consecutive pieces should overlap (not table rows: each group has its header).
    A table is cut into groups of at most ``TABLE_ROWS`` rows even when it would fit: a
    passage about a few rows is one a question about one of them finds."""
    lines = paragraph.split("\n")
    if is_table(lines):
        return _row_groups(lines, limit), False
    if len(paragraph) <= limit:
        return [paragraph], True
    if len(lines) > 1 and all(_LIST_ITEM.match(line) for line in lines):
        return _pack_lines(lines, [], limit), True
    return _split_long(paragraph, limit), True


def is_table_rule(line: str) -> bool:
    """The line under a table's header: ``| --- | :---: |``."""
    return "-" in line and set(line.strip()) <= _TABLE_RULE_CHARS


def _row_groups(rows: list[str], limit: int) -> list[str]:
    """A long table as groups of rows, each under the table's header (and rule) rows."""
    header = rows[:2] if is_table_rule(rows[1]) else rows[:1]
    if sum(len(r) + 1 for r in header) > limit // 2:
        header = []
    return _pack_lines(rows[len(header) :], header, limit, TABLE_ROWS)


def table_as_text(text: str) -> str:
    """A table's rows as ``column: value`` lines, the way an embedder reads them best;
    any other text as it is."""
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    if not is_table(lines) or not is_table_rule(lines[1]):
        return text
    columns = table_cells(lines[0])
    rows = []
    for line in lines[2:]:
        cells = table_cells(line)
        rows.append(
            "; ".join(f"{c}: {v}" if c else v for c, v in zip(columns, cells, strict=False)) + "."
        )
    return "\n".join(rows)


def table_cells(row: str) -> list[str]:
    """The cells of a Markdown table row, stripped."""
    return [cell.strip() for cell in row.strip().strip("|").split("|")]


def _pack_lines(
    lines: list[str], header: list[str], limit: int, max_lines: int = 1_000_000
) -> list[str]:
    """Whole lines packed into pieces of at most ``limit`` characters, each under
    ``header``; only a line too long for a piece of its own is cut."""
    header_size = sum(len(line) + 1 for line in header)
    pieces: list[str] = []
    current, size = list(header), header_size
    for line in lines:
        fits = len(line) + header_size <= limit
        for part in [line] if fits else _split_long(line, limit - header_size):
            full = len(current) - len(header) >= max_lines
            if len(current) > len(header) and (full or size + len(part) > limit):
                pieces.append("\n".join(current))
                current, size = list(header), header_size
            current.append(part)
            size += len(part) + 1
    if len(current) > len(header):
        pieces.append("\n".join(current))
    return pieces


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
            pieces, overlapping = split_block(paragraph, piece_limit)
            if not overlapping:  # table row groups: each its own passage
                if current:
                    texts.append(current)
                texts.extend(pieces)
                current = ""
                continue
            for piece in pieces:
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
