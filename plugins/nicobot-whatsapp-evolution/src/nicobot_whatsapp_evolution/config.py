"""The ``[channels.whatsapp]`` settings, merged with the seed's environment variables."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from nicobot import ChannelConfig
from pydantic import Field, field_validator

#: Environment variables that override keys of the ``[channels.whatsapp]`` table.
ENV_KEYS: dict[str, str] = {
    "EVOLUTION_API_URL": "url",
    "EVOLUTION_API_KEY": "api_key",
    "EVOLUTION_INSTANCE_NAME": "instance",
    "EVOLUTION_WEBHOOK_SECRET": "webhook_secret",
}
#: A name in [channels.whatsapp.instances.NAME]: it becomes the channel "whatsapp-NAME".
INSTANCE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
#: Used for the webhook secret when neither the table nor EVOLUTION_WEBHOOK_SECRET sets one
#: (``nicobot init`` writes it into the project's ``.env``).
FALLBACK_SECRET_ENV = "NICOBOT_WEBHOOK_SECRET"


class WhatsAppConfig(ChannelConfig):
    """Settings of the WhatsApp channel (Evolution API gateway)."""

    url: str = Field("", description="Base URL of the Evolution API server.")
    api_key: str = Field("", repr=False, description="The gateway's global API key.")
    instance: str = Field("laformula", min_length=1, description="Evolution instance name.")
    webhook_secret: str = Field(
        "", repr=False, description="Secret the gateway must present on every webhook call."
    )
    webhook_header: str = Field(
        "x-nicobot-secret", min_length=1, description="Header that carries the secret."
    )
    public_url: str = Field(
        "", description="Base URL at which the gateway reaches nicobot; default server.public_url."
    )
    manage_webhook: bool = Field(
        True, description="Point the instance's webhook at nicobot on connect and on start."
    )
    timeout_seconds: float = Field(15.0, gt=0, le=300, description="Limit for one gateway call.")
    max_message_age_seconds: float = Field(
        300.0,
        gt=0,
        description="Older messages written while the instance was offline (a replayed "
        "backlog) are not answered.",
    )
    max_late_reply_seconds: float = Field(
        86400.0,
        gt=0,
        description="Messages delivered late (nicobot was down) are answered up to this age.",
    )
    catch_up: bool = Field(
        True,
        description="On start and on reconnect, fetch from the gateway what customers wrote "
        "while nicobot could not receive it, and answer it.",
    )
    debounce_seconds: float = Field(2.5, ge=0, le=60)
    instances: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="More WhatsApp numbers: [channels.whatsapp.instances.NAME] tables, each "
        "its own Evolution instance (the keys of this table are their defaults).",
    )

    @field_validator("instances")
    @classmethod
    def _instance_names(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, table in value.items():
            if not INSTANCE_NAME.fullmatch(name):
                raise ValueError(
                    f"{name!r}: an instance name is lower-case letters, digits and _ or -"
                )
            if not isinstance(table, dict):
                raise ValueError(f"{name!r}: expected a table [channels.whatsapp.instances.{name}]")
            if "instances" in table:
                raise ValueError(f"{name!r}: an instance cannot have instances")
        return value

    @field_validator("url", "public_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.strip().rstrip("/")

    @field_validator("api_key", "webhook_secret", "instance")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()


def merge_config(table: Mapping[str, Any], env: Mapping[str, str]) -> WhatsAppConfig:
    """The table, overridden by ``EVOLUTION_*`` variables; the secret falls back last."""
    fallbacks = {"webhook_secret": FALLBACK_SECRET_ENV}
    return WhatsAppConfig.from_sources(table, env, ENV_KEYS, fallbacks)
