"""The store contract, on every store: SQLite on real files and PostgreSQL on a real server
(started by nicobot-postgres's ``postgres_server`` fixture). A few tests at the end are
about SQLite alone."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest

from nicobot import IncomingMessage, LostClaim, Store
from nicobot.models import Role, utcnow
from nicobot.store.sqlite import SQLiteStore

OpenStore = Callable[[], Awaitable[Store]]


@pytest.fixture
async def open_store(
    store_backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[OpenStore]:
    """Opens another store on the test's one database (as another worker would)."""
    url = request.getfixturevalue("postgres_url") if store_backend == "postgres" else ""
    opened: list[Store] = []

    async def make() -> Store:
        store: Store
        if store_backend == "postgres":
            from nicobot_postgres import PostgresStore

            store = PostgresStore(url)
        else:
            store = SQLiteStore(tmp_path / "data" / "nicobot.sqlite3")
        await store.open()
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()


@pytest.fixture
async def store(open_store: OpenStore) -> Store:
    return await open_store()


async def execute(store: Store, sql: str) -> None:
    """Raw SQL on the store's own database (to age records in tests)."""
    if isinstance(store, SQLiteStore):
        await store.db.execute(sql)
        return
    async with store.connection() as conn:  # type: ignore[attr-defined]
        await conn.execute(sql)


def message(address: str, message_id: str, text: str = "hola") -> IncomingMessage:
    return IncomingMessage(channel="whatsapp", address=address, text=text, message_id=message_id)


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


async def test_claims_are_atomic_across_connections(open_store):
    stores = [await open_store() for _ in range(4)]
    results = await asyncio.gather(
        *[stores[i % 4].claim_message_id("whatsapp", f"id-{i // 8}") for i in range(64)]
    )
    assert results.count(True) == 8


async def test_old_claims_are_purged(store):
    await store.claim_message_id("whatsapp", "old")
    await execute(store, "UPDATE webhook_claims SET claimed_at = claimed_at - 3600")
    await store.claim_message_id("whatsapp", "new")
    assert await store.purge_claims(timedelta(minutes=10)) == 1
    assert await store.claim_message_id("whatsapp", "old")
    assert not await store.claim_message_id("whatsapp", "new")


async def test_200_concurrent_writers_never_see_a_locked_database(open_store):
    stores = [await open_store() for _ in range(4)]

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


async def test_data_survives_reopening(open_store):
    store = await open_store()
    session, _ = await store.get_or_create_session("simulator", "5550001")
    await store.add_message(session.id, Role.USER, "still here?")
    await store.set_setting("k", "v")
    await store.close()
    reopened = await open_store()
    assert [m.text for m in await reopened.list_messages(session.id)] == ["still here?"]
    assert await reopened.get_setting("k") == "v"
    await reopened.set_setting("k", None)
    assert await reopened.get_setting("k") is None


async def test_a_duplicate_delivery_queues_nothing(store):
    first = await store.enqueue(message("5491100000001", "m-1"), debounce=0, max_wait=0)
    assert first is not None
    assert await store.enqueue(message("5491100000001", "m-1"), debounce=0, max_wait=0) is None
    session, _entry = first
    assert [m.text for m in await store.list_messages(session.id)] == ["hola"]
    assert (await store.pipeline_counts())["turns_pending"] == 1


async def test_concurrent_duplicates_from_several_workers_queue_one_entry(open_store):
    stores = [await open_store() for _ in range(3)]
    results = await asyncio.gather(
        *[
            stores[i % 3].enqueue(message("5491100000002", f"dup-{i % 5}"), debounce=0, max_wait=0)
            for i in range(30)
        ]
    )
    assert sum(result is not None for result in results) == 5
    assert (await stores[0].pipeline_counts())["turns_pending"] == 5


async def test_turns_come_one_at_a_time_per_conversation_in_order(store):
    for n in range(3):
        await store.enqueue(message("5491100000003", f"o-{n}", f"m{n}"), debounce=0, max_wait=0)
    await store.enqueue(message("5491100000004", "other", "x"), debounce=0, max_wait=0)
    turns = await store.claim_turns("w1", 10, lease=60)
    assert sorted(t.entries[0].message.text for t in turns) == ["m0", "x"]
    assert await store.claim_turns("w1", 10, lease=60) == []
    first = next(t for t in turns if t.entries[0].message.text == "m0")
    await store.complete_turn(first, "r0", {}, ["r0"])
    [second] = await store.claim_turns("w1", 10, lease=60)
    assert second.entries[0].message.text == "m1"


