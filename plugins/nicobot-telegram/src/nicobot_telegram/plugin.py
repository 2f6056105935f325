"""The nicobot plugin entry point (``[project.entry-points.nicobot] telegram``).

nicobot imports this module whenever it starts, even for ``nicobot --help``: it imports
nothing heavy, and the channel class only when the hook is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nicobot import hookimpl

if TYPE_CHECKING:
    from nicobot import Channel


@hookimpl
def register_channels() -> list[type[Channel]]:
    from .channel import TelegramChannel

    return [TelegramChannel]
