"""Splitting long replies."""

from __future__ import annotations

from nicobot.text import split_message


def test_short_text_is_one_part():
    assert split_message("  hola  ", 4096) == ["hola"]
    assert split_message("", 10) == []
    assert split_message("x" * 50, None) == ["x" * 50]


def test_paragraphs_are_kept_together_when_they_fit():
    text = "uno uno\n\ndos dos\n\ntres tres"
    assert split_message(text, 18) == ["uno uno\n\ndos dos", "tres tres"]


def test_long_paragraphs_split_on_sentences_then_words():
    text = "Primera frase. Segunda frase más larga. " + "palabra " * 10
    parts = split_message(text, 20)
    assert all(len(p) <= 20 for p in parts)
    assert parts[0] == "Primera frase."
    assert " ".join(parts).split() == text.split()


def test_a_word_longer_than_the_limit_is_cut():
    parts = split_message("a" * 25, 10)
    assert parts == ["a" * 10, "a" * 10, "a" * 5]
