"""The nicobot plugin entry point (``[project.entry-points.nicobot] whatsapp``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nicobot import hookimpl

if TYPE_CHECKING:
    from nicobot import Channel


@hookimpl
def register_channels() -> list[type[Channel]]:
    from .channel import WhatsAppChannel

    return [WhatsAppChannel]
