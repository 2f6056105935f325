"""Channels: where customers write from, and the manager that holds them."""

from __future__ import annotations

import abc
import enum
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field

from .models import IncomingMessage, MediaFile, OutgoingMessage

if TYPE_CHECKING:
    from .config import Settings


class ChannelConfig(BaseModel):
    """Settings every channel understands, from its ``[channels.NAME]`` table.

    Subclass it for a channel's own keys. A key the model does not declare is an error
    at start-up (``nicobot.toml: channels.NAME.KEY: unknown key``), so that a misspelled
    setting never goes unnoticed."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    debounce_seconds: float = Field(0.0, ge=0, le=120)
    typing_max_seconds: float = Field(4.0, ge=0, le=30)
    typing_chars_per_second: float = Field(25.0, gt=0)

    @classmethod
    def from_sources(
        cls,
        table: Mapping[str, Any],
        env: Mapping[str, str],
        env_keys: Mapping[str, str] | None = None,
        fallbacks: Mapping[str, str] | None = None,
    ) -> Self:
        """Validate a channel's settings from its sources, for ``Channel.load_config``.

        Which value wins, highest first: a non-empty variable of ``env_keys``
        (``{"EVOLUTION_API_URL": "url"}``: the plugin's own variable names); then
        ``NICOBOT_CHANNELS__NAME__KEY`` from the environment or ``.env``; then the
        ``[channels.NAME]`` table (``table`` already holds those two merged); then, for
        keys still empty, a variable of ``fallbacks``
        (``{"webhook_secret": "NICOBOT_WEBHOOK_SECRET"}``); then the model's default.
        Raises pydantic's ``ValidationError``, which the core reports as one line."""
        data: dict[str, Any] = dict(table)
        for variable, key in (env_keys or {}).items():
            value = env.get(variable, "").strip()
            if value:
                data[key] = value
        for key, variable in (fallbacks or {}).items():
            if not str(data.get(key) or "").strip() and env.get(variable, "").strip():
                data[key] = env[variable].strip()
        return cls.model_validate(data)


@dataclass(slots=True)
class ChannelStatus:
    """What a channel says about its connection.

    ``connected`` says whether messages flow. ``state`` is a short machine word; the
    admin page knows ``connected``, ``disconnected``, ``scanning`` (waiting for a QR
    code to be scanned), ``not_configured`` and ``error``, and shows any other word
    (``unreachable``, ``logged_out``...) as disconnected with ``details``, a sentence for
    people. ``qr`` is a QR code as a ``data:image/png;base64,...`` URL for the page and
    ``qr_code`` the text it encodes, for the terminal; ``account`` names who is
    connected (a phone number, a bot's username). ``extra`` is merged into the JSON of
    ``GET /api/channels/NAME/status``; its ``reason`` key, if any, picks one of the
    page's explanations (``logged_out``, ``qr_limit``, ``unreachable``, ``no_instance``).
    """

    connected: bool
    state: str
    details: str = ""
    qr: str | None = None
    qr_code: str | None = None
    account: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "connected": self.connected,
            "state": self.state,
            "details": self.details,
            "account": self.account,
        }
        if self.qr is not None or self.qr_code is not None:
            data["qr"] = self.qr
            data["qr_code"] = self.qr_code
        data.update(self.extra)
        return data


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """A platform's HTTP call, without the web framework around it.

    ``headers`` have lower-case names. ``subpath`` is what followed
    ``/api/webhooks/{slug}/`` in the URL (empty when nothing did); ``query`` the URL's
    parameters. ``body`` is the raw request body as bytes (check a signature over
    it, as platforms that sign their webhooks require); ``json`` is the parsed body, or
    None when it was not JSON.
    """

    method: str
    headers: Mapping[str, str]
    subpath: str
    query: Mapping[str, str]
    body: bytes
    json: Any


@dataclass(slots=True)
class WebhookResult:
    """What a channel made of a webhook call: messages for the bot and the answer.

    The core stores each of ``messages`` (dropping duplicates) and answers ``status``
    with ``body`` as JSON, plus ``accepted`` and ``duplicates`` counts when there were
    messages. Return an empty result (200) for calls that carry no message, so that
    the platform does not retry them."""

    messages: list[IncomingMessage] = field(default_factory=list)
    status: int = 200
    body: dict[str, Any] = field(default_factory=lambda: {"ok": True})


class PermanentSendError(Exception):
    """Raised by :meth:`Channel.send_message` when the platform will never take this
    message (the number is not on WhatsApp): it is kept as failed at once, no retries."""


class RetryLater(Exception):
    """Raised by :meth:`Channel.send_message` when the platform asks to wait: the next
    attempt comes after ``seconds`` instead of the usual backoff."""

    def __init__(self, message: str, seconds: float) -> None:
        super().__init__(message)
        self.seconds = max(0.0, float(seconds))


