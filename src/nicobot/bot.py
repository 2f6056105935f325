"""The running bot: store, knowledge, channels, agent, and the one entry point for messages."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pluggy
from pydantic import ValidationError

from .agent import Agent, AgentReply, ReplyContext, canned_message
from .channels import Channel, ChannelContext, ChannelManager, ChannelStatus
from .config import ConfigError, Settings, format_validation_error, project_env
from .knowledge import KnowledgeBase
from .models import ChatSession, IncomingMessage, MessageKind, OutgoingMessage, Role
from .plugins import call_hook, collect_components
from .store import Store

log = logging.getLogger("nicobot.bot")

CLAIM_MAX_AGE = timedelta(minutes=10)
CLAIM_PURGE_INTERVAL = 300.0
SEND_ATTEMPTS = 5
SEND_FIRST_DELAY = 1.0
SEND_MAX_DELAY = 30.0
PROMPT_SETTING = "bot.prompt"
PROMPT_KEYS = ("name", "persona", "business", "system_prompt")


def make_store(pm: pluggy.PluginManager, settings: Settings) -> Store:
    """The store plugin a project chose in ``[store] backend``, not yet opened."""
    stores = collect_components(pm, "register_stores", "store")
    wanted = settings.store.backend
    if wanted not in stores:
        known = ", ".join(sorted(stores)) or "none"
        raise ConfigError(
            f"nicobot.toml: store.backend: no store plugin named {wanted!r} (installed: {known})"
        )
    store_cls: type[Store] = stores[wanted][0]
    return store_cls.from_settings(settings)


@dataclass(frozen=True, slots=True)
class Turn:
    """What one customer message led to."""

    session: ChatSession
    reply: str | None
    mode: str
    duplicate: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "session_id": self.session.id,
            "reply": self.reply,
            "mode": self.mode,
            "duplicate": self.duplicate,
        }


class Bot:
    """One bot: everything a running nicobot holds, built from settings and plugins."""

    def __init__(self, settings: Settings, pm: pluggy.PluginManager) -> None:
        self.settings = settings
        self.pm = pm
        self.env: Mapping[str, str] = project_env(settings.project_dir)
        self.store = self._make_store()
        self.knowledge = self._make_knowledge()
        self.channels = ChannelManager()
        self._make_channels()
        self.agent = Agent(settings, self.knowledge)
        self._session_locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._purger: asyncio.Task[None] | None = None
        self.prompt_overrides: dict[str, str] = {}

    # construction

    def _make_store(self) -> Store:
        return make_store(self.pm, self.settings)

    def _make_knowledge(self) -> KnowledgeBase | None:
        bases = collect_components(self.pm, "register_knowledge_bases", "knowledge base")
        wanted = self.settings.knowledge.backend
        if not wanted:
            return None
        if wanted not in bases:
            if wanted == "chroma" and not bases:
                return None  # the default backend, not installed: answer without knowledge
            known = ", ".join(sorted(bases)) or "none"
            raise ConfigError(
                f"nicobot.toml: knowledge.backend: no knowledge plugin named {wanted!r} "
                f"(installed: {known})"
            )
        kb_cls: type[KnowledgeBase] = bases[wanted][0]
        return kb_cls.from_settings(self.settings)

    def _make_channels(self) -> None:
        classes = collect_components(self.pm, "register_channels", "channel")
        for name, (channel_cls, _plugin) in sorted(classes.items()):
            table = self.settings.channels.get(name, {})
            try:
                config = channel_cls.load_config(table, self.env)
            except ValidationError as exc:
                raise ConfigError(
                    format_validation_error(exc, prefix=f"nicobot.toml: channels.{name}.")
                ) from None
            if not config.enabled:
                continue
            context = ChannelContext(
                settings=self.settings,
                env=self.env,
                report_status=self._status_reporter(name),
            )
            self.channels.register(channel_cls(config, context))

    def _status_reporter(self, name: str) -> Any:
        async def report(status: ChannelStatus) -> None:
            channel = self.channels.get(name)
            if channel is not None:
                await call_hook(
                    self.pm, "channel_status_changed", bot=self, channel=channel, status=status
                )

        return report

    # lifecycle

    async def start(self) -> None:
        await self.store.open()
        saved = await self.store.get_setting(PROMPT_SETTING)
        self.prompt_overrides = json.loads(saved) if saved else {}
        if self.knowledge is not None:
            await self.knowledge.open()
        for channel in self.channels.all():
            if channel.configured:
                await channel.start()
        self._purger = asyncio.create_task(self._purge_claims_forever())
        await call_hook(self.pm, "startup", bot=self)

    async def stop(self, grace_seconds: float = 10.0) -> None:
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=grace_seconds)
            for task in pending:
                task.cancel()
        if self._purger is not None:
            self._purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purger
        await call_hook(self.pm, "shutdown", bot=self)
        for channel in self.channels.all():
            if channel.configured:
                await channel.stop()
        if self.knowledge is not None:
            await self.knowledge.close()
        await self.store.close()

    async def _purge_claims_forever(self) -> None:
        while True:
            try:
                removed = await self.store.purge_claims(CLAIM_MAX_AGE)
                if removed:
                    log.debug("removed %d old webhook dedup records", removed)
            except Exception:
                log.exception("could not purge webhook dedup records")
            await asyncio.sleep(CLAIM_PURGE_INTERVAL)

    # the persona and system prompt, editable from the admin page

    def prompt_settings(self) -> dict[str, Any]:
        """The effective persona and prompt, and which keys the admin page changed."""
        bot = self.settings.bot
        values = {key: self.prompt_overrides.get(key, getattr(bot, key)) for key in PROMPT_KEYS}
        return {**values, "edited": sorted(self.prompt_overrides)}

    async def update_prompt(self, changes: Mapping[str, str | None]) -> None:
        """Persist admin edits; a value equal to the file's (or None) drops the edit."""
        overrides = dict(self.prompt_overrides)
        for key, value in changes.items():
            if key not in PROMPT_KEYS:
                raise ValueError(f"unknown prompt setting {key!r}")
            if value is None or value.strip() == str(getattr(self.settings.bot, key)).strip():
                overrides.pop(key, None)
            else:
                overrides[key] = value.strip()
        await self.store.set_setting(PROMPT_SETTING, json.dumps(overrides) if overrides else None)
        self.prompt_overrides = overrides

    # the one entry point for every channel

    async def submit(self, message: IncomingMessage) -> bool:
        """Accept a message from a channel and answer it in the background.

        Returns False for a duplicate delivery (the same platform message id again).
        """
        if not await self.store.claim_message_id(message.channel, message.message_id):
            return False
        task = asyncio.create_task(self._handle_logged(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def converse(self, message: IncomingMessage) -> Turn:
        """Accept a message and wait for the reply (the simulator's path)."""
        if not await self.store.claim_message_id(message.channel, message.message_id):
            session, _ = await self._session_for(message)
            return Turn(session, None, "duplicate", duplicate=True)
        return await self._handle(message)

    async def _handle_logged(self, message: IncomingMessage) -> None:
        try:
            await self._handle(message)
        except Exception:
            log.exception("could not answer message %s on %s", message.message_id, message.channel)

    async def _session_for(self, message: IncomingMessage) -> tuple[ChatSession, bool]:
        return await self.store.get_or_create_session(
            message.channel,
            message.address,
            phone_number=message.phone_number,
            sender_name=message.sender_name,
        )

    async def _handle(self, message: IncomingMessage) -> Turn:
        session, _created = await self._session_for(message)
        lock = self._session_locks.setdefault(session.id, asyncio.Lock())
        async with lock:
            if message.from_business:
                await self.store.add_message(
                    session.id,
                    Role.OPERATOR,
                    message.text,
                    {"message_id": message.message_id},
                )
                return Turn(session, None, "operator")
            stored = await self.store.add_message(
                session.id,
                Role.USER,
                message.text,
                {"message_id": message.message_id, "kind": message.kind.value},
            )
            await call_hook(self.pm, "message_received", bot=self, session=session, message=message)
            reply = await self._answer(session, message, stored.id)
            await self.store.add_message(session.id, Role.ASSISTANT, reply.text, reply.meta())
            await self._deliver(session, reply.text)
            return Turn(session, reply.text, reply.mode)

    async def _answer(
        self, session: ChatSession, message: IncomingMessage, stored_id: int
    ) -> AgentReply:
        if message.kind is not MessageKind.TEXT or not message.text.strip():
            return AgentReply(canned_message(self.settings, "non_text"), [], "non_text")
        window = self.settings.llm.history_messages
        history = [
            m
            for m in await self.store.list_messages(session.id, limit=window + 1)
            if m.id != stored_id
        ]
        context = ReplyContext(
            session=session,
            text=message.text,
            history=history,
            snippets=await self.agent.retrieve(message.text),
        )
        context.llm_messages = self.agent.build_messages(context, self.prompt_settings())
        await call_hook(self.pm, "before_reply", bot=self, context=context)
        reply = await self.agent.reply(context)
        for replacement in await call_hook(
            self.pm, "after_reply", bot=self, context=context, reply=reply.text
        ):
            if isinstance(replacement, str) and replacement.strip():
                reply.text = replacement
        return reply

    async def _deliver(self, session: ChatSession, text: str) -> None:
        channel = self.channels.get(session.channel)
        outgoing = OutgoingMessage(session.channel, session.address, text)
        if channel is None:
            log.error("no channel %r to deliver to session %s", session.channel, session.id)
            return
        if not channel.is_local:
            await self._send_with_retries(channel, outgoing, session.id)
        await call_hook(self.pm, "reply_sent", bot=self, session=session, message=outgoing)

    async def _send_with_retries(
        self, channel: Channel, outgoing: OutgoingMessage, session_id: str
    ) -> None:
        delay = SEND_FIRST_DELAY
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                await channel.send_message(outgoing)
                return
            except Exception as exc:
                if attempt == SEND_ATTEMPTS:
                    log.error(
                        "giving up sending to session %s on %s after %d attempts: %s",
                        session_id,
                        channel.name,
                        attempt,
                        exc,
                    )
                    raise
                log.warning(
                    "send to session %s on %s failed (attempt %d), retrying in %.0fs: %s",
                    session_id,
                    channel.name,
                    attempt,
                    delay,
                    exc,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, SEND_MAX_DELAY)
