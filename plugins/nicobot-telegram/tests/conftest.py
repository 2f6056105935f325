"""Fixtures: the fake Bot API server, and Telegram channels wired to it."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from nicobot import ChannelContext, ChannelStatus, Settings

from fake_telegram import FakeTelegram
from nicobot_telegram import TelegramChannel
from tg_support import ISOLATED_ENV, PUBLIC_URL, SECRET, Harness, MakeChannel


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ISOLATED_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def _telegram_server() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        yield server


@pytest.fixture
def telegram(_telegram_server: FakeTelegram) -> Iterator[FakeTelegram]:
    """The fake Bot API server, fresh for each test."""
    _telegram_server.reset()
    yield _telegram_server
    _telegram_server.reset()


@pytest.fixture
def closed_port() -> int:
    """A port on which nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def make_channel(telegram: FakeTelegram) -> AsyncIterator[MakeChannel]:
    """Build a channel as the core does: ``load_config(table, env)`` and a context."""
    made: list[Harness] = []

    def make(
        table: dict[str, Any] | None = None,
        env: dict[str, str | None] | None = None,
        public_url: str | None = PUBLIC_URL,
    ) -> Harness:
        environ: dict[str, str | None] = {
            "TELEGRAM_BOT_TOKEN": telegram.token,
            "TELEGRAM_API_URL": telegram.url,
            "TELEGRAM_WEBHOOK_SECRET": SECRET,
        }
        environ.update(env or {})
        clean = {k: v for k, v in environ.items() if v is not None}
        settings = Settings.model_validate({"server": {"public_url": public_url}})
        reports: list[ChannelStatus] = []

        async def report(status: ChannelStatus) -> None:
            reports.append(status)

        context = ChannelContext(settings=settings, env=clean, report_status=report)
        config = TelegramChannel.load_config(table or {}, clean)
        harness = Harness(TelegramChannel(config, context), reports)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        await harness.channel.stop()