async def test_a_claim_looks_past_a_window_of_conversations_not_ready(store):
    """A claim first looks among the oldest pending entries (``claim_window``); when those
    are of conversations still waiting (debounce) or held by a worker, it looks further."""
    store.claim_window = 2
    for n in range(4):  # the oldest: still inside their debounce
        await store.enqueue(message(f"54911000002{n:02d}", f"wait-{n}"), debounce=60, max_wait=60)
    await store.enqueue(message("5491100000300", "held-0", "h0"), debounce=0, max_wait=0)
    await store.enqueue(message("5491100000300", "held-1", "h1"), debounce=0, max_wait=0)
    await store.enqueue(message("5491100000301", "ready", "r"), debounce=0, max_wait=0)
    [held] = await store.claim_turns("w1", 1, lease=60)
    assert held.entries[0].message.text == "h0"  # past the four that wait
    [ready] = await store.claim_turns("w1", 1, lease=60)
    assert ready.entries[0].message.text == "r"  # past those and the held conversation's h1
    assert await store.claim_turns("w1", 5, lease=60) == []


async def test_claims_stay_oldest_first_with_a_small_window(store):
    store.claim_window = 1
    for n in range(6):
        await store.enqueue(
            message(f"54911000004{n:02d}", f"c-{n}", f"m{n}"), debounce=0, max_wait=0
        )
    texts = []
    for _ in range(6):
        [turn] = await store.claim_turns("w1", 1, lease=60)
        texts.append(turn.entries[0].message.text)
    assert texts == [f"m{n}" for n in range(6)]
    assert await store.claim_turns("w1", 1, lease=60) == []


async def test_two_workers_never_claim_one_conversation(open_store):
    a, b = await open_store(), await open_store()
    for conversation in range(20):
        for n in range(3):
            await a.enqueue(
                message(f"54911000001{conversation:02d}", f"c{conversation}-{n}", f"m{n}"),
                debounce=0,
                max_wait=0,
            )
    seen: list[tuple[str, str]] = []
    for _round in range(12):
        claimed = await asyncio.gather(a.claim_turns("wa", 15, 60), b.claim_turns("wb", 15, 60))
        turns = [turn for batch in claimed for turn in batch]
        sessions = [turn.session.id for turn in turns]
        assert len(sessions) == len(set(sessions))
        for turn in turns:
            seen.append((turn.session.id, turn.entries[0].message.text))
            await (a if turn.worker == "wa" else b).complete_turn(turn, "ok", {}, ["ok"])
        if len(seen) == 60:
            break
    assert len(seen) == 60
    for session_id in {s for s, _ in seen}:
        assert [text for s, text in seen if s == session_id] == ["m0", "m1", "m2"]


async def test_a_burst_is_one_turn_after_its_debounce(store):
    for n in range(3):
        await store.enqueue(message("5491100000005", f"b-{n}", f"m{n}"), debounce=30, max_wait=60)
    assert await store.claim_turns("w", 10, lease=60) == []
    ready = await store.next_turn_at()
    assert ready is not None and ready > utcnow().timestamp() + 20
    await execute(store, "UPDATE inbox SET received_at = received_at - 100")
    [turn] = await store.claim_turns("w", 10, lease=60)
    assert [e.message.text for e in turn.entries] == ["m0", "m1", "m2"]


