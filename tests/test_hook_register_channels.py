"""register_channels: the classes become the bot's channels; mistakes name the plugin."""

from __future__ import annotations

import pytest

from nicobot import Channel, ChannelStatus, hookimpl
from nicobot.bot import Bot
from nicobot.config import load_settings
from nicobot.errors import PluginError
from nicobot.plugins import make_plugin_manager, register_plugin


class Echoes(Channel):
    name = "echoes"
    label = "Echoes"
    webhook_slug = "fake"

    async def get_status(self) -> ChannelStatus:
        return ChannelStatus(True, "connected")

    async def send_message(self, message):
        return None


class EchoesPlugin:
    @hookimpl
    def register_channels(self):
        return [Echoes]


class NotAList:
    @hookimpl
    def register_channels(self):
        return Echoes


class AsyncPlugin:
    @hookimpl
    async def register_channels(self):
        return [Echoes]


def bot_with(tmp_path, plugin, name):
    pm = make_plugin_manager(load_entry_points=False)
    register_plugin(pm, plugin, name)
    return Bot(load_settings(tmp_path, environ={}), pm)


def test_hook_register_channels(tmp_path):
    bot = bot_with(tmp_path, EchoesPlugin(), "echoes-plugin")
    channel = bot.channels.get("echoes")
    assert isinstance(channel, Echoes)
    assert bot.channels.by_webhook_slug("fake") is channel


def test_two_channels_on_one_webhook_slug_are_refused(tmp_path):
    from nicobot.testing import FakeChannelPlugin

    pm = make_plugin_manager(load_entry_points=False)
    pm.register(FakeChannelPlugin(), name="fakes")
    pm.register(EchoesPlugin(), name="echoes-plugin")
    with pytest.raises(PluginError) as error:
        Bot(load_settings(tmp_path, environ={}), pm)
    assert str(error.value).startswith("webhook slug 'fake' is claimed by both")
    assert "'echoes-plugin'" in str(error.value) and "'fakes'" in str(error.value)


def test_an_async_registration_hook_names_the_plugin(tmp_path):
    expected = r"plugin 'slow-start': register_channels must be a plain def"
    with pytest.raises(PluginError, match=expected):
        bot_with(tmp_path, AsyncPlugin(), "slow-start")


def test_a_result_that_is_not_a_list_names_the_plugin(tmp_path):
    with pytest.raises(PluginError, match=r"plugin 'lonely': register_channels must return a list"):
        bot_with(tmp_path, NotAList(), "lonely")
