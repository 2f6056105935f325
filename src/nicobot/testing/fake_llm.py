"""A fake OpenAI-compatible LLM server: real HTTP on 127.0.0.1, for litellm's real code path.

Point a project at it with ``[llm] model = "openai/fake"``, ``api_base = <url>/v1`` and
any ``api_key``. Run it alone with ``python -m nicobot.testing.fake_llm --port 8400``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Reply = Callable[[list[dict[str, Any]]], str]


def echo_reply(messages: list[dict[str, Any]]) -> str:
    user = [m for m in messages if m.get("role") == "user"]
    return "Echo: " + str(user[-1]["content"] if user else "")


@dataclass
class FakeLLM:
    """The server's behaviour; tests change it between calls."""

    reply: Reply = echo_reply
    latency: float = 0.0
    fail_status: int | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    #: What ``POST /v1/audio/transcriptions`` answers, and the uploads it got
    #: (``model``, ``language``, ``filename``, ``content_type``, ``data``).
    transcript: str = "Hola, ¿a qué hora abren mañana?"
    transcriptions: list[dict[str, Any]] = field(default_factory=list)
    #: Completions being answered now, and the most at once since the last reset.
    in_flight: int = 0
    max_in_flight: int = 0

    @property
    def api_base(self) -> str:
        return self.url + "/v1"

    @property
    def env(self) -> dict[str, str]:
        """Environment that points a nicobot project at this server."""
        return {
            "NICOBOT_MODEL": "openai/fake-model",
            "NICOBOT_LLM_API_BASE": self.api_base,
            "NICOBOT_LLM_API_KEY": "fake-key",
        }

    def reset(self) -> None:
        self.reply = echo_reply
        self.latency = 0.0
        self.fail_status = None
        self.requests.clear()
        self.max_in_flight = 0
        self.transcript = "Hola, ¿a qué hora abren mañana?"
        self.transcriptions.clear()

    def last_messages(self) -> list[dict[str, Any]]:
        return list(self.requests[-1]["messages"]) if self.requests else []

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """A minimal ASGI app answering ``POST /v1/chat/completions``."""
        if scope["type"] == "lifespan":
            while True:
                event = await receive()
                if event["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif event["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        if scope["path"].rstrip("/") == "/v1/audio/transcriptions":
            headers = dict(scope.get("headers") or [])
            upload = _multipart(headers.get(b"content-type", b"").decode("latin-1"), body)
            self.transcriptions.append(upload)
            if self.fail_status:
                await _respond(send, self.fail_status, {"error": {"message": "fake failure"}})
                return
            await _respond(send, 200, {"text": self.transcript})
            return
        if scope["path"].rstrip("/") != "/v1/chat/completions":
            await _respond(send, 404, {"error": {"message": "not found"}})
            return
        request = json.loads(body or b"{}")
        self.requests.append(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
        finally:
            self.in_flight -= 1
        if self.fail_status:
            await _respond(
                send,
                self.fail_status,
                {"error": {"message": "fake failure", "type": "server_error"}},
            )
            return
        content = self.reply(request.get("messages", []))
        await _respond(
            send,
            200,
            {
                "id": f"chatcmpl-fake{len(self.requests)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": request.get("model", "fake-model"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
            },
        )


def _multipart(content_type: str, body: bytes) -> dict[str, Any]:
    """The fields of a ``multipart/form-data`` body: text fields as strings, the file's
    name, type and bytes as ``filename``, ``content_type`` and ``data``."""
    from email import policy
    from email.parser import BytesParser

    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1")
    parsed = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    fields: dict[str, Any] = {}
    for part in parsed.iter_parts():
        name = part.get_param("name", header="content-disposition")
        decoded = part.get_payload(decode=True)
        payload = decoded if isinstance(decoded, bytes) else b""
        if part.get_filename():
            fields.update(
                filename=part.get_filename(), content_type=part.get_content_type(), data=payload
            )
        elif isinstance(name, str):
            fields[name] = payload.decode("utf-8", "replace")
    return fields


async def _respond(send: Any, status: int, payload: dict[str, Any]) -> None:
    data = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


class FakeLLMServer:
    """Runs a :class:`FakeLLM` with uvicorn in a background thread."""

    def __init__(self, fake: FakeLLM | None = None, port: int = 0) -> None:
        import uvicorn

        self.fake = fake or FakeLLM()
        config = uvicorn.Config(
            self.fake.app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            interface="asgi3",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> FakeLLM:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake LLM server did not start")
            time.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.fake.url = f"http://127.0.0.1:{port}"
        return self.fake

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8400)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per answer")
    args = parser.parse_args()
    import uvicorn

    fake = FakeLLM(latency=args.latency)
    uvicorn.run(fake.app, host="127.0.0.1", port=args.port, log_level="warning", interface="asgi3")


if __name__ == "__main__":
    main()
