"""The hashing embedder: deterministic, accent- and typo-tolerant, L2-normalised."""

from __future__ import annotations

import numpy as np

from nicobot.rag import hashing


def sim(a: str, b: str) -> float:
    return float(np.dot(hashing.embed_one(a), hashing.embed_one(b)))


def test_folding_and_plurals():
    assert hashing.fold("Envíos ÑANDÚ") == "envios nandu"
    assert hashing.words("¿Tienen envíos a las provincias?") == ["envio", "provincia"]
    assert [hashing.stem(w) for w in ("devoluciones", "luces", "colores", "paquetes")] == [
        "devolucion",
        "luz",
        "color",
        "paquete",
    ]


def test_folding_is_the_same_for_remembered_and_long_texts():
    short = "Envíos a Córdoba: ¿cuánto tardan? 🚚"
    long = short * (hashing.FOLD_CACHE_CHARS // len(short) + 1)
    assert len(long) > hashing.FOLD_CACHE_CHARS
    assert hashing.fold(short) == hashing.fold(short) == "envios a cordoba: ¿cuanto tardan? 🚚"
    assert hashing.fold(long) == hashing.fold(short) * (len(long) // len(short))


def test_vectors_are_unit_length_and_deterministic():
    vector = hashing.embed_one("Horario de atención")
    assert vector.shape == (hashing.DEFAULT_DIM,)
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
    assert np.array_equal(vector, hashing.embed_one("Horario de atención"))
    assert hashing.embed_one("abc", dim=256).shape == (256,)


def test_accents_and_misspellings_still_match():
    assert sim("envío", "envio") > 0.99
    related = sim("devoluciónes de productos", "Cambios y devoluciones de productos")
    typo = sim("orario del sabado", "Horario: sábados de 10 a 14")
    unrelated = sim("orario del sabado", "Aceptamos tarjetas de crédito")
    assert related > 0.5
    assert typo > unrelated + 0.1


def test_text_without_content_words_matches_nothing():
    assert sim("hola, buenas", "Horario de atención") == 0.0
    assert abs(float(np.linalg.norm(hashing.embed_one("¡¿?!")) - 1.0)) < 1e-6
