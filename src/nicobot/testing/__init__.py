"""Test helpers for nicobot and its plugins, loaded by pytest as the ``nicobot`` plugin.

Fixtures:

- ``nicobot_project``: a fresh project directory (``nicobot init`` defaults, English).
- ``nicobot_env``: extra environment for the project's settings (a dict to fill).
- ``fake_llm``: a fake OpenAI-compatible server; ``nicobot_env.update(fake_llm.env)``
  makes the bot use it through litellm's real code path.
- ``nicobot_plugins``: the plugin objects registered on top of the installed ones (by
  default the fake channel's); override it to add your own fakes or test plugins.
- ``nicobot_app``: the started Quart app for the project, with ``nicobot_plugins`` added.
- ``nicobot_client``: a test client sending the admin's bearer token.
- ``nicobot_bot``: the app's :class:`nicobot.Bot`.
- ``fake_channel``: the bot's :class:`FakeChannel` (records ``sent`` replies).
- ``nicobot_server``: a factory for real ``nicobot serve`` processes.

Helpers: ``make_project``, ``ServerProcess``, ``free_port``, ``wait_until`` (poll a
condition with a deadline, in sync tests) and ``until`` (its async twin).

They need pytest-asyncio: install the ``test`` extra of ``nicobot-framework``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .fake_channel import FAKE_SECRET, FakeChannel, FakeChannelPlugin
from .fake_llm import FakeLLM, FakeLLMServer, echo_reply
from .server import ServerProcess, free_port, until, wait_until

if TYPE_CHECKING:
    from quart import Quart
    from quart.testing import QuartClient

    from ..bot import Bot

__all__ = [
    "FAKE_SECRET",
    "FakeChannel",
    "FakeChannelPlugin",
    "FakeLLM",
    "FakeLLMServer",
    "ServerProcess",
    "echo_reply",
    "free_port",
    "make_project",
    "until",
    "wait_until",
]


#: How long ``nicobot_app`` waits for the app to start (and to stop).
STARTUP_TIMEOUT_SECONDS = 60


def make_project(directory: Path, language: str = "en", **toml_extra: str) -> Path:
    """Write a project as ``nicobot init --yes`` would; ``toml_extra`` appends raw TOML."""
    from ..scaffold import write_project

    write_project(
        directory,
        name="Nico",
        business="Test Shop",
        language=language,
        admin_password="test-password",
    )
    if toml_extra:
        with (directory / "nicobot.toml").open("a", encoding="utf-8") as handle:
            for text in toml_extra.values():
                handle.write("\n" + text + "\n")
    return directory


@pytest.fixture
def nicobot_project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "project")


@pytest.fixture
def nicobot_env() -> dict[str, str]:
    return {}


@pytest.fixture(scope="session")
def _fake_llm_server() -> Iterator[FakeLLMServer]:
    server = FakeLLMServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fake_llm(_fake_llm_server: FakeLLMServer) -> Iterator[FakeLLM]:
    _fake_llm_server.fake.reset()
    yield _fake_llm_server.fake
    _fake_llm_server.fake.reset()


@pytest.fixture
def nicobot_plugins() -> list[object]:
    """Plugins to register for ``nicobot_app``, as ``[object, ...]`` or ``[(object, name)]``.

    Override it to add fakes: ``return [FakeChannelPlugin(), (MyFakePlugin(), "my-fake")]``.
    """
    return [(FakeChannelPlugin(), "nicobot-fake-channel")]


@pytest.fixture
async def nicobot_app(
    nicobot_project: Path, nicobot_env: dict[str, str], nicobot_plugins: list[object]
) -> AsyncIterator[Quart]:
    from ..app import create_app
    from ..config import load_settings
    from ..plugins import make_plugin_manager, register_plugin

    # litellm in the test's own process, imported once per session (a project's tests may
    # still choose NICOBOT_LLM__PROCESS=separate)
    environ = {"NICOBOT_LLM__PROCESS": "inline", **os.environ, **nicobot_env}
    settings = load_settings(nicobot_project, environ=environ)
    pm = make_plugin_manager()
    for entry in nicobot_plugins:
        plugin, name = entry if isinstance(entry, tuple) else (entry, None)
        register_plugin(pm, plugin, name or type(plugin).__name__)
    app = create_app(settings, pm=pm)
    # Quart's default of 6 s is short for indexing the knowledge on a busy machine.
    from quart.testing.app import TestApp

    test_app = TestApp(
        app, startup_timeout=STARTUP_TIMEOUT_SECONDS, shutdown_timeout=STARTUP_TIMEOUT_SECONDS
    )
    async with test_app:
        yield app


@pytest.fixture
def nicobot_bot(nicobot_app: Quart) -> Bot:
    bot: Bot = nicobot_app.extensions["nicobot"]
    return bot


@pytest.fixture
def fake_channel(nicobot_bot: Bot) -> FakeChannel:
    channel = nicobot_bot.channels.get("fake")
    assert isinstance(channel, FakeChannel)
    return channel


@pytest.fixture
def nicobot_client(nicobot_app: Quart) -> QuartClient:
    """A test client that sends the admin's bearer token unless a test passes its own
    ``Authorization`` header (``headers={"Authorization": ""}`` sends none)."""
    from quart.testing import QuartClient

    bearer = f"Bearer {nicobot_app.config['NICOBOT_ADMIN_PASSWORD']}"

    class AdminClient(QuartClient):
        async def open(self, path: str, *, headers: Any = None, **kwargs: Any) -> Any:
            headers = dict(headers or {})
            headers.setdefault("Authorization", bearer)
            if not headers["Authorization"]:
                del headers["Authorization"]
            return await super().open(path, headers=headers, **kwargs)

    return AdminClient(nicobot_app)


@pytest.fixture
def nicobot_server() -> Iterator[Any]:
    started: list[ServerProcess] = []

    def start(project: Path, env: dict[str, str] | None = None, **kwargs: Any) -> ServerProcess:
        server = ServerProcess(project, env, **kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
