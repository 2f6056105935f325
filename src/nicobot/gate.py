"""What happens to a turn before the agent sees it: contact lists, opt-out and opt-in,
the per-sender rate limit and the out-of-office reply; and, after it, what business
hours change in a reply.

:meth:`Gate.check` returns None when the turn is answered as usual, or a
:class:`Decision` that replaces the agent's reply (possibly with silence).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from .agent import AgentReply, canned_message
from .contacts import NOTICE_INTERVAL, RATE_NOTICE_MODE, ContactRules, Rate, check_rate
from .hours import BusinessHours, describe_when
from .models import utcnow
from .optout import OptOutKeywords

if TYPE_CHECKING:
    from .config import Settings
    from .models import ChatSession, ClaimedTurn
    from .store import Store

log = logging.getLogger("nicobot.gate")


@dataclass(frozen=True, slots=True)
class Decision:
    """The turn is not answered by the agent: ``reply`` is sent instead (None: silence).
    With ``defer_until`` (unix time) the turn waits in the inbox until then."""

    reply: AgentReply | None
    reason: str
    defer_until: float | None = None


def _canned(settings: Settings, key: str, mode: str, **values: str) -> AgentReply:
    text = canned_message(settings, key)
    for name, value in values.items():
        text = text.replace(f"%({name})s", value)
    return AgentReply(text, [], mode)


class Gate:
    """The bot's rules about whom it answers, applied to each claimed turn."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.optout = OptOutKeywords.from_settings(settings)
        self.contacts = ContactRules.from_settings(settings)
        self.hours = BusinessHours.from_settings(settings)

    async def check(self, turn: ClaimedTurn) -> Decision | None:
        session = turn.session
        if not self.contacts.answers(session.address, session.phone_number):
            return Decision(None, "not_answered")
        return (
            await self._opt_out(turn)
            or await self._rate_limit(turn)
            or await self._out_of_office(turn)
        )

    async def _rate_limit(self, turn: ClaimedTurn) -> Decision | None:
        contacts = self.settings.contacts
        if contacts.rate_limit_per_minute <= 0:
            return None
        now = utcnow()
        window = timedelta(seconds=contacts.rate_window_seconds)
        replies = await self.store.recent_replies(
            turn.session.id, now - max(window, NOTICE_INTERVAL)
        )
        rate = check_rate(replies, limit=contacts.rate_limit_per_minute, window=window, now=now)
        if rate.verdict is Rate.ANSWER or rate.retry_at is None:
            return None
        notice = None
        if rate.verdict is Rate.NOTICE:
            notice = _canned(self.settings, "rate_limited", RATE_NOTICE_MODE)
            log.info("session %s is over the rate limit; answering it later", turn.session.id)
        return Decision(notice, RATE_NOTICE_MODE, defer_until=rate.retry_at.timestamp())

    async def _opt_out(self, turn: ClaimedTurn) -> Decision | None:
        session = turn.session
        if not self.settings.optout.enabled:
            return None
        change = self._asked_for(session, [entry.message.text for entry in turn.entries])
        if change is None:
            return Decision(None, "opted_out") if session.opted_out else None
        await self.store.set_opted_out(session.id, change)
        if not change:
            session.opted_out_at = None
            log.info("the customer of session %s opted in again", session.id)
            return Decision(_canned(self.settings, "opt_in", "opt_in"), "opt_in")
        log.info("the customer of session %s opted out; the bot stays silent", session.id)
        keyword = self.optout.opt_in_word.upper()
        return Decision(_canned(self.settings, "opt_out", "opt_out", keyword=keyword), "opt_out")

    def _asked_for(self, session: ChatSession, texts: list[str]) -> bool | None:
        """The opt-out state ``texts`` ask for ("baja" while in, "alta" while out), or
        None when they leave it as it is."""
        if session.opted_out:
            return False if any(self.optout.wants_in(text) for text in texts) else None
        return True if any(self.optout.wants_out(text) for text in texts) else None

    async def note_while_paused(self, session: ChatSession, text: str) -> None:
        """A message to a paused conversation is not answered (a person has it), but
        "baja" and "alta" in it still count: they are recorded, silently."""
        change = self._asked_for(session, [text]) if self.settings.optout.enabled else None
        if change is not None:
            await self.store.set_opted_out(session.id, change)
            log.info(
                "the customer of paused session %s opted %s",
                session.id,
                "out" if change else "in again",
            )

    async def _out_of_office(self, turn: ClaimedTurn) -> Decision | None:
        """Closed, with ``[hours] out_of_office``: one reply per closed period, and the
        messages wait in the inbox until the business opens."""
        now = utcnow()
        if not self.settings.hours.out_of_office or self.hours.is_open(now):
            return None
        opening = self.hours.next_opening(now)
        if opening is None:
            return None
        closed_since = self.hours.last_closing(now) or now - timedelta(days=400)
        replies = await self.store.recent_replies(turn.session.id, closed_since)
        notice = None
        if not any(mode == "out_of_office" for _at, mode in replies):
            when = describe_when(opening, now, self.settings.bot.language)
            notice = _canned(self.settings, "out_of_office", "out_of_office", when=when)
        return Decision(notice, "out_of_office", defer_until=opening.timestamp())

    def outside_hours(
        self, reply: AgentReply | None, now: datetime | None = None
    ) -> AgentReply | None:
        """While closed, the handoff reply and the offline fallback name the next opening."""
        now = now or utcnow()
        if reply is None or not self.hours.configured or self.hours.is_open(now):
            return reply
        closed_key = {"handoff": "handoff_closed", "offline": "offline_fallback_closed"}
        open_key = {"handoff": "handoff", "offline": "offline_fallback"}.get(reply.mode)
        if open_key is None or reply.text != canned_message(self.settings, open_key):
            return reply
        opening = self.hours.next_opening(now)
        if opening is None:
            return reply
        when = describe_when(opening, now, self.settings.bot.language)
        closed = _canned(self.settings, closed_key[reply.mode], reply.mode, when=when)
        reply.text = closed.text
        return reply
