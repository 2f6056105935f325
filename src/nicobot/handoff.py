"""Recognising a customer who asks for a person."""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import Settings

DEFAULT_KEYWORDS = {
    "en": (
        "talk to a person",
        "speak to a person",
        "talk to a human",
        "speak to a human",
        "real person",
        "human agent",
        "talk to someone",
        "customer service",
    ),
    "es": (
        "hablar con una persona",
        "hablar con un humano",
        "hablar con alguien",
        "hablar con un asesor",
        "hablar con una asesora",
        "persona real",
        "un humano",
        "atencion al cliente",
        "pasame con alguien",
        "pasame con una persona",
    ),
}


def fold(text: str) -> str:
    """Lower case, accents removed, spaces collapsed: 'Atención' -> 'atencion'."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"\s+", " ", stripped).strip()


def handoff_keywords(settings: Settings) -> tuple[str, ...]:
    configured = settings.pipeline.handoff_keywords
    words = configured if configured is not None else DEFAULT_KEYWORDS[settings.bot.language]
    return tuple(fold(w) for w in words if w.strip())


def asks_for_a_person(text: str, keywords: tuple[str, ...]) -> bool:
    return keywords_pattern(keywords).search(fold(text)) is not None


@functools.lru_cache(maxsize=64)
def keywords_pattern(keywords: tuple[str, ...]) -> re.Pattern[str]:
    """Any of ``keywords`` as whole words (a pattern that matches nothing when empty)."""
    if not keywords:
        return re.compile(r"(?!)")
    return re.compile("|".join(rf"\b{re.escape(k)}\b" for k in keywords))
