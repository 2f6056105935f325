"""Project configuration: ``nicobot.toml``, then ``.env``, then the environment.

Environment variables override the file: ``NICOBOT_<SECTION>__<KEY>`` sets any key
(``NICOBOT_LLM__MODEL=openai/gpt-4o-mini``), and a few short names are kept for
convenience (``NICOBOT_MODEL``, ``NICOBOT_PORT``, ...; see ``SHORT_ENV_NAMES``).
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .answer_kind import with_topic_words
from .errors import ConfigError
from .question import search_text

__all__ = ["ConfigError", "Settings", "load_settings"]

CONFIG_FILE = "nicobot.toml"
ENV_FILE = ".env"
ENV_PREFIX = "NICOBOT_"

SHORT_ENV_NAMES: dict[str, tuple[str, str]] = {
    "NICOBOT_MODEL": ("llm", "model"),
    "NICOBOT_LLM_API_BASE": ("llm", "api_base"),
    "NICOBOT_LLM_API_KEY": ("llm", "api_key"),
    "NICOBOT_HOST": ("server", "host"),
    "NICOBOT_PORT": ("server", "port"),
    "NICOBOT_DATA_DIR": ("server", "data_dir"),
    "NICOBOT_PUBLIC_URL": ("server", "public_url"),
    "NICOBOT_LANGUAGE": ("bot", "language"),
}

LANGUAGES = ("en", "es")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BotSettings(_Section):
    name: str = Field("Nico", min_length=1, description="The assistant's name.")
    persona: str = Field(
        "a friendly assistant",
        description="Who the assistant is, in a few words; used in the default prompt.",
    )
    business: str = Field("our business", description="The business the assistant serves.")
    system_prompt: str = Field(
        "You are {name}, {persona} for {business}. Answer briefly and kindly. "
        "Use only the information you are given; if you do not know, say so.",
        description="The system prompt; {name}, {persona} and {business} are filled in.",
    )
    language: Literal["en", "es"] = Field(
        "en", description="Language of the pages and canned replies."
    )
    timezone: str = Field("UTC", description="Time zone for dates shown on the pages.")

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


class LLMSettings(_Section):
    model: str = Field(
        "", description="A litellm model name such as openai/gpt-4o-mini; empty answers offline."
    )
    api_base: str | None = Field(None, description="Base URL of an OpenAI-compatible server.")
    api_key: str | None = Field(None, description="API key; providers' own variables work too.")
    timeout_seconds: float = Field(25.0, gt=0, le=600, description="Limit for one LLM call.")
    history_messages: int = Field(20, ge=0, le=200, description="Past messages sent to the LLM.")
    temperature: float = Field(0.3, ge=0, le=2)
    max_tokens: int = Field(600, gt=0, le=32000)
    max_retries: int = Field(1, ge=0, le=5, description="Retries of a failed LLM call.")
    process: Literal["separate", "inline"] = Field(
        "separate",
        description="Where litellm runs: a child process (its CPU off the server's event "
        "loop, its memory out of the server) or inside the server.",
    )


class ServerSettings(_Section):
    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(7070, ge=1, le=65535)
    data_dir: str = Field("data", description="SQLite and Chroma files, relative to the project.")
    public_url: str | None = Field(
        None, description="Base URL at which gateways reach this server (for webhooks)."
    )
    workers: int = Field(
        1, ge=1, le=64, description="Server processes on one port, sharing the store."
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Reverse proxies (addresses or CIDR ranges) whose X-Forwarded-For is "
        "believed; from anyone else it is ignored.",
    )
    secure_cookies: bool = Field(
        False, description="Send the session cookie over HTTPS only (behind a TLS proxy)."
    )
    max_auth_failures: int = Field(
        10, ge=1, le=1_000_000, description="Wrong credentials per client in 5 min before 429."
    )
    min_free_disk_mb: int = Field(
        100, ge=0, le=10_000_000, description="Below this free space in data_dir, not ready."
    )

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxy_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        for entry in value if isinstance(value, list) else []:
            try:
                ipaddress.ip_network(str(entry), strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an address or CIDR range") from None
        return value


class StoreSettings(_Section):
    backend: str = Field("sqlite", description="Name of the store plugin.")
    url: str | None = Field(
        None,
        description="Where a server store lives, such as postgresql://user@host/db "
        "(the sqlite store keeps its file in the data folder and ignores it).",
        repr=False,
    )


class KnowledgeSettings(_Section):
    model_config = ConfigDict(extra="allow")

    backend: str = Field("chroma", description="Name of the knowledge plugin; empty for none.")
    top_k: int = Field(4, ge=1, le=50)
    min_score: float = Field(0.2, ge=0, le=1)
    synonyms: dict[str, str] = Field(
        default_factory=dict,
        description="The business's own terms and what they mean, added to questions.",
    )
    chat_shorthand: bool = Field(True, description="Spell out chat shorthand in questions.")
    topic_words: bool = Field(
        True,
        description="Add to questions about the shop's address, hours, payment, shipping or "
        "returns the words documents file them under.",
    )

    def search_text(self, text: str) -> str:
        """A customer's question with its shorthand and the business's terms spelled out
        (see nicobot.question): what it is searched, split and trimmed as."""
        return search_text(text, self.synonyms, self.chat_shorthand)

    def query_text(self, searched: str, language: str) -> str:
        """What the knowledge base is asked for ``searched`` (a :meth:`search_text`, or one
        part of it): with its topics' words in ``language`` (see nicobot.answer_kind)."""
        return with_topic_words(searched, language) if self.topic_words else searched


