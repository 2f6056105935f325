"""The plugin inside a nicobot app (``nicobot.testing``'s fixtures): it is loaded from its
entry point, its webhook route authenticates, answers reach the fake Bot API, and the admin
page shows a live Telegram card."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from fake_telegram import SECRET_HEADER, FakeTelegram
from tg_support import SECRET, project_env

NO_AUTH = {"Authorization": ""}
WEBHOOK = "/api/webhooks/telegram"


@pytest.fixture
def nicobot_env(telegram: FakeTelegram) -> dict[str, str]:
    """Configure the channel against the fake; no LLM: the bot answers offline from its
    knowledge, which keeps these tests fast."""
    return project_env(telegram)


async def wait_until(what: str, check: Callable[[], Any], seconds: float = 10.0) -> Any:
    deadline = time.monotonic() + seconds
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
    return result


async def test_the_plugin_is_loaded_from_its_entry_point(nicobot_bot: Any) -> None:
    channel = nicobot_bot.channels.get("telegram")
    assert channel is not None and channel.configured
    assert type(channel).__module__ == "nicobot_telegram.channel"
    assert "telegram" in nicobot_bot.pm.list_name_plugin().__repr__()


async def test_a_message_is_answered_through_telegram(
    nicobot_client: Any, telegram: FakeTelegram
) -> None:
    update = telegram.text_update("What are your opening hours?")
    response = await nicobot_client.post(
        WEBHOOK, json=update, headers={**NO_AUTH, SECRET_HEADER: SECRET}
    )
    assert response.status_code == 200
    assert (await response.get_json())["accepted"] == 1
    [sent] = await wait_until("the reply", lambda: telegram.sent)
    assert sent["chat"]["id"] == 987654321
    again = await nicobot_client.post(
        WEBHOOK, json=update, headers={**NO_AUTH, SECRET_HEADER: SECRET}
    )
    assert (await again.get_json())["duplicates"] == 1  # Telegram's retry: answered once
    sessions = (await (await nicobot_client.get("/api/sessions?channel=telegram")).get_json())[
        "sessions"
    ]
    [session] = [s for s in sessions if s["channel"] == "telegram"]
    assert (session["address"], session["sender_name"]) == ("987654321", "Ana García")
    detail = await (await nicobot_client.get(f"/api/sessions/{session['id']}")).get_json()
    texts = [(m["role"], m["text"]) for m in detail["messages"]]
    assert texts == [("user", "What are your opening hours?"), ("assistant", sent["text"])]


@pytest.mark.parametrize("secret", [None, "", "wrong"])
async def test_a_webhook_without_the_secret_gets_401(
    nicobot_client: Any, telegram: FakeTelegram, secret: str | None
) -> None:
    headers = dict(NO_AUTH)
    if secret is not None:
        headers[SECRET_HEADER] = secret
    response = await nicobot_client.post(WEBHOOK, json=telegram.text_update("hi"), headers=headers)
    assert response.status_code == 401
    assert "X-Telegram-Bot-Api-Secret-Token" in (await response.get_json())["error"]
    await asyncio.sleep(0)
    assert telegram.sent == []


async def test_updates_it_does_not_answer_get_200(nicobot_client: Any) -> None:
    headers = {**NO_AUTH, SECRET_HEADER: SECRET}
    for body in (b"\x00\xff not json", b"[1, 2]", b'{"update_id": 5, "my_chat_member": {}}'):
        response = await nicobot_client.post(WEBHOOK, data=body, headers=headers)
        assert response.status_code == 200
        assert (await response.get_json())["ignored"]


async def test_connect_status_and_disconnect_through_the_api(
    nicobot_client: Any, telegram: FakeTelegram
) -> None:
    connected = await nicobot_client.post("/api/channels/telegram/connect")
    assert connected.status_code == 200
    body = await connected.get_json()
    assert (body["connected"], body["state"], body["account"]) == (
        True,
        "connected",
        "@nico_test_bot",
    )
    assert telegram.webhook is not None
    assert telegram.webhook.url == "https://bot.example.com/api/webhooks/telegram"
    status = await (await nicobot_client.get("/api/channels/telegram/status")).get_json()
    assert status["connected"] is True
    disconnected = await (await nicobot_client.post("/api/channels/telegram/disconnect")).get_json()
    assert disconnected["state"] == "disconnected"
    assert telegram.webhook is None


async def test_a_failed_connect_is_a_readable_502(
    nicobot_client: Any, telegram: FakeTelegram
) -> None:
    telegram.fail("setWebhook", 400, "Bad Request: bad webhook: Failed to resolve host")
    response = await nicobot_client.post("/api/channels/telegram/connect")
    assert response.status_code == 502
    assert (await response.get_json())["error"] == (
        "Telegram: Telegram setWebhook failed (400): "
        "Bad Request: bad webhook: Failed to resolve host"
    )


async def test_the_admin_channels_tab_shows_a_live_telegram_card(nicobot_client: Any) -> None:
    response = await nicobot_client.get("/admin?tab=channels")
    assert response.status_code == 200
    page = await response.get_data(as_text=True)
    cards = re.findall(r'<article class="([^"]*)" data-channel="telegram"[^>]*>', page)
    assert len(cards) == 1
    assert "channel-card" in cards[0].split()
    assert "coming-soon" not in cards[0].split()
    card = page[page.index('data-channel="telegram"') :]
    card = card[: card.index("</article>")]
    assert "<h2>Telegram</h2>" in card
    assert 'data-state="disconnected"' in card  # the fake says: no webhook yet
