"""The admin page's dashboard: how the bot is doing, computed from the store's activity.

Stores hand over their transcript lines of a period (:class:`ActivityRow`, oldest first);
:func:`summarize` turns them into the figures, so that every store counts the same way.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .models import Role

#: Reply modes that answer from the knowledge base, or try to.
ANSWER_MODES = ("llm", "offline")
UNANSWERED_SHOWN = 20


@dataclass(frozen=True, slots=True)
class ActivityRow:
    """One transcript line, as the dashboard needs it."""

    session_id: str
    role: Role
    created_at: datetime
    #: The reply's mode (bot lines): llm, offline, apology, handoff, non_text.
    mode: str | None = None
    #: True when the reply used passages from the knowledge base.
    used_sources: bool = False
    #: The customer's text (customer lines only).
    text: str | None = None


@dataclass(slots=True)
class DayFigures:
    day: date
    messages: int = 0
    customer_messages: int = 0
    conversations: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "messages": self.messages,
            "customer_messages": self.customer_messages,
            "conversations": self.conversations,
        }


@dataclass(slots=True)
class UnansweredQuestion:
    """A question no document answered, how often it came, and where last."""

    text: str
    count: int
    last_at: datetime
    session_id: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "count": self.count,
            "last_at": self.last_at.isoformat(),
            "session_id": self.session_id,
        }


@dataclass(slots=True)
class Dashboard:
    """The figures of a period of whole days in the bot's time zone."""

    first_day: date
    last_day: date
    timezone: str
    days: list[DayFigures]
    messages: int = 0
    customer_messages: int = 0
    conversations: int = 0
    bot_replies: int = 0
    operator_replies: int = 0
    handoffs: int = 0
    failed_sends: int = 0
    llm_errors: int = 0
    median_reply_seconds: float | None = None
    unanswered: list[UnansweredQuestion] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "first_day": self.first_day.isoformat(),
            "last_day": self.last_day.isoformat(),
            "timezone": self.timezone,
            "messages": self.messages,
            "customer_messages": self.customer_messages,
            "conversations": self.conversations,
            "bot_replies": self.bot_replies,
            "operator_replies": self.operator_replies,
            "handoffs": self.handoffs,
            "failed_sends": self.failed_sends,
            "llm_errors": self.llm_errors,
            "median_reply_seconds": self.median_reply_seconds,
            "days": [d.to_dict() for d in self.days],
            "unanswered": [q.to_dict() for q in self.unanswered],
        }


def period(days: int, timezone: str, today: date | None = None) -> tuple[datetime, datetime]:
    """The start and end (exclusive) of the last ``days`` whole days, today included."""
    zone = ZoneInfo(timezone)
    last = today or datetime.now(zone).date()
    first = last - timedelta(days=days - 1)
    return (
        datetime.combine(first, datetime.min.time(), zone),
        datetime.combine(last + timedelta(days=1), datetime.min.time(), zone),
    )


@dataclass(slots=True)
class _Conversation:
    """What one conversation is waiting for while its lines are read in order."""

    waiting_since: datetime | None = None
    question: str | None = None
    #: A person answers (the bot handed over, or a person wrote) until the bot replies.
    with_a_person: bool = False


def _question_key(text: str) -> str:
    return re.sub(r"\s+", " ", text.casefold()).strip(" ¿?¡!.,;:")


def summarize(
    rows: list[ActivityRow], failed_sends: int, since: datetime, until: datetime
) -> Dashboard:
    """The dashboard of ``rows`` (oldest first) between ``since`` and ``until``."""
    zone = since.tzinfo
    assert isinstance(zone, ZoneInfo)
    first, last = since.date(), (until - timedelta(seconds=1)).date()
    days = {
        first + timedelta(days=n): DayFigures(first + timedelta(days=n))
        for n in range((last - first).days + 1)
    }
    result = Dashboard(first, last, zone.key, list(days.values()), failed_sends=failed_sends)
    people_per_day: dict[date, set[str]] = {day: set() for day in days}
    conversations: dict[str, _Conversation] = {}
    reply_seconds: list[float] = []
    unanswered: dict[str, UnansweredQuestion] = {}
    for row in rows:
        day = row.created_at.astimezone(zone).date()
        figures = days.get(day)
        if figures is None:
            continue
        figures.messages += 1
        people_per_day[day].add(row.session_id)
        state = conversations.setdefault(row.session_id, _Conversation())
        if row.role is Role.USER:
            figures.customer_messages += 1
            if state.waiting_since is None:
                state.waiting_since = row.created_at
            state.question = row.text or state.question
        elif row.role in (Role.ASSISTANT, Role.OPERATOR):
            _count_reply(result, row, state)
            if state.waiting_since is not None:
                reply_seconds.append((row.created_at - state.waiting_since).total_seconds())
            if _is_unanswered(row) and state.question:
                _add_unanswered(unanswered, state.question, row)
            state.waiting_since = None
            state.question = None
    for day, people in people_per_day.items():
        days[day].conversations = len(people)
    result.messages = sum(d.messages for d in result.days)
    result.customer_messages = sum(d.customer_messages for d in result.days)
    result.conversations = len({row.session_id for row in rows if _inside(row, since, until)})
    if reply_seconds:
        result.median_reply_seconds = round(statistics.median(reply_seconds), 1)
    result.unanswered = sorted(
        unanswered.values(), key=lambda q: (-q.count, -q.last_at.timestamp())
    )
    result.unanswered = result.unanswered[:UNANSWERED_SHOWN]
    return result


def _inside(row: ActivityRow, since: datetime, until: datetime) -> bool:
    return since <= row.created_at < until


def _count_reply(result: Dashboard, row: ActivityRow, state: _Conversation) -> None:
    if row.role is Role.ASSISTANT:
        result.bot_replies += 1
        if row.mode == "apology":
            result.llm_errors += 1
        if row.mode == "handoff" and not state.with_a_person:
            result.handoffs += 1
        state.with_a_person = row.mode == "handoff"
        return
    result.operator_replies += 1
    if not state.with_a_person:
        result.handoffs += 1
    state.with_a_person = True


def _is_unanswered(row: ActivityRow) -> bool:
    return row.role is Role.ASSISTANT and row.mode in ANSWER_MODES and not row.used_sources


def _add_unanswered(found: dict[str, UnansweredQuestion], text: str, row: ActivityRow) -> None:
    key = _question_key(text)
    if not key:
        return
    known = found.get(key)
    if known is None:
        found[key] = UnansweredQuestion(text.strip(), 1, row.created_at, row.session_id)
    else:
        known.count += 1
        known.text, known.last_at, known.session_id = text.strip(), row.created_at, row.session_id
