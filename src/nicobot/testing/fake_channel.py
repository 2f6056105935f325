"""A fake channel for tests: records what the bot sends and takes JSON webhooks."""

from __future__ import annotations

import asyncio
import hmac
from datetime import datetime
from typing import Any

from ..channels import (
    Channel,
    ChannelStatus,
    SentCheck,
    WebhookRejected,
    WebhookRequest,
    WebhookResult,
)
from ..hookspecs import hookimpl
from ..models import IncomingMessage, OutgoingMessage

FAKE_SECRET = "fake-secret"


class FakeChannel(Channel):
    """``POST /api/webhooks/fake`` with header ``X-Fake-Secret`` and a body
    ``{"id": ..., "address": ..., "text": ..., "name"?: ..., "from_business"?: bool}``."""

    name = "fake"
    label = "Fake"
    webhook_slug = "fake"
    supports_connect = True
    supports_disconnect = True

    sent: list[OutgoingMessage]
    fail_sends: int

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent = []
        self.fail_sends = 0
        #: Raised by the next sends, one each, before ``fail_sends`` counts.
        self.failures: list[Exception] = []
        #: What :meth:`find_sent` answers (an exception is raised); None: the default.
        self.sent_check: SentCheck | Exception | None = None
        self.checks: list[tuple[OutgoingMessage, datetime]] = []
        self.connected = False
        self._sent_changed = asyncio.Condition()

    async def get_status(self) -> ChannelStatus:
        state = "connected" if self.connected else "disconnected"
        return ChannelStatus(self.connected, state, "", account="fake" if self.connected else None)

    async def connect(self) -> ChannelStatus:
        self.connected = True
        status = await self.get_status()
        await self.context.report_status(status)
        return status

    async def disconnect(self) -> ChannelStatus:
        self.connected = False
        return await self.get_status()

    async def send_message(self, message: OutgoingMessage) -> str | None:
        if self.failures:
            raise self.failures.pop(0)
        if self.fail_sends > 0:
            self.fail_sends -= 1
            raise ConnectionError("fake channel is down")
        self.sent.append(message)
        async with self._sent_changed:
            self._sent_changed.notify_all()
        return f"sent-{len(self.sent)}"

    async def find_sent(self, message: OutgoingMessage, since: datetime) -> SentCheck:
        self.checks.append((message, since))
        if isinstance(self.sent_check, Exception):
            raise self.sent_check
        if self.sent_check is None:
            return await super().find_sent(message, since)
        return self.sent_check

    async def wait_for_sent(self, count: int) -> list[OutgoingMessage]:
        """Wait until at least ``count`` messages were sent (bound it with asyncio.timeout)."""
        async with self._sent_changed:
            await self._sent_changed.wait_for(lambda: len(self.sent) >= count)
        return list(self.sent)

    async def handle_webhook(self, request: WebhookRequest) -> WebhookResult:
        secret = request.headers.get("x-fake-secret", "")
        if not hmac.compare_digest(secret, FAKE_SECRET):
            raise WebhookRejected("bad or missing X-Fake-Secret")
        body = request.json
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            return WebhookResult(body={"ok": True, "ignored": "not a message"})
        message = IncomingMessage(
            channel=self.name,
            address=str(body.get("address", "")),
            text=body["text"],
            message_id=str(body.get("id", "")),
            sender_name=body.get("name"),
            from_business=bool(body.get("from_business")),
            raw=body,
        )
        return WebhookResult(messages=[message])


class FakeChannelPlugin:
    """Register with ``pm.register(FakeChannelPlugin())`` to add the fake channel."""

    @hookimpl
    def register_channels(self) -> list[type[Channel]]:
        return [FakeChannel]
