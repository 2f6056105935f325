"""The operator inbox's API: replies from the pages, delivery states, search, dashboard,
export and translated errors, through Quart's test client with the fake channel."""

from __future__ import annotations

import csv
import io
import re

from nicobot.testing import FAKE_SECRET

NO_AUTH = {"Authorization": ""}
WEBHOOK = {**NO_AUTH, "X-Fake-Secret": FAKE_SECRET}


async def customer_writes(client, bot, text, message_id, address="5491100000050"):
    payload = {"id": message_id, "address": address, "text": text, "name": "Ana"}
    response = await client.post("/api/webhooks/fake", json=payload, headers=WEBHOOK)
    assert response.status_code == 200
    await bot.pipeline.wait_idle(10)
    [session] = await bot.store.search_sessions(address)
    return session


async def test_an_operator_reply_goes_out_and_pauses_the_bot(
    nicobot_client, nicobot_bot, fake_channel
):
    session = await customer_writes(nicobot_client, nicobot_bot, "hola", "m-1")
    assert len(fake_channel.sent) == 1  # the bot answered
    response = await nicobot_client.post(
        f"/api/sessions/{session.id}/messages", json={"text": "Hola Ana, soy Marta"}
    )
    assert response.status_code == 201
    reply = await response.get_json()
    assert reply["role"] == "operator" and reply["text"] == "Hola Ana, soy Marta"
    assert reply["delivery"]["status"] == "queued"
    assert reply["session"]["paused"] is True
    await nicobot_bot.pipeline.wait_idle(10)
    assert [m.text for m in fake_channel.sent] == [fake_channel.sent[0].text, "Hola Ana, soy Marta"]
    detail = await (await nicobot_client.get(f"/api/sessions/{session.id}")).get_json()
    last = detail["messages"][-1]
    assert (last["id"], last["delivery"]["status"]) == (reply["id"], "sent")
    assert detail["messages"][0]["delivery"] is None  # the customer's own line
    assert detail["messages"][1]["delivery"]["status"] == "sent"  # the bot's reply

    await customer_writes(nicobot_client, nicobot_bot, "gracias", "m-2")
    assert len(fake_channel.sent) == 2  # paused: stored, not answered
    await nicobot_client.post(f"/api/sessions/{session.id}/resume")
    await customer_writes(nicobot_client, nicobot_bot, "otra pregunta", "m-3")
    assert len(fake_channel.sent) == 3


async def test_a_failed_delivery_shows_why_and_can_be_retried(
    nicobot_client, nicobot_bot, fake_channel
):
    nicobot_bot.settings.pipeline.send_attempts = 1
    session = await customer_writes(nicobot_client, nicobot_bot, "hola", "f-1", "5491100000051")
    fake_channel.fail_sends = 1
    reply = await (
        await nicobot_client.post(f"/api/sessions/{session.id}/messages", json={"text": "¿Sigue?"})
    ).get_json()
    await nicobot_bot.pipeline.wait_idle(10)
    detail = await (await nicobot_client.get(f"/api/sessions/{session.id}")).get_json()
    delivery = detail["messages"][-1]["delivery"]
    assert delivery["status"] == "failed"
    assert "fake channel is down" in delivery["error"]
    [outbox_id] = delivery["outbox_ids"]
    retried = await nicobot_client.post(f"/api/outbox/{outbox_id}/retry")
    assert retried.status_code == 200
    await nicobot_bot.pipeline.wait_idle(10)
    detail = await (await nicobot_client.get(f"/api/sessions/{session.id}")).get_json()
    assert detail["messages"][-1]["id"] == reply["id"]
    assert detail["messages"][-1]["delivery"]["status"] == "sent"
    assert fake_channel.sent[-1].text == "¿Sigue?"


async def test_an_operator_reply_in_a_simulated_chat(nicobot_client, nicobot_bot):
    turn = await (
        await nicobot_client.post(
            "/api/chat", json={"phone_number": "5491100000052", "message": "hola"}
        )
    ).get_json()
    response = await nicobot_client.post(
        f"/api/sessions/{turn['session_id']}/messages", json={"text": "Te atiendo yo"}
    )
    assert response.status_code == 201
    body = await response.get_json()
    assert body["delivery"] is None  # shown in the page, nothing to deliver
    assert body["session"]["paused"] is True
    paused = await nicobot_client.post(
        "/api/chat", json={"session_id": turn["session_id"], "message": "¿hola?"}
    )
    assert paused.status_code == 409


async def test_operator_reply_bad_input(nicobot_client, nicobot_bot):
    turn = await (
        await nicobot_client.post(
            "/api/chat", json={"phone_number": "5491100000053", "message": "x"}
        )
    ).get_json()
    url = f"/api/sessions/{turn['session_id']}/messages"
    for body, status in (
        ({}, 400),
        ({"text": "   "}, 400),
        ({"text": 5}, 400),
        ({"text": "x" * 4001}, 400),
        ([], 400),
    ):
        response = await nicobot_client.post(url, json=body)
        assert response.status_code == status, body
        assert "error" in await response.get_json()
    missing = await nicobot_client.post("/api/sessions/nope/messages", json={"text": "hola"})
    assert missing.status_code == 404
    no_auth = await nicobot_client.post(url, json={"text": "hola"}, headers=NO_AUTH)
    assert no_auth.status_code == 401


