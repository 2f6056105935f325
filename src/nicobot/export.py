"""Conversations with their messages as JSON or CSV (``nicobot sessions export`` and the
admin page's export)."""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .store import Store

FORMATS = ("json", "csv")
CSV_COLUMNS = (
    "session_id",
    "channel",
    "address",
    "phone_number",
    "sender_name",
    "message_id",
    "role",
    "created_at",
    "text",
    "opted_out",
)


async def export_data(store: Store, channel: str | None = None) -> list[dict[str, Any]]:
    """Every conversation (of ``channel``, if given) with its messages."""
    result = []
    for session in await store.list_sessions(channel=channel, limit=10**9):
        messages = await store.list_messages(session.id)
        result.append({**session.to_dict(), "messages": [m.to_dict() for m in messages]})
    return result


def render(data: list[dict[str, Any]], fmt: str) -> str:
    """``data`` from :func:`export_data` as JSON, or as CSV with one row per message."""
    if fmt == "json":
        return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for session in data:
        for message in session["messages"]:
            writer.writerow(
                [
                    session["id"],
                    session["channel"],
                    session["address"],
                    session["phone_number"],
                    session["sender_name"],
                    message["id"],
                    message["role"],
                    message["created_at"],
                    message["text"],
                    session["opted_out"],
                ]
            )
    return buffer.getvalue()
