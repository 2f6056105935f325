"""Telegram updates to nicobot messages, and long replies to Telegram-sized parts.

Pure functions, no I/O. :func:`parse_update` never raises, whatever JSON it is given:
anything it does not answer comes back as :class:`Ignored` with a reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from nicobot import IncomingMessage, MessageKind

CHANNEL = "telegram"
#: The longest text one ``sendMessage`` takes, in UTF-16 code units.
MAX_MESSAGE_LENGTH = 4096
#: Update kinds that carry a customer's message.
MESSAGE_UPDATES = ("message", "edited_message")
#: Message contents without text, and how nicobot sees them (the first one found wins).
CONTENT_KINDS: tuple[tuple[str, MessageKind], ...] = (
    ("photo", MessageKind.IMAGE),
    ("voice", MessageKind.AUDIO),
    ("audio", MessageKind.AUDIO),
    ("sticker", MessageKind.OTHER),
    ("animation", MessageKind.OTHER),
    ("video", MessageKind.OTHER),
    ("video_note", MessageKind.OTHER),
    ("document", MessageKind.OTHER),
    ("contact", MessageKind.OTHER),
    ("location", MessageKind.OTHER),
    ("venue", MessageKind.OTHER),
    ("poll", MessageKind.OTHER),
    ("dice", MessageKind.OTHER),
    ("game", MessageKind.OTHER),
    ("story", MessageKind.OTHER),
)
GROUP_CHATS = ("group", "supergroup")


@dataclass(frozen=True, slots=True)
class Ignored:
    """An update nicobot does not answer, and why."""

    reason: str


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _timestamp(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value < 0:
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _name(user: Any) -> str | None:
    """``First Last``, else ``@username``, else None."""
    if not isinstance(user, dict):
        return None
    parts = [_text(user.get(key)) for key in ("first_name", "last_name")]
    full = " ".join(p.strip() for p in parts if p and p.strip())
    if full:
        return full
    username = _text(user.get("username"))
    return f"@{username}" if username else None


def parse_update(update: Any, *, allow_groups: bool = False) -> IncomingMessage | Ignored:
    """One webhook body (a Telegram ``Update``) to the message to answer, or why not.

    Private chats only unless ``allow_groups``; channels, bots, service messages and
    update kinds other than ``message``/``edited_message`` are ignored.
    """
    if not isinstance(update, dict):
        return Ignored("not a Telegram update")
    update_id = _int(update.get("update_id"))
    if update_id is None:
        return Ignored("not a Telegram update (no update_id)")
    kind = next((key for key in MESSAGE_UPDATES if key in update), None)
    if kind is None:
        others = sorted(key for key in update if key != "update_id")
        return Ignored(f"{others[0]} updates are not handled" if others else "empty update")
    message = update[kind]
    if not isinstance(message, dict):
        return Ignored(f"{kind} is not an object")
    chat = message.get("chat")
    chat_id = _int(chat.get("id")) if isinstance(chat, dict) else None
    if not isinstance(chat, dict) or chat_id is None:
        return Ignored("message without a chat")
    chat_type = chat.get("type")
    if chat_type != "private" and not (allow_groups and chat_type in GROUP_CHATS):
        return Ignored(f"{chat_type} chat" if isinstance(chat_type, str) else "unknown chat")
    sender = message.get("from")
    if isinstance(sender, dict) and sender.get("is_bot") is True:
        return Ignored("message from a bot")

    text = _text(message.get("text"))
    if text is None:
        text = _text(message.get("caption"))
    if text is not None:
        message_kind = MessageKind.TEXT
    else:
        found = next((k for key, k in CONTENT_KINDS if message.get(key) is not None), None)
        if found is None:
            return Ignored("service message")
        message_kind, text = found, ""

    number = _int(message.get("message_id"))
    message_id = f"update:{update_id}" if number is None else f"{chat_id}:{number}"
    when = _timestamp(message.get("date"))
    if kind == "edited_message":
        edited = _timestamp(message.get("edit_date"))
        when = edited or when
        stamp = int(edited.timestamp()) if edited else update_id
        message_id = f"{message_id}:edited:{stamp}"

    return IncomingMessage(
        channel=CHANNEL,
        address=str(chat_id),
        text=text,
        message_id=message_id,
        sender_name=_name(sender) or _name(chat),
        kind=message_kind,
        timestamp=when or datetime.now(UTC),
        raw=update,
    )


def utf16_length(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = MAX_MESSAGE_LENGTH) -> list[str]:
    """Cut ``text`` into parts of at most ``limit`` UTF-16 units, at a paragraph break,
    else a line break, else a space when one is in the second half of a part."""
    if limit < 2:
        raise ValueError("limit must be at least 2")
    parts: list[str] = []
    rest = text
    while utf16_length(rest) > limit:
        units = end = 0
        for char in rest:
            size = 2 if ord(char) > 0xFFFF else 1
            if units + size > limit:
                break
            units += size
            end += 1
        head = rest[:end]
        cut = end
        for separator in ("\n\n", "\n", " "):
            at = head.rfind(separator)
            if at >= end // 2:
                cut = at + len(separator)
                break
        part = rest[:cut].rstrip()
        if part:
            parts.append(part)
        rest = rest[cut:].lstrip("\n")
    if rest.strip() or not parts:
        parts.append(rest)
    return parts