async def test_search_over_names_numbers_and_text(nicobot_client):
    for phone, name, text in (
        ("5491100000054", "Ana Pérez", "hola"),
        ("5491100000055", "Leo", "¿hacen envíos?"),
    ):
        await nicobot_client.post(
            "/api/chat", json={"phone_number": phone, "sender_name": name, "message": text}
        )

    async def names(query):
        listing = await (
            await nicobot_client.get("/api/sessions", query_string={"q": query})
        ).get_json()
        return [s["sender_name"] for s in listing["sessions"]]

    assert await names("perez") == ["Ana Pérez"]
    assert await names("ENVIOS") == ["Leo"]
    assert await names("+54 9 11 0000 0055") == ["Leo"]
    assert sorted(await names("")) == ["Ana Pérez", "Leo"]
    too_long = await nicobot_client.get("/api/sessions", query_string={"q": "x" * 201})
    assert too_long.status_code == 400


async def test_dashboard_figures_are_the_stores(nicobot_client, nicobot_bot, fake_channel):
    session = await customer_writes(nicobot_client, nicobot_bot, "¿tienen estacionamiento?", "d-1")
    await nicobot_client.post(f"/api/sessions/{session.id}/messages", json={"text": "Sí"})
    await nicobot_bot.pipeline.wait_idle(10)
    figures = await (await nicobot_client.get("/api/dashboard?days=7")).get_json()
    store = nicobot_bot.store
    expected = (await store.dashboard(7, nicobot_bot.settings.bot.timezone)).to_dict()
    assert figures == expected
    counts = dict(
        await (
            await store.db.execute("SELECT role, COUNT(*) FROM messages GROUP BY role")
        ).fetchall()
    )
    assert figures["customer_messages"] == counts["user"]
    assert figures["bot_replies"] == counts["assistant"]
    assert figures["operator_replies"] == counts["operator"] == 1
    assert figures["messages"] == sum(counts.values())
    assert figures["handoffs"] == 1
    [question] = figures["unanswered"]
    assert question["text"] == "¿tienen estacionamiento?"
    page = await (await nicobot_client.get("/admin?tab=dashboard&days=7")).get_data(as_text=True)
    for key in ("messages", "conversations", "bot_replies", "operator_replies", "handoffs"):
        shown = re.search(rf'data-figure="{key}">([^<]+)<', page)
        assert shown, key
        assert shown[1].strip() == str(figures[key])
    assert "¿tienen estacionamiento?" in page
    assert (await nicobot_client.get("/api/dashboard?days=3")).status_code == 400


async def test_export_as_json_and_csv(nicobot_client):
    await nicobot_client.post(
        "/api/chat",
        json={"phone_number": "5491100000056", "sender_name": "Ana", "message": "hola, qué tal"},
    )
    as_json = await nicobot_client.get("/api/export?format=json")
    assert as_json.status_code == 200
    assert "attachment" in as_json.headers["Content-Disposition"]
    [conversation] = await as_json.get_json()
    assert conversation["messages"][0]["text"] == "hola, qué tal"
    as_csv = await nicobot_client.get("/api/export?format=csv")
    rows = list(csv.DictReader(io.StringIO(await as_csv.get_data(as_text=True))))
    assert rows[0]["text"] == "hola, qué tal" and rows[0]["sender_name"] == "Ana"
    assert len(rows) == len(conversation["messages"])
    assert (await nicobot_client.get("/api/export?format=xml")).status_code == 400


async def test_errors_reach_spanish_pages_in_spanish(nicobot_app):
    client = nicobot_app.test_client()
    page = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', await page.get_data(as_text=True))[1]
    await client.post("/language", form={"lang": "es", "csrf_token": token})
    await client.post("/login", form={"password": "test-password", "csrf_token": token})
    chat = await (await client.get("/")).get_data(as_text=True)
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', chat)[1]
    headers = {"X-CSRF-Token": csrf}
    missing = await client.post("/api/sessions/nope/messages", json={"text": "x"}, headers=headers)
    assert (await missing.get_json())["error"] == "no existe esa conversación"
    bad = await client.get("/api/sessions?limit=abc")
    assert (await bad.get_json())["error"] == "'limit' debe ser un número entero"
    bearer = {"Authorization": f"Bearer {nicobot_app.config['NICOBOT_ADMIN_PASSWORD']}"}
    script = await client.get("/api/sessions?limit=abc", headers=bearer)
    assert (await script.get_json())["error"] == "'limit' must be a whole number"
