"""Helpers shared by the Telegram plugin's tests (a module of its own: several test
folders may run in one pytest session, each with its own ``conftest``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from nicobot import ChannelStatus

from fake_telegram import FakeTelegram
from nicobot_telegram import TelegramChannel

SECRET = "tg-webhook-secret_123"
PUBLIC_URL = "https://bot.example.com"
#: Variables that would leak a developer's own settings into the tests.
ISOLATED_ENV = (
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_WEBHOOK_SECRET",
    "TELEGRAM_API_URL",
    "NICOBOT_WEBHOOK_SECRET",
    "NICOBOT_PUBLIC_URL",
    "NICOBOT_LOAD_PLUGINS",
)


def project_env(telegram: FakeTelegram, public_url: str = PUBLIC_URL) -> dict[str, str]:
    """``nicobot_env`` entries that configure the channel against the fake.

    They go through nicobot's settings (``NICOBOT_CHANNELS__TELEGRAM__*`` sets keys of
    ``[channels.telegram]``), like a ``nicobot.toml`` table would.
    """
    return {
        "NICOBOT_CHANNELS__TELEGRAM__BOT_TOKEN": telegram.token,
        "NICOBOT_CHANNELS__TELEGRAM__API_URL": telegram.url,
        "NICOBOT_CHANNELS__TELEGRAM__WEBHOOK_SECRET": SECRET,
        "NICOBOT_CHANNELS__TELEGRAM__TYPING_MAX_SECONDS": "0",  # no typing pause
        "NICOBOT_PUBLIC_URL": public_url,
    }


@dataclass
class Harness:
    channel: TelegramChannel
    reports: list[ChannelStatus] = field(default_factory=list)


MakeChannel = Callable[..., Harness]
