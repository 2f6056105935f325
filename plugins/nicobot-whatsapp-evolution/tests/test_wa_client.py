"""EvolutionClient against the fake gateway, and every error envelope normalised."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from evo_support import INSTANCE, load_fixture
from nicobot_whatsapp_evolution.client import (
    WEBHOOK_EVENTS,
    EvolutionClient,
    EvolutionError,
    QRCode,
    error_messages,
)
from nicobot_whatsapp_evolution.testing import FakeGateway, qr_png

HOOK = "http://127.0.0.1:9/api/webhooks/evolution"
HEADERS = {"x-nicobot-secret": "abc"}


@pytest.fixture
async def client(fake: FakeGateway) -> Any:
    async with EvolutionClient(fake.url, fake.api_key, timeout=5) as c:
        yield c


async def create(client: EvolutionClient) -> Any:
    return await client.create_instance(INSTANCE, webhook_url=HOOK, webhook_headers=HEADERS)


# the error envelopes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("v1_error_401_unauthorized.json", ["Unauthorized"]),
        (
            "v1_error_404_instance_not_found.json",
            ['The "9244ecdbda2c251315e6" instance does not exist'],
        ),
        ("v2_error_400_connection_closed.json", ["Error: Connection Closed"]),
        ("v2_error_400_validation_missing_text.json", ['instance requires property "text"']),
        ("v1_sendText_400_number_not_on_whatsapp.json", ["+@s.whatsapp.net is not on WhatsApp"]),
    ],
)
def test_recorded_error_envelopes(name: str, expected: list[str]) -> None:
    assert error_messages(load_fixture(name)) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Error: Connection Closed", ["Error: Connection Closed"]),  # old plain-string 500
        ({"error": True, "message": "Internal error"}, ["Internal error"]),  # connect's 200
        ({"error": True, "message": ["a", ["b", "c"]]}, ["a", "b", "c"]),
        (['This name "x" is already in use.'], ['This name "x" is already in use.']),
        ({"status": 500, "error": "Internal Server Error", "response": {}}, ["{}"]),
        ({"status": 500, "error": "Internal Server Error"}, ["Internal Server Error"]),
        (
            {"response": {"message": [{"exists": False, "number": "549"}]}},
            ["549 is not on WhatsApp"],
        ),
        ({"response": {"message": [{"other": 1}]}}, ['{"other": 1}']),
        ({"response": {"message": [None, "", 404, ["  "]]}}, ["404"]),
        (None, []),
        ("", []),
    ],
)
def test_error_shapes(body: Any, expected: list[str]) -> None:
    assert error_messages(body) == expected


def test_error_str_and_flags() -> None:
    err = EvolutionError(400, ["Error: Connection Closed"])
    assert str(err) == "Evolution API error 400: Error: Connection Closed"
    assert err.is_connection_closed and not err.unreachable
    assert str(EvolutionError(0, ["gateway unreachable: x"])) == "gateway unreachable: x"
    assert EvolutionError(502, []).messages == ["HTTP 502"]
    assert EvolutionError(403, ['This name "a" is already in use.']).is_name_taken


# every call against the fake ------------------------------------------------------------------


async def test_create_instance_then_qr(client: EvolutionClient, fake: FakeGateway) -> None:
    created = await create(client)
    assert created.token == fake.instances[INSTANCE].token
    assert created.qr == QRCode(count=0) and not created.qr.ready
    hook = fake.instances[INSTANCE].webhook
    assert hook["url"] == HOOK and hook["headers"] == HEADERS
    assert hook["events"] == list(WEBHOOK_EVENTS)
    assert hook["byEvents"] is False and hook["base64"] is False

    answer = await client.connect(INSTANCE)
    assert answer.state is None and answer.qr is not None and answer.qr.ready
    assert answer.qr.data_url == qr_png(answer.qr.code or "")
    assert answer.qr.code == fake.instances[INSTANCE].qr_code
    assert await client.connection_state(INSTANCE) == "connecting"

    with pytest.raises(EvolutionError) as taken:
        await create(client)
    assert taken.value.status == 403 and taken.value.is_name_taken
    assert taken.value.messages == [f'This name "{INSTANCE}" is already in use.']


async def test_qr_ready_on_create(fake: FakeGateway) -> None:
    fake.qr_ready_on_create = True
    async with EvolutionClient(fake.url, fake.api_key) as client:
        created = await create(client)
    assert created.qr is not None and created.qr.ready and created.qr.count == 1


async def test_connect_when_open_and_logout(client: EvolutionClient, fake: FakeGateway) -> None:
    fake.add_instance(INSTANCE, state="open")
    answer = await client.connect(INSTANCE)
    assert answer.state == "open" and answer.qr is None
    assert await client.connection_state(INSTANCE) == "open"
    await client.logout(INSTANCE)
    assert await client.connection_state(INSTANCE) == "close"
    with pytest.raises(EvolutionError) as again:
        await client.logout(INSTANCE)
    assert again.value.status == 400
    assert again.value.messages == [f'The "{INSTANCE}" instance is not connected']


async def test_connect_error_with_http_200(client: EvolutionClient, fake: FakeGateway) -> None:
    fake.add_instance(INSTANCE)
    fake.fail_connect = "Cannot read properties of undefined"
    with pytest.raises(EvolutionError) as err:
        await client.connect(INSTANCE)
    assert err.value.status == 200
    assert err.value.messages == ["Cannot read properties of undefined"]


async def test_send_text_and_presence(client: EvolutionClient, fake: FakeGateway) -> None:
    fake.add_instance(INSTANCE, state="open")
    message_id = await client.send_text(INSTANCE, "5491100000001", "Hola!", delay_ms=1200)
    assert message_id is not None and message_id.startswith("BAE5")
    other = await client.send_text(INSTANCE, "123456789@lid", "to a lid")
    (first, second) = fake.sent
    assert (first.number, first.text, first.delay, first.id) == (
        "5491100000001",
        "Hola!",
        1200,
        message_id,
    )
    assert (second.number, second.delay, second.id) == ("123456789@lid", None, other)
    await client.send_presence(INSTANCE, "5491100000001", delay_ms=1500)
    (presence,) = fake.presences
    assert (presence.number, presence.presence, presence.delay) == (
        "5491100000001",
        "composing",
        1500,
    )


async def test_set_webhook(client: EvolutionClient, fake: FakeGateway) -> None:
    fake.add_instance(INSTANCE)
    await client.set_webhook(INSTANCE, url=HOOK + "/x", headers={"a": "b"})
    assert fake.instances[INSTANCE].webhook == {
        "enabled": True,
        "url": HOOK + "/x",
        "headers": {"a": "b"},
        "events": list(WEBHOOK_EVENTS),
        "byEvents": False,
        "base64": False,
    }


async def test_validation_error_is_list_of_lists(
    client: EvolutionClient, fake: FakeGateway
) -> None:
    fake.add_instance(INSTANCE)
    with pytest.raises(EvolutionError) as err:
        await client.set_webhook(INSTANCE, url=HOOK, headers={}, events=["NOT_AN_EVENT"])
    assert err.value.status == 400
    assert len(err.value.messages) == 1 and "NOT_AN_EVENT" in err.value.messages[0]


async def test_blank_text_is_rejected(client: EvolutionClient, fake: FakeGateway) -> None:
    fake.add_instance(INSTANCE, state="open")
    with pytest.raises(EvolutionError) as err:
        await client.send_text(INSTANCE, "5491100000001", "  ")
    assert err.value.status == 400 and err.value.messages == ["Text is required"]


async def test_number_not_on_whatsapp(client: EvolutionClient, fake: FakeGateway) -> None:
    fake.add_instance(INSTANCE, state="open")
    fake.not_on_whatsapp.add("5491100000077")
    with pytest.raises(EvolutionError) as err:
        await client.send_text(INSTANCE, "5491100000077", "hi")
    assert err.value.messages == ["5491100000077 is not on WhatsApp"]


async def test_connection_closed(client: EvolutionClient, fake: FakeGateway) -> None:
    fake.add_instance(INSTANCE, state="open")
    fake.down = "closed"
    with pytest.raises(EvolutionError) as err:
        await client.send_text(INSTANCE, "5491100000001", "hi")
    assert err.value.status == 500 and err.value.is_connection_closed
    assert not err.value.ambiguous  # the gateway answered: the send did not go out
    with pytest.raises(EvolutionError) as presence:
        await client.send_presence(INSTANCE, "5491100000001", delay_ms=10)
    assert presence.value.is_connection_closed
    assert fake.sent == []


async def test_unknown_instance_and_wrong_key(fake: FakeGateway) -> None:
    fake.add_instance(INSTANCE)
    async with EvolutionClient(fake.url, "wrong-key") as client:
        with pytest.raises(EvolutionError) as missing:  # 404 comes before the key check
            await client.connection_state("nope")
        assert missing.value.status == 404 and missing.value.is_not_found
        assert missing.value.messages == ['The "nope" instance does not exist']
        with pytest.raises(EvolutionError) as unauthorized:
            await client.connection_state(INSTANCE)
        assert unauthorized.value.status == 401
        assert unauthorized.value.messages == ["Unauthorized"]
    # an instance's own token works for that instance
    async with EvolutionClient(fake.url, fake.instances[INSTANCE].token) as client:
        assert await client.connection_state(INSTANCE) == "close"


async def test_instance_names_are_quoted(client: EvolutionClient, fake: FakeGateway) -> None:
    fake.add_instance("la formula/2")
    assert await client.connection_state("la formula/2") == "close"


# network failures ---------------------------------------------------------------------------


async def test_connection_refused(closed_port: int) -> None:
    async with EvolutionClient(f"http://127.0.0.1:{closed_port}", "k", timeout=2) as client:
        with pytest.raises(EvolutionError) as err:
            await client.connection_state(INSTANCE)
    assert err.value.status == 0 and err.value.unreachable
    assert str(err.value).startswith("gateway unreachable: ")
    assert "no answer within" not in str(err.value)  # refused at once, not a timeout


async def test_dropped_connection(client: EvolutionClient, fake: FakeGateway) -> None:
    fake.add_instance(INSTANCE, state="open")
    fake.down = "drop"
    with pytest.raises(EvolutionError) as err:
        await client.send_text(INSTANCE, "5491100000001", "hi")
    assert err.value.unreachable


async def test_fake_refusing_then_back(fake: FakeGateway) -> None:
    fake.add_instance(INSTANCE, state="open")
    async with EvolutionClient(fake.url, fake.api_key, timeout=2) as client:
        fake.refuse_connections()
        with pytest.raises(EvolutionError) as err:
            await client.connection_state(INSTANCE)
        assert err.value.unreachable
        fake.start()
        assert await client.connection_state(INSTANCE) == "open"


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A socket that accepts connections and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield int(s.getsockname()[1])


async def test_timeout_is_unreachable(silent_port: int) -> None:
    async with EvolutionClient(f"http://127.0.0.1:{silent_port}", "k", timeout=0.3) as client:
        with pytest.raises(EvolutionError) as err:
            await client.connection_state(INSTANCE)
    assert err.value.status == 0 and "no answer within 0.3 s" in str(err.value)
    assert err.value.ambiguous  # the request went out: the gateway may have acted on it


@pytest.fixture
def full_port() -> Iterator[int]:
    """A listening socket whose queue of connections to accept is full: a new connection
    never opens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(0)
        port = int(s.getsockname()[1])
        fillers = [socket.socket() for _ in range(4)]
        for filler in fillers:
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
        yield port
        for filler in fillers:
            filler.close()