class PipelineSettings(_Section):
    concurrency: int = Field(8, ge=1, le=1000, description="Conversations answered at once.")
    send_concurrency: int = Field(16, ge=1, le=1000, description="Deliveries in flight at once.")
    send_attempts: int = Field(
        0, ge=0, le=10000, description="Delivery attempts before failing; 0: no limit."
    )
    send_backoff_seconds: float = Field(2.0, gt=0, le=600, description="First retry delay.")
    send_backoff_max_seconds: float = Field(60.0, gt=0, le=3600, description="Longest delay.")
    send_max_age_seconds: float = Field(
        86400.0, gt=0, le=30 * 86400, description="Undelivered replies older than this fail."
    )
    turn_attempts: int = Field(3, ge=1, le=100, description="Attempts to answer a message.")
    turn_backoff_seconds: float = Field(5.0, gt=0, le=600, description="First turn retry delay.")
    delayed_reply_seconds: float = Field(
        120.0, gt=0, description="Replies to older messages start with the delay apology."
    )
    debounce_max_wait_seconds: float = Field(
        15.0, ge=0, le=600, description="Longest wait for a burst of messages to end."
    )
    handoff_minutes: float = Field(
        30.0, ge=0, le=10080, description="Pause after a person writes from the business phone."
    )
    handoff_keywords: list[str] | None = Field(
        None, description="Words that make the customer's message a request for a person."
    )
    non_text_reply_minutes: float = Field(
        60.0, ge=0, le=10080, description="At most one 'text only' reply per conversation per this."
    )


class PluginsSettings(_Section):
    hook_timeout_seconds: float = Field(
        10.0, gt=0, le=600, description="Longest one plugin's hook implementation may take."
    )


class MessagesSettings(_Section):
    """The bot's own words to customers; unset ones come from the language defaults."""

    apology: str | None = None
    non_text: str | None = None
    offline_intro: str | None = None
    offline_fallback: str | None = None
    handoff: str | None = None
    delayed: str | None = None
    opt_out: str | None = None
    opt_in: str | None = None
    rate_limited: str | None = None
    handoff_closed: str | None = None
    offline_fallback_closed: str | None = None
    out_of_office: str | None = None


class OptOutSettings(_Section):
    """Customers who ask the bot to stop writing (``[optout]``)."""

    enabled: bool = Field(True, description="Recognise opt-out and opt-in messages.")
    opt_out_keywords: list[str] | None = Field(
        None, description="Whole messages that stop the bot in a conversation."
    )
    opt_in_keywords: list[str] | None = Field(
        None, description="Whole messages that let the bot write again."
    )


class ContactsSettings(_Section):
    """Whom the bot answers (``[contacts]``)."""

    allow: list[str] = Field(
        default_factory=list, description="Only these numbers are answered (empty: everyone)."
    )
    deny: list[str] = Field(default_factory=list, description="These numbers are never answered.")
    rate_limit_per_minute: int = Field(
        0, ge=0, le=1000, description="Replies per sender in a minute; 0 for no limit."
    )
    rate_window_seconds: float = Field(
        60.0, gt=0, le=3600, description="The window the rate limit counts replies in."
    )

    @field_validator("allow", "deny")
    @classmethod
    def _numbers(cls, values: list[str]) -> list[str]:
        for value in values:
            text = value.strip()
            if "@" not in text and not any(c.isdigit() for c in text):
                raise ValueError(f"{value!r} is not a phone number (digits, optionally a final *)")
        return values


class HoursSettings(_Section):
    """Business hours (``[hours]``) in ``[bot] timezone``; no weekday set: always open."""

    monday: list[str] | None = Field(None, description='Open ranges, e.g. ["09:00-18:00"].')
    tuesday: list[str] | None = None
    wednesday: list[str] | None = None
    thursday: list[str] | None = None
    friday: list[str] | None = None
    saturday: list[str] | None = None
    sunday: list[str] | None = None
    holidays: list[str] = Field(default_factory=list, description="Closed dates, YYYY-MM-DD.")
    out_of_office: bool = Field(
        False, description="Outside the hours, one out-of-office reply instead of the bot."
    )

    @field_validator("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    @classmethod
    def _ranges(cls, values: list[str] | None) -> list[str] | None:
        from .hours import parse_range

        for value in values or ():
            parse_range(value)
        return values

    @field_validator("holidays")
    @classmethod
    def _dates(cls, values: list[str]) -> list[str]:
        from datetime import date

        for value in values:
            try:
                date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"{value!r} is not a date such as 2026-12-25") from None
        return values


