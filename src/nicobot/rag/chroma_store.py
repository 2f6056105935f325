"""The Chroma knowledge base: a persistent collection per bot under ``data/chroma``, or on
a Chroma server (``[knowledge] chroma_url``) that several workers share.

Every Chroma call blocks, so each runs in a worker thread (one at a time per knowledge
base); chromadb itself is imported on first use, never at module import.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt

from ..knowledge import DocumentInfo, KnowledgeBase, Snippet
from . import hashing
from .lock import ProcessLock, StoreBusy
from .manifest import Entry, Manifest, file_hash, now
from .options import KnowledgeOptions, read_options
from .readers import UnreadableDocument, read_chunks
from .scoring import coverage, lexical_question
from .snapshot import MAX_BYTES, SHARED_MAX_BYTES, Snapshot

if TYPE_CHECKING:
    from typing import Self

    from ..config import Settings
    from .chunking import Chunk
    from .embedders import AnyEmbedder
    from .ingest import IngestReport

log = logging.getLogger("nicobot.knowledge")

P = ParamSpec("P")
T = TypeVar("T")

EMBEDDER_KEY = "nicobot_embedder"
#: Collection metadata changed by every write on a shared server, so that the other
#: workers know their copy in memory is out of date.
REVISION_KEY = "nicobot_revision"
#: How often a worker on a shared server asks whether the collection changed.
SHARED_CHECK_SECONDS = 1.0
FILES_PER_WRITE = 32
BATCH_SIZE = 1000  # chunks per Chroma write (its limit is about 5000)
#: Dense candidates re-ranked with their lexical score by a hybrid embedder.
HYBRID_CANDIDATES = 12
WRITES_LOCK_FILE = "writes.lock"
#: Question vectors kept: customers send the same words again ("hola", "precios?").
QUESTION_CACHE_SIZE = 1024


@dataclass(frozen=True, slots=True)
class FileResult:
    source: str
    status: str  # "added", "updated" or "unchanged"
    chunks: int


@dataclass(slots=True)
class ReindexResult:
    previous: str | None
    embedder: str
    documents: int = 0
    chunks: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)

    def message(self) -> str:
        what = (
            f"the embedder changed from {self.previous} to {self.embedder}"
            if self.previous and self.previous != self.embedder
            else f"rebuilt with {self.embedder}"
        )
        text = (
            f"Knowledge base re-indexed ({what}): {self.documents} documents, {self.chunks} chunks"
        )
        if self.failed:
            text += f", {len(self.failed)} could not be read again"
        return text + "."


@dataclass(frozen=True, slots=True)
class _Prepared:
    path: Path
    source: str
    digest: str
    chunks: list[Chunk]
    embeddings: list[Any]
    new: bool


def embedding_text(chunk: Chunk) -> str:
    """What is embedded for a chunk: its heading path (twice, it says what the chunk is
    about) and its text, a table's rows as ``column: value`` lines. The stored text is the
    chunk's alone."""
    from .chunking import table_as_text

    return passage_text(chunk.heading, table_as_text(chunk.text))


def _non_increasing(snippets: list[Snippet]) -> list[Snippet]:
    """Scores capped by the score of every better-ranked snippet: a passage ranked lower is
    never surer to answer than the one above it, so the best one decides whether the
    question is answered at all."""
    capped: list[Snippet] = []
    for snippet in snippets:
        if capped and snippet.score > capped[-1].score:
            snippet = replace(snippet, score=capped[-1].score)
        capped.append(snippet)
    return capped


def _lexical_evidence(
    question: npt.NDArray[np.float32] | None,
    passages: list[tuple[str | None, str]],
    *,
    with_coverage: bool,
) -> tuple[list[float], list[float]]:
    """Each passage's lexical cosine with the question and its :func:`coverage` of it
    (zeros without a lexical question, or for the coverage when it is not wanted)."""
    zeros = [0.0] * len(passages)
    if question is None or not passages:
        return zeros, zeros
    vectors = np.stack([passage_lexical_vector(heading, text) for heading, text in passages])
    similar = (vectors @ question).tolist()
    return similar, coverage(question, vectors).tolist() if with_coverage else zeros


def passage_text(heading: str | None, text: str) -> str:
    return f"{heading}\n{heading}\n{text}" if heading else text


@functools.lru_cache(maxsize=4096)
def passage_lexical_vector(heading: str | None, text: str) -> npt.NDArray[np.float32]:
    """A passage's lexical vector for hybrid scores, kept: the same passages come back
    question after question. Read-only: it is shared."""
    vector = hashing.embed_one(passage_text(heading, text))
    vector.flags.writeable = False
    return vector


