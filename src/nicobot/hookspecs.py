"""The hooks a nicobot plugin may implement.

Hooks marked "may be async" accept ``def`` or ``async def`` implementations: the core
awaits whatever comes back. Every hook here is documented in ``docs/plugins/hooks.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click
    import quart

    from .admin import AdminTab
    from .agent import ReplyContext
    from .bot import Bot
    from .channels import Channel, ChannelStatus
    from .knowledge import KnowledgeBase
    from .models import ChatSession, IncomingMessage, MediaFile, OutgoingMessage
    from .store import Store

hookspec = pluggy.HookspecMarker("nicobot")
hookimpl = pluggy.HookimplMarker("nicobot")


@hookspec
def register_channels() -> list[type[Channel]]:  # type: ignore[empty-body]
    """Return the :class:`~nicobot.Channel` subclasses this plugin provides."""


@hookspec
def register_stores() -> list[type[Store]]:  # type: ignore[empty-body]
    """Return the :class:`~nicobot.Store` subclasses this plugin provides."""


@hookspec
def register_knowledge_bases() -> list[type[KnowledgeBase]]:  # type: ignore[empty-body]
    """Return the :class:`~nicobot.KnowledgeBase` subclasses this plugin provides."""


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add click commands or groups to the ``nicobot`` command line."""


@hookspec
def register_routes(app: quart.Quart) -> None:
    """Add routes or blueprints to the web app (your routes handle their own auth;
    use :func:`nicobot.admin_required` to protect them)."""


@hookspec
def register_admin_tabs() -> list[AdminTab]:  # type: ignore[empty-body]
    """Return :class:`~nicobot.AdminTab` entries to show on the admin page."""


@hookspec
def startup(bot: Bot) -> Any:
    """The server is starting and ``bot`` is ready. May be async."""


@hookspec
def shutdown(bot: Bot) -> Any:
    """The server is stopping. May be async."""


@hookspec
def message_received(bot: Bot, session: ChatSession, message: IncomingMessage) -> Any:
    """A new customer message was stored, before the agent sees it. May be async."""


@hookspec
def before_reply(bot: Bot, context: ReplyContext) -> Any:
    """The agent is about to call the LLM; ``context.llm_messages`` may be edited in
    place. May be async."""


@hookspec
def after_reply(bot: Bot, context: ReplyContext, reply: str) -> Any:
    """The agent has a reply. Return a string to replace it, or None. May be async."""


@hookspec
def reply_sent(bot: Bot, session: ChatSession, message: OutgoingMessage) -> Any:
    """A reply was handed to its channel. May be async."""


@hookspec
def channel_status_changed(bot: Bot, channel: Channel, status: ChannelStatus) -> Any:
    """A channel reported a new connection status. May be async."""


@hookspec
def transcribe_audio(bot: Bot, session: ChatSession, audio: MediaFile) -> Any:
    """Return the text of a voice note or audio file (``audio.data``, ``audio.mimetype``),
    or None to leave it to other plugins and then to ``[media] transcription_model``. The
    first text returned is used. May be async."""
