"""The default store: one SQLite file in WAL mode, through aiosqlite."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiosqlite

from ..models import ChatSession, Message, Role, utcnow
from .base import Store

if TYPE_CHECKING:
    from typing import Self

    from ..config import Settings

DB_FILE = "nicobot.sqlite3"

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        channel TEXT NOT NULL,
        address TEXT NOT NULL,
        phone_number TEXT,
        sender_name TEXT,
        prompt_context TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        last_message TEXT,
        last_message_at TEXT,
        UNIQUE (channel, address)
    );
    CREATE INDEX sessions_by_activity ON sessions (last_message_at DESC);
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        role TEXT NOT NULL,
        text TEXT NOT NULL,
        created_at TEXT NOT NULL,
        meta TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX messages_by_session ON messages (session_id, id);
    CREATE TABLE webhook_claims (
        channel TEXT NOT NULL,
        message_id TEXT NOT NULL,
        claimed_at REAL NOT NULL,
        PRIMARY KEY (channel, message_id)
    ) WITHOUT ROWID;
    CREATE INDEX webhook_claims_by_age ON webhook_claims (claimed_at);
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
)

SESSION_COLUMNS = (
    "id, channel, address, phone_number, sender_name, prompt_context, "
    "created_at, updated_at, last_message, last_message_at"
)


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _session(row: sqlite3.Row | tuple[Any, ...]) -> ChatSession:
    return ChatSession(
        id=row[0],
        channel=row[1],
        address=row[2],
        phone_number=row[3],
        sender_name=row[4],
        prompt_context=row[5],
        created_at=datetime.fromisoformat(row[6]),
        updated_at=datetime.fromisoformat(row[7]),
        last_message=row[8],
        last_message_at=_dt(row[9]),
    )


class SQLiteStore(Store):
    """Everything in one SQLite file; each write is committed at once."""

    name = "sqlite"
    schema_version = len(MIGRATIONS)

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._db: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(settings.data_path / DB_FILE)

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("the store is not open")
        return self._db

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await aiosqlite.connect(self.path, isolation_level=None)
        await self._db.execute("PRAGMA busy_timeout = 10000")
        await self._db.execute("PRAGMA journal_mode = WAL")
        await self._db.execute("PRAGMA synchronous = NORMAL")
        await self._db.execute("PRAGMA foreign_keys = ON")
        await self._migrate()

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def _migrate(self) -> None:
        async with self.transaction() as db:
            async with db.execute("PRAGMA user_version") as cursor:
                row = await cursor.fetchone()
            current = int(row[0]) if row else 0
            if current > self.schema_version:
                raise RuntimeError(
                    f"{self.path} has schema version {current}, newer than this nicobot "
                    f"({self.schema_version}); upgrade nicobot"
                )
            for version in range(current, self.schema_version):
                await db.executescript_in_transaction(MIGRATIONS[version])
            if current != self.schema_version:
                await db.execute(f"PRAGMA user_version = {self.schema_version}")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_TransactionDB]:
        """One write transaction at a time on this connection; BEGIN IMMEDIATE so that
        other processes wait on the busy timeout instead of failing mid-way."""
        async with self._write_lock:
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                yield _TransactionDB(self.db)
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
            await self.db.execute("COMMIT")

    # sessions

    async def get_session(self, session_id: str) -> ChatSession | None:
        async with self.db.execute(
            f"SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?", (session_id,)
        ) as cursor:
            row = await cursor.fetchone()
        return _session(row) if row else None

    async def put_session(self, session: ChatSession) -> None:
        session.updated_at = utcnow()
        await self.db.execute(
            f"INSERT INTO sessions ({SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET channel = excluded.channel, "
            "address = excluded.address, phone_number = excluded.phone_number, "
            "sender_name = excluded.sender_name, prompt_context = excluded.prompt_context, "
            "updated_at = excluded.updated_at, last_message = excluded.last_message, "
            "last_message_at = excluded.last_message_at",
            (
                session.id,
                session.channel,
                session.address,
                session.phone_number,
                session.sender_name,
                session.prompt_context,
                _ts(session.created_at),
                _ts(session.updated_at),
                session.last_message,
                _ts(session.last_message_at) if session.last_message_at else None,
            ),
        )

    async def delete_session(self, session_id: str) -> bool:
        cursor = await self.db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
        return cursor.rowcount > 0

    async def list_sessions(
        self, channel: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[ChatSession]:
        where, params = ("WHERE channel = ?", [channel]) if channel else ("", [])
        query = (
            f"SELECT {SESSION_COLUMNS} FROM sessions {where} "
            "ORDER BY COALESCE(last_message_at, updated_at) DESC, id LIMIT ? OFFSET ?"
        )
        async with self.db.execute(query, (*params, limit, offset)) as cursor:
            rows = await cursor.fetchall()
        return [_session(row) for row in rows]

    async def get_or_create_session(
        self,
        channel: str,
        address: str,
        *,
        phone_number: str | None = None,
        sender_name: str | None = None,
        prompt_context: str | None = None,
    ) -> tuple[ChatSession, bool]:
        now = _ts(utcnow())
        async with self.transaction() as db:
            cursor = await db.execute(
                f"INSERT INTO sessions ({SESSION_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL) "
                "ON CONFLICT (channel, address) DO NOTHING",
                (
                    uuid.uuid4().hex,
                    channel,
                    address,
                    phone_number,
                    sender_name,
                    prompt_context,
                    now,
                    now,
                ),
            )
            created = cursor.rowcount > 0
            if not created:
                await db.execute(
                    "UPDATE sessions SET "
                    "phone_number = COALESCE(?, phone_number), "
                    "sender_name = COALESCE(?, sender_name), "
                    "prompt_context = COALESCE(?, prompt_context) "
                    "WHERE channel = ? AND address = ?",
                    (phone_number, sender_name, prompt_context, channel, address),
                )
            async with db.execute(
                f"SELECT {SESSION_COLUMNS} FROM sessions WHERE channel = ? AND address = ?",
                (channel, address),
            ) as select:
                row = await select.fetchone()
        assert row is not None
        return _session(row), created

    # messages

    async def add_message(
        self, session_id: str, role: Role, text: str, meta: dict[str, Any] | None = None
    ) -> Message:
        created_at = utcnow()
        stamp = _ts(created_at)
        async with self.transaction() as db:
            cursor = await db.execute(
                "INSERT INTO messages (session_id, role, text, created_at, meta) "
                "VALUES (?, ?, ?, ?, ?)",
                (session_id, role.value, text, stamp, json.dumps(meta or {})),
            )
            message_id = cursor.lastrowid
            await db.execute(
                "UPDATE sessions SET last_message = ?, last_message_at = ?, updated_at = ? "
                "WHERE id = ?",
                (text, stamp, stamp, session_id),
            )
        assert message_id is not None
        return Message(message_id, session_id, role, text, created_at, dict(meta or {}))

    async def list_messages(self, session_id: str, limit: int | None = None) -> list[Message]:
        params: tuple[Any, ...]
        if limit is None:
            query, params = (
                "SELECT id, session_id, role, text, created_at, meta FROM messages "
                "WHERE session_id = ? ORDER BY id",
                (session_id,),
            )
        else:
            query, params = (
                "SELECT * FROM (SELECT id, session_id, role, text, created_at, meta "
                "FROM messages WHERE session_id = ? ORDER BY id DESC LIMIT ?) ORDER BY id",
                (session_id, limit),
            )
        async with self.db.execute(query, params) as cursor:
            rows = await cursor.fetchall()
        return [
            Message(r[0], r[1], Role(r[2]), r[3], datetime.fromisoformat(r[4]), json.loads(r[5]))
            for r in rows
        ]

    # webhook dedup

    async def claim_message_id(self, channel: str, message_id: str) -> bool:
        cursor = await self.db.execute(
            "INSERT INTO webhook_claims (channel, message_id, claimed_at) VALUES (?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (channel, message_id, utcnow().timestamp()),
        )
        return cursor.rowcount > 0

    async def purge_claims(self, older_than: timedelta) -> int:
        cutoff = (utcnow() - older_than).timestamp()
        cursor = await self.db.execute("DELETE FROM webhook_claims WHERE claimed_at < ?", (cutoff,))
        return cursor.rowcount

    # settings

    async def get_setting(self, key: str) -> str | None:
        async with self.db.execute("SELECT value FROM settings WHERE key = ?", (key,)) as cursor:
            row = await cursor.fetchone()
        return str(row[0]) if row else None

    async def set_setting(self, key: str, value: str | None) -> None:
        if value is None:
            await self.db.execute("DELETE FROM settings WHERE key = ?", (key,))
        else:
            await self.db.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )


class _TransactionDB:
    """The connection as seen inside :meth:`SQLiteStore.transaction`."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    def execute(self, sql: str, params: Any = ()) -> Any:
        return self._db.execute(sql, params)

    async def executescript_in_transaction(self, script: str) -> None:
        for statement in (s.strip() for s in script.split(";")):
            if statement:
                await self._db.execute(statement)
