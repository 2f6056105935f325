"""The Channels card in headless Chromium follows the channel's capabilities: a channel that
connects without a QR code gets a Connect button that connects it (no scanning steps), and
a Disconnect button once connected."""

from __future__ import annotations

import pytest

from hook_support import install_plugin
from nicobot.testing import make_project
from test_browser import log_in

pytestmark = pytest.mark.browser

LINKER = """
from nicobot import Channel, ChannelStatus, hookimpl


class LinkerChannel(Channel):
    name = "linker"
    label = "Linker"
    supports_connect = True
    supports_disconnect = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.linked = False

    async def get_status(self):
        state = "connected" if self.linked else "disconnected"
        return ChannelStatus(self.linked, state, account="linker-account" if self.linked else None)

    async def connect(self):
        self.linked = True
        return await self.get_status()

    async def disconnect(self):
        self.linked = False
        return await self.get_status()

    async def send_message(self, message):
        return None


@hookimpl
def register_channels():
    return [LinkerChannel]
"""


def test_a_channel_without_qr_connects_and_disconnects_from_its_card(
    tmp_path, nicobot_server, page, screenshot
):
    env = install_plugin(tmp_path / "site", "linker", LINKER)
    server = nicobot_server(make_project(tmp_path / "p"), env)
    log_in(page, server)
    page.goto(server.url + "/admin?tab=channels")
    card = page.locator("[data-channel=linker]")
    assert card.locator(".status-text").inner_text() == "Disconnected"
    assert card.locator(".state-scanning").count() == 0
    card.locator("button.connect").click()
    card.locator(".state-connected .account").filter(has_text="linker-account").wait_for()
    assert card.locator(".status-text").inner_text() == "Connected"
    screenshot("admin-channel-without-qr")
    card.locator("button.disconnect").click()
    card.locator(".state-disconnected button.connect").wait_for()
    assert card.locator(".status-text").inner_text() == "Disconnected"
    simulator = page.locator("[data-channel=simulator]")
    assert simulator.locator("button").count() == 0
