"""The contract every store follows.

Every guarantee (dedup, atomic message writes) is an operation on the store, never
in-process state, so several nicobot workers may share one store.
"""

from __future__ import annotations

import abc
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from ..dashboard import ActivityRow, Dashboard, period, summarize
from ..models import (
    Change,
    ChatSession,
    ClaimedTurn,
    FailedTurn,
    IncomingMessage,
    Message,
    OutboxEntry,
    Role,
)

if TYPE_CHECKING:
    from typing import Self

    from ..config import Settings


class LostClaim(Exception):
    """A turn's claim expired and another worker took it; its result is dropped."""


class Store(abc.ABC):
    """Conversations, messages, webhook dedup records and persisted settings."""

    #: The name a project picks in ``[store] backend = "..."``.
    name: ClassVar[str]
    #: How many of the oldest pending entries of conversations no worker holds a claim
    #: looks among first (at least four per turn asked for), so that its cost does not grow
    #: with the backlog; it looks at the whole backlog only when they hold fewer ready
    #: turns than asked for.
    claim_window: int = 32

    def claim_window_for(self, limit: int) -> int:
        return max(self.claim_window, 4 * limit)

    @classmethod
    @abc.abstractmethod
    def from_settings(cls, settings: Settings) -> Self:
        """Build the store for a project (its files go under ``settings.data_path``)."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and migrate the schema to the current version."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    # sessions
    @abc.abstractmethod
    async def get_session(self, session_id: str) -> ChatSession | None: ...

    @abc.abstractmethod
    async def put_session(self, session: ChatSession) -> None:
        """Insert or update ``session`` (its channel and address are its key)."""

    @abc.abstractmethod
    async def delete_session(self, session_id: str) -> bool:
        """Delete a session and its messages; False when it did not exist."""

    @abc.abstractmethod
    async def list_sessions(
        self, channel: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[ChatSession]:
        """Sessions, the most recently active first."""

    @abc.abstractmethod
    async def get_or_create_session(
        self,
        channel: str,
        address: str,
        *,
        phone_number: str | None = None,
        sender_name: str | None = None,
        prompt_context: str | None = None,
    ) -> tuple[ChatSession, bool]:
        """The session for (channel, address), created if missing; True when created.

        A known session gets a newer ``sender_name`` or ``phone_number`` when given.
        """

    # messages
    @abc.abstractmethod
    async def add_message(
        self, session_id: str, role: Role, text: str, meta: dict[str, Any] | None = None
    ) -> Message:
        """Append a message and update the session's last message, atomically."""

    @abc.abstractmethod
    async def list_messages(self, session_id: str, limit: int | None = None) -> list[Message]:
        """The session's messages in order; with ``limit``, only the latest ones."""

    # webhook dedup
    @abc.abstractmethod
    async def claim_message_id(self, channel: str, message_id: str) -> bool:
        """Record a platform message id; True for the first claim only, atomically."""

    @abc.abstractmethod
    async def purge_claims(self, older_than: timedelta) -> int:
        """Remove dedup records older than ``older_than``; return how many."""

    # the durable pipeline (inbox, turns, outbox, handoff)
    @abc.abstractmethod
    async def enqueue(
        self, message: IncomingMessage, *, debounce: float, max_wait: float
    ) -> tuple[ChatSession, int] | None:
        """Record a customer message in one atomic step: its session, an inbox entry keyed
        by (channel, message id) and the transcript line. None for a duplicate delivery.

        The entry becomes ready ``debounce`` seconds after the session's latest pending
        message, but never later than ``max_wait`` after its oldest. Returns the session
        and the inbox entry id. A paused session's messages are stored but not queued.
        """

    @abc.abstractmethod
    async def record_operator_message(
        self, message: IncomingMessage, *, pause_for: timedelta
    ) -> ChatSession | None:
        """Store a message the business typed itself and pause the session for
        ``pause_for``. None for a duplicate, or for the echo of a reply nicobot sent
        (same platform id, or the same text as a reply being sent or sent lately)."""

    @abc.abstractmethod
    async def claim_turns(self, worker: str, limit: int, lease: float) -> list[ClaimedTurn]:
        """Claim up to ``limit`` ready turns, at most one per session, for ``lease``
        seconds. A session with a claimed turn is skipped until it completes. Turns come
        oldest first across sessions; entries by platform timestamp, then arrival.
        Entries without debounce are claimed one at a time.

        A session's pending entries are ready once their debounce has passed and none
        waits for a later retry (:meth:`retry_turn_later`). Claiming counts an attempt
        on each entry; ``ClaimedTurn.attempts`` is the highest count among them, so a
        turn whose worker died mid-way (its lease given back by :meth:`release_worker`)
        has that attempt counted too."""

    @abc.abstractmethod
    async def next_turn_at(self) -> float | None:
        """Unix time at which the next pending turn becomes ready (debounce and retry
        time both passed), or None."""

    @abc.abstractmethod
    async def complete_turn(
        self,
        turn: ClaimedTurn,
        reply: str | None,
        meta: dict[str, Any],
        outbox_parts: list[str],
    ) -> Message | None:
        """In one transaction: store the reply (if any), queue ``outbox_parts`` for the
        channel, and mark the turn's entries done. Raise :class:`LostClaim` (and change
        nothing) when the turn is no longer claimed by ``turn.worker``."""

    @abc.abstractmethod
    async def release_turn(self, turn: ClaimedTurn) -> None:
        """Give a claimed turn back (on shutdown) so it is claimed again at once; the
        attempt it counted is given back too. Only entries still claimed by
        ``turn.worker`` change."""

    @abc.abstractmethod
    async def retry_turn_later(self, turn: ClaimedTurn, error: str, retry_at: float) -> None:
        """An attempt at answering ``turn`` failed with ``error``: make its entries
        pending again, not claimable before ``retry_at`` (unix time). The attempt stays
        counted. Only entries still claimed by ``turn.worker`` change."""

    @abc.abstractmethod
    async def park_turn(
        self,
        turn: ClaimedTurn,
        error: str,
        reply: str | None,
        meta: dict[str, Any],
        outbox_parts: list[str],
    ) -> Message | None:
        """The last attempt at ``turn`` failed: in one transaction mark its entries
        ``failed`` (with ``error`` and the time), and store ``reply`` (the apology, if
        any) with its ``outbox_parts`` as :meth:`complete_turn` does. Raises
        ``LostClaim`` (as :meth:`complete_turn`) when another worker holds the turn."""

    @abc.abstractmethod
    async def list_failed_turns(self, limit: int = 100) -> list[FailedTurn]:
        """Parked (failed) inbox entries, the newest first."""

    @abc.abstractmethod
    async def retry_turn(self, entry_id: int) -> bool:
        """Queue a parked entry again with its attempts reset; False if it is not failed."""

    @abc.abstractmethod
    async def claim_outbox(self, worker: str, limit: int, lease: float) -> list[OutboxEntry]:
        """Claim due outbox entries, only the oldest unsent of each session, for ``lease``
        seconds, counting an attempt and stamping ``first_attempt_at`` on the first.
        An entry whose lease expired while sending is claimed again with ``recovered``
        and ``uncertain`` set: it may have reached the platform already. ``uncertain``
        also stays set from an attempt recorded with ``outbox_failed(...,
        uncertain=True)``."""

    @abc.abstractmethod
    async def outbox_sent(self, entry_id: int, platform_id: str | None) -> None: ...

    @abc.abstractmethod
    async def outbox_failed(
        self, entry_id: int, error: str, retry_at: float | None, *, uncertain: bool = False
    ) -> None:
        """Record a failed attempt; retry at ``retry_at`` (unix time), or give up if None.
        ``uncertain`` records that the platform may have the message anyway (the next
        claim has ``uncertain`` set); False clears it."""

    @abc.abstractmethod
    async def retry_outbox(self, entry_id: int) -> bool:
        """Queue a failed entry again, with its attempts and ``first_attempt_at``
        reset (a fresh maximum age); False if it is not failed."""

    @abc.abstractmethod
    async def outbox_due_now(self, channel: str) -> int:
        """Make every pending entry of ``channel`` that waits for a later retry due now
        (the channel reconnected); returns how many."""

    @abc.abstractmethod
    async def list_outbox(self, status: str | None = None, limit: int = 100) -> list[OutboxEntry]:
        """Outbox entries, the newest first."""

    @abc.abstractmethod
    async def release_worker(self, worker: str) -> tuple[int, int]:
        """Give back the turns and outbox entries a dead worker held; returns how many."""

    @abc.abstractmethod
    async def workers_holding_work(self) -> set[str]:
        """Worker ids that hold claimed turns or outbox entries."""

    @abc.abstractmethod
    async def set_paused(self, session_id: str, until: datetime | None) -> bool:
        """Pause a session until ``until`` (None resumes it); pending messages are
        dropped from the queue while paused. False if the session does not exist."""

    @abc.abstractmethod
    async def set_opted_out(self, session_id: str, opted_out: bool) -> bool:
        """Record that the customer opted out (``opted_out_at`` becomes now) or back in
        (it becomes None); the bot stays silent in an opted-out session. The session's
        messages are kept either way. False if the session does not exist."""

    @abc.abstractmethod
    async def set_transcript(self, message_id: int, transcript: str) -> None:
        """Store the transcript of a voice note as the text of its transcript line
        (``messages.id``), with ``meta["transcribed"] = True``."""

    @abc.abstractmethod
    async def recent_replies(self, session_id: str, since: datetime) -> list[tuple[datetime, str]]:
        """The bot's replies in a session since ``since``: their time and ``meta["mode"]``
        (``""`` when unset), oldest first. The per-sender rate limit counts them."""

    @abc.abstractmethod
    async def defer_turn(
        self,
        turn: ClaimedTurn,
        until: float,
        notice: str | None,
        meta: dict[str, Any],
        outbox_parts: list[str],
    ) -> None:
        """In one transaction: give a claimed turn back as pending, with every pending
        entry of its session not ready before ``until`` (unix time; the pending entries of
        a session that were deferred are then claimed together, as one turn); and store
        ``notice`` (if any) as a reply queued as ``outbox_parts``. Raises
        ``nicobot.store.sqlite.LostClaim`` like :meth:`complete_turn` when the claim was lost."""

    @abc.abstractmethod
    async def claim_non_text_reply(self, session_id: str, interval: timedelta) -> bool:
        """True (once per ``interval``) when the "text only" reply may be sent again."""

    @abc.abstractmethod
    async def pipeline_counts(self) -> dict[str, int]:
        """Queue sizes: ``turns_pending``, ``turns_claimed``, ``turns_failed``,
        ``outbox_pending``, ``outbox_sending`` and ``outbox_failed``."""

    # settings edited from the admin page
    @abc.abstractmethod
    async def get_setting(self, key: str) -> str | None: ...

    @abc.abstractmethod
    async def set_setting(self, key: str, value: str | None) -> None:
        """Store ``value`` under ``key``; None removes it."""

    # the operator inbox: replies from the pages, delivery states, search, live changes

    @abc.abstractmethod
    async def add_operator_reply(
        self,
        session_id: str,
        text: str,
        *,
        outbox_parts: list[str],
        pause_until: datetime,
        meta: dict[str, Any] | None = None,
    ) -> tuple[Message, ChatSession] | None:
        """In one transaction: store a person's reply typed in nicobot's pages (role
        ``operator``), queue ``outbox_parts`` for the session's channel (each entry
        carrying the message's id), and pause the session until at least
        ``pause_until`` (pending customer messages leave the queue, as for any pause).
        None when the session does not exist.

        Its delivery then looks like the bot's own replies to
        :meth:`record_operator_message`, so the platform's echo of it is not taken for
        a message typed on the business's phone."""

    @abc.abstractmethod
    async def session_deliveries(self, session_id: str) -> list[OutboxEntry]:
        """Every outbox entry of a session, oldest first, with ``message_id`` set for
        entries queued with their transcript line."""

    @abc.abstractmethod
    async def search_sessions(
        self, query: str, channel: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[ChatSession]:
        """Sessions whose contact name, phone number or address, or any message text,
        contains ``query`` (case-insensitive; letters match with or without accents;
        a query of digits also matches numbers written with spaces or a +). ``%`` and
        ``_`` in the query are literal. The most recently active first."""

    @abc.abstractmethod
    async def changes_since(self, after: int, limit: int = 500) -> list[Change]:
        """Changes the pages show (new messages, delivery states, pauses, deletions)
        with an id above ``after``, oldest first, as recorded by every worker sharing
        the store. A store keeps at least the latest few thousand."""

    @abc.abstractmethod
    async def latest_change(self) -> int:
        """The id of the newest change (0 when there is none)."""

    @abc.abstractmethod
    async def oldest_change(self) -> int:
        """The id of the oldest change still kept (0 when there is none): a reader that
        last saw an id below it missed some."""

    @abc.abstractmethod
    async def activity(self, since: datetime, until: datetime) -> list[ActivityRow]:
        """Transcript lines created in [``since``, ``until``), oldest first, as the
        dashboard reads them (customer lines with their text, replies with their mode)."""

    @abc.abstractmethod
    async def count_failed_sends(self, since: datetime, until: datetime) -> int:
        """Outbox entries created in [``since``, ``until``) that failed for good."""

    async def dashboard(self, days: int, timezone: str) -> Dashboard:
        """The admin page's figures for the last ``days`` days (today included) in
        ``timezone``: messages and conversations per day, replies by the bot and by
        people, handoffs, failed sends, LLM errors, the median time to a first reply
        and the questions no document answered."""
        since, until = period(days, timezone)
        rows = await self.activity(since, until)
        return summarize(rows, await self.count_failed_sends(since, until), since, until)
