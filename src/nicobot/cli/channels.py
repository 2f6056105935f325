"""``nicobot channels``: list, check, connect and disconnect channels."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from .common import CONTEXT_SETTINGS, echo_table, load_project, project_option, run

if TYPE_CHECKING:
    from ..bot import Bot
    from ..channels import Channel, ChannelStatus

T = TypeVar("T")
POLL_SECONDS = 2.0


def _bot(project: Path) -> Bot:
    from ..bot import Bot
    from ..plugins import make_plugin_manager

    return Bot(load_project(project), make_plugin_manager())


def _channel(bot: Bot, name: str) -> Channel:
    channel = bot.channels.get(name)
    if channel is None:
        known = ", ".join(c.name for c in bot.channels.all())
        raise click.ClickException(f"no channel named {name!r} (available: {known})")
    if not channel.configured:
        raise click.ClickException(
            f"{channel.label} is not configured; set its settings in .env or nicobot.toml"
        )
    return channel


async def _with_channel(channel: Channel, work: Callable[[], Awaitable[T]]) -> T:
    await channel.start()
    try:
        return await work()
    finally:
        await channel.stop()


@click.group(context_settings=CONTEXT_SETTINGS)
def channels() -> None:
    """List, check, connect and disconnect messaging channels."""


@channels.command("list")
@project_option
def list_channels(project: Path) -> None:
    """Every channel and its status."""
    bot = _bot(project)

    async def work() -> dict[str, ChannelStatus]:
        for channel in bot.channels.all():
            if channel.configured:
                await channel.start()
        try:
            return await bot.channels.statuses()
        finally:
            for channel in bot.channels.all():
                if channel.configured:
                    await channel.stop()

    statuses = run(work())
    echo_table(
        [
            [c.name, c.label, statuses[c.name].state, statuses[c.name].details]
            for c in bot.channels.all()
        ],
        ["channel", "label", "state", "details"],
    )


@channels.command("status")
@project_option
@click.argument("name")
def channel_status(project: Path, name: str) -> None:
    """One channel's connection status."""
    channel = _channel(_bot(project), name)
    status = run(_with_channel(channel, channel.get_status))
    _print_status(channel, status)
    if not status.connected:
        raise SystemExit(1)


@channels.command("connect")
@project_option
@click.argument("name")
@click.option(
    "--timeout", type=float, default=300, show_default=True, help="Give up after this many seconds."
)
def connect(project: Path, name: str, timeout: float) -> None:
    """Connect NAME; for a channel that pairs by QR code (WhatsApp), show the code here
    and wait until it is scanned."""
    channel = _channel(_bot(project), name)
    if not channel.capabilities()["connect"]:
        raise click.ClickException(
            f"{channel.label} has nothing to connect: it works from its settings alone "
            f"(see `nicobot channels status {channel.name}`)"
        )
    if not channel.supports_qr:
        status = run(_with_channel(channel, channel.connect))
        _print_status(channel, status)
        if not status.connected:
            raise click.ClickException(f"{channel.label} did not connect")
        return

    import asyncio

    async def work() -> ChannelStatus:
        status = await channel.connect()
        shown: str | None = None
        deadline = asyncio.get_running_loop().time() + timeout
        while not status.connected:
            if status.qr_code and status.qr_code != shown:
                _draw_qr(status.qr_code, channel)
                shown = status.qr_code
            elif not status.qr_code and shown is None:
                click.echo(f"Waiting for {channel.label}... ({status.details or status.state})")
                shown = ""
            if asyncio.get_running_loop().time() > deadline:
                raise click.ClickException(f"not connected after {timeout:.0f} s; try again")
            await asyncio.sleep(POLL_SECONDS)
            status = await channel.get_status()
            if not status.connected and not status.qr_code:
                status = await channel.connect()
        return status

    try:
        status = run(_with_channel(channel, work))
    except KeyboardInterrupt:
        click.echo("\nStopped waiting; the channel is not connected yet.", err=True)
        raise SystemExit(130) from None
    click.echo(click.style(f"{channel.label} connected.", fg="green", bold=True))
    _print_status(channel, status)


@channels.command("disconnect")
@project_option
@click.argument("name")
def disconnect(project: Path, name: str) -> None:
    """Disconnect NAME (for WhatsApp: log the linked device out)."""
    channel = _channel(_bot(project), name)
    if not channel.supports_disconnect:
        raise click.ClickException(
            f"{channel.label} cannot be disconnected; to turn it off, set "
            f"enabled = false in [channels.{channel.name}]"
        )
    status = run(_with_channel(channel, channel.disconnect))
    _print_status(channel, status)


def _print_status(channel: Channel, status: ChannelStatus) -> None:
    mark = (
        click.style("connected", fg="green")
        if status.connected
        else click.style(status.state, fg="yellow")
    )
    line = f"{channel.label}: {mark}"
    if status.account:
        line += f" as {status.account}"
    if status.details:
        line += f" ({status.details})"
    click.echo(line)


def _draw_qr(code: str, channel: Channel) -> None:
    import segno

    click.clear()
    click.echo(f"Scan this code with the phone: {channel.label} > Linked devices > Link a device")
    segno.make(code, error="l").terminal(compact=True)
    click.echo("The code changes every few seconds; it is redrawn here. Ctrl-C stops waiting.")
