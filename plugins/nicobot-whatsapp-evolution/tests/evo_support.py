"""Helpers for the WhatsApp plugin's tests: recorded fixtures, a webhook sink, a harness."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from nicobot import ChannelStatus, WebhookRequest

from nicobot_whatsapp_evolution import WhatsAppChannel

# ../shared beside the checkout (the repository root is parents[3]), or NICOBOT_SHARED
SHARED = Path(
    os.environ.get("NICOBOT_SHARED") or Path(__file__).resolve().parents[3] / ".." / "shared"
).resolve()
FIXTURES = SHARED / "fixtures" / "evolution"
SCHEMAS = FIXTURES / "schemas"
if not FIXTURES.is_dir() or not SCHEMAS.is_dir():
    raise RuntimeError(
        f"recorded Evolution API fixtures not found at {FIXTURES}: the shared/ folder must "
        "sit beside the repository checkout"
    )

SECRET = "s3cret-webhook-token"
INSTANCE = "laformula"
WEBHOOK_PREFIX = "/api/webhooks/evolution"


def load_fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def as_webhook_request(self) -> WebhookRequest:
        """The call as the core hands it to the channel."""
        path = self.path.split("?", 1)[0]
        assert path.startswith(WEBHOOK_PREFIX), path
        return WebhookRequest(
            method="POST",
            headers=self.headers,
            subpath=path[len(WEBHOOK_PREFIX) :].strip("/"),
            query={},
            body=self.body,
            json=self.json(),
        )


class Sink:
    """A real HTTP server that records the webhook calls the fake gateway makes."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.status = 200
        self._lock = threading.Condition()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with sink._lock:
                    sink.received.append(Received(self.path, headers, body))
                    sink._lock.notify_all()
                data = b'{"ok": true}'
                self.send_response(sink.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        """Block until ``count`` calls were received (False after ``timeout``)."""
        with self._lock:
            return self._lock.wait_for(lambda: len(self.received) >= count, timeout)

    def take(self) -> list[Received]:
        with self._lock:
            taken, self.received = self.received, []
        return taken

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Harness:
    channel: WhatsAppChannel
    reports: list[ChannelStatus] = field(default_factory=list)

    async def feed(self, received: list[Received]) -> list[Any]:
        """Hand recorded webhook calls to the channel as the core would."""
        return [await self.channel.handle_webhook(r.as_webhook_request()) for r in received]


MakeChannel = Callable[..., Harness]
