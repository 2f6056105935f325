"""Channel plugins worth knowing about, shown on the admin page until one is installed.

The list is data (``channel_plugins.json``), not page markup: add a published
plugin there."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True, slots=True)
class ChannelPlugin:
    channel: str
    label: str
    distribution: str
    description: str
    url: str


@cache
def channel_plugins() -> tuple[ChannelPlugin, ...]:
    text = resources.files("nicobot").joinpath("channel_plugins.json").read_text("utf-8")
    return tuple(ChannelPlugin(**entry) for entry in json.loads(text))


def available_channel_plugins(installed: frozenset[str] | set[str]) -> list[ChannelPlugin]:
    """The listed plugins whose channel is not installed."""
    return [p for p in channel_plugins() if p.channel not in installed]
