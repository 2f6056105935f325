"""The offline answer's pieces and the score calibration, as pure functions."""

from __future__ import annotations

import numpy as np
import pytest

from nicobot.knowledge import Snippet
from nicobot.offline_answer import (
    compose,
    join_table_parts,
    pick_passages,
    question_parts,
    rows_as_items,
    trim,
)
from nicobot.rag import hashing
from nicobot.rag.chroma_store import _non_increasing
from nicobot.rag.scoring import BOUNDARY, IDENTITY, Calibration, coverage, lexical_question

PRICES = (
    "| Producto | Precio |\n| --- | --- |\n| Crema hidratante de día (50 g) | $ 18.500 |\n"
    "| Sérum de vitamina C (30 ml) | $ 22.000 |\n| Limpiador facial en gel | $ 12.900 |\n"
    "| Protector solar facial FPS 50 (50 g) | $ 19.800 |"
)
RETURNS = (
    "El reembolso se hace por el mismo medio de pago de la compra. Con tarjeta puede tardar "
    "hasta dos resúmenes en verse reflejado; con Mercado Pago o transferencia, hasta 5 días "
    "hábiles. Guardá el comprobante de la compra hasta que veas el reintegro en tu cuenta."
)


def snippet(text: str, source: str = "a.md", score: float = 0.5) -> Snippet:
    return Snippet(text=text, source=source, score=score)


def test_a_table_is_cut_to_the_rows_asked_about_under_its_header():
    assert trim("precio del protector solar", snippet(PRICES)) == (
        "| Producto | Precio |\n| Protector solar facial FPS 50 (50 g) | $ 19.800 |"
    )


def test_prose_is_cut_to_the_sentences_that_answer():
    answer = trim("cuanto tarda el reembolso con tarjeta", snippet(RETURNS))
    assert "dos resúmenes" in answer
    assert "comprobante" not in answer


def test_short_passages_and_passages_with_no_standout_line_stay_whole():
    short = "Por ahora no hacemos envíos fuera de Argentina."
    assert trim("mandan a chile?", snippet(short)) == short
    assert trim("zzz qqq", snippet(RETURNS)) == RETURNS


def test_a_question_in_two_parts_gets_a_passage_of_each_document():
    assert question_parts("cuanto sale el envio y a que hora abren?") == [
        "cuanto sale el envio",
        "a que hora abren",
    ]
    hours = snippet("Sábados de 10 a 14.", "horarios.md", 0.6)
    shipping = snippet("El envío cuesta $ 4.500.", "envios.md", 0.3)
    same_doc = snippet("Domingos cerrado.", "horarios.md", 0.5)
    question = "cuanto sale el envio y a que hora abren?"
    assert pick_passages(question, [hours, same_doc, shipping]) == [hours, shipping]
    assert pick_passages(question, [hours, same_doc]) == [hours, same_doc]  # the runner-up
    # a question in one part: the runner-up too when it is nearly as sure
    assert pick_passages("a que hora abren?", [hours, same_doc, shipping]) == [hours, same_doc]
    assert pick_passages("a que hora abren?", [hours, shipping]) == [hours]  # 0.3: not sure
    text, used = compose(question, [hours, same_doc, shipping])
    assert used == [hours, shipping]
    assert text == "Sábados de 10 a 14.\n\nEl envío cuesta $ 4.500."


HEADER = "| Producto | Precio |\n| --- | --- |\n"


def row_group(index: int, rows: str, score: float, heading: str = "Precios > Lista") -> Snippet:
    return Snippet(
        text=HEADER + rows,
        source="precios.md",
        score=score,
        heading=heading,
        chunk_id=f"precios.md#{index}",
    )


def test_row_groups_of_one_table_are_quoted_as_that_table_in_the_documents_order():
    third = row_group(3, "| Vela de soja | $ 11.000 |", 0.9)
    first = row_group(1, "| Crema de día | $ 18.500 |\n| Sérum | $ 22.000 |", 0.7)
    other = snippet("Aceptamos efectivo y transferencia.", "precios.md", 0.8)
    joined = join_table_parts([third, other, first])
    assert [s.text for s in joined] == [
        HEADER + "| Crema de día | $ 18.500 |\n| Sérum | $ 22.000 |\n| Vela de soja | $ 11.000 |",
        other.text,
    ]
    assert joined[0].score == 0.9  # the best part's place and score
    quoted, used = compose("pasame la lista de precios", [third, other, first])
    assert quoted == (
        "- Crema de día: $ 18.500\n- Sérum: $ 22.000\n- Vela de soja: $ 11.000\n\n"
        "Aceptamos efectivo y transferencia."
    )
    assert used == [joined[0], other]  # the reply's sources: the whole table, then the runner-up
    # a row asked about is still picked out, from any of the groups
    quoted, _ = compose("cuanto sale la vela de soja", [third, first])
    assert quoted == "- Vela de soja: $ 11.000"


