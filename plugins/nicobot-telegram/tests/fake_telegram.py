"""A fake Telegram Bot API server for tests: real HTTP on 127.0.0.1.

It answers ``/bot<token>/<method>`` in the Bot API's JSON shapes (``{"ok": true,
"result": ...}`` or ``{"ok": false, "error_code": ..., "description": ...}``), records what
the bot sends, and delivers updates to the bot's webhook with the secret header, as
Telegram does. Only the methods nicobot uses are implemented.

    with FakeTelegram() as telegram:
        channel config: api_url = telegram.url, bot_token = telegram.token
        telegram.deliver(telegram.text_update("hello"))
        telegram.wait_for_sent(1)
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

TOKEN = "123456789:AAFakeTokenForTestsOnly_abcdefghijk"
BOT_ID = 123456789
PATH = re.compile(r"^/bot(?P<token>[^/]+)/(?P<method>[A-Za-z]+)$")
SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


@dataclass
class Failure:
    error_code: int
    description: str
    times: int = 1


@dataclass
class Webhook:
    url: str
    secret_token: str | None
    allowed_updates: list[str]


@dataclass
class State:
    webhook: Webhook | None = None
    last_error_date: int | None = None
    last_error_message: str | None = None
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    failures: dict[str, Failure] = field(default_factory=dict)


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class FakeTelegram:
    """The fake server. ``url`` is its Bot API base (what ``TELEGRAM_API_URL`` takes)."""

    def __init__(
        self,
        token: str = TOKEN,
        *,
        username: str = "nico_test_bot",
        first_name: str = "Nico",
        require_https: bool = False,
    ) -> None:
        self.token = token
        self.username = username
        self.first_name = first_name
        self.require_https = require_https
        self.state = State()
        self._lock = threading.Condition()
        self._ids = itertools.count(1)
        self._update_ids = itertools.count(500_000_001)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                status, payload = fake.handle(self.path, self.headers.get("content-type", ""), body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), daemon=True
        )

    # lifecycle

    def start(self) -> FakeTelegram:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeTelegram:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        with self._lock:
            self.state = State()

    # what tests look at and change

    @property
    def bot_user(self) -> dict[str, Any]:
        return {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.username,
        }

    @property
    def webhook(self) -> Webhook | None:
        return self.state.webhook

    @property
    def sent(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.state.sent)

    def methods_called(self) -> list[str]:
        with self._lock:
            return [method for method, _ in self.state.calls]

    def fail(self, method: str, error_code: int, description: str, times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` fail as Telegram would."""
        with self._lock:
            self.state.failures[method] = Failure(error_code, description, times)

    def wait_for(self, check: Callable[[State], bool], timeout: float = 10.0) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: check(self.state), timeout)

    def wait_for_sent(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        if not self.wait_for(lambda state: len(state.sent) >= count, timeout):
            raise AssertionError(f"the bot sent {len(self.sent)} messages, not {count}")
        return self.sent

    # updates, as Telegram sends them

    def text_update(
        self,
        text: str,
        *,
        chat_id: int = 987654321,
        first_name: str = "Ana",
        last_name: str | None = "García",
        username: str | None = "ana_g",
    ) -> dict[str, Any]:
        """A ``message`` update from a person in a private chat."""
        user: dict[str, Any] = {"id": chat_id, "is_bot": False, "first_name": first_name}
        chat: dict[str, Any] = {"id": chat_id, "first_name": first_name, "type": "private"}
        if last_name:
            user["last_name"] = chat["last_name"] = last_name
        if username:
            user["username"] = chat["username"] = username
        user["language_code"] = "es"
        return {
            "update_id": next(self._update_ids),
            "message": {
                "message_id": next(self._ids),
                "from": user,
                "chat": chat,
                "date": int(time.time()),
                "text": text,
            },
        }

    def deliver(self, update: dict[str, Any], timeout: float = 10.0) -> httpx.Response:
        """POST ``update`` to the webhook with the secret header, as Telegram does; a
        non-2xx answer is kept as the webhook's ``last_error_message``."""
        webhook = self.state.webhook
        if webhook is None:
            raise AssertionError("no webhook is set: the bot has not called setWebhook")
        headers = {"content-type": "application/json"}
        if webhook.secret_token:
            headers[SECRET_HEADER] = webhook.secret_token
        response = httpx.post(
            webhook.url, content=json.dumps(update), headers=headers, timeout=timeout
        )
        if response.status_code // 100 != 2:
            with self._lock:
                self.state.last_error_date = int(time.time())
                self.state.last_error_message = (
                    f"Wrong response from the webhook: {response.status_code} "
                    f"{response.reason_phrase}"
                )
        return response

    # the Bot API

    def handle(self, path: str, content_type: str, body: bytes) -> tuple[int, dict[str, Any]]:
        parts = urlsplit(path)
        match = PATH.match(parts.path)
        if match is None:
            return _error(404, "Not Found")
        if match["token"] != self.token:
            return _error(401, "Unauthorized")
        method = match["method"]
        params: dict[str, Any] = dict(parse_qsl(parts.query))
        if body:
            try:
                if content_type.startswith("application/json"):
                    decoded = json.loads(body)
                    if not isinstance(decoded, dict):
                        return _error(400, "Bad Request: parameters must be an object")
                    params.update(decoded)
                else:
                    params.update(parse_qsl(body.decode()))
            except (ValueError, UnicodeDecodeError):
                return _error(400, "Bad Request: can't parse JSON object")
        with self._lock:
            self.state.calls.append((method, params))
            failure = self.state.failures.get(method)
            if failure is not None:
                failure.times -= 1
                if failure.times <= 0:
                    del self.state.failures[method]
                return _error(failure.error_code, failure.description)
            answer = getattr(self, f"_api_{method}", None)
            if answer is None:
                return _error(404, "Not Found")
            result: tuple[int, dict[str, Any]] = answer(params)
            self._lock.notify_all()
            return result

    def _api_getMe(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return _ok(
            {
                **self.bot_user,
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
            }
        )

    def _api_setWebhook(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        url = str(params.get("url") or "")
        if not url:
            return self._api_deleteWebhook(params)
        if self.require_https and not url.startswith("https://"):
            return _error(
                400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
            )
        secret = params.get("secret_token")
        if secret is not None and not SECRET_TOKEN.fullmatch(str(secret)):
            return _error(400, "Bad Request: secret token contains unallowed characters")
        allowed = params.get("allowed_updates")
        if isinstance(allowed, str):
            allowed = json.loads(allowed)
        self.state.webhook = Webhook(url, secret, list(allowed or []))
        self.state.last_error_date = self.state.last_error_message = None
        return _ok(True, "Webhook was set")

    def _api_deleteWebhook(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if self.state.webhook is None:
            return _ok(True, "Webhook is already deleted")
        self.state.webhook = None
        return _ok(True, "Webhook was deleted")

    def _api_getWebhookInfo(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        webhook = self.state.webhook
        info: dict[str, Any] = {
            "url": webhook.url if webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": 0,
        }
        if webhook is not None:
            info.update(max_connections=40, ip_address="127.0.0.1")
            if webhook.allowed_updates:
                info["allowed_updates"] = webhook.allowed_updates
            if self.state.last_error_message:
                info["last_error_date"] = self.state.last_error_date
                info["last_error_message"] = self.state.last_error_message
        return _ok(info)

    def _api_sendMessage(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        chat_id = params.get("chat_id")
        text = params.get("text")
        if chat_id in (None, ""):
            return _error(400, "Bad Request: chat_id is empty")
        if not isinstance(text, str) or not text.strip():
            return _error(400, "Bad Request: message text is empty")
        if _utf16_length(text) > 4096:
            return _error(400, "Bad Request: message is too long")
        message = {
            "message_id": next(self._ids),
            "from": self.bot_user,
            "chat": {"id": chat_id, "type": "private"},
            "date": int(time.time()),
            "text": text,
        }
        self.state.sent.append(message)
        return _ok(message)

    def _api_sendChatAction(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if params.get("chat_id") in (None, ""):
            return _error(400, "Bad Request: chat_id is empty")
        if params.get("action") not in ("typing", "upload_photo", "record_voice"):
            return _error(400, "Bad Request: wrong parameter action in request")
        self.state.actions.append(params)
        return _ok(True)


def _ok(result: Any, description: str | None = None) -> tuple[int, dict[str, Any]]:
    payload: dict[str, Any] = {"ok": True, "result": result}
    if description:
        payload["description"] = description
    return 200, payload


def _error(code: int, description: str) -> tuple[int, dict[str, Any]]:
    return code, {"ok": False, "error_code": code, "description": description}
