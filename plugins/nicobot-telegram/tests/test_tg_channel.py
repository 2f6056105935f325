"""The channel against the fake Bot API: connect, status, disconnect, send, webhooks."""

from __future__ import annotations

import json
import time

import pytest
from nicobot import IncomingMessage, OutgoingMessage, WebhookRejected, WebhookRequest

from fake_telegram import FakeTelegram
from nicobot_telegram import TelegramError
from tg_support import PUBLIC_URL, SECRET, MakeChannel

WEBHOOK_URL = PUBLIC_URL + "/api/webhooks/telegram"


def webhook_request(body: object, secret: str | None = SECRET) -> WebhookRequest:
    headers = {"content-type": "application/json"}
    if secret is not None:
        headers["x-telegram-bot-api-secret-token"] = secret
    raw = json.dumps(body).encode()
    return WebhookRequest("POST", headers, "", {}, raw, body)


async def test_configured_only_with_a_token(make_channel: MakeChannel) -> None:
    assert make_channel().channel.configured
    assert not make_channel(env={"TELEGRAM_BOT_TOKEN": None}).channel.configured


async def test_connect_sets_the_webhook_and_reads_the_account(
    make_channel: MakeChannel, telegram: FakeTelegram
) -> None:
    harness = make_channel()
    status = await harness.channel.connect()
    assert telegram.webhook is not None
    assert telegram.webhook.url == WEBHOOK_URL
    assert telegram.webhook.secret_token == SECRET
    assert telegram.webhook.allowed_updates == ["message"]
    assert (status.connected, status.state, status.account) == (True, "connected", "@nico_test_bot")
    assert status.details == "Telegram sends @nico_test_bot's messages here."
    assert status.to_dict()["webhook_url"] == WEBHOOK_URL
    assert harness.reports == [status]
    assert telegram.methods_called()[:2] == ["setWebhook", "getMe"]


async def test_connect_sends_a_hashed_secret_when_telegram_would_refuse_it(
    make_channel: MakeChannel, telegram: FakeTelegram
) -> None:
    harness = make_channel(env={"TELEGRAM_WEBHOOK_SECRET": "not/allowed by telegram"})
    await harness.channel.connect()
    assert telegram.webhook is not None
    secret = telegram.webhook.secret_token
    assert secret == harness.channel.config.secret_token
    assert secret is not None and len(secret) == 64
    result = await harness.channel.handle_webhook(
        webhook_request(telegram.text_update("hi"), secret)
    )
    assert len(result.messages) == 1


async def test_connect_needs_a_public_url_and_a_secret(make_channel: MakeChannel) -> None:
    with pytest.raises(TelegramError, match=r"server\.public_url"):
        await make_channel(public_url=None).channel.connect()
    with pytest.raises(TelegramError, match="TELEGRAM_WEBHOOK_SECRET"):
        await make_channel(env={"TELEGRAM_WEBHOOK_SECRET": None}).channel.connect()


async def test_connect_surfaces_telegrams_reason() -> None:
    with FakeTelegram(require_https=True) as strict:
        from nicobot import ChannelContext, Settings

        from nicobot_telegram import TelegramChannel

        async def report(status: object) -> None:
            pass

        env = {"TELEGRAM_BOT_TOKEN": strict.token, "TELEGRAM_API_URL": strict.url}
        context = ChannelContext(
            Settings.model_validate({"server": {"public_url": "http://plain.example"}}),
            {**env, "NICOBOT_WEBHOOK_SECRET": SECRET},
            report,
        )
        channel = TelegramChannel(TelegramChannel.load_config({}, context.env), context)
        try:
            with pytest.raises(TelegramError) as caught:
                await channel.connect()
        finally:
            await channel.stop()
    assert str(caught.value) == (
        "Telegram setWebhook failed (400): Bad Request: bad webhook: "
        "An HTTPS URL must be provided for webhook"
    )


async def test_status_before_connecting_and_after_disconnecting(
    make_channel: MakeChannel, telegram: FakeTelegram
) -> None:
    channel = make_channel().channel
    status = await channel.get_status()
    assert (status.connected, status.state, status.account) == (
        False,
        "disconnected",
        "@nico_test_bot",
    )
    assert status.details.startswith("No webhook")
    await channel.connect()
    status = await channel.disconnect()
    assert telegram.webhook is None
    assert "deleteWebhook" in telegram.methods_called()
    assert (status.connected, status.state) == (False, "disconnected")


async def test_status_when_the_webhook_points_elsewhere(
    make_channel: MakeChannel, telegram: FakeTelegram
) -> None:
    await make_channel(public_url="https://other.example").channel.connect()
    status = await make_channel().channel.get_status()
    assert not status.connected
    assert "points elsewhere (https://other.example/api/webhooks/telegram)" in status.details


async def test_status_without_a_public_url(make_channel: MakeChannel) -> None:
    status = await make_channel(public_url=None).channel.get_status()
    assert (status.connected, status.state) == (False, "disconnected")
    assert "server.public_url" in status.details


async def test_status_shows_telegrams_last_delivery_error(
    make_channel: MakeChannel, telegram: FakeTelegram
) -> None:
    channel = make_channel().channel
    await channel.connect()
    telegram.state.last_error_message = "Connection timed out"
    telegram.state.last_error_date = 1735732800
    status = await channel.get_status()
    assert status.connected
    assert status.details == "Telegram's last delivery failed: Connection timed out"
    assert status.extra["last_error"] == "Connection timed out"