async def test_a_completed_turn_queues_its_reply_once(store):
    session, _ = await store.enqueue(message("5491100000006", "c-1"), debounce=0, max_wait=0)
    [turn] = await store.claim_turns("w", 10, lease=60)
    reply = await store.complete_turn(turn, "hello there", {"mode": "llm"}, ["hello", "there"])
    assert reply is not None and reply.meta == {"mode": "llm"}
    with pytest.raises(LostClaim):
        await store.complete_turn(turn, "again", {}, ["again"])
    entries = await store.claim_outbox("w", 10, lease=60)
    assert [e.text for e in entries] == ["hello"]  # only the oldest unsent per session
    await store.outbox_sent(entries[0].id, "platform-1")
    [second] = await store.claim_outbox("w", 10, lease=60)
    assert second.text == "there"
    roles = [m.role for m in await store.list_messages(session.id)]
    assert roles == [Role.USER, Role.ASSISTANT]


async def test_an_expired_send_is_claimed_again_as_recovered(store):
    await store.enqueue(message("5491100000007", "s-1"), debounce=0, max_wait=0)
    [turn] = await store.claim_turns("w", 10, lease=60)
    await store.complete_turn(turn, "hi", {}, ["hi"])
    [entry] = await store.claim_outbox("w", 10, lease=0.01)
    assert not entry.recovered
    await execute(store, "UPDATE outbox SET lease_until = lease_until - 10")
    [again] = await store.claim_outbox("w2", 10, lease=60)
    assert again.id == entry.id and again.recovered and again.attempts == 2


async def test_failed_sends_retry_and_give_up(store):
    await store.enqueue(message("5491100000008", "f-1"), debounce=0, max_wait=0)
    [turn] = await store.claim_turns("w", 10, lease=60)
    await store.complete_turn(turn, "hi", {}, ["hi"])
    [entry] = await store.claim_outbox("w", 10, lease=60)
    await store.outbox_failed(entry.id, "down", utcnow().timestamp() + 3600)
    assert await store.claim_outbox("w", 10, lease=60) == []
    assert not await store.retry_outbox(entry.id)
    await store.outbox_failed(entry.id, "still down", None)
    [failed] = await store.list_outbox("failed")
    assert failed.last_error == "still down"
    assert await store.retry_outbox(entry.id)
    [retried] = await store.claim_outbox("w", 10, lease=60)
    assert retried.attempts == 1


async def test_a_dead_workers_work_is_given_back(store):
    dead = f"{socket.gethostname()}:999999999:dead"
    await store.enqueue(message("5491100000009", "d-1"), debounce=0, max_wait=0)
    [turn] = await store.claim_turns(dead, 10, lease=3600)
    assert await store.workers_holding_work() == {dead}
    assert await store.release_worker(dead) == (1, 0)
    [again] = await store.claim_turns("alive", 10, lease=60)
    assert again.entry_ids == turn.entry_ids
    await store.release_turn(again)
    assert len(await store.claim_turns("alive", 10, lease=60)) == 1


async def test_an_expired_claim_is_taken_over_first(open_store):
    a, b = await open_store(), await open_store()
    for n in range(2):
        await a.enqueue(message("5491100000012", f"x-{n}", f"m{n}"), debounce=0, max_wait=0)
    [stalled] = await a.claim_turns("other-host:1:a", 10, lease=60)
    assert await b.claim_turns("wb", 10, lease=60) == []
    await execute(a, "UPDATE inbox SET lease_until = lease_until - 120")
    [taken] = await b.claim_turns("wb", 10, lease=60)
    assert taken.entry_ids == stalled.entry_ids
    with pytest.raises(LostClaim):
        await a.complete_turn(stalled, "late", {}, ["late"])
    await b.complete_turn(taken, "r0", {}, ["r0"])
    [second] = await b.claim_turns("wb", 10, lease=60)
    assert second.entries[0].message.text == "m1"


async def test_an_operator_message_pauses_and_echoes_are_ignored(store):
    session, _ = await store.enqueue(message("5491100000010", "u-1"), debounce=0, max_wait=0)
    [turn] = await store.claim_turns("w", 10, lease=60)
    await store.complete_turn(turn, "our reply", {}, ["our reply"])
    [entry] = await store.claim_outbox("w", 10, lease=60)
    await store.outbox_sent(entry.id, "sent-1")
    echo = IncomingMessage(
        channel="whatsapp", address="5491100000010", text="our reply", message_id="sent-1"
    )
    assert await store.record_operator_message(echo, pause_for=timedelta(minutes=5)) is None
    typed = IncomingMessage(
        channel="whatsapp", address="5491100000010", text="soy Marta", message_id="op-1"
    )
    paused = await store.record_operator_message(typed, pause_for=timedelta(minutes=5))
    assert paused is not None and paused.paused
    await store.enqueue(message("5491100000010", "u-2"), debounce=0, max_wait=0)
    assert await store.claim_turns("w", 10, lease=60) == []
    assert await store.set_paused(session.id, None)
    assert not await store.set_paused("no-such-session", None)


