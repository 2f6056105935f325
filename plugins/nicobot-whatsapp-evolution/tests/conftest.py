"""Fixtures: the fake gateway, a webhook sink, WhatsApp channels wired to both."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from nicobot import ChannelContext, ChannelStatus, Settings

from evo_support import SCHEMAS, SECRET, Harness, MakeChannel, Sink
from nicobot_whatsapp_evolution import WhatsAppChannel
from nicobot_whatsapp_evolution.testing import FakeGateway


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink()
    yield s
    s.close()


@pytest.fixture
def fake() -> Iterator[FakeGateway]:
    with FakeGateway(api_key="global-key", schemas_dir=SCHEMAS) as gateway:
        yield gateway


@pytest.fixture
def closed_port() -> int:
    """A port on which nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def make_channel(fake: FakeGateway, sink: Sink) -> AsyncIterator[MakeChannel]:
    made: list[Harness] = []

    def make(
        table: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> Harness:
        environ = {
            "EVOLUTION_API_URL": fake.url,
            "EVOLUTION_API_KEY": fake.api_key,
            "EVOLUTION_WEBHOOK_SECRET": SECRET,
        }
        environ.update(env or {})
        environ = {k: v for k, v in environ.items() if v is not None}
        config = WhatsAppChannel.load_config(table or {}, environ)
        holder: list[Harness] = []

        async def report(status: ChannelStatus) -> None:
            holder[0].reports.append(status)

        context = ChannelContext(
            settings=Settings.model_validate(
                settings if settings is not None else {"server": {"public_url": sink.url}}
            ),
            env=environ,
            report_status=report,
        )
        harness = Harness(WhatsAppChannel(config, context))
        holder.append(harness)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        await harness.channel.stop()
