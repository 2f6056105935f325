"""Replies a person writes in nicobot's pages, and what became of each delivery."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from .models import ChatSession, Message, OutboxEntry, utcnow
from .text import split_message

if TYPE_CHECKING:
    from .bot import Bot

#: ``meta["source"]`` of a reply typed in the chat page.
PAGE_SOURCE = "page"


class CannotSend(Exception):
    """The conversation's channel cannot take a reply now (missing or not configured)."""


async def send_operator_reply(
    bot: Bot, session: ChatSession, text: str
) -> tuple[Message, ChatSession]:
    """Store a person's reply, queue it for the conversation's channel through the
    outbox and pause the bot there for ``handoff_minutes``, as a reply typed on the
    business's phone does."""
    channel = bot.channels.get(session.channel)
    if channel is None:
        raise CannotSend(f"the channel {session.channel!r} is not installed")
    if not channel.configured:
        raise CannotSend(f"{channel.label} is not configured; see the docs for its settings")
    parts = [] if channel.is_local else split_message(text, channel.max_message_length)
    pause_until = utcnow() + timedelta(minutes=bot.settings.pipeline.handoff_minutes)
    stored = await bot.store.add_operator_reply(
        session.id, text, outbox_parts=parts, pause_until=pause_until, meta={"source": PAGE_SOURCE}
    )
    if stored is None:
        raise LookupError(session.id)
    bot.pipeline.sends.wake()
    bot.metrics.handoffs.labels(session.channel).inc()
    return stored


def delivery_state(entries: list[OutboxEntry]) -> dict[str, Any] | None:
    """One transcript line's delivery, from its outbox entries (a long reply has several):
    ``queued`` (with the last error while retrying), ``sent`` or ``failed``."""
    if not entries:
        return None
    failed = [e for e in entries if e.status == "failed"]
    if failed:
        return {
            "status": "failed",
            "error": failed[0].last_error,
            "attempts": max(e.attempts for e in failed),
            "outbox_ids": [e.id for e in failed],
        }
    if all(e.status == "sent" for e in entries):
        sent = [e.sent_at for e in entries if e.sent_at is not None]
        return {"status": "sent", "sent_at": max(sent).isoformat() if sent else None}
    waiting = [e for e in entries if e.status != "sent"]
    return {
        "status": "queued",
        "error": next((e.last_error for e in waiting if e.last_error), None),
        "attempts": max(e.attempts for e in waiting),
        "outbox_ids": [e.id for e in waiting],
    }


async def with_delivery(bot: Bot, message: Message) -> dict[str, Any]:
    """One message as the API shows it, with its delivery."""
    entries = [
        e
        for e in await bot.store.session_deliveries(message.session_id)
        if e.message_id == message.id
    ]
    return {**message.to_dict(), "delivery": delivery_state(entries)}


async def transcript(bot: Bot, session_id: str) -> list[dict[str, Any]]:
    """A conversation's messages as the API and pages show them, each with its delivery."""
    messages = await bot.store.list_messages(session_id)
    by_message: dict[int, list[OutboxEntry]] = {}
    for entry in await bot.store.session_deliveries(session_id):
        if entry.message_id is not None:
            by_message.setdefault(entry.message_id, []).append(entry)
    return [
        {**message.to_dict(), "delivery": delivery_state(by_message.get(message.id, []))}
        for message in messages
    ]
