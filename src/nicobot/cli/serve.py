"""``nicobot serve``: run the web app and the bot."""

from __future__ import annotations

import ipaddress
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from .common import CONTEXT_SETTINGS, load_project, project_option

GIL_SWITCH_SECONDS = 0.001
#: Files and folders the server creates are its user's alone (conversations, keys).
PRIVATE_UMASK = 0o077


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command(context_settings=CONTEXT_SETTINGS)
@project_option
@click.option("--host", help="Address to listen on (default: [server] host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default: [server] port, 7070).")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    help="Server processes sharing the port and the store (default: [server] workers, 1).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    envvar="NICOBOT_LOG_LEVEL",
    help="debug also logs every request (secrets in webhook paths are hidden).",
)
def serve(
    project: Path, host: str | None, port: int | None, workers: int | None, log_level: str
) -> None:
    """Serve the chat and admin pages, the API and the channels' webhooks."""
    settings = load_project(project)
    if host:
        settings.server.host = host
    if port:
        settings.server.port = port
    if workers:
        settings.server.workers = workers
    host, port = settings.server.host, settings.server.port
    if not settings.admin_password and not is_loopback(host):
        raise click.ClickException(
            f"refusing to listen on {host} without an admin password: set "
            "NICOBOT_ADMIN_PASSWORD in .env (nicobot init writes one)"
        )
    from .. import redact
    from ..logs import configure as configure_logging

    configure_logging(log_level)
    os.umask(PRIVATE_UMASK)
    uvicorn_options: dict[str, Any] = {
        "lifespan": "on",
        "access_log": log_level == "debug",
        "log_config": None,
        "timeout_graceful_shutdown": 15,
        # forwarded client addresses are believed from the configured proxies only
        "proxy_headers": bool(settings.server.trusted_proxies),
        "forwarded_allow_ips": settings.server.trusted_proxies or "",
    }
    if settings.server.workers > 1:
        from .workers import serve_workers

        click.echo(f"nicobot: {settings.bot.name} for {settings.project_dir}")
        click.echo(f"  chat and admin: http://{_url_host(host)}:{port}/")
        serve_workers(settings, settings.server.workers, log_level, **uvicorn_options)
        return
    import uvicorn

    from ..app import create_app

    app = create_app(settings)
    redact.install(
        redact.secrets_in(
            settings.env, [app.config["NICOBOT_ADMIN_PASSWORD"], str(app.config["SECRET_KEY"])]
        )
    )
    click.echo(f"nicobot: {settings.bot.name} for {settings.project_dir}")
    click.echo(f"  chat and admin: http://{_url_host(host)}:{port}/")
    if settings.admin_password:
        click.echo(f"  admin password: NICOBOT_ADMIN_PASSWORD in {settings.project_dir / '.env'}")
    else:
        click.echo(
            "  no NICOBOT_ADMIN_PASSWORD set; temporary admin password for this run: "
            + app.config["NICOBOT_ADMIN_PASSWORD"]
        )
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, **uvicorn_options)
    # The store's and the knowledge base's threads take the GIL once per statement; with
    # the default 5 ms switch interval each of those waits up to 5 ms behind a busy event
    # loop, and webhooks wait behind them.
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    server = uvicorn.Server(config)
    code: object = 0
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits this way when it cannot bind the port
        code = exc.code
    if not server.started or code:
        click.echo("nicobot: the server could not start (see the error above); exiting", err=True)
        _exit_now(code if isinstance(code, int) and code else 1)


def _exit_now(code: int) -> None:
    """Exit at once: after a failed start, threads of half-opened parts (the store's
    connection, the knowledge store) would otherwise keep the process alive forever."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
