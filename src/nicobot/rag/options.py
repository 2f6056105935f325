"""The ``[knowledge]`` options of the Chroma knowledge base, read and checked.

``KnowledgeSettings`` allows extra keys; these are the ones this plugin reads::

    [knowledge]
    embedder = "auto"           # "auto" (e5 where it can run, else hashing), "e5",
                                # "hashing" or "litellm:<model>"
    embedder_threads = 1        # CPU threads of the e5 embedder (default: 1)
    chunk_size = 900            # characters per chunk at most
    chunk_overlap = 150         # characters shared by consecutive chunks of a section
    dir = "knowledge"           # the documents folder, relative to the project
    auto_ingest = true          # sync that folder when the bot starts
    max_upload_mb = 10          # largest file the admin page accepts
    collection = ""             # Chroma collection name; derived from [bot] name if empty
    embedder_api_base = ""      # for litellm embedders; the key comes from the
                                # provider's variable or NICOBOT_KNOWLEDGE__EMBEDDER_API_KEY
    chroma_url = ""             # a Chroma server (`chroma run`) shared by several workers;
                                # empty keeps the store in data/chroma, for one process
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import ConfigError
from .chunking import DEFAULT_MAX_CHARS, DEFAULT_OVERLAP, MIN_MAX_CHARS
from .e5_support import E5_DEFAULT_THREADS
from .hashing import fold

if TYPE_CHECKING:
    from ..config import Settings

DEFAULT_EMBEDDER = "auto"
CHROMA_DIR = "chroma"


@dataclass(frozen=True, slots=True)
class KnowledgeOptions:
    chroma_path: Path
    collection: str
    embedder: str
    knowledge_dir: Path
    project_dir: Path
    chunk_size: int = DEFAULT_MAX_CHARS
    chunk_overlap: int = DEFAULT_OVERLAP
    auto_ingest: bool = True
    max_upload_mb: int = 10
    embedder_api_base: str | None = None
    embedder_api_key: str | None = None
    embedder_threads: int = E5_DEFAULT_THREADS
    chroma_url: str | None = None


def collection_name(bot_name: str) -> str:
    """A valid Chroma collection name: ``"Nico Fórmula"`` -> ``"nicobot-nico-formula"``."""
    slug = re.sub(r"[^a-z0-9]+", "-", fold(bot_name)).strip("-")[:48].strip("-")
    return f"nicobot-{slug or 'bot'}"


def check_embedder(spec: str) -> str:
    """Raise :class:`ConfigError` for an embedder this install cannot use (imports nothing).

    ``minilm`` (an embedder that needed torch) was replaced by ``e5``: it reads as ``auto``.
    """
    kind, _, arg = spec.partition(":")
    kind = kind.strip().lower()
    if kind in ("auto", "minilm") and not arg:
        return "auto"
    if kind == "hashing" and (not arg or arg.isdigit()):
        return spec
    if kind == "litellm" and arg.strip():
        return spec
    if kind == "e5" and not arg:
        from .e5_support import e5_unavailable_reason

        reason = e5_unavailable_reason()
        if reason:
            raise ConfigError(
                f'nicobot.toml: knowledge.embedder: "e5" cannot run here: {reason} '
                '(use "auto" to fall back to "hashing")'
            )
        return spec
    raise ConfigError(
        f"nicobot.toml: knowledge.embedder: unknown embedder {spec!r} "
        '(use "auto", "e5", "hashing" or "litellm:<model>")'
    )


def _option(extra: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    value = extra.get(key, default)
    if value is None or value == "":
        return default
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in (
            "1",
            "true",
            "yes",
            "on",
            "0",
            "false",
            "no",
            "off",
        ):
            return value.lower() in ("1", "true", "yes", "on")
        raise ConfigError(f"nicobot.toml: knowledge.{key}: must be true or false")
    if kind is int:
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"nicobot.toml: knowledge.{key}: must be a whole number") from None
    if not isinstance(value, str):
        raise ConfigError(f"nicobot.toml: knowledge.{key}: must be a string")
    return value.strip()


def read_options(settings: Settings) -> KnowledgeOptions:
    extra: dict[str, Any] = dict(settings.knowledge.model_extra or {})
    embedder = check_embedder(_option(extra, "embedder", str, DEFAULT_EMBEDDER))
    chunk_size = _option(extra, "chunk_size", int, DEFAULT_MAX_CHARS)
    if not MIN_MAX_CHARS <= chunk_size <= 20000:
        raise ConfigError(
            f"nicobot.toml: knowledge.chunk_size: must be between {MIN_MAX_CHARS} and 20000"
        )
    overlap = _option(extra, "chunk_overlap", int, DEFAULT_OVERLAP)
    if not 0 <= overlap <= chunk_size // 3:
        raise ConfigError(
            "nicobot.toml: knowledge.chunk_overlap: must be between 0 and a third of chunk_size"
        )
    collection = _option(extra, "collection", str, "") or collection_name(settings.bot.name)
    if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9._-]{1,510}[a-zA-Z0-9]", collection):
        raise ConfigError(
            "nicobot.toml: knowledge.collection: use 3 to 512 letters, digits, '.', '_' or '-', "
            "starting and ending with a letter or digit"
        )
    max_upload_mb = _option(extra, "max_upload_mb", int, 10)
    if not 1 <= max_upload_mb <= 15:
        raise ConfigError("nicobot.toml: knowledge.max_upload_mb: must be between 1 and 15")
    threads = _option(extra, "embedder_threads", int, E5_DEFAULT_THREADS)
    if not 1 <= threads <= 64:
        raise ConfigError("nicobot.toml: knowledge.embedder_threads: must be between 1 and 64")
    chroma_url = _option(extra, "chroma_url", str, None)
    if chroma_url is not None and not re.fullmatch(r"https?://[^/\s]+/?", chroma_url):
        raise ConfigError(
            "nicobot.toml: knowledge.chroma_url: use the Chroma server's base URL, "
            "such as http://127.0.0.1:8000"
        )
    folder = Path(_option(extra, "dir", str, "knowledge"))
    return KnowledgeOptions(
        chroma_path=settings.data_path / CHROMA_DIR,
        collection=collection,
        embedder=embedder,
        knowledge_dir=folder if folder.is_absolute() else settings.project_dir / folder,
        project_dir=settings.project_dir,
        chunk_size=chunk_size,
        chunk_overlap=overlap,
        auto_ingest=_option(extra, "auto_ingest", bool, True),
        max_upload_mb=max_upload_mb,
        embedder_api_base=_option(extra, "embedder_api_base", str, None),
        embedder_api_key=_option(extra, "embedder_api_key", str, None),
        embedder_threads=threads,
        chroma_url=chroma_url,
    )
