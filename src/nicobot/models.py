"""The objects that travel between channels, the store and the agent."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def utcnow() -> datetime:
    return datetime.now(UTC)


class MessageKind(enum.StrEnum):
    """What a customer sent. Only text reaches the agent."""

    TEXT = "text"
    AUDIO = "audio"
    IMAGE = "image"
    OTHER = "other"


class Role(enum.StrEnum):
    """Who wrote a message in a transcript."""

    USER = "user"
    ASSISTANT = "assistant"
    OPERATOR = "operator"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A message from a customer, normalized by its channel.

    ``address`` is where replies go: a phone number, or an opaque id (such as a
    WhatsApp ``...@lid`` JID) when the platform hides the number.
    ``from_business`` marks a message typed by the business itself (a person at the
    business's own phone): it is stored as an operator message and never answered.
    ``message_id`` is the platform's id, unique per channel: a second delivery with the
    same id is dropped. ``raw`` is the platform's payload as the channel parsed it; it
    is not stored, so the ``message_received`` hook is where plugins see it (messages
    read back from the store have ``raw=None``).
    """

    channel: str
    address: str
    text: str
    message_id: str
    phone_number: str | None = None
    sender_name: str | None = None
    kind: MessageKind = MessageKind.TEXT
    timestamp: datetime = field(default_factory=utcnow)
    from_business: bool = False
    raw: Any = field(default=None, repr=False)
    #: What the channel needs to fetch an attached file later (a voice note, an image):
    #: JSON-safe, kept with the message in the inbox; None for plain text.
    media: dict[str, Any] | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class MediaFile:
    """A file a customer sent, fetched by its channel. Its bytes are never logged."""

    data: bytes = field(repr=False)
    mimetype: str
    filename: str

    def __repr__(self) -> str:
        return f"MediaFile({self.filename!r}, {self.mimetype!r}, {len(self.data)} bytes)"

    def data_uri(self) -> str:
        import base64

        mimetype = self.mimetype.split(";", 1)[0].strip() or "application/octet-stream"
        return f"data:{mimetype};base64,{base64.b64encode(self.data).decode('ascii')}"


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A reply on its way to a channel."""

    channel: str
    address: str
    text: str


@dataclass(slots=True)
class ChatSession:
    """A conversation with one person on one channel."""

    id: str
    channel: str
    address: str
    phone_number: str | None = None
    sender_name: str | None = None
    prompt_context: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    last_message: str | None = None
    last_message_at: datetime | None = None
    paused_until: datetime | None = None
    opted_out_at: datetime | None = None

    @property
    def paused(self) -> bool:
        return self.paused_until is not None and self.paused_until > utcnow()

    @property
    def opted_out(self) -> bool:
        """The customer asked the bot to stop writing (until they opt in again)."""
        return self.opted_out_at is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "channel": self.channel,
            "address": self.address,
            "phone_number": self.phone_number,
            "sender_name": self.sender_name,
            "prompt_context": self.prompt_context,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "last_message": self.last_message,
            "last_message_at": (self.last_message_at.isoformat() if self.last_message_at else None),
            "paused": self.paused,
            "paused_until": self.paused_until.isoformat()
            if self.paused_until and self.paused
            else None,
            "opted_out": self.opted_out,
            "opted_out_at": self.opted_out_at.isoformat() if self.opted_out_at else None,
        }


@dataclass(slots=True)
class Message:
    """One line of a transcript."""

    id: int
    session_id: str
    role: Role
    text: str
    created_at: datetime
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "session_id": self.session_id,
            "role": self.role.value,
            "text": self.text,
            "created_at": self.created_at.isoformat(),
            "meta": self.meta,
        }


@dataclass(slots=True)
class InboxEntry:
    """A customer message waiting in the durable inbox for its turn."""

    id: int
    session_id: str
    message: IncomingMessage
    message_row_id: int | None = None


@dataclass(slots=True)
class ClaimedTurn:
    """Messages of one conversation claimed to be answered together (one reply)."""

    session: ChatSession
    entries: list[InboxEntry]
    worker: str = ""
    #: Attempts so far at answering it, this one included.
    attempts: int = 1

    @property
    def entry_ids(self) -> list[int]:
        return [entry.id for entry in self.entries]


@dataclass(slots=True)
class OutboxEntry:
    """A reply (or one part of a long reply) waiting to be delivered."""

    id: int
    session_id: str
    channel: str
    address: str
    text: str
    status: str
    attempts: int
    created_at: datetime
    last_error: str | None = None
    platform_id: str | None = None
    sent_at: datetime | None = None
    #: The lease of an earlier attempt expired while sending (a crash).
    recovered: bool = False
    #: An earlier attempt may have reached the platform: reconcile before sending again.
    uncertain: bool = False
    #: Unix time of the first attempt (None before it).
    first_attempt_at: float | None = None
    #: The transcript line this entry delivers (a long reply has several entries).
    message_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "session_id": self.session_id,
            "channel": self.channel,
            "address": self.address,
            "text": self.text,
            "status": self.status,
            "attempts": self.attempts,
            "created_at": self.created_at.isoformat(),
            "last_error": self.last_error,
            "platform_id": self.platform_id,
            "sent_at": self.sent_at.isoformat() if self.sent_at else None,
            "message_id": self.message_id,
        }


@dataclass(frozen=True, slots=True)
class Change:
    """Something the pages show changed in the store (for live updates).

    ``kind`` is ``message`` (a new transcript line), ``delivery`` (an outbox entry
    changed state), ``session`` (a pause or resume) or ``deleted`` (a conversation).
    ``id`` grows with every change, across every worker sharing the store.
    """

    id: int
    kind: str
    session_id: str
    message_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "session_id": self.session_id,
            "message_id": self.message_id,
        }


@dataclass(slots=True)
class FailedTurn:
    """A customer message that could not be answered after every attempt (parked)."""

    id: int
    session_id: str
    channel: str
    address: str
    text: str
    attempts: int
    last_error: str | None
    received_at: datetime
    failed_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "session_id": self.session_id,
            "channel": self.channel,
            "address": self.address,
            "text": self.text,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "received_at": self.received_at.isoformat(),
            "failed_at": self.failed_at.isoformat() if self.failed_at else None,
        }
