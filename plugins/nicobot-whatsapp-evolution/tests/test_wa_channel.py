"""WhatsAppChannel: config, the connect flow, status, sending, and webhook authentication."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nicobot import (
    ChannelConfig,
    ChannelContext,
    MessageKind,
    OutgoingMessage,
    PermanentSendError,
    SendOutcomeUnknown,
    SentCheck,
    Settings,
    WebhookRejected,
    WebhookRequest,
)
from pydantic import ValidationError

from evo_support import INSTANCE, SECRET, Harness, MakeChannel, Sink, load_fixture
from nicobot_whatsapp_evolution import EvolutionError, WhatsAppChannel, WhatsAppConfig
from nicobot_whatsapp_evolution.auth import verify_jwt
from nicobot_whatsapp_evolution.testing import FakeGateway, qr_png

# config ---------------------------------------------------------------------------------------


def test_load_config_env_over_table() -> None:
    table = {"url": "http://table:8080/", "api_key": "table-key", "instance": "t"}
    env = {
        "EVOLUTION_API_URL": "http://env:8080/",
        "EVOLUTION_API_KEY": "env-key",
        "EVOLUTION_INSTANCE_NAME": "laformula-prod",
        "EVOLUTION_WEBHOOK_SECRET": "from-evolution-env",
        "NICOBOT_WEBHOOK_SECRET": "generic",
    }
    config = WhatsAppChannel.load_config(table, env)
    assert isinstance(config, WhatsAppConfig)
    assert (config.url, config.api_key, config.instance) == (
        "http://env:8080",
        "env-key",
        "laformula-prod",
    )
    assert config.webhook_secret == "from-evolution-env"
    assert config.debounce_seconds == 2.5
    assert config.max_message_age_seconds == 300


def test_secret_fallbacks() -> None:
    generic = {"NICOBOT_WEBHOOK_SECRET": "generic"}
    assert WhatsAppChannel.load_config({}, generic).webhook_secret == "generic"
    table = {"webhook_secret": "from-table"}
    assert WhatsAppChannel.load_config(table, generic).webhook_secret == "from-table"
    assert WhatsAppChannel.load_config({}, {}).webhook_secret == ""


def test_table_alone_and_defaults() -> None:
    config = WhatsAppChannel.load_config({"url": "http://gw", "api_key": "k"}, {})
    assert config.instance == "laformula" and config.url == "http://gw"
    with pytest.raises(ValidationError):
        WhatsAppChannel.load_config({"timeout_seconds": 0}, {})
    with pytest.raises(ValidationError):
        WhatsAppChannel.load_config({"debounce_seconds": "soon"}, {})


def _channel(table: dict[str, Any], env: dict[str, str], settings: Settings) -> WhatsAppChannel:
    async def report(_status: Any) -> None:
        return None

    config = WhatsAppChannel.load_config(table, env)
    return WhatsAppChannel(config, ChannelContext(settings=settings, env=env, report_status=report))


def test_configured_needs_url_and_key() -> None:
    settings = Settings()
    assert not _channel({}, {}, settings).configured
    assert not _channel({}, {"EVOLUTION_API_URL": "http://gw"}, settings).configured
    assert _channel({}, {"EVOLUTION_API_URL": "http://gw", "EVOLUTION_API_KEY": "k"}, settings)


def test_public_url_sources() -> None:
    settings = Settings.model_validate({"server": {"public_url": "https://bot.example.com/"}})
    channel = _channel({}, {}, settings)
    assert channel.webhook_url == "https://bot.example.com/api/webhooks/evolution"
    channel = _channel({"public_url": "http://nicobot:7070"}, {}, settings)
    assert channel.webhook_url == "http://nicobot:7070/api/webhooks/evolution"
    settings = Settings.model_validate({"server": {"host": "0.0.0.0", "port": 7071}})
    assert _channel({}, {}, settings).webhook_url == "http://127.0.0.1:7071/api/webhooks/evolution"


def test_plain_channel_config_is_upgraded() -> None:
    async def report(_status: Any) -> None:
        return None

    context = ChannelContext(settings=Settings(), env={}, report_status=report)
    channel = WhatsAppChannel(ChannelConfig(), context)
    assert isinstance(channel.config, WhatsAppConfig) and not channel.configured


# connecting -----------------------------------------------------------------------------------


async def test_connect_flow(make_channel: MakeChannel, fake: FakeGateway, sink: Sink) -> None:
    fake.not_ready_connects = 1  # create answers {"count": 0}, the first connect too
    h = make_channel()
    status = await h.channel.connect()
    assert (status.state, status.connected, status.qr, status.qr_code) == (
        "scanning",
        False,
        None,
        None,
    )
    instance = fake.instances[INSTANCE]
    assert instance.webhook["url"] == sink.url + "/api/webhooks/evolution"
    assert instance.webhook["headers"] == {"x-nicobot-secret": SECRET}
    assert instance.webhook["events"] == ["MESSAGES_UPSERT", "CONNECTION_UPDATE", "QRCODE_UPDATED"]

    status = await h.channel.connect()  # again: no new instance, now a QR
    assert status.state == "scanning" and status.qr == qr_png(status.qr_code or "")
    assert status.qr_code == instance.qr_code and status.qr_code is not None
    assert status.to_dict()["qr"] == status.qr
    assert ("POST", "/instance/create") in fake.requests
    assert fake.requests.count(("POST", "/instance/create")) == 1
    assert (await h.channel.get_status()).qr == status.qr

    # a new QR arrives by webhook
    await asyncio.to_thread(fake.rotate_qr, INSTANCE)
    results = await h.feed(sink.take())
    assert [r.messages for r in results] == [[]]
    assert h.reports[-1].qr_code == instance.qr_code and h.reports[-1].state == "scanning"

    # the phone scans it
    deliveries = await asyncio.to_thread(fake.scan, INSTANCE)
    assert [d.status for d in deliveries] == [200]
    await h.feed(sink.take())
    assert h.reports[-1].connected and h.reports[-1].state == "connected"
    assert h.reports[-1].qr is None
    status = await h.channel.get_status()
    assert status.connected and status.state == "connected" and status.qr is None
    assert status.account == "5491100000099"  # the business's own number, from the envelope

    status = await h.channel.connect()  # already open
    assert status.connected
    assert fake.requests.count(("POST", "/instance/create")) == 1


async def test_connect_gets_qr_from_create(make_channel: MakeChannel, fake: FakeGateway) -> None:
    fake.qr_ready_on_create = True
    status = await make_channel().channel.connect()
    assert status.state == "scanning" and status.qr == qr_png(status.qr_code or "")
    assert ("GET", f"/instance/connect/{INSTANCE}") not in fake.requests


async def test_connect_name_taken_race(make_channel: MakeChannel, fake: FakeGateway) -> None:
    """The state says 404, but by the time we create it someone else has: 403 is fine."""
    original = fake.handle

    def racing(method: str, path: str, headers: dict[str, str], body: Any) -> Any:
        answer = original(method, path, headers, body)
        if path == f"/instance/connectionState/{INSTANCE}" and answer[0] == 404:
            fake.add_instance(INSTANCE)
        return answer

    fake.handle = racing  # type: ignore[method-assign]
    status = await make_channel().channel.connect()
    assert status.state == "scanning" and status.qr == qr_png(status.qr_code or "")
    assert fake.requests.count(("POST", "/instance/create")) == 1
    assert fake.instances[INSTANCE].webhook["headers"] == {"x-nicobot-secret": SECRET}


async def test_connect_existing_instance_updates_webhook(
    make_channel: MakeChannel, fake: FakeGateway, sink: Sink
) -> None:
    fake.add_instance(INSTANCE, state="open", webhook_url="http://old-host/hook")
    status = await make_channel().channel.connect()
    assert status.connected
    assert fake.instances[INSTANCE].webhook["url"] == sink.url + "/api/webhooks/evolution"
    assert ("POST", "/instance/create") not in fake.requests


async def test_start_syncs_webhook(
    make_channel: MakeChannel, fake: FakeGateway, sink: Sink
) -> None:
    fake.add_instance(INSTANCE, state="open", webhook_url="http://old-host/hook")
    h = make_channel()
    await h.channel.start()
    assert h.channel.webhook_sync is not None
    await h.channel.webhook_sync
    assert fake.instances[INSTANCE].webhook["url"] == sink.url + "/api/webhooks/evolution"


async def test_start_without_instance_creates_nothing(
    make_channel: MakeChannel, fake: FakeGateway
) -> None:
    h = make_channel()
    await h.channel.start()
    assert h.channel.webhook_sync is not None
    await h.channel.webhook_sync
    assert fake.instances == {}


async def test_connect_error_answer(make_channel: MakeChannel, fake: FakeGateway) -> None:
    fake.add_instance(INSTANCE)
    fake.fail_connect = "Cannot read properties of undefined"
    status = await make_channel().channel.connect()
    assert status.state == "error" and "Cannot read properties" in status.details


async def test_connect_without_secret(make_channel: MakeChannel, fake: FakeGateway) -> None:
    h = make_channel(env={"EVOLUTION_WEBHOOK_SECRET": None})
    status = await h.channel.connect()
    assert status.state == "error" and "EVOLUTION_WEBHOOK_SECRET" in status.details
    assert fake.instances == {}


async def test_secret_derived_from_secret_key(make_channel: MakeChannel, sink: Sink) -> None:
    settings = {"server": {"public_url": sink.url}}
    h = make_channel(env={"EVOLUTION_WEBHOOK_SECRET": None}, settings=settings)
    h.channel.context.settings.secret_key = "app-secret"
    derived = h.channel.webhook_secret
    assert derived and derived != "app-secret" and len(derived) == 64
    status = await h.channel.connect()
    assert status.state == "scanning"


async def test_refused_and_logged_out(
    make_channel: MakeChannel, fake: FakeGateway, sink: Sink
) -> None:
    h = make_channel()
    await h.channel.connect()
    await asyncio.to_thread(fake.refuse, INSTANCE)
    await h.feed(sink.take())
    assert h.reports[-1].state == "disconnected"
    assert h.reports[-1].to_dict()["reason"] == "qr_limit"
    status = await h.channel.get_status()
    assert status.extra["reason"] == "qr_limit" and "limit" in status.details

    await h.channel.connect()
    await asyncio.to_thread(fake.scan, INSTANCE)
    await asyncio.to_thread(fake.phone_logout, INSTANCE)
    await h.feed(sink.take())
    status = await h.channel.get_status()
    assert not status.connected and status.extra["reason"] == "logged_out"
    assert "Logged out" in status.details


async def test_disconnect_is_idempotent(make_channel: MakeChannel, fake: FakeGateway) -> None:
    h = make_channel()
    status = await h.channel.disconnect()  # no instance yet (404)
    assert status.state == "disconnected"
    fake.add_instance(INSTANCE, state="open")
    status = await h.channel.disconnect()
    assert status.state == "disconnected" and fake.instances[INSTANCE].state == "close"
    status = await h.channel.disconnect()  # 400 not connected: done already
    assert status.state == "disconnected"


async def test_status_reasons(
    make_channel: MakeChannel, fake: FakeGateway, closed_port: int
) -> None:
    assert (await make_channel().channel.get_status()).extra["reason"] == "no_instance"

    h = make_channel(env={"EVOLUTION_API_URL": None, "EVOLUTION_API_KEY": None})
    for status in (
        await h.channel.get_status(),
        await h.channel.connect(),
        await h.channel.disconnect(),
    ):
        assert status.state == "not_configured" and not status.connected

    h = make_channel(env={"EVOLUTION_API_URL": f"http://127.0.0.1:{closed_port}"})
    status = await h.channel.get_status()
    assert status.state == "unreachable" and "gateway unreachable" in status.details
    assert (await h.channel.connect()).state == "unreachable"
    assert h.reports[-1].state == "unreachable"

    fake.add_instance(INSTANCE)
    h = make_channel(env={"EVOLUTION_API_KEY": "wrong"})
    status = await h.channel.get_status()
    assert status.state == "error" and "API key" in status.details


# sending --------------------------------------------------------------------------------------


async def test_send_message(make_channel: MakeChannel, fake: FakeGateway) -> None:
    fake.add_instance(INSTANCE, state="open")
    h = make_channel()
    out = OutgoingMessage("whatsapp", "5491100000001", "Hola! " * 5)
    message_id = await h.channel.send_message(out)
    (sent,) = fake.sent
    assert message_id == sent.id
    assert (sent.number, sent.text) == ("5491100000001", out.text)
    assert sent.delay is None  # the typing pause is send_typing's, called by the core
    await h.channel.send_message(OutgoingMessage("whatsapp", "123456789@lid", "hi"))
    assert fake.sent[-1].number == "123456789@lid"
    assert await h.channel.send_message(OutgoingMessage("whatsapp", "1", "  ")) is None
    assert len(fake.sent) == 2


async def test_send_failure_raises_and_reconnects(
    make_channel: MakeChannel, fake: FakeGateway
) -> None:
    fake.add_instance(INSTANCE, state="open")
    fake.down = "closed"
    h = make_channel()
    out = OutgoingMessage("whatsapp", "5491100000001", "hola")
    with pytest.raises(EvolutionError) as err:
        await h.channel.send_message(out)
    assert err.value.is_connection_closed
    connect = ("GET", f"/instance/connect/{INSTANCE}")
    assert fake.requests.count(connect) == 1
    with pytest.raises(EvolutionError):
        await h.channel.send_message(out)
    assert fake.requests.count(connect) == 1  # reconnects are spaced out
    fake.down = None
    assert await h.channel.send_message(out)


@pytest.mark.parametrize("fault", ["slow", "reset"])
async def test_a_send_whose_answer_is_lost_is_of_unknown_outcome_and_is_found(
    make_channel: MakeChannel, fake: FakeGateway, fault: str
) -> None:
    fake.add_instance(INSTANCE, state="open")
    h = make_channel(table={"timeout_seconds": 0.5})
    assert h.channel.reconcile_after_seconds == 0.5
    before = datetime.now(UTC) - timedelta(seconds=5)
    out = OutgoingMessage("whatsapp", "5491100000001", "¿Algo más?")
    fake.send_fault = {"mode": fault, "seconds": 1.5, "count": 1}
    with pytest.raises(SendOutcomeUnknown):
        await h.channel.send_message(out)
    (sent,) = fake.sent  # it went out
    found = await h.channel.find_sent(out, before)
    assert found == SentCheck.sent(sent.id)
    other = OutgoingMessage("whatsapp", "5491100000001", "another text")
    assert await h.channel.find_sent(other, before) == SentCheck.not_sent()
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert await h.channel.find_sent(out, later) == SentCheck.not_sent()


async def test_find_sent_skips_ids_already_delivered_and_tries_the_argentine_jid(
    make_channel: MakeChannel, fake: FakeGateway
) -> None:
    instance = fake.add_instance(INSTANCE, state="open")
    h = make_channel()
    since = datetime.now(UTC) - timedelta(seconds=5)
    out = OutgoingMessage("whatsapp", "5491100000001", "Gracias")
    first = await h.channel.send_message(out)  # delivered, its id known
    assert await h.channel.find_sent(out, since) == SentCheck.not_sent()
    # WhatsApp's JID for an Argentine mobile has no 9 after 54
    record = {
        "key": {"remoteJid": "541100000001@s.whatsapp.net", "fromMe": True, "id": "BAE5OTHER"},
        "message": {"conversation": "Gracias"},
        "messageType": "conversation",
        "messageTimestamp": int(time.time()),
        "instanceId": instance.instance_id,
    }
    fake.store_message(record)
    assert await h.channel.find_sent(out, since) == SentCheck.sent("BAE5OTHER")
    assert first != "BAE5OTHER"
    fake.down = "drop"
    with pytest.raises(EvolutionError):
        await h.channel.find_sent(out, since)


async def test_send_refusals_are_permanent_or_retried(
    make_channel: MakeChannel, fake: FakeGateway, closed_port: int
) -> None:
    fake.add_instance(INSTANCE, state="open")
    h = make_channel()
    fake.not_on_whatsapp.add("5491100000009")
    with pytest.raises(PermanentSendError, match="not on WhatsApp"):
        await h.channel.send_message(OutgoingMessage("whatsapp", "5491100000009", "hola"))
    unreachable = make_channel(env={"EVOLUTION_API_URL": f"http://127.0.0.1:{closed_port}"})
    with pytest.raises(EvolutionError) as refused:  # never reached the gateway: plain retry
        await unreachable.channel.send_message(OutgoingMessage("whatsapp", "5491100000001", "x"))
    assert refused.value.unreachable and not refused.value.ambiguous


async def test_send_typing(make_channel: MakeChannel, fake: FakeGateway) -> None:
    fake.add_instance(INSTANCE, state="open")
    h = make_channel(table={"typing_max_seconds": 2})
    await h.channel.send_typing("5491100000001", 10)
    await h.channel.send_typing("5491100000001", 0)
    await h.channel.send_typing("5491100000001", 0.5)
    assert [(p.number, p.presence, p.delay) for p in fake.presences] == [
        ("5491100000001", "composing", 2000),
        ("5491100000001", "composing", 500),
    ]
    fake.down = "closed"
    await h.channel.send_typing("5491100000001", 1)  # a failed indicator is not an error


async def test_own_replies_echoed_back_are_dropped(
    make_channel: MakeChannel, fake: FakeGateway, sink: Sink
) -> None:
    fake.add_instance(
        INSTANCE,
        state="open",
        webhook_url=sink.url + "/api/webhooks/evolution",
        webhook_headers={"x-nicobot-secret": SECRET},
    )
    fake.instances[INSTANCE].webhook["events"] = ["MESSAGES_UPSERT"]
    h = make_channel()
    fake.echo_sent = True
    message_id = await h.channel.send_message(OutgoingMessage("whatsapp", "5491100000001", "hi"))
    # the echo is delivered from another thread
    assert await asyncio.to_thread(sink.wait_for, 1)
    received = sink.take()
    assert len(received) == 1 and received[0].json()["data"]["key"]["id"] == message_id
    (result,) = await h.feed(received)
    assert result.messages == [] and result.body["ignored"] == 1

    # the operator typing on the business phone is a business message, kept
    deliveries = await asyncio.to_thread(
        fake.deliver_message, INSTANCE, "I'll take this one", from_me=True
    )
    assert len(deliveries) == 1
    (result,) = await h.feed(sink.take())
    (msg,) = result.messages
    assert msg.from_business and msg.text == "I'll take this one"


# webhooks ----------------------------------------------------------------------------------


def body_v2() -> dict[str, Any]:
    body: dict[str, Any] = load_fixture("v2_messages_upsert_conversation_with_http_headers.json")[
        "body"
    ]
    body["instance"] = INSTANCE
    body["data"]["messageTimestamp"] = int(time.time())
    return body


def request(
    headers: dict[str, str] | None = None, subpath: str = "", payload: Any = None
) -> WebhookRequest:
    body = body_v2() if payload is None else payload
    raw = json.dumps(body).encode()
    return WebhookRequest("POST", headers or {}, subpath, {}, raw, body)


def jwt(secret: str, payload: dict[str, Any], alg: str = "HS256") -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    claims = b64(json.dumps(payload).encode())
    signature = hmac.new(secret.encode(), f"{head}.{claims}".encode(), hashlib.sha256).digest()
    return f"{head}.{claims}.{b64(signature)}"


@pytest.mark.parametrize(
    ("headers", "subpath"),
    [
        ({"x-nicobot-secret": SECRET}, ""),
        ({"X-Nicobot-Secret": SECRET}, ""),
        ({}, SECRET),
        ({}, f"{SECRET}/messages-upsert"),
        ({}, f"/{SECRET}/"),
        ({"apikey": SECRET}, ""),
        ({"authorization": f"Bearer {jwt(SECRET, {'exp': time.time() + 600})}"}, ""),
        # a retry of an event whose token expired minutes ago
        ({"authorization": f"Bearer {jwt(SECRET, {'exp': time.time() - 600})}"}, ""),
    ],
)
async def test_webhook_accepted(
    make_channel: MakeChannel, headers: dict[str, str], subpath: str
) -> None:
    h = make_channel()
    result = await h.channel.handle_webhook(request(headers, subpath))
    assert result.status == 200
    (msg,) = result.messages
    assert (msg.channel, msg.address, msg.phone_number, msg.sender_name, msg.text) == (
        "whatsapp",
        "5491100000001",
        "5491100000001",
        "Contact Name",
        "Oii",
    )
    assert msg.message_id == "782647C0073AA0039110EB72593C4AC5"
    assert msg.kind is MessageKind.TEXT


@pytest.mark.parametrize(
    ("headers", "subpath"),
    [
        ({}, ""),  # the global webhook: no auth at all
        ({"x-nicobot-secret": "wrong"}, ""),
        ({"x-nicobot-secret": SECRET[:-1]}, ""),
        ({}, SECRET + "x"),
        ({}, "messages-upsert"),
        ({}, f"messages-upsert/{SECRET}"),
        ({"apikey": "00000000-INSTANCE-TOKEN-0001"}, ""),  # the instance token, not our secret
        ({"authorization": f"Bearer {jwt('other', {})}"}, ""),
        ({"authorization": f"Bearer {jwt(SECRET, {'exp': time.time() - 3600})}"}, ""),
        ({"authorization": f"Bearer {jwt(SECRET, {'app': 'evolution'})}"}, ""),  # no exp
        ({"authorization": f"Bearer {jwt(SECRET, {'exp': time.time() + 10**8})}"}, ""),
        ({"authorization": f"Bearer {jwt(SECRET, {'exp': True})}"}, ""),
        ({"authorization": f"Bearer {jwt(SECRET, {}, alg='none')}"}, ""),
        ({"authorization": f"Bearer {SECRET}"}, ""),
        ({"x-nicobot-secret": "ñ"}, ""),
    ],
)
async def test_webhook_rejected(
    make_channel: MakeChannel, headers: dict[str, str], subpath: str
) -> None:
    h = make_channel()
    with pytest.raises(WebhookRejected) as rejected:
        await h.channel.handle_webhook(request(headers, subpath))
    assert rejected.value.status == 401


async def test_webhook_rejected_without_any_secret(make_channel: MakeChannel) -> None:
    h = make_channel(env={"EVOLUTION_WEBHOOK_SECRET": None})
    with pytest.raises(WebhookRejected):
        await h.channel.handle_webhook(request({"x-nicobot-secret": ""}))
    with pytest.raises(WebhookRejected):
        await h.channel.handle_webhook(request({}, ""))


async def test_webhook_when_not_configured(make_channel: MakeChannel) -> None:
    h = make_channel(env={"EVOLUTION_API_URL": None})
    with pytest.raises(WebhookRejected) as rejected:
        await h.channel.handle_webhook(request({"x-nicobot-secret": SECRET}))
    assert rejected.value.status == 404


def test_verify_jwt_garbage() -> None:
    for token in ("", "a.b", "a.b.c", "....", "x.y.z.w", "eyJ.eyJ.###"):
        assert verify_jwt(token, SECRET) is False


@pytest.mark.parametrize(
    "payload",
    [None, [], "junk", {"event": "messages.update", "data": {}}, {"event": "x", "data": []}],
)
async def test_webhook_never_fails_on_payloads(make_channel: MakeChannel, payload: Any) -> None:
    h = make_channel()
    req = WebhookRequest("POST", {"x-nicobot-secret": SECRET}, "", {}, b"", payload)
    result = await h.channel.handle_webhook(req)
    assert result.status == 200 and result.messages == []


async def test_webhook_for_other_instance_is_dropped(make_channel: MakeChannel) -> None:
    payload = body_v2()
    payload["instance"] = "someone-else"
    h = make_channel()
    result = await h.channel.handle_webhook(request({"x-nicobot-secret": SECRET}, "", payload))
    assert result.messages == []


async def test_by_events_and_global_webhook_through_the_fake(
    make_channel: MakeChannel, fake: FakeGateway, sink: Sink
) -> None:
    """The real delivery paths: by-events on a path-secret URL, and the unauthenticated
    global webhook beside it (every event comes twice; only one copy is accepted)."""
    fake.global_webhook_url = sink.url + "/api/webhooks/evolution"
    fake.add_instance(INSTANCE, state="open")
    fake.instances[INSTANCE].webhook = {
        "enabled": True,
        "url": f"{sink.url}/api/webhooks/evolution/{SECRET}",
        "headers": {},
        "byEvents": True,
        "base64": False,
        "events": ["MESSAGES_UPSERT"],
    }
    h: Harness = make_channel()
    await asyncio.to_thread(fake.deliver_message, INSTANCE, "Hola", lid="12345@lid")
    received = sorted(sink.take(), key=lambda r: r.path)
    assert [r.path for r in received] == [
        "/api/webhooks/evolution",
        f"/api/webhooks/evolution/{SECRET}/messages-upsert",
    ]
    with pytest.raises(WebhookRejected):
        await h.channel.handle_webhook(received[0].as_webhook_request())
    result = await h.channel.handle_webhook(received[1].as_webhook_request())
    (msg,) = result.messages
    assert msg.address == "5491100000001" and msg.text == "Hola"


async def test_inbound_kinds_through_the_fake(
    make_channel: MakeChannel, fake: FakeGateway, sink: Sink
) -> None:
    fake.add_instance(
        INSTANCE,
        state="open",
        webhook_url=sink.url + "/api/webhooks/evolution",
        webhook_headers={"x-nicobot-secret": SECRET},
    )
    h = make_channel()
    await asyncio.to_thread(
        fake.deliver_message, INSTANCE, None, message={"audioMessage": {"ptt": True}}
    )
    await asyncio.to_thread(
        fake.deliver_message, INSTANCE, None, message={"reactionMessage": {"text": "👍"}}
    )
    await asyncio.to_thread(
        fake.deliver_message, INSTANCE, "old", timestamp=int(time.time()) - 3600
    )
    results = await h.feed(sink.take())
    # an hour late, with no offline window known: delivered late, not a replay
    kinds = [[m.kind for m in r.messages] for r in results]
    assert kinds == [[MessageKind.AUDIO], [], [MessageKind.TEXT]]


# late messages, history replays and catching up -----------------------------------------


def state_context(fake: FakeGateway, state: dict[str, str], submitted: list[Any]) -> Any:
    """A channel context whose channel state lives in ``state`` and whose submit
    records messages (and drops repeated ids, as the core's inbox does)."""
    seen: set[str] = set()

    async def submit(message: Any) -> bool:
        if message.message_id in seen:
            return False
        seen.add(message.message_id)
        submitted.append(message)
        return True

    async def load(key: str) -> str | None:
        return state.get(key)

    async def save(key: str, value: str | None) -> None:
        if value is None:
            state.pop(key, None)
        else:
            state[key] = value

    async def report(status: Any) -> None:
        pass

    environ = {"EVOLUTION_API_URL": fake.url, "EVOLUTION_API_KEY": fake.api_key}
    return WhatsAppChannel.load_config({}, environ), ChannelContext(
        settings=Settings(),
        env=environ,
        report_status=report,
        submit=submit,
        load_state=load,
        save_state=save,
    )


def upsert_request(data: dict[str, Any]) -> WebhookRequest:
    body = {"event": "messages.upsert", "instance": INSTANCE, "data": data}
    return WebhookRequest("POST", {"x-nicobot-secret": SECRET}, "", {}, b"", body)


async def test_late_live_messages_are_kept_and_offline_backlog_skipped(fake: FakeGateway) -> None:
    instance = fake.add_instance(INSTANCE, state="open")
    now = datetime.now(UTC)
    state = {
        "offline_from": (now - timedelta(hours=2)).isoformat(),
        "offline_until": (now - timedelta(hours=1)).isoformat(),  # the last reconnect
    }
    config, context = state_context(fake, state, [])
    config.webhook_secret = SECRET
    config.catch_up = False
    channel = WhatsAppChannel(config, context)
    await channel.start()
    try:

        def at(minutes_ago: int) -> dict[str, Any]:
            stamp = int((now - timedelta(minutes=minutes_ago)).timestamp())
            return fake.message_data(instance, text=f"{minutes_ago} min ago", timestamp=stamp)

        backlog = await channel.handle_webhook(upsert_request(at(90)))  # written offline
        late = await channel.handle_webhook(upsert_request(at(30)))  # written online
        too_old = await channel.handle_webhook(upsert_request(at(60 * 25)))
        assert backlog.messages == [] and too_old.messages == []
        assert [m.text for m in late.messages] == ["30 min ago"]
        assert state["last_seen"] == late.messages[0].timestamp.isoformat()
    finally:
        await channel.stop()


async def test_catching_up_queues_what_was_missed_once(fake: FakeGateway) -> None:
    instance = fake.add_instance(INSTANCE, state="open")
    now = datetime.now(UTC)
    state = {"last_seen": (now - timedelta(minutes=10)).isoformat()}
    submitted: list[Any] = []
    config, context = state_context(fake, state, submitted)
    config.catch_up = False  # not in the background on start: called below
    channel = WhatsAppChannel(config, context)
    await channel.start()
    try:
        for n, minutes_ago in enumerate((9, 5, 1)):
            stamp = int((now - timedelta(minutes=minutes_ago)).timestamp())
            fake.customer_wrote_while_receiver_down(
                INSTANCE, f"missed {n}", number=f"549110000010{n}", timestamp=stamp
            )
        fake.customer_wrote_while_receiver_down(  # before the newest seen: handled already
            INSTANCE, "seen", timestamp=int((now - timedelta(minutes=20)).timestamp())
        )
        own = fake.message_data(instance, text="our reply", from_me=True)
        fake.store_message(own)
        assert await channel.catch_up() == 3
        assert sorted(m.text for m in submitted) == ["missed 0", "missed 1", "missed 2"]
        assert {m.address for m in submitted} == {f"549110000010{n}" for n in range(3)}
        assert await channel.catch_up() == 0  # the same messages are duplicates now
        assert datetime.fromisoformat(state["last_seen"]) >= now - timedelta(minutes=2)
    finally:
        await channel.stop()
