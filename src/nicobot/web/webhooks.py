"""One core-owned webhook route per channel: ``/api/webhooks/{slug}[/...]``.

The channel authenticates and parses (a pure function of the payload); the core
records each message through the bot's single entry point and answers at once.
:func:`answer_webhook` is the route. Every call through the app (the server's and the
test client's) reaches it straight from ASGI (:mod:`nicobot.web.direct`); Quart's route
below declares it to Quart (other methods get 405) and answers the same when Quart is
called without that front.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from quart import Blueprint, jsonify, request

from ..channels import WebhookRejected, WebhookRequest
from .auth import CredentialThrottle, client_address, retry_message, throttle
from .common import current_bot

if TYPE_CHECKING:
    from ..bot import Bot

log = logging.getLogger("nicobot.webhooks")
blueprint = Blueprint("webhooks", __name__)


@dataclass(frozen=True)
class WebhookAnswer:
    """What the route answers: a status, a JSON object and extra headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class WebhookCall:
    """One call to the route, as the web server received it."""

    slug: str
    subpath: str
    method: str
    headers: dict[str, str]  # names in lower case
    query: dict[str, str]
    body: bytes
    client: str


async def answer_webhook(
    bot: Bot, failures: CredentialThrottle, call: WebhookCall
) -> WebhookAnswer:
    channel = bot.channels.by_webhook_slug(call.slug)
    if channel is None or not channel.configured:
        return WebhookAnswer(404, {"error": f"no channel takes webhooks at {call.slug!r}"})
    credential = f"webhook:{call.slug}"
    wait = failures.retry_after((credential, call.client))
    if wait is not None:
        return WebhookAnswer(429, {"error": retry_message(wait)}, {"Retry-After": str(wait)})
    webhook = WebhookRequest(
        method=call.method,
        headers=call.headers,
        subpath=call.subpath,
        query=call.query,
        body=call.body,
        json=_parse_json(call.body),
    )
    try:
        result = await channel.handle_webhook(webhook)
    except WebhookRejected as exc:
        if exc.status in (401, 403):
            failures.failed((credential, call.client))
        bot.metrics.webhook_calls.labels(call.slug, "rejected").inc()
        log.warning("rejected a %s webhook from %s: %s", call.slug, call.client, exc)
        return WebhookAnswer(exc.status, {"error": str(exc)})
    except Exception:
        bot.metrics.webhook_calls.labels(call.slug, "failed").inc()
        log.exception("the %s channel failed on a webhook; answered 200 and dropped it", call.slug)
        return WebhookAnswer(200, {"ok": False, "dropped": True})
    bot.metrics.webhook_calls.labels(call.slug, "handled").inc()
    accepted = duplicates = 0
    for incoming in result.messages:
        if await bot.submit(incoming):
            accepted += 1
        else:
            duplicates += 1
    body_out = dict(result.body)
    if result.messages:
        body_out.update(accepted=accepted, duplicates=duplicates)
    return WebhookAnswer(result.status, body_out)


@blueprint.post("/api/webhooks/<slug>")
@blueprint.post("/api/webhooks/<slug>/<path:subpath>")
async def receive_webhook(slug: str, subpath: str = "") -> Any:
    body = await request.get_data(cache=False)
    assert isinstance(body, bytes)
    call = WebhookCall(
        slug=slug,
        subpath=subpath,
        method=request.method,
        headers={k.lower(): v for k, v in request.headers.items()},
        query=dict(request.args.items()),
        body=body,
        client=client_address(),
    )
    answer = await answer_webhook(current_bot(), throttle(), call)
    return jsonify(answer.body), answer.status, answer.headers


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        return None
