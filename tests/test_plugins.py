"""The plugin system: built-ins, entry points, async hooks, conflicts and docs."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from nicobot import Channel, ChannelStatus, hookimpl, hookspecs
from nicobot.bot import Bot
from nicobot.config import load_settings
from nicobot.errors import PluginError
from nicobot.plugins import DEFAULT_PLUGINS, call_hook, describe_plugins, make_plugin_manager

DOCS = Path(__file__).resolve().parents[1] / "docs" / "plugins" / "hooks.md"


def hook_names() -> list[str]:
    return [
        name
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(fn, "nicobot_spec")
    ]


def test_every_hook_is_documented():
    documented = set(re.findall(r"^### (\w+)$", DOCS.read_text(), flags=re.MULTILINE))
    hooks = set(hook_names())
    assert hooks, "no hookspecs found"
    assert hooks - documented == set(), "undocumented hooks"
    assert documented - hooks == set(), "documented hooks that do not exist"


def test_no_hook_that_may_be_async_is_firstresult():
    pm = make_plugin_manager(load_entry_points=False)
    for name in hook_names():
        assert not getattr(pm.hook, name).spec.opts.get("firstresult"), name


def test_builtins_are_plugins_like_any_other():
    pm = make_plugin_manager(load_entry_points=False)
    names = {info.name for info in describe_plugins(pm)}
    assert set(DEFAULT_PLUGINS) <= names


async def test_sync_and_async_implementations_are_both_awaited():
    pm = make_plugin_manager(load_entry_points=False)
    seen = []

    class Sync:
        @hookimpl
        def startup(self, bot):
            seen.append("sync")
            return "a"

    class Async:
        @hookimpl
        async def startup(self, bot):
            seen.append("async")
            return "b"

    pm.register(Sync())
    pm.register(Async())
    results = await call_hook(pm, "startup", bot=None)
    assert sorted(results) == ["a", "b"]
    assert sorted(seen) == ["async", "sync"]


class _Twin(Channel):
    name = "simulator"
    label = "Twin"

    async def get_status(self) -> ChannelStatus:
        return ChannelStatus(True, "connected")

    async def send_message(self, message):
        return None


def test_duplicate_component_names_name_both_plugins(tmp_path):
    pm = make_plugin_manager(load_entry_points=False)

    class TwinPlugin:
        @hookimpl
        def register_channels(self):
            return [_Twin]

    pm.register(TwinPlugin(), name="twin-plugin")
    with pytest.raises(PluginError) as error:
        Bot(load_settings(tmp_path, environ={}), pm)
    assert "'simulator'" in str(error.value)
    assert "nicobot.builtins.simulator" in str(error.value)
    assert "twin-plugin" in str(error.value)


def test_load_plugins_env_limits_entry_points(monkeypatch):
    monkeypatch.setenv("NICOBOT_LOAD_PLUGINS", "no-such-plugin")
    pm = make_plugin_manager()
    assert {name for name, _ in pm.list_name_plugin()} == set(DEFAULT_PLUGINS)


def test_unknown_store_backend_is_a_config_error(tmp_path):
    from nicobot.errors import ConfigError

    (tmp_path / "nicobot.toml").write_text("[store]\nbackend = 'postgres'\n")
    with pytest.raises(ConfigError, match=r"store\.backend: no store plugin named 'postgres'"):
        Bot(load_settings(tmp_path, environ={}), make_plugin_manager(load_entry_points=False))


def test_a_plain_channel_config_is_validated_into_the_channels_own_model(tmp_path):
    from nicobot import ChannelConfig, ChannelContext
    from nicobot.config import load_settings as load

    class TwinConfig(ChannelConfig):
        token: str = "default-token"

    class Configured(_Twin):
        config_model = TwinConfig

    async def report(status):
        return None

    context = ChannelContext(settings=load(tmp_path, environ={}), env={}, report_status=report)
    channel = Configured(ChannelConfig.model_validate({"token": "t-1"}), context)
    assert isinstance(channel.config, TwinConfig)
    assert channel.config.token == "t-1"
