"""End to end: a real ``nicobot serve`` process, with the fake Bot API as Telegram.

connect -> Telegram delivers a customer's message to the webhook -> the reply arrives at
Telegram -> the conversation is listed with channel "telegram".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from nicobot.testing import free_port, make_project, wait_until

from fake_telegram import FakeTelegram


def test_a_telegram_message_is_answered_by_a_real_server(
    tmp_path: Path, telegram: FakeTelegram, nicobot_server: Any
) -> None:
    project = make_project(tmp_path / "bot")
    port = free_port()
    server = nicobot_server(
        project,
        {
            "TELEGRAM_BOT_TOKEN": telegram.token,
            "TELEGRAM_API_URL": telegram.url,
            "NICOBOT_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "NICOBOT_CHANNELS__TELEGRAM__TYPING_MAX_SECONDS": "0.2",
        },
        port=port,
    )
    with server.client() as admin:
        connected = admin.post("/api/channels/telegram/connect")
        assert connected.status_code == 200, connected.text
        assert connected.json()["account"] == "@nico_test_bot"
        assert telegram.webhook is not None
        assert telegram.webhook.url == f"{server.url}/api/webhooks/telegram"
        assert telegram.webhook.secret_token  # NICOBOT_WEBHOOK_SECRET from the project's .env

        update = telegram.text_update("What are your opening hours?", chat_id=4242)
        answer = telegram.deliver(update)
        assert answer.status_code == 200, answer.text
        assert answer.json()["accepted"] == 1
        [reply] = telegram.wait_for_sent(1, timeout=20)
        assert reply["chat"]["id"] == 4242
        assert reply["text"].strip()
        assert telegram.state.actions, "no typing indicator before the reply"

        assert telegram.deliver(update).json()["duplicates"] == 1  # a redelivery
        sessions = wait_until(
            "the session",
            lambda: [
                s
                for s in admin.get("/api/sessions").json()["sessions"]
                if s["channel"] == "telegram"
            ],
        )
        [session] = sessions
        assert (session["address"], session["sender_name"]) == ("4242", "Ana García")
        messages = admin.get(f"/api/sessions/{session['id']}").json()["messages"]
        assert [m["role"] for m in messages] == ["user", "assistant"]
        assert messages[1]["text"] == reply["text"]

        status = admin.get("/api/channels/telegram/status").json()
        assert (status["connected"], status["last_error"]) == (True, "")
        stranger = httpx.post(
            f"{server.url}/api/webhooks/telegram", json=telegram.text_update("hi", chat_id=4242)
        )
        assert stranger.status_code == 401
        assert len(telegram.sent) == 1
