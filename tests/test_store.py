"""The SQLite store, on real files."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from datetime import timedelta

import pytest

from nicobot.models import Role, utcnow
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


async def test_the_change_log_keeps_the_latest_ten_thousand(store):
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
    for script in MIGRATIONS[:2]:
        for statement in _statements(script):
            old.execute(statement)
    old.execute("PRAGMA user_version = 2")
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
