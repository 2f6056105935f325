"""The ``litellm:<model>`` embedder through litellm's real path, ``e5`` (the default),
the ``hashing`` fallback, and clear errors for embedders that cannot be used."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from knowledge_helpers import write_project

import nicobot
from nicobot.rag import hashing
from nicobot.rag.e5_support import E5_DEFAULT_THREADS, e5_unavailable_reason
from nicobot.rag.embedders import EmbedderError, make_embedder


class FakeEmbeddings(BaseHTTPRequestHandler):
    """``POST /v1/embeddings`` in OpenAI's format; vectors from the hashing embedder."""

    calls: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        FakeEmbeddings.calls.append(
            {"path": self.path, "auth": self.headers["Authorization"], "input": texts}
        )
        data = [
            {"object": "embedding", "index": i, "embedding": hashing.embed_one(t, 256).tolist()}
            for i, t in enumerate(texts)
        ]
        payload = json.dumps(
            {"object": "list", "data": data, "model": body["model"],
             "usage": {"prompt_tokens": 1, "total_tokens": 1}}
        ).encode()  # fmt: skip
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def embeddings_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeEmbeddings)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakeEmbeddings.calls.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def litellm_project(directory: Path, embeddings_server: str) -> Path:
    """A project whose embedder is the fake provider, through litellm."""
    return write_project(
        directory,
        'embedder = "litellm:openai/fake-embedding"\n'
        f'embedder_api_base = "{embeddings_server}"\n'
        'embedder_api_key = "sk-test"',
    )


async def test_litellm_embedder(tmp_path: Path, embeddings_server: str, open_kb: Any):
    project = litellm_project(tmp_path / "p", embeddings_server)
    (project / "knowledge" / "envios.md").write_text("# Envíos\n\nGratis desde 60000.")
    (project / "knowledge" / "horarios.md").write_text("# Horarios\n\nDe 10 a 19.")
    kb = open_kb(project)
    await kb.open()
    assert kb.embedder_name == "litellm:openai/fake-embedding"
    [best, *_] = await kb.query("envios gratis", k=2)
    assert best.source == "envios.md" and best.score > 0.2
    assert {c["path"] for c in FakeEmbeddings.calls} == {"/v1/embeddings"}
    assert {c["auth"] for c in FakeEmbeddings.calls} == {"Bearer sk-test"}

    # what Chroma stores to rebuild it: the model and base, never the key
    config = kb._collection.configuration_json["embedding_function"]
    assert config["name"] == "nicobot_litellm"
    assert config["config"] == {"model": "openai/fake-embedding", "api_base": embeddings_server}


async def test_a_question_asked_again_is_not_embedded_again(
    tmp_path: Path, embeddings_server: str, open_kb: Any
):
    project = litellm_project(tmp_path / "p", embeddings_server)
    (project / "knowledge" / "envios.md").write_text("# Envíos\n\nGratis desde 60000.")
    kb = open_kb(project)
    await kb.open()
    first = await kb.query("envios gratis", k=1)
    again = await kb.query("envios gratis", k=1)
    other = await kb.query("horarios", k=1)
    assert first == again and other != first
    asked = [
        c["input"] for c in FakeEmbeddings.calls if c["input"] in (["envios gratis"], ["horarios"])
    ]
    assert asked == [["envios gratis"], ["horarios"]]


async def test_a_failing_provider_fails_the_file_not_the_run(tmp_path: Path, open_kb: Any):
    project = write_project(
        tmp_path / "p",
        'embedder = "litellm:openai/fake-embedding"\n'
        'embedder_api_base = "http://127.0.0.1:9/v1"\nembedder_api_key = "sk-test"',
    )
    (project / "knowledge" / "a.md").write_text("# A\n\nTexto.")
    kb = open_kb(project)
    await kb.open()
    assert kb.synced is not None
    [(source, problem)] = kb.synced.failed
    assert source == "a.md" and problem.startswith("could not embed it (")
    assert "\n" not in problem


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("word2vec", "unknown embedder 'word2vec'"),
        ("hashing:many", "invalid literal"),
        ("hashing:8", "dim must be between 64 and 65536"),
        ("litellm:", "give a model"),
    ],
)
def test_unusable_embedders_say_why(spec: str, message: str):
    with pytest.raises(EmbedderError, match=message):
        make_embedder(spec)