async def test_a_connection_that_never_opens_is_known_not_sent(full_port: int) -> None:
    async with EvolutionClient(f"http://127.0.0.1:{full_port}", "k", timeout=0.3) as client:
        with pytest.raises(EvolutionError) as err:
            await client.connection_state(INSTANCE)
    assert err.value.unreachable and "no answer within 0.3 s" in str(err.value)
    assert not err.value.ambiguous  # no connection, so nothing reached the gateway


@pytest.fixture
def garbage_port() -> Iterator[int]:
    """A server that answers every connection with something that is not HTTP."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)

        def serve() -> None:
            while True:
                try:
                    conn, _ = s.accept()
                except OSError:
                    return
                with conn:
                    conn.recv(65536)
                    conn.sendall(b"garbage\r\n\r\n")

        threading.Thread(target=serve, daemon=True).start()
        yield int(s.getsockname()[1])


async def test_a_reply_that_is_not_http_is_an_evolution_error(garbage_port: int) -> None:
    async with EvolutionClient(f"http://127.0.0.1:{garbage_port}", "k", timeout=2) as client:
        with pytest.raises(EvolutionError) as err:
            await client.connection_state(INSTANCE)
    assert err.value.status == 0 and str(err.value).startswith("gateway unreachable: ")


class _Canned(BaseHTTPRequestHandler):
    status = 500
    body = b""
    content_type = "text/html"

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(self.status)
        self.send_header("content-type", self.content_type)
        self.send_header("content-length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)


@pytest.mark.parametrize(
    ("status", "body", "content_type", "expected"),
    [
        (500, b"Error: Connection Closed", "text/html", ["Error: Connection Closed"]),
        (
            500,
            json.dumps("Error: Connection Closed").encode(),
            "application/json",
            ["Error: Connection Closed"],
        ),
        (502, b"", "text/html", ["HTTP 502"]),
    ],
)
async def test_old_plain_string_errors(
    status: int, body: bytes, content_type: str, expected: list[str]
) -> None:
    handler = type("H", (_Canned,), {"status": status, "body": body, "content_type": content_type})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        async with EvolutionClient(url, "k") as client:
            with pytest.raises(EvolutionError) as err:
                await client.send_text(INSTANCE, "1", "hi")
        assert err.value.status == status and err.value.messages == expected
        assert err.value.is_connection_closed == ("Connection Closed" in expected[0])
    finally:
        server.shutdown()
        server.server_close()


class _Proxy(BaseHTTPRequestHandler):
    seen: list[str] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.seen.append(self.path)
        body = json.dumps({"instance": {"instanceName": INSTANCE, "state": "open"}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.mark.parametrize("no_proxy", ["", "gateway.invalid"])
async def test_the_proxy_settings_are_honoured(monkeypatch: pytest.MonkeyPatch, no_proxy: str):
    handler = type("P", (_Proxy,), {"seen": []})
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=proxy.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    try:
        async with EvolutionClient("http://gateway.invalid:8080", "k", timeout=5) as client:
            if no_proxy:
                with pytest.raises(EvolutionError):  # straight to a host that does not exist
                    await client.connection_state(INSTANCE)
            else:
                assert await client.connection_state(INSTANCE) == "open"
        expected = (
            [] if no_proxy else [f"http://gateway.invalid:8080/instance/connectionState/{INSTANCE}"]
        )
        assert handler.seen == expected
    finally:
        proxy.shutdown()
        proxy.server_close()
