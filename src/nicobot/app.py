"""The Quart app factory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from pathlib import Path
from typing import Any

import pluggy
from jinja2 import ChoiceLoader, FileSystemLoader
from quart import Quart, Response, g, jsonify, request, session
from werkzeug.exceptions import HTTPException, NotFound

from . import i18n
from .bot import Bot
from .config import Settings, load_settings
from .plugins import call_registration, make_plugin_manager
from .version import __version__
from .web import api, events, inbox, pages, webhooks
from .web.auth import CredentialThrottle, csrf_token
from .web.direct import DirectWebhooks
from .web.error_text import INTERNAL_ERROR
from .web.limits import FORM_TYPES, BodyRejected, check_json_body, path_value_ok
from .web.security import add_security_headers, cookie_name, secret_key

log = logging.getLogger("nicobot.app")

PACKAGE_DIR = Path(__file__).parent
MAX_REQUEST_BYTES = 16 * 1024 * 1024
STOP_AFTER_FAILED_START = 10.0


def templates_dir() -> Path:
    """The packaged pages: inside the wheel, or the checkout's top-level ``templates/``."""
    packaged = PACKAGE_DIR / "templates"
    return packaged if packaged.is_dir() else PACKAGE_DIR.parents[1] / "templates"


def create_app(
    settings: Settings | None = None,
    *,
    project_dir: Path | str = ".",
    pm: pluggy.PluginManager | None = None,
) -> Quart:
    """Build the web app for a project; the bot starts when the server does."""
    settings = settings or load_settings(project_dir)
    pm = pm or make_plugin_manager()
    bot = Bot(settings, pm)

    app = Quart("nicobot", static_folder=str(PACKAGE_DIR / "static"), static_url_path="/static")
    password = settings.admin_password or secrets.token_urlsafe(12)
    app.config.update(
        NICOBOT_ADMIN_PASSWORD=password,
        NICOBOT_TEMPORARY_PASSWORD=settings.admin_password is None,
        SECRET_KEY=secret_key(settings),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME=cookie_name(settings),
        SESSION_COOKIE_SECURE=settings.server.secure_cookies,
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
        JSON_SORT_KEYS=False,
    )
    app.extensions["nicobot"] = bot
    app.extensions["nicobot_throttle"] = CredentialThrottle(settings.server.max_auth_failures)
    app.jinja_loader = ChoiceLoader(
        [
            FileSystemLoader(str(settings.project_dir / "templates")),
            FileSystemLoader(str(templates_dir())),
        ]
    )
    _setup_i18n(app, settings)
    app.register_blueprint(pages.blueprint)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(webhooks.blueprint)
    app.register_blueprint(inbox.blueprint)
    events.install(app, bot)
    call_registration(pm, "register_routes", app=app)
    _setup_errors(app)
    _setup_limits(app)
    add_security_headers(app)
    app.asgi_app = DirectWebhooks(app, app.asgi_app, MAX_REQUEST_BYTES)  # type: ignore[method-assign,assignment]

    @app.before_serving
    async def start_bot() -> None:
        try:
            await bot.start()
        except BaseException:
            # close what did open (the store's thread would keep the process alive)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(bot.stop(grace_seconds=0), STOP_AFTER_FAILED_START)
            raise

    @app.after_serving
    async def stop_bot() -> None:
        await bot.stop()

    return app


def _setup_i18n(app: Quart, settings: Settings) -> None:
    app.jinja_env.add_extension("jinja2.ext.i18n")

    def language() -> str:
        lang = getattr(g, "lang", None)
        return lang or settings.bot.language

    def gettext(message: str, **variables: Any) -> str:
        text = i18n.translations(language()).ugettext(message)
        return text % variables if variables else text

    def ngettext(singular: str, plural: str, n: int, **variables: Any) -> str:
        text = i18n.translations(language()).ungettext(singular, plural, n)
        variables.setdefault("num", n)
        return text % variables

    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext, ngettext, newstyle=True
    )
    app.jinja_env.globals.update(
        csrf_token=csrf_token, nicobot_version=__version__, languages=("en", "es")
    )
    app.jinja_env.filters["localtime"] = lambda value: i18n.format_datetime(
        value, language(), settings.bot.timezone
    )

    @app.before_request
    async def choose_language() -> None:
        chosen = session.get("lang")
        g.lang = chosen if chosen in ("en", "es") else settings.bot.language


BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _setup_limits(app: Quart) -> None:
    @app.url_value_preprocessor
    def bound_path_values(endpoint: str | None, values: dict[str, Any] | None) -> None:
        if values and not all(path_value_ok(value) for value in values.values()):
            raise NotFound()

    @app.before_request
    async def bound_json_bodies() -> Any:
        if request.method not in BODY_METHODS or request.mimetype in FORM_TYPES:
            return None
        try:
            if (request.content_length or 0) > MAX_REQUEST_BYTES:
                raise BodyRejected("request too large", 413)
            body = await request.get_data(cache=True)
            assert isinstance(body, bytes)
            # webhooks judge their own bodies' encoding; the API's JSON must be UTF-8
            check_json_body(body, require_utf8=not request.path.startswith("/api/webhooks/"))
        except BodyRejected as exc:
            return jsonify(error=str(exc)), exc.status
        return None


def _setup_errors(app: Quart) -> None:
    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Any:
        status = exc.code or 500
        if request.path.startswith("/api/") or request.path in ("/healthz", "/readyz"):
            message = {413: "request too large"}.get(status, exc.description or exc.name)
            return jsonify(error=message), status
        return Response(
            f"{status} {exc.name}", status=status, content_type="text/plain; charset=utf-8"
        )

    @app.errorhandler(Exception)
    async def unexpected_error(exc: Exception) -> Any:
        log.exception("unhandled error on %s %s", request.method, request.path)
        if request.path.startswith("/api/"):
            return jsonify(error=INTERNAL_ERROR), 500
        return Response(
            "500 Internal Server Error", status=500, content_type="text/plain; charset=utf-8"
        )
