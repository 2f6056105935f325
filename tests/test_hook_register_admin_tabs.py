"""register_admin_tabs: a plugin's tab is on the admin page, in its order."""

from __future__ import annotations

import pytest

from nicobot import AdminTab, hookimpl
from nicobot.testing import FakeChannelPlugin


class TabPlugin:
    @hookimpl
    def register_admin_tabs(self):
        return [AdminTab(name="extra", label="Extra things", template="admin/prompt.html", order=5)]


@pytest.fixture
def nicobot_plugins():
    return [FakeChannelPlugin(), (TabPlugin(), "tabs")]


async def test_hook_register_admin_tabs(nicobot_client):
    page = await nicobot_client.get("/admin")
    text = await page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Extra things" in text
    assert text.index("Extra things") < text.index("Knowledge")  # order 5 comes first
