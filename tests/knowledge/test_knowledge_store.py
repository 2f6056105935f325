"""The Chroma knowledge base on a real store: ingest, incremental sync, queries, embedders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from knowledge_helpers import make_pdf, write_project

import nicobot
from nicobot.agent import Agent
from nicobot.rag.chroma_store import HYBRID_CANDIDATES
from nicobot.rag.e5_support import E5_DEFAULT_THREADS
from nicobot.rag.ingest import ingest_paths
from nicobot.rag.readers import UnreadableDocument

SRC = Path(__file__).resolve().parents[2] / "src"


def fill_formats(folder: Path) -> None:
    (folder / "horarios.md").write_text(
        "# Horarios\n\n## Sábados\n\nAbrimos los sábados de 10 a 14.\n", encoding="utf-8"
    )
    (folder / "notas.txt").write_text("El local tiene acceso sin escalones.", encoding="utf-8")
    (folder / "pagos.html").write_text(
        "<h1>Pagos</h1><p>Aceptamos Mercado Pago y transferencia.</p>", encoding="utf-8"
    )
    (folder / "sub").mkdir()
    make_pdf(folder / "sub" / "lista.pdf", ["Lista de precios", "Vela de soja 11000 pesos"])
    (folder / ".hidden.md").write_text("# Oculto", encoding="utf-8")
    (folder / "foto.jpg").write_bytes(b"\xff\xd8")


async def test_ingests_every_format_and_answers_with_sources(project, open_kb):
    fill_formats(project / "knowledge")
    kb = open_kb(project)
    await kb.open()
    report = kb.synced
    assert report is not None
    assert sorted(report.added) == ["horarios.md", "notas.txt", "pagos.html", "sub/lista.pdf"]
    assert report.skipped == ["foto.jpg"] and not report.failed
    docs = {d.source: d for d in await kb.documents()}
    assert set(docs) == set(report.added) and all(d.chunks >= 1 for d in docs.values())
    assert docs["horarios.md"].updated_at
    assert await kb.count() == sum(d.chunks for d in docs.values())

    for question, source in [
        ("abren el sabado?", "horarios.md"),
        ("aceptan mercadopago", "pagos.html"),
        ("cuanto sale la vela de soja", "sub/lista.pdf"),
        ("hay escalones en el local", "notas.txt"),
    ]:
        [best, *_] = await kb.query(question, k=3)
        assert best.source == source, question
        assert 0.2 < best.score <= 1.0
        assert best.chunk_id and best.chunk_id.startswith(source + "#")
    [best] = await kb.query("sábados", k=1)
    assert best.heading == "Horarios > Sábados"
    assert best.text == "Abrimos los sábados de 10 a 14."
    # a greeting matches nothing
    assert all(s.score < 0.2 for s in await kb.query("hola", k=3))
    assert await kb.query("   ") == []


async def test_incremental_sync_skips_replaces_and_removes(project, open_kb):
    folder = project / "knowledge"
    (folder / "a.md").write_text("# A\n\nEl envío es gratis desde 60000.", encoding="utf-8")
    (folder / "b.md").write_text("# B\n\nAbrimos los domingos.", encoding="utf-8")
    (folder / "c.md").write_text("# C\n\nTenemos gift cards.", encoding="utf-8")
    kb = open_kb(project)
    first = await ingest_paths(kb, [folder])
    assert sorted(first.added) == ["a.md", "b.md", "c.md"]

    again = await ingest_paths(kb, [folder])
    assert sorted(again.unchanged) == ["a.md", "b.md", "c.md"] and not again.changed
    assert again.chunks == 0

    (folder / "a.md").write_text("# A\n\nEl envío cuesta 4500 en la ciudad.", encoding="utf-8")
    (folder / "c.md").unlink()
    (folder / "d.md").write_bytes(b"")
    report = await ingest_paths(kb, [folder])
    assert report.updated == ["a.md"] and report.unchanged == ["b.md"]
    assert report.removed == ["c.md"]
    assert report.failed == [("d.md", "no text found in it")]
    assert [d.source for d in await kb.documents()] == ["a.md", "b.md"]
    texts = [s.text for s in await kb.query("envío gratis cuesta", k=10)]
    assert "El envío cuesta 4500 en la ciudad." in texts
    assert not any("60000" in t for t in texts)  # the old version's chunks are gone
    assert not any(s.source == "c.md" for s in await kb.query("gift cards", k=10))
    assert "1 updated, 1 unchanged, 1 removed, 1 failed" in report.summary()


async def test_files_outside_the_folder_and_delete(project, open_kb, tmp_path):
    outside = tmp_path / "extra.txt"
    outside.write_text("Hacemos talleres de cosmética natural.", encoding="utf-8")
    kb = open_kb(project)
    result = await kb.ingest_file(outside)
    assert (result.source, result.status) == ("extra.txt", "added")
    assert await kb.add_file(outside) == result.chunks  # unchanged: skipped
    # a folder sync does not remove documents that came from elsewhere
    assert not (await ingest_paths(kb, [project / "knowledge"])).removed
    assert await kb.delete("extra.txt") is True
    assert await kb.delete("extra.txt") is False
    assert await kb.count() == 0
    with pytest.raises(UnreadableDocument):
        await kb.ingest_file(tmp_path / "missing.md")


async def test_scores_separate_answers_from_unrelated_questions(laformula, open_kb):
    kb = open_kb(laformula)
    await kb.open()
    for question, source in [
        ("¿A qué hora abren los sábados?", "horarios.md"),
        ("envios a probincia", "envios.md"),
        ("puedo devolver un producto abierto?", "devoluciones.md"),
        ("cuanto sale el shampoo solido", "precios.md"),
    ]:
        found = await kb.query(question, k=3)
        assert source in [s.source for s in found], question
        assert found[0].score >= 0.2, question
    for unrelated in ("¿Cuál es la capital de Francia?", "receta de empanadas salteñas"):
        assert all(s.score < 0.2 for s in await kb.query(unrelated, k=3)), unrelated


async def test_changing_the_embedder_reindexes(project, open_kb):
    folder = project / "knowledge"
    (folder / "a.md").write_text("# Envíos\n\nGratis desde 60000.", encoding="utf-8")
    kb = open_kb(project)
    await kb.open()
    assert kb.reindexed is None
    chunks = await kb.count()
    await kb.close()

    write_project(project, 'embedder = "hashing:1024"')
    changed = open_kb(project)
    await changed.connect()
    assert changed.reindexed is not None
    assert changed.reindexed.previous == "e5/multilingual-e5-small-q4"
    assert changed.reindexed.embedder == "hashing/v1/1024"
    assert (changed.reindexed.documents, changed.reindexed.chunks) == (1, chunks)
    assert "changed from e5/multilingual-e5-small-q4 to hashing/v1/1024" in (
        changed.reindexed.message()
    )
    [best] = await changed.query("envios gratis", k=1)
    assert best.source == "a.md"
    await changed.close()

    same = open_kb(project)
    await same.connect()
    assert same.reindexed is None


async def test_reindex_and_a_lost_collection_rebuild_from_the_files(project, open_kb):
    (project / "knowledge" / "a.md").write_text("# A\n\nTexto.", encoding="utf-8")
    kb = open_kb(project)
    await kb.open()
    result = await kb.reindex()
    assert (result.documents, result.chunks, result.failed) == (1, 1, [])
    assert await kb.count() == 1
    kb._client.delete_collection(kb.options.collection)  # lost behind our back
    await kb.close()

    again = open_kb(project)
    await again.connect()
    assert again.reindexed is not None and again.reindexed.documents == 1
    assert await again.count() == 1


def test_the_embedder_is_rebuilt_by_chroma_in_a_fresh_process(laformula, tmp_path):
    """Chroma rebuilds our embedding function from the collection's stored configuration;
    the default embedder loads, ingests and answers with every network connection refused
    (its weights are in its package)."""
    ingest = textwrap.dedent(
        f"""
        import asyncio, json, socket, nicobot
        def refuse(*args, **kwargs):
            raise OSError("no network in this test")
        socket.socket.connect = socket.socket.connect_ex = refuse
        socket.create_connection = socket.getaddrinfo = refuse
        from nicobot.rag.chroma_store import HYBRID_CANDIDATES, ChromaKnowledgeBase
        async def main():
            kb = ChromaKnowledgeBase.from_settings(nicobot.load_settings({str(laformula)!r}))
            await kb.open()
            found = await kb.query("envios a probincia", k=HYBRID_CANDIDATES)
            print(json.dumps([kb.options.collection, [s.chunk_id for s in found],
                              kb.embedder_name]))
            await kb.close()
        asyncio.run(main())
        """
    )
    reload = textwrap.dedent(
        f"""
        import json, sys
        import chromadb
        from chromadb.config import Settings
        import nicobot.rag.embedders  # registers nicobot's embedding functions by name
        name = sys.argv[1]
        client = chromadb.PersistentClient(
            path={str(laformula / "data" / "chroma")!r},
            settings=Settings(anonymized_telemetry=False),
        )
        collection = client.get_collection(name, embedding_function=None)
        built = collection.configuration["embedding_function"]
        found = collection.query(query_texts=["envios a probincia"], n_results={HYBRID_CANDIDATES})
        print(json.dumps([type(built).__name__, built.get_config(), found["ids"][0],
                          "onnxruntime" in sys.modules]))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}

    def run(code: str, *args: str) -> list[object]:
        done = subprocess.run(
            [sys.executable, "-c", code, *args],
            capture_output=True, text=True, timeout=120, env=env, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        value: list[object] = json.loads(done.stdout.strip().splitlines()[-1])
        return value

    collection, chunk_ids, embedder = run(ingest)
    assert isinstance(collection, str) and isinstance(chunk_ids, list)
    assert embedder == "e5/multilingual-e5-small-q4"
    assert chunk_ids[0].startswith("envios.md#")
    name, config, found_ids, onnx = run(reload, collection)
    assert name == "E5EmbeddingFunction"
    assert config == {"model": "multilingual-e5-small-q4", "threads": E5_DEFAULT_THREADS}
    # the same vectors: Chroma's 12 nearest are the candidates the knowledge base re-ranked
    assert isinstance(found_ids, list) and len(found_ids) == HYBRID_CANDIDATES
    assert set(chunk_ids) <= set(found_ids) and len(chunk_ids) >= 4
    assert onnx is False  # Chroma's default (downloading) embedder was never loaded


async def agent_over(directory: Path, open_kb, documents: dict[str, str], toml: str = ""):
    """An agent over a hashing knowledge base holding ``documents`` (name: text)."""
    project = write_project(directory, f'embedder = "hashing"\n{toml}')
    for name, text in documents.items():
        (project / "knowledge" / name).write_text(text)
    kb = open_kb(project)
    await ingest_paths(kb, [kb.knowledge_dir])
    return kb, Agent(nicobot.load_settings(project), kb)


async def test_each_part_of_a_question_is_searched_on_its_own(tmp_path, open_kb):
    documents = {
        "hours.md": "# Hours\n\nOpen on Saturdays 10 to 14.",
        "parking.md": "# Parking\n\nNo parking of our own; a parking garage at Cabrera 5020.",
    }
    kb, agent = await agent_over(tmp_path / "p", open_kb, documents, "top_k = 1")
    question = "open on saturdays? and is there a parking garage for parking?"
    [whole] = await kb.search(question, 1)
    assert whole.source == "parking.md"  # the whole question finds only its second part
    found = [s.source for s in await agent.search(question)]
    assert found[0] == "parking.md" and "hours.md" in found


async def test_a_question_asking_how_long_gets_the_passages_that_state_a_time_first(
    tmp_path, open_kb
):
    documents = {
        "cambios.md": (
            "# Cambios\n\n## Costo del cambio por gusto\n\nSi el cambio es por gusto, el envío "
            "de vuelta del cambio lo pagás vos.\n\n## Plazo\n\nTenés 30 días corridos para "
            "pedir un cambio."
        ),
        "local.md": "# Local\n\nEl local queda en Gurruchaga 1450, Palermo.",
    }
    kb, agent = await agent_over(tmp_path / "p", open_kb, documents)
    question = "hasta cuando puedo hacer el cambio por gusto?"
    assert "30 días" not in (await kb.search(question, 1))[0].text  # the cost comes first
    assert "30 días" in (await agent.search(question))[0].text
    # a question about the exchange itself keeps the knowledge base's order
    found = await agent.search("el envio de vuelta del cambio por gusto lo pago yo?")
    assert found[0].heading is not None and "Costo" in found[0].heading
    # in a question of several parts, that part's answer comes first, the others follow
    found = await agent.search(
        "hasta cuando puedo hacer el cambio por gusto? y donde queda el local?"
    )
    assert "30 días" in found[0].text
    assert "local.md" in [s.source for s in found]


async def test_a_question_asking_a_price_is_answered_only_by_passages_that_state_one(
    tmp_path, open_kb
):
    documents = {
        "productos.md": "# Crema de cacao\n\nCrema corporal de manteca de cacao, para piel seca.",
        "precios.md": "# Precios\n\n| Producto | Precio |\n| --- | --- |\n| Vela | $ 11.000 |",
        "envios.md": "# Envíos\n\nLos envíos tardan de 3 a 7 días hábiles.",
    }
    kb, agent = await agent_over(tmp_path / "p", open_kb, documents)
    question = "cuanto sale la crema de manteca de cacao?"
    assert (await kb.search(question, 1))[0].source == "productos.md"  # the description
    assert [s.source for s in await agent.search(question)] == ["precios.md"]
    # a question about the product itself still gets its description
    found = await agent.search("la crema de manteca de cacao es para piel seca?")
    assert found[0].source == "productos.md"
    # in a question of several parts, only the part asking the price is held to it
    found = await agent.search("la crema de cacao es para piel seca? y cuanto sale la vela?")
    assert {"productos.md", "precios.md"} <= {s.source for s in found}
    # and the description the whole question finds first does not lead for the price part
    found = await agent.search("cuanto sale la crema de manteca de cacao? y tardan los envios?")
    assert found[0].source != "productos.md"
    assert [s.source for s in found][:2] == ["precios.md", "envios.md"]
