"""``nicobot channels``: list, check, connect and disconnect channels."""

from __future__ import annotations

import sys
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
#: States in which waiting longer cannot help.
FAILED_STATES = frozenset({"error", "unreachable", "not_configured"})


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


async def _with_channels(bot: Bot, started: list[Channel], work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` with the store open (channels keep their state there, and a channel
    that connects has its waiting replies rescheduled) and ``started`` started."""
    await bot.store.open()
    try:
        for channel in started:
            await channel.start()
        try:
            return await work()
        finally:
            for channel in started:
                await channel.stop()
    finally:
        await bot.store.close()


@click.group(context_settings=CONTEXT_SETTINGS)
def channels() -> None:
    """List, check, connect and disconnect messaging channels."""


@channels.command("list")
@project_option
def list_channels(project: Path) -> None:
    """Every channel and its status."""
    bot = _bot(project)
    configured = [channel for channel in bot.channels.all() if channel.configured]
    statuses = run(_with_channels(bot, configured, bot.channels.statuses))
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
    bot = _bot(project)
    channel = _channel(bot, name)
    status = run(_with_channels(bot, [channel], channel.get_status))
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
    and wait until it is scanned.

    The code is redrawn each time the gateway rotates it; the command ends when the
    phone is linked, on Ctrl-C, or when the gateway stops offering codes."""
    bot = _bot(project)
    channel = _channel(bot, name)
    if not channel.capabilities()["connect"]:
        raise click.ClickException(
            f"{channel.label} has nothing to connect: it works from its settings alone "
            f"(see `nicobot channels status {channel.name}`)"
        )
    if not channel.supports_qr:
        status = run(_with_channels(bot, [channel], channel.connect))
        _print_status(channel, status)
        if not status.connected:
            raise click.ClickException(f"{channel.label} did not connect")
        return
    try:
        status = run(_with_channels(bot, [channel], lambda: _pair(channel, wait_seconds=timeout)))
    except KeyboardInterrupt:
        click.echo("Stopped waiting; the channel is not connected yet.", err=True)
        raise SystemExit(130) from None
    click.echo(click.style(f"{channel.label} connected.", fg="green", bold=True))
    _print_status(channel, status)


async def _pair(channel: Channel, *, wait_seconds: float) -> ChannelStatus:
    """Poll the channel until it is connected, redrawing the QR whenever it changes."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    screen = QRScreen(channel)
    try:
        return await _wait_for_scan(channel, screen, deadline)
    finally:
        screen.done()


async def _wait_for_scan(channel: Channel, screen: QRScreen, deadline: float) -> ChannelStatus:
    import asyncio

    loop = asyncio.get_running_loop()
    status = await channel.connect()
    next_poll = loop.time() + POLL_SECONDS
    while not status.connected:
        if status.state in FAILED_STATES:
            raise click.ClickException(status.details or status.state)
        if status.qr_code:
            screen.show(status.qr_code, status.extra.get("qr_count"))
        elif screen.shown:  # codes were offered and no longer are: the gateway gave up
            raise click.ClickException(
                f"the code was not scanned in time ({channel.label} stopped offering new "
                "ones); run the command again for a new code"
            )
        elif not screen.waiting:
            click.echo(f"Waiting for {channel.label}... ({status.details or status.state})")
            screen.waiting = True
        left = deadline - loop.time()
        if left <= 0:
            raise click.ClickException("not connected before --timeout ran out; try again")
        screen.countdown(left)
        await asyncio.sleep(min(1.0, left, max(0.0, next_poll - loop.time())) or 0.05)
        if loop.time() >= next_poll:
            next_poll = loop.time() + POLL_SECONDS
            status = await channel.get_status()
    return status


class QRScreen:
    """The terminal while pairing: the current QR, redrawn when it changes, and a
    countdown line (rewritten in place on a terminal, left out in a pipe)."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.shown: str | None = None
        self.redraws = 0
        self.waiting = False
        self.interactive = sys.stdout.isatty()

    def show(self, code: str, count: object = None) -> None:
        if code == self.shown:
            return
        self.shown = code
        self.redraws += 1
        _draw_qr(code, self.channel)
        number = count if isinstance(count, int) else self.redraws
        click.echo(f"Code {number}: a new one replaces it here when the gateway rotates it.")

    def countdown(self, seconds_left: float) -> None:
        if not self.interactive:
            return
        minutes, seconds = divmod(int(seconds_left), 60)
        line = f"Waiting for the scan: {minutes}:{seconds:02d} left (Ctrl-C stops)"
        click.echo(f"\r{line}\x1b[K", nl=False)

    def done(self) -> None:
        if self.interactive and (self.shown or self.waiting):
            click.echo()


@channels.command("disconnect")
@project_option
@click.argument("name")
def disconnect(project: Path, name: str) -> None:
    """Disconnect NAME (for WhatsApp: log the linked device out)."""
    bot = _bot(project)
    channel = _channel(bot, name)
    if not channel.supports_disconnect:
        raise click.ClickException(
            f"{channel.label} cannot be disconnected; to turn it off, set "
            f"enabled = false in [channels.{channel.name}]"
        )
    status = run(_with_channels(bot, [channel], channel.disconnect))
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
