"""A small async client for the Telegram Bot API methods nicobot needs."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import httpx

USER_AGENT = "nicobot-telegram"
#: The part of a Bot API URL that holds the token: ``/bot<token>/``.
TOKEN_IN_URL = re.compile(r"/bot[^/\s]+/")


class TelegramError(Exception):
    """A failed Bot API call. ``error_code`` is Telegram's (its HTTP status), 0 when
    Telegram was not reached; ``description`` Telegram's reason, for people."""

    def __init__(
        self,
        description: str,
        *,
        error_code: int = 0,
        method: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        self.description = description
        self.error_code = error_code
        self.method = method
        self.retry_after = retry_after
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"Telegram {self.method}" if self.method else "Telegram"
        if self.error_code:
            return f"{where} failed ({self.error_code}): {self.description}"
        return f"{where} failed: {self.description}"

    @property
    def unreachable(self) -> bool:
        return self.error_code == 0

    @property
    def unauthorized(self) -> bool:
        """The token is wrong or was revoked (Telegram answers 401, or 404 for a
        token that is not even shaped like one)."""
        return self.error_code in (401, 404)


class _RedactToken(logging.Filter):
    """Keeps bot tokens out of httpx's request log lines (they are in the URL)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "/bot" in message:
            record.msg = TOKEN_IN_URL.sub("/bot<token>/", message)
            record.args = ()
        return True


_httpx_log = logging.getLogger("httpx")
if not any(isinstance(f, _RedactToken) for f in _httpx_log.filters):
    _httpx_log.addFilter(_RedactToken())


class TelegramClient:
    """One connection pool to one Bot API server for one bot. Every call has a
    timeout and raises :class:`TelegramError` on any failure, network errors included."""

    def __init__(self, api_url: str, token: str, *, timeout: float = 15.0) -> None:
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self._token = token
        self._http = httpx.AsyncClient(
            base_url=f"{self.api_url}/bot{token}/",
            headers={"user-agent": USER_AGENT},
            timeout=httpx.Timeout(timeout),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> TelegramClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "<token>") if self._token else text

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """Call ``method`` with ``params`` (sent as JSON); return Telegram's ``result``."""
        try:
            response = await self._http.post(method, json=params or {})
        except httpx.TimeoutException:
            raise TelegramError(
                f"no answer from {self.api_url} within {self.timeout:g} s", method=method
            ) from None
        except httpx.HTTPError as exc:
            reason = self._redact(str(exc)) or type(exc).__name__
            raise TelegramError(f"cannot reach {self.api_url}: {reason}", method=method) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("ok"), bool):
            raise TelegramError(
                f"unexpected answer from {self.api_url} (HTTP {response.status_code})",
                error_code=response.status_code,
                method=method,
            )
        if not body["ok"]:
            code = body.get("error_code")
            description = body.get("description")
            parameters = body.get("parameters")
            retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
            raise TelegramError(
                description if isinstance(description, str) and description else "unknown error",
                error_code=code if isinstance(code, int) else response.status_code,
                method=method,
                retry_after=retry_after if isinstance(retry_after, int) else None,
            )
        return body.get("result")

    async def get_me(self) -> dict[str, Any]:
        return _object(await self.call("getMe"), "getMe")

    async def get_webhook_info(self) -> dict[str, Any]:
        return _object(await self.call("getWebhookInfo"), "getWebhookInfo")

    async def set_webhook(
        self, url: str, *, secret_token: str, allowed_updates: Sequence[str]
    ) -> None:
        await self.call(
            "setWebhook",
            {"url": url, "secret_token": secret_token, "allowed_updates": list(allowed_updates)},
        )

    async def delete_webhook(self) -> None:
        await self.call("deleteWebhook")

    async def send_message(self, chat_id: int | str, text: str) -> dict[str, Any]:
        return _object(
            await self.call("sendMessage", {"chat_id": chat_id, "text": text}), "sendMessage"
        )

    async def send_chat_action(self, chat_id: int | str, action: str = "typing") -> None:
        await self.call("sendChatAction", {"chat_id": chat_id, "action": action})


def _object(result: Any, method: str) -> dict[str, Any]:
    if not isinstance(result, dict):
        raise TelegramError(
            "unexpected answer (no object in result)", error_code=200, method=method
        )
    return result
