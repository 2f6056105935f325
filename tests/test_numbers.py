"""Several WhatsApp numbers per bot: [channels.whatsapp.instances.NAME], each its own
Evolution instance, pairing and status; replies leave through the number written to."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from nicobot_whatsapp_evolution.testing import FakeGateway

from nicobot.config import ConfigError
from nicobot.testing import make_project

SECRET = "numbers-webhook-secret"
SALES = """
[channels.whatsapp.instances.ventas]
label = "WhatsApp Ventas"
"""


@pytest.fixture
def gateway() -> Iterator[FakeGateway]:
    with FakeGateway(api_key="numbers-key") as fake:
        yield fake


@pytest.fixture
def nicobot_project(tmp_path):
    return make_project(tmp_path / "project", sales=SALES)


@pytest.fixture
def nicobot_env(fake_llm, gateway):
    return {
        **fake_llm.env,
        "EVOLUTION_API_URL": gateway.url,
        "EVOLUTION_API_KEY": gateway.api_key,
        "EVOLUTION_INSTANCE_NAME": "tienda",
        "EVOLUTION_WEBHOOK_SECRET": SECRET,
        "NICOBOT_PUBLIC_URL": "http://127.0.0.1:9",
        "NICOBOT_CHANNELS__WHATSAPP__DEBOUNCE_SECONDS": "0",
        "NICOBOT_CHANNELS__WHATSAPP__TYPING_MAX_SECONDS": "0",
    }


async def status(client, name: str) -> dict:
    return await (await client.get(f"/api/channels/{name}/status")).get_json()


async def test_two_instances_pair_separately(nicobot_client, nicobot_bot, gateway):
    sales = nicobot_bot.channels.get("whatsapp-ventas")
    assert sales is not None and sales.label == "WhatsApp Ventas"
    assert sales.config.instance == "ventas" and sales.config.url == gateway.url
    listed = {
        c["name"]
        for c in (await (await nicobot_client.get("/api/channels")).get_json())["channels"]
    }
    assert {"whatsapp", "whatsapp-ventas"} <= listed

    connected = await (
        await nicobot_client.post("/api/channels/whatsapp-ventas/connect")
    ).get_json()
    assert connected["state"] in ("scanning", "waiting_qr")
    assert set(gateway.instances) == {"ventas"}
    assert gateway.instances["ventas"].webhook["url"] == (
        "http://127.0.0.1:9/api/webhooks/evolution-ventas"
    )
    await nicobot_client.post("/api/channels/whatsapp/connect")
    assert set(gateway.instances) == {"ventas", "tienda"}

    await asyncio.to_thread(gateway.scan, "ventas")
    assert (await status(nicobot_client, "whatsapp-ventas"))["connected"] is True
    assert (await status(nicobot_client, "whatsapp"))["connected"] is False
    admin = await (await nicobot_client.get("/admin?tab=channels")).get_data(as_text=True)
    assert 'data-channel="whatsapp-ventas"' in admin and 'data-channel="whatsapp"' in admin


async def test_each_customer_is_answered_from_the_number_they_wrote_to(
    nicobot_client, nicobot_bot, gateway
):
    for name in ("tienda", "ventas"):
        gateway.add_instance(name, state="open")
    writes = [
        ("evolution", "tienda", "5491100000001", "¿Abren hoy?"),
        ("evolution-ventas", "ventas", "5491100000002", "Quiero comprar"),
        ("evolution-ventas", "ventas", "5491100000001", "¿Y por mayor?"),
    ]
    for slug, instance, number, text in writes:
        data = gateway.message_data(gateway.instances[instance], text=text, number=number)
        response = await nicobot_client.post(
            f"/api/webhooks/{slug}",
            json={"event": "messages.upsert", "instance": instance, "data": data},
            headers={"Authorization": "", "x-nicobot-secret": SECRET},
        )
        assert (await response.get_json())["messages"] == 1
    await nicobot_bot.pipeline.wait_idle(30)
    sent = sorted((s.instance, s.number, s.text) for s in gateway.sent)
    assert sent == [
        ("tienda", "5491100000001", "Echo: ¿Abren hoy?"),
        ("ventas", "5491100000001", "Echo: ¿Y por mayor?"),
        ("ventas", "5491100000002", "Echo: Quiero comprar"),
    ]
    sessions = await nicobot_bot.store.list_sessions()
    assert sorted((s.channel, s.address) for s in sessions) == [
        ("whatsapp", "5491100000001"),
        ("whatsapp-ventas", "5491100000001"),
        ("whatsapp-ventas", "5491100000002"),
    ]


async def test_an_event_for_the_other_instance_is_not_taken(nicobot_client, gateway):
    gateway.add_instance("ventas", state="open")
    data = gateway.message_data(gateway.instances["ventas"], text="hola")
    response = await nicobot_client.post(
        "/api/webhooks/evolution",  # the main number's webhook
        json={"event": "messages.upsert", "instance": "ventas", "data": data},
        headers={"Authorization": "", "x-nicobot-secret": SECRET},
    )
    assert (await response.get_json())["messages"] == 0


def test_a_bad_instance_name_stops_startup(tmp_path):
    from nicobot.bot import Bot
    from nicobot.config import load_settings
    from nicobot.plugins import make_plugin_manager

    project = make_project(tmp_path / "p", bad="[channels.whatsapp.instances.Ventas]")
    with pytest.raises(ConfigError, match=r"channels\.whatsapp\.instances: 'Ventas'"):
        Bot(load_settings(project, environ={}), make_plugin_manager())
