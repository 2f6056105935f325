"""The schema, one migration per version, applied in order on start.

Several workers may start at once: migrations run under a transaction-level advisory
lock, so one migrates while the others wait and then find the schema current.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from psycopg import AsyncConnection

#: pg_advisory_xact_lock's key for migrations (any constant of our own).
MIGRATION_LOCK = 7_070_013

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        channel TEXT NOT NULL,
        address TEXT NOT NULL,
        phone_number TEXT,
        sender_name TEXT,
        prompt_context TEXT,
        created_at TIMESTAMPTZ NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL,
        last_message TEXT,
        last_message_at TIMESTAMPTZ,
        paused_until TIMESTAMPTZ,
        non_text_reply_at DOUBLE PRECISION,
        UNIQUE (channel, address)
    );
    CREATE INDEX sessions_by_activity
        ON sessions ((COALESCE(last_message_at, updated_at)) DESC, id);
    CREATE TABLE messages (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        role TEXT NOT NULL,
        text TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        meta JSONB NOT NULL DEFAULT '{}'
    );
    CREATE INDEX messages_by_session ON messages (session_id, id);
    CREATE TABLE webhook_claims (
        channel TEXT NOT NULL,
        message_id TEXT NOT NULL,
        claimed_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (channel, message_id)
    );
    CREATE INDEX webhook_claims_by_age ON webhook_claims (claimed_at);
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE inbox (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        channel TEXT NOT NULL,
        platform_id TEXT NOT NULL,
        session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        message_row_id BIGINT,
        payload JSONB NOT NULL,
        platform_ts DOUBLE PRECISION NOT NULL,
        received_at DOUBLE PRECISION NOT NULL,
        debounce DOUBLE PRECISION NOT NULL DEFAULT 0,
        max_wait DOUBLE PRECISION NOT NULL DEFAULT 0,
        status TEXT NOT NULL,
        worker TEXT,
        lease_until DOUBLE PRECISION,
        UNIQUE (channel, platform_id)
    );
    CREATE INDEX inbox_open ON inbox (session_id, platform_ts, id)
        WHERE status IN ('pending', 'claimed');
    CREATE INDEX inbox_pending_by_arrival ON inbox (received_at) WHERE status = 'pending';
    CREATE TABLE outbox (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        channel TEXT NOT NULL,
        address TEXT NOT NULL,
        text TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at DOUBLE PRECISION NOT NULL,
        worker TEXT,
        lease_until DOUBLE PRECISION,
        last_error TEXT,
        platform_id TEXT,
        created_at TIMESTAMPTZ NOT NULL,
        sent_at TIMESTAMPTZ,
        recovered BOOLEAN NOT NULL DEFAULT FALSE
    );
    CREATE INDEX outbox_open ON outbox (session_id, id) WHERE status IN ('pending', 'sending');
    CREATE INDEX outbox_by_status ON outbox (status, id);
    CREATE INDEX outbox_by_platform_id ON outbox (platform_id);
    """,
    """
    ALTER TABLE sessions ADD COLUMN opted_out_at TIMESTAMPTZ;
    """,
    """
    ALTER TABLE inbox ADD COLUMN not_before DOUBLE PRECISION NOT NULL DEFAULT 0;
    """,
    """
    ALTER TABLE inbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE inbox ADD COLUMN last_error TEXT;
    ALTER TABLE inbox ADD COLUMN failed_at DOUBLE PRECISION;
    CREATE INDEX inbox_failed ON inbox (id) WHERE status = 'failed';
    ALTER TABLE outbox ADD COLUMN first_attempt_at DOUBLE PRECISION;
    ALTER TABLE outbox ADD COLUMN uncertain BOOLEAN NOT NULL DEFAULT FALSE;
    CREATE INDEX outbox_pending_by_channel ON outbox (channel) WHERE status = 'pending';
    """,
    """
    ALTER TABLE outbox ADD COLUMN message_id BIGINT;
    UPDATE outbox SET message_id = (SELECT MAX(m.id) FROM messages m
        WHERE m.session_id = outbox.session_id AND m.role IN ('assistant', 'operator')
        AND m.created_at <= outbox.created_at);
    CREATE INDEX outbox_by_session ON outbox (session_id, id);
    CREATE INDEX messages_by_time ON messages (created_at);
    CREATE TABLE changes (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        kind TEXT NOT NULL,
        session_id TEXT NOT NULL,
        message_id BIGINT,
        at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
    );
    CREATE FUNCTION nicobot_record_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_TABLE_NAME = 'messages' THEN
            INSERT INTO changes (kind, session_id, message_id)
                VALUES ('message', NEW.session_id, NEW.id);
            IF NEW.id % 1000 = 0 THEN
                DELETE FROM changes WHERE id <= (SELECT MAX(id) FROM changes) - 10000;
            END IF;
        ELSIF TG_TABLE_NAME = 'outbox' THEN
            INSERT INTO changes (kind, session_id, message_id)
                VALUES ('delivery', NEW.session_id, NEW.message_id);
        ELSIF TG_OP = 'DELETE' THEN
            INSERT INTO changes (kind, session_id) VALUES ('deleted', OLD.id);
            RETURN OLD;
        ELSE
            INSERT INTO changes (kind, session_id) VALUES ('session', NEW.id);
        END IF;
        RETURN NEW;
    END
    $$;
    CREATE TRIGGER changes_on_message AFTER INSERT ON messages
        FOR EACH ROW EXECUTE FUNCTION nicobot_record_change();
    CREATE TRIGGER changes_on_delivery AFTER UPDATE OF status ON outbox
        FOR EACH ROW WHEN (NEW.status IS DISTINCT FROM OLD.status)
        EXECUTE FUNCTION nicobot_record_change();
    CREATE TRIGGER changes_on_pause AFTER UPDATE OF paused_until ON sessions
        FOR EACH ROW WHEN (NEW.paused_until IS DISTINCT FROM OLD.paused_until)
        EXECUTE FUNCTION nicobot_record_change();
    CREATE TRIGGER changes_on_delete AFTER DELETE ON sessions
        FOR EACH ROW EXECUTE FUNCTION nicobot_record_change();
    CREATE FUNCTION nicobot_fold(value TEXT) RETURNS TEXT LANGUAGE sql IMMUTABLE AS $$
        SELECT translate(lower(value), 'áàâäãåéèêëíìîïóòôöõúùûüñçý', 'aaaaaaeeeeiiiiooooouuuuncy')
    $$;
    """,
    """
    CREATE INDEX inbox_claimed_by_lease ON inbox (lease_until) WHERE status = 'claimed';
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


def statements(script: str) -> list[str]:
    """The statements of ``script``, split on semicolons outside ``$$`` function bodies."""
    found, pending = [], ""
    for i, piece in enumerate(script.split("$$")):
        if i % 2:
            pending += "$$" + piece + "$$"
            continue
        *complete, rest = piece.split(";")
        for part in complete:
            found.append(pending + part)
            pending = ""
        pending += rest
    found.append(pending)
    return [s.strip() for s in found if s.strip()]


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer nicobot-postgres."""


async def migrate(conn: AsyncConnection[object]) -> int:
    """Bring the schema to SCHEMA_VERSION; return the version found."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        await conn.execute("CREATE TABLE IF NOT EXISTS nicobot_schema (version INTEGER NOT NULL)")
        cursor = await conn.execute("SELECT version FROM nicobot_schema")
        row = await cursor.fetchone()
        current = int(row[0]) if row else 0  # type: ignore[index]
        if current > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"the database has schema version {current}, newer than this "
                f"nicobot-postgres ({SCHEMA_VERSION}); upgrade nicobot-postgres"
            )
        for version in range(current, SCHEMA_VERSION):
            for statement in statements(MIGRATIONS[version]):
                await conn.execute(statement)
        if row is None:
            await conn.execute(
                "INSERT INTO nicobot_schema (version) VALUES (%s)", (SCHEMA_VERSION,)
            )
        elif current != SCHEMA_VERSION:
            await conn.execute("UPDATE nicobot_schema SET version = %s", (SCHEMA_VERSION,))
        return current