def test_a_quoted_table_reads_as_a_list_in_a_chat():
    table = (
        "Plazos de entrega:\n| Zona | Plazo | Costo |\n| :--- | ---: | --- |\n"
        "| CABA | 24 a 48 horas | $ 4.500 |\n| Interior | 3 a 7 días | |\nConsultanos."
    )
    assert rows_as_items(table) == (
        "Plazos de entrega:\n- CABA: 24 a 48 horas; Costo $ 4.500\n- Interior: 3 a 7 días\n"
        "Consultanos."
    )
    prose = "Abrimos de 10:00 a 19:30.\n- Sábados de 10:00 a 14:00."
    assert rows_as_items(prose) == prose


def test_only_row_groups_of_the_same_table_are_joined():
    prices = row_group(1, "| Crema | $ 18.500 |", 0.9)
    other_section = row_group(5, "| Kit | $ 32.000 |", 0.8, heading="Precios > Kits")
    lone = row_group(2, "| Sérum | $ 22.000 |", 0.7, heading="Otra tabla")
    prose = snippet("Emitimos factura A o B.\nPara factura A hay que indicar el CUIT.")
    kept = [prices, other_section, lone, prose]
    assert join_table_parts(kept) == kept


def test_calibration_maps_each_embedders_boundary_to_the_same_score():
    e5_like = Calibration(zero=0.8, boundary=1.05, full=1.35, lexical_weight=1.0)
    assert e5_like.score(0.85, 0.20) == pytest.approx(BOUNDARY)
    assert e5_like.score(0.80, 0.0) == 0.0
    assert e5_like.score(0.95, 0.40) == 1.0
    assert 0.0 < e5_like.score(0.82, 0.1) < BOUNDARY < e5_like.score(0.87, 0.3) < 1.0
    assert IDENTITY.score(0.2) == pytest.approx(BOUNDARY)
    assert IDENTITY.score(0.73) == pytest.approx(0.73)
    trusting_meaning = Calibration(
        zero=0.8, boundary=1.05, full=1.35, lexical_weight=1.0, dense_boundary=0.865
    )
    assert trusting_meaning.score(0.87, 0.0) > BOUNDARY > e5_like.score(0.87, 0.0)


def test_a_lower_ranked_passage_is_never_surer_than_the_one_above_it():
    ranked = [snippet("a", score=0.3), snippet("b", score=0.6), snippet("c", score=0.1)]
    assert [s.score for s in _non_increasing(ranked)] == [0.3, 0.3, 0.1]
    assert [s.text for s in _non_increasing(ranked)] == ["a", "b", "c"]


def test_generic_verbs_are_no_lexical_evidence() -> None:
    assert lexical_question("¿Venden maquillaje?") == "maquillaje"
    assert lexical_question("Do you sell scented candles?") == "do you scented candles"
    assert lexical_question("Vocês fazem massagem?") == "massagem"
    assert lexical_question("what's your refund policy?") == "what your refund policy"
    assert lexical_question("venden x mayor?") == "mayor"


def test_coverage_favours_the_passage_naming_what_only_it_shares_with_the_question():
    question = hashing.embed_one(lexical_question("¿Hacen envíos a Córdoba?"))
    passages = [
        hashing.embed_one(text)
        for text in (
            "Envíos. Envíos al exterior: no hacemos envíos fuera de Argentina.",
            "Envíos. Zonas: resto del país (Córdoba, Santa Fe), por correo.",
            "Envíos. Seguimiento: te mandamos el número de seguimiento.",
            "Horarios. Sábados de 10 a 14.",
        )
    ]
    shares = coverage(question, np.stack(passages))
    assert shares.shape == (4,)
    assert shares.argmax() == 1  # only it says "Córdoba"; all the shipping ones say "envíos"
    assert shares[3] < 0.05  # nothing in common (but a stray hashed n-gram)
    assert shares[1] > 0.5 > max(shares[0], shares[2])
    assert all(0.0 <= share <= 1.0 for share in shares)
    assert coverage(question, np.zeros((0, hashing.DEFAULT_DIM), dtype=np.float32)).shape == (0,)


def test_coverage_counts_in_the_ranking_key_only():
    calibration = Calibration(zero=0.8, boundary=1.05, full=1.35, rank_coverage_weight=0.05)
    assert calibration.rank(0.86, 0.0, 1.0) > calibration.rank(0.87, 0.0, 0.0)
