"""The knowledge API and the admin's Knowledge tab, through Quart's test client."""

from __future__ import annotations

import importlib
import io
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from knowledge_helpers import make_pdf
from werkzeug.datastructures import FileStorage

import nicobot
from nicobot.testing import make_project

PLUGIN = "nicobot.builtins.chroma_knowledge"
API = "/api/knowledge"


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Any]:
    from nicobot.app import create_app
    from nicobot.plugins import make_plugin_manager

    project = make_project(tmp_path / "project", language="es")
    pm = make_plugin_manager(load_entry_points=False)
    if pm.get_plugin(PLUGIN) is None:
        pm.register(importlib.import_module(PLUGIN), name=PLUGIN)
    environ = {**os.environ, "NICOBOT_KNOWLEDGE__MAX_UPLOAD_MB": "1"}
    app = create_app(nicobot.load_settings(project, environ=environ), pm=pm)
    async with app.test_app():
        yield app


@pytest.fixture
def client(app: Any) -> Any:
    client = app.test_client()
    bearer = {"Authorization": f"Bearer {app.config['NICOBOT_ADMIN_PASSWORD']}"}

    class Admin:
        def __getattr__(self, method: str) -> Any:
            async def call(path: str, **kwargs: Any) -> Any:
                headers = {**bearer, **kwargs.pop("headers", {})}
                return await getattr(client, method)(path, headers=headers, **kwargs)

            return call

    return Admin()


def upload(name: str, data: bytes) -> dict[str, FileStorage]:
    return {"file": FileStorage(io.BytesIO(data), filename=name)}


def knowledge_dir(app: Any) -> Path:
    return Path(app.extensions["nicobot"].knowledge.knowledge_dir)


async def test_the_project_folder_is_ingested_at_start_and_listed(client):
    response = await client.get(f"{API}/documents")
    assert response.status_code == 200
    data = await response.get_json()
    assert [d["source"] for d in data["documents"]] == ["nosotros.md"]
    assert data["chunks"] == data["documents"][0]["chunks"] >= 1
    assert data["embedder"] == "e5/multilingual-e5-small-q4"


async def test_query_shows_passages_in_the_order_the_bot_uses_them(app, client):
    text = (
        "# Cambios\n\n## Costo del cambio por gusto\n\nSi el cambio es por gusto, el envío de "
        "vuelta del cambio lo pagás vos.\n\n## Plazo\n\nTenés 30 días corridos para pedir un "
        "cambio.\n"
    )
    response = await client.post(f"{API}/documents", files=upload("cambios.md", text.encode()))
    assert response.status_code == 201, await response.get_data()
    question = "hasta cuando puedo hacer el cambio por gusto?"
    asked = await client.get(f"{API}/query", query_string={"q": question})
    [first, *_] = (await asked.get_json())["snippets"]
    assert first["heading"] == "Cambios > Plazo"  # it states how long, as the question asks
    asked = await client.get(f"{API}/query", query_string={"q": "el cambio por gusto lo pago yo?"})
    [first, *_] = (await asked.get_json())["snippets"]
    assert first["heading"] == "Cambios > Costo del cambio por gusto"


async def test_upload_then_query_then_delete(app, client):
    text = "# Envíos\n\n## Costo\n\nEl envío es gratis desde $ 60.000 a todo el país.\n"
    response = await client.post(
        f"{API}/documents", files=upload("Envíos y costos.md", text.encode())
    )
    assert response.status_code == 201, await response.get_data()
    [doc] = (await response.get_json())["documents"]
    assert doc == {"source": "Envios_y_costos.md", "status": "added", "chunks": 1}
    assert (knowledge_dir(app) / "Envios_y_costos.md").read_text(encoding="utf-8") == text

    response = await client.get(f"{API}/query", query_string={"q": "envio gratis?", "k": "2"})
    assert response.status_code == 200
    data = await response.get_json()
    best = data["snippets"][0]
    assert best["source"] == "Envios_y_costos.md" and best["heading"] == "Envíos > Costo"
    assert best["used"] is True and data["min_score"] == 0.2
    assert data["q"] == data["searched"] == "envio gratis?"
    posted = await client.post(f"{API}/query", json={"q": "envio gratis x moto?"})
    posted_data = await posted.get_json()
    assert posted_data["snippets"][0]["chunk_id"] == best["chunk_id"]
    assert posted_data["searched"] == "envio gratis por moto?"  # chat shorthand spelled out
    asked = await client.get(f"{API}/query", query_string={"q": "mandan a Salta?"})
    assert (await asked.get_json())["searched"] == "mandan a Salta? (envíos)"  # its topic's words
    asked = await client.get(f"{API}/query", query_string={"q": "cuanto sale el envio?"})
    shown = {s["source"]: s for s in (await asked.get_json())["snippets"]}
    assert shown["Envios_y_costos.md"]["used"] is True  # it states a price
    assert shown["Envios_y_costos.md"]["not_used"] is None
    asked = await client.get(f"{API}/query", query_string={"q": "cuánto cuesta abrir los sábados?"})
    snippets = (await asked.get_json())["snippets"]
    [hours] = [s for s in snippets if "Horarios" in (s["heading"] or "")]
    assert hours["score"] >= 0.2 and hours["used"] is False  # about Saturdays, but no price
    assert hours["not_used"] == "no_price"

    # the bot answers from it (offline: no model configured), with its sources kept
    turn = await (
        await client.post(
            "/api/chat", json={"phone_number": "5491100000009", "message": "envío gratis?"}
        )
    ).get_json()
    assert "gratis desde $ 60.000" in turn["reply"]
    detail = await (await client.get(f"/api/sessions/{turn['session_id']}")).get_json()
    assert detail["messages"][-1]["meta"]["sources"][0]["source"] == "Envios_y_costos.md"

    pdf = make_pdf(knowledge_dir(app).parent / "lista.pdf", ["Vela de soja 11000 pesos"])
    response = await client.post(f"{API}/documents", files=upload("lista.pdf", pdf.read_bytes()))
    assert response.status_code == 201

    response = await client.delete(f"{API}/documents/Envios_y_costos.md")
    assert response.status_code == 200
    assert (await response.get_json())["file_removed"] is True
    assert not (knowledge_dir(app) / "Envios_y_costos.md").exists()
    listing = await (await client.get(f"{API}/documents")).get_json()
    assert [d["source"] for d in listing["documents"]] == ["lista.pdf", "nosotros.md"]
    missing = await client.delete(f"{API}/documents/Envios_y_costos.md")
    assert missing.status_code == 404 and "error" in await missing.get_json()


