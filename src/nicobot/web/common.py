"""Small helpers shared by the routes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from quart import current_app, jsonify, request

if TYPE_CHECKING:
    from ..bot import Bot


def current_bot() -> Bot:
    bot: Bot = current_app.extensions["nicobot"]
    return bot


def error(message: str, status: int = 400) -> Any:
    return jsonify(error=message), status


class BadRequest(Exception):
    """Bad input from a client; becomes a 400 with ``{"error": message}``."""


async def json_body() -> dict[str, Any]:
    data = await request.get_json(force=True, silent=True)
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return data


def text_field(
    data: dict[str, Any], key: str, *, required: bool = False, max_length: int = 4000
) -> str | None:
    value = data.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise BadRequest(f"{key!r} is required")
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{key!r} must be a string")
    if len(value) > max_length:
        raise BadRequest(f"{key!r} is longer than {max_length} characters")
    return value.strip()


MAX_SEARCH_CHARS = 200


def search_query() -> str | None:
    """The ``q`` argument of a search: None when absent or blank."""
    query = (request.args.get("q") or "").strip()
    if len(query) > MAX_SEARCH_CHARS:
        raise BadRequest(f"'q' is longer than {MAX_SEARCH_CHARS} characters")
    return query or None
