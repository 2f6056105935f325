"""Admin authentication: a login page with a signed session cookie, or a bearer token.

State-changing requests made with the cookie must carry the session's CSRF token
(header ``X-CSRF-Token`` or form field ``csrf_token``); bearer requests need none.
"""

from __future__ import annotations

import functools
import hmac
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlsplit

from quart import current_app, g, jsonify, redirect, request, session, url_for

P = ParamSpec("P")
R = TypeVar("R")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOGIN_WINDOW_SECONDS = 300.0
LOGIN_MAX_FAILURES = 10


def admin_password() -> str:
    password: str = current_app.config["NICOBOT_ADMIN_PASSWORD"]
    return password


def password_matches(candidate: str) -> bool:
    return hmac.compare_digest(candidate.encode(), admin_password().encode())


def bearer_ok() -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return scheme.lower() == "bearer" and bool(token) and password_matches(token.strip())


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return str(token)


async def csrf_ok() -> bool:
    expected = session.get("csrf")
    if not expected:
        return False
    sent = request.headers.get("X-CSRF-Token")
    if sent is None and request.mimetype in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        sent = (await request.form).get("csrf_token")
    return sent is not None and hmac.compare_digest(str(sent), str(expected))


def is_local_path(target: str) -> bool:
    """Whether ``target`` is a path on this site that a browser cannot read as another
    host's (``//host``, ``/\\host``, a scheme, a control character or a space)."""
    if not target.startswith("/") or len(target) > 2000:
        return False
    if any(ch == "\\" or ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target):
        return False
    parts = urlsplit(target)
    return not (target.startswith("//") or parts.scheme or parts.netloc)


def is_api_request() -> bool:
    return (
        request.path.startswith("/api/")
        or request.path == "/metrics"
        or request.accept_mimetypes.best == "application/json"
    )


def admin_required(view: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[Any]]:
    """Protect a Quart view: the admin's cookie session (plus CSRF on writes) or bearer token."""

    @functools.wraps(view)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
        if bearer_ok():
            g.auth = "bearer"
            return await view(*args, **kwargs)
        if session.get("admin"):
            if request.method not in SAFE_METHODS and not await csrf_ok():
                return jsonify(error="missing or wrong CSRF token; reload the page"), 403
            g.auth = "session"
            return await view(*args, **kwargs)
        if is_api_request():
            return jsonify(error="authentication required"), 401
        return redirect(url_for("pages.login", next=request.full_path.rstrip("?")))

    return wrapper


class LoginThrottle:
    """Counts failed logins per client address and refuses after too many."""

    def __init__(self) -> None:
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def _recent(self, client: str) -> deque[float]:
        failures = self._failures[client]
        cutoff = time.monotonic() - LOGIN_WINDOW_SECONDS
        while failures and failures[0] < cutoff:
            failures.popleft()
        return failures

    def blocked(self, client: str) -> bool:
        return len(self._recent(client)) >= LOGIN_MAX_FAILURES

    def failed(self, client: str) -> None:
        self._recent(client).append(time.monotonic())

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)
