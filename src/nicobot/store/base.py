"""The contract every store follows.

Every guarantee (dedup, atomic message writes) is an operation on the store, never
in-process state, so several nicobot workers may share one store.
"""

from __future__ import annotations

import abc
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from ..models import ChatSession, Message, Role

if TYPE_CHECKING:
    from typing import Self

    from ..config import Settings


class Store(abc.ABC):
    """Conversations, messages, webhook dedup records and persisted settings."""

    #: The name a project picks in ``[store] backend = "..."``.
    name: ClassVar[str]

    @classmethod
    @abc.abstractmethod
    def from_settings(cls, settings: Settings) -> Self:
        """Build the store for a project (its files go under ``settings.data_path``)."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and migrate the schema to the current version."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    # sessions
    @abc.abstractmethod
    async def get_session(self, session_id: str) -> ChatSession | None: ...

    @abc.abstractmethod
    async def put_session(self, session: ChatSession) -> None:
        """Insert or update ``session`` (its channel and address are its key)."""

    @abc.abstractmethod
    async def delete_session(self, session_id: str) -> bool:
        """Delete a session and its messages; False when it did not exist."""

    @abc.abstractmethod
    async def list_sessions(
        self, channel: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[ChatSession]:
        """Sessions, the most recently active first."""

    @abc.abstractmethod
    async def get_or_create_session(
        self,
        channel: str,
        address: str,
        *,
        phone_number: str | None = None,
        sender_name: str | None = None,
        prompt_context: str | None = None,
    ) -> tuple[ChatSession, bool]:
        """The session for (channel, address), created if missing; True when created.

        A known session gets a newer ``sender_name`` or ``phone_number`` when given.
        """

    # messages
    @abc.abstractmethod
    async def add_message(
        self, session_id: str, role: Role, text: str, meta: dict[str, Any] | None = None
    ) -> Message:
        """Append a message and update the session's last message, atomically."""

    @abc.abstractmethod
    async def list_messages(self, session_id: str, limit: int | None = None) -> list[Message]:
        """The session's messages in order; with ``limit``, only the latest ones."""

    # webhook dedup
    @abc.abstractmethod
    async def claim_message_id(self, channel: str, message_id: str) -> bool:
        """Record a platform message id; True for the first claim only, atomically."""

    @abc.abstractmethod
    async def purge_claims(self, older_than: timedelta) -> int:
        """Remove dedup records older than ``older_than``; return how many."""

    # settings edited from the admin page
    @abc.abstractmethod
    async def get_setting(self, key: str) -> str | None: ...

    @abc.abstractmethod
    async def set_setting(self, key: str, value: str | None) -> None:
        """Store ``value`` under ``key``; None removes it."""
