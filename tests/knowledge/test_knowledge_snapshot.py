"""The in-memory search of a local store: the same passages as Chroma's query, and every
change this process makes seen by the next question."""

from __future__ import annotations

from pathlib import Path

import chromadb
import numpy as np
import pytest
from knowledge_helpers import write_project

from nicobot.rag.snapshot import Snapshot


def test_it_finds_what_chroma_finds(tmp_path: Path):
    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"))
    collection = client.create_collection("exact", configuration={"hnsw": {"space": "cosine"}})
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(300, 32)).astype(np.float32)
    collection.add(
        ids=[f"p{i}" for i in range(300)],
        embeddings=vectors,
        documents=[f"passage {i}" for i in range(300)],
        metadatas=[{"source": f"doc{i % 7}.md", "chunk": i} for i in range(300)],
    )
    held = Snapshot.of(collection)
    assert held is not None and len(held.ids) == 300
    for query in rng.normal(size=(20, 32)).astype(np.float32):
        ours = held.query(query, 12)
        theirs = collection.query(
            query_embeddings=[query], n_results=12, include=["documents", "metadatas", "distances"]
        )
        assert ours["ids"] == theirs["ids"]
        assert np.allclose(ours["distances"][0], theirs["distances"][0], atol=1e-4)
        assert ours["documents"] == theirs["documents"]
        assert ours["metadatas"] == theirs["metadatas"]
    assert held.query(vectors[0], 500)["ids"][0][0] == "p0"  # more than it holds: all of them


def test_a_collection_too_large_to_hold_is_left_to_chroma(tmp_path):
    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"))
    collection = client.create_collection("big")
    collection.add(ids=["a", "b"], embeddings=[[1.0] * 64, [0.5] * 64], documents=["a", "b"])
    assert Snapshot.of(collection, max_bytes=2 * 64 * 4 - 1) is None
    assert Snapshot.of(collection, max_bytes=2 * 64 * 4) is not None


def test_an_empty_collection_finds_nothing(tmp_path):
    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"))
    held = Snapshot.of(client.create_collection("empty"))
    assert held is not None and held.query([1.0, 0.0], 4)["ids"] == [[]]


@pytest.mark.parametrize("embedder", ["hashing", "e5"])
async def test_each_change_is_seen_by_the_next_question(open_kb, tmp_path: Path, embedder: str):
    project = write_project(tmp_path / "project", f'embedder = "{embedder}"')
    (project / "knowledge" / "horarios.md").write_text("# Horarios\n\nAbrimos de 10 a 19.")
    kb = open_kb(project)
    await kb.open()
    question = "¿Dan talleres de cosmética natural?"
    assert all(s.source != "talleres.md" for s in await kb.search(question, 4))
    workshops = tmp_path / "talleres.md"
    workshops.write_text("# Talleres\n\nDamos talleres de cosmética natural los sábados.")
    await kb.ingest_file(workshops)
    [best, *_] = await kb.search(question, 4)
    assert best.source == "talleres.md" and "sábados" in best.text
    workshops.write_text("# Talleres\n\nLos talleres de cosmética natural son los martes.")
    await kb.ingest_file(workshops)
    [best, *_] = await kb.search(question, 4)
    assert best.source == "talleres.md" and "martes" in best.text
    assert await kb.delete("talleres.md")
    assert all(s.source != "talleres.md" for s in await kb.search(question, 4))
