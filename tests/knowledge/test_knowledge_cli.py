"""``nicobot knowledge``: ingest, list, query, remove, reindex; one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from click.testing import CliRunner
from knowledge_helpers import write_project

from nicobot.rag.cli import knowledge

SRC = Path(__file__).resolve().parents[2] / "src"


def invoke(*args: str) -> object:
    return CliRunner().invoke(knowledge, [str(a) for a in args], catch_exceptions=False)


def test_ingest_list_query_remove_reindex(laformula: Path):
    # fast: this is about the commands; in the documents' language (Spanish)
    write_project(laformula, 'embedder = "hashing"', language="es")
    (laformula / "knowledge" / "roto.pdf").write_bytes(b"%PDF-1.4 garbage")
    result = invoke("ingest", "--project", laformula)
    assert result.exit_code == 1  # one file failed; the others went in
    assert "Ingested: 7 added, 0 updated, 0 unchanged, 0 removed, 1 failed" in result.stdout
    [error] = result.stderr.strip().splitlines()[-1:]
    assert error.startswith("Error: roto.pdf: not a readable PDF")
    assert "Traceback" not in result.stderr + result.stdout

    (laformula / "knowledge" / "roto.pdf").unlink()
    result = invoke("ingest", "-p", laformula)
    assert result.exit_code == 0, result.stderr
    assert "0 added, 0 updated, 7 unchanged" in result.stdout

    result = invoke("list", "--project", laformula)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["source", "chunks", "updated", "(UTC)"]
    assert [line.split()[0] for line in lines[1:]][:2] == ["devoluciones.md", "envios.md"]

    result = invoke("query", "-p", laformula, "-k", "2", "cuanto", "tarda", "a", "cordoba?")
    assert result.exit_code == 0
    first = result.stdout.splitlines()[0]
    assert first.startswith("[0.") and "envios.md > Envíos" in first
    result = invoke("query", "-p", laformula, "-k", "1", "q", "sale", "el", "envio?")
    assert result.stdout.splitlines()[0] == "Searched as: que sale el envio?"
    result = invoke("query", "-p", laformula, "-k", "1", "donde", "quedan?")
    lines = result.stdout.splitlines()
    assert lines[0] == "Searched as: donde quedan? (dirección, ubicación)"  # its topic's words
    assert "ubicacion.md" in lines[1]
    result = invoke("query", "-p", laformula, "-k", "2", "cuanto sale la crema de cacao?")
    [description] = [line for line in result.stdout.splitlines() if "productos.md" in line]
    assert description.endswith("(states no price, and the question asks one: not used)")

    result = invoke("remove", "envios.md", "--project", laformula)
    assert result.exit_code == 0 and "Removed envios.md." in result.stdout
    assert "still in knowledge/" in result.stderr
    result = invoke("remove", "envios.md", "--project", laformula)
    assert result.exit_code == 1
    assert result.stderr.strip() == ("Error: no document 'envios.md'; see `nicobot knowledge list`")

    result = invoke("reindex", "--project", laformula)
    assert result.exit_code == 0, result.stderr
    assert "Knowledge base re-indexed (rebuilt with hashing/v1/4096): 6 documents" in result.stdout
    assert "1 added" in result.stdout  # envios.md came back from the folder


def test_explicit_paths_and_missing_ones(project: Path, tmp_path: Path):
    extra = tmp_path / "extra.md"
    extra.write_text("# Extra\n\nTalleres los sábados.", encoding="utf-8")
    result = invoke("ingest", "-p", project, extra, tmp_path / "nope.md")
    assert result.exit_code == 1
    assert "1 added" in result.stdout and "1 failed" in result.stdout
    assert "nope.md: no such file or folder" in result.stderr


def test_errors_are_one_line(tmp_path: Path):
    result = invoke("list", "--project", tmp_path)
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("Error: no nicobot.toml in")
    assert len(result.stderr.strip().splitlines()) == 1

    bad = write_project(tmp_path / "bad", 'embedder = "word2vec"')
    result = invoke("list", "--project", bad)
    assert result.exit_code == 1
    assert "knowledge.embedder: unknown embedder 'word2vec'" in result.stderr

    other = write_project(tmp_path / "other", 'backend = ""')
    result = invoke("list", "--project", other)
    assert result.exit_code == 1 and "knowledge.backend" in result.stderr

    empty = write_project(tmp_path / "empty")
    (empty / "knowledge").rmdir()
    result = invoke("ingest", "--project", empty)
    assert result.exit_code == 1 and "folder" in result.stderr
    assert invoke("list", "--project", empty).stdout.startswith("The knowledge base is empty")
    assert invoke("query", "envíos", "--project", empty).stdout.startswith(
        "The knowledge base is empty"
    )


def test_an_empty_knowledge_base_points_at_the_documents_waiting_in_the_folder(tmp_path: Path):
    fresh = write_project(tmp_path / "fresh")
    (fresh / "knowledge" / "about.md").write_text("# About\n\nWe open at 9.\n")
    (fresh / "knowledge" / "notes.bin").write_bytes(b"\0")  # not a document
    (fresh / "knowledge" / "~$draft.md").write_text("# Draft\n")  # skipped by ingest too
    (fresh / "knowledge" / ".obsidian").mkdir()
    (fresh / "knowledge" / ".obsidian" / "workspace.md").write_text("# Workspace\n")
    for args in (("list",), ("query", "when do you open")):
        message = invoke(*args, "--project", fresh).stdout
        assert "knowledge/ holds 1 document not loaded yet" in message
        assert "nicobot knowledge ingest" in message
    assert invoke("ingest", "--project", fresh).exit_code == 0
    assert "about.md" in invoke("list", "--project", fresh).stdout


def test_query_lists_passages_in_the_order_the_bot_uses_them(tmp_path: Path):
    project = write_project(tmp_path / "p", 'embedder = "hashing"')
    (project / "knowledge" / "cambios.md").write_text(
        "# Cambios\n\n## Costo del cambio por gusto\n\nSi el cambio es por gusto, el envío de "
        "vuelta del cambio lo pagás vos.\n\n## Plazo\n\nTenés 30 días corridos para pedir un "
        "cambio.\n"
    )
    assert invoke("ingest", "--project", project).exit_code == 0
    shown = invoke("query", "hasta cuando puedo hacer el cambio por gusto?", "--project", project)
    first = next(line for line in shown.stdout.splitlines() if line.startswith("["))
    assert "Cambios > Plazo" in first


def test_help_and_plugins_do_not_import_chromadb_or_litellm(tmp_path: Path):
    """With this plugin among the defaults, the quick commands stay light."""
    code = textwrap.dedent(
        """
        import contextlib, io, json, sys
        import nicobot.plugins as plugins
        plugin = "nicobot.builtins.chroma_knowledge"
        if plugin not in plugins.DEFAULT_PLUGINS:
            plugins.DEFAULT_PLUGINS = (*plugins.DEFAULT_PLUGINS, plugin)
        from nicobot.cli import main
        outputs = []
        for argv in (["--help"], ["plugins"], ["knowledge", "--help"]):
            out = io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
                main(argv)
            outputs.append(out.getvalue())
        heavy = sorted(m for m in ("chromadb", "litellm", "numpy") if m in sys.modules)
        print(json.dumps([outputs, heavy]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False,
        env={**os.environ, "PYTHONPATH": str(SRC), "NICOBOT_LOAD_PLUGINS": ""},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (top, plugins_out, group), heavy = json.loads(done.stdout.strip().splitlines()[-1])
    assert "knowledge" in top
    assert "chroma_knowledge" in plugins_out
    for command in ("ingest", "list", "query", "remove", "reindex"):
        assert command in group
    assert heavy == []


def test_refuses_while_another_process_holds_the_store(project: Path):
    import asyncio

    import nicobot
    from nicobot.rag.chroma_store import ChromaKnowledgeBase

    server = ChromaKnowledgeBase.from_settings(nicobot.load_settings(project))
    asyncio.run(server.connect())  # as a running `nicobot serve` would
    try:
        result = invoke("ingest", "--project", project)
        assert result.exit_code == 1
        assert f"is in use by pid {os.getpid()}" in result.stderr
        assert "admin page's Knowledge tab" in result.stderr
    finally:
        asyncio.run(server.close())
    assert invoke("ingest", "--project", project).exit_code == 0
