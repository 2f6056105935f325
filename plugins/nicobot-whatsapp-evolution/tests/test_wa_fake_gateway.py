"""The fake gateway itself: rejects what the real one rejects, and its control endpoints."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import httpx
import pytest

import nicobot_whatsapp_evolution
from evo_support import INSTANCE, SCHEMAS, Sink
from nicobot_whatsapp_evolution import WhatsAppChannel
from nicobot_whatsapp_evolution.testing import FakeGateway, GatewayProcess

KEY = {"apikey": "global-key"}


def test_schema_rejects_v1_send_text(fake: FakeGateway) -> None:
    fake.add_instance(INSTANCE, state="open")
    answer = httpx.post(
        f"{fake.url}/message/sendText/{INSTANCE}",
        json={"number": "5491100000001", "textMessage": {"text": "hi"}},
        headers=KEY,
    )
    assert answer.status_code == 400
    assert answer.json() == {
        "status": 400,
        "error": "Bad Request",
        "response": {"message": [['instance requires property "text"']]},
    }
    assert fake.sent == []


def test_create_checks_done_in_code(fake: FakeGateway) -> None:
    no_events = {"instanceName": "a", "integration": "WHATSAPP-BAILEYS", "webhook": {"url": "x"}}
    assert httpx.post(f"{fake.url}/instance/create", json=no_events, headers=KEY).status_code == 400
    bad = {"instanceName": "a", "integration": "WHATSAPP-OTHER"}
    assert httpx.post(f"{fake.url}/instance/create", json=bad, headers=KEY).status_code == 400
    bad_type = {"instanceName": "a", "qrcode": "yes"}
    answer = httpx.post(f"{fake.url}/instance/create", json=bad_type, headers=KEY)
    assert answer.status_code == 400 and isinstance(answer.json()["response"]["message"][0], list)
    assert fake.instances == {}


def test_webhook_set_enabled_without_events_is_a_500(fake: FakeGateway) -> None:
    fake.add_instance(INSTANCE)
    body = {"webhook": {"enabled": True, "url": "http://x"}}
    answer = httpx.post(f"{fake.url}/webhook/set/{INSTANCE}", json=body, headers=KEY)
    assert answer.status_code == 500


def test_unknown_route_and_missing_key(fake: FakeGateway) -> None:
    assert httpx.get(f"{fake.url}/nope", headers=KEY).status_code == 404
    answer = httpx.post(f"{fake.url}/instance/create", json={"instanceName": "a"})
    assert answer.status_code == 401
    assert answer.json()["response"]["message"] == "Unauthorized"


def test_control_endpoints_over_http(fake: FakeGateway, sink: Sink) -> None:
    fake.add_instance(
        INSTANCE,
        webhook_url=sink.url + "/api/webhooks/evolution",
        webhook_headers={"x-nicobot-secret": "s"},
    )
    fake.instances[INSTANCE].webhook["events"] = ["MESSAGES_UPSERT", "CONNECTION_UPDATE"]
    with httpx.Client(base_url=fake.url) as http:
        (delivery,) = http.post("/_fake/scan", json={"instance": INSTANCE}).json()
        assert delivery["status"] == 200 and delivery["event"] == "connection.update"
        deliveries = http.post("/_fake/deliver", json={"text": "Hola", "copies": 5}).json()
        assert [d["status"] for d in deliveries] == [200] * 5
        assert len({d["body"]["data"]["key"]["id"] for d in deliveries}) == 1
        assert http.get("/_fake/state").json()["instances"][INSTANCE]["state"] == "open"
        assert http.post("/_fake/down", json={"mode": "closed"}).json() == {"down": "closed"}
        send = http.post(
            f"/message/sendText/{INSTANCE}", json={"number": "1", "text": "x"}, headers=KEY
        )
        assert send.status_code == 500  # "Connection Closed", as 2.3.7 answers
        http.post("/_fake/down", json={"mode": None})
        send = http.post(
            f"/message/sendText/{INSTANCE}", json={"number": "1", "text": "x"}, headers=KEY
        )
        assert send.status_code == 201
        sent = http.get("/_fake/sent").json()
        assert [s["text"] for s in sent["sent"]] == ["x"]
        assert len(sent["deliveries"]) == 6
        assert http.post("/_fake/nothing", json={}).status_code == 404
        assert http.post("/_fake/scan", json={"instance": "missing"}).status_code == 404
    received = sink.take()
    assert len(received) == 6
    assert all(r.headers["x-nicobot-secret"] == "s" for r in received)
    assert all(r.headers["user-agent"].startswith("axios/") for r in received)
    body = received[-1].json()
    assert body["event"] == "messages.upsert" and body["instance"] == INSTANCE
    assert set(body) == {
        "event",
        "instance",
        "data",
        "destination",
        "date_time",
        "sender",
        "server_url",
        "apikey",
    }
    assert body["data"]["key"]["remoteJid"] == "5491100000001@s.whatsapp.net"


def test_deliveries_skip_unsubscribed_events(fake: FakeGateway, sink: Sink) -> None:
    fake.add_instance(INSTANCE, webhook_url=sink.url + "/hook")  # MESSAGES_UPSERT only
    assert fake.scan(INSTANCE) == []
    assert len(fake.deliver_message(INSTANCE, "hi")) == 1


@pytest.fixture
def fake_process() -> Iterator[tuple[subprocess.Popen[str], str]]:
    gateway = GatewayProcess("proc-key", SCHEMAS, echo_sent=False)
    try:
        yield gateway.process, gateway.url
    finally:
        gateway.stop()


def test_runs_as_a_process(fake_process: tuple[subprocess.Popen[str], str]) -> None:
    process, url = fake_process
    create = {
        "instanceName": INSTANCE,
        "integration": "WHATSAPP-BAILEYS",
        "qrcode": True,
        "webhook": {"url": "http://127.0.0.1:9/x", "events": ["MESSAGES_UPSERT"]},
    }
    answer = httpx.post(f"{url}/instance/create", json=create, headers={"apikey": "proc-key"})
    assert answer.status_code == 201 and answer.json()["qrcode"] == {"count": 0}
    # the webhook target is down: the delivery is recorded as failed, the fake goes on
    (delivery,) = httpx.post(f"{url}/_fake/deliver", json={}).json()
    assert delivery["status"] is None and delivery["error"]
    assert httpx.get(f"{url}/_fake/state").json()["instances"][INSTANCE]["state"] == "connecting"
    process.terminate()
    assert process.wait(timeout=10) == 0


# the package as a plugin -----------------------------------------------------------------------


def test_entry_point_registers_the_channel() -> None:
    (entry,) = [e for e in metadata.entry_points(group="nicobot") if e.name == "whatsapp"]
    plugin = entry.load()
    assert plugin.register_channels() == [WhatsAppChannel]
    assert WhatsAppChannel.name == "whatsapp" and WhatsAppChannel.webhook_slug == "evolution"
    assert WhatsAppChannel.supports_qr and WhatsAppChannel.supports_typing


def test_uses_only_the_public_nicobot_api() -> None:
    package = Path(nicobot_whatsapp_evolution.__file__).parent
    for source in package.glob("*.py"):
        text = source.read_text(encoding="utf-8")
        assert not re.search(r"^\s*(from|import)\s+nicobot\.", text, re.M), source.name
    assert (package / "py.typed").is_file()