async def test_the_text_only_reply_is_rationed(store):
    session, _ = await store.get_or_create_session("whatsapp", "5491100000011")
    assert await store.claim_non_text_reply(session.id, timedelta(hours=1))
    assert not await store.claim_non_text_reply(session.id, timedelta(hours=1))
    assert await store.claim_non_text_reply(session.id, timedelta(0))


async def test_turns_finished_together_each_commit_or_fail_alone(store):
    """Turns finished at the same moment (several in flight on one worker): each one's
    reply is queued once, and a turn another worker took over fails alone."""
    for n in range(8):
        await store.enqueue(message(f"54911000090{n:02d}", f"done-{n}"), debounce=0, max_wait=0)
    turns = await store.claim_turns("w", 10, lease=60)
    assert len(turns) == 8
    await execute(store, f"UPDATE inbox SET worker = 'other' WHERE id = {turns[2].entry_ids[0]}")
    results = await asyncio.gather(
        *(
            store.complete_turn(turn, f"reply {n}", {}, [f"reply {n}"])
            for n, turn in enumerate(turns)
        ),
        return_exceptions=True,
    )
    assert isinstance(results[2], LostClaim)
    assert [r.text for r in results if not isinstance(r, BaseException)] == [
        f"reply {n}" for n in range(8) if n != 2
    ]
    entries = await store.claim_outbox("w", 20, lease=60)
    assert sorted(e.text for e in entries) == sorted(f"reply {n}" for n in range(8) if n != 2)
    await asyncio.gather(*(store.outbox_sent(e.id, f"P-{e.id}") for e in entries))
    assert await store.claim_outbox("w", 20, lease=60) == []
    counts = await store.pipeline_counts()
    assert [counts[k] for k in ("turns_pending", "turns_claimed", "outbox_pending")] == [0, 1, 0]
    assert counts["outbox_sending"] == 0


# SQLite alone


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "data" / "nicobot.sqlite3")
    await store.open()
    yield store
    await store.close()


async def test_wal_mode_and_schema_version(sqlite_store):
    connection = sqlite3.connect(sqlite_store.path)
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


async def test_a_cancelled_writer_leaves_the_connection_clean(sqlite_store):
    store = sqlite_store
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
    await execute(store, "UPDATE inbox SET not_before = 0")  # the retry time has come
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
    await execute(store, "UPDATE outbox SET lease_until = 0")  # its worker died mid-send
    [recovered] = await store.claim_outbox("w2", 5, lease=60)
    assert recovered.recovered and recovered.uncertain
    await store.outbox_failed(recovered.id, "gave up", None)
    await execute(store, "UPDATE outbox SET first_attempt_at = 1")  # long ago
    assert await store.retry_outbox(recovered.id)
    [fresh] = await store.claim_outbox("w2", 5, lease=60)
    assert fresh.attempts == 1 and fresh.first_attempt_at >= first  # a fresh maximum age


async def test_opt_out_is_kept_across_a_reopen(store):
    session, _ = await store.get_or_create_session("whatsapp", "5491100000099")
    assert not session.opted_out
    assert await store.set_opted_out(session.id, True)
    assert not await store.set_opted_out("no-such-session", True)
    await store.close()
    await store.open()
    again = await store.get_session(session.id)
    assert again.opted_out and again.opted_out_at is not None
    assert again.to_dict()["opted_out"] is True
    [listed] = await store.list_sessions()
    assert listed.opted_out
    await store.put_session(again)  # a full write keeps it
    assert (await store.get_session(session.id)).opted_out
    assert await store.set_opted_out(session.id, False)
    assert not (await store.get_session(session.id)).opted_out


