"""Knowledge bases: documents the agent answers from."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from typing import Self

    from .config import Settings


@dataclass(frozen=True, slots=True)
class Snippet:
    """A retrieved piece of a document, with where it came from and how well it matched."""

    text: str
    source: str
    score: float
    heading: str | None = None
    chunk_id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "source": self.source,
            "heading": self.heading,
            "score": round(self.score, 4),
            "chunk_id": self.chunk_id,
        }


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    """A document held by a knowledge base."""

    source: str
    chunks: int
    updated_at: str | None = None


class KnowledgeBase(abc.ABC):
    """Documents that can be added, removed and searched."""

    #: The name a project picks in ``[knowledge] backend = "..."``.
    name: ClassVar[str]

    @classmethod
    @abc.abstractmethod
    def from_settings(cls, settings: Settings) -> Self:
        """Build the knowledge base for a project (files under ``settings.data_path``)."""

    async def open(self) -> None:
        """Called once when the bot starts."""

    async def close(self) -> None:
        """Called once when the bot stops."""

    @abc.abstractmethod
    async def add_file(self, path: Path, source: str | None = None) -> int:
        """Add or replace the document at ``path``; return its number of chunks."""

    @abc.abstractmethod
    async def delete(self, source: str) -> bool: ...

    @abc.abstractmethod
    async def count(self) -> int:
        """How many chunks are stored."""

    @abc.abstractmethod
    async def documents(self) -> list[DocumentInfo]: ...

    @abc.abstractmethod
    async def query(self, text: str, k: int = 4) -> list[Snippet]:
        """The ``k`` best snippets for ``text``, best first."""
