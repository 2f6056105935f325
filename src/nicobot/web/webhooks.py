"""One core-owned webhook route per channel: ``/api/webhooks/{slug}[/...]``.

The channel authenticates and parses (a pure function of the payload); the core
records each message through the bot's single entry point and answers at once.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from quart import Blueprint, jsonify, request

from ..channels import WebhookRejected, WebhookRequest
from .auth import client_address, throttle, too_many_failures
from .common import current_bot, error

log = logging.getLogger("nicobot.webhooks")
blueprint = Blueprint("webhooks", __name__)


@blueprint.post("/api/webhooks/<slug>")
@blueprint.post("/api/webhooks/<slug>/<path:subpath>")
async def receive_webhook(slug: str, subpath: str = "") -> Any:
    bot = current_bot()
    channel = bot.channels.by_webhook_slug(slug)
    if channel is None or not channel.configured:
        return error(f"no channel takes webhooks at {slug!r}", 404)
    credential = f"webhook:{slug}"
    refused = too_many_failures(credential)
    if refused is not None:
        return refused
    body = await request.get_data(cache=False)
    assert isinstance(body, bytes)
    webhook = WebhookRequest(
        method=request.method,
        headers={k.lower(): v for k, v in request.headers.items()},
        subpath=subpath,
        query=dict(request.args.items()),
        body=body,
        json=_parse_json(body),
    )
    try:
        result = await channel.handle_webhook(webhook)
    except WebhookRejected as exc:
        if exc.status in (401, 403):
            throttle().failed((credential, client_address()))
        bot.metrics.webhook_calls.labels(slug, "rejected").inc()
        log.warning("rejected a %s webhook from %s: %s", slug, client_address(), exc)
        return error(str(exc), exc.status)
    except Exception:
        bot.metrics.webhook_calls.labels(slug, "failed").inc()
        log.exception("the %s channel failed on a webhook; answered 200 and dropped it", slug)
        return jsonify(ok=False, dropped=True)
    bot.metrics.webhook_calls.labels(slug, "handled").inc()
    accepted = duplicates = 0
    for message in result.messages:
        if await bot.submit(message):
            accepted += 1
        else:
            duplicates += 1
    body_out = dict(result.body)
    if result.messages:
        body_out.update(accepted=accepted, duplicates=duplicates)
    return jsonify(body_out), result.status


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        return None
