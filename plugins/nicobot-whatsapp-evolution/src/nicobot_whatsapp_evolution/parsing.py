"""Evolution API webhook bodies to nicobot events: pure functions, no I/O.

:func:`parse_webhook` never raises, whatever JSON it is given: anything it does not
handle comes back as :class:`Ignored` with a reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from nicobot import IncomingMessage, MessageKind

CHANNEL = "whatsapp"
PHONE_DOMAIN = "s.whatsapp.net"
LID_DOMAIN = "lid"
#: Key fields that may name the customer, in the order they are trusted.
JID_FIELDS = ("remoteJid", "remoteJidAlt", "senderPn", "previousRemoteJid")
#: Wrappers that hold the real content under ``.message``.
WRAPPERS = (
    "ephemeralMessage",
    "viewOnceMessage",
    "viewOnceMessageV2",
    "viewOnceMessageV2Extension",
    "documentWithCaptionMessage",
)
CAPTIONED = ("imageMessage", "videoMessage", "documentMessage")
#: Message contents that are not something a customer asked: never answered.
NOT_MESSAGES = {
    "reactionMessage": "reaction",
    "encReactionMessage": "reaction",
    "protocolMessage": "protocol message (delete, edit, ...)",
    "editedMessage": "edited message",
    "pollUpdateMessage": "poll vote",
    "keepInChatMessage": "keep-in-chat",
    "pinInChatMessage": "pin",
}
#: Keys that travel beside the content and are not content themselves.
SIDE_KEYS = frozenset({"messageContextInfo", "senderKeyDistributionMessage", "contextInfo"})
MAX_UNWRAP = 6
MAX_LIST = 500
#: Message contents whose file nicobot may fetch, and what the core calls them.
MEDIA_TYPES = {"audioMessage": "audio", "imageMessage": "image", "stickerMessage": "image"}
#: The webhook's own copy of a file (``"base64": true`` on the instance's webhook) is
#: kept only up to this size; larger files are fetched when needed, within the limit.
DEFAULT_MAX_MEDIA_BYTES = 10_000_000


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """A message to hand to the bot. ``lid`` is the contact's ``@lid`` id when known."""

    message: IncomingMessage
    lid: str | None = None


@dataclass(frozen=True, slots=True)
class ConnectionUpdate:
    """``state``: ``open``, ``connecting``, ``close`` or ``refused`` (QR limit reached)."""

    state: str
    status_reason: int | None = None

    @property
    def logged_out(self) -> bool:
        return self.state == "close" and self.status_reason == 401


@dataclass(frozen=True, slots=True)
class QRUpdate:
    code: str | None
    base64: str | None


@dataclass(frozen=True, slots=True)
class Ignored:
    reason: str


Event = MessageEvent | ConnectionUpdate | QRUpdate | Ignored


def event_name(value: object) -> str | None:
    """``MESSAGES_UPSERT`` and ``messages.upsert`` (and ``messages-upsert``) alike."""
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip().lower().replace("_", ".").replace("-", ".")


@dataclass(frozen=True, slots=True)
class Freshness:
    """Which old messages are answered.

    A message older than ``max_age_seconds`` that was written while the instance was
    offline (inside ``offline``, ``(start or None for "since ever", end)``) is a history
    replay and is skipped. Any other message, merely delivered late (nicobot was down,
    the webhook was retried), is answered up to ``max_late_seconds``. Without
    ``max_late_seconds`` every message older than ``max_age_seconds`` counts as a replay.
    """

    max_age_seconds: float
    max_late_seconds: float | None = None
    offline: tuple[datetime | None, datetime] | None = None

    def skip_reason(self, timestamp: datetime, now: datetime) -> str | None:
        age = (now - timestamp).total_seconds()
        if self.max_late_seconds is None:
            return REPLAY if age > self.max_age_seconds else None
        if age > self.max_late_seconds:
            return "too old to answer (older than max_late_reply_seconds)"
        if age > self.max_age_seconds and self._written_offline(timestamp):
            return REPLAY
        return None

    def _written_offline(self, timestamp: datetime) -> bool:
        if self.offline is None:
            return False
        start, end = self.offline
        # WhatsApp stamps whole seconds: a message of the second the instance came online
        # in may be stamped before that moment, and was written online
        return (start is None or start <= timestamp) and timestamp < end.replace(microsecond=0)


REPLAY = "stale message (replayed backlog)"


