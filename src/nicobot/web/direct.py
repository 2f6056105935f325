"""The webhook route served straight from ASGI, in front of Quart.

Webhooks are most of what a busy server answers, and Quart's request machinery (request
context, session cookie, before and after hooks, response object) cost more CPU than the
route itself. This answers ``POST /api/webhooks/{slug}[/...]`` with
:func:`~nicobot.web.webhooks.answer_webhook`, keeping what those hooks give every answer:
the body limits (:mod:`nicobot.web.limits`), the security headers, the error text in the
bot's language. Every other request, and any webhook path it would not route the same way,
goes on to Quart.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from .error_text import INTERNAL_ERROR, translate_error
from .limits import FORM_TYPES, BodyRejected, check_json_body, path_value_ok
from .security import security_headers
from .webhooks import WebhookAnswer, WebhookCall, answer_webhook

if TYPE_CHECKING:
    from quart import Quart

log = logging.getLogger("nicobot.webhooks")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]

PREFIX = "/api/webhooks/"
TOO_LARGE = WebhookAnswer(413, {"error": "request too large"})


class BodyTooLarge(Exception):
    pass


class DirectWebhooks:
    """ASGI middleware: webhooks answered here, everything else by ``inner`` (Quart)."""

    def __init__(self, app: Quart, inner: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.inner = inner
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = webhook_route(scope)
        if route is None:
            await self.inner(scope, receive, send)
            return
        try:
            answer = await self._answer(scope, receive, *route)
        except Exception:
            log.exception("unhandled error on POST %s", scope["path"])
            answer = WebhookAnswer(500, {"error": INTERNAL_ERROR})
        if answer is not None:
            await self._send(send, answer)

    async def _answer(
        self, scope: Scope, receive: Receive, slug: str, subpath: str
    ) -> WebhookAnswer | None:
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope["headers"]
        }
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            return TOO_LARGE
        try:
            body = await read_body(receive, self.max_body_bytes)
        except BodyTooLarge:
            return TOO_LARGE
        if body is None:  # the client went away
            return None
        mimetype = headers.get("content-type", "").partition(";")[0].strip().lower()
        if mimetype not in FORM_TYPES:
            try:
                check_json_body(body, require_utf8=False)
            except BodyRejected as exc:
                return WebhookAnswer(exc.status, {"error": str(exc)})
        client = scope.get("client")
        query = scope.get("query_string", b"").decode("utf-8", "replace")
        call = WebhookCall(
            slug=slug,
            subpath=subpath,
            method="POST",
            headers=headers,
            query=first_values(parse_qsl(query, keep_blank_values=True)),
            body=body,
            client=client[0] if client else "?",
        )
        bot = self.app.extensions["nicobot"]
        answer = await answer_webhook(bot, self.app.extensions["nicobot_throttle"], call)
        language = bot.settings.bot.language
        if answer.status >= 400 and isinstance(answer.body.get("error"), str):
            shown = {**answer.body, "error": translate_error(answer.body["error"], language)}
            answer = WebhookAnswer(answer.status, shown, answer.headers)
        return answer

    async def _send(self, send: Send, answer: WebhookAnswer) -> None:
        payload = (json.dumps(answer.body, separators=(",", ":")) + "\n").encode()
        named = {
            "content-type": "application/json",
            "content-length": str(len(payload)),
            **security_headers(secrets.token_urlsafe(16)),
            **answer.headers,
        }
        headers = [(k.lower().encode(), v.encode("latin-1")) for k, v in named.items()]
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


def webhook_route(scope: Scope) -> tuple[str, str] | None:
    """``(slug, subpath)`` for a webhook Quart would route to ``receive_webhook``, else
    None (Quart answers it: another route, another method, or a path it refuses)."""
    if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
        return None
    path: str = scope["path"]
    if not path.startswith(PREFIX) or "//" in path:
        return None
    slug, slash, subpath = path[len(PREFIX) :].partition("/")
    if not slug or (slash and not subpath) or not (path_value_ok(slug) and path_value_ok(subpath)):
        return None
    return slug, subpath


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The request's body, or None when the client disconnected first."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def first_values(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """A query's values, the first of each name (as Werkzeug's ``args.items()``)."""
    values: dict[str, str] = {}
    for name, value in pairs:
        values.setdefault(name, value)
    return values
