"""The running bot: store, knowledge, channels, agent, and the one entry point for messages."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pluggy
from pydantic import ValidationError

from .agent import Agent, AgentReply, ReplyContext, canned_message
from .channels import Channel, ChannelConfig, ChannelContext, ChannelManager, ChannelStatus
from .config import ConfigError, Settings, format_validation_error, project_env
from .errors import PluginError
from .gate import Gate
from .handoff import asks_for_a_person, handoff_keywords
from .hookcalls import HookRunner, Notifications, ReplyParts
from .knowledge import KnowledgeBase
from .media import MediaReader, attach_images
from .metrics import Metrics
from .models import (
    ChatSession,
    ClaimedTurn,
    IncomingMessage,
    MediaFile,
    OutboxEntry,
    OutgoingMessage,
    utcnow,
)
from .pipeline import Pipeline
from .plugins import check_plugins, collect_components
from .store import LostClaim, Store
from .text import split_message

log = logging.getLogger("nicobot.bot")

CLAIM_MAX_AGE = timedelta(minutes=10)
CLAIM_PURGE_INTERVAL = 300.0
PAUSE_FOREVER = timedelta(days=36500)
PROMPT_SETTING = "bot.prompt"
PROMPT_KEYS = ("name", "persona", "business", "system_prompt")
CHANNEL_STATE_PREFIX = "channel."
#: How long stopping waits for queued notifications (reply_sent...) to reach plugins.
NOTIFICATION_DRAIN_SECONDS = 5.0
#: How far back a delivered part's transcript line is looked for (see after_delivery).
REPLY_LOOKBACK = 200


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
        check_plugins(pm)
        self.pm = pm
        self.hooks = HookRunner(pm, settings.plugins.hook_timeout_seconds)
        self.notifications = Notifications(self.hooks)
        self._reply_parts = ReplyParts()
        self.env: Mapping[str, str] = settings.env or project_env(settings.project_dir)
        self.store = self._make_store()
        self.knowledge = self._make_knowledge()
        self.channels = ChannelManager()
        self._make_channels()
        self.agent = Agent(settings, self.knowledge)
        self.metrics = Metrics()
        self.pipeline = Pipeline(self)
        self.handoff_keywords = handoff_keywords(settings)
        self.gate = Gate(settings, self.store)
        self.media = MediaReader(self)
        self._waiters: dict[tuple[str, str], asyncio.Future[Turn]] = {}
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
        self.installed_channels = frozenset(classes)
        for name in sorted(set(self.settings.channels) - set(classes)):
            log.warning(
                "nicobot.toml: [channels.%s] is ignored: no installed plugin provides a "
                "channel named %r (installed: %s)",
                name,
                name,
                ", ".join(sorted(classes)),
            )
        slugs: dict[str, str] = {}
        for name, (channel_cls, plugin) in sorted(classes.items()):
            table = self.settings.channels.get(name, {})
            try:
                config = channel_cls.load_config(table, self.env)
            except ValidationError as exc:
                raise ConfigError(
                    format_validation_error(exc, prefix=f"nicobot.toml: channels.{name}.")
                ) from None
            if not config.enabled:
                continue
            for each_cls, each_config in [(channel_cls, config), *channel_cls.instances(config)]:
                self._register_channel(each_cls, each_config, plugin, slugs)

    def _register_channel(
        self,
        channel_cls: type[Channel],
        config: ChannelConfig,
        plugin: str,
        slugs: dict[str, str],
    ) -> None:
        name = channel_cls.name
        slug = channel_cls.webhook_slug
        if slug is not None and slug in slugs:
            raise PluginError(
                f"webhook slug {slug!r} is claimed by both {slugs[slug]!r} and "
                f"{plugin!r} (channel {name!r})"
            )
        if slug is not None:
            slugs[slug] = plugin
        context = ChannelContext(
            settings=self.settings,
            env=self.env,
            report_status=self._status_reporter(name),
            submit=self.submit,
            load_state=functools.partial(self._load_channel_state, name),
            save_state=functools.partial(self._save_channel_state, name),
        )
        self.channels.register(channel_cls(config, context))

    def _status_reporter(self, name: str) -> Any:
        async def report(status: ChannelStatus) -> None:
            channel = self.channels.get(name)
            if channel is None:
                return
            if status.connected:
                await self._send_waiting_replies(name)
            self.notifications.emit(
                "channel_status_changed", bot=self, channel=channel, status=status
            )

        return report

    async def _send_waiting_replies(self, channel: str) -> None:
        """A channel (re)connected: replies waiting for a retry go now."""
        try:
            due = await self.store.outbox_due_now(channel)
        except Exception:
            log.exception("could not reschedule the deliveries of %s", channel)
            return
        if due:
            log.info("%s is connected: sending %d waiting replies now", channel, due)
            self.pipeline.sends.wake()

    async def _load_channel_state(self, channel: str, key: str) -> str | None:
        return await self.store.get_setting(f"{CHANNEL_STATE_PREFIX}{channel}.{key}")

    async def _save_channel_state(self, channel: str, key: str, value: str | None) -> None:
        await self.store.set_setting(f"{CHANNEL_STATE_PREFIX}{channel}.{key}", value)

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
        await self.hooks.run_each("startup", bot=self)
        self.agent.warm_up()
        await self.pipeline.start()

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Stop taking work, let work in flight finish for ``grace_seconds``, park the rest."""
        await self.pipeline.stop(grace_seconds)
        await self.agent.close()
        if self._purger is not None:
            self._purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purger
        await self.notifications.drain(NOTIFICATION_DRAIN_SECONDS)
        await self.hooks.run_each("shutdown", bot=self)
        await self.notifications.close(NOTIFICATION_DRAIN_SECONDS)
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
        """Accept a normalized message from any channel; it is answered in the background.

        The message is durably recorded before this returns. Returns False for a
        duplicate delivery (the same platform message id again) or for the echo of
        a reply nicobot sent itself.
        """
        if message.from_business:
            return await self._operator_message(message)
        channel = self.channels.get(message.channel)
        debounce = channel.config.debounce_seconds if channel is not None else 0.0
        queued = await self.store.enqueue(
            message,
            debounce=debounce,
            max_wait=self.settings.pipeline.debounce_max_wait_seconds,
        )
        if queued is None:
            self.metrics.duplicates.labels(message.channel).inc()
            return False
        if queued[0].paused:
            await self.gate.note_while_paused(queued[0], message.text)
        self.notifications.emit("message_received", bot=self, session=queued[0], message=message)
        self.metrics.received.labels(message.channel).inc()
        self.pipeline.wake_turns()
        return True

    async def converse(self, message: IncomingMessage, wait_seconds: float | None = None) -> Turn:
        """Submit a message and wait for its reply (the simulator's path)."""
        key = (message.channel, message.message_id)
        waiter: asyncio.Future[Turn] = asyncio.get_running_loop().create_future()
        self._waiters[key] = waiter
        try:
            if not await self.submit(message):
                session, _ = await self.store.get_or_create_session(
                    message.channel, message.address
                )
                return Turn(session, None, "duplicate", duplicate=True)
            session, _ = await self.store.get_or_create_session(message.channel, message.address)
            if session.paused:
                return Turn(session, None, "paused")
            limit = wait_seconds or self.settings.llm.timeout_seconds + 30
            try:
                return await asyncio.wait_for(asyncio.shield(waiter), timeout=limit)
            except TimeoutError:
                session, _ = await self.store.get_or_create_session(
                    message.channel, message.address
                )
                return Turn(session, None, "pending")
        finally:
            self._waiters.pop(key, None)

    async def _operator_message(self, message: IncomingMessage) -> bool:
        pause = timedelta(minutes=self.settings.pipeline.handoff_minutes)
        session = await self.store.record_operator_message(message, pause_for=pause)
        if session is None:
            return False
        self.metrics.handoffs.labels(message.channel).inc()
        log.info(
            "a person wrote from the business's phone in session %s; the bot pauses until %s",
            session.id,
            session.paused_until.isoformat() if session.paused_until else "-",
        )
        return True

    async def pause(self, session_id: str, minutes: float | None = None) -> bool:
        """Pause the bot in a conversation (for ``minutes``, or until resumed)."""
        until = utcnow() + (timedelta(minutes=minutes) if minutes else PAUSE_FOREVER)
        return await self.store.set_paused(session_id, until)

    async def resume(self, session_id: str) -> bool:
        return await self.store.set_paused(session_id, None)

    # answering a turn (called by the pipeline)

    async def answer_turn(self, turn: ClaimedTurn) -> None:
        session = turn.session
        handoff = False
        reply: AgentReply | None
        decision = await self.gate.check(turn)
        texts = await self.media.texts(turn) if decision is None else []
        images = await self.media.images(turn) if decision is None else []
        if decision is not None and decision.defer_until is not None:
            await self._defer_turn(turn, decision.defer_until, decision.reply)
            return
        if decision is not None:
            reply = decision.reply
        elif not texts and not images:
            interval = timedelta(minutes=self.settings.pipeline.non_text_reply_minutes)
            reply = None
            if await self.store.claim_non_text_reply(session.id, interval):
                reply = AgentReply(canned_message(self.settings, "non_text"), [], "non_text")
        elif asks_for_a_person(" ".join(texts), self.handoff_keywords):
            reply = AgentReply(canned_message(self.settings, "handoff"), [], "handoff")
            handoff = True
        else:
            reply = await self._agent_reply(turn, "\n".join(texts), images)
        reply = self.gate.outside_hours(reply)
        if reply is not None and not handoff and await self._taken_over(session.id):
            log.info("a person took over while the reply was being written; it is not sent")
            reply = None
        channel = self.channels.get(session.channel)
        if reply is not None and channel is not None and not channel.is_local:
            reply.text = self._with_delay_apology(turn, reply.text)
        parts = self._outbox_parts(session.channel, reply.text if reply else None)
        try:
            await self.store.complete_turn(
                turn, reply.text if reply else None, reply.meta() if reply else {}, parts
            )
        except LostClaim:
            log.warning(
                "turn %s was taken over by another worker; dropping this reply", turn.entry_ids
            )
            return
        if handoff:
            await self.store.set_paused(
                session.id, utcnow() + timedelta(minutes=self.settings.pipeline.handoff_minutes)
            )
            self.metrics.handoffs.labels(session.channel).inc()
        if reply is not None:
            self.metrics.answered.labels(session.channel, reply.mode).inc()
            if reply.llm_seconds is not None:
                self.metrics.llm_seconds.observe(reply.llm_seconds)
            self._reply_stored(
                session, reply.text, parts, local=channel is not None and channel.is_local
            )
        result = Turn(session, reply.text if reply else None, reply.mode if reply else "none")
        self._resolve_waiters(turn, result)

    async def _taken_over(self, session_id: str) -> bool:
        """True when the conversation was paused (an operator replied, someone pressed
        pause) after this turn was claimed."""
        current = await self.store.get_session(session_id)
        return current is not None and current.paused

    def _outbox_parts(self, channel_name: str, text: str | None) -> list[str]:
        """What the outbox sends for a reply: nothing for a local channel (its pages
        show the transcript), else the reply split to the platform's length."""
        channel = self.channels.get(channel_name)
        if text is None or channel is None or not channel.delivers_replies:
            return []
        return split_message(text, channel.max_message_length)

    def _with_delay_apology(self, turn: ClaimedTurn, text: str) -> str:
        """A reply to a message written long ago (downtime, an outage) starts with a
        short apology for the delay."""
        oldest = min(entry.message.timestamp for entry in turn.entries)
        late = (utcnow() - oldest).total_seconds()
        if late < self.settings.pipeline.delayed_reply_seconds:
            return text
        return f"{canned_message(self.settings, 'delayed')}\n\n{text}"

    async def park_turn(self, turn: ClaimedTurn, error: str) -> None:
        """Every attempt at ``turn`` failed: keep it as failed (the admin page lists it,
        with Retry) and send the customer the apology, once."""
        session = turn.session
        text = canned_message(self.settings, "apology")
        reply = AgentReply(text, [], "failed", error=error)
        parts = self._outbox_parts(session.channel, text)
        try:
            await self.store.park_turn(turn, error, text, reply.meta(), parts)
        except LostClaim:
            log.warning("turn %s was taken over by another worker", turn.entry_ids)
            return
        self.metrics.turns_parked.labels(session.channel).inc()
        channel = self.channels.get(session.channel)
        self._reply_stored(session, text, parts, local=channel is not None and channel.is_local)
        self._resolve_waiters(turn, Turn(session, text, "failed"))

    def _resolve_waiters(self, turn: ClaimedTurn, result: Turn) -> None:
        for entry in turn.entries:
            waiter = self._waiters.get((entry.message.channel, entry.message.message_id))
            if waiter is not None and not waiter.done():
                waiter.set_result(result)

    async def _defer_turn(self, turn: ClaimedTurn, until: float, notice: AgentReply | None) -> None:
        channel = self.channels.get(turn.session.channel)
        parts = self._outbox_parts(turn.session.channel, notice.text if notice else None)
        try:
            await self.store.defer_turn(
                turn, until, notice.text if notice else None, notice.meta() if notice else {}, parts
            )
        except LostClaim:
            log.warning("turn %s was taken over by another worker", turn.entry_ids)
            return
        self.pipeline.wake_turns()  # the loop learns the new ready time
        if notice is not None:
            self._reply_stored(
                turn.session, notice.text, parts, local=channel is not None and channel.is_local
            )
        # the simulator learns at once that the answer comes later (with the notice, if any)
        result = Turn(turn.session, notice.text, notice.mode) if notice else None
        for entry in turn.entries:
            waiter = self._waiters.get((entry.message.channel, entry.message.message_id))
            if waiter is not None and not waiter.done():
                waiter.set_result(result or Turn(turn.session, None, "deferred"))

    async def _agent_reply(
        self, turn: ClaimedTurn, text: str, images: list[MediaFile] | None = None
    ) -> AgentReply:
        session = turn.session
        own_rows = {e.message_row_id for e in turn.entries}
        window = self.settings.llm.history_messages
        history = [
            m
            for m in await self.store.list_messages(session.id, limit=window + len(own_rows))
            if m.id not in own_rows
        ]
        context = ReplyContext(
            session=session, text=text, history=history, snippets=await self.agent.retrieve(text)
        )
        context.llm_messages = self.agent.build_messages(context, self.prompt_settings())
        attach_images(context.llm_messages, images or [])
        await self.hooks.run_each("before_reply", bot=self, context=context)
        with self.pipeline.turns.waiting():
            reply = await self.agent.reply(context)
        reply.text = await self.hooks.chain(
            "after_reply", "reply", bot=self, context=context, reply=reply.text
        )
        return reply

    # reply_sent: once per reply, when its last part reached the channel

    def _reply_stored(
        self, session: ChatSession, text: str, parts: list[str], *, local: bool
    ) -> None:
        if parts:
            self._reply_parts.expect(session.id, text, parts)
        elif local:  # the page shows the reply as soon as it is stored
            self._emit_reply_sent(session, session.channel, session.address, text, [text])

    async def after_delivery(self, entry: OutboxEntry) -> None:
        completed = self._reply_parts.delivered(entry.session_id, entry.text)
        if completed is None or not self.notifications.wanted("reply_sent"):
            return
        if completed is False:
            completed = await self._completed_from_store(entry)
            if completed is None:
                return
        session = await self.store.get_session(entry.session_id)
        if session is not None:
            text, parts = completed
            self._emit_reply_sent(session, entry.channel, entry.address, text, parts)

    async def _completed_from_store(self, entry: OutboxEntry) -> tuple[str, list[str]] | None:
        """The reply ``entry`` completes, for a part another process queued: once every
        part of its transcript line is sent (None before, or if one failed for good)."""
        if entry.message_id is None:
            return entry.text, [entry.text]
        parts = [
            d for d in await self.store.session_deliveries(entry.session_id)
            if d.message_id == entry.message_id
        ]  # fmt: skip
        if not parts or any(d.status != "sent" for d in parts) or parts[-1].id != entry.id:
            return None
        recent = await self.store.list_messages(entry.session_id, limit=REPLY_LOOKBACK)
        line = next((m for m in recent if m.id == entry.message_id), None)
        texts = [d.text for d in parts]
        return (line.text if line is not None else "\n".join(texts)), texts

    def _emit_reply_sent(
        self, session: ChatSession, channel: str, address: str, text: str, parts: list[str]
    ) -> None:
        self.notifications.emit(
            "reply_sent",
            bot=self,
            session=session,
            message=OutgoingMessage(channel, address, text),
            parts=parts,
        )
