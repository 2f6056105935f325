"""Logging with the conversation id on every line."""

from __future__ import annotations

import contextvars
import logging

conversation: contextvars.ContextVar[str] = contextvars.ContextVar("conversation", default="-")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [conversation=%(conversation)s] %(message)s"


class ConversationFilter(logging.Filter):
    """Adds ``conversation`` (the session id being worked on, or ``-``) to records."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.conversation = conversation.get()
        return True


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(ConversationFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    if level.upper() != "DEBUG":
        logging.getLogger("httpx").setLevel(logging.WARNING)
