"""The JSON API: sessions, the simulator, channels, the prompt, health."""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from quart import Blueprint, jsonify, request

from ..channels import Channel
from ..models import IncomingMessage
from ..operator import transcript
from .auth import admin_required
from .common import BadRequest, current_bot, error, json_body, search_query, text_field
from .health import low_disk

log = logging.getLogger("nicobot.api")
blueprint = Blueprint("api", __name__)

SIMULATOR = "simulator"
PHONE_RE = re.compile(r"^\+?\d{6,15}$")
MAX_PAUSE_MINUTES = 366 * 24 * 60


@blueprint.errorhandler(BadRequest)
async def bad_request(exc: BadRequest) -> Any:
    return error(str(exc), 400)


def normalize_phone(value: str) -> str:
    phone = re.sub(r"[\s\-().]", "", value)
    if not PHONE_RE.match(phone):
        raise BadRequest("'phone_number' must be 6 to 15 digits, optionally with a leading +")
    return phone.lstrip("+")


def _int_arg(name: str, default: int, maximum: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name!r} must be a whole number") from None
    if not 0 <= value <= maximum:
        raise BadRequest(f"{name!r} must be between 0 and {maximum}")
    return value


@blueprint.get("/healthz")
async def healthz() -> Any:
    return jsonify(status="ok")


@blueprint.get("/openapi.json")
async def openapi() -> Any:
    from ..openapi import openapi_document

    return jsonify(openapi_document())


@blueprint.get("/readyz")
async def readyz() -> Any:
    bot = current_bot()
    try:
        await bot.store.get_setting("readyz")
    except Exception as exc:
        return jsonify(status="not ready", error=str(exc)), 503
    disk_problem = low_disk(bot.settings.data_path, bot.settings.server.min_free_disk_mb)
    if disk_problem:
        return jsonify(status="not ready", error=disk_problem), 503
    return jsonify(
        status="ready", channels=[c.name for c in bot.channels.all()], llm=bot.agent.llm_state
    )


@blueprint.get("/api/sessions")
@admin_required
async def list_sessions() -> Any:
    bot = current_bot()
    channel = request.args.get("channel") or None
    limit, offset = _int_arg("limit", 100, 1000), _int_arg("offset", 0, 10**9)
    query = search_query()
    if query:
        sessions = await bot.store.search_sessions(query, channel, limit, offset)
    else:
        sessions = await bot.store.list_sessions(channel=channel, limit=limit, offset=offset)
    return jsonify(sessions=[s.to_dict() for s in sessions])


@blueprint.get("/api/sessions/<session_id>")
@admin_required
async def get_session(session_id: str) -> Any:
    bot = current_bot()
    session = await bot.store.get_session(session_id)
    if session is None:
        return error("no such session", 404)
    return jsonify(session=session.to_dict(), messages=await transcript(bot, session_id))


@blueprint.delete("/api/sessions/<session_id>")
@admin_required
async def delete_session(session_id: str) -> Any:
    if not await current_bot().store.delete_session(session_id):
        return error("no such session", 404)
    return jsonify(deleted=session_id)


@blueprint.post("/api/sessions/<session_id>/pause")
@admin_required
async def pause_session(session_id: str) -> Any:
    """Pause the bot in a conversation: ``{"minutes": N}``, or until resumed."""
    data = await request.get_json(force=True, silent=True) or {}
    minutes = data.get("minutes") if isinstance(data, dict) else None
    if minutes is not None and (
        isinstance(minutes, bool)
        or not isinstance(minutes, int | float)
        or not 0 < minutes <= MAX_PAUSE_MINUTES
    ):
        raise BadRequest(f"'minutes' must be a positive number up to {MAX_PAUSE_MINUTES}")
    bot = current_bot()
    if not await bot.pause(session_id, minutes):
        return error("no such session", 404)
    session = await bot.store.get_session(session_id)
    assert session is not None
    return jsonify(session.to_dict())


@blueprint.post("/api/sessions/<session_id>/resume")
@admin_required
async def resume_session(session_id: str) -> Any:
    bot = current_bot()
    if not await bot.resume(session_id):
        return error("no such session", 404)
    session = await bot.store.get_session(session_id)
    assert session is not None
    return jsonify(session.to_dict())


@blueprint.get("/api/outbox")
@admin_required
async def list_outbox() -> Any:
    status = request.args.get("status") or None
    if status not in (None, "pending", "sending", "sent", "failed"):
        raise BadRequest("'status' must be pending, sending, sent or failed")
    entries = await current_bot().store.list_outbox(status, limit=_int_arg("limit", 100, 1000))
    return jsonify(outbox=[e.to_dict() for e in entries])


@blueprint.post("/api/outbox/<int:entry_id>/retry")
@admin_required
async def retry_outbox(entry_id: int) -> Any:
    bot = current_bot()
    if not await bot.store.retry_outbox(entry_id):
        return error("no failed delivery with that id", 404)
    bot.pipeline.sends.wake()
    return jsonify(retried=entry_id)


@blueprint.get("/api/turns/failed")
@admin_required
async def list_failed_turns() -> Any:
    turns = await current_bot().store.list_failed_turns(limit=_int_arg("limit", 100, 1000))
    return jsonify(turns=[t.to_dict() for t in turns])


