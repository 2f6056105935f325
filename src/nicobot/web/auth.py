"""Admin authentication: a login page with a signed session cookie, or a bearer token.

State-changing requests made with the cookie must carry the session's CSRF token
(header ``X-CSRF-Token`` or form field ``csrf_token``); bearer requests need none.
A session is valid while its version matches the server's: logging out bumps the epoch
kept in the store, and a new admin password or secret key invalidates every cookie.
Wrong passwords and tokens are throttled per client.
"""

from __future__ import annotations

import functools
import hmac
import math
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlsplit

from quart import current_app, g, jsonify, redirect, request, session, url_for

P = ParamSpec("P")
R = TypeVar("R")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FAILURE_WINDOW_SECONDS = 300.0
DEFAULT_MAX_FAILURES = 10
#: The throttle's kind for the admin password, whether typed at login or sent as Bearer.
ADMIN = "admin"
SESSION_EPOCH_KEY = "auth.session_epoch"


def admin_password() -> str:
    password: str = current_app.config["NICOBOT_ADMIN_PASSWORD"]
    return password


def password_matches(candidate: str) -> bool:
    return hmac.compare_digest(candidate.encode(), admin_password().encode())


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


def client_address() -> str:
    """The client's address: the peer's, or the one a configured proxy forwarded
    (``[server] trusted_proxies``; ``nicobot serve`` believes forwarded headers from
    those only)."""
    return request.remote_addr or "?"


def throttle() -> CredentialThrottle:
    found: CredentialThrottle = current_app.extensions["nicobot_throttle"]
    return found


def too_many_failures(kind: str) -> Any | None:
    """A 429 answer when this client has failed ``kind``'s credentials too often."""
    wait = throttle().retry_after((kind, client_address()))
    if wait is None:
        return None
    return jsonify(error=retry_message(wait)), 429, {"Retry-After": str(wait)}


def retry_message(wait: int) -> str:
    """The error of a 429 for credentials failed too often (``wait``: Retry-After)."""
    return f"too many failed attempts; try again in {wait} s"


def bearer_token() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def password_fingerprint() -> str:
    """A keyed digest of the admin password: sessions made under another password (or
    another secret key) are not this one's."""
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, b"admin-password:" + admin_password().encode(), "sha256").hexdigest()


async def session_version() -> str:
    """What a valid admin session carries: the server-side epoch (bumped by logout) and
    the password's fingerprint."""
    from .common import current_bot

    epoch = await current_bot().store.get_setting(SESSION_EPOCH_KEY) or "0"
    return f"{epoch}:{password_fingerprint()}"


async def session_is_admin() -> bool:
    if not session.get("admin"):
        return False
    if hmac.compare_digest(str(session.get("version", "")), await session_version()):
        return True
    session.clear()  # logged out elsewhere, or the password changed
    return False


async def start_admin_session() -> None:
    lang = session.get("lang")
    session.clear()
    session["admin"] = True
    session["version"] = await session_version()
    if lang:
        session["lang"] = lang
    csrf_token()


async def end_admin_sessions() -> None:
    """Log out: every admin session made so far stops being valid, on every worker."""
    from .common import current_bot

    store = current_bot().store
    epoch = int(await store.get_setting(SESSION_EPOCH_KEY) or "0")
    await store.set_setting(SESSION_EPOCH_KEY, str(epoch + 1))
    session.clear()


def admin_required(view: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[Any]]:
    """Protect a Quart view: the admin's cookie session (plus CSRF on writes) or bearer
    token. Wrong tokens are throttled per client (see :class:`CredentialThrottle`)."""

    @functools.wraps(view)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
        token = bearer_token()
        if token is not None:
            refused = too_many_failures(ADMIN)
            if refused is not None:
                return refused
            if password_matches(token):
                g.auth = "bearer"
                return await view(*args, **kwargs)
            throttle().failed((ADMIN, client_address()))
        if await session_is_admin():
            if request.method not in SAFE_METHODS and not await csrf_ok():
                return jsonify(error="missing or wrong CSRF token; reload the page"), 403
            g.auth = "session"
            return await view(*args, **kwargs)
        if is_api_request():
            return jsonify(error="authentication required"), 401
        return redirect(url_for("pages.login", next=request.full_path.rstrip("?")))

    return wrapper


class CredentialThrottle:
    """Counts failed credentials per (kind, client) in a sliding window and refuses that
    client, and only that one, after too many; other clients and the admin's session are
    unaffected. At most ``max_clients`` are tracked (the oldest are forgotten)."""

    def __init__(
        self,
        max_failures: int = DEFAULT_MAX_FAILURES,
        window_seconds: float = FAILURE_WINDOW_SECONDS,
        max_clients: int = 10000,
    ) -> None:
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self.max_clients = max_clients
        self._failures: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        cutoff = time.monotonic() - self.window_seconds
        while failures and failures[0] < cutoff:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def retry_after(self, key: tuple[str, str]) -> int | None:
        """Seconds until ``key`` may try again, or None when it is not blocked."""
        failures = self._recent(key)
        if len(failures) < self.max_failures:
            return None
        oldest_that_counts = failures[-self.max_failures]
        return max(1, math.ceil(oldest_that_counts + self.window_seconds - time.monotonic()))

    def blocked(self, key: tuple[str, str]) -> bool:
        return self.retry_after(key) is not None

    def failed(self, key: tuple[str, str]) -> None:
        failures = self._failures.setdefault(key, deque(maxlen=self.max_failures))
        failures.append(time.monotonic())
        self._failures.move_to_end(key)
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)

    def succeeded(self, key: tuple[str, str]) -> None:
        self._failures.pop(key, None)
