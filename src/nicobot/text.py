"""Splitting long replies for channels with a message size limit."""

from __future__ import annotations

import re
from collections.abc import Iterable

_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")


def split_message(text: str, limit: int | None) -> list[str]:
    """Split ``text`` into parts of at most ``limit`` characters, on paragraph
    boundaries when possible, then sentences, then words; never loses text."""
    text = text.strip()
    if not limit or len(text) <= limit:
        return [text] if text else []
    pieces: list[str] = []
    for paragraph in (p.strip() for p in _PARAGRAPH.split(text)):
        if len(paragraph) <= limit:
            pieces.append(paragraph)
        else:
            pieces.extend(_pack(_units(paragraph, limit), limit, " "))
    return _pack((p for p in pieces if p), limit, "\n\n")


def _pack(pieces: Iterable[str], limit: int, joiner: str) -> list[str]:
    """Join consecutive pieces with ``joiner`` while the result fits in ``limit``."""
    parts: list[str] = []
    current = ""
    for piece in pieces:
        if current and len(current) + len(joiner) + len(piece) <= limit:
            current += joiner + piece
        else:
            if current:
                parts.append(current)
            current = piece
    if current:
        parts.append(current)
    return parts


def _units(paragraph: str, limit: int) -> list[str]:
    """Sentences, or words (cut at ``limit``) of sentences that are too long."""
    units: list[str] = []
    for sentence in _SENTENCE_END.split(paragraph):
        if len(sentence) <= limit:
            units.append(sentence)
            continue
        for word in sentence.split():
            while len(word) > limit:
                units.append(word[:limit])
                word = word[limit:]
            if word:
                units.append(word)
    return units
