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
from nicobot.hookcalls import HookRunner
from nicobot.plugins import DEFAULT_PLUGINS, describe_plugins, make_plugin_manager

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
    await HookRunner(pm, timeout=5).run_each("startup", bot=None)
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
    channel = Configured(ChannelConfig(debounce_seconds=1.5), context)
    assert isinstance(channel.config, TwinConfig)
    assert (channel.config.token, channel.config.debounce_seconds) == ("default-token", 1.5)


def test_an_unknown_channel_key_stops_start_up_naming_it(tmp_path):
    from nicobot.errors import ConfigError

    (tmp_path / "nicobot.toml").write_text("[channels.simulator]\ndebounce_secs = 2\n")
    with pytest.raises(ConfigError, match=r"channels\.simulator\.debounce_secs: unknown key"):
        Bot(load_settings(tmp_path, environ={}), make_plugin_manager(load_entry_points=False))


def test_a_table_for_a_channel_nobody_provides_is_logged(tmp_path, caplog):
    (tmp_path / "nicobot.toml").write_text("[channels.instagram]\nenabled = true\n")
    Bot(load_settings(tmp_path, environ={}), make_plugin_manager(load_entry_points=False))
    assert "[channels.instagram] is ignored: no installed plugin" in caplog.text


MISSPELLED = """
from nicobot import hookimpl


@hookimpl
def register_channel():
    return []
"""

ASYNC_REGISTRATION = """
from nicobot import hookimpl


@hookimpl
async def register_channels():
    return []
"""


@pytest.mark.parametrize("command", [["plugins"], ["serve", "--port", "1"]])
def test_a_misspelled_hook_stops_the_command_naming_the_plugin(tmp_path, command):
    from hook_support import install_plugin, nicobot
    from nicobot.testing import make_project

    env = install_plugin(tmp_path / "site", "typo", MISSPELLED)
    result = nicobot(env, *command, cwd=make_project(tmp_path / "project"))
    assert result.returncode == 1
    assert result.stderr == (
        "Error: plugin 'typo' implements 'register_channel', which is not a nicobot hook "
        "(did you mean 'register_channels'?)\n"
    )


def test_an_async_registration_hook_stops_the_command_naming_the_plugin(tmp_path):
    from hook_support import install_plugin, nicobot

    env = install_plugin(tmp_path / "site", "eager", ASYNC_REGISTRATION)
    result = nicobot(env, "plugins")
    assert result.returncode == 1
    assert result.stderr.startswith(
        "Error: plugin 'eager': register_channels must be a plain def, not async def"
    )
    assert result.stderr.count("\n") == 1


def test_a_hook_with_an_unknown_argument_names_the_plugin():
    from nicobot.plugins import register_plugin

    class Wrong:
        @hookimpl
        def startup(self, bot, extra):
            return None

    pm = make_plugin_manager(load_entry_points=False)
    with pytest.raises(PluginError, match=r"^plugin 'wrong': .*extra"):
        register_plugin(pm, Wrong(), "wrong")


def test_implementations_run_in_the_documented_order():
    from nicobot.hookcalls import implementations

    class Plain:
        @hookimpl
        def startup(self, bot):
            return None

    class First(Plain):
        @hookimpl(tryfirst=True)
        def startup(self, bot):
            return None

    class Last(Plain):
        @hookimpl(trylast=True)
        def startup(self, bot):
            return None

    pm = make_plugin_manager(load_entry_points=False)
    for name, plugin in [("last", Last()), ("a", Plain()), ("first", First()), ("b", Plain())]:
        pm.register(plugin, name=name)
    assert [i.plugin_name for i in implementations(pm, "startup")] == ["first", "b", "a", "last"]


def test_the_bot_provides_everything_bot_context_promises(tmp_path):
    from nicobot import BotContext

    bot = Bot(load_settings(tmp_path, environ={}), make_plugin_manager(load_entry_points=False))
    promised = {name for name in vars(BotContext) if not name.startswith("_")}
    assert promised == {
        "settings",
        "env",
        "store",
        "channels",
        "knowledge",
        "submit",
        "pause",
        "resume",
        "prompt_settings",
    }
    for name in promised:
        assert hasattr(bot, name), name
    for name in ("submit", "pause", "resume"):
        assert inspect.iscoroutinefunction(getattr(bot, name)), name
