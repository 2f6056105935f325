"""What is PostgreSQL's own: settings, migrations, several workers starting at once,
errors. The store contract itself is nicobot's tests/test_store.py, run on both stores."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from nicobot import ConfigError, Role, load_settings
from nicobot.bot import make_store
from nicobot.plugins import make_plugin_manager
from nicobot.testing import make_project

from nicobot_postgres import PostgresStore
from nicobot_postgres.schema import SCHEMA_VERSION
from nicobot_postgres.store import StoreUnavailable


def test_the_project_chooses_postgres_with_two_variables(tmp_path: Path, postgres_url: str):
    project = make_project(tmp_path / "p")
    env = {"NICOBOT_STORE__BACKEND": "postgres", "NICOBOT_STORE__URL": postgres_url}
    store = make_store(make_plugin_manager(), load_settings(project, environ=env))
    assert isinstance(store, PostgresStore)
    assert store.url == postgres_url


def test_postgres_without_a_url_is_a_config_error(tmp_path: Path):
    project = make_project(tmp_path / "p")
    settings = load_settings(project, environ={"NICOBOT_STORE__BACKEND": "postgres"})
    with pytest.raises(ConfigError, match=r"store\.url"):
        make_store(make_plugin_manager(), settings)


async def test_workers_starting_at_once_migrate_once(postgres_url: str):
    stores = [PostgresStore(postgres_url) for _ in range(4)]
    await asyncio.gather(*[store.open() for store in stores])
    try:
        async with stores[0].connection() as conn:
            cursor = await conn.execute("SELECT version FROM nicobot_schema")
            assert await cursor.fetchall() == [(SCHEMA_VERSION,)]
        session, _ = await stores[1].get_or_create_session("whatsapp", "5491100000001")
        assert (await stores[2].get_session(session.id)) == session
    finally:
        for store in stores:
            await store.close()


async def test_a_newer_schema_is_refused(postgres_url: str):
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE nicobot_schema (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO nicobot_schema VALUES (999)")
    store = PostgresStore(postgres_url)
    with pytest.raises(RuntimeError, match="newer than this nicobot-postgres"):
        await store.open()


async def test_an_unreachable_server_is_one_line_without_the_password(postgres_server):
    port = postgres_server.port
    url = f"postgresql://nicobot:s3cret-pass@127.0.0.1:{port}/no_such_database"
    store = PostgresStore(url)
    with pytest.raises(StoreUnavailable) as raised:
        await store.open()
    message = str(raised.value)
    assert f"nicobot@127.0.0.1:{port}/no_such_database" in message
    assert "no_such_database" in message and "\n" not in message
    assert "s3cret-pass" not in message


async def test_a_cancelled_writer_leaves_the_pool_clean(postgres_url: str):
    store = PostgresStore(postgres_url)
    await store.open()
    try:
        session, _ = await store.get_or_create_session("simulator", "5550002")
        for delay in (0, 0, 0.0005, 0.001, 0.002, 0.005):
            task = asyncio.create_task(store.add_message(session.id, Role.USER, "maybe"))
            await asyncio.sleep(delay)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await store.add_message(session.id, Role.USER, "after the cancellations")
        texts = [m.text for m in await store.list_messages(session.id)]
        assert texts[-1] == "after the cancellations"
        assert set(texts[:-1]) <= {"maybe"}
        assert (await store.get_session(session.id)).last_message == "after the cancellations"
    finally:
        await store.close()


def test_nicobot_commands_work_unchanged_on_postgres(tmp_path: Path, postgres_url: str):
    project = make_project(tmp_path / "p")
    env = {
        **os.environ,
        "NICOBOT_STORE__BACKEND": "postgres",
        "NICOBOT_STORE__URL": postgres_url,
    }

    async def seed() -> str:
        store = PostgresStore(postgres_url)
        await store.open()
        session, _ = await store.get_or_create_session(
            "whatsapp", "5491100000077", sender_name="Ana"
        )
        await store.add_message(session.id, Role.USER, "¿abren el domingo?")
        await store.close()
        return session.id

    session_id = asyncio.run(seed())

    def nicobot(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "nicobot", *args, "--project", str(project)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return done.stdout

    assert "Ana" in nicobot("sessions", "list")
    assert "¿abren el domingo?" in nicobot("sessions", "show", session_id)


def test_a_change_id_still_in_flight_holds_the_later_ones_back():
    from datetime import timedelta

    from nicobot_postgres.store import _without_gaps, utcnow

    now = utcnow()
    fresh, old = now - timedelta(seconds=0.1), now - timedelta(seconds=30)
    rows = [(5, "message", "s", 1, fresh), (7, "message", "s", 2, fresh)]
    assert [c.id for c in _without_gaps(4, rows, now)] == [5]  # 6 may still commit
    rows = [(5, "message", "s", 1, old), (7, "message", "s", 2, old)]
    assert [c.id for c in _without_gaps(4, rows, now)] == [5, 7]  # 6 rolled back


def test_store_migrate_copies_a_sqlite_project(tmp_path: Path, postgres_url: str):
    from nicobot.store.sqlite import SQLiteStore

    project = make_project(tmp_path / "p")

    async def seed() -> tuple[str, int]:
        store = SQLiteStore(project / "data" / "nicobot.sqlite3")
        await store.open()
        from nicobot import IncomingMessage

        session, _ = await store.enqueue(
            IncomingMessage(
                channel="whatsapp", address="5491100000088", text="hola", message_id="w1"
            ),
            debounce=0,
            max_wait=0,
        )
        [turn] = await store.claim_turns("w", 1, lease=60)
        await store.complete_turn(turn, "¡hola!", {"mode": "llm"}, ["¡hola!"])
        await store.set_setting("prompt", "{}")
        await store.claim_message_id("whatsapp", "w1")
        await store.close()
        return session.id, turn.entry_ids[0]

    session_id, entry_id = asyncio.run(seed())
    env = {**os.environ, "NICOBOT_STORE__URL": postgres_url}

    def nicobot(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "nicobot", "store", "migrate", "--project", str(project), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=check,
        )

    done = nicobot()
    assert "2 messages" in done.stdout and "1 outbox" in done.stdout

    async def check() -> None:
        store = PostgresStore(postgres_url)
        await store.open()
        try:
            assert [m.text for m in await store.list_messages(session_id)] == ["hola", "¡hola!"]
            assert (await store.list_messages(session_id))[1].meta == {"mode": "llm"}
            assert [e.text for e in await store.list_outbox("pending")] == ["¡hola!"]
            assert await store.get_setting("prompt") == "{}"
            assert not await store.claim_message_id("whatsapp", "w1")
            session, _ = await store.get_or_create_session("whatsapp", "5491100000088")
            assert session.id == session_id
            added = await store.add_message(session_id, Role.USER, "after the move")
            assert added.id > 2  # ids continue after the copied ones
            async with store.connection() as conn:
                cursor = await conn.execute(
                    "SELECT message_row_id FROM inbox WHERE id = %s", (entry_id,)
                )
                assert (await cursor.fetchone())[0] == 1
        finally:
            await store.close()

    asyncio.run(check())
    again = nicobot(check=False)
    assert again.returncode == 1
    assert "already holds conversations" in again.stderr and "Traceback" not in again.stderr
