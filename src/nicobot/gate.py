"""What happens to a turn before the agent sees it: opt-out and opt-in.

:meth:`Gate.check` returns None when the turn is answered as usual, or a
:class:`Decision` that replaces the agent's reply (possibly with silence).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .agent import AgentReply, canned_message
from .optout import OptOutKeywords

if TYPE_CHECKING:
    from .config import Settings
    from .models import ClaimedTurn
    from .store import Store

log = logging.getLogger("nicobot.gate")


@dataclass(frozen=True, slots=True)
class Decision:
    """The turn is not answered by the agent: ``reply`` is sent instead (None: silence)."""

    reply: AgentReply | None
    reason: str


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

    async def check(self, turn: ClaimedTurn) -> Decision | None:
        return await self._opt_out(turn)

    async def _opt_out(self, turn: ClaimedTurn) -> Decision | None:
        session = turn.session
        if not self.settings.optout.enabled:
            return None
        texts = [entry.message.text for entry in turn.entries]
        if session.opted_out:
            if not any(self.optout.wants_in(text) for text in texts):
                return Decision(None, "opted_out")
            await self.store.set_opted_out(session.id, False)
            session.opted_out_at = None
            log.info("the customer of session %s opted in again", session.id)
            return Decision(_canned(self.settings, "opt_in", "opt_in"), "opt_in")
        if any(self.optout.wants_out(text) for text in texts):
            await self.store.set_opted_out(session.id, True)
            log.info("the customer of session %s opted out; the bot stays silent", session.id)
            keyword = self.optout.opt_in_word.upper()
            return Decision(
                _canned(self.settings, "opt_out", "opt_out", keyword=keyword), "opt_out"
            )
        return None
