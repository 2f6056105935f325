"""The SQLite store, on real files."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from datetime import timedelta

import pytest

from nicobot.models import Role
from nicobot.store.sqlite import SQLiteStore


@pytest.fixture
async def store(tmp_path):
    store = SQLiteStore(tmp_path / "data" / "nicobot.sqlite3")
    await store.open()
    yield store
    await store.close()


async def test_wal_mode_and_schema_version(store, tmp_path):
    connection = sqlite3.connect(store.path)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert connection.execute("PRAGMA user_version").fetchone()[0] == SQLiteStore.schema_version
    connection.close()


async def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "db.sqlite3"
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA user_version = 999")
    connection.close()
    store = SQLiteStore(path)
    with pytest.raises(RuntimeError, match="newer than this nicobot"):
        await store.open()
    await store.close()


async def test_get_or_create_keys_on_channel_and_address(store):
    first, created = await store.get_or_create_session(
        "whatsapp", "5491100000001", phone_number="5491100000001", sender_name="Ana"
    )
    assert created
    again, created_again = await store.get_or_create_session(
        "whatsapp", "5491100000001", sender_name="Ana María"
    )
    assert not created_again
    assert again.id == first.id
    assert again.sender_name == "Ana María"
    assert again.phone_number == "5491100000001"
    other, created_other = await store.get_or_create_session("simulator", "5491100000001")
    assert created_other and other.id != first.id


async def test_concurrent_get_or_create_makes_one_session(store):
    results = await asyncio.gather(
        *[store.get_or_create_session("whatsapp", "123456789") for _ in range(50)]
    )
    assert len({s.id for s, _ in results}) == 1
    assert sum(created for _, created in results) == 1


async def test_messages_update_the_session_and_keep_order(store):
    session, _ = await store.get_or_create_session("simulator", "111111")
    await store.add_message(session.id, Role.USER, "hola")
    reply = await store.add_message(session.id, Role.ASSISTANT, "¡hola!", {"mode": "offline"})
    assert reply.meta == {"mode": "offline"}
    fresh = await store.get_session(session.id)
    assert fresh.last_message == "¡hola!"
    assert fresh.last_message_at is not None
    messages = await store.list_messages(session.id)
    assert [m.text for m in messages] == ["hola", "¡hola!"]
    assert [m.text for m in await store.list_messages(session.id, limit=1)] == ["¡hola!"]


async def test_list_put_and_delete_sessions(store):
    a, _ = await store.get_or_create_session("simulator", "1000001")
    b, _ = await store.get_or_create_session("whatsapp", "1000002")
    await store.add_message(a.id, Role.USER, "later")
    assert [s.id for s in await store.list_sessions()] == [a.id, b.id]
    assert [s.id for s in await store.list_sessions(channel="whatsapp")] == [b.id]
    b.sender_name = "Changed"
    await store.put_session(b)
    assert (await store.get_session(b.id)).sender_name == "Changed"
    assert await store.delete_session(a.id)
    assert not await store.delete_session(a.id)
    assert await store.list_messages(a.id) == []
    assert await store.get_session(a.id) is None


async def test_claims_are_atomic_under_concurrent_duplicates(store):
    results = await asyncio.gather(*[store.claim_message_id("whatsapp", "ABC") for _ in range(20)])
    assert results.count(True) == 1
    assert await store.claim_message_id("simulator", "ABC")


async def test_claims_are_atomic_across_connections(tmp_path):
    path = tmp_path / "shared.sqlite3"
    stores = [SQLiteStore(path) for _ in range(4)]
    for store in stores:
        await store.open()
    try:
        results = await asyncio.gather(
            *[stores[i % 4].claim_message_id("whatsapp", f"id-{i // 8}") for i in range(64)]
        )
        assert results.count(True) == 8
    finally:
        for store in stores:
            await store.close()


async def test_old_claims_are_purged(store):
    await store.claim_message_id("whatsapp", "old")
    await store.db.execute("UPDATE webhook_claims SET claimed_at = claimed_at - 3600")
    await store.claim_message_id("whatsapp", "new")
    assert await store.purge_claims(timedelta(minutes=10)) == 1
    assert await store.claim_message_id("whatsapp", "old")
    assert not await store.claim_message_id("whatsapp", "new")


async def test_200_concurrent_writers_never_see_a_locked_database(tmp_path):
    path = tmp_path / "busy.sqlite3"
    stores = [SQLiteStore(path) for _ in range(4)]
    for store in stores:
        await store.open()
    try:

        async def writer(i: int) -> None:
            store = stores[i % len(stores)]
            session, _ = await store.get_or_create_session("simulator", f"writer-{i % 20}")
            await store.add_message(session.id, Role.USER, f"message {i}")
            await store.claim_message_id("simulator", f"claim-{i}")

        await asyncio.gather(*[writer(i) for i in range(200)])
        total = 0
        for session in await stores[0].list_sessions(limit=100):
            total += len(await stores[0].list_messages(session.id))
        assert total == 200
    finally:
        for store in stores:
            await store.close()


async def test_data_survives_reopening(tmp_path):
    path = tmp_path / "persist.sqlite3"
    store = SQLiteStore(path)
    await store.open()
    session, _ = await store.get_or_create_session("simulator", "5550001")
    await store.add_message(session.id, Role.USER, "still here?")
    await store.set_setting("k", "v")
    await store.close()
    reopened = SQLiteStore(path)
    await reopened.open()
    assert [m.text for m in await reopened.list_messages(session.id)] == ["still here?"]
    assert await reopened.get_setting("k") == "v"
    await reopened.set_setting("k", None)
    assert await reopened.get_setting("k") is None
    await reopened.close()


async def test_a_cancelled_writer_leaves_the_connection_clean(store):
    session, _ = await store.get_or_create_session("simulator", "5550002")
    for delay in (0, 0, 0.0005, 0.001, 0.002):
        task = asyncio.create_task(store.add_message(session.id, Role.USER, "maybe"))
        await asyncio.sleep(delay)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await store.get_setting("barrier")  # runs after the cancelled write, on its thread
        assert not store.db.in_transaction
    await store.add_message(session.id, Role.USER, "after the cancellations")
    texts = [m.text for m in await store.list_messages(session.id)]
    assert texts[-1] == "after the cancellations"
    assert set(texts[:-1]) <= {"maybe"}


def _message(message_id: str, address: str = "5491100000001", text: str = "hola"):
    from nicobot.models import IncomingMessage

    return IncomingMessage(channel="whatsapp", address=address, text=text, message_id=message_id)


async def test_turn_attempts_backoff_and_parking(store):
    import time

    await store.enqueue(_message("t-1"), debounce=0, max_wait=0)
    [turn] = await store.claim_turns("w1", 5, lease=60)
    assert turn.attempts == 1
    await store.retry_turn_later(turn, "RuntimeError: boom", time.time() + 3600)
    assert await store.claim_turns("w1", 5, lease=60) == []  # waits for its retry time
    assert await store.next_turn_at() > time.time() + 3000
    await store.db.execute("UPDATE inbox SET retry_at = 0")  # the retry time has come
    [again] = await store.claim_turns("w1", 5, lease=60)
    assert again.attempts == 2
    await store.release_turn(again)  # a shutdown gives the attempt back
    [third] = await store.claim_turns("w2", 5, lease=60)
    assert third.attempts == 2
    await store.park_turn(third, "RuntimeError: boom", "Sorry.", {"mode": "failed"}, ["Sorry."])
    assert await store.claim_turns("w1", 5, lease=60) == []
    [failed] = await store.list_failed_turns()
    assert (failed.text, failed.attempts, failed.last_error) == ("hola", 2, "RuntimeError: boom")
    assert failed.failed_at is not None
    counts = await store.pipeline_counts()
    assert (counts["turns_failed"], counts["turns_pending"], counts["outbox_pending"]) == (1, 0, 1)
    messages = await store.list_messages(third.session.id)
    assert [(m.role, m.text) for m in messages] == [(Role.USER, "hola"), (Role.ASSISTANT, "Sorry.")]
    assert await store.retry_turn(failed.id)
    assert not await store.retry_turn(failed.id)
    [retried] = await store.claim_turns("w1", 5, lease=60)
    assert retried.attempts == 1
    assert await store.list_failed_turns() == []


async def test_a_turn_taken_over_is_not_parked_by_its_old_worker(store):
    from nicobot.store.sqlite import LostClaim

    await store.enqueue(_message("t-2"), debounce=0, max_wait=0)
    [turn] = await store.claim_turns("old", 5, lease=60)
    await store.release_worker("old")
    [taken] = await store.claim_turns("new", 5, lease=60)
    assert taken.attempts == 2  # the dead worker's attempt counts
    with pytest.raises(LostClaim):
        await store.park_turn(turn, "boom", None, {}, [])
    await store.retry_turn_later(turn, "boom", 0)  # changes nothing: "new" holds it
    assert await store.claim_turns("other", 5, lease=60) == []


async def test_outbox_uncertain_first_attempt_and_due_now(store):
    import time

    await store.enqueue(_message("o-1"), debounce=0, max_wait=0)
    [turn] = await store.claim_turns("w1", 5, lease=60)
    await store.complete_turn(turn, "reply", {}, ["part 1"])
    [entry] = await store.claim_outbox("w1", 5, lease=60)
    assert not entry.uncertain and entry.first_attempt_at is not None
    first = entry.first_attempt_at
    await store.outbox_failed(entry.id, "timeout", time.time() + 3600, uncertain=True)
    assert await store.claim_outbox("w1", 5, lease=60) == []
    assert await store.outbox_due_now("telegram") == 0
    assert await store.outbox_due_now("whatsapp") == 1
    [again] = await store.claim_outbox("w1", 5, lease=60)
    assert again.uncertain and not again.recovered and again.attempts == 2
    assert again.first_attempt_at == first
    await store.outbox_failed(again.id, "closed", time.time() - 1)  # a definite failure
    [third] = await store.claim_outbox("w1", 5, lease=60)
    assert not third.uncertain
    await store.db.execute("UPDATE outbox SET lease_until = 0")  # its worker died mid-send
    [recovered] = await store.claim_outbox("w2", 5, lease=60)
    assert recovered.recovered and recovered.uncertain
    await store.outbox_failed(recovered.id, "gave up", None)
    await store.db.execute("UPDATE outbox SET first_attempt_at = 1")  # long ago
    assert await store.retry_outbox(recovered.id)
    [fresh] = await store.claim_outbox("w2", 5, lease=60)
    assert fresh.attempts == 1 and fresh.first_attempt_at >= first  # a fresh maximum age