def parse_webhook(
    payload: object,
    *,
    now: datetime,
    max_age_seconds: float,
    own_instance: str | None = None,
    max_media_bytes: int = DEFAULT_MAX_MEDIA_BYTES,
    freshness: Freshness | None = None,
) -> list[Event]:
    """Turn one webhook body into events (one per item of ``data`` when it is a list).
    ``freshness`` (default: ``Freshness(max_age_seconds)``) says which old messages are
    skipped as history replays."""
    fresh = freshness or Freshness(max_age_seconds)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    if not isinstance(payload, dict):
        return [Ignored("malformed: the body is not a JSON object")]
    name = event_name(payload.get("event"))
    if name is None:
        return [Ignored("malformed: no event name")]
    instance = payload.get("instance")
    if own_instance is not None and isinstance(instance, str) and instance != own_instance:
        return [Ignored(f"event for another instance ({instance[:60]})")]
    data = payload.get("data")
    items = data[:MAX_LIST] if isinstance(data, list) else [data]
    if name == "messages.upsert":
        return [_message(item, now, fresh, max_media_bytes) for item in items] or [
            Ignored("malformed: empty data")
        ]
    if name == "connection.update":
        return [_connection(item) for item in items] or [Ignored("malformed: empty data")]
    if name == "qrcode.updated":
        return [_qrcode(item) for item in items] or [Ignored("malformed: empty data")]
    return [Ignored(f"unhandled event {name[:60]}")]


def _digits(value: str) -> bool:
    return value.isascii() and value.isdigit()


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    if isinstance(value, str) and _digits(value.strip()) and len(value.strip()) < 20:
        return int(value.strip())
    return None


def _name(value: object) -> str | None:
    text = _str(value)
    return text.strip()[:200] if text is not None else None


def _connection(data: object) -> Event:
    if not isinstance(data, dict):
        return Ignored("malformed connection.update")
    state = _str(data.get("state"))
    if state is None:
        return Ignored("connection.update without state")
    return ConnectionUpdate(
        state=state.strip().lower(), status_reason=_int(data.get("statusReason"))
    )


def _qrcode(data: object) -> Event:
    if not isinstance(data, dict):
        return Ignored("malformed qrcode.updated")
    qrcode = data.get("qrcode")
    if not isinstance(qrcode, dict):
        return Ignored("qrcode.updated without qrcode")
    code, base64 = _str(qrcode.get("code")), _str(qrcode.get("base64"))
    if code is None and base64 is None:
        return Ignored("qrcode.updated without a code")
    return QRUpdate(code=code, base64=base64)


def message_timestamp(value: object) -> datetime | None:
    """``messageTimestamp`` (unix seconds as int, str or a protobuf Long
    ``{"low", "high", "unsigned"}``) as an aware UTC datetime, or None."""
    seconds: int | None
    if isinstance(value, dict):
        low, high = _int(value.get("low")), _int(value.get("high"))
        seconds = None if low is None else (high or 0) * 2**32 + (low & 0xFFFFFFFF)
    else:
        seconds = _int(value)
    if seconds is None:
        return None
    if seconds > 10**12:  # milliseconds
        seconds //= 1000
    if not 0 < seconds < 2**33:
        return None
    return datetime.fromtimestamp(seconds, UTC)


def split_jid(jid: object) -> tuple[str, str] | None:
    """``"123:4@s.whatsapp.net"`` -> ``("123", "s.whatsapp.net")``, device dropped."""
    if not isinstance(jid, str) or "@" not in jid:
        return None
    user, _, domain = jid.strip().partition("@")
    user = user.split(":", 1)[0]
    if not user or not domain:
        return None
    return user, domain.lower()


def _unwrap(message: Mapping[str, Any]) -> Mapping[str, Any]:
    for _ in range(MAX_UNWRAP):
        for wrapper in WRAPPERS:
            inner = message.get(wrapper)
            if isinstance(inner, dict) and isinstance(inner.get("message"), dict):
                message = inner["message"]
                break
        else:
            return message
    return message


def message_text(message: Mapping[str, Any]) -> str | None:
    """The text of a message's content (unwrapped), or None."""
    return _text_of(_unwrap(message))


def _text_of(message: Mapping[str, Any]) -> str | None:
    text = _str(message.get("conversation"))
    if text is not None:
        return text
    extended = message.get("extendedTextMessage")
    if isinstance(extended, dict) and _str(extended.get("text")):
        return str(extended["text"])
    for kind in CAPTIONED:
        media = message.get(kind)
        if isinstance(media, dict) and _str(media.get("caption")):
            return str(media["caption"])
    return None


