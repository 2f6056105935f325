"""The nicobot plugin entry point (``[project.entry-points.nicobot] postgres``).

nicobot imports this module whenever it starts: it imports nothing heavy, and psycopg
only when the hook is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nicobot import hookimpl

if TYPE_CHECKING:
    import click
    from nicobot import Store


@hookimpl
def register_stores() -> list[type[Store]]:
    from .store import PostgresStore

    return [PostgresStore]


@hookimpl
def register_commands(cli: click.Group) -> None:
    from .migrate import store_group

    cli.add_command(store_group)
