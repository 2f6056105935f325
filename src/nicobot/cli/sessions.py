"""``nicobot sessions``: read and export conversations."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .common import (
    CONTEXT_SETTINGS,
    clip,
    echo_table,
    load_project,
    project_option,
    run,
    with_store,
)

if TYPE_CHECKING:
    from ..store import Store


@click.group(context_settings=CONTEXT_SETTINGS)
def sessions() -> None:
    """List, show and export conversations."""


@sessions.command("list")
@project_option
@click.option("--channel", help="Only this channel.")
@click.option("--limit", type=click.IntRange(1, 100000), default=50, show_default=True)
def list_sessions(project: Path, channel: str | None, limit: int) -> None:
    """List conversations, the most recent first."""
    settings = load_project(project)

    async def work(store: Store) -> list[Any]:
        return await store.list_sessions(channel=channel, limit=limit)

    found = run(with_store(settings, work))
    if not found:
        click.echo("No conversations yet.")
        return
    echo_table(
        [
            [
                s.id,
                s.channel,
                s.phone_number or s.address,
                s.sender_name,
                s.last_message_at.strftime("%Y-%m-%d %H:%M") if s.last_message_at else "",
                clip(s.last_message or "", 40),
            ]
            for s in found
        ],
        ["id", "channel", "number", "name", "last (UTC)", "last message"],
    )


@sessions.command("show")
@project_option
@click.argument("session_id")
def show_session(project: Path, session_id: str) -> None:
    """Print one conversation's transcript."""
    settings = load_project(project)

    async def work(store: Store) -> tuple[Any, list[Any]]:
        session = await store.get_session(session_id)
        return session, (await store.list_messages(session_id) if session else [])

    session, messages = run(with_store(settings, work))
    if session is None:
        raise click.ClickException(f"no session {session_id!r}; see `nicobot sessions list`")
    who = session.sender_name or session.phone_number or session.address
    click.echo(click.style(f"{who} on {session.channel} ({session.address})", bold=True))
    if session.opted_out_at is not None:
        click.echo(f"Opted out on {session.opted_out_at:%Y-%m-%d %H:%M} UTC: the bot stays silent.")
    for message in messages:
        stamp = message.created_at.strftime("%Y-%m-%d %H:%M:%S")
        click.echo(f"[{stamp}] {message.role.value}: {message.text}")


@sessions.command("export")
@project_option
@click.option(
    "--format", "fmt", type=click.Choice(["json", "csv"]), default="json", show_default=True
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of standard output.",
)
@click.option("--channel", help="Only this channel.")
def export_sessions(project: Path, fmt: str, output: Path | None, channel: str | None) -> None:
    """Export conversations with their messages as JSON or CSV (one row per message)."""
    settings = load_project(project)

    from ..export import export_data, render

    async def work(store: Store) -> list[dict[str, Any]]:
        return await export_data(store, channel)

    data = run(with_store(settings, work))
    text = render(data, fmt)
    if output:
        output.write_text(text, encoding="utf-8")
        click.echo(f"Exported {len(data)} conversations to {output}", err=True)
    else:
        sys.stdout.write(text)
