"""``nicobot store migrate``: copy a project's SQLite store into an empty PostgreSQL database.

Every table is copied whole in one PostgreSQL transaction (all or nothing), keeping row
ids, so that message, inbox and outbox references stay right; the identity sequences
then continue after the highest id. Columns are matched by name, so a column one side
does not have is left out. Stop ``nicobot serve`` first: the copy is of one moment.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import psycopg
from psycopg import sql

from .store import PostgresStore, describe

SQLITE_FILE = "nicobot.sqlite3"  # the sqlite store's file in the project's data folder
#: Parents before children (foreign keys).
TABLES = ("sessions", "messages", "webhook_claims", "settings", "inbox", "outbox")
IDENTITY_TABLES = ("messages", "inbox", "outbox")
BATCH = 1000


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    pg_type: str


def sqlite_rows(path: Path, table: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        columns = [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]
        rows = connection.execute(f"SELECT * FROM {table}").fetchall() if columns else []
    finally:
        connection.close()
    return columns, rows


async def pg_columns(conn: psycopg.AsyncConnection[Any], table: str) -> dict[str, Column]:
    cursor = await conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = %s",
        (table,),
    )
    return {name: Column(name, kind) for name, kind in await cursor.fetchall()}


def convert(value: Any, column: Column) -> Any:
    if value is None:
        return None
    if column.pg_type == "boolean":
        return bool(value)
    return value


async def copy_table(conn: psycopg.AsyncConnection[Any], source: Path, table: str) -> int:
    names, rows = sqlite_rows(source, table)
    target = await pg_columns(conn, table)
    shared = [target[name] for name in names if name in target]
    positions = [names.index(column.name) for column in shared]
    casts = sql.SQL(", ").join(
        sql.SQL("%s::{}").format(sql.SQL(column.pg_type)) for column in shared
    )
    overriding = sql.SQL("OVERRIDING SYSTEM VALUE ") if table in IDENTITY_TABLES else sql.SQL("")
    statement = sql.SQL("INSERT INTO {} ({}) {}VALUES ({})").format(
        sql.Identifier(table),
        sql.SQL(", ").join(sql.Identifier(column.name) for column in shared),
        overriding,
        casts,
    )
    values = [
        tuple(convert(row[p], column) for p, column in zip(positions, shared, strict=True))
        for row in rows
    ]
    async with conn.cursor() as cursor:
        for start in range(0, len(values), BATCH):
            await cursor.executemany(statement, values[start : start + BATCH])
    if table in IDENTITY_TABLES:
        await conn.execute(
            sql.SQL(
                "SELECT setval(pg_get_serial_sequence({table}, 'id'), "
                "COALESCE((SELECT MAX(id) FROM {ident}), 0) + 1, false)"
            ).format(table=sql.Literal(table), ident=sql.Identifier(table))
        )
    return len(values)


async def migrate_sqlite(source: Path, url: str) -> dict[str, int]:
    store = PostgresStore(url)
    await store.open()  # creates or migrates the schema
    try:
        async with store.connection() as conn, conn.transaction():
            cursor = await conn.execute(
                "SELECT (SELECT COUNT(*) FROM sessions) + (SELECT COUNT(*) FROM settings)"
            )
            row = await cursor.fetchone()
            if row and row[0]:
                raise click.ClickException(
                    f"the database {describe(url)} already holds conversations or settings; "
                    "migrate into an empty database"
                )
            return {table: await copy_table(conn, source, table) for table in TABLES}
    finally:
        await store.close()


@click.group("store")
def store_group() -> None:
    """The store: move a project's data to PostgreSQL."""


@store_group.command("migrate")
@click.option(
    "--project",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    help="The project folder.",
)
@click.option(
    "--to",
    "url",
    required=True,
    envvar="NICOBOT_STORE__URL",
    help="The PostgreSQL database, postgresql://user:password@host:5432/db "
    "(default: NICOBOT_STORE__URL).",
)
def migrate_command(project: Path, url: str) -> None:
    """Copy the project's SQLite store into an empty PostgreSQL database.

    Stop `nicobot serve` first; afterwards set [store] backend = "postgres" and url.
    """
    from nicobot import load_settings

    settings = load_settings(project)
    source = settings.data_path / SQLITE_FILE
    if not source.is_file():
        raise click.ClickException(f"no SQLite store at {source}")
    if not url.startswith(("postgresql://", "postgres://")):
        raise click.ClickException("--to: give a postgresql:// URL")
    counts = asyncio.run(migrate_sqlite(source, url))
    summary = ", ".join(f"{count} {table}" for table, count in counts.items())
    click.echo(f"copied {source} to {describe(url)}: {summary}")
    click.echo('now set [store] backend = "postgres" and url (or NICOBOT_STORE__BACKEND/URL)')
