"""The ``[channels.telegram]`` settings, merged with the ``TELEGRAM_*`` variables."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from nicobot import ChannelConfig
from pydantic import Field, field_validator

DEFAULT_API_URL = "https://api.telegram.org"

#: Environment variables that override keys of the ``[channels.telegram]`` table.
ENV_KEYS: dict[str, str] = {
    "TELEGRAM_BOT_TOKEN": "bot_token",
    "TELEGRAM_WEBHOOK_SECRET": "webhook_secret",
    "TELEGRAM_API_URL": "api_url",
}
#: The secret when neither the table nor ``TELEGRAM_WEBHOOK_SECRET`` sets one
#: (``nicobot init`` writes it into the project's ``.env``).
FALLBACK_SECRET_ENV = "NICOBOT_WEBHOOK_SECRET"

#: What Telegram accepts as a webhook ``secret_token``.
SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")


class TelegramConfig(ChannelConfig):
    """Settings of the Telegram channel."""

    bot_token: str = Field("", repr=False, description="The token @BotFather gave the bot.")
    webhook_secret: str = Field(
        "", repr=False, description="Secret Telegram sends with every webhook call."
    )
    api_url: str = Field(DEFAULT_API_URL, description="The Bot API server.")
    allow_groups: bool = Field(False, description="Answer in groups too, not only private chats.")
    timeout_seconds: float = Field(15.0, gt=0, le=300, description="Limit for one API call.")

    @field_validator("bot_token", "webhook_secret")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @field_validator("api_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.strip().rstrip("/") or DEFAULT_API_URL

    @property
    def secret_token(self) -> str | None:
        """The secret as Telegram takes it: itself when it only uses the characters
        Telegram allows, otherwise its SHA-256 in hex (both sides compute the same)."""
        if not self.webhook_secret:
            return None
        if SECRET_TOKEN.fullmatch(self.webhook_secret):
            return self.webhook_secret
        return hashlib.sha256(self.webhook_secret.encode()).hexdigest()


def merge_config(table: Mapping[str, Any], env: Mapping[str, str]) -> TelegramConfig:
    """The table, overridden by ``TELEGRAM_*`` variables; the secret falls back last."""
    fallbacks = {"webhook_secret": FALLBACK_SECRET_ENV}
    return TelegramConfig.from_sources(table, env, ENV_KEYS, fallbacks)
