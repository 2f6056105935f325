"""WhatsApp for nicobot, through a self-hosted Evolution API gateway.

Names load on first use, so that loading the plugin keeps `nicobot --help` fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .channel import WhatsAppChannel
    from .client import EvolutionClient, EvolutionError, QRCode
    from .config import WhatsAppConfig
    from .parsing import ConnectionUpdate, Ignored, MessageEvent, QRUpdate, parse_webhook

__version__ = "0.1.0"

_MODULES = {
    "WhatsAppChannel": "channel",
    "EvolutionClient": "client",
    "EvolutionError": "client",
    "QRCode": "client",
    "WhatsAppConfig": "config",
    "ConnectionUpdate": "parsing",
    "Ignored": "parsing",
    "MessageEvent": "parsing",
    "QRUpdate": "parsing",
    "parse_webhook": "parsing",
}

__all__ = [
    "ConnectionUpdate",
    "EvolutionClient",
    "EvolutionError",
    "Ignored",
    "MessageEvent",
    "QRCode",
    "QRUpdate",
    "WhatsAppChannel",
    "WhatsAppConfig",
    "__version__",
    "parse_webhook",
]


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
