"""Channel capabilities (pairs by QR, connect, disconnect, send) decide what the admin page,
the API and the command line offer; uninstalled plugins are listed from a data file."""

from __future__ import annotations

import re

import pytest

from hook_support import nicobot
from nicobot import Channel
from nicobot.catalogue import channel_plugins
from nicobot.testing import FakeChannel, make_project


@pytest.fixture(autouse=True)
def no_installed_plugins(monkeypatch):
    monkeypatch.setenv("NICOBOT_LOAD_PLUGINS", "")


def card(page: str, name: str) -> str:
    start = page.index(f'data-channel="{name}"')
    return page[start : page.index("</article>", start)]


def test_capabilities_default_to_not_supported_except_sending():
    assert Channel.capabilities() == {
        "pairs_by_qr": False,
        "connect": False,
        "disconnect": False,
        "send": True,
    }
    assert FakeChannel.capabilities()["connect"] and FakeChannel.capabilities()["disconnect"]


async def test_cards_follow_each_channels_capabilities(nicobot_client):
    page = await (await nicobot_client.get("/admin?tab=channels")).get_data(as_text=True)
    simulator = card(page, "simulator")
    assert "button" not in simulator
    fake = card(page, "fake")
    assert 'data-qr="false"' in fake
    assert re.search(r'<button[^>]*class="primary connect"', fake)
    assert re.search(r'<button[^>]*class="secondary danger disconnect"', fake)
    assert "state-scanning" not in fake and "Scan the code" not in fake
    assert "Link the business" not in fake


async def test_plugins_not_installed_are_offered_from_the_list(nicobot_client):
    page = await (await nicobot_client.get("/admin?tab=channels")).get_data(as_text=True)
    listed = {p.channel for p in channel_plugins()}
    assert {"whatsapp", "telegram"} <= listed
    offered = set(re.findall(r'class="card channel-card available" data-channel="(\w+)"', page))
    assert offered == listed
    telegram = card(page, "telegram")
    assert "Install the nicobot-telegram plugin and restart nicobot." in telegram
    assert "Coming soon" not in page


async def test_the_api_refuses_what_a_channel_cannot_do(nicobot_client):
    listing = await (await nicobot_client.get("/api/channels")).get_json()
    by_name = {c["name"]: c for c in listing["channels"]}
    assert by_name["simulator"]["capabilities"]["connect"] is False
    for action in ("connect", "disconnect"):
        response = await nicobot_client.post(f"/api/channels/simulator/{action}")
        assert response.status_code == 409
        assert (await response.get_json())["error"] == (
            f"Simulator cannot {action}: it works from its settings alone"
        )
    assert (await nicobot_client.post("/api/channels/fake/connect")).status_code == 200


def test_the_cli_says_a_channel_has_nothing_to_pair(tmp_path):
    project = make_project(tmp_path / "p")
    env = {"NICOBOT_LOAD_PLUGINS": ""}
    connect = nicobot(env, "channels", "connect", "simulator", "-p", str(project))
    assert connect.returncode == 1
    assert connect.stderr == (
        "Error: Simulator has nothing to connect: it works from its settings alone "
        "(see `nicobot channels status simulator`)\n"
    )
    disconnect = nicobot(env, "channels", "disconnect", "simulator", "-p", str(project))
    assert disconnect.returncode == 1
    assert disconnect.stderr.startswith("Error: Simulator cannot be disconnected")
