"""The web chat simulator: customers played from the chat page."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from ..channels import Channel


@hookimpl
def register_channels() -> list[type[Channel]]:
    from .simulator_channel import SimulatorChannel

    return [SimulatorChannel]
