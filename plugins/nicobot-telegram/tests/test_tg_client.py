"""The Bot API client and the configuration, against the fake server."""

from __future__ import annotations

import logging

import pytest

from fake_telegram import FakeTelegram
from nicobot_telegram import TelegramClient, TelegramConfig, TelegramError
from nicobot_telegram.config import DEFAULT_API_URL, merge_config


async def test_a_call_returns_the_result(telegram: FakeTelegram) -> None:
    async with TelegramClient(telegram.url, telegram.token) as client:
        me = await client.get_me()
    assert me["username"] == "nico_test_bot"
    assert me["is_bot"] is True


async def test_a_wrong_token_is_one_readable_error(telegram: FakeTelegram) -> None:
    async with TelegramClient(telegram.url, "111:wrong-token") as client:
        with pytest.raises(TelegramError) as caught:
            await client.get_me()
    error = caught.value
    assert (error.error_code, error.description, error.method) == (401, "Unauthorized", "getMe")
    assert error.unauthorized and not error.unreachable
    assert str(error) == "Telegram getMe failed (401): Unauthorized"


async def test_telegram_errors_keep_code_and_description(telegram: FakeTelegram) -> None:
    telegram.fail("sendMessage", 403, "Forbidden: bot was blocked by the user")
    async with TelegramClient(telegram.url, telegram.token) as client:
        with pytest.raises(TelegramError, match="blocked by the user") as caught:
            await client.send_message(1, "hi")
        assert caught.value.error_code == 403
        sent = await client.send_message(1, "hi again")  # the failure was for one call
    assert sent["text"] == "hi again"


async def test_unknown_methods_are_404(telegram: FakeTelegram) -> None:
    async with TelegramClient(telegram.url, telegram.token) as client:
        with pytest.raises(TelegramError) as caught:
            await client.call("noSuchMethod")
    assert (caught.value.error_code, caught.value.description) == (404, "Not Found")


async def test_network_errors_are_telegram_errors_without_the_token(closed_port: int) -> None:
    token = "999:secret-token-value"
    url = f"http://127.0.0.1:{closed_port}"
    async with TelegramClient(url, token, timeout=2) as client:
        with pytest.raises(TelegramError) as caught:
            await client.get_webhook_info()
    assert caught.value.unreachable
    assert str(caught.value).startswith(f"Telegram getWebhookInfo failed: cannot reach {url}")
    assert token not in str(caught.value)


async def test_httpx_log_lines_do_not_show_the_token(
    telegram: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="httpx")
    async with TelegramClient(telegram.url, telegram.token) as client:
        await client.get_me()
    lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert lines and all(telegram.token not in line for line in lines)
    assert any("/bot<token>/getMe" in line for line in lines)


def test_environment_wins_over_the_table() -> None:
    config = merge_config(
        {"bot_token": "from-table", "api_url": "http://table/", "allow_groups": True},
        {"TELEGRAM_BOT_TOKEN": " from-env ", "TELEGRAM_API_URL": ""},
    )
    assert config.bot_token == "from-env"
    assert config.api_url == "http://table"
    assert config.allow_groups is True


def test_the_secret_falls_back_on_nicobot_webhook_secret() -> None:
    env = {"NICOBOT_WEBHOOK_SECRET": "shared"}
    assert merge_config({}, env).webhook_secret == "shared"
    assert merge_config({"webhook_secret": "table"}, env).webhook_secret == "table"
    both = {**env, "TELEGRAM_WEBHOOK_SECRET": "own"}
    assert merge_config({"webhook_secret": "table"}, both).webhook_secret == "own"
    assert merge_config({}, {}).webhook_secret == ""
    assert merge_config({}, {}).secret_token is None


def test_defaults_and_the_secret_telegram_accepts() -> None:
    config = TelegramConfig.model_validate({})
    assert (config.bot_token, config.api_url, config.allow_groups) == ("", DEFAULT_API_URL, False)
    assert TelegramConfig.model_validate({"webhook_secret": "Ab_9-z"}).secret_token == "Ab_9-z"
    hashed = TelegramConfig.model_validate({"webhook_secret": "has spaces & dots."}).secret_token
    assert hashed is not None and len(hashed) == 64 and hashed.isalnum()
    assert TelegramConfig.model_validate({"webhook_secret": "x" * 257}).secret_token != "x" * 257