class MediaSettings(_Section):
    """Voice notes and images (``[media]``)."""

    transcription_model: str = Field(
        "", description="A litellm transcription model (openai/whisper-1); empty: none."
    )
    transcription_api_base: str | None = Field(None, description="Its OpenAI-compatible server.")
    transcription_api_key: str | None = Field(None, description="Its API key.")
    vision: Literal["auto", "on", "off"] = Field(
        "auto", description="Send images to [llm] model: auto asks litellm whether it can."
    )
    max_file_mb: float = Field(
        10.0, gt=0, le=25, description="Largest file fetched from a channel, in megabytes."
    )

    @property
    def max_bytes(self) -> int:
        return int(self.max_file_mb * 1_000_000)


class Settings(_Section):
    bot: BotSettings = Field(default_factory=BotSettings)  # type: ignore[arg-type]
    llm: LLMSettings = Field(default_factory=LLMSettings)  # type: ignore[arg-type]
    server: ServerSettings = Field(default_factory=ServerSettings)  # type: ignore[arg-type]
    store: StoreSettings = Field(default_factory=StoreSettings)  # type: ignore[arg-type]
    knowledge: KnowledgeSettings = Field(default_factory=KnowledgeSettings)  # type: ignore[arg-type]
    messages: MessagesSettings = Field(default_factory=MessagesSettings)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)  # type: ignore[arg-type]
    optout: OptOutSettings = Field(default_factory=OptOutSettings)  # type: ignore[arg-type]
    contacts: ContactsSettings = Field(default_factory=ContactsSettings)  # type: ignore[arg-type]
    hours: HoursSettings = Field(default_factory=HoursSettings)  # type: ignore[arg-type]
    media: MediaSettings = Field(default_factory=MediaSettings)  # type: ignore[arg-type]
    plugins: PluginsSettings = Field(default_factory=PluginsSettings)  # type: ignore[arg-type]
    channels: dict[str, dict[str, Any]] = Field(default_factory=dict)

    project_dir: Path = Field(default=Path("."), exclude=True)
    admin_password: str | None = Field(default=None, exclude=True, repr=False)
    secret_key: str | None = Field(default=None, exclude=True, repr=False)
    env: dict[str, str] = Field(default_factory=dict, exclude=True, repr=False)

    @property
    def data_path(self) -> Path:
        path = Path(self.server.data_dir)
        return path if path.is_absolute() else self.project_dir / path


def read_env_file(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def project_env(project_dir: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The project's ``.env`` overlaid by the process environment (or ``environ``)."""
    env = read_env_file(project_dir / ENV_FILE)
    env.update(os.environ if environ is None else environ)
    return env


def _set_path(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        node = data.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{'.'.join(path)}: cannot set a key inside a non-table value")
        data = node
    data[path[-1]] = value


def _env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for key, value in env.items():
        if key in SHORT_ENV_NAMES:
            _set_path(overrides, SHORT_ENV_NAMES[key], value)
        elif key.startswith(ENV_PREFIX) and "__" in key:
            parts = tuple(p.lower() for p in key[len(ENV_PREFIX) :].split("__"))
            if all(parts):
                _set_path(overrides, parts, value)
    return overrides


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def format_validation_error(exc: ValidationError, prefix: str = "") -> str:
    """One line per problem: ``llm.timeout_seconds: Input should be a valid number``."""
    lines = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        message = message.removeprefix("Value error, ")
        lines.append(f"{prefix}{key}: {message}")
    return "; ".join(lines)


def load_settings(
    project_dir: Path | str = ".", environ: Mapping[str, str] | None = None
) -> Settings:
    """Read and validate a project's settings; raise :class:`ConfigError` on any problem."""
    project = Path(project_dir).resolve()
    if not project.is_dir():
        raise ConfigError(f"project directory {project} does not exist")
    config_path = project / CONFIG_FILE
    data: dict[str, Any] = {}
    if config_path.is_file():
        try:
            data = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{CONFIG_FILE}: not valid TOML ({exc})") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{CONFIG_FILE}: cannot read it ({exc})") from None
    env = project_env(project, environ)
    data = _merge(data, _env_overrides(env))
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, prefix=f"{CONFIG_FILE}: ")) from None
    settings.project_dir = project
    settings.env = env
    settings.admin_password = env.get("NICOBOT_ADMIN_PASSWORD") or None
    settings.secret_key = env.get("NICOBOT_SECRET_KEY") or None
    return settings