def test_the_configuration_is_checked_before_anything_loads(tmp_path: Path):
    from nicobot.rag.chroma_store import ChromaKnowledgeBase

    for toml, message in [
        ('embedder = "bert"', "knowledge.embedder: unknown embedder 'bert'"),
        ("chunk_size = 50", "knowledge.chunk_size: must be between"),
        ("chunk_size = 600\nchunk_overlap = 400", "knowledge.chunk_overlap"),
        ('collection = "a b"', "knowledge.collection"),
        ('auto_ingest = "maybe"', "knowledge.auto_ingest: must be true or false"),
        ("embedder_threads = 0", "knowledge.embedder_threads: must be between 1 and 64"),
    ]:
        project = write_project(tmp_path / str(abs(hash(toml))), toml)
        with pytest.raises(nicobot.ConfigError, match=message):
            ChromaKnowledgeBase.from_settings(nicobot.load_settings(project))


async def test_e5_is_the_default_and_switching_embedders_reindexes(
    project: Path, open_kb: Any, caplog: pytest.LogCaptureFixture
):
    """``auto`` runs e5 here (CI installs it: this test is never skipped), says so in one
    log line, and a change of embedder rebuilds the index from the files."""
    assert e5_unavailable_reason() is None, "the e5 embedder must be installed for the tests"
    (project / "knowledge" / "hours.md").write_text("# Opening hours\n\nSaturdays 10 to 14.")
    (project / "knowledge" / "shipping.md").write_text("# Shipping\n\nFree over 60000 pesos.")
    write_project(project, 'embedder = "hashing"')
    kb = open_kb(project)
    await kb.open()
    await kb.close()

    write_project(project, "")  # the default: auto
    with caplog.at_level(logging.INFO, logger="nicobot.knowledge"):
        e5 = open_kb(project)
        await e5.connect()
    [line] = [r.getMessage() for r in caplog.records if "knowledge: embedder" in r.getMessage()]
    assert line.startswith("knowledge: embedder e5 (multilingual-e5-small 4-bit")
    assert f"{E5_DEFAULT_THREADS} thread" in line
    assert e5.reindexed is not None
    assert (e5.reindexed.previous, e5.reindexed.embedder) == (
        "hashing/v1/4096",
        "e5/multilingual-e5-small-q4",
    )
    assert (e5.reindexed.documents, e5.reindexed.failed) == (2, [])
    # no word in common with the passage: found by meaning, in another language
    [best, other] = await e5.query("¿A qué hora abren el fin de semana?", k=2)
    assert best.source == "hours.md" and best.score > other.score
    config = e5._collection.configuration_json["embedding_function"]
    assert config["name"] == "nicobot_e5"
    assert config["config"] == {
        "model": "multilingual-e5-small-q4",
        "threads": E5_DEFAULT_THREADS,
    }
    await e5.close()

    write_project(project, 'embedder = "hashing"')
    back = open_kb(project)
    await back.connect()
    assert back.reindexed is not None
    assert (back.reindexed.previous, back.reindexed.embedder) == (
        "e5/multilingual-e5-small-q4",
        "hashing/v1/4096",
    )
    assert await back.count() == 2


def test_auto_falls_back_to_hashing_and_says_why():
    from nicobot.rag.embedders import HashingEmbeddingFunction, describe

    fallback = HashingEmbeddingFunction()
    line = describe("auto", fallback)
    assert line.startswith("embedder hashing (lexical, 4096 dimensions")
    assert describe("hashing", fallback) == "embedder hashing (lexical, 4096 dimensions)"


def test_e5_reads_the_thread_count_from_the_configuration(tmp_path: Path):
    from nicobot.rag.options import read_options

    project = write_project(tmp_path / "p", 'embedder = "e5"\nembedder_threads = 2')
    options = read_options(nicobot.load_settings(project))
    assert (options.embedder, options.embedder_threads) == ("e5", 2)
    default = read_options(nicobot.load_settings(write_project(tmp_path / "d", "")))
    assert default.embedder_threads == 1
    old = write_project(tmp_path / "old", 'embedder = "minilm"')
    assert read_options(nicobot.load_settings(old)).embedder == "auto"


async def test_a_new_thread_count_keeps_the_index(tmp_path: Path, open_kb: Any):
    project = tmp_path / "threads"
    (project / "knowledge").mkdir(parents=True)
    (project / "knowledge" / "hours.md").write_text("# Opening hours\n\nSaturdays 10 to 14.")
    write_project(project, 'embedder = "e5"\nembedder_threads = 1')
    first = open_kb(project)
    await first.open()
    assert await first.count() == 1
    await first.close()

    write_project(project, 'embedder = "e5"\nembedder_threads = 2')
    second = open_kb(project)
    await second.open()
    assert second.reindexed is None, "only the embedder's identity decides a re-index"
    [best] = await second.query("what time do you open on saturday?", k=1)
    assert best.source == "hours.md"
    await second.close()