def _kind_without_text(message: Mapping[str, Any]) -> MessageKind:
    if "audioMessage" in message:
        return MessageKind.AUDIO
    if "imageMessage" in message:
        return MessageKind.IMAGE
    return MessageKind.OTHER


def media_reference(
    key: Mapping[str, Any], content: Mapping[str, Any], max_bytes: int
) -> dict[str, Any] | None:
    """What :meth:`WhatsAppChannel.fetch_media` needs later: the core's ``type`` and
    ``mimetype``, the key and content for ``getBase64FromMediaMessage``, and the
    webhook's own base64 copy when it came with one no larger than ``max_bytes``."""
    for field_name, media_type in MEDIA_TYPES.items():
        media = content.get(field_name)
        if not isinstance(media, dict):
            continue
        reference: dict[str, Any] = {
            "type": media_type,
            "field": field_name,
            "mimetype": _str(media.get("mimetype")) or "",
            "key": {k: key[k] for k in ("remoteJid", "fromMe", "id") if k in key},
            "message": {k: v for k, v in content.items() if k != "base64"},
        }
        length = _file_length(media.get("fileLength"))
        if length is not None:
            reference["file_length"] = length
        if media_type == "audio":
            reference["voice_note"] = media.get("ptt") is True
        copy = content.get("base64")
        if isinstance(copy, str) and copy and len(copy) <= (max_bytes * 4) // 3 + 4:
            reference["base64"] = copy
        return reference
    return None


def _file_length(value: object) -> int | None:
    if isinstance(value, dict):  # a protobuf Long
        low, high = _int(value.get("low")), _int(value.get("high"))
        return None if low is None else (high or 0) * 2**32 + (low & 0xFFFFFFFF)
    return _int(value)


def parse_stored_message(
    record: object,
    *,
    now: datetime,
    freshness: Freshness,
    max_media_bytes: int = DEFAULT_MAX_MEDIA_BYTES,
) -> Event:
    """A ``/chat/findMessages`` record (the upsert shape, as the gateway stored it) as an
    event, by the same rules as a webhook's message."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return _message(record, now, freshness, max_media_bytes)


def _message(data: object, now: datetime, freshness: Freshness, max_media_bytes: int) -> Event:
    if not isinstance(data, dict):
        return Ignored("malformed: message data is not an object")
    key = data.get("key")
    if not isinstance(key, dict):
        return Ignored("malformed: message without key")
    message_id = _str(key.get("id"))
    if message_id is None:
        return Ignored("malformed: message without id")

    jids = [split_jid(key.get(name)) for name in JID_FIELDS]
    parts = [p for p in jids if p is not None]
    for _user, domain in parts:
        if domain == "g.us":
            return Ignored("group message")
        if domain == "broadcast":
            return Ignored("broadcast or status message")
        if domain == "newsletter":
            return Ignored("channel (newsletter) message")
    if _str(key.get("participant")) and not any(d in (PHONE_DOMAIN, LID_DOMAIN) for _, d in parts):
        return Ignored("group message")
    phone = next((u for u, d in parts if d == PHONE_DOMAIN and _digits(u)), None)
    lid = next((f"{u}@{LID_DOMAIN}" for u, d in parts if d == LID_DOMAIN), None)
    address = phone or lid
    if address is None:
        return Ignored("no sender address")

    content = data.get("message")
    if not isinstance(content, dict):
        return Ignored("message without content")
    content = _unwrap(content)
    message_type = _str(data.get("messageType"))
    for field_name, reason in NOT_MESSAGES.items():
        if field_name in content or message_type == field_name:
            return Ignored(reason)
    if not any(k not in SIDE_KEYS for k in content):
        return Ignored("message without content")

    timestamp = message_timestamp(data.get("messageTimestamp"))
    skip = freshness.skip_reason(timestamp, now) if timestamp is not None else None
    if skip is not None:
        return Ignored(skip)

    from_me = key.get("fromMe") is True or key.get("fromMe") == "true"
    text = _text_of(content)
    kind = MessageKind.TEXT if text is not None else _kind_without_text(content)
    incoming = IncomingMessage(
        channel=CHANNEL,
        address=address,
        text=text or "",
        message_id=message_id,
        phone_number=phone,
        # on the business's own messages pushName is the business's name
        sender_name=None if from_me else _name(data.get("pushName")),
        kind=kind,
        timestamp=timestamp or now,
        from_business=from_me,
        raw=data,
        media=None if from_me else media_reference(key, content, max_media_bytes),
    )
    return MessageEvent(message=incoming, lid=lid)
