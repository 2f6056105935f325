"""The ``postgres`` store: nicobot's whole store contract on one PostgreSQL database.

Several nicobot workers, on one machine or many, share it. Every guarantee is a
statement: dedup is ``INSERT ... ON CONFLICT DO NOTHING``, claiming a conversation's turn
locks its session row with ``FOR UPDATE SKIP LOCKED`` (so two workers never answer one
conversation at once, and neither waits for the other), and deliveries are claimed the
same way. Connections come from a psycopg pool in autocommit mode; a multi-statement
operation is one explicit transaction, retried when PostgreSQL reports a deadlock.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from nicobot import (
    ActivityRow,
    Change,
    ChatSession,
    ClaimedTurn,
    ConfigError,
    FailedTurn,
    InboxEntry,
    IncomingMessage,
    LostClaim,
    Message,
    MessageKind,
    OutboxEntry,
    Role,
    Store,
)
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from .schema import SCHEMA_VERSION, migrate

if TYPE_CHECKING:
    from typing import Self

    from nicobot import Settings

T = TypeVar("T")
Conn = AsyncConnection[tuple[Any, ...]]

SESSION_COLUMNS = (
    "id, channel, address, phone_number, sender_name, prompt_context, "
    "created_at, updated_at, last_message, last_message_at, paused_until, opted_out_at"
)
SESSION_WIDTH = len(SESSION_COLUMNS.split(", "))
OUTBOX_COLUMNS = (
    "id, session_id, channel, address, text, status, attempts, created_at, last_error, "
    "platform_id, sent_at, recovered, uncertain, first_attempt_at, message_id"
)
FAILED_TURN_COLUMNS = (
    "i.id, i.session_id, i.channel, s.address, i.payload, i.attempts, i.last_error, "
    "i.received_at, i.failed_at"
)
ECHO_WINDOW = timedelta(minutes=10)
#: When a session's open entries (a GROUP BY session_id of inbox) make a turn: after the
#: debounce since its latest message, at most max_wait after its oldest, and never before
#: a deferred turn's not_before.
READY_AT = (
    "GREATEST(LEAST(MAX(i.received_at) + MAX(i.debounce), "
    "MIN(i.received_at) + MAX(i.max_wait)), MAX(i.not_before))"
)
#: Entries a claim may take: pending ones, and claimed ones whose lease ran out (their
#: worker died on another machine, or stalled).
CLAIMABLE = "(i.status = 'pending' OR (i.status = 'claimed' AND i.lease_until < %(now)s))"
#: A change log id missing this long is a rolled-back transaction's, not a slow one's.
CHANGE_GAP_SECONDS = 2.0
PHONE_PUNCTUATION = str.maketrans("", "", " +-().")
TRANSACTION_ATTEMPTS = 5
POOL_MAX_SIZE = 10
CONNECT_TIMEOUT_SECONDS = 10


def utcnow() -> datetime:
    return datetime.now(UTC)


def _session(row: tuple[Any, ...]) -> ChatSession:
    return ChatSession(
        id=row[0],
        channel=row[1],
        address=row[2],
        phone_number=row[3],
        sender_name=row[4],
        prompt_context=row[5],
        created_at=row[6],
        updated_at=row[7],
        last_message=row[8],
        last_message_at=row[9],
        paused_until=row[10],
        opted_out_at=row[11],
    )


def _outbox(row: tuple[Any, ...]) -> OutboxEntry:
    return OutboxEntry(
        id=row[0],
        session_id=row[1],
        channel=row[2],
        address=row[3],
        text=row[4],
        status=row[5],
        attempts=row[6],
        created_at=row[7],
        last_error=row[8],
        platform_id=row[9],
        sent_at=row[10],
        recovered=bool(row[11]),
        uncertain=bool(row[12]),
        first_attempt_at=row[13],
        message_id=row[14],
    )


def _failed_turn(row: tuple[Any, ...]) -> FailedTurn:
    return FailedTurn(
        id=row[0],
        session_id=row[1],
        channel=row[2],
        address=row[3],
        text=_from_payload(row[4]).text,
        attempts=row[5],
        last_error=row[6],
        received_at=datetime.fromtimestamp(row[7], UTC),
        failed_at=datetime.fromtimestamp(row[8], UTC) if row[8] is not None else None,
    )


def _payload(message: IncomingMessage) -> Jsonb:
    return Jsonb(
        {
            "channel": message.channel,
            "address": message.address,
            "text": message.text,
            "message_id": message.message_id,
            "phone_number": message.phone_number,
            "sender_name": message.sender_name,
            "kind": message.kind.value,
            "timestamp": message.timestamp.isoformat(),
            "media": message.media,
        }
    )


def _from_payload(data: dict[str, Any]) -> IncomingMessage:
    data = dict(data)
    data["kind"] = MessageKind(data["kind"])
    data["timestamp"] = datetime.fromisoformat(data["timestamp"])
    return IncomingMessage(**data)


class PostgresStore(Store):
    """Conversations, the pipeline's queues and settings in PostgreSQL."""

    name = "postgres"
    schema_version = SCHEMA_VERSION

    def __init__(self, url: str, *, max_connections: int = POOL_MAX_SIZE) -> None:
        self.url = url
        self.max_connections = max_connections
        self._pool: AsyncConnectionPool[Conn] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        url = settings.store.url
        if not url:
            raise ConfigError(
                "nicobot.toml: store.url: the postgres store needs a URL such as "
                "postgresql://nicobot:secret@127.0.0.1:5432/nicobot (or NICOBOT_STORE__URL)"
            )
        return cls(url)

    @property
    def pool(self) -> AsyncConnectionPool[Conn]:
        if self._pool is None:
            raise RuntimeError("the store is not open")
        return self._pool

    async def open(self) -> None:
        await _check_reachable(self.url)
        pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            self.url,
            min_size=1,
            max_size=self.max_connections,
            kwargs={"autocommit": True},
            configure=_configure,
            open=False,
        )
        try:
            await pool.open(wait=True, timeout=15)
            async with pool.connection() as conn:
                await migrate(conn)
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    # one statement, or one transaction

    async def _fetchall(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        async with self.pool.connection() as conn:
            cursor = await conn.execute(sql, params)
            return await cursor.fetchall()

    async def _rowcount(self, sql: str, params: Any = ()) -> int:
        async with self.pool.connection() as conn:
            cursor = await conn.execute(sql, params)
            return cursor.rowcount

    async def _transaction(self, operation: Callable[[Conn], Awaitable[T]]) -> T:
        for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
            try:
                async with self.pool.connection() as conn, conn.transaction():
                    return await operation(conn)
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                if attempt == TRANSACTION_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    # sessions

    async def get_session(self, session_id: str) -> ChatSession | None:
        rows = await self._fetchall(
            f"SELECT {SESSION_COLUMNS} FROM sessions WHERE id = %s", (session_id,)
        )
        return _session(rows[0]) if rows else None

    async def put_session(self, session: ChatSession) -> None:
        session.updated_at = utcnow()
        await self._rowcount(
            f"INSERT INTO sessions ({SESSION_COLUMNS}) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (id) DO UPDATE SET channel = excluded.channel, "
            "address = excluded.address, phone_number = excluded.phone_number, "
            "sender_name = excluded.sender_name, prompt_context = excluded.prompt_context, "
            "updated_at = excluded.updated_at, last_message = excluded.last_message, "
            "last_message_at = excluded.last_message_at, paused_until = excluded.paused_until, "
            "opted_out_at = excluded.opted_out_at",
            (
                session.id,
                session.channel,
                session.address,
                session.phone_number,
                session.sender_name,
                session.prompt_context,
                session.created_at,
                session.updated_at,
                session.last_message,
                session.last_message_at,
                session.paused_until,
                session.opted_out_at,
            ),
        )

    async def delete_session(self, session_id: str) -> bool:
        return await self._rowcount("DELETE FROM sessions WHERE id = %s", (session_id,)) > 0

    async def list_sessions(
        self, channel: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[ChatSession]:
        where, params = ("WHERE channel = %s", [channel]) if channel else ("", [])
        rows = await self._fetchall(
            f"SELECT {SESSION_COLUMNS} FROM sessions {where} "
            "ORDER BY COALESCE(last_message_at, updated_at) DESC, id LIMIT %s OFFSET %s",
            (*params, limit, offset),
        )
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
        async with self.pool.connection() as conn:
            return await _upsert_session(
                conn, channel, address, phone_number, sender_name, prompt_context
            )

    # messages

    async def add_message(
        self, session_id: str, role: Role, text: str, meta: dict[str, Any] | None = None
    ) -> Message:
        return await self._transaction(
            lambda conn: _insert_message(conn, session_id, role, text, meta)
        )

    async def list_messages(self, session_id: str, limit: int | None = None) -> list[Message]:
        columns = "id, session_id, role, text, created_at, meta"
        if limit is None:
            sql = f"SELECT {columns} FROM messages WHERE session_id = %s ORDER BY id"
            params: tuple[Any, ...] = (session_id,)
        else:
            sql = (
                f"SELECT * FROM (SELECT {columns} FROM messages WHERE session_id = %s "
                "ORDER BY id DESC LIMIT %s) AS latest ORDER BY id"
            )
            params = (session_id, limit)
        rows = await self._fetchall(sql, params)
        return [Message(r[0], r[1], Role(r[2]), r[3], r[4], dict(r[5])) for r in rows]

    # webhook dedup

    async def claim_message_id(self, channel: str, message_id: str) -> bool:
        claimed = await self._rowcount(
            "INSERT INTO webhook_claims (channel, message_id, claimed_at) VALUES (%s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            (channel, message_id, time.time()),
        )
        return claimed > 0

    async def purge_claims(self, older_than: timedelta) -> int:
        cutoff = time.time() - older_than.total_seconds()
        return await self._rowcount("DELETE FROM webhook_claims WHERE claimed_at < %s", (cutoff,))

    # the durable pipeline

    async def enqueue(
        self, message: IncomingMessage, *, debounce: float, max_wait: float
    ) -> tuple[ChatSession, int] | None:
        return await self._transaction(lambda conn: _enqueue(conn, message, debounce, max_wait))

    async def record_operator_message(
        self, message: IncomingMessage, *, pause_for: timedelta
    ) -> ChatSession | None:
        return await self._transaction(
            lambda conn: _record_operator_message(conn, message, pause_for)
        )

    async def claim_turns(self, worker: str, limit: int, lease: float) -> list[ClaimedTurn]:
        if limit <= 0:
            return []
        window = self.claim_window_for(limit)
        return await self._transaction(
            lambda conn: _claim_turns(conn, worker, limit, lease, window)
        )

    async def next_turn_at(self) -> float | None:
        rows = await self._fetchall(
            f"SELECT MIN(ready) FROM (SELECT {READY_AT} AS ready FROM inbox i "
            "WHERE i.status = 'pending' GROUP BY i.session_id) AS sessions_ready"
        )
        return float(rows[0][0]) if rows and rows[0][0] is not None else None

    async def complete_turn(
        self,
        turn: ClaimedTurn,
        reply: str | None,
        meta: dict[str, Any],
        outbox_parts: list[str],
    ) -> Message | None:
        return await self._transaction(
            lambda conn: _complete_turn(conn, turn, reply, meta, outbox_parts)
        )

    async def release_turn(self, turn: ClaimedTurn) -> None:
        await self._rowcount(
            "UPDATE inbox SET status = 'pending', worker = NULL, lease_until = NULL, "
            "attempts = GREATEST(attempts - 1, 0) "
            "WHERE id = ANY(%s) AND status = 'claimed' AND worker = %s",
            (turn.entry_ids, turn.worker),
        )

    async def retry_turn_later(self, turn: ClaimedTurn, error: str, retry_at: float) -> None:
        await self._rowcount(
            "UPDATE inbox SET status = 'pending', worker = NULL, lease_until = NULL, "
            "not_before = GREATEST(not_before, %s), last_error = %s "
            "WHERE id = ANY(%s) AND status = 'claimed' AND worker = %s",
            (retry_at, error, turn.entry_ids, turn.worker),
        )

    async def park_turn(
        self,
        turn: ClaimedTurn,
        error: str,
        reply: str | None,
        meta: dict[str, Any],
        outbox_parts: list[str],
    ) -> Message | None:
        return await self._transaction(
            lambda conn: _park_turn(conn, turn, error, reply, meta, outbox_parts)
        )

    async def list_failed_turns(self, limit: int = 100) -> list[FailedTurn]:
        rows = await self._fetchall(
            f"SELECT {FAILED_TURN_COLUMNS} FROM inbox i JOIN sessions s ON s.id = i.session_id "
            "WHERE i.status = 'failed' ORDER BY i.id DESC LIMIT %s",
            (limit,),
        )
        return [_failed_turn(row) for row in rows]

    async def retry_turn(self, entry_id: int) -> bool:
        retried = await self._rowcount(
            "UPDATE inbox SET status = 'pending', attempts = 0, not_before = 0, "
            "failed_at = NULL WHERE id = %s AND status = 'failed'",
            (entry_id,),
        )
        return retried > 0

    async def claim_outbox(self, worker: str, limit: int, lease: float) -> list[OutboxEntry]:
        if limit <= 0:
            return []
        return await self._transaction(lambda conn: _claim_outbox(conn, worker, limit, lease))

    async def outbox_sent(self, entry_id: int, platform_id: str | None) -> None:
        await self._rowcount(
            "UPDATE outbox SET status = 'sent', platform_id = %s, sent_at = %s, "
            "lease_until = NULL, last_error = NULL WHERE id = %s",
            (platform_id, utcnow(), entry_id),
        )

    async def outbox_failed(
        self, entry_id: int, error: str, retry_at: float | None, *, uncertain: bool = False
    ) -> None:
        await self._rowcount(
            "UPDATE outbox SET status = %s, "
            "next_attempt_at = COALESCE(%s::double precision, next_attempt_at), "
            "last_error = %s, lease_until = NULL, uncertain = %s WHERE id = %s",
            (
                "pending" if retry_at is not None else "failed",
                retry_at,
                error,
                uncertain,
                entry_id,
            ),
        )

    async def retry_outbox(self, entry_id: int) -> bool:
        retried = await self._rowcount(
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = %s, "
            "first_attempt_at = NULL WHERE id = %s AND status = 'failed'",
            (time.time(), entry_id),
        )
        return retried > 0

    async def outbox_due_now(self, channel: str) -> int:
        now = time.time()
        return await self._rowcount(
            "UPDATE outbox SET next_attempt_at = %s WHERE status = 'pending' AND channel = %s "
            "AND next_attempt_at > %s",
            (now, channel, now),
        )

    async def list_outbox(self, status: str | None = None, limit: int = 100) -> list[OutboxEntry]:
        where, params = ("WHERE status = %s", [status]) if status else ("", [])
        rows = await self._fetchall(
            f"SELECT {OUTBOX_COLUMNS} FROM outbox {where} ORDER BY id DESC LIMIT %s",
            (*params, limit),
        )
        return [_outbox(row) for row in rows]

    async def release_worker(self, worker: str) -> tuple[int, int]:
        return await self._transaction(lambda conn: _release_worker(conn, worker))

    async def workers_holding_work(self) -> set[str]:
        rows = await self._fetchall(
            "SELECT worker FROM inbox WHERE status = 'claimed' "
            "UNION SELECT worker FROM outbox WHERE status = 'sending'"
        )
        return {row[0] for row in rows if row[0]}

    async def set_paused(self, session_id: str, until: datetime | None) -> bool:
        return await self._transaction(lambda conn: _pause(conn, session_id, until))

    async def set_opted_out(self, session_id: str, opted_out: bool) -> bool:
        changed = await self._rowcount(
            "UPDATE sessions SET opted_out_at = %s WHERE id = %s",
            (utcnow() if opted_out else None, session_id),
        )
        return changed > 0

    async def set_transcript(self, message_id: int, transcript: str) -> None:
        await self._rowcount(
            "UPDATE messages SET text = %s, meta = meta || '{\"transcribed\": true}'::jsonb "
            "WHERE id = %s",
            (transcript, message_id),
        )

    async def recent_replies(self, session_id: str, since: datetime) -> list[tuple[datetime, str]]:
        rows = await self._fetchall(
            "SELECT created_at, COALESCE(meta->>'mode', '') FROM messages "
            "WHERE session_id = %s AND role = 'assistant' AND created_at >= %s ORDER BY id",
            (session_id, since),
        )
        return [(at, str(mode)) for at, mode in rows]

    async def defer_turn(
        self,
        turn: ClaimedTurn,
        until: float,
        notice: str | None,
        meta: dict[str, Any],
        outbox_parts: list[str],
    ) -> None:
        await self._transaction(
            lambda conn: _defer_turn(conn, turn, until, notice, meta, outbox_parts)
        )

    async def claim_non_text_reply(self, session_id: str, interval: timedelta) -> bool:
        now = time.time()
        claimed = await self._rowcount(
            "UPDATE sessions SET non_text_reply_at = %s WHERE id = %s "
            "AND (non_text_reply_at IS NULL OR non_text_reply_at <= %s)",
            (now, session_id, now - interval.total_seconds()),
        )
        return claimed > 0

    async def pipeline_counts(self) -> dict[str, int]:
        counts = {"turns_pending": 0, "turns_claimed": 0, "turns_failed": 0}
        counts.update({f"outbox_{s}": 0 for s in ("pending", "sending", "failed")})
        rows = await self._fetchall(
            "SELECT 'turns_' || status, COUNT(*) FROM inbox "
            "WHERE status IN ('pending', 'claimed', 'failed') GROUP BY status "
            "UNION ALL SELECT 'outbox_' || status, COUNT(*) FROM outbox "
            "WHERE status IN ('pending', 'sending', 'failed') GROUP BY status"
        )
        counts.update({key: int(count) for key, count in rows})
        return counts

    # the operator inbox

    async def add_operator_reply(
        self,
        session_id: str,
        text: str,
        *,
        outbox_parts: list[str],
        pause_until: datetime,
        meta: dict[str, Any] | None = None,
    ) -> tuple[Message, ChatSession] | None:
        return await self._transaction(
            lambda conn: _add_operator_reply(
                conn, session_id, text, outbox_parts, pause_until, meta
            )
        )

    async def session_deliveries(self, session_id: str) -> list[OutboxEntry]:
        rows = await self._fetchall(
            f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE session_id = %s ORDER BY id",
            (session_id,),
        )
        return [_outbox(row) for row in rows]

    async def search_sessions(
        self, query: str, channel: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[ChatSession]:
        where, params = _search_filter(query)
        if channel:
            where += " AND s.channel = %s"
            params.append(channel)
        columns = ", ".join(f"s.{c}" for c in SESSION_COLUMNS.split(", "))
        rows = await self._fetchall(
            f"SELECT {columns} FROM sessions s WHERE {where} "
            "ORDER BY COALESCE(s.last_message_at, s.updated_at) DESC, s.id LIMIT %s OFFSET %s",
            (*params, limit, offset),
        )
        return [_session(row) for row in rows]

    async def changes_since(self, after: int, limit: int = 500) -> list[Change]:
        rows = await self._fetchall(
            "SELECT id, kind, session_id, message_id, at FROM changes WHERE id > %s "
            "ORDER BY id LIMIT %s",
            (after, limit),
        )
        return _without_gaps(after, rows, utcnow())

    async def latest_change(self) -> int:
        rows = await self._fetchall("SELECT MAX(id) FROM changes")
        return int(rows[0][0] or 0)

    async def oldest_change(self) -> int:
        rows = await self._fetchall("SELECT MIN(id) FROM changes")
        return int(rows[0][0] or 0)

    async def activity(self, since: datetime, until: datetime) -> list[ActivityRow]:
        rows = await self._fetchall(
            "SELECT session_id, role, created_at, meta->>'mode', "
            "jsonb_typeof(meta->'sources') = 'array' AND jsonb_array_length(meta->'sources') > 0, "
            "CASE WHEN role = 'user' THEN text END "
            "FROM messages WHERE created_at >= %s AND created_at < %s ORDER BY created_at, id",
            (since, until),
        )
        return [
            ActivityRow(
                session_id=row[0],
                role=Role(row[1]),
                created_at=row[2],
                mode=row[3],
                used_sources=bool(row[4]),
                text=row[5],
            )
            for row in rows
        ]

    async def count_failed_sends(self, since: datetime, until: datetime) -> int:
        rows = await self._fetchall(
            "SELECT COUNT(*) FROM outbox WHERE status = 'failed' "
            "AND created_at >= %s AND created_at < %s",
            (since, until),
        )
        return int(rows[0][0])

    # settings

    async def get_setting(self, key: str) -> str | None:
        rows = await self._fetchall("SELECT value FROM settings WHERE key = %s", (key,))
        return str(rows[0][0]) if rows else None

    async def set_setting(self, key: str, value: str | None) -> None:
        if value is None:
            await self._rowcount("DELETE FROM settings WHERE key = %s", (key,))
        else:
            await self._rowcount(
                "INSERT INTO settings (key, value) VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # for tests and tools

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Conn]:
        """A connection from the pool (autocommit), for tools and tests."""
        async with self.pool.connection() as conn:
            yield conn


class StoreUnavailable(RuntimeError):
    """PostgreSQL cannot be reached; the message names the server, never the password."""


def describe(url: str) -> str:
    """``user@host:port/database`` of a connection URL, without its password."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "(an invalid store.url)"
    return (
        f"{info.get('user') or ''}@{info.get('host') or 'localhost'}:"
        f"{info.get('port') or 5432}/{info.get('dbname') or ''}"
    ).lstrip("@")


async def _check_reachable(url: str) -> None:
    """Connect once, so that a wrong URL or a server that is down is said in one line
    (the pool would only time out)."""
    try:
        conn = await AsyncConnection.connect(url, connect_timeout=CONNECT_TIMEOUT_SECONDS)
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise StoreUnavailable(
            f"cannot connect to PostgreSQL at {describe(url)} (store.url): {reason}"
        ) from None
    await conn.close()


async def _configure(conn: Conn) -> None:
    await conn.execute("SET TIME ZONE 'UTC'")


# Each operation below runs inside one transaction (see PostgresStore._transaction).


async def _upsert_session(
    conn: Conn,
    channel: str,
    address: str,
    phone_number: str | None,
    sender_name: str | None,
    prompt_context: str | None = None,
) -> tuple[ChatSession, bool]:
    """One statement: insert the session, or fill in what is new; ``xmax = 0`` is true
    only for a row this statement inserted."""
    now = utcnow()
    cursor = await conn.execute(
        f"INSERT INTO sessions ({SESSION_COLUMNS}) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, NULL, NULL, NULL, NULL) "
        "ON CONFLICT (channel, address) DO UPDATE SET "
        "phone_number = COALESCE(excluded.phone_number, sessions.phone_number), "
        "sender_name = COALESCE(excluded.sender_name, sessions.sender_name), "
        "prompt_context = COALESCE(excluded.prompt_context, sessions.prompt_context) "
        f"RETURNING {SESSION_COLUMNS}, (xmax = 0)",
        (uuid.uuid4().hex, channel, address, phone_number, sender_name, prompt_context, now, now),
    )
    row = await cursor.fetchone()
    assert row is not None
    return _session(row), bool(row[SESSION_WIDTH])


async def _insert_message(
    conn: Conn, session_id: str, role: Role, text: str, meta: dict[str, Any] | None
) -> Message:
    created_at = utcnow()
    cursor = await conn.execute(
        "WITH touched AS (UPDATE sessions SET last_message = %s, last_message_at = %s, "
        "updated_at = %s WHERE id = %s) "
        "INSERT INTO messages (session_id, role, text, created_at, meta) "
        "VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (
            text,
            created_at,
            created_at,
            session_id,
            session_id,
            role.value,
            text,
            created_at,
            Jsonb(meta or {}),
        ),
    )
    row = await cursor.fetchone()
    assert row is not None
    return Message(int(row[0]), session_id, role, text, created_at, dict(meta or {}))


async def _pause(conn: Conn, session_id: str, until: datetime | None) -> bool:
    cursor = await conn.execute(
        "UPDATE sessions SET paused_until = %s WHERE id = %s", (until, session_id)
    )
    if until is not None:
        await conn.execute(
            "UPDATE inbox SET status = 'skipped' WHERE session_id = %s AND status = 'pending'",
            (session_id,),
        )
    return cursor.rowcount > 0


async def _enqueue(
    conn: Conn, message: IncomingMessage, debounce: float, max_wait: float
) -> tuple[ChatSession, int] | None:
    session, _created = await _upsert_session(
        conn, message.channel, message.address, message.phone_number, message.sender_name
    )
    cursor = await conn.execute(
        "INSERT INTO inbox (channel, platform_id, session_id, payload, platform_ts, "
        "received_at, debounce, max_wait, status) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (channel, platform_id) DO NOTHING RETURNING id",
        (
            message.channel,
            message.message_id,
            session.id,
            _payload(message),
            message.timestamp.timestamp(),
            time.time(),
            debounce,
            max(max_wait, debounce),
            "skipped" if session.paused else "pending",
        ),
    )
    row = await cursor.fetchone()
    if row is None:
        return None
    entry_id = int(row[0])
    stored = await _insert_message(
        conn,
        session.id,
        Role.USER,
        message.text,
        {"message_id": message.message_id, "kind": message.kind.value},
    )
    await conn.execute("UPDATE inbox SET message_row_id = %s WHERE id = %s", (stored.id, entry_id))
    return session, entry_id


async def _record_operator_message(
    conn: Conn, message: IncomingMessage, pause_for: timedelta
) -> ChatSession | None:
    now = utcnow()
    session, _created = await _upsert_session(
        conn, message.channel, message.address, message.phone_number, None
    )
    cursor = await conn.execute(
        "SELECT 1 FROM outbox WHERE session_id = %s AND (platform_id = %s OR "
        "(text = %s AND status IN ('sending', 'sent') AND created_at >= %s)) LIMIT 1",
        (session.id, message.message_id, message.text, now - ECHO_WINDOW),
    )
    own = await cursor.fetchone() is not None
    cursor = await conn.execute(
        "INSERT INTO inbox (channel, platform_id, session_id, payload, platform_ts, "
        "received_at, status) VALUES (%s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (channel, platform_id) DO NOTHING RETURNING id",
        (
            message.channel,
            message.message_id,
            session.id,
            _payload(message),
            message.timestamp.timestamp(),
            now.timestamp(),
            "echo" if own else "operator",
        ),
    )
    inserted = await cursor.fetchone() is not None
    if own or not inserted:
        return None
    await _insert_message(
        conn, session.id, Role.OPERATOR, message.text, {"message_id": message.message_id}
    )
    until = now + pause_for
    if session.paused_until is None or session.paused_until < until:
        session.paused_until = until
    await _pause(conn, session.id, session.paused_until)
    return session


async def _claim_turns(
    conn: Conn, worker: str, limit: int, lease: float, window: int
) -> list[ClaimedTurn]:
    """Lock the oldest ready sessions that no worker holds, skipping any session row
    another worker has locked (it is claiming that conversation right now)."""
    now = time.time()
    turns: list[ClaimedTurn] = []
    for row in await _ready_sessions(conn, now, limit, window):
        session = _session(row)
        claimed = await _claim_session_entries(conn, session.id, worker, now, lease)
        if claimed:
            entries, attempts = claimed
            turns.append(ClaimedTurn(session, entries, worker, attempts))
    return turns


def _not_held(session_id: str) -> str:
    """No worker holds the session ``session_id`` names (a lease running until now)."""
    return (
        f"NOT EXISTS (SELECT 1 FROM inbox j WHERE j.session_id = {session_id} "
        "AND j.status = 'claimed' AND j.lease_until >= %(now)s)"
    )


_READY_SESSIONS = (
    f"SELECT {', '.join('s.' + c for c in SESSION_COLUMNS.split(', '))} "
    "FROM sessions s JOIN (SELECT i.session_id, MIN(i.received_at) AS first_at "
    f"FROM inbox i WHERE {CLAIMABLE} {{scope}}GROUP BY i.session_id "
    f"HAVING {READY_AT} <= %(now)s) AS ready ON ready.session_id = s.id "
    f"WHERE {_not_held('s.id')} "
    "ORDER BY ready.first_at LIMIT %(limit)s FOR UPDATE OF s SKIP LOCKED"
)


async def _ready_sessions(conn: Conn, now: float, limit: int, window: int) -> list[Any]:
    """The oldest ready sessions no worker holds, locked: first among the sessions of the
    oldest ``window`` pending entries of sessions no worker holds (and of claims whose
    lease ran out), then, when those hold fewer than ``limit``, in the whole backlog."""
    cursor = await conn.execute(
        f"SELECT i.session_id FROM inbox i WHERE i.status = 'pending' "
        f"AND {_not_held('i.session_id')} ORDER BY i.received_at LIMIT %(window)s",
        {"now": now, "window": window},
    )
    oldest = [row[0] for row in await cursor.fetchall()]
    cursor = await conn.execute(
        "SELECT session_id FROM inbox WHERE status = 'claimed' AND lease_until < %(now)s",
        {"now": now},
    )
    expired = [row[0] for row in await cursor.fetchall()]
    candidates = list(dict.fromkeys(oldest + expired))
    if not candidates:
        return []
    params = {"now": now, "limit": limit, "candidates": candidates}
    cursor = await conn.execute(
        _READY_SESSIONS.format(scope="AND i.session_id = ANY(%(candidates)s) "), params
    )
    found = await cursor.fetchall()
    if len(found) >= limit or len(oldest) < window:
        return found
    cursor = await conn.execute(_READY_SESSIONS.format(scope=""), params)
    return await cursor.fetchall()


async def _claim_session_entries(
    conn: Conn, session_id: str, worker: str, now: float, lease: float
) -> tuple[list[InboxEntry], int] | None:
    """Under the session's lock, read its open entries again (another worker may have
    claimed one since the first look) and claim the claimable ones, counting an attempt;
    returns them and the highest attempt count."""
    cursor = await conn.execute(
        "SELECT id, payload, message_row_id, debounce, not_before, status, lease_until "
        "FROM inbox WHERE session_id = %s AND status IN ('pending', 'claimed') "
        "ORDER BY platform_ts, id",
        (session_id,),
    )
    rows = await cursor.fetchall()
    if any(row[5] == "claimed" and (row[6] or 0) >= now for row in rows):
        return None
    if not rows:
        return None
    if rows[0][3] == 0 and rows[0][4] == 0:  # deferred entries are answered together
        rows = rows[:1]
    ids = [row[0] for row in rows]
    cursor = await conn.execute(
        "UPDATE inbox SET status = 'claimed', worker = %s, lease_until = %s, "
        "attempts = attempts + 1 WHERE id = ANY(%s) RETURNING attempts",
        (worker, now + lease, ids),
    )
    attempts = max(int(row[0]) for row in await cursor.fetchall())
    entries = [InboxEntry(row[0], session_id, _from_payload(row[1]), row[2]) for row in rows]
    return entries, attempts


async def _complete_turn(
    conn: Conn,
    turn: ClaimedTurn,
    reply: str | None,
    meta: dict[str, Any],
    outbox_parts: list[str],
) -> Message | None:
    ids = turn.entry_ids
    cursor = await conn.execute(
        "UPDATE inbox SET status = 'done', lease_until = NULL "
        "WHERE id = ANY(%s) AND status = 'claimed' AND worker = %s",
        (ids, turn.worker),
    )
    if cursor.rowcount != len(ids):
        raise LostClaim(f"turn {ids} was claimed by another worker")
    if reply is None:
        return None
    return await _queue_reply(conn, turn.session, reply, meta, outbox_parts)


async def _park_turn(
    conn: Conn,
    turn: ClaimedTurn,
    error: str,
    reply: str | None,
    meta: dict[str, Any],
    outbox_parts: list[str],
) -> Message | None:
    ids = turn.entry_ids
    cursor = await conn.execute(
        "UPDATE inbox SET status = 'failed', lease_until = NULL, last_error = %s, "
        "failed_at = %s WHERE id = ANY(%s) AND status = 'claimed' AND worker = %s",
        (error, time.time(), ids, turn.worker),
    )
    if cursor.rowcount != len(ids):
        raise LostClaim(f"turn {ids} was claimed by another worker")
    if reply is None:
        return None
    return await _queue_reply(conn, turn.session, reply, meta, outbox_parts)


async def _defer_turn(
    conn: Conn,
    turn: ClaimedTurn,
    until: float,
    notice: str | None,
    meta: dict[str, Any],
    outbox_parts: list[str],
) -> None:
    ids = turn.entry_ids
    cursor = await conn.execute(
        "UPDATE inbox SET status = 'pending', worker = NULL, lease_until = NULL, "
        "attempts = GREATEST(attempts - 1, 0) "  # waiting is no failed attempt
        "WHERE id = ANY(%s) AND status = 'claimed' AND worker = %s",
        (ids, turn.worker),
    )
    if cursor.rowcount != len(ids):
        raise LostClaim(f"turn {ids} was claimed by another worker")
    await conn.execute(
        "UPDATE inbox SET not_before = GREATEST(not_before, %s) "
        "WHERE session_id = %s AND status = 'pending'",
        (until, turn.session.id),
    )
    if notice is not None:
        await _queue_reply(conn, turn.session, notice, meta, outbox_parts)


async def _queue_reply(
    conn: Conn, session: ChatSession, reply: str, meta: dict[str, Any], parts: list[str]
) -> Message:
    stored = await _insert_message(conn, session.id, Role.ASSISTANT, reply, meta)
    await _queue_parts(conn, session, stored.id, parts)
    return stored


async def _queue_parts(conn: Conn, session: ChatSession, message_id: int, parts: list[str]) -> None:
    if not parts:
        return
    now = utcnow()
    async with conn.cursor() as many:
        await many.executemany(
            "INSERT INTO outbox (session_id, channel, address, text, status, "
            "next_attempt_at, created_at, message_id) "
            "VALUES (%s, %s, %s, %s, 'pending', %s, %s, %s)",
            [
                (
                    session.id,
                    session.channel,
                    session.address,
                    part,
                    now.timestamp(),
                    now,
                    message_id,
                )
                for part in parts
            ],
        )


async def _add_operator_reply(
    conn: Conn,
    session_id: str,
    text: str,
    outbox_parts: list[str],
    pause_until: datetime,
    meta: dict[str, Any] | None,
) -> tuple[Message, ChatSession] | None:
    cursor = await conn.execute(
        f"SELECT {SESSION_COLUMNS} FROM sessions WHERE id = %s FOR UPDATE", (session_id,)
    )
    row = await cursor.fetchone()
    if row is None:
        return None
    session = _session(row)
    stored = await _insert_message(conn, session_id, Role.OPERATOR, text, meta)
    await _queue_parts(conn, session, stored.id, outbox_parts)
    if session.paused_until is None or session.paused_until < pause_until:
        await _pause(conn, session_id, pause_until)
    cursor = await conn.execute(
        f"SELECT {SESSION_COLUMNS} FROM sessions WHERE id = %s", (session_id,)
    )
    updated = await cursor.fetchone()
    assert updated is not None
    return stored, _session(updated)


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _search_filter(query: str) -> tuple[str, list[Any]]:
    """The WHERE clause (on sessions ``s``) of a search, and its parameters."""
    pattern = _like_pattern(query.strip())
    clauses = [
        "nicobot_fold(s.sender_name) LIKE nicobot_fold(%s)",
        "s.phone_number LIKE %s",
        "nicobot_fold(s.address) LIKE nicobot_fold(%s)",
        "EXISTS (SELECT 1 FROM messages m WHERE m.session_id = s.id "
        "AND nicobot_fold(m.text) LIKE nicobot_fold(%s))",
    ]
    params: list[Any] = [pattern] * 4
    digits = query.translate(PHONE_PUNCTUATION)
    if digits.isdigit() and digits != query.strip():
        clauses.append("s.phone_number LIKE %s OR s.address LIKE %s")
        params += [f"%{digits}%", f"%{digits}%"]
    return "(" + " OR ".join(clauses) + ")", params


def _without_gaps(after: int, rows: list[tuple[Any, ...]], now: datetime) -> list[Change]:
    """The changes up to the first missing id that may still commit: ids come from a
    sequence, so a transaction that took an id but has not committed yet leaves a gap
    that a reader must not skip (unless it is old: a rollback)."""
    found: list[Change] = []
    expected = after + 1
    for change_id, kind, session_id, message_id, at in rows:
        if change_id != expected and (now - at).total_seconds() < CHANGE_GAP_SECONDS:
            break
        found.append(Change(int(change_id), kind, session_id, message_id))
        expected = int(change_id) + 1
    return found


async def _claim_outbox(conn: Conn, worker: str, limit: int, lease: float) -> list[OutboxEntry]:
    now = time.time()
    cursor = await conn.execute(
        "SELECT o.id FROM outbox o "
        "WHERE ((o.status = 'pending' AND o.next_attempt_at <= %s) "
        "OR (o.status = 'sending' AND o.lease_until < %s)) "
        "AND o.id = (SELECT MIN(p.id) FROM outbox p WHERE p.session_id = o.session_id "
        "AND p.status IN ('pending', 'sending')) "
        "ORDER BY o.next_attempt_at, o.id LIMIT %s FOR UPDATE SKIP LOCKED",
        (now, now, limit),
    )
    ids = [row[0] for row in await cursor.fetchall()]
    if not ids:
        return []
    cursor = await conn.execute(
        "UPDATE outbox SET status = 'sending', worker = %s, lease_until = %s, "
        "attempts = attempts + 1, recovered = (status = 'sending'), "
        "uncertain = (uncertain OR status = 'sending'), "
        "first_attempt_at = COALESCE(first_attempt_at, %s) "
        f"WHERE id = ANY(%s) RETURNING {OUTBOX_COLUMNS}",
        (worker, now + lease, now, ids),
    )
    return sorted((_outbox(row) for row in await cursor.fetchall()), key=lambda e: e.id)


async def _release_worker(conn: Conn, worker: str) -> tuple[int, int]:
    turns = await conn.execute(
        "UPDATE inbox SET status = 'pending', worker = NULL, lease_until = NULL "
        "WHERE status = 'claimed' AND worker = %s",
        (worker,),
    )
    sends = await conn.execute(
        "UPDATE outbox SET lease_until = 0 WHERE status = 'sending' AND worker = %s",
        (worker,),
    )
    return turns.rowcount, sends.rowcount
