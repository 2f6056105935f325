"""Chunks follow headings and paragraphs, stay within bounds and overlap."""

from __future__ import annotations

import itertools

from nicobot.rag.chunking import atx_heading, chunk_markdown, chunk_plain, markdown_sections

DOC = """# Envíos

Intro paragraph.

## Costo del envío

Gratis desde $ 60.000.

### Ciudad

La moto cuesta $ 4.500.

## Plazos

Entre 24 y 48 horas.

```
# not a heading inside code
```
"""


def test_sections_keep_the_heading_path():
    sections = markdown_sections(DOC)
    assert [s.heading for s in sections] == [
        "Envíos",
        "Envíos > Costo del envío",
        "Envíos > Costo del envío > Ciudad",
        "Envíos > Plazos",
    ]
    assert "# not a heading inside code" in sections[-1].body


def test_setext_headings_and_text_before_any_heading():
    text = (
        "Preface line.\n\nTitle\n=====\n\nBody.\n\nSub\n---\n\nMore.\n\n| a | b |\n| --- | --- |\n"
    )
    sections = markdown_sections(text)
    assert [s.heading for s in sections] == [None, "Title", "Title > Sub"]
    assert "| --- |" in sections[-1].body


def test_a_chunk_never_crosses_a_heading():
    chunks = chunk_markdown(DOC, max_chars=300, overlap=50)
    assert [c.heading for c in chunks][:2] == ["Envíos", "Envíos > Costo del envío"]
    assert all("Entre 24" not in c.text for c in chunks if c.heading != "Envíos > Plazos")
    assert [c.index for c in chunks] == list(range(len(chunks)))


def test_long_sections_are_split_within_bounds_with_overlap():
    sentences = [f"La oración número {i} habla del envío a la provincia {i}." for i in range(80)]
    paragraphs = "\n\n".join(" ".join(sentences[i : i + 5]) for i in range(0, 80, 5))
    chunks = chunk_markdown("# Envíos\n\n" + paragraphs, max_chars=400, overlap=80)
    assert len(chunks) > 5
    assert all(len(c.text) <= 400 for c in chunks)
    assert all(c.heading == "Envíos" for c in chunks)
    for previous, current in itertools.pairwise(chunks):
        shared = current.text.split("\n\n")[0]
        assert previous.text.endswith(shared)  # the next chunk starts with the previous' end
        assert 0 < len(shared) <= 80
    every_sentence = " ".join(c.text for c in chunks)
    assert all(s in every_sentence for s in sentences)


def test_a_giant_word_or_paragraph_is_cut():
    chunks = chunk_plain("x" * 1000 + " fin", max_chars=300, overlap=0)
    assert all(len(c.text) <= 300 for c in chunks)
    assert "".join(c.text.replace(" ", "") for c in chunks).startswith("x" * 1000)


def test_zero_overlap_and_small_documents():
    assert [c.text for c in chunk_plain("Uno.\n\nDos.", overlap=0)] == ["Uno.\n\nDos."]
    assert chunk_plain("   \n\n ") == []


def test_soft_line_breaks_are_unwrapped_but_lists_and_tables_kept():
    body = (
        "El costo se calcula en el carrito según el código\npostal.\n\n"
        "- Ciudad: 24 horas,\n  con moto.\n- Resto del país: correo.\n\n"
        "| Producto | Precio |\n| --- | --- |\n| Vela | $ 11.000 |"
    )
    [prose, table] = chunk_plain(body)  # a table is a passage of its own
    assert prose.text == (
        "El costo se calcula en el carrito según el código postal.\n\n"
        "- Ciudad: 24 horas, con moto.\n- Resto del país: correo."
    )
    assert table.text == "| Producto | Precio |\n| --- | --- |\n| Vela | $ 11.000 |"


def test_atx_headings_follow_commonmark():
    assert atx_heading("## Envíos ##") == (2, "Envíos")
    assert atx_heading("  ### a # b ###  ") == (3, "a # b")
    assert atx_heading("# foo#") == (1, "foo#")
    assert atx_heading("## ##") == (2, "")
    for not_heading in ("#x", "####### seven", "    # indented code", "text # not"):
        assert atx_heading(not_heading) is None


def test_each_table_row_group_repeats_the_header():
    rows = "\n".join(f"| Producto número {i} | $ {i}.000 |" for i in range(80))
    chunks = chunk_markdown(f"# Precios\n\n| Producto | Precio |\n| --- | --- |\n{rows}\n")
    assert len(chunks) > 2
    seen = []
    for chunk in chunks:
        header, rule, *body = chunk.text.split("\n")
        assert (header, rule) == ("| Producto | Precio |", "| --- | --- |")
        assert all(row.startswith("| Producto número ") and row.endswith(" |") for row in body)
        seen += body
    assert seen == rows.split("\n")  # every row once, none cut


ADVERSARIAL_MARKDOWN = [
    "# a" + " " * 200_000 + "x",  # the old heading pattern backtracked on this for hours
    "#" + " \t" * 100_000 + "#",
    "## " + "# " * 100_000 + "x",
    "| h |\n|" + "-" * 200_000 + "x\n| a |",
    "Title\n" + "=" * 200_000 + " x",
    "- " * 100_000,
    ("> " * 1000 + "\n") * 100,
    ". " * 100_000,
    "```\n" * 50_000,
]


def test_adversarial_markdown_is_chunked_in_linear_time():
    import time

    for text in ADVERSARIAL_MARKDOWN:
        started = time.perf_counter()
        chunks = chunk_markdown(text)
        elapsed = time.perf_counter() - started
        assert elapsed < 2.0, f"{text[:20]!r}...: {elapsed:.1f}s"
        assert all(len(c.text) <= 900 for c in chunks)


def test_adversarial_html_is_chunked_in_linear_time(tmp_path):
    import time

    from nicobot.rag.readers import read_chunks

    pages = [
        "<h1>" + " " * 200_000 + "x</h1>",
        "<h2>" + "#" * 200_000 + "</h2>",
        "<table>" + "<tr><td>" + "-" * 20 + "</td></tr>" * 5_000 + "</table>",
        "<p>" + "# " * 100_000 + "</p>",
    ]
    for number, page in enumerate(pages):
        path = tmp_path / f"page{number}.html"
        path.write_text(page + "<p>text</p>", encoding="utf-8")
        started = time.perf_counter()
        chunks = read_chunks(path)
        elapsed = time.perf_counter() - started
        assert chunks
        assert elapsed < 2.0, f"{page[:20]!r}...: {elapsed:.1f}s"
