"""The operator inbox's API: replies from the pages, the dashboard, exports."""

from __future__ import annotations

import json
from typing import Any

from quart import Blueprint, Response, g, jsonify, request

from ..export import FORMATS, export_data, render
from ..models import utcnow
from ..operator import CannotSend, send_operator_reply, with_delivery
from .auth import admin_required
from .common import BadRequest, current_bot, error, json_body, text_field
from .error_text import translate_error

blueprint = Blueprint("inbox", __name__)

MAX_REPLY_CHARS = 4000
DASHBOARD_DAYS = (7, 30, 90)


@blueprint.errorhandler(BadRequest)
async def bad_request(exc: BadRequest) -> Any:
    return error(str(exc), 400)


@blueprint.after_app_request
async def translate_page_errors(response: Response) -> Response:
    """Errors answered to the pages (the cookie session) come in the page's language."""
    language = getattr(g, "lang", "en")
    if language == "en" or getattr(g, "auth", None) == "bearer" or response.status_code < 400:
        return response
    if response.mimetype != "application/json":
        return response
    try:
        data = json.loads(await response.get_data(as_text=True))
    except ValueError:
        return response
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        data["error"] = translate_error(data["error"], language)
        response.set_data(json.dumps(data, ensure_ascii=False))
    return response


@blueprint.post("/api/sessions/<session_id>/messages")
@admin_required
async def post_operator_reply(session_id: str) -> Any:
    """A person's reply, sent through the conversation's channel; pauses the bot."""
    bot = current_bot()
    data = await json_body()
    text = text_field(data, "text", required=True, max_length=MAX_REPLY_CHARS)
    assert text is not None
    session = await bot.store.get_session(session_id)
    if session is None:
        return error("no such session", 404)
    try:
        message, session = await send_operator_reply(bot, session, text)
    except CannotSend as exc:
        return error(str(exc), 409)
    except LookupError:
        return error("no such session", 404)
    body = await with_delivery(bot, message)
    return jsonify({**body, "session": session.to_dict()}), 201


def _days_arg() -> int:
    raw = request.args.get("days", "30")
    if not raw.isdigit() or int(raw) not in DASHBOARD_DAYS:
        raise BadRequest("'days' must be 7, 30 or 90")
    return int(raw)


@blueprint.get("/api/dashboard")
@admin_required
async def dashboard() -> Any:
    bot = current_bot()
    figures = await bot.store.dashboard(_days_arg(), bot.settings.bot.timezone)
    return jsonify(figures.to_dict())


@blueprint.get("/api/export")
@admin_required
async def export() -> Any:
    """Every conversation with its messages, as a JSON or CSV file."""
    fmt = request.args.get("format", "json")
    if fmt not in FORMATS:
        raise BadRequest("'format' must be json or csv")
    channel = request.args.get("channel") or None
    data = await export_data(current_bot().store, channel)
    stamp = utcnow().strftime("%Y%m%d-%H%M")
    mimetype = "application/json" if fmt == "json" else "text/csv"
    return Response(
        render(data, fmt),
        mimetype=f"{mimetype}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="conversations-{stamp}.{fmt}"'},
    )
