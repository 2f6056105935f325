"""Telegram for nicobot: a Bot API channel, reached by webhook.

Names load on first use, so that loading the plugin stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .channel import TelegramChannel
    from .client import TelegramClient, TelegramError
    from .config import TelegramConfig
    from .parsing import Ignored, parse_update, split_text

__version__ = "0.1.0"

_MODULES = {
    "TelegramChannel": "channel",
    "TelegramClient": "client",
    "TelegramError": "client",
    "TelegramConfig": "config",
    "Ignored": "parsing",
    "parse_update": "parsing",
    "split_text": "parsing",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'nicobot_telegram' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "Ignored",
    "TelegramChannel",
    "TelegramClient",
    "TelegramConfig",
    "TelegramError",
    "__version__",
    "parse_update",
    "split_text",
]