@blueprint.post("/api/turns/<int:entry_id>/retry")
@admin_required
async def retry_turn(entry_id: int) -> Any:
    bot = current_bot()
    if not await bot.store.retry_turn(entry_id):
        return error("no failed message with that id", 404)
    bot.pipeline.wake_turns()
    return jsonify(retried=entry_id)


@blueprint.get("/metrics")
@admin_required
async def metrics() -> Any:
    bot = current_bot()
    pipeline = bot.pipeline
    body = bot.metrics.render(
        await bot.store.pipeline_counts(), pipeline.lag.seconds, pipeline.turns.limit
    )
    return body, 200, {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}


@blueprint.post("/api/chat")
@admin_required
async def simulator_chat() -> Any:
    """Send a message as a simulated customer and wait for the bot's reply."""
    bot = current_bot()
    if SIMULATOR not in bot.channels:
        return error("the simulator channel is disabled", 404)
    data = await json_body()
    text = text_field(data, "message", required=True)
    sender_name = text_field(data, "sender_name", max_length=100)
    prompt_context = text_field(data, "prompt_context", max_length=4000)
    session_id = text_field(data, "session_id", max_length=64)
    if session_id:
        session = await bot.store.get_session(session_id)
        if session is None:
            return error("no such session", 404)
        if session.channel != SIMULATOR:
            return error("only simulator sessions can be written to from here", 400)
        address, phone = session.address, session.phone_number
    else:
        raw_phone = text_field(data, "phone_number", required=True, max_length=32)
        assert raw_phone is not None
        phone = address = normalize_phone(raw_phone)
    if prompt_context is not None or sender_name is not None:
        await bot.store.get_or_create_session(
            SIMULATOR,
            address,
            phone_number=phone,
            sender_name=sender_name,
            prompt_context=prompt_context,
        )
    assert text is not None
    turn = await bot.converse(
        IncomingMessage(
            channel=SIMULATOR,
            address=address,
            text=text,
            message_id=uuid.uuid4().hex,
            phone_number=phone,
            sender_name=sender_name,
        )
    )
    if turn.mode == "paused":
        return jsonify(
            {**turn.to_dict(), "error": "the bot is paused in this conversation; resume it first"}
        ), 409
    if turn.mode == "pending":
        return jsonify(
            {
                **turn.to_dict(),
                "error": "the reply is taking long; it will appear in the conversation",
            }
        ), 202
    return jsonify(turn.to_dict())


@blueprint.get("/api/channels")
@admin_required
async def list_channels() -> Any:
    bot = current_bot()
    statuses = await bot.channels.statuses()
    return jsonify(
        channels=[
            {
                "name": c.name,
                "label": c.label,
                "supports_qr": c.supports_qr,
                "capabilities": c.capabilities(),
                "status": statuses[c.name].to_dict(),
            }
            for c in bot.channels.all()
        ]
    )


class UnknownChannel(Exception):
    pass


def _channel_or_404(name: str) -> Channel:
    channel = current_bot().channels.get(name)
    if channel is None:
        raise UnknownChannel(name)
    return channel


@blueprint.errorhandler(UnknownChannel)
async def unknown_channel(exc: UnknownChannel) -> Any:
    return error(f"no channel named {exc.args[0]!r}", 404)


async def _channel_call(channel: Channel, action: str) -> Any:
    if not channel.configured:
        return error(f"{channel.label} is not configured; see the docs for its settings", 409)
    if not channel.capabilities()[action]:
        return error(f"{channel.label} cannot {action}: it works from its settings alone", 409)
    try:
        status = await (channel.connect() if action == "connect" else channel.disconnect())
    except Exception as exc:
        log.warning("%s %s failed: %s", channel.name, action, exc)
        return error(f"{channel.label}: {exc}", 502)
    return jsonify(status.to_dict())


@blueprint.get("/api/channels/<name>/status")
@admin_required
async def channel_status(name: str) -> Any:
    channel = _channel_or_404(name)
    statuses = await current_bot().channels.statuses()
    return jsonify(statuses[channel.name].to_dict())


@blueprint.post("/api/channels/<name>/connect")
@admin_required
async def channel_connect(name: str) -> Any:
    return await _channel_call(_channel_or_404(name), "connect")


@blueprint.post("/api/channels/<name>/disconnect")
@admin_required
async def channel_disconnect(name: str) -> Any:
    return await _channel_call(_channel_or_404(name), "disconnect")


@blueprint.get("/api/prompt")
@admin_required
async def get_prompt() -> Any:
    bot = current_bot()
    return jsonify(bot.prompt_settings())


@blueprint.put("/api/prompt")
@admin_required
async def put_prompt() -> Any:
    bot = current_bot()
    data = await json_body()
    changes: dict[str, str | None] = {}
    for key in ("name", "persona", "business", "system_prompt"):
        if key in data:
            changes[key] = text_field(data, key, max_length=20000)
    if not changes:
        raise BadRequest("send at least one of name, persona, business, system_prompt")
    await bot.update_prompt(changes)
    return jsonify(bot.prompt_settings())
