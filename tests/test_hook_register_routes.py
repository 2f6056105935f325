"""register_routes: a plugin's blueprint is served, with its own access rules."""

from __future__ import annotations

import pytest
from quart import Blueprint, jsonify

from nicobot import admin_required, hookimpl
from nicobot.testing import FakeChannelPlugin


class RoutesPlugin:
    @hookimpl
    def register_routes(self, app):
        blueprint = Blueprint("extra", __name__)

        @blueprint.get("/extra/open")
        async def open_view():
            return jsonify(ok=True)

        @blueprint.get("/extra/admin")
        @admin_required
        async def admin_view():
            return jsonify(admin=True)

        app.register_blueprint(blueprint)


@pytest.fixture
def nicobot_plugins():
    return [FakeChannelPlugin(), (RoutesPlugin(), "routes")]


async def test_hook_register_routes(nicobot_client):
    assert (await (await nicobot_client.get("/extra/open")).get_json()) == {"ok": True}
    assert (await nicobot_client.get("/extra/admin")).status_code == 200
    refused = await nicobot_client.get("/extra/admin", headers={"Authorization": ""})
    assert refused.status_code in (401, 302)
