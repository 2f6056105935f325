"""``nicobot serve``: run the web app and the bot."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from .common import CONTEXT_SETTINGS, load_project, project_option

if TYPE_CHECKING:
    import uvicorn
    from quart import Quart

GIL_SWITCH_SECONDS = 0.001


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
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
def serve(project: Path, host: str | None, port: int | None, log_level: str) -> None:
    """Serve the chat and admin pages, the API and the channels' webhooks."""
    settings = load_project(project)
    if host:
        settings.server.host = host
    if port:
        settings.server.port = port
    host, port = settings.server.host, settings.server.port
    if not settings.admin_password and not is_loopback(host):
        raise click.ClickException(
            f"refusing to listen on {host} without an admin password: set "
            "NICOBOT_ADMIN_PASSWORD in .env (nicobot init writes one)"
        )
    from ..logs import configure as configure_logging

    configure_logging(log_level)
    import uvicorn

    from ..app import create_app

    app = create_app(settings)
    click.echo(f"nicobot: {settings.bot.name} for {settings.project_dir}")
    click.echo(f"  chat and admin: http://{_url_host(host)}:{port}/")
    if settings.admin_password:
        click.echo(f"  admin password: NICOBOT_ADMIN_PASSWORD in {settings.project_dir / '.env'}")
    else:
        click.echo(
            "  no NICOBOT_ADMIN_PASSWORD set; temporary admin password for this run: "
            + app.config["NICOBOT_ADMIN_PASSWORD"]
        )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        log_level=log_level,
        access_log=log_level == "debug",
        log_config=None,
        timeout_graceful_shutdown=15,
    )
    # The store's and the knowledge base's threads take the GIL once per statement; with
    # the default 5 ms switch interval each of those waits up to 5 ms behind a busy event
    # loop, and webhooks wait behind them.
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    server = uvicorn.Server(config)
    _end_live_pages_on_exit(server, app)
    server.run()


def _end_live_pages_on_exit(server: uvicorn.Server, app: Quart) -> None:
    """uvicorn waits for open responses before it stops: end the pages' event streams
    as soon as the stop signal comes."""
    from ..web.events import close_streams

    handle_exit = server.handle_exit

    def on_exit(sig: int, frame: FrameType | None) -> None:
        close_streams(app)
        handle_exit(sig, frame)

    server.handle_exit = on_exit  # type: ignore[method-assign]


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