async def test_a_deferred_turn_waits_then_is_answered_with_the_rest(store):
    import time

    from nicobot.models import IncomingMessage

    def message(n: int, address: str) -> IncomingMessage:
        return IncomingMessage(
            channel="fake", address=address, text=f"m{n}", message_id=f"{address}-{n}"
        )

    for n in range(3):
        await store.enqueue(message(n, "111"), debounce=0, max_wait=0)
    [turn] = await store.claim_turns("w1", 5, lease=60)
    assert [e.message.text for e in turn.entries] == ["m0"]
    later = time.time() + 3600
    await store.defer_turn(turn, later, "too fast", {"mode": "rate_limited"}, ["too fast"])
    assert await store.claim_turns("w1", 5, lease=60) == []
    assert await store.next_turn_at() == pytest.approx(later)
    [notice] = await store.list_outbox()
    assert notice.text == "too fast" and notice.status == "pending"
    replies = await store.recent_replies(turn.session.id, turn.session.created_at)
    assert [mode for _at, mode in replies] == ["rate_limited"]

    await store.enqueue(message(0, "222"), debounce=0, max_wait=0)
    await store.enqueue(message(1, "222"), debounce=0, max_wait=0)
    [other] = await store.claim_turns("w1", 5, lease=60)
    await store.defer_turn(other, time.time() - 1, None, {}, [])
    [together] = await store.claim_turns("w2", 5, lease=60)
    assert [e.message.text for e in together.entries] == ["m0", "m1"]
    from nicobot.store.sqlite import LostClaim

    with pytest.raises(LostClaim):
        await store.defer_turn(other, time.time(), None, {}, [])


# the operator inbox: replies from the pages, deliveries, search, changes, dashboard


async def _reply_from_page(store, session, text, parts=None, minutes=30):
    until = utcnow() + timedelta(minutes=minutes)
    return await store.add_operator_reply(
        session.id, text, outbox_parts=[text] if parts is None else parts, pause_until=until
    )


async def test_an_operator_reply_is_stored_queued_and_pauses_at_once(store):
    session, _ = await store.get_or_create_session("whatsapp", "5491100000031")
    await store.enqueue(_incoming("c-1", "5491100000031", "hola"), debounce=5, max_wait=10)
    message, paused = await _reply_from_page(store, session, "Soy Marta, te ayudo yo")
    assert message.role is Role.OPERATOR
    assert paused.paused
    assert (await store.pipeline_counts())["turns_pending"] == 0  # the bot stays quiet
    [entry] = await store.session_deliveries(session.id)
    assert (entry.message_id, entry.status, entry.text) == (message.id, "pending", message.text)
    assert (
        await _reply_from_page(store, session.__class__(id="nope", channel="x", address="y"), "?")
        is None
    )


async def test_an_operator_reply_never_shortens_a_longer_pause(store):
    session, _ = await store.get_or_create_session("whatsapp", "5491100000032")
    await store.set_paused(session.id, utcnow() + timedelta(days=1))
    _, after = await _reply_from_page(store, session, "ok", minutes=5)
    assert after.paused_until > utcnow() + timedelta(hours=23)


async def test_the_echo_of_an_operator_reply_is_not_a_second_handoff(store):
    session, _ = await store.get_or_create_session("whatsapp", "5491100000033")
    _, _ = await _reply_from_page(store, session, "Ya te lo mando")
    [entry] = await store.claim_outbox("w1", 10, 30)
    await store.outbox_sent(entry.id, "WA-OP-1")
    echo = _incoming("WA-OP-1", "5491100000033", "Ya te lo mando", from_business=True)
    assert await store.record_operator_message(echo, pause_for=timedelta(minutes=30)) is None
    texts = [m.text for m in await store.list_messages(session.id)]
    assert texts == ["Ya te lo mando"]


async def test_deliveries_belong_to_their_message_part_by_part(store):
    session, _ = await store.get_or_create_session("whatsapp", "5491100000034")
    message, _ = await _reply_from_page(store, session, "uno dos", parts=["uno", "dos"])
    entries = await store.session_deliveries(session.id)
    assert [(e.message_id, e.text) for e in entries] == [(message.id, "uno"), (message.id, "dos")]
    simulator, _ = await store.get_or_create_session("simulator", "5491100000034")
    await _reply_from_page(store, simulator, "local", parts=[])
    assert await store.session_deliveries(simulator.id) == []


