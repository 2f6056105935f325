"""Helpers for commands that work on a project."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from ..config import Settings
    from ..store import Store

T = TypeVar("T")

#: Every command takes -h as well as --help, however it is reached.
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}

project_option = click.option(
    "--project",
    "-p",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    help="The project directory (where nicobot.toml is).",
)


def load_project(project: Path) -> Settings:
    """The project's settings; its ``.env`` also reaches libraries that read the
    environment themselves (an ``OPENAI_API_KEY`` there works for litellm)."""
    from ..config import CONFIG_FILE, ENV_FILE, load_settings, read_env_file

    settings = load_settings(project)
    if not (settings.project_dir / CONFIG_FILE).is_file():
        raise click.ClickException(
            f"no {CONFIG_FILE} in {settings.project_dir}; run `nicobot init` there first "
            "or pass --project"
        )
    for key, value in read_env_file(settings.project_dir / ENV_FILE).items():
        os.environ.setdefault(key, value)
    return settings


def run(coroutine: Awaitable[T]) -> T:
    async def wrapper() -> T:
        return await coroutine

    import asyncio

    return asyncio.run(wrapper())


async def with_store(settings: Settings, work: Callable[[Store], Awaitable[T]]) -> T:
    from ..bot import make_store
    from ..plugins import make_plugin_manager

    store = make_store(make_plugin_manager(), settings)
    await store.open()
    try:
        return await work(store)
    finally:
        await store.close()


def echo_table(rows: list[list[Any]], headers: list[str]) -> None:
    table = [headers, *[[("" if c is None else str(c)) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    for index, row in enumerate(table):
        line = "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
        click.echo(click.style(line, bold=True) if index == 0 else line)


def clip(text: str, width: int) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
