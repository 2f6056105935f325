"""The narrow views of the running bot that its parts depend on.

:class:`BotContext` is what a plugin may use of the ``bot`` every runtime hook receives:
it follows semantic versioning like the hooks. Anything else on the object is private
and may change in any release. :class:`PipelineHost` is what the message pipeline needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .channels import ChannelManager
    from .config import Settings
    from .knowledge import KnowledgeBase
    from .metrics import Metrics
    from .models import ClaimedTurn, IncomingMessage, OutboxEntry
    from .store import Store


class BotContext(Protocol):
    """The running bot, as plugins see it (the ``bot`` argument of the runtime hooks)."""

    @property
    def settings(self) -> Settings:
        """The project's validated settings (``nicobot.toml`` and the environment)."""

    @property
    def env(self) -> Mapping[str, str]:
        """The project's ``.env`` overlaid by the process environment."""

    @property
    def store(self) -> Store:
        """Conversations, messages and the pipeline's queues (open between ``startup``
        and ``shutdown``)."""

    @property
    def channels(self) -> ChannelManager:
        """The configured channels, by name (``bot.channels.get("whatsapp")``)."""

    @property
    def knowledge(self) -> KnowledgeBase | None:
        """The knowledge base, or None when ``[knowledge] backend`` is empty."""

    async def submit(self, message: IncomingMessage) -> bool:
        """Accept a message as if its channel had received it: it is stored at once and
        answered in the background. False for a duplicate (same channel and id)."""

    async def pause(self, session_id: str, minutes: float | None = None) -> bool:
        """Stop the bot answering in a conversation, for ``minutes`` or until resumed."""

    async def resume(self, session_id: str) -> bool:
        """Let the bot answer in a paused conversation again."""

    def prompt_settings(self) -> dict[str, Any]:
        """The effective persona and prompt (``name``, ``persona``, ``business``,
        ``system_prompt``) and which of them the admin page changed (``edited``)."""


class PipelineHost(Protocol):
    """What the pipeline's workers use of the bot: its store, settings, channels and
    metrics, and the steps it runs."""

    @property
    def settings(self) -> Settings: ...

    @property
    def store(self) -> Store: ...

    @property
    def channels(self) -> ChannelManager: ...

    @property
    def metrics(self) -> Metrics: ...

    async def answer_turn(self, turn: ClaimedTurn) -> None: ...

    async def park_turn(self, turn: ClaimedTurn, error: str) -> None: ...

    async def after_delivery(self, entry: OutboxEntry) -> None: ...