class SendOutcomeUnknown(Exception):
    """Raised by :meth:`Channel.send_message` when the message may have reached the
    platform although the call failed (no answer within the timeout, the connection
    reset after the request went out). Before sending it again the core asks
    :meth:`Channel.find_sent` whether it went out."""


class SentState(enum.StrEnum):
    SENT = "sent"
    NOT_SENT = "not_sent"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class SentCheck:
    """What :meth:`Channel.find_sent` found: ``SENT`` (with the platform's id when
    known), ``NOT_SENT``, or ``UNKNOWN`` (the channel cannot tell)."""

    state: SentState
    platform_id: str | None = None

    @classmethod
    def sent(cls, platform_id: str | None = None) -> SentCheck:
        return cls(SentState.SENT, platform_id)

    @classmethod
    def not_sent(cls) -> SentCheck:
        return cls(SentState.NOT_SENT)

    @classmethod
    def unknown(cls) -> SentCheck:
        return cls(SentState.UNKNOWN)


class WebhookRejected(Exception):
    """Raise it in ``handle_webhook`` to refuse a call: the core answers ``status``
    (401 unless told; use 4xx codes, which platforms do not retry) with
    ``{"error": message}`` and logs it. Any other exception is logged and answered 200
    with ``{"ok": false, "dropped": true}``."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


@dataclass(slots=True)
class ChannelContext:
    """What the core lends a channel, as ``self.context``.

    ``settings`` are the project's settings, ``env`` the project's ``.env`` overlaid by
    the process environment, ``data_dir`` a folder the channel may keep files in.
    ``await report_status(status)`` tells the core of a new connection status: the
    ``channel_status_changed`` hook fires in the background and the call returns at
    once, never raising a plugin's error."""

    settings: Settings
    env: Mapping[str, str]
    report_status: Callable[[ChannelStatus], Awaitable[None]]
    #: Hand a message to the bot outside a webhook (messages fetched after downtime);
    #: False for a duplicate. Works once the server has started.
    submit: Callable[[IncomingMessage], Awaitable[bool]] | None = None
    #: Small durable values of this channel (``(key) -> value``), kept in the store.
    load_state: Callable[[str], Awaitable[str | None]] | None = None
    save_state: Callable[[str, str | None], Awaitable[None]] | None = None

    @property
    def data_dir(self) -> Path:
        return self.settings.data_path