@pytest.mark.parametrize(
    ("name", "data", "status", "message"),
    [
        ("virus.exe", b"MZ", 400, "unsupported file type"),
        ("vacio.md", b"", 400, "empty"),
        ("roto.pdf", b"%PDF-1.4 nothing", 400, "not a readable PDF"),
        ("binario.txt", b"\x00\x00abc", 400, "binary"),
        ("grande.txt", b"a" * (1024 * 1024 + 1), 413, "larger than 1 MB"),
        ("...", b"hola", 400, "needs a name"),
    ],
)
async def test_bad_uploads_are_refused_and_leave_nothing(app, client, name, data, status, message):
    before = sorted(p.name for p in knowledge_dir(app).iterdir())
    response = await client.post(f"{API}/documents", files=upload(name, data))
    assert response.status_code == status
    assert message in (await response.get_json())["error"]
    assert sorted(p.name for p in knowledge_dir(app).iterdir()) == before


async def test_a_bad_upload_never_replaces_a_good_file(app, client):
    response = await client.post(f"{API}/documents", files=upload("nosotros.md", b"\x00\x01"))
    assert response.status_code == 400
    assert "Horarios" in (knowledge_dir(app) / "nosotros.md").read_text(encoding="utf-8")


async def test_an_unwritable_knowledge_folder_is_a_409(app, client):
    folder = knowledge_dir(app)
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
    folder.write_text("a file where the folder should be")
    response = await client.post(f"{API}/documents", files=upload("faq.md", b"# FAQ\n\nHola."))
    assert response.status_code == 409
    assert "cannot write to the knowledge folder" in (await response.get_json())["error"]


async def test_bad_requests(client):
    no_file = await client.post(f"{API}/documents", form={"x": "1"})
    assert no_file.status_code == 400
    as_json = await client.post(f"{API}/documents", json={"file": "x"})
    assert as_json.status_code == 400
    for params in ({}, {"q": "  "}, {"q": "hola", "k": "cero"}, {"q": "hola", "k": "99"}):
        response = await client.get(f"{API}/query", query_string=params)
        assert response.status_code == 400, params
        assert "error" in await response.get_json()
    long = await client.post(f"{API}/query", json={"q": "x" * 2001})
    assert long.status_code == 400
    not_object = await client.post(f"{API}/query", json=["q"])
    assert not_object.status_code == 400


async def test_reindex(client):
    response = await client.post(f"{API}/reindex")
    assert response.status_code == 200
    data = await response.get_json()
    assert data["documents"] == 1 and data["chunks"] >= 1 and data["failed"] == []


async def test_everything_needs_the_admin(app):
    client = app.test_client()
    for method, path in [
        ("get", f"{API}/documents"),
        ("post", f"{API}/documents"),
        ("delete", f"{API}/documents/nosotros.md"),
        ("post", f"{API}/reindex"),
        ("get", f"{API}/query?q=hola"),
    ]:
        response = await getattr(client, method)(path)
        assert response.status_code == 401, path


async def test_the_admin_tab_renders_in_spanish(client):
    response = await client.get("/admin?tab=knowledge")
    assert response.status_code == 200
    page = await response.get_data(as_text=True)
    assert 'id="knowledge-tab"' in page
    assert 'data-upload-url="/api/knowledge/documents"' in page
    assert "Probá una pregunta" in page and "Subir y agregar" in page
    assert "Conocimiento" in page  # the tab's label
    assert "de hasta 1 MB cada uno" in page


def test_every_string_of_the_tab_has_a_spanish_translation():
    import re

    from babel.messages import pofile

    root = Path(__file__).resolve().parents[2]
    template = (root / "templates" / "admin" / "knowledge.html").read_text(encoding="utf-8")
    wanted = set(re.findall(r'_\("((?:[^"\\]|\\.)*)"', template))
    wanted |= set(re.findall(r"_\('((?:[^'\\]|\\.)*)'", template))
    po = root / "src" / "nicobot" / "locale" / "es" / "LC_MESSAGES" / "knowledge.po"
    with po.open("rb") as handle:
        catalog = pofile.read_po(handle)
    assert len(wanted) > 20
    missing = [m for m in wanted if not (catalog.get(m) and catalog.get(m).string)]
    assert missing == []
