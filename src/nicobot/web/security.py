"""The session cookie's key and name, and the headers every page and answer carries."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from quart import Quart, Response, g

from ..fileperms import create_private_file, make_private, private_dir

if TYPE_CHECKING:
    from ..config import Settings

log = logging.getLogger("nicobot.app")

SECRET_KEY_FILE = "secret_key"
CSP = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'nonce-{nonce}'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def secret_key(settings: Settings) -> str:
    """``NICOBOT_SECRET_KEY``, else a random key kept (0600) in the data folder, made on
    the first start. Never derived from the admin password."""
    if settings.secret_key:
        return settings.secret_key
    path = settings.data_path / SECRET_KEY_FILE
    log.warning(
        "NICOBOT_SECRET_KEY is not set: signing sessions with the random key kept in %s "
        "(set NICOBOT_SECRET_KEY in .env to choose one; every worker needs the same)",
        path,
    )
    return read_or_create_key(path)


def read_or_create_key(path: Path) -> str:
    private_dir(path.parent)
    if not path.exists():
        create_private_file(path, secrets.token_hex(32) + "\n")
    make_private(path)
    key = path.read_text(encoding="utf-8").strip()
    if len(key) < 32:
        raise RuntimeError(f"{path} holds no usable key; delete it to make a new one")
    return key


def cookie_name(settings: Settings) -> str:
    """One name per port, so two bots on one host keep their own sessions (browsers share
    cookies across ports); ``__Host-`` pins a secure cookie to this exact host."""
    name = f"nicobot_session_{settings.server.port}"
    return f"__Host-{name}" if settings.server.secure_cookies else name


def csp_nonce() -> str:
    nonce = getattr(g, "csp_nonce", None)
    if nonce is None:
        nonce = g.csp_nonce = secrets.token_urlsafe(16)
    return str(nonce)


def add_security_headers(app: Quart) -> None:
    app.jinja_env.globals["csp_nonce"] = csp_nonce

    @app.after_request
    async def add_headers(response: Response) -> Response:
        for name, value in security_headers(csp_nonce()).items():
            response.headers.setdefault(name, value)
        return response


def security_headers(nonce: str) -> dict[str, str]:
    """What every page and answer carries (a route may set its own first)."""
    return {
        "Content-Security-Policy": CSP.format(nonce=nonce),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }
