"""Keep secrets out of the logs, the access log included.

Two filters: one replaces every configured secret (the admin password, the secret key,
webhook secrets, API keys and tokens from ``.env`` and the environment) wherever it
appears in a record; the other shortens webhook paths in the access log to their channel,
since a gateway may carry its secret as a path segment (derived secrets are not in the
environment, so the first filter cannot know them).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping

REDACTED = "[redacted]"
SECRET_NAME = re.compile(r"(SECRET|PASSWORD|TOKEN|API_KEY|APIKEY|_KEY$)", re.IGNORECASE)
MIN_SECRET_CHARS = 6
_WEBHOOK_PATH = re.compile(r"^(/api/webhooks/[^/?]+)[/?].*$", re.DOTALL)


def secrets_in(env: Mapping[str, str], extra: Iterable[str | None] = ()) -> list[str]:
    """The values worth hiding: every variable named like a secret, and ``extra``."""
    found = {value for key, value in env.items() if SECRET_NAME.search(key)}
    found.update(value for value in extra if value)
    return sorted((s for s in found if len(s) >= MIN_SECRET_CHARS), key=len, reverse=True)


class SecretsFilter(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if len(s) >= MIN_SECRET_CHARS]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = message
        for secret in self.secrets:
            if secret in cleaned:
                cleaned = cleaned.replace(secret, REDACTED)
        if cleaned is not message and cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            text = logging.Formatter().formatException(record.exc_info)
            for secret in self.secrets:
                text = text.replace(secret, REDACTED)
            record.exc_text = text
        return True


class WebhookPathFilter(logging.Filter):
    """For uvicorn's access log: ``/api/webhooks/evolution/<secret>/x?y`` is logged as
    ``/api/webhooks/evolution/...``."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            path = _WEBHOOK_PATH.sub(r"\1/...", args[2])
            if path != args[2]:
                record.args = (*args[:2], path, *args[3:])
        return True


def install(secrets: Iterable[str]) -> None:
    """Redact on every handler of the root logger, and webhook paths in the access log."""
    secrets_filter = SecretsFilter(secrets)
    for handler in logging.getLogger().handlers:
        handler.addFilter(secrets_filter)
    logging.getLogger("uvicorn.access").addFilter(WebhookPathFilter())