class Channel(abc.ABC):
    """Base class for a messaging channel.

    Subclasses set ``name`` (an open string such as ``"whatsapp"``), ``label``,
    ``config_model`` (a config given as a plain :class:`ChannelConfig` is validated
    into it) and, if the platform calls nicobot, ``webhook_slug``: the core then routes
    ``POST /api/webhooks/{webhook_slug}`` (and anything below it) to
    :meth:`handle_webhook`. The capability attributes say what the admin page and the
    command line offer for the channel; they default to "not supported", except
    sending.

    A failed :meth:`send_message` is retried by the core after
    ``[pipeline] send_backoff_seconds``, doubling each time up to
    ``send_backoff_max_seconds``, until ``send_attempts`` (0: no limit) or
    ``send_max_age_seconds`` is reached; then the reply is kept as failed (admin page,
    ``GET /api/outbox?status=failed``).
    """

    name: ClassVar[str]
    label: ClassVar[str]
    webhook_slug: ClassVar[str | None] = None
    config_model: ClassVar[type[ChannelConfig]] = ChannelConfig
    #: Pairs by scanning a QR code: :meth:`connect` returns a status with ``qr``, then
    #: ``scanning`` until it is ``connected``.
    supports_qr: ClassVar[bool] = False
    #: :meth:`connect` does something without a QR code (registers a webhook...).
    supports_connect: ClassVar[bool] = False
    #: :meth:`disconnect` unlinks the channel (logs a device out, removes a webhook).
    supports_disconnect: ClassVar[bool] = False
    #: Replies are delivered through :meth:`send_message`; False for a channel that
    #: only receives (its replies are stored and shown, never delivered).
    supports_sending: ClassVar[bool] = True
    supports_typing: ClassVar[bool] = False
    #: A channel whose replies are shown in nicobot's own pages (the simulator).
    is_local: ClassVar[bool] = False
    #: Longest message the platform takes; longer replies are split on paragraphs.
    max_message_length: ClassVar[int | None] = 4096
    #: After a send whose outcome is unknown, wait at least this long before asking
    #: :meth:`find_sent` (a slow call may still be completing on the platform).
    reconcile_after_seconds: float = 0.0

    def __init__(self, config: ChannelConfig, context: ChannelContext) -> None:
        if not isinstance(config, self.config_model):
            config = self.config_model.model_validate(config.model_dump())
        self.config = config
        self.context = context

    @classmethod
    def load_config(cls, table: Mapping[str, Any], env: Mapping[str, str]) -> ChannelConfig:
        """Build the config from the ``[channels.NAME]`` table; override to read ``env``."""
        return cls.config_model.model_validate(dict(table))

    @classmethod
    def instances(cls, config: ChannelConfig) -> list[tuple[type[Channel], ChannelConfig]]:
        """Further channels of this kind set up in the same table (several WhatsApp
        numbers): each a subclass with its own ``name`` and ``webhook_slug``, and its
        config. None by default."""
        return []

    @property
    def configured(self) -> bool:
        """False when required settings are missing: the channel then stays idle."""
        return True

    @property
    def delivers_replies(self) -> bool:
        """True when replies go through the outbox to :meth:`send_message`."""
        return self.supports_sending and not self.is_local

    @classmethod
    def capabilities(cls) -> dict[str, bool]:
        """What the pages and the command line may offer: ``pairs_by_qr``,
        ``connect``, ``disconnect`` and ``send``."""
        return {
            "pairs_by_qr": cls.supports_qr,
            "connect": cls.supports_qr or cls.supports_connect,
            "disconnect": cls.supports_disconnect,
            "send": cls.supports_sending,
        }

    async def start(self) -> None:
        """Called once when the server starts (and around one ``nicobot channels``
        command), if :attr:`configured`: open clients, start background tasks."""

    async def stop(self) -> None:
        """Called once when the server stops, after the last delivery: close what
        :meth:`start` opened. It must not raise."""

    async def connect(self) -> ChannelStatus:
        """Link the channel (the admin's Connect button, ``nicobot channels connect``);
        only called when :meth:`capabilities` says ``connect``."""
        return await self.get_status()

    async def disconnect(self) -> ChannelStatus:
        """Unlink the channel; only called when ``supports_disconnect`` is set."""
        return await self.get_status()

    @abc.abstractmethod
    async def get_status(self) -> ChannelStatus:
        """The connection's status now; called by the pages, so keep it quick."""

    @abc.abstractmethod
    async def send_message(self, message: OutgoingMessage) -> str | None:
        """Deliver ``message``; return the platform's id for it when there is one.

        Any exception is retried with backoff (for up to ``[pipeline]
        send_max_age_seconds``). Raise :class:`PermanentSendError` for a message the
        platform will never take, :class:`RetryLater` when it says how long to wait,
        and :class:`SendOutcomeUnknown` when the message may have gone out anyway."""

    async def find_sent(self, message: OutgoingMessage, since: datetime) -> SentCheck:
        """Whether ``message`` (same address and text) reached the platform at or after
        ``since``: asked before resending a delivery whose earlier attempt may have gone
        out (:class:`SendOutcomeUnknown`, or a process killed while sending).

        The default cannot tell (``SentCheck.unknown()``): the core then sends again,
        so the customer may get a second copy. Raise to mean "cannot ask now": the
        core asks again later instead of sending."""
        return SentCheck.unknown()

    async def send_typing(self, address: str, seconds: float) -> None:
        """Show "typing..." to ``address`` for about ``seconds``; no-op by default."""

    async def fetch_media(self, message: IncomingMessage, max_bytes: int) -> MediaFile | None:
        """The file attached to ``message`` (see ``IncomingMessage.media``), at most
        ``max_bytes``; None when there is none, it is larger or it is gone. Not supported
        (None) by default."""
        return None

    async def handle_webhook(self, request: WebhookRequest) -> WebhookResult:
        """Authenticate and parse a webhook call; raise :class:`WebhookRejected` to refuse."""
        raise WebhookRejected("this channel takes no webhooks", status=404)


class ChannelManager:
    """The channels of one running bot, by name."""

    def __init__(self) -> None:
        self._channels: dict[str, Channel] = {}

    def register(self, channel: Channel) -> None:
        if channel.name in self._channels:
            raise ValueError(f"channel {channel.name!r} is already registered")
        self._channels[channel.name] = channel

    def get(self, name: str) -> Channel | None:
        return self._channels.get(name)

    def by_webhook_slug(self, slug: str) -> Channel | None:
        for channel in self._channels.values():
            if channel.webhook_slug == slug:
                return channel
        return None

    def all(self) -> list[Channel]:
        return list(self._channels.values())

    def __contains__(self, name: object) -> bool:
        return name in self._channels

    async def statuses(self) -> dict[str, ChannelStatus]:
        result: dict[str, ChannelStatus] = {}
        for name, channel in self._channels.items():
            if not channel.configured:
                result[name] = ChannelStatus(False, "not_configured", "Not configured.")
                continue
            try:
                result[name] = await channel.get_status()
            except Exception as exc:  # a broken channel must not hide the others
                result[name] = ChannelStatus(False, "error", str(exc))
        return result
