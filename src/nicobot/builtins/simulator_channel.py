"""The simulator channel: replies are shown in nicobot's own chat page."""

from __future__ import annotations

from ..channels import Channel, ChannelStatus
from ..models import OutgoingMessage


class SimulatorChannel(Channel):
    name = "simulator"
    label = "Simulator"
    is_local = True

    async def get_status(self) -> ChannelStatus:
        return ChannelStatus(True, "connected", "Always on: chat from the chat page.")

    async def send_message(self, message: OutgoingMessage) -> str | None:
        return None  # the page reads replies from the store
