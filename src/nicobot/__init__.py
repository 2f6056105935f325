"""nicobot: an LLM assistant with a knowledge base on WhatsApp and other channels.

Everything a plugin needs is importable from here; other modules are private.
"""

# Names load on first use, so that `nicobot --help` stays fast.
from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

# litellm must never stall fetching its price list from the network, whoever imports it.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

if TYPE_CHECKING:
    from .admin import AdminTab, admin_required
    from .agent import ReplyContext
    from .bot import Bot, Turn
    from .channels import (
        Channel,
        ChannelConfig,
        ChannelContext,
        ChannelManager,
        ChannelStatus,
        PermanentSendError,
        RetryLater,
        SendOutcomeUnknown,
        SentCheck,
        SentState,
        WebhookRejected,
        WebhookRequest,
        WebhookResult,
    )
    from .config import ConfigError, Settings, load_settings
    from .context import BotContext
    from .dashboard import ActivityRow
    from .hookspecs import hookimpl
    from .i18n import add_catalogue_dir
    from .knowledge import DocumentInfo, KnowledgeBase, Snippet
    from .models import (
        Change,
        ChatSession,
        ClaimedTurn,
        FailedTurn,
        InboxEntry,
        IncomingMessage,
        MediaFile,
        Message,
        MessageKind,
        OutboxEntry,
        OutgoingMessage,
        Role,
    )
    from .store import LostClaim, Store
    from .version import __version__

_MODULES = {
    "AdminTab": "admin",
    "admin_required": "admin",
    "ReplyContext": "agent",
    "Bot": "bot",
    "BotContext": "context",
    "Turn": "bot",
    "Channel": "channels",
    "ChannelConfig": "channels",
    "ChannelContext": "channels",
    "ChannelManager": "channels",
    "ChannelStatus": "channels",
    "PermanentSendError": "channels",
    "RetryLater": "channels",
    "SendOutcomeUnknown": "channels",
    "SentCheck": "channels",
    "SentState": "channels",
    "WebhookRejected": "channels",
    "WebhookRequest": "channels",
    "WebhookResult": "channels",
    "ConfigError": "config",
    "Settings": "config",
    "load_settings": "config",
    "ActivityRow": "dashboard",
    "hookimpl": "hookspecs",
    "add_catalogue_dir": "i18n",
    "DocumentInfo": "knowledge",
    "KnowledgeBase": "knowledge",
    "Snippet": "knowledge",
    "Change": "models",
    "ChatSession": "models",
    "ClaimedTurn": "models",
    "FailedTurn": "models",
    "InboxEntry": "models",
    "IncomingMessage": "models",
    "MediaFile": "models",
    "Message": "models",
    "MessageKind": "models",
    "OutboxEntry": "models",
    "OutgoingMessage": "models",
    "Role": "models",
    "LostClaim": "store",
    "Store": "store",
    "__version__": "version",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'nicobot' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"nicobot.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "ActivityRow",
    "AdminTab",
    "Bot",
    "BotContext",
    "Change",
    "Channel",
    "ChannelConfig",
    "ChannelContext",
    "ChannelManager",
    "ChannelStatus",
    "ChatSession",
    "ClaimedTurn",
    "ConfigError",
    "DocumentInfo",
    "FailedTurn",
    "InboxEntry",
    "IncomingMessage",
    "KnowledgeBase",
    "LostClaim",
    "MediaFile",
    "Message",
    "MessageKind",
    "OutboxEntry",
    "OutgoingMessage",
    "PermanentSendError",
    "ReplyContext",
    "RetryLater",
    "Role",
    "SendOutcomeUnknown",
    "SentCheck",
    "SentState",
    "Settings",
    "Snippet",
    "Store",
    "Turn",
    "WebhookRejected",
    "WebhookRequest",
    "WebhookResult",
    "__version__",
    "add_catalogue_dir",
    "admin_required",
    "hookimpl",
    "load_settings",
]