class ChromaKnowledgeBase(KnowledgeBase):
    """Documents in a local Chroma store, embedded offline by default."""

    name = "chroma"

    def __init__(self, options: KnowledgeOptions) -> None:
        self.options = options
        self.manifest = Manifest(
            options.chroma_path / f"{options.collection}.manifest.json", options.project_dir
        )
        self.reindexed: ReindexResult | None = None
        self.synced: IngestReport | None = None
        self._lock = threading.RLock()
        self._client: Any = None
        self._collection: Any = None
        self._embedder: AnyEmbedder | None = None
        self._process_lock = ProcessLock(options.chroma_path)
        # on a shared Chroma server, the workers of this host write one at a time
        self._writes_lock = ProcessLock(options.chroma_path, WRITES_LOCK_FILE)
        self._writes_depth = 0
        self._snapshot: Snapshot | None = None
        self._snapshot_stale = True
        self._snapshot_revision: tuple[str, str | None] | None = None
        self._revision_checked = 0.0
        self._question_vectors: OrderedDict[tuple[str, str], Any] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(read_options(settings))

    @property
    def knowledge_dir(self) -> Path:
        return self.options.knowledge_dir

    @property
    def embedder_name(self) -> str:
        return self._embedder.identity() if self._embedder is not None else self.options.embedder

    # lifecycle

    @property
    def shared(self) -> bool:
        """True on a Chroma server that other workers use too."""
        return self.options.chroma_url is not None

    async def open(self) -> None:
        """Connect, and sync the project's knowledge folder unless ``auto_ingest = false``
        (on a shared server, unless another worker is syncing it right now)."""
        await self.connect()
        if self.options.auto_ingest and self.knowledge_dir.is_dir():
            async with self._shared_writes(wait=False) as writing:
                if writing:
                    await self._sync_folder()
                else:
                    log.info("knowledge: another worker is syncing the folder")

    @asynccontextmanager
    async def _shared_writes(self, wait: bool = True) -> AsyncIterator[bool]:
        """On a shared server, hold this host's writes lock (and read the manifest the
        other workers wrote); yields False when ``wait`` is off and another holds it."""
        if not self.shared:
            yield True
            return
        if self._writes_depth == 0:
            try:
                await asyncio.to_thread(self._writes_lock.acquire, wait)
            except StoreBusy:
                yield False
                return
            await self._call(self.manifest.load)
        self._writes_depth += 1
        try:
            yield True
        finally:
            self._writes_depth -= 1
            if self._writes_depth == 0:
                self._writes_lock.release()

    async def _sync_folder(self) -> None:
        from .ingest import ingest_paths

        self.synced = await ingest_paths(self, [self.knowledge_dir])
        if self.synced.changed or self.synced.failed:
            log.info("knowledge folder synced: %s", self.synced.summary())
        for source, problem in self.synced.failed:
            log.warning("could not ingest %s: %s", source, problem)

    async def connect(self) -> None:
        """Open the store; rebuild the collection if the embedder changed."""
        if self._collection is None:
            await self._call(lambda: None)

    async def close(self) -> None:
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with self._lock:
            client, self._client, self._collection = self._client, None, None
            self._changed()
            if client is not None:
                client.close()
            self._process_lock.release()

    async def _call(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``function`` in a thread once the store is open."""

        def locked() -> T:
            with self._lock:
                if self._collection is None:
                    self._connect()
                return function(*args, **kwargs)

        return await asyncio.to_thread(locked)

    def _connect(self) -> None:
        if self._collection is not None:
            return
        from .embedders import E5EmbeddingFunction, describe, make_embedder

        embedder = make_embedder(
            self.options.embedder,
            self.options.embedder_api_base,
            self.options.embedder_api_key,
            self.options.embedder_threads,
        )
        if not self.shared:
            self._process_lock.acquire()
        try:
            if isinstance(embedder, E5EmbeddingFunction):
                embedder.model()  # load it now, not on a customer's first question
            log.info("knowledge: %s", describe(self.options.embedder, embedder))
            self._open_store(embedder)
        except BaseException:
            self._close()
            raise

    def _open_store(self, embedder: AnyEmbedder) -> None:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        self.options.chroma_path.mkdir(parents=True, exist_ok=True)
        settings = ChromaSettings(anonymized_telemetry=False)
        if self.options.chroma_url:
            url = urlsplit(self.options.chroma_url)
            client = chromadb.HttpClient(
                host=url.hostname or "127.0.0.1",
                port=url.port or (443 if url.scheme == "https" else 8000),
                ssl=url.scheme == "https",
                settings=settings,
            )
        else:
            client = chromadb.PersistentClient(
                path=str(self.options.chroma_path), settings=settings
            )
        self.manifest.load()
        name = self.options.collection
        identity = embedder.identity()
        existing = self._existing(client)
        previous: str | None = None
        rebuild = False
        if existing is not None:
            previous = (existing.metadata or {}).get(EMBEDDER_KEY)
            if previous != identity:
                log.warning(
                    "knowledge: the embedder changed from %s to %s; re-indexing %d documents",
                    previous or "an unknown one",
                    identity,
                    len(self.manifest.entries),
                )
                client.delete_collection(name)
                rebuild = True
        elif self.manifest.entries:
            previous = self.manifest.embedder
            log.warning("knowledge: the Chroma collection is missing; re-indexing the documents")
            rebuild = True
        self._client, self._embedder = client, embedder
        self._collection = self._open_collection(create=rebuild or existing is None)
        self._changed()
        if rebuild:
            self.reindexed = self._rebuild(previous)
            log.warning("%s", self.reindexed.message())
        elif self.manifest.embedder != identity:
            self.manifest.embedder = identity
            self.manifest.save()

    def _existing(self, client: Any) -> Any:
        from chromadb.errors import NotFoundError

        try:
            return client.get_collection(self.options.collection, embedding_function=None)
        except (NotFoundError, ValueError):
            return None

    def _open_collection(self, create: bool) -> Any:
        assert self._embedder is not None
        if create:  # another worker starting at the same moment may create it first
            return self._client.get_or_create_collection(
                self.options.collection,
                embedding_function=self._embedder,
                configuration={"hnsw": {"space": "cosine"}},
                metadata={EMBEDDER_KEY: self._embedder.identity()},
            )
        return self._client.get_collection(
            self.options.collection, embedding_function=self._embedder
        )

    def _rebuild(self, previous: str | None) -> ReindexResult:
        assert self._embedder is not None
        result = ReindexResult(previous, self._embedder.identity())
        entries = dict(self.manifest.entries)
        self.manifest.entries.clear()
        self.manifest.embedder = result.embedder
        items = [(self.manifest.resolve(e.path), s) for s, e in sorted(entries.items())]
        for start in range(0, len(items), FILES_PER_WRITE):
            batch = items[start : start + FILES_PER_WRITE]
            for (_path, source), written in zip(
                batch, self._ingest_many(batch, force=True), strict=True
            ):
                if isinstance(written, UnreadableDocument):
                    result.failed.append((source, str(written)))
                    log.warning("knowledge: dropped %s while re-indexing: %s", source, written)
                else:
                    result.documents += 1
                    result.chunks += written.chunks
        self.manifest.save()
        return result

    async def reindex(self) -> ReindexResult:
        """Drop the collection and embed every known document again from its file."""

        def work() -> ReindexResult:
            previous = self.embedder_name
            self._client.delete_collection(self.options.collection)
            self._collection = self._open_collection(create=True)
            self._changed()
            self.reindexed = self._rebuild(previous)
            return self.reindexed

        async with self._shared_writes():
            return await self._call(work)

    # documents

    def source_for(self, path: Path) -> str:
        """The name a file is known by: its path inside the knowledge folder, else inside
        the project, else its file name."""
        resolved = path.resolve()
        for base in (self.knowledge_dir, self.options.project_dir):
            try:
                return resolved.relative_to(base.resolve()).as_posix()
            except ValueError:
                continue
        return resolved.name

    async def add_file(self, path: Path, source: str | None = None) -> int:
        return (await self.ingest_file(path, source)).chunks

    async def ingest_file(
        self, path: Path, source: str | None = None, force: bool = False
    ) -> FileResult:
        """Add, replace or (when its content is unchanged) skip one file.

        Raises :class:`UnreadableDocument` for a file that cannot be read.
        """
        [result] = await self.ingest_files([(path, source or self.source_for(path))], force)
        if isinstance(result, UnreadableDocument):
            raise result
        return result

    async def ingest_files(
        self, items: list[tuple[Path, str]], force: bool = False
    ) -> list[FileResult | UnreadableDocument]:
        """Ingest several files in one go (fewer, larger writes); one result per item.

        Reading and embedding run in a worker thread without the store's lock (reading
        itself in the reader process), so searches for customers' questions go on
        meanwhile; only the write takes the lock."""
        async with self._shared_writes():
            await self.connect()
            prepared = await asyncio.to_thread(self._prepare_all, items, force)
            return await self._call(self._write_prepared, prepared)

    def _ingest_many(
        self, items: list[tuple[Path, str]], force: bool
    ) -> list[FileResult | UnreadableDocument]:
        return self._write_prepared(self._prepare_all(items, force))

    def _prepare_all(
        self, items: list[tuple[Path, str]], force: bool
    ) -> list[FileResult | UnreadableDocument | _Prepared]:
        prepared: list[FileResult | UnreadableDocument | _Prepared] = []
        for path, source in items:
            try:
                prepared.append(self._prepare(path, source, force))
            except UnreadableDocument as exc:
                prepared.append(exc)
        return prepared

    def _write_prepared(
        self, prepared: list[FileResult | UnreadableDocument | _Prepared]
    ) -> list[FileResult | UnreadableDocument]:
        results: list[FileResult | UnreadableDocument] = []
        pending: list[_Prepared] = []
        for item in prepared:
            if isinstance(item, _Prepared):
                pending.append(item)
                status = "added" if item.new else "updated"
                results.append(FileResult(item.source, status, len(item.chunks)))
            else:
                results.append(item)
        if pending:
            self._write(pending)
        return results

    def _prepare(self, path: Path, source: str, force: bool) -> FileResult | _Prepared:
        """Hash, read, chunk and embed one file; nothing is written yet."""
        assert self._embedder is not None
        try:
            digest = file_hash(path)
        except FileNotFoundError:
            raise UnreadableDocument("no such file") from None
        except OSError as exc:
            raise UnreadableDocument(f"cannot read it ({exc.strerror or exc})") from None
        entry = self.manifest.entries.get(source)
        if entry is not None and entry.sha256 == digest and not force:
            return FileResult(source, "unchanged", entry.chunks)
        chunks = read_chunks(path, self.options.chunk_size, self.options.chunk_overlap)
        try:
            embeddings = self._embedder([embedding_text(c) for c in chunks])
        except Exception as exc:  # a provider's failure, said in one line
            raise UnreadableDocument(f"could not embed it ({type(exc).__name__}: {exc})") from None
        return _Prepared(path, source, digest, chunks, list(embeddings), entry is None)

    def _write(self, pending: list[_Prepared]) -> None:
        """Replace the chunks of the prepared files, in large batches, then the manifest."""
        self._changed()
        self._collection.delete(where={"source": {"$in": [p.source for p in pending]}})
        updated = now()
        ids: list[str] = []
        documents: list[str] = []
        embeddings: list[Any] = []
        metadatas: list[dict[str, Any]] = []
        for prepared in pending:
            for chunk, embedding in zip(prepared.chunks, prepared.embeddings, strict=True):
                ids.append(f"{prepared.source}#{chunk.index}")
                documents.append(chunk.text)
                embeddings.append(embedding)
                metadatas.append(
                    {
                        "source": prepared.source,
                        "heading": chunk.heading or "",
                        "chunk": chunk.index,
                        "sha256": prepared.digest,
                        "updated_at": updated,
                    }
                )
        for start in range(0, len(ids), BATCH_SIZE):
            end = start + BATCH_SIZE
            self._collection.add(
                ids=ids[start:end],
                documents=documents[start:end],
                embeddings=embeddings[start:end],
                metadatas=metadatas[start:end],
            )
        self._publish_change()
        for prepared in pending:
            self.manifest.entries[prepared.source] = Entry(
                self.manifest.stored_path(prepared.path),
                prepared.digest,
                len(prepared.chunks),
                updated,
            )
        self.manifest.save()

    async def delete(self, source: str) -> bool:
        def work() -> bool:
            self._changed()
            known = self.manifest.entries.pop(source, None) is not None
            found = self._collection.get(where={"source": source}, limit=1, include=[])
            self._collection.delete(where={"source": source})
            self._publish_change()
            if known:
                self.manifest.save()
            return known or bool(found["ids"])

        async with self._shared_writes():
            return await self._call(work)

    async def count(self) -> int:
        return int(await self._call(lambda: self._collection.count()))

    async def documents(self) -> list[DocumentInfo]:
        def work() -> list[DocumentInfo]:
            if self.shared and self._writes_depth == 0:
                self.manifest.load()  # another worker may have changed it
            return [
                DocumentInfo(source, entry.chunks, entry.updated_at)
                for source, entry in sorted(self.manifest.entries.items())
            ]

        return await self._call(work)

    def file_of(self, source: str) -> Path | None:
        return self.manifest.file_of(source) if source in self.manifest.entries else None

    # search

    async def search(self, text: str, k: int = 4) -> list[Snippet]:
        """The ``k`` best snippets for ``text``; errors propagate (see :meth:`query`)."""
        text = text.strip()
        if not text or k < 1:
            return []
        return await self._call(self._search, text, k)

    def _search(self, text: str, k: int) -> list[Snippet]:
        assert self._embedder is not None
        calibration = self._embedder.calibration
        hybrid = calibration.hybrid
        vector = self._question_vector(text)
        n_results = max(k, HYBRID_CANDIDATES) if hybrid else k
        snapshot = self._current_snapshot()
        if snapshot is not None:
            found = snapshot.query(vector, n_results)
        else:
            found = self._collection.query(
                query_embeddings=[vector],
                n_results=n_results,
                include=["documents", "metadatas", "distances"],
            )
        question = hashing.embed_one(lexical_question(text)) if hybrid else None
        metas = [meta or {} for meta in found["metadatas"][0]]
        documents = [document or "" for document in found["documents"][0]]
        headings = [str(meta.get("heading") or "") or None for meta in metas]
        similar, covered = _lexical_evidence(
            question,
            list(zip(headings, documents, strict=True)),
            with_coverage=bool(calibration.rank_coverage_weight),
        )
        ranked: list[tuple[float, Snippet]] = []
        for chunk_id, document, meta, heading, distance, lexical, share in zip(
            found["ids"][0],
            documents,
            metas,
            headings,
            found["distances"][0],
            similar,
            covered,
            strict=True,
        ):
            dense = 1.0 - float(distance)
            score = calibration.score(dense, lexical)
            if score <= 0.0:
                continue  # nothing in common (e.g. a greeting with no content words)
            snippet = Snippet(
                text=document,
                source=str(meta.get("source", "")),
                score=score,
                heading=heading,
                chunk_id=chunk_id,
                meta={"chunk": meta.get("chunk")},
            )
            ranked.append((calibration.rank(dense, lexical, share), snippet))
        ranked.sort(key=lambda pair: pair[0], reverse=True)
        return _non_increasing([snippet for _rank, snippet in ranked[:k]])

    def _question_vector(self, text: str) -> Any:
        """The embedder's vector for a question, kept for the next time it is asked (under
        the store's lock, like every search)."""
        assert self._embedder is not None
        key = (self._embedder.identity(), text)
        vector = self._question_vectors.get(key)
        if vector is None:
            [embedded] = self._embedder.embed_query([text])
            vector = np.array(embedded, dtype=np.float32)
            vector.flags.writeable = False  # shared by every search of this question
            self._question_vectors[key] = vector
            if len(self._question_vectors) > QUESTION_CACHE_SIZE:
                self._question_vectors.popitem(last=False)
        else:
            self._question_vectors.move_to_end(key)
        return vector

    def forget_questions(self) -> None:
        """Drop the kept question vectors (a benchmark times each search from scratch)."""
        with self._lock:
            self._question_vectors.clear()

    def _changed(self) -> None:
        self._snapshot, self._snapshot_stale = None, True

    def _current_snapshot(self) -> Snapshot | None:
        """The collection in memory, taken again after a change; None for a collection
        too large to hold. On a shared server other workers change it too: their writes
        change the collection's revision, checked at most every SHARED_CHECK_SECONDS."""
        if self.shared and time.monotonic() - self._revision_checked >= SHARED_CHECK_SECONDS:
            self._revision_checked = time.monotonic()
            revision = self._shared_revision()
            if revision != self._snapshot_revision:
                self._snapshot_stale, self._snapshot_revision = True, revision
        if self._snapshot_stale:
            limit = SHARED_MAX_BYTES if self.shared else MAX_BYTES
            self._snapshot, self._snapshot_stale = Snapshot.of(self._collection, limit), False
        return self._snapshot

    def _shared_revision(self) -> tuple[str, str | None]:
        """The shared collection's id and revision; a collection another worker re-created
        (``nicobot knowledge reindex``) is opened again."""
        current = self._client.get_collection(self.options.collection, embedding_function=None)
        if current.id != self._collection.id:
            self._collection = self._open_collection(create=False)
        return str(current.id), (current.metadata or {}).get(REVISION_KEY)

    def _publish_change(self) -> None:
        """Tell the other workers of a shared server that the collection changed."""
        if self.shared:
            assert self._embedder is not None
            self._collection.modify(
                metadata={EMBEDDER_KEY: self._embedder.identity(), REVISION_KEY: uuid.uuid4().hex}
            )

    async def query(self, text: str, k: int = 4) -> list[Snippet]:
        """Like :meth:`search`, but a failing store answers nothing rather than failing
        the customer's turn (the error is logged)."""
        try:
            return await self.search(text, k)
        except Exception:
            log.exception("knowledge query failed; answering without documents")
            return []
