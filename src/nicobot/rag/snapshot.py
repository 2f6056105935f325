"""A collection held in memory, searched exactly with one matrix product.

A small knowledge base (a shop's few hundred passages) is answered faster from memory than
through Chroma's query path, which costs about 2.5 ms of CPU a question whatever the size.
A local Chroma folder (which a process lock keeps to one process) is held this way up to
MAX_BYTES: the process sees every change it makes and drops the copy. On a Chroma server
that several workers share, each worker holds a copy up to SHARED_MAX_BYTES (it comes over
HTTP again after every change) and takes it again when the collection's revision changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

#: The most memory a snapshot's vectors may take; a larger collection is searched by Chroma.
MAX_BYTES = 64 * 1024 * 1024
#: The same for a collection on a shared server.
SHARED_MAX_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Snapshot:
    ids: list[str]
    vectors: npt.NDArray[np.float32]  # one unit row per passage
    documents: list[str]
    metadatas: list[dict[str, Any]]

    @classmethod
    def of(cls, collection: Any, max_bytes: int = MAX_BYTES) -> Snapshot | None:
        """The collection's passages, or None when they would take more than ``max_bytes``."""
        first = collection.get(limit=1, include=["embeddings"])["embeddings"]
        dimensions = len(first[0]) if first is not None and len(first) else 0
        if int(collection.count()) * dimensions * 4 > max_bytes:
            return None
        rows = collection.get(include=["embeddings", "documents", "metadatas"])
        if not rows["ids"]:
            return cls([], np.zeros((0, 0), dtype=np.float32), [], [])
        vectors = np.asarray(rows["embeddings"], dtype=np.float32)
        if vectors.ndim != 2 or vectors.nbytes > max_bytes:
            return None
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = (vectors / np.where(norms == 0, 1.0, norms)).astype(np.float32)
        return cls(
            list(rows["ids"]),
            vectors,
            [d or "" for d in rows["documents"]],
            [m or {} for m in rows["metadatas"]],
        )

    def query(self, vector: Any, n_results: int) -> dict[str, list[list[Any]]]:
        """What ``collection.query`` returns for one query vector, cosine distances exact."""
        if not self.ids:
            return {"ids": [[]], "documents": [[]], "metadatas": [[]], "distances": [[]]}
        query = np.asarray(vector, dtype=np.float32)
        norm = float(np.linalg.norm(query))
        similarities = self.vectors @ (query / norm if norm else query)
        n = min(n_results, len(self.ids))
        best = np.argpartition(-similarities, n - 1)[:n]
        best = best[np.argsort(-similarities[best], kind="stable")]
        return {
            "ids": [[self.ids[i] for i in best]],
            "documents": [[self.documents[i] for i in best]],
            "metadatas": [[self.metadatas[i] for i in best]],
            "distances": [[1.0 - float(similarities[i]) for i in best]],
        }