async def test_status_with_a_refused_token_or_no_api(
    make_channel: MakeChannel, closed_port: int
) -> None:
    status = await make_channel(env={"TELEGRAM_BOT_TOKEN": "1:revoked"}).channel.get_status()
    assert (status.connected, status.state) == (False, "error")
    assert status.details == "Telegram refused the bot token (Unauthorized): check it."
    unreachable = make_channel(env={"TELEGRAM_API_URL": f"http://127.0.0.1:{closed_port}"})
    status = await unreachable.channel.get_status()
    assert (status.connected, status.state) == (False, "unreachable")
    assert "cannot reach" in status.details


async def test_send_message(make_channel: MakeChannel, telegram: FakeTelegram) -> None:
    channel = make_channel().channel
    sent_id = await channel.send_message(OutgoingMessage("telegram", "987654321", "Hello!"))
    [sent] = telegram.sent
    assert sent["chat"]["id"] == 987654321  # sent as a number, as Telegram's ids are
    assert sent["text"] == "Hello!"
    assert sent_id == str(sent["message_id"])


async def test_a_long_reply_goes_in_parts(
    make_channel: MakeChannel, telegram: FakeTelegram
) -> None:
    channel = make_channel().channel
    text = ("A sentence of a long answer. " * 100 + "\n\n") * 3  # about 8700 characters
    sent_id = await channel.send_message(OutgoingMessage("telegram", "42", text))
    parts = [m["text"] for m in telegram.sent]
    assert len(parts) == 3
    assert all(len(p) <= 4096 for p in parts)
    assert "".join("".join(parts).split()) == "".join(text.split())  # nothing lost
    assert sent_id == str(telegram.sent[-1]["message_id"])


async def test_send_errors_raise_for_the_core_to_retry(
    make_channel: MakeChannel, telegram: FakeTelegram
) -> None:
    telegram.fail("sendMessage", 403, "Forbidden: bot was blocked by the user")
    with pytest.raises(TelegramError, match=r"\(403\): Forbidden: bot was blocked by the user"):
        await make_channel().channel.send_message(OutgoingMessage("telegram", "1", "hi"))


async def test_typing_shows_for_the_given_time(
    make_channel: MakeChannel, telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = make_channel().channel
    await channel.send_typing("987654321", 0)
    assert telegram.state.actions == [{"chat_id": 987654321, "action": "typing"}]
    monkeypatch.setattr("nicobot_telegram.channel.TYPING_REFRESH_SECONDS", 0.05)
    started = time.monotonic()
    await channel.send_typing("987654321", 0.12)  # renewed as Telegram's 5 s run out
    assert time.monotonic() - started >= 0.12
    assert 1 + 2 <= len(telegram.state.actions) <= 1 + 3


async def test_a_typing_failure_is_not_an_error(
    make_channel: MakeChannel, telegram: FakeTelegram
) -> None:
    telegram.fail("sendChatAction", 403, "Forbidden: bot was blocked by the user")
    await make_channel().channel.send_typing("987654321", 30)  # returns at once
    assert telegram.state.actions == []


async def test_webhook_with_the_secret_gives_the_message(
    make_channel: MakeChannel, telegram: FakeTelegram
) -> None:
    channel = make_channel().channel
    result = await channel.handle_webhook(webhook_request(telegram.text_update("hola")))
    [message] = result.messages
    assert isinstance(message, IncomingMessage)
    assert (message.text, message.address, message.sender_name) == (
        "hola",
        "987654321",
        "Ana García",
    )


@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET + "x", "ñandú"])
async def test_webhook_without_the_right_secret_is_rejected(
    make_channel: MakeChannel, telegram: FakeTelegram, secret: str | None
) -> None:
    channel = make_channel().channel
    with pytest.raises(WebhookRejected) as caught:
        await channel.handle_webhook(webhook_request(telegram.text_update("hola"), secret))
    assert caught.value.status == 401


async def test_webhook_with_no_secret_configured_is_rejected(
    make_channel: MakeChannel, telegram: FakeTelegram
) -> None:
    channel = make_channel(env={"TELEGRAM_WEBHOOK_SECRET": None}).channel
    with pytest.raises(WebhookRejected, match="no webhook secret configured"):
        await channel.handle_webhook(webhook_request(telegram.text_update("hola"), ""))


async def test_ignored_updates_are_answered_with_the_reason(make_channel: MakeChannel) -> None:
    channel = make_channel().channel
    result = await channel.handle_webhook(webhook_request({"update_id": 1, "poll": {}}))
    assert result.messages == []
    assert (result.status, result.body) == (
        200,
        {"ok": True, "ignored": "poll updates are not handled"},
    )
    result = await channel.handle_webhook(webhook_request(None))
    assert result.body["ignored"] == "not a Telegram update"


async def test_groups_are_answered_when_allowed(
    make_channel: MakeChannel, telegram: FakeTelegram
) -> None:
    update = telegram.text_update("hola")
    update["message"]["chat"] = {"id": -100777, "title": "Clientes", "type": "supergroup"}
    closed = await make_channel().channel.handle_webhook(webhook_request(update))
    assert closed.body["ignored"] == "supergroup chat"
    opened = await make_channel({"allow_groups": True}).channel.handle_webhook(
        webhook_request(update)
    )
    assert opened.messages[0].address == "-100777"
