"""Markdown, text, HTML and PDF become sections; unreadable files say why in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from knowledge_helpers import make_pdf

from nicobot.rag.readers import UnreadableDocument, read_chunks, read_sections


def test_markdown(tmp_path: Path):
    path = tmp_path / "envios.md"
    path.write_text(
        "# Envíos\n\n<!-- Contenido de ejemplo:\nreemplazar -->\n\n"
        "## Costo\n\nGratis desde $ 60.000.\n",
        encoding="utf-8",
    )
    [section] = read_sections(path)
    assert section.heading == "Envíos > Costo"
    assert section.body == "Gratis desde $ 60.000."


def test_plain_text_in_utf8_or_windows_encoding(tmp_path: Path):
    utf8 = tmp_path / "a.txt"
    utf8.write_bytes("\ufeffAbrimos de lunes a sábado.\n\nCerrado los domingos.".encode())
    windows = tmp_path / "b.txt"
    windows.write_bytes("Envío a todo el país.".encode("cp1252"))
    chunks = read_chunks(utf8)
    assert chunks[0].heading is None
    assert chunks[0].text == "Abrimos de lunes a sábado.\n\nCerrado los domingos."
    assert read_chunks(windows)[0].text == "Envío a todo el país."


def test_html_keeps_headings_paragraphs_lists_and_drops_scripts(tmp_path: Path):
    path = tmp_path / "page.html"
    path.write_text(
        """<!doctype html><html><head><title>La Fórmula</title><style>p{}</style></head>
        <body><nav>Inicio</nav><script>alert("x")</script>
        <h2>Medios   de pago</h2><p>Aceptamos <b>efectivo</b>
        y transferencia.</p><ul><li>Débito</li><li>Crédito</li></ul>
        <table><tr><td>Shampoo</td><td>$ 9.800</td></tr></table></body></html>""",
        encoding="utf-8",
    )
    sections = read_sections(path)
    assert [s.heading for s in sections] == ["La Fórmula", "La Fórmula > Medios de pago"]
    body = sections[-1].body
    assert "Aceptamos efectivo y transferencia." in body
    assert "- Débito" in body and "- Crédito" in body
    assert "Shampoo | $ 9.800" in body
    assert "alert" not in body and "p{}" not in body


def test_pdf(tmp_path: Path):
    path = make_pdf(tmp_path / "lista.pdf", ["Lista de precios", "Shampoo solido: 9800 pesos"])
    [chunk] = read_chunks(path)
    assert "Lista de precios" in chunk.text
    assert "Shampoo solido: 9800 pesos" in chunk.text


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("broken.pdf", b"%PDF-1.4 this is not really a pdf", "PDF"),
        ("empty.md", b"  \n\n", "no text"),
        ("binary.txt", b"\x00\x01\x02abc", "binary"),
        ("photo.jpg", b"\xff\xd8\xff", "unsupported file type"),
    ],
)
def test_unreadable_files_say_why(tmp_path: Path, name: str, data: bytes, message: str):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(UnreadableDocument, match=message) as caught:
        read_chunks(path)
    assert "\n" not in str(caught.value)


def test_missing_file(tmp_path: Path):
    with pytest.raises(UnreadableDocument, match="no such file"):
        read_chunks(tmp_path / "nope.md")
