"""Whom the bot answers: allow and deny lists of numbers, and a per-sender rate limit.

Numbers are compared by their digits ("+54 9 11 1234-5678" is "5491112345678"); an entry
ending in ``*`` matches every number that starts with it ("54911*"). An opaque address
(a WhatsApp ``...@lid``) matches only an entry written exactly so.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import Settings

#: The mode of the notice a sender gets when over the rate limit.
RATE_NOTICE_MODE = "rate_limited"
#: At most one rate-limit notice per conversation in this time.
NOTICE_INTERVAL = timedelta(minutes=10)


def digits(number: str) -> str:
    return re.sub(r"\D", "", number)


def normalise_entry(entry: str) -> str:
    """How a list entry is compared: digits (and a trailing ``*``), or an opaque id as is."""
    text = entry.strip()
    if "@" in text:
        return text.lower()
    prefix = text.endswith("*")
    return digits(text) + ("*" if prefix else "")


def _matches(entries: Iterable[str], candidates: Sequence[str]) -> bool:
    for entry in entries:
        for candidate in candidates:
            if entry.endswith("*") and candidate.startswith(entry[:-1]) and entry != "*":
                return True
            if entry == candidate:
                return True
    return False


@dataclass(frozen=True, slots=True)
class ContactRules:
    allow: tuple[str, ...]
    deny: tuple[str, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> ContactRules:
        section = settings.contacts
        return cls(
            allow=tuple(normalise_entry(e) for e in section.allow),
            deny=tuple(normalise_entry(e) for e in section.deny),
        )

    def answers(self, address: str, phone_number: str | None) -> bool:
        """False for a denied sender, or for one missing from a non-empty allow list."""
        candidates = [address.lower()]
        for number in (phone_number, address):
            if number and "@" not in number and digits(number):
                candidates.append(digits(number))
        if _matches(self.deny, candidates):
            return False
        return not self.allow or _matches(self.allow, candidates)


class Rate(enum.Enum):
    ANSWER = "answer"
    NOTICE = "notice"  # over the limit: tell the sender once, answer the rest later
    WAIT = "wait"  # over the limit, already told


@dataclass(frozen=True, slots=True)
class RateCheck:
    verdict: Rate
    retry_at: datetime | None = None


def check_rate(
    replies: Sequence[tuple[datetime, str]],
    *,
    limit: int,
    window: timedelta,
    now: datetime,
) -> RateCheck:
    """Whether a sender may get another reply now, from the bot's recent replies to them
    (time and mode, oldest first, covering at least ``NOTICE_INTERVAL``). ``limit`` 0
    means no limit. Over it, ``retry_at`` is when the oldest reply in the window expires."""
    if limit <= 0:
        return RateCheck(Rate.ANSWER)
    counted = [at for at, mode in replies if mode != RATE_NOTICE_MODE and at > now - window]
    if len(counted) < limit:
        return RateCheck(Rate.ANSWER)
    retry_at = counted[-limit] + window
    noticed = any(mode == RATE_NOTICE_MODE and at > now - NOTICE_INTERVAL for at, mode in replies)
    return RateCheck(Rate.WAIT if noticed else Rate.NOTICE, retry_at)