async def test_search_finds_names_numbers_and_message_text(store):
    ana, _ = await store.get_or_create_session(
        "whatsapp", "5491122223333", phone_number="5491122223333", sender_name="Ana Pérez"
    )
    leo, _ = await store.get_or_create_session("simulator", "5491144445555", sender_name="Leo")
    await store.add_message(leo.id, Role.USER, "¿Hacen envíos a Córdoba?")
    other, _ = await store.get_or_create_session("whatsapp", "abc@lid", sender_name="100% real_x")

    async def ids(query, **kwargs):
        return {s.id for s in await store.search_sessions(query, **kwargs)}

    assert await ids("ana") == {ana.id}
    assert await ids("PEREZ") == {ana.id}  # case and accents do not matter
    assert await ids("envios a cordoba") == {leo.id}
    assert await ids("2222 3333") == {ana.id}  # a number written with spaces
    assert await ids("+54 9 11 4444") == {leo.id}
    assert await ids("%") == {other.id}  # LIKE wildcards are literal
    assert await ids("r_a") == set()  # "_" is not "any character"
    assert await ids("al_x") == {other.id}
    assert await ids("e", channel="simulator") == {leo.id}
    assert await ids("nadie") == set()


async def test_changes_record_messages_deliveries_pauses_and_deletions(store):
    start = await store.latest_change()
    session, _ = await store.get_or_create_session("whatsapp", "5491100000035")
    message, _ = await _reply_from_page(store, session, "hola")
    [entry] = await store.claim_outbox("w1", 10, 30)
    await store.outbox_sent(entry.id, "WA-1")
    await store.set_paused(session.id, None)
    await store.delete_session(session.id)
    changes = await store.changes_since(start)
    kinds = [(c.kind, c.message_id) for c in changes]
    assert kinds == [
        ("message", message.id),
        ("session", None),  # paused by the reply
        ("delivery", message.id),  # sending
        ("delivery", message.id),  # sent
        ("session", None),  # resumed
        ("deleted", None),
    ]
    assert {c.session_id for c in changes} == {session.id}
    assert [c.id for c in changes] == sorted(c.id for c in changes)
    assert await store.latest_change() == changes[-1].id
    assert await store.changes_since(changes[-1].id) == []


async def test_the_change_log_keeps_the_latest_ten_thousand(sqlite_store):
    store = sqlite_store
    session, _ = await store.get_or_create_session("simulator", "5491100000036")
    await store.db.executemany(
        "INSERT INTO changes (kind, session_id) VALUES ('message', ?)",
        [(session.id,)] * 10005,
    )
    await store.add_message(session.id, Role.USER, "one more")
    latest, oldest = await store.latest_change(), await store.oldest_change()
    assert latest - oldest < 10000
    assert oldest > 1


async def test_dashboard_counts_what_the_store_holds(store):
    a, _ = await store.get_or_create_session("whatsapp", "5491100000037")
    b, _ = await store.get_or_create_session("simulator", "5491100000038")
    await store.add_message(a.id, Role.USER, "¿Tienen factura A?")
    await store.add_message(a.id, Role.ASSISTANT, "No lo sé", {"mode": "offline"})
    await store.add_message(a.id, Role.USER, "¿tienen factura a")
    await store.add_message(a.id, Role.ASSISTANT, "No encontré eso", {"mode": "llm"})
    await store.add_message(a.id, Role.USER, "¿y el precio?")
    await store.add_message(a.id, Role.ASSISTANT, "perdón", {"mode": "apology"})
    await store.add_message(a.id, Role.USER, "quiero hablar con alguien")
    await store.add_message(a.id, Role.ASSISTANT, "te paso", {"mode": "handoff"})
    await _reply_from_page(store, a, "Hola, soy Marta")  # the same handoff, not a second one
    await store.add_message(b.id, Role.USER, "horarios?")
    await store.add_message(
        b.id, Role.ASSISTANT, "De 9 a 18", {"mode": "llm", "sources": [{"source": "h.md"}]}
    )
    [entry] = await store.claim_outbox("w1", 10, 30)
    await store.outbox_failed(entry.id, "gateway down", None)
    figures = await store.dashboard(7, "America/Argentina/Buenos_Aires")
    assert figures.messages == 11
    assert figures.customer_messages == 5
    assert figures.conversations == 2
    assert figures.bot_replies == 5
    assert figures.operator_replies == 1
    assert figures.handoffs == 1
    assert figures.llm_errors == 1
    assert figures.failed_sends == 1
    assert [(q.text, q.count) for q in figures.unanswered] == [("¿tienen factura a", 2)]
    assert figures.median_reply_seconds is not None and figures.median_reply_seconds >= 0
    assert len(figures.days) == 7
    assert sum(d.messages for d in figures.days) == 11
    assert figures.days[-1].conversations == 2


