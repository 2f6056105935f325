"""The webhook route served straight from ASGI (nicobot.web.direct) answers as Quart's
route does, with the same limits and headers, and leaves every other request to Quart."""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
import pytest

from nicobot.testing import FAKE_SECRET, free_port, make_project
from nicobot.web.direct import webhook_route

GOOD = {"X-Fake-Secret": FAKE_SECRET, "Authorization": ""}
SECRET = "direct-route-secret-0123456789"


@pytest.mark.parametrize(
    ("method", "path", "route"),
    [
        ("POST", "/api/webhooks/evolution", ("evolution", "")),
        (
            "POST",
            "/api/webhooks/evolution/secret/messages-upsert",
            ("evolution", "secret/messages-upsert"),
        ),
        ("GET", "/api/webhooks/evolution", None),
        ("POST", "/api/webhooks/", None),
        ("POST", "/api/webhooks/evolution/", None),
        ("POST", "/api/webhooks//evolution", None),
        ("POST", "/api/webhooks/evolution//x", None),
        ("POST", "/api/webhooks/" + "x" * 1025, None),
        ("POST", "/api/webhooks/a\x00b", None),
        ("POST", "/api/turns/1/retry", None),
    ],
)
def test_only_what_quart_would_route_to_the_webhook_is_served_directly(
    method: str, path: str, route: tuple[str, str] | None
) -> None:
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    assert webhook_route(scope) == route


async def asgi_post(
    app: Any, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, str], Any]:
    """One POST through an ASGI app; its status, headers and JSON."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        + [(b"host", b"127.0.0.1"), (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.9", 5000),
        "server": ("127.0.0.1", 7070),
        "extensions": {},
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    answer_headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], answer_headers, json.loads(payload)


async def test_the_direct_route_answers_as_quarts_route(nicobot_app, nicobot_bot, fake_channel):
    direct = nicobot_app.asgi_app
    quart = direct.inner

    async def both(path: str, payload: Any, headers: dict[str, str]) -> list[tuple[int, Any]]:
        answers = []
        for app in (direct, quart):
            status, answer_headers, body = await asgi_post(
                app, path, json.dumps(payload).encode(), headers
            )
            assert answer_headers["content-type"] == "application/json"
            assert answer_headers["x-content-type-options"] == "nosniff"
            assert "frame-ancestors 'none'" in answer_headers["content-security-policy"]
            assert "set-cookie" not in answer_headers
            answers.append((status, body))
        return answers

    new = {"id": "direct-1", "address": "5491100000070", "text": "hola"}
    again = {**new}
    assert await both("/api/webhooks/fake", new, GOOD) == [
        (200, {"ok": True, "accepted": 1, "duplicates": 0}),
        (200, {"ok": True, "accepted": 0, "duplicates": 1}),
    ]
    assert (
        await both("/api/webhooks/fake", again, GOOD)
        == [
            (200, {"ok": True, "accepted": 0, "duplicates": 1}),
        ]
        * 2
    )
    wrong = {"X-Fake-Secret": "wrong", "Authorization": ""}
    [direct_wrong, quart_wrong] = await both("/api/webhooks/fake", new, wrong)
    assert direct_wrong == quart_wrong and direct_wrong[0] == 401
    [direct_404, quart_404] = await both("/api/webhooks/nobody", new, GOOD)
    assert direct_404 == quart_404 == (404, {"error": "no channel takes webhooks at 'nobody'"})
    deep = b"[" * 200 + b"]" * 200
    for app in (direct, quart):
        status, _headers, body = await asgi_post(app, "/api/webhooks/fake", deep, GOOD)
        assert (status, body) == (400, {"error": "the JSON nests deeper than 64 levels"})
    await nicobot_bot.pipeline.wait_idle(20)
    assert [m.address for m in fake_channel.sent] == ["5491100000070"]  # answered once


def post_declaring(port: int, length: int) -> bytes:
    """A webhook declaring a body of ``length`` bytes and sending two: the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        head = (
            f"POST /api/webhooks/evolution HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n{{}}"
        )
        sock.sendall(head.encode())
        answer = b""
        while b'"}' not in answer:  # the head and the body may come in two reads
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    assert b'{"error":"request too large"}' in answer
    return answer


def test_a_served_webhook_is_bounded_throttled_and_answered_in_the_bots_language(
    tmp_path, nicobot_server
) -> None:
    env = {
        "NICOBOT_KNOWLEDGE__EMBEDDER": "hashing",
        "EVOLUTION_API_URL": f"http://127.0.0.1:{free_port()}",
        "EVOLUTION_API_KEY": "evolution-api-key-value",
        "EVOLUTION_INSTANCE_NAME": "shop",
        "EVOLUTION_WEBHOOK_SECRET": SECRET,
    }
    server = nicobot_server(make_project(tmp_path / "bot", language="es"), env)
    url = f"{server.url}/api/webhooks/evolution"
    assert post_declaring(server.port, 17 * 1024 * 1024).startswith(b"HTTP/1.1 413")
    unknown = httpx.post(f"{server.url}/api/webhooks/nobody", json={})
    assert (unknown.status_code, unknown.json()) == (
        404,
        {"error": "ningún canal recibe webhooks en 'nobody'"},
    )
    state = {"event": "connection.update", "instance": "shop", "data": {"state": "open"}}
    assert httpx.post(f"{url}/{SECRET}", json=state).json()["ok"] is True
    refused = [httpx.post(f"{url}/wrong-secret", json=state) for _ in range(11)]
    assert [r.status_code for r in refused] == [401] * 10 + [429]
    assert int(refused[10].headers["retry-after"]) > 0
    assert refused[10].headers["x-frame-options"] == "DENY"
    assert "set-cookie" not in refused[10].headers
    # the credential throttle counts this client only: the right secret from it waits too
    assert httpx.post(f"{url}/{SECRET}", json=state).status_code == 429
    assert SECRET not in server.log()
