"""The default store: one SQLite file in WAL mode, through aiosqlite.

Every store operation is one function run on aiosqlite's connection thread, so a
transaction takes one hop from the event loop instead of one per statement: it never
spans event-loop iterations, a busy loop cannot hold the database's write lock open,
and a caller cancelled meanwhile cannot leave a transaction half done.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import sqlite3
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar, cast

import aiosqlite

from ..dashboard import ActivityRow
from ..fileperms import private_database
from ..models import (
    Change,
    ChatSession,
    ClaimedTurn,
    FailedTurn,
    InboxEntry,
    IncomingMessage,
    Message,
    MessageKind,
    OutboxEntry,
    Role,
    utcnow,
)
from .base import LostClaim, Store
from .group_commit import GroupCommit

if TYPE_CHECKING:
    from typing import Self

    from ..config import Settings

__all__ = ["DB_FILE", "LostClaim", "SQLiteStore"]

log = logging.getLogger("nicobot.store")

DB_FILE = "nicobot.sqlite3"
#: Commits on the event loop's thread between two checkpoints of the WAL on the store's.
CHECKPOINT_EVERY = 100

P = ParamSpec("P")
T = TypeVar("T")
#: What one enqueue writes: the message, its debounce and its max_wait.
EnqueueRequest = tuple[IncomingMessage, float, float]
Connection = sqlite3.Connection

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
    """
    ALTER TABLE sessions ADD COLUMN paused_until TEXT;
    ALTER TABLE sessions ADD COLUMN non_text_reply_at REAL;
    CREATE TABLE inbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        channel TEXT NOT NULL,
        platform_id TEXT NOT NULL,
        session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        message_row_id INTEGER,
        payload TEXT NOT NULL,
        platform_ts REAL NOT NULL,
        received_at REAL NOT NULL,
        debounce REAL NOT NULL DEFAULT 0,
        max_wait REAL NOT NULL DEFAULT 0,
        status TEXT NOT NULL,
        worker TEXT,
        lease_until REAL,
        UNIQUE (channel, platform_id)
    );
    CREATE INDEX inbox_open ON inbox (session_id, status) WHERE status IN ('pending', 'claimed');
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        channel TEXT NOT NULL,
        address TEXT NOT NULL,
        text TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        worker TEXT,
        lease_until REAL,
        last_error TEXT,
        platform_id TEXT,
        created_at TEXT NOT NULL,
        sent_at TEXT,
        recovered INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX outbox_open ON outbox (session_id, id) WHERE status IN ('pending', 'sending');
    CREATE INDEX outbox_by_status ON outbox (status, id);
    CREATE INDEX outbox_by_platform_id ON outbox (platform_id);
    """,
    """
    ALTER TABLE sessions ADD COLUMN opted_out_at TEXT;
    ALTER TABLE inbox ADD COLUMN not_before REAL NOT NULL DEFAULT 0;
    """,
    """
    ALTER TABLE inbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE inbox ADD COLUMN last_error TEXT;
    ALTER TABLE inbox ADD COLUMN failed_at REAL;
    CREATE INDEX inbox_failed ON inbox (id) WHERE status = 'failed';
    ALTER TABLE outbox ADD COLUMN first_attempt_at REAL;
    ALTER TABLE outbox ADD COLUMN uncertain INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX outbox_pending_by_channel ON outbox (channel) WHERE status = 'pending';
    """,
    """
    ALTER TABLE outbox ADD COLUMN message_id INTEGER;
    UPDATE outbox SET message_id = (SELECT MAX(m.id) FROM messages m
        WHERE m.session_id = outbox.session_id AND m.role IN ('assistant', 'operator')
        AND m.created_at <= outbox.created_at);
    CREATE INDEX outbox_by_session ON outbox (session_id, id);
    CREATE INDEX messages_by_time ON messages (created_at);
    CREATE TABLE changes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        session_id TEXT NOT NULL,
        message_id INTEGER
    );
    CREATE TRIGGER changes_on_message AFTER INSERT ON messages BEGIN
        INSERT INTO changes (kind, session_id, message_id)
            VALUES ('message', NEW.session_id, NEW.id);
        DELETE FROM changes WHERE id <= (SELECT MAX(id) FROM changes) - 10000;
    END;
    CREATE TRIGGER changes_on_delivery AFTER UPDATE OF status ON outbox
        WHEN NEW.status IS NOT OLD.status BEGIN
        INSERT INTO changes (kind, session_id, message_id)
            VALUES ('delivery', NEW.session_id, NEW.message_id);
    END;
    CREATE TRIGGER changes_on_pause AFTER UPDATE OF paused_until ON sessions
        WHEN NEW.paused_until IS NOT OLD.paused_until BEGIN
        INSERT INTO changes (kind, session_id) VALUES ('session', NEW.id);
    END;
    CREATE TRIGGER changes_on_delete AFTER DELETE ON sessions BEGIN
        INSERT INTO changes (kind, session_id) VALUES ('deleted', OLD.id);
    END;
    """,
    """
    CREATE INDEX inbox_pending_by_arrival ON inbox (received_at) WHERE status = 'pending';
    CREATE INDEX inbox_claimed_by_lease ON inbox (lease_until) WHERE status = 'claimed';
    """,
)

SESSION_COLUMNS = (
    "id, channel, address, phone_number, sender_name, prompt_context, "
    "created_at, updated_at, last_message, last_message_at, paused_until, opted_out_at"
)
OUTBOX_COLUMNS = (
    "id, session_id, channel, address, text, status, attempts, created_at, last_error, "
    "platform_id, sent_at, recovered, uncertain, first_attempt_at, message_id"
)
FAILED_TURN_COLUMNS = (
    "i.id, i.session_id, i.channel, s.address, i.payload, i.attempts, i.last_error, "
    "i.received_at, i.failed_at"
)
ECHO_WINDOW = timedelta(minutes=10)


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
        paused_until=_dt(row[10]),
        opted_out_at=_dt(row[11]),
    )


def _outbox(row: sqlite3.Row | tuple[Any, ...]) -> OutboxEntry:
    return OutboxEntry(
        id=row[0],
        session_id=row[1],
        channel=row[2],
        address=row[3],
        text=row[4],
        status=row[5],
        attempts=row[6],
        created_at=datetime.fromisoformat(row[7]),
        last_error=row[8],
        platform_id=row[9],
        sent_at=_dt(row[10]),
        recovered=bool(row[11]),
        uncertain=bool(row[12]),
        first_attempt_at=row[13],
        message_id=row[14],
    )


def _failed_turn(row: sqlite3.Row | tuple[Any, ...]) -> FailedTurn:
    message = _message_from_payload(row[4])
    return FailedTurn(
        id=row[0],
        session_id=row[1],
        channel=row[2],
        address=row[3],
        text=message.text,
        attempts=row[5],
        last_error=row[6],
        received_at=datetime.fromtimestamp(row[7], UTC),
        failed_at=datetime.fromtimestamp(row[8], UTC) if row[8] is not None else None,
    )


def _message_payload(message: IncomingMessage) -> str:
    return json.dumps(
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


def _message_from_payload(payload: str) -> IncomingMessage:
    data = json.loads(payload)
    data["kind"] = MessageKind(data["kind"])
    data["timestamp"] = datetime.fromisoformat(data["timestamp"])
    return IncomingMessage(**data)


def _placeholders(values: list[Any] | tuple[Any, ...]) -> str:
    return ",".join("?" * len(values))


class SQLiteStore(Store):
    """Everything in one SQLite file; each write is committed at once."""

    name = "sqlite"
    schema_version = len(MIGRATIONS)

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._db: aiosqlite.Connection | None = None
        #: Small reads and the message path's writes run on the caller's thread (see
        #: _read and _write); everything else on aiosqlite's.
        self._inline: sqlite3.Connection | None = None
        self._queued = 0  # calls handed to aiosqlite's thread and not yet done
        self._inline_commits = 0
        self._checkpoint: asyncio.Task[None] | None = None
        #: Webhooks arriving together share one transaction (see group_commit).
        self._enqueues: GroupCommit[EnqueueRequest, tuple[ChatSession, int] | None] = GroupCommit(
            self._enqueue_batch
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(settings.data_path / DB_FILE)

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("the store is not open")
        return self._db

    async def open(self) -> None:
        private_database(self.path)  # conversations: 0600 (SQLite gives its WAL the same)
        self._db = await aiosqlite.connect(self.path, isolation_level=None)
        await self._run(_configure)
        await self._run(_migrate, self.path, self.schema_version)
        self._inline = _open_inline(self.path)

    async def close(self) -> None:
        if self._checkpoint is not None:
            await self._checkpoint
            self._checkpoint = None
        if self._inline is not None:
            self._inline.close()
            self._inline = None
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def _run(
        self, operation: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``operation(connection, ...)`` on the connection's thread, run to its end even
        if the caller is cancelled meanwhile.

        aiosqlite queues one statement per call; its ``_execute`` queues any function on
        the same thread, after whatever is already queued. It is private: pyproject.toml
        pins aiosqlite below the next minor version, and tests/test_store.py covers it."""
        db = self.db
        connection: Connection = db._conn
        call = functools.partial(operation, connection, *args, **kwargs)
        self._queued += 1
        try:
            return cast(T, await db._execute(call))  # type: ignore[no-untyped-call]
        finally:
            self._queued -= 1

    async def _read(
        self, operation: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``operation(connection, ...)``, a small read along an index, at once on the
        event loop's thread: handing a query to the connection's thread costs about ten
        times what the query does. A WAL reader waits for no writer; in the rare moment
        it cannot read at all (another connection recovering the WAL after a crash, or
        holding the file exclusively), the query goes to the connection's thread, which
        waits its turn instead of stalling the loop."""
        if self._inline is not None:
            try:
                return operation(self._inline, *args, **kwargs)
            except sqlite3.OperationalError as exc:
                if not _busy(exc):
                    raise
        return await self._run(operation, *args, **kwargs)

    async def _write(
        self, operation: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``operation(connection, ...)`` in one transaction of its own, on the event
        loop's thread when the database is free at once: a short write of the message
        path takes less than handing it over would. When another connection holds the
        write lock (another worker, or this store's own thread), or calls are already
        queued on that thread (they keep their order), it runs there and waits its turn.
        The inline connection never checkpoints: every CHECKPOINT_EVERY commits, a
        passive checkpoint runs on the thread."""
        inline = self._inline
        if inline is not None and self._queued == 0:
            try:
                inline.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if not _busy(exc):
                    raise
            else:
                with _committed(inline):
                    result = operation(inline, *args, **kwargs)
                self._committed_inline()
                return result
        return await self._run(_in_transaction(operation), *args, **kwargs)

    def _committed_inline(self) -> None:
        self._inline_commits += 1
        if self._inline_commits % CHECKPOINT_EVERY == 0 and (
            self._checkpoint is None or self._checkpoint.done()
        ):
            self._checkpoint = asyncio.create_task(self._run(_checkpoint))

    # sessions

    async def get_session(self, session_id: str) -> ChatSession | None:
        return await self._read(_get_session, session_id)

    async def put_session(self, session: ChatSession) -> None:
        session.updated_at = utcnow()
        await self._run(_put_session, session)

    async def delete_session(self, session_id: str) -> bool:
        return await self._run(_rowcount, "DELETE FROM sessions WHERE id = ?", (session_id,)) > 0

    async def list_sessions(
        self, channel: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[ChatSession]:
        where, params = ("WHERE channel = ?", [channel]) if channel else ("", [])
        query = (
            f"SELECT {SESSION_COLUMNS} FROM sessions {where} "
            "ORDER BY COALESCE(last_message_at, updated_at) DESC, id LIMIT ? OFFSET ?"
        )
        rows = await self._run(_fetchall, query, (*params, limit, offset))
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
        return await self._run(
            _in_transaction(_upsert_session),
            channel,
            address,
            phone_number,
            sender_name,
            prompt_context,
        )

    # messages

    async def add_message(
        self, session_id: str, role: Role, text: str, meta: dict[str, Any] | None = None
    ) -> Message:
        return await self._run(_in_transaction(_insert_message), session_id, role, text, meta)

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
        # a whole conversation may be long: read it on the connection's thread
        rows = await (self._run if limit is None else self._read)(_fetchall, query, params)
        return [
            Message(r[0], r[1], Role(r[2]), r[3], datetime.fromisoformat(r[4]), json.loads(r[5]))
            for r in rows
        ]

    # webhook dedup

    async def claim_message_id(self, channel: str, message_id: str) -> bool:
        claimed = await self._run(
            _rowcount,
            "INSERT INTO webhook_claims (channel, message_id, claimed_at) VALUES (?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (channel, message_id, utcnow().timestamp()),
        )
        return claimed > 0

    async def purge_claims(self, older_than: timedelta) -> int:
        cutoff = (utcnow() - older_than).timestamp()
        return await self._run(
            _rowcount, "DELETE FROM webhook_claims WHERE claimed_at < ?", (cutoff,)
        )

    # the durable pipeline

    async def enqueue(
        self, message: IncomingMessage, *, debounce: float, max_wait: float
    ) -> tuple[ChatSession, int] | None:
        return await self._enqueues.submit((message, debounce, max_wait))

    async def _enqueue_batch(
        self, requests: list[EnqueueRequest]
    ) -> list[tuple[ChatSession, int] | Exception | None]:
        return await self._write(_enqueue_each, requests)

    async def record_operator_message(
        self, message: IncomingMessage, *, pause_for: timedelta
    ) -> ChatSession | None:
        return await self._run(_in_transaction(_record_operator_message), message, pause_for)

    async def claim_turns(self, worker: str, limit: int, lease: float) -> list[ClaimedTurn]:
        if limit <= 0 or not await self._read(_turns_open, time.time()):
            return []
        return await self._write(_claim_turns, worker, limit, lease, self.claim_window_for(limit))

    async def next_turn_at(self) -> float | None:
        if not await self._read(_turns_open, None):
            return None
        rows = await self._read(
            _fetchall,
            "SELECT MIN(ready) FROM (SELECT MAX(MIN(MAX(received_at) + MAX(debounce), "
            "MIN(received_at) + MAX(max_wait)), MAX(not_before)) AS ready FROM inbox "
            "WHERE status IN ('pending', 'claimed') AND status = 'pending' GROUP BY session_id)",
        )
        return float(rows[0][0]) if rows and rows[0][0] is not None else None

    async def complete_turn(
        self,
        turn: ClaimedTurn,
        reply: str | None,
        meta: dict[str, Any],
        outbox_parts: list[str],
    ) -> Message | None:
        return await self._write(_complete_turn, turn, reply, meta, outbox_parts)

    async def release_turn(self, turn: ClaimedTurn) -> None:
        ids = turn.entry_ids
        await self._run(
            _rowcount,
            f"UPDATE inbox SET status = 'pending', worker = NULL, lease_until = NULL, "
            f"attempts = MAX(attempts - 1, 0) "
            f"WHERE id IN ({_placeholders(ids)}) AND status = 'claimed' AND worker = ?",
            (*ids, turn.worker),
        )

    async def retry_turn_later(self, turn: ClaimedTurn, error: str, retry_at: float) -> None:
        ids = turn.entry_ids
        await self._run(
            _rowcount,
            f"UPDATE inbox SET status = 'pending', worker = NULL, lease_until = NULL, "
            f"not_before = MAX(not_before, ?), last_error = ? "
            f"WHERE id IN ({_placeholders(ids)}) AND status = 'claimed' AND worker = ?",
            (retry_at, error, *ids, turn.worker),
        )

    async def park_turn(
        self,
        turn: ClaimedTurn,
        error: str,
        reply: str | None,
        meta: dict[str, Any],
        outbox_parts: list[str],
    ) -> Message | None:
        return await self._run(_in_transaction(_park_turn), turn, error, reply, meta, outbox_parts)

    async def list_failed_turns(self, limit: int = 100) -> list[FailedTurn]:
        rows = await self._run(
            _fetchall,
            f"SELECT {FAILED_TURN_COLUMNS} FROM inbox i JOIN sessions s ON s.id = i.session_id "
            "WHERE i.status = 'failed' ORDER BY i.id DESC LIMIT ?",
            (limit,),
        )
        return [_failed_turn(row) for row in rows]

    async def retry_turn(self, entry_id: int) -> bool:
        retried = await self._run(
            _rowcount,
            "UPDATE inbox SET status = 'pending', attempts = 0, not_before = 0, "
            "failed_at = NULL WHERE id = ? AND status = 'failed'",
            (entry_id,),
        )
        return retried > 0

    async def claim_outbox(self, worker: str, limit: int, lease: float) -> list[OutboxEntry]:
        if limit <= 0 or not await self._read(_outbox_open):
            return []
        return await self._write(_claim_outbox, worker, limit, lease)

    async def outbox_sent(self, entry_id: int, platform_id: str | None) -> None:
        await self._write(
            _rowcount,
            "UPDATE outbox SET status = 'sent', platform_id = ?, sent_at = ?, "
            "lease_until = NULL, last_error = NULL WHERE id = ?",
            (platform_id, _ts(utcnow()), entry_id),
        )

    async def outbox_failed(
        self, entry_id: int, error: str, retry_at: float | None, *, uncertain: bool = False
    ) -> None:
        await self._run(
            _rowcount,
            "UPDATE outbox SET status = ?, next_attempt_at = COALESCE(?, next_attempt_at), "
            "last_error = ?, lease_until = NULL, uncertain = ? WHERE id = ?",
            (
                "pending" if retry_at is not None else "failed",
                retry_at,
                error,
                int(uncertain),
                entry_id,
            ),
        )

    async def retry_outbox(self, entry_id: int) -> bool:
        retried = await self._run(
            _rowcount,
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?, "
            "first_attempt_at = NULL WHERE id = ? AND status = 'failed'",
            (time.time(), entry_id),
        )
        return retried > 0

    async def outbox_due_now(self, channel: str) -> int:
        return await self._run(
            _rowcount,
            "UPDATE outbox SET next_attempt_at = ? WHERE status = 'pending' AND channel = ? "
            "AND next_attempt_at > ?",
            (time.time(), channel, time.time()),
        )

    async def list_outbox(self, status: str | None = None, limit: int = 100) -> list[OutboxEntry]:
        where, params = ("WHERE status = ?", [status]) if status else ("", [])
        rows = await self._run(
            _fetchall,
            f"SELECT {OUTBOX_COLUMNS} FROM outbox {where} ORDER BY id DESC LIMIT ?",
            (*params, limit),
        )
        return [_outbox(row) for row in rows]

    async def release_worker(self, worker: str) -> tuple[int, int]:
        return await self._run(_in_transaction(_release_worker), worker)

    async def workers_holding_work(self) -> set[str]:
        rows = await self._run(
            _fetchall,
            "SELECT worker FROM inbox WHERE status = 'claimed' "
            "UNION SELECT worker FROM outbox WHERE status = 'sending'",
        )
        return {row[0] for row in rows if row[0]}

    async def set_paused(self, session_id: str, until: datetime | None) -> bool:
        return await self._run(_in_transaction(_pause), session_id, until)

    async def set_opted_out(self, session_id: str, opted_out: bool) -> bool:
        changed = await self._run(
            _rowcount,
            "UPDATE sessions SET opted_out_at = ? WHERE id = ?",
            (_ts(utcnow()) if opted_out else None, session_id),
        )
        return changed > 0

    async def set_transcript(self, message_id: int, transcript: str) -> None:
        await self._run(
            _rowcount,
            "UPDATE messages SET text = ?, meta = json_set(meta, '$.transcribed', json('true')) "
            "WHERE id = ?",
            (transcript, message_id),
        )

    async def recent_replies(self, session_id: str, since: datetime) -> list[tuple[datetime, str]]:
        rows = await self._run(
            _fetchall,
            "SELECT created_at, COALESCE(json_extract(meta, '$.mode'), '') FROM messages "
            "WHERE session_id = ? AND role = 'assistant' AND created_at >= ? ORDER BY id",
            (session_id, _ts(since)),
        )
        return [(datetime.fromisoformat(at), str(mode)) for at, mode in rows]

    async def defer_turn(
        self,
        turn: ClaimedTurn,
        until: float,
        notice: str | None,
        meta: dict[str, Any],
        outbox_parts: list[str],
    ) -> None:
        await self._run(_in_transaction(_defer_turn), turn, until, notice, meta, outbox_parts)

    async def claim_non_text_reply(self, session_id: str, interval: timedelta) -> bool:
        now = time.time()
        claimed = await self._run(
            _rowcount,
            "UPDATE sessions SET non_text_reply_at = ? WHERE id = ? "
            "AND (non_text_reply_at IS NULL OR non_text_reply_at <= ?)",
            (now, session_id, now - interval.total_seconds()),
        )
        return claimed > 0

    async def pipeline_counts(self) -> dict[str, int]:
        counts = {"turns_pending": 0, "turns_claimed": 0, "turns_failed": 0}
        counts.update({f"outbox_{s}": 0 for s in ("pending", "sending", "failed")})
        rows = await self._run(
            _fetchall,
            "SELECT 'turns_' || status, COUNT(*) FROM inbox "
            "WHERE status IN ('pending', 'claimed') GROUP BY status "
            "UNION ALL SELECT 'turns_failed', COUNT(*) FROM inbox WHERE status = 'failed' "
            "UNION ALL SELECT 'outbox_' || status, COUNT(*) FROM outbox "
            "WHERE status IN ('pending', 'sending', 'failed') GROUP BY status",
        )
        counts.update({key: count for key, count in rows})
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
        return await self._run(
            _in_transaction(_add_operator_reply), session_id, text, outbox_parts, pause_until, meta
        )

    async def session_deliveries(self, session_id: str) -> list[OutboxEntry]:
        rows = await self._run(
            _fetchall,
            f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE session_id = ? ORDER BY id",
            (session_id,),
        )
        return [_outbox(row) for row in rows]

    async def search_sessions(
        self, query: str, channel: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[ChatSession]:
        where, params = _search_filter(query)
        if channel:
            where += " AND s.channel = ?"
            params.append(channel)
        rows = await self._run(
            _fetchall,
            f"SELECT {_prefixed(SESSION_COLUMNS, 's')} FROM sessions s WHERE {where} "
            "ORDER BY COALESCE(s.last_message_at, s.updated_at) DESC, s.id LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return [_session(row) for row in rows]

    async def changes_since(self, after: int, limit: int = 500) -> list[Change]:
        rows = await self._run(
            _fetchall,
            "SELECT id, kind, session_id, message_id FROM changes WHERE id > ? ORDER BY id LIMIT ?",
            (after, limit),
        )
        return [Change(*row) for row in rows]

    async def latest_change(self) -> int:
        rows = await self._run(_fetchall, "SELECT MAX(id) FROM changes")
        return int(rows[0][0] or 0)

    async def oldest_change(self) -> int:
        rows = await self._run(_fetchall, "SELECT MIN(id) FROM changes")
        return int(rows[0][0] or 0)

    async def activity(self, since: datetime, until: datetime) -> list[ActivityRow]:
        rows = await self._run(
            _fetchall,
            "SELECT session_id, role, created_at, json_extract(meta, '$.mode'), "
            "json_array_length(meta, '$.sources'), CASE WHEN role = 'user' THEN text END "
            "FROM messages WHERE created_at >= ? AND created_at < ? ORDER BY created_at, id",
            (_ts(since), _ts(until)),
        )
        return [
            ActivityRow(
                session_id=row[0],
                role=Role(row[1]),
                created_at=datetime.fromisoformat(row[2]),
                mode=row[3],
                used_sources=bool(row[4]),
                text=row[5],
            )
            for row in rows
        ]

    async def count_failed_sends(self, since: datetime, until: datetime) -> int:
        rows = await self._run(
            _fetchall,
            "SELECT COUNT(*) FROM outbox WHERE status = 'failed' "
            "AND created_at >= ? AND created_at < ?",
            (_ts(since), _ts(until)),
        )
        return int(rows[0][0])

    # settings

    async def get_setting(self, key: str) -> str | None:
        rows = await self._run(_fetchall, "SELECT value FROM settings WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    async def set_setting(self, key: str, value: str | None) -> None:
        if value is None:
            await self._run(_rowcount, "DELETE FROM settings WHERE key = ?", (key,))
        else:
            await self._run(
                _rowcount,
                "INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )


# The operations below run on the connection's thread (see SQLiteStore._run).


@contextmanager
def _transaction(db: Connection) -> Iterator[Connection]:
    """BEGIN IMMEDIATE, so that other processes wait on the busy timeout instead of
    failing mid-way; COMMIT, or ROLLBACK on any error."""
    db.execute("BEGIN IMMEDIATE")
    with _committed(db):
        yield db


@contextmanager
def _committed(db: Connection) -> Iterator[Connection]:
    """The transaction ``db`` began: COMMIT at the end, or ROLLBACK on any error."""
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _in_transaction(
    operation: Callable[Concatenate[Connection, P], T],
) -> Callable[Concatenate[Connection, P], T]:
    def wrapper(db: Connection, /, *args: P.args, **kwargs: P.kwargs) -> T:
        with _transaction(db):
            return operation(db, *args, **kwargs)

    return wrapper


def _open_inline(path: Path) -> Connection:
    """The connection used on the event loop's thread: configured like the store's own,
    but it never waits for a lock (the caller hands the call over instead), never
    checkpoints (that is file I/O: the store's thread does it), and holds no transaction
    between calls."""
    inline = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    _configure(inline)
    inline.execute("PRAGMA busy_timeout = 0")
    inline.execute("PRAGMA wal_autocheckpoint = 0")
    return inline


def _busy(exc: sqlite3.OperationalError) -> bool:
    """Whether SQLite could not take a lock at once (any BUSY or LOCKED variant)."""
    return exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _checkpoint(db: Connection) -> None:
    """Copy the WAL into the database as far as no reader needs it (never waits)."""
    try:
        db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    except sqlite3.Error as exc:  # the next one will try again
        log.warning("WAL checkpoint failed: %s", exc)


def _configure(db: Connection) -> None:
    for pragma in (
        "busy_timeout = 10000",
        "journal_mode = WAL",
        "synchronous = NORMAL",
        "foreign_keys = ON",
    ):
        db.execute(f"PRAGMA {pragma}")
    db.create_function("nicobot_fold", 1, _fold, deterministic=True)


def _migrate(db: Connection, path: Path, schema_version: int) -> None:
    with _transaction(db):
        current = int(db.execute("PRAGMA user_version").fetchone()[0])
        if current > schema_version:
            raise RuntimeError(
                f"{path} has schema version {current}, newer than this nicobot "
                f"({schema_version}); upgrade nicobot"
            )
        for version in range(current, schema_version):
            for statement in _statements(MIGRATIONS[version]):
                db.execute(statement)
        if current != schema_version:
            db.execute(f"PRAGMA user_version = {schema_version}")


def _statements(script: str) -> Iterator[str]:
    """The statements of ``script``; a trigger's body keeps its own semicolons."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                yield pending.strip()
            pending = ""


def _fold(value: str | None) -> str | None:
    """Text for accent- and case-insensitive matching ("Envío" and "envio" match)."""
    if value is None:
        return None
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _fetchall(db: Connection, sql: str, params: Any = ()) -> list[Any]:
    return db.execute(sql, params).fetchall()


def _rowcount(db: Connection, sql: str, params: Any = ()) -> int:
    return db.execute(sql, params).rowcount


def _get_session(db: Connection, session_id: str) -> ChatSession | None:
    rows = db.execute(
        f"SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?", (session_id,)
    ).fetchall()
    return _session(rows[0]) if rows else None


def _put_session(db: Connection, session: ChatSession) -> None:
    db.execute(
        f"INSERT INTO sessions ({SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
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
            _ts(session.created_at),
            _ts(session.updated_at),
            session.last_message,
            _ts(session.last_message_at) if session.last_message_at else None,
            _ts(session.paused_until) if session.paused_until else None,
            _ts(session.opted_out_at) if session.opted_out_at else None,
        ),
    )


def _upsert_session(
    db: Connection,
    channel: str,
    address: str,
    phone_number: str | None,
    sender_name: str | None,
    prompt_context: str | None = None,
) -> tuple[ChatSession, bool]:
    now = _ts(utcnow())
    cursor = db.execute(
        f"INSERT INTO sessions ({SESSION_COLUMNS}) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, NULL) "
        "ON CONFLICT (channel, address) DO NOTHING",
        (uuid.uuid4().hex, channel, address, phone_number, sender_name, prompt_context, now, now),
    )
    created = cursor.rowcount > 0
    if not created and (phone_number or sender_name or prompt_context):
        db.execute(
            "UPDATE sessions SET phone_number = COALESCE(?, phone_number), "
            "sender_name = COALESCE(?, sender_name), "
            "prompt_context = COALESCE(?, prompt_context) WHERE channel = ? AND address = ?",
            (phone_number, sender_name, prompt_context, channel, address),
        )
    row = db.execute(
        f"SELECT {SESSION_COLUMNS} FROM sessions WHERE channel = ? AND address = ?",
        (channel, address),
    ).fetchone()
    assert row is not None
    return _session(row), created


def _insert_message(
    db: Connection, session_id: str, role: Role, text: str, meta: dict[str, Any] | None
) -> Message:
    created_at = utcnow()
    stamp = _ts(created_at)
    cursor = db.execute(
        "INSERT INTO messages (session_id, role, text, created_at, meta) VALUES (?, ?, ?, ?, ?)",
        (session_id, role.value, text, stamp, json.dumps(meta or {})),
    )
    message_id = cursor.lastrowid
    db.execute(
        "UPDATE sessions SET last_message = ?, last_message_at = ?, updated_at = ? WHERE id = ?",
        (text, stamp, stamp, session_id),
    )
    assert message_id is not None
    return Message(message_id, session_id, role, text, created_at, dict(meta or {}))


def _pause(db: Connection, session_id: str, until: datetime | None) -> bool:
    cursor = db.execute(
        "UPDATE sessions SET paused_until = ? WHERE id = ?",
        (_ts(until) if until else None, session_id),
    )
    if until is not None:
        db.execute(
            "UPDATE inbox SET status = 'skipped' WHERE session_id = ? AND status = 'pending'",
            (session_id,),
        )
    return bool(cursor.rowcount > 0)


def _enqueue_each(
    db: Connection, requests: list[EnqueueRequest]
) -> list[tuple[ChatSession, int] | Exception | None]:
    """Each request's :func:`_enqueue`, inside the caller's transaction; a request that
    fails is rolled back alone (a savepoint each) and gets its error, the others commit."""
    results: list[tuple[ChatSession, int] | Exception | None] = []
    for message, debounce, max_wait in requests:
        db.execute("SAVEPOINT enqueue")
        try:
            results.append(_enqueue(db, message, debounce, max_wait))
        except Exception as exc:  # this message alone
            db.execute("ROLLBACK TO enqueue")
            results.append(exc)
        finally:
            db.execute("RELEASE enqueue")
    return results


def _enqueue(
    db: Connection, message: IncomingMessage, debounce: float, max_wait: float
) -> tuple[ChatSession, int] | None:
    session, _created = _upsert_session(
        db, message.channel, message.address, message.phone_number, message.sender_name
    )
    cursor = db.execute(
        "INSERT INTO inbox (channel, platform_id, session_id, payload, platform_ts, "
        "received_at, debounce, max_wait, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (channel, platform_id) DO NOTHING",
        (
            message.channel,
            message.message_id,
            session.id,
            _message_payload(message),
            message.timestamp.timestamp(),
            time.time(),
            debounce,
            max(max_wait, debounce),
            "skipped" if session.paused else "pending",
        ),
    )
    if cursor.rowcount == 0:
        return None
    entry_id = cursor.lastrowid
    assert entry_id is not None
    stored = _insert_message(
        db,
        session.id,
        Role.USER,
        message.text,
        {"message_id": message.message_id, "kind": message.kind.value},
    )
    db.execute("UPDATE inbox SET message_row_id = ? WHERE id = ?", (stored.id, entry_id))
    return session, entry_id


def _record_operator_message(
    db: Connection, message: IncomingMessage, pause_for: timedelta
) -> ChatSession | None:
    now = utcnow()
    session, _created = _upsert_session(
        db, message.channel, message.address, message.phone_number, None
    )
    own = (
        db.execute(
            "SELECT 1 FROM outbox WHERE session_id = ? AND (platform_id = ? OR "
            "(text = ? AND status IN ('sending', 'sent') AND created_at >= ?)) LIMIT 1",
            (session.id, message.message_id, message.text, _ts(now - ECHO_WINDOW)),
        ).fetchone()
        is not None
    )
    cursor = db.execute(
        "INSERT INTO inbox (channel, platform_id, session_id, payload, platform_ts, "
        "received_at, status) VALUES (?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (channel, platform_id) DO NOTHING",
        (
            message.channel,
            message.message_id,
            session.id,
            _message_payload(message),
            message.timestamp.timestamp(),
            now.timestamp(),
            "echo" if own else "operator",
        ),
    )
    if own or cursor.rowcount == 0:
        return None
    _insert_message(db, session.id, Role.OPERATOR, message.text, {"message_id": message.message_id})
    until = now + pause_for
    if session.paused_until is None or session.paused_until < until:
        session.paused_until = until
    _pause(db, session.id, session.paused_until)
    return session


def _claim_turns(
    db: Connection, worker: str, limit: int, lease: float, window: int
) -> list[ClaimedTurn]:
    now = time.time()
    # a claim whose lease ran out (its worker stalled or died) is claimable again
    db.execute(
        "UPDATE inbox INDEXED BY inbox_claimed_by_lease SET status = 'pending', worker = NULL, "
        "lease_until = NULL WHERE status = 'claimed' AND lease_until < ?",
        (now,),
    )
    session_ids = _ready_sessions(db, now, limit, window)
    turns: list[ClaimedTurn] = []
    for session_id in session_ids:
        rows = db.execute(
            "SELECT id, payload, message_row_id, debounce, not_before FROM inbox "
            "WHERE session_id = ? AND status IN ('pending', 'claimed') "
            "AND status = 'pending' ORDER BY platform_ts, id",
            (session_id,),
        ).fetchall()
        if rows[0][3] == 0 and rows[0][4] == 0:  # deferred entries are answered together
            rows = rows[:1]
        ids = [row[0] for row in rows]
        db.execute(
            f"UPDATE inbox SET status = 'claimed', worker = ?, lease_until = ?, "
            f"attempts = attempts + 1 WHERE id IN ({_placeholders(ids)})",
            (worker, now + lease, *ids),
        )
        attempts = db.execute(
            f"SELECT MAX(attempts) FROM inbox WHERE id IN ({_placeholders(ids)})", ids
        ).fetchone()[0]
        session_row = db.execute(
            f"SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?", (session_id,)
        ).fetchone()
        assert session_row is not None
        entries = [
            InboxEntry(row[0], session_id, _message_from_payload(row[1]), row[2]) for row in rows
        ]
        turns.append(ClaimedTurn(_session(session_row), entries, worker, int(attempts)))
    return turns


#: No worker holds entry ``i``'s session (a claim whose lease runs until at least ``?``);
#: the redundant "status IN (...)" lets the scans use the partial index.
_NOT_HELD = (
    "NOT EXISTS (SELECT 1 FROM inbox j WHERE j.session_id = i.session_id "
    "AND j.status IN ('pending', 'claimed') AND j.status = 'claimed' AND j.lease_until >= ?)"
)
_READY_SESSIONS = (
    "SELECT i.session_id FROM inbox i WHERE i.status IN ('pending', 'claimed') "
    "AND i.status = 'pending' {scope}GROUP BY i.session_id "
    "HAVING MAX(MIN(MAX(i.received_at) + MAX(i.debounce), "
    "MIN(i.received_at) + MAX(i.max_wait)), MAX(i.not_before)) <= ? "
    f"AND {_NOT_HELD} ORDER BY MIN(i.received_at) LIMIT ?"
)


def _ready_sessions(db: Connection, now: float, limit: int, window: int) -> list[str]:
    """The oldest ready sessions no worker holds: first among the sessions of the oldest
    ``window`` pending entries of sessions no worker holds (they come first in that order
    anyway), then, when those hold fewer than ``limit``, in the whole backlog."""
    oldest = db.execute(
        "SELECT i.session_id FROM inbox i INDEXED BY inbox_pending_by_arrival "
        f"WHERE i.status = 'pending' AND {_NOT_HELD} ORDER BY i.received_at LIMIT ?",
        (now, window),
    ).fetchall()
    if not oldest:
        return []
    candidates = list(dict.fromkeys(row[0] for row in oldest))
    scope = f"AND i.session_id IN ({_placeholders(candidates)}) "
    found = [
        row[0]
        for row in db.execute(_READY_SESSIONS.format(scope=scope), (*candidates, now, now, limit))
    ]
    if len(found) >= limit or len(oldest) < window:
        return found
    return [row[0] for row in db.execute(_READY_SESSIONS.format(scope=""), (now, now, limit))]


def _complete_turn(
    db: Connection,
    turn: ClaimedTurn,
    reply: str | None,
    meta: dict[str, Any],
    outbox_parts: list[str],
) -> Message | None:
    ids = turn.entry_ids
    cursor = db.execute(
        f"UPDATE inbox SET status = 'done', lease_until = NULL "
        f"WHERE id IN ({_placeholders(ids)}) AND status = 'claimed' AND worker = ?",
        (*ids, turn.worker),
    )
    if cursor.rowcount != len(ids):
        raise LostClaim(f"turn {ids} was claimed by another worker")
    if reply is None:
        return None
    return _queue_reply(db, turn.session, reply, meta, outbox_parts)


def _park_turn(
    db: Connection,
    turn: ClaimedTurn,
    error: str,
    reply: str | None,
    meta: dict[str, Any],
    outbox_parts: list[str],
) -> Message | None:
    ids = turn.entry_ids
    cursor = db.execute(
        f"UPDATE inbox SET status = 'failed', lease_until = NULL, last_error = ?, "
        f"failed_at = ? WHERE id IN ({_placeholders(ids)}) AND status = 'claimed' AND worker = ?",
        (error, time.time(), *ids, turn.worker),
    )
    if cursor.rowcount != len(ids):
        raise LostClaim(f"turn {ids} was claimed by another worker")
    if reply is None:
        return None
    return _queue_reply(db, turn.session, reply, meta, outbox_parts)


def _defer_turn(
    db: Connection,
    turn: ClaimedTurn,
    until: float,
    notice: str | None,
    meta: dict[str, Any],
    outbox_parts: list[str],
) -> None:
    ids = turn.entry_ids
    cursor = db.execute(
        f"UPDATE inbox SET status = 'pending', worker = NULL, lease_until = NULL, "
        f"attempts = MAX(attempts - 1, 0) "  # waiting is no failed attempt
        f"WHERE id IN ({_placeholders(ids)}) AND status = 'claimed' AND worker = ?",
        (*ids, turn.worker),
    )
    if cursor.rowcount != len(ids):
        raise LostClaim(f"turn {ids} was claimed by another worker")
    db.execute(
        "UPDATE inbox SET not_before = MAX(not_before, ?) "
        "WHERE session_id = ? AND status IN ('pending', 'claimed') AND status = 'pending'",
        (until, turn.session.id),
    )
    if notice is not None:
        _queue_reply(db, turn.session, notice, meta, outbox_parts)


def _queue_reply(
    db: Connection, session: ChatSession, reply: str, meta: dict[str, Any], parts: list[str]
) -> Message:
    stored = _insert_message(db, session.id, Role.ASSISTANT, reply, meta)
    _queue_parts(db, session, stored.id, parts)
    return stored


def _queue_parts(db: Connection, session: ChatSession, message_id: int, parts: list[str]) -> None:
    now = utcnow()
    db.executemany(
        "INSERT INTO outbox (session_id, channel, address, text, status, "
        "next_attempt_at, created_at, message_id) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)",
        [
            (
                session.id,
                session.channel,
                session.address,
                part,
                now.timestamp(),
                _ts(now),
                message_id,
            )
            for part in parts
        ],
    )


def _turns_open(db: Connection, lease_expired_before: float | None) -> bool:
    """Whether a claim could find a turn: an entry is pending, or (with a time) a claim's
    lease ran out before it. Both along partial indexes, whatever the backlog."""
    if db.execute("SELECT 1 FROM inbox WHERE status = 'pending' LIMIT 1").fetchall():
        return True
    if lease_expired_before is None:
        return False
    return bool(
        db.execute(
            "SELECT 1 FROM inbox INDEXED BY inbox_claimed_by_lease "
            "WHERE status = 'claimed' AND lease_until < ? LIMIT 1",
            (lease_expired_before,),
        ).fetchall()
    )


def _outbox_open(db: Connection) -> bool:
    """Whether a claim could find a delivery: one is pending or being sent."""
    return bool(
        db.execute(
            "SELECT 1 FROM outbox INDEXED BY outbox_by_status "
            "WHERE status IN ('pending', 'sending') LIMIT 1"
        ).fetchall()
    )


def _claim_outbox(db: Connection, worker: str, limit: int, lease: float) -> list[OutboxEntry]:
    now = time.time()
    rows = db.execute(
        "SELECT o.id, o.status FROM outbox o "
        "WHERE ((o.status = 'pending' AND o.next_attempt_at <= ?) "
        "OR (o.status = 'sending' AND o.lease_until < ?)) "
        "AND o.id = (SELECT MIN(p.id) FROM outbox p WHERE p.session_id = o.session_id "
        "AND p.status IN ('pending', 'sending')) "
        "ORDER BY o.next_attempt_at, o.id LIMIT ?",
        (now, now, limit),
    ).fetchall()
    if not rows:
        return []
    db.executemany(
        "UPDATE outbox SET status = 'sending', worker = ?, lease_until = ?, "
        "attempts = attempts + 1, recovered = ?, uncertain = MAX(uncertain, ?), "
        "first_attempt_at = COALESCE(first_attempt_at, ?) WHERE id = ?",
        [
            (worker, now + lease, int(status == "sending"), int(status == "sending"), now, entry_id)
            for entry_id, status in rows
        ],
    )
    ids = [row[0] for row in rows]
    return [
        _outbox(row)
        for row in db.execute(
            f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id IN ({_placeholders(ids)}) ORDER BY id",
            ids,
        )
    ]


def _release_worker(db: Connection, worker: str) -> tuple[int, int]:
    turns = db.execute(
        "UPDATE inbox SET status = 'pending', worker = NULL, lease_until = NULL "
        "WHERE status = 'claimed' AND worker = ?",
        (worker,),
    ).rowcount
    sends = db.execute(
        "UPDATE outbox SET lease_until = 0 WHERE status = 'sending' AND worker = ?",
        (worker,),
    ).rowcount
    return turns, sends


def _prefixed(columns: str, table: str) -> str:
    return ", ".join(f"{table}.{column.strip()}" for column in columns.split(","))


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


PHONE_PUNCTUATION = str.maketrans("", "", " +-().")


def _search_filter(query: str) -> tuple[str, list[Any]]:
    """The WHERE clause (on sessions ``s``) of a search, and its parameters."""
    folded = _like_pattern(_fold(query.strip()) or "")
    clauses = [
        "nicobot_fold(s.sender_name) LIKE ? ESCAPE '\\'",
        "s.phone_number LIKE ? ESCAPE '\\'",
        "nicobot_fold(s.address) LIKE ? ESCAPE '\\'",
        "EXISTS (SELECT 1 FROM messages m WHERE m.session_id = s.id "
        "AND nicobot_fold(m.text) LIKE ? ESCAPE '\\')",
    ]
    params: list[Any] = [folded, _like_pattern(query.strip()), folded, folded]
    digits = query.translate(PHONE_PUNCTUATION)
    if digits.isdigit() and digits != query.strip():
        clauses.append("s.phone_number LIKE ? OR s.address LIKE ?")
        params += [f"%{digits}%", f"%{digits}%"]
    return "(" + " OR ".join(clauses) + ")", params


def _add_operator_reply(
    db: Connection,
    session_id: str,
    text: str,
    outbox_parts: list[str],
    pause_until: datetime,
    meta: dict[str, Any] | None,
) -> tuple[Message, ChatSession] | None:
    session = _get_session(db, session_id)
    if session is None:
        return None
    stored = _insert_message(db, session_id, Role.OPERATOR, text, meta)
    _queue_parts(db, session, stored.id, outbox_parts)
    if session.paused_until is None or session.paused_until < pause_until:
        _pause(db, session_id, pause_until)
    updated = _get_session(db, session_id)
    assert updated is not None
    return stored, updated