def _incoming(message_id, address, text, from_business=False):
    from nicobot.models import IncomingMessage

    return IncomingMessage(
        channel="whatsapp",
        address=address,
        text=text,
        message_id=message_id,
        from_business=from_business,
    )


async def test_upgrading_links_old_deliveries_to_their_replies(tmp_path):
    from nicobot.store.sqlite import MIGRATIONS, _statements

    path = tmp_path / "v2.sqlite3"
    old = sqlite3.connect(path)
    linking = next(n for n, script in enumerate(MIGRATIONS) if "ADD COLUMN message_id" in script)
    for script in MIGRATIONS[:linking]:
        for statement in _statements(script):
            old.execute(statement)
    old.execute(f"PRAGMA user_version = {linking}")
    old.execute(
        "INSERT INTO sessions (id, channel, address, created_at, updated_at) "
        "VALUES ('s1', 'whatsapp', '549', '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00')"
    )
    old.executemany(
        "INSERT INTO messages (session_id, role, text, created_at) VALUES ('s1', ?, ?, ?)",
        [
            ("user", "hola", "2026-01-01T10:00:00+00:00"),
            ("assistant", "¡hola!", "2026-01-01T10:00:01+00:00"),
            ("user", "gracias", "2026-01-01T10:05:00+00:00"),
            ("assistant", "de nada", "2026-01-01T10:05:01+00:00"),
        ],
    )
    old.executemany(
        "INSERT INTO outbox (session_id, channel, address, text, status, next_attempt_at, "
        "created_at) VALUES ('s1', 'whatsapp', '549', ?, 'sent', 0, ?)",
        [("¡hola!", "2026-01-01T10:00:01.5+00:00"), ("de nada", "2026-01-01T10:05:02+00:00")],
    )
    old.commit()
    old.close()
    store = SQLiteStore(path)
    await store.open()
    try:
        entries = await store.session_deliveries("s1")
        assert [e.message_id for e in entries] == [2, 4]
    finally:
        await store.close()


async def test_a_transcript_becomes_the_messages_text(store):
    session, _ = await store.get_or_create_session("whatsapp", "5491100000077")
    voice = await store.add_message(
        session.id, Role.USER, "", {"message_id": "V1", "kind": "audio"}
    )
    await store.set_transcript(voice.id, "¿Abren el sábado?")
    [stored] = await store.list_messages(session.id)
    assert stored.text == "¿Abren el sábado?"
    assert stored.meta == {"message_id": "V1", "kind": "audio", "transcribed": True}


async def test_a_burst_of_enqueues_stores_each_message_once(store):
    """Webhooks arriving together (the SQLite store writes them in one transaction): each
    message is stored once, and a duplicate within the same burst is refused."""
    burst = [
        IncomingMessage(
            channel="fake", address=f"54911{n:08d}", text=f"m{n}", message_id=f"burst-{n % 40}"
        )
        for n in range(50)
    ]
    results = await asyncio.gather(*(store.enqueue(m, debounce=0, max_wait=0) for m in burst))
    stored = [r for r in results if r is not None]
    assert len(stored) == 40 and results[40:] == [None] * 10
    assert len({entry_id for _session, entry_id in stored}) == 40
    assert (await store.pipeline_counts())["turns_pending"] == 40


