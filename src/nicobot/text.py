"""Splitting long replies for channels with a message size limit."""

from __future__ import annotations

import re

_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")


def split_message(text: str, limit: int | None) -> list[str]:
    """Split ``text`` into parts of at most ``limit`` characters, on paragraph
    boundaries when possible, then sentences, then words; never loses text."""
    text = text.strip()
    if not limit or len(text) <= limit:
        return [text] if text else []
    parts: list[str] = []
    current = ""
    for piece in _pieces(text, limit):
        joiner = "\n\n" if current else ""
        if len(current) + len(joiner) + len(piece) <= limit:
            current += joiner + piece
        else:
            if current:
                parts.append(current)
            current = piece
    if current:
        parts.append(current)
    return parts


def _pieces(text: str, limit: int) -> list[str]:
    pieces: list[str] = []
    for paragraph in (p.strip() for p in _PARAGRAPH.split(text)):
        if not paragraph:
            continue
        if len(paragraph) <= limit:
            pieces.append(paragraph)
        else:
            pieces.extend(_split_long(paragraph, limit))
    return pieces


def _split_long(paragraph: str, limit: int) -> list[str]:
    chunks: list[str] = []
    current = ""
    for unit in _units(paragraph, limit):
        joiner = " " if current else ""
        if len(current) + len(joiner) + len(unit) <= limit:
            current += joiner + unit
        else:
            if current:
                chunks.append(current)
            current = unit
    if current:
        chunks.append(current)
    return chunks


def _units(paragraph: str, limit: int) -> list[str]:
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
