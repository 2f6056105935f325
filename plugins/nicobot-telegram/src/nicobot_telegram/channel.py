"""The Telegram channel: a bot on the Bot API, reached by webhook."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from nicobot import (
    Channel,
    ChannelConfig,
    ChannelContext,
    ChannelStatus,
    OutgoingMessage,
    WebhookRejected,
    WebhookRequest,
    WebhookResult,
)

from .client import TelegramClient, TelegramError
from .config import TelegramConfig, merge_config
from .parsing import MAX_MESSAGE_LENGTH, Ignored, parse_update, split_text

log = logging.getLogger("nicobot.telegram")

WEBHOOK_PATH = "/api/webhooks/telegram"
SECRET_HEADER = "x-telegram-bot-api-secret-token"
#: The updates nicobot asks Telegram for.
ALLOWED_UPDATES: tuple[str, ...] = ("message",)
#: Telegram shows "typing..." for 5 s at most: a longer pause sends it again.
TYPING_REFRESH_SECONDS = 4.5

NO_PUBLIC_URL = (
    "set server.public_url (NICOBOT_PUBLIC_URL) to the HTTPS address at which Telegram "
    "reaches this server"
)
NO_SECRET = (
    "set TELEGRAM_WEBHOOK_SECRET (or NICOBOT_WEBHOOK_SECRET) so that nicobot can tell "
    "Telegram's calls from anyone else's"
)


class TelegramChannel(Channel):
    """A Telegram bot: Telegram posts updates to ``/api/webhooks/telegram`` with the
    secret in ``X-Telegram-Bot-Api-Secret-Token``; replies go out with ``sendMessage``."""

    name = "telegram"
    label = "Telegram"
    webhook_slug = "telegram"
    config_model: ClassVar[type[ChannelConfig]] = TelegramConfig
    supports_connect = True
    supports_disconnect = True
    supports_typing = True
    max_message_length = MAX_MESSAGE_LENGTH

    config: TelegramConfig

    def __init__(self, config: ChannelConfig, context: ChannelContext) -> None:
        super().__init__(config, context)
        self._client: TelegramClient | None = None
        self._account: str | None = None

    @classmethod
    def load_config(cls, table: Mapping[str, Any], env: Mapping[str, str]) -> TelegramConfig:
        return merge_config(table, env)

    @property
    def configured(self) -> bool:
        return bool(self.config.bot_token)

    @property
    def webhook_url(self) -> str | None:
        """Where Telegram must post updates; None until ``server.public_url`` is set."""
        public = self.context.settings.server.public_url
        return f"{public.rstrip('/')}{WEBHOOK_PATH}" if public else None

    @property
    def client(self) -> TelegramClient:
        if self._client is None:
            self._client = TelegramClient(
                self.config.api_url, self.config.bot_token, timeout=self.config.timeout_seconds
            )
        return self._client

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # webhooks

    async def handle_webhook(self, request: WebhookRequest) -> WebhookResult:
        secret = self.config.secret_token
        if secret is None:
            raise WebhookRejected(f"no webhook secret configured: {NO_SECRET}")
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            raise WebhookRejected("bad or missing X-Telegram-Bot-Api-Secret-Token")
        parsed = parse_update(request.json, allow_groups=self.config.allow_groups)
        if isinstance(parsed, Ignored):
            log.debug("ignored a Telegram update: %s", parsed.reason)
            return WebhookResult(body={"ok": True, "ignored": parsed.reason})
        return WebhookResult(messages=[parsed])

    # connection

    async def connect(self) -> ChannelStatus:
        """Point the bot's webhook here (``setWebhook``) and check the bot (``getMe``)."""
        url = self.webhook_url
        if url is None:
            raise TelegramError(NO_PUBLIC_URL, method="setWebhook")
        secret = self.config.secret_token
        if secret is None:
            raise TelegramError(NO_SECRET, method="setWebhook")
        await self.client.set_webhook(url, secret_token=secret, allowed_updates=ALLOWED_UPDATES)
        await self._me()
        status = await self.get_status()
        await self.context.report_status(status)
        return status

    async def disconnect(self) -> ChannelStatus:
        """Stop Telegram's deliveries (``deleteWebhook``)."""
        await self.client.delete_webhook()
        status = await self.get_status()
        await self.context.report_status(status)
        return status

    async def _me(self) -> str:
        if self._account is None:
            me = await self.client.get_me()
            username = me.get("username")
            self._account = f"@{username}" if username else str(me.get("first_name") or "bot")
        return self._account

    async def get_status(self) -> ChannelStatus:
        try:
            account = await self._me()
            info = await self.client.get_webhook_info()
        except TelegramError as exc:
            if exc.unauthorized:
                details = f"Telegram refused the bot token ({exc.description}): check it."
                return ChannelStatus(False, "error", details)
            state = "unreachable" if exc.unreachable else "error"
            return ChannelStatus(False, state, str(exc))
        url = info.get("url") or ""
        ours = self.webhook_url
        connected = bool(url) and url == ours
        error = info.get("last_error_message") or ""
        extra: dict[str, Any] = {
            "webhook_url": url,
            "pending_update_count": info.get("pending_update_count", 0),
            "last_error": error,
        }
        if connected:
            details = (
                f"Telegram's last delivery failed: {error}"
                if error
                else f"Telegram sends {account}'s messages here."
            )
        elif ours is None:
            details = f"Not connected: {NO_PUBLIC_URL}."
        elif url:
            details = f"The bot's webhook points elsewhere ({url}): connect to point it here."
        else:
            details = "No webhook: connect to have Telegram send the bot's messages here."
        state = "connected" if connected else "disconnected"
        return ChannelStatus(connected, state, details, account=account, extra=extra)

    # sending

    @staticmethod
    def _chat_id(address: str) -> int | str:
        try:
            return int(address)
        except ValueError:
            return address  # an @channelusername

    async def send_message(self, message: OutgoingMessage) -> str | None:
        """``sendMessage``, in parts of at most 4096 characters; the last part's id.

        The core already splits long replies at ``max_message_length``; this split is
        for what it cannot know, such as Telegram counting emoji as two characters."""
        chat_id = self._chat_id(message.address)
        sent_id: str | None = None
        for part in split_text(message.text):
            result = await self.client.send_message(chat_id, part)
            sent_id = str(result.get("message_id", "")) or None
        return sent_id

    async def send_typing(self, address: str, seconds: float) -> None:
        """``sendChatAction typing``, then wait ``seconds`` (renewing it every 4.5 s) so
        the reply comes after a human-like pause. Failures are logged, never raised."""
        chat_id = self._chat_id(address)
        deadline = time.monotonic() + seconds
        while True:
            try:
                await self.client.send_chat_action(chat_id, "typing")
            except TelegramError as exc:
                log.info("could not show typing in Telegram chat %s: %s", address, exc)
                return
            left = deadline - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(left, TYPING_REFRESH_SECONDS))
            if time.monotonic() >= deadline:
                return
