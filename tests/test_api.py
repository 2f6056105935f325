"""The JSON API and the pages' access rules, through Quart's test client."""

from __future__ import annotations

import asyncio
import re

from nicobot.testing import FAKE_SECRET, FakeLLM

NO_AUTH = {"Authorization": ""}


async def test_health_needs_no_login(nicobot_client):
    response = await nicobot_client.get("/healthz", headers=NO_AUTH)
    assert response.status_code == 200
    assert (await response.get_json()) == {"status": "ok"}
    ready = await nicobot_client.get("/readyz", headers=NO_AUTH)
    assert ready.status_code == 200


async def test_api_and_pages_need_the_admin(nicobot_client):
    response = await nicobot_client.get("/api/sessions", headers=NO_AUTH)
    assert response.status_code == 401
    assert "error" in await response.get_json()
    wrong = await nicobot_client.get("/api/sessions", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    page = await nicobot_client.get("/admin", headers=NO_AUTH)
    assert page.status_code == 302
    assert page.headers["Location"].startswith("/login")


async def test_simulator_chat_answers_offline_and_is_listed(nicobot_client):
    response = await nicobot_client.post(
        "/api/chat",
        json={"phone_number": "+54 9 11 0000-0001", "sender_name": "Ana", "message": "hola"},
    )
    assert response.status_code == 200
    turn = await response.get_json()
    assert turn["reply"].strip()
    assert turn["mode"] == "offline"
    listing = await (await nicobot_client.get("/api/sessions")).get_json()
    [session] = listing["sessions"]
    assert session["id"] == turn["session_id"]
    assert session["channel"] == "simulator"
    assert session["phone_number"] == "5491100000001"
    assert session["sender_name"] == "Ana"
    assert session["last_message"] == turn["reply"]
    detail = await (await nicobot_client.get(f"/api/sessions/{session['id']}")).get_json()
    assert [m["role"] for m in detail["messages"]] == ["user", "assistant"]
    assert detail["messages"][0]["text"] == "hola"


async def test_simulator_continues_a_session_with_context(nicobot_client, nicobot_bot):
    first = await (
        await nicobot_client.post(
            "/api/chat",
            json={
                "phone_number": "5491100000002",
                "message": "hola",
                "prompt_context": "VIP customer",
            },
        )
    ).get_json()
    again = await (
        await nicobot_client.post(
            "/api/chat", json={"session_id": first["session_id"], "message": "sigo acá"}
        )
    ).get_json()
    assert again["session_id"] == first["session_id"]
    session = await nicobot_bot.store.get_session(first["session_id"])
    assert session.prompt_context == "VIP customer"
    messages = await nicobot_bot.store.list_messages(session.id)
    assert len(messages) == 4


async def test_bad_input_gets_a_json_400(nicobot_client):
    cases = [
        ({"data": b"not json", "headers": {"Content-Type": "application/json"}}, "JSON object"),
        ({"json": ["a list"]}, "JSON object"),
        ({"json": {"phone_number": "5491100000001"}}, "'message' is required"),
        ({"json": {"phone_number": "abc", "message": "hola"}}, "phone_number"),
        ({"json": {"message": "hola"}}, "'phone_number' is required"),
        ({"json": {"phone_number": "5491100000001", "message": 42}}, "must be a string"),
        ({"json": {"phone_number": "5491100000001", "message": "x" * 5000}}, "longer than"),
    ]
    for kwargs, expected in cases:
        response = await nicobot_client.post("/api/chat", **kwargs)
        assert response.status_code == 400, kwargs
        assert expected in (await response.get_json())["error"]
    missing = await nicobot_client.post("/api/chat", json={"session_id": "nope", "message": "hola"})
    assert missing.status_code == 404
    bad_limit = await nicobot_client.get("/api/sessions?limit=abc")
    assert bad_limit.status_code == 400
    unknown = await nicobot_client.get("/api/nothing-here")
    assert unknown.status_code == 404
    assert "error" in await unknown.get_json()


async def test_delete_session(nicobot_client):
    turn = await (
        await nicobot_client.post(
            "/api/chat", json={"phone_number": "5491100000003", "message": "hi"}
        )
    ).get_json()
    deleted = await nicobot_client.delete(f"/api/sessions/{turn['session_id']}")
    assert deleted.status_code == 200
    assert (await nicobot_client.get(f"/api/sessions/{turn['session_id']}")).status_code == 404
    again = await nicobot_client.delete(f"/api/sessions/{turn['session_id']}")
    assert again.status_code == 404


async def test_prompt_edits_persist_and_reach_the_llm(
    nicobot_client, nicobot_bot, fake_llm: FakeLLM
):
    nicobot_bot.settings.llm.model = "openai/fake-model"
    nicobot_bot.settings.llm.api_base = fake_llm.api_base
    nicobot_bot.settings.llm.api_key = "fake"
    nicobot_bot.agent._offline_decided = False
    response = await nicobot_client.put(
        "/api/prompt", json={"system_prompt": "You are {name}, a pirate for {business}."}
    )
    assert response.status_code == 200
    assert (await response.get_json())["edited"] == ["system_prompt"]
    assert await nicobot_bot.store.get_setting("bot.prompt")
    await nicobot_client.post("/api/chat", json={"phone_number": "5491100000004", "message": "hi"})
    assert fake_llm.last_messages()[0] == {
        "role": "system",
        "content": "You are Nico, a pirate for Test Shop.",
    }
    bad = await nicobot_client.put("/api/prompt", json={"colour": "red"})
    assert bad.status_code == 400


async def test_login_page_sets_a_session_and_csrf_protects_writes(nicobot_app):
    client = nicobot_app.test_client()
    page = await client.get("/login")
    assert page.status_code == 200
    token = re.search(r'name="csrf_token" value="([^"]+)"', await page.get_data(as_text=True))[1]
    wrong = await client.post("/login", form={"password": "nope", "csrf_token": token})
    assert wrong.status_code == 401
    no_csrf = await client.post("/login", form={"password": "test-password"})
    assert no_csrf.status_code == 401
    ok = await client.post("/login", form={"password": "test-password", "csrf_token": token})
    assert ok.status_code == 302
    assert (await client.get("/api/sessions")).status_code == 200
    chat = await client.get("/")
    assert chat.status_code == 200
    page_token = re.search(
        r'name="csrf-token" content="([^"]+)"', await chat.get_data(as_text=True)
    )[1]
    body = {"phone_number": "5491100000005", "message": "hola"}
    forged = await client.post("/api/chat", json=body)
    assert forged.status_code == 403
    sent = await client.post("/api/chat", json=body, headers={"X-CSRF-Token": page_token})
    assert sent.status_code == 200


async def test_login_redirect_stays_on_this_site(nicobot_app):
    client = nicobot_app.test_client()
    page = await client.get("/login?next=https://evil.example/x")
    token = re.search(r'name="csrf_token" value="([^"]+)"', await page.get_data(as_text=True))[1]
    response = await client.post(
        "/login?next=https://evil.example/x",
        form={"password": "test-password", "csrf_token": token},
    )
    assert response.headers["Location"] == "/"


async def test_user_text_is_escaped_in_pages(nicobot_client):
    evil = "<script>alert('x')</script>"
    turn = await (
        await nicobot_client.post(
            "/api/chat",
            json={"phone_number": "5491100000006", "sender_name": evil, "message": evil},
        )
    ).get_json()
    page = await nicobot_client.get(f"/?session={turn['session_id']}")
    html = await page.get_data(as_text=True)
    assert evil not in html
    assert "\\u003cscript\\u003e" in html


async def test_channels_api_with_the_fake_channel(nicobot_client, fake_channel):
    listing = await (await nicobot_client.get("/api/channels")).get_json()
    names = {c["name"] for c in listing["channels"]}
    assert {"simulator", "fake"} <= names
    status = await (await nicobot_client.get("/api/channels/fake/status")).get_json()
    assert status["connected"] is False
    connected = await (await nicobot_client.post("/api/channels/fake/connect")).get_json()
    assert connected["connected"] is True
    assert (await nicobot_client.get("/api/channels/nope/status")).status_code == 404


async def test_webhook_needs_its_secret_and_answers_once(nicobot_client, nicobot_bot, fake_channel):
    payload = {"id": "m-1", "address": "5491100000007", "text": "hola", "name": "Leo"}
    denied = await nicobot_client.post("/api/webhooks/fake", json=payload, headers=NO_AUTH)
    assert denied.status_code == 401
    headers = {**NO_AUTH, "X-Fake-Secret": FAKE_SECRET}
    responses = await asyncio.gather(
        *[
            nicobot_client.post("/api/webhooks/fake", json=payload, headers=headers)
            for _ in range(5)
        ]
    )
    assert all(r.status_code == 200 for r in responses)
    bodies = [await r.get_json() for r in responses]
    assert sum(b["accepted"] for b in bodies) == 1
    assert sum(b["duplicates"] for b in bodies) == 4
    await nicobot_bot.pipeline.wait_idle(10)
    assert [m.address for m in fake_channel.sent] == ["5491100000007"]
    garbage = await nicobot_client.post("/api/webhooks/fake", data=b"\x00\xff", headers=headers)
    assert garbage.status_code == 200
    unknown = await nicobot_client.post("/api/webhooks/nobody", json={}, headers=NO_AUTH)
    assert unknown.status_code == 404


async def test_business_messages_are_stored_but_not_answered(
    nicobot_client, nicobot_bot, fake_channel
):
    headers = {**NO_AUTH, "X-Fake-Secret": FAKE_SECRET}
    payload = {
        "id": "op-1",
        "address": "5491100000008",
        "text": "Hola, soy Marta",
        "from_business": True,
    }
    await nicobot_client.post("/api/webhooks/fake", json=payload, headers=headers)
    await nicobot_bot.pipeline.wait_idle(10)
    assert fake_channel.sent == []
    [session] = await nicobot_bot.store.list_sessions(channel="fake")
    [message] = await nicobot_bot.store.list_messages(session.id)
    assert message.role.value == "operator"


async def test_send_failures_are_retried(nicobot_client, nicobot_bot, fake_channel):
    nicobot_bot.settings.pipeline.send_backoff_seconds = 0.01
    fake_channel.fail_sends = 2
    headers = {**NO_AUTH, "X-Fake-Secret": FAKE_SECRET}
    payload = {"id": "m-retry", "address": "5491100000009", "text": "hola"}
    await nicobot_client.post("/api/webhooks/fake", json=payload, headers=headers)
    await nicobot_bot.pipeline.wait_idle(10)
    assert len(fake_channel.sent) == 1
    assert fake_channel.fail_sends == 0
