"""The hooks a nicobot plugin may implement: the contract, kept true by ``tests/test_hook_*``.

Three kinds of hook (``docs/plugins/hooks.md`` says the same at length):

- **Registration** hooks (``register_*``) run once while the bot is built, plugin by
  plugin. They must be plain ``def``; an error names the plugin and stops start-up.
- **Reply** hooks (``before_reply``, ``after_reply``, ``transcribe_audio``) run on the
  reply path, awaited in turn. ``after_reply`` is a chain: each implementation gets the
  previous one's reply; ``transcribe_audio`` stops at the first text.
- **Notification** hooks (``startup``, ``shutdown``, ``message_received``,
  ``reply_sent``, ``channel_status_changed``) tell plugins what happened; their return
  value is ignored.

Every runtime hook accepts ``def`` or ``async def``. Each implementation runs on its own:
one that raises is logged with its plugin's name, one that takes longer than
``[plugins] hook_timeout_seconds`` is cancelled and logged; either way the other
plugins and the bot carry on. Implementations run in pluggy's order: ``tryfirst=True``
ones first, then the others from the last registered plugin to the first (installed
plugins register in the order of their entry-point names, after the built-ins), then
``trylast=True`` ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click
    import quart

    from .admin import AdminTab
    from .agent import ReplyContext
    from .channels import Channel, ChannelStatus
    from .context import BotContext
    from .knowledge import KnowledgeBase
    from .models import ChatSession, IncomingMessage, MediaFile, OutgoingMessage
    from .store import Store

hookspec = pluggy.HookspecMarker("nicobot")
hookimpl = pluggy.HookimplMarker("nicobot")


@hookspec
def register_channels() -> list[type[Channel]]:  # type: ignore[empty-body]
    """Return the :class:`~nicobot.Channel` subclasses this plugin provides.

    Called once when the bot is built. Channel names and webhook slugs are unique:
    a second plugin offering either stops start-up with an error naming both."""


@hookspec
def register_stores() -> list[type[Store]]:  # type: ignore[empty-body]
    """Return the :class:`~nicobot.Store` subclasses this plugin provides; a project
    picks one by name with ``[store] backend``. Names are unique across plugins."""


@hookspec
def register_knowledge_bases() -> list[type[KnowledgeBase]]:  # type: ignore[empty-body]
    """Return the :class:`~nicobot.KnowledgeBase` subclasses this plugin provides; a
    project picks one with ``[knowledge] backend``. Names are unique across plugins."""


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add click commands or groups to the ``nicobot`` command line with
    ``cli.add_command``. A name already taken (by nicobot or another plugin) stops
    every command with an error naming both."""


@hookspec
def register_routes(app: quart.Quart) -> None:
    """Add routes or blueprints to the web app, once, when it is built. Your routes
    handle their own auth: wrap admin views in :func:`nicobot.admin_required`."""


@hookspec
def register_admin_tabs() -> list[AdminTab]:  # type: ignore[empty-body]
    """Return :class:`~nicobot.AdminTab` entries to show on the admin page (names are
    unique across plugins)."""


@hookspec
def startup(bot: BotContext) -> Any:
    """The server is starting: the store and the channels are started, the pipeline
    not yet. Awaited before any message is answered. May be async."""


@hookspec
def shutdown(bot: BotContext) -> Any:
    """The server is stopping: no more turns run, queued notifications were delivered
    (for up to 5 s); the store and the channels are still open. May be async."""


@hookspec
def message_received(bot: BotContext, session: ChatSession, message: IncomingMessage) -> Any:
    """A customer message was stored (once per message, duplicates excluded), also in
    a paused conversation. Not for messages the business typed itself.

    It runs in the background: the reply does not wait for it (use ``before_reply`` to
    change a reply). ``message.raw`` holds the platform's payload as the channel parsed
    it; it is not stored. For one plugin, it comes before the ``reply_sent`` of the reply
    to that message. May be async."""


@hookspec
def before_reply(bot: BotContext, context: ReplyContext) -> Any:
    """The agent is about to call the LLM; ``context.llm_messages`` may be edited in
    place. Only for replies the agent writes (not canned ones). Each implementation is
    awaited in turn; the return value is ignored. May be async."""


@hookspec
def after_reply(bot: BotContext, context: ReplyContext, reply: str) -> Any:
    """The agent has a reply. Return a non-empty string to replace it, or None to keep
    it. A chain: each implementation gets the reply as the previous one left it, in the
    order above; one that fails or times out leaves it unchanged. May be async."""


@hookspec
def reply_sent(
    bot: BotContext, session: ChatSession, message: OutgoingMessage, parts: list[str]
) -> Any:
    """A reply was handed to its channel: once per reply, after its last part.

    ``message.text`` is the whole reply and ``parts`` what the channel sent (a long
    reply is split in several; a local channel such as the simulator shows one part,
    at once). Not for a reply whose delivery failed for good. Runs in the background.
    May be async."""


@hookspec
def channel_status_changed(bot: BotContext, channel: Channel, status: ChannelStatus) -> Any:
    """A channel reported a connection status through ``context.report_status``
    (for WhatsApp: paired, logged out, a new QR code). Runs in the background: the
    channel never waits for it nor sees its errors. May be async."""


@hookspec
def transcribe_audio(bot: BotContext, session: ChatSession, audio: MediaFile) -> Any:
    """Return the text of a voice note or audio file (``audio.data``, ``audio.mimetype``),
    or None to leave it to other plugins and then to ``[media] transcription_model``.
    Implementations are asked in the order above until one returns a non-empty text;
    one that fails or times out is skipped. Runs on the reply path. May be async."""