async def test_a_message_that_cannot_be_stored_fails_alone_in_its_burst(sqlite_store):
    """One transaction for the burst, a savepoint per message: the bad one is rolled back
    (its new session too) and fails; the others commit."""
    good = [message(f"54911{n:08d}", f"ok-{n}") for n in range(6)]
    bad = IncomingMessage(
        channel="fake",
        address="5491199999999",
        text="bad",
        message_id=["a", "list"],  # type: ignore[arg-type]
    )
    results = await asyncio.gather(
        *(sqlite_store.enqueue(m, debounce=0, max_wait=0) for m in [*good[:3], bad, *good[3:]]),
        return_exceptions=True,
    )
    assert isinstance(results[3], sqlite3.Error)
    assert all(isinstance(r, tuple) for r in results[:3] + results[4:])
    assert (await sqlite_store.pipeline_counts())["turns_pending"] == 6
    addresses = {s.address for s in await sqlite_store.list_sessions(limit=50)}
    assert "5491199999999" not in addresses and len(addresses) == 6


async def test_reads_answer_at_once_while_another_process_writes(sqlite_store):
    """Small reads run on the event loop's thread: they must neither wait for nor fail
    on another connection's open write transaction, see only what it committed, and
    keep no snapshot open: the next read sees the commit."""
    store = sqlite_store
    session, _ = await store.get_or_create_session("simulator", "5550003")
    await store.add_message(session.id, Role.USER, "hola")
    writer = sqlite3.connect(store.path, isolation_level=None, timeout=0)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE sessions SET sender_name = 'Ana'")
    writer.execute(
        "INSERT INTO messages (session_id, role, text, created_at, meta) "
        "SELECT session_id, role, 'not yet', created_at, meta FROM messages"
    )
    try:
        found = await asyncio.wait_for(store.get_session(session.id), 1)
        messages = await asyncio.wait_for(store.list_messages(session.id, limit=5), 1)
        turns = await asyncio.wait_for(store.claim_turns("w1", 5, lease=60), 1)
    finally:
        writer.execute("COMMIT")
        writer.close()
    assert found is not None and found.sender_name != "Ana"
    assert [m.text for m in messages] == ["hola"]
    assert turns == []
    assert (await store.get_session(session.id)).sender_name == "Ana"
    assert [m.text for m in await store.list_messages(session.id, limit=5)] == ["hola", "not yet"]


async def test_a_write_waits_while_another_process_holds_the_write_lock(sqlite_store):
    """The message path's writes run at once on the event loop's thread when the file is
    free; while another process writes they wait their turn on the store's connection
    instead of failing, and nothing is lost."""
    store = sqlite_store
    holder = sqlite3.connect(store.path, isolation_level=None, timeout=0)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("UPDATE settings SET value = value")
    held = message("5550004", "held-1")
    enqueued = asyncio.create_task(store.enqueue(held, debounce=0, max_wait=0))
    await asyncio.sleep(0)  # the write met the lock once and was handed on
    await asyncio.sleep(0)
    assert not enqueued.done()
    holder.execute("COMMIT")
    holder.close()
    assert await enqueued is not None
    [turn] = await store.claim_turns("w1", 5, lease=60)
    assert [e.message.message_id for e in turn.entries] == ["held-1"]


def wal_bytes(store: SQLiteStore) -> int:
    return Path(f"{store.path}-wal").stat().st_size


async def test_writes_on_the_loop_thread_keep_the_wal_checkpointed(sqlite_store):
    """The inline connection never checkpoints; the store's thread does, every
    CHECKPOINT_EVERY commits, so the WAL stops growing."""
    from nicobot.store.sqlite import CHECKPOINT_EVERY

    assert CHECKPOINT_EVERY <= 1000
    store = sqlite_store

    async def commit(count: int, start: int) -> int:
        for i in range(start, start + count):
            await store.enqueue(message(f"55501{i % 50:02d}", f"wal-{i}"), debounce=0, max_wait=0)
        return wal_bytes(store)

    first = await commit(CHECKPOINT_EVERY, 0)
    after = await commit(4 * CHECKPOINT_EVERY, CHECKPOINT_EVERY)
    assert after < 2 * first, f"the WAL grew from {first} to {after} bytes"
