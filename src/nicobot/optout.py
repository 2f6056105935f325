"""Recognising a customer who asks the bot to stop writing (opt-out), or to start again.

A keyword counts only as the whole message ("baja", "STOP!", "No me escribas más"), never
inside a longer one ("no quiero darme de baja"), compared without case, accents or
punctuation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .handoff import fold

if TYPE_CHECKING:
    from .config import Settings

DEFAULT_OPT_OUT = {
    "en": (
        "stop",
        "unsubscribe",
        "opt out",
        "stop messaging me",
        "stop writing to me",
        "do not write to me",
        "dont write to me",
        "don't write to me",
    ),
    "es": (
        "baja",
        "stop",
        "darme de baja",
        "dame de baja",
        "quiero darme de baja",
        "no me escribas mas",
        "no me escriban mas",
        "no me escribas",
        "no me escriban",
        "no quiero mas mensajes",
    ),
}
DEFAULT_OPT_IN = {
    "en": ("start", "subscribe", "opt in", "unstop"),
    "es": ("alta", "start", "darme de alta", "dame de alta", "quiero darme de alta"),
}
_PUNCTUATION = re.compile(r"[^\w\s']+")


def normalise(text: str) -> str:
    """Folded (no case, no accents) with punctuation and emoji dropped: '¡BAJA!' -> 'baja'."""
    return re.sub(r"\s+", " ", _PUNCTUATION.sub(" ", fold(text))).strip()


def _keywords(
    configured: list[str] | None, defaults: dict[str, tuple[str, ...]], language: str
) -> tuple[str, ...]:
    words = configured if configured is not None else defaults[language]
    return tuple(dict.fromkeys(normalise(word) for word in words if normalise(word)))


@dataclass(frozen=True, slots=True)
class OptOutKeywords:
    """The opt-out and opt-in phrases of one bot, already normalised."""

    opt_out: tuple[str, ...]
    opt_in: tuple[str, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> OptOutKeywords:
        section, language = settings.optout, settings.bot.language
        if not section.enabled:
            return cls((), ())
        return cls(
            opt_out=_keywords(section.opt_out_keywords, DEFAULT_OPT_OUT, language),
            opt_in=_keywords(section.opt_in_keywords, DEFAULT_OPT_IN, language),
        )

    def wants_out(self, text: str) -> bool:
        return normalise(text) in self.opt_out

    def wants_in(self, text: str) -> bool:
        return normalise(text) in self.opt_in

    @property
    def opt_in_word(self) -> str:
        """The phrase the opt-out confirmation tells the customer to write."""
        return self.opt_in[0] if self.opt_in else ""
