"""Webhook authentication: the ways the gateway can prove it knows our secret.

The gateway's global webhook sends no auth header, and the body's ``apikey`` is the
instance token, not our secret: neither is trusted. Accepted, best first:

- ``header``: the header nicobot put in the instance's webhook ``headers``
  (``x-nicobot-secret: <secret>`` by default);
- ``jwt``: ``Authorization: Bearer <HS256 JWT signed with the secret>``, which the
  gateway sends when the webhook headers hold ``{"jwt_key": <secret>}``;
- ``path``: the secret as the first path segment after ``/api/webhooks/evolution/``
  (with by-events on, the gateway appends ``/messages-upsert`` and the like);
- ``apikey``: an ``apikey`` header equal to the secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping


def _same(given: str, secret: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), secret.encode("utf-8"))


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


#: The gateway signs a token valid for 10 minutes per event and retries that event with
#: the same token for about 20 minutes: a token is accepted this long after ``exp``.
JWT_RETRY_LEEWAY_SECONDS = 30 * 60
#: A token meant to last longer than this is refused (the gateway's last 10 minutes).
JWT_MAX_LIFETIME_SECONDS = 24 * 3600


def verify_jwt(token: str, secret: str, *, now: float | None = None) -> bool:
    """True for an HS256 JWT signed with ``secret`` that has an ``exp`` claim and has not
    expired (allowing for the gateway's retries); a token without ``exp`` never is."""
    try:
        header_b64, payload_b64, signature_b64 = token.split(".")
        header = json.loads(_b64decode(header_b64))
        payload = json.loads(_b64decode(payload_b64))
        signature = _b64decode(signature_b64)
    except (ValueError, UnicodeDecodeError):
        return False
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        return False
    signed = f"{header_b64}.{payload_b64}".encode("ascii", "replace")
    expected = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        return False
    exp = payload.get("exp") if isinstance(payload, dict) else None
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        return False
    current = time.time() if now is None else now
    return current - JWT_RETRY_LEEWAY_SECONDS <= exp <= current + JWT_MAX_LIFETIME_SECONDS


def authenticate(
    headers: Mapping[str, str], subpath: str, secret: str, *, header_name: str
) -> str | None:
    """The way the call proved it knows ``secret`` (see the module doc), or None."""
    if not secret:
        return None
    given = _header(headers, header_name)
    if given is not None and _same(given, secret):
        return "header"
    authorization = _header(headers, "authorization") or ""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip() and verify_jwt(token.strip(), secret):
        return "jwt"
    first = subpath.strip("/").split("/", 1)[0]
    if first and _same(first, secret):
        return "path"
    apikey = _header(headers, "apikey")
    if apikey is not None and _same(apikey, secret):
        return "apikey"
    return None
