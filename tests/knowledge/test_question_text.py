"""What the knowledge base is asked: chat shorthand spelled out, the business's synonyms
added, through the settings a project writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from nicobot import ConfigError, load_settings
from nicobot.question import search_text
from nicobot.testing import make_project


class TestSearchText:
    def test_shorthand_is_replaced_by_the_word_it_stands_for(self):
        assert search_text("q sale el envio x moto?") == "que sale el envio por moto?"
        assert search_text("Tmb abren el FINDE?") == "también abren el fin de semana?"
        assert search_text("dnd quedan? me pasas el tel") == "donde quedan? me pasas el teléfono"

    def test_the_longest_shorthand_wins(self):
        assert search_text("a mendoza x ej") == "a mendoza por ejemplo"

    def test_only_whole_words_are_shorthand(self):
        text = "quiero saber los horarios, xq no contestan? (exquisito, 10x, vitamina d)"
        assert search_text(text) == (
            "quiero saber los horarios, porque no contestan? (exquisito, 10x, vitamina d)"
        )

    def test_synonyms_keep_the_customers_word_and_add_its_meaning(self):
        synonyms = {"caba": "Ciudad de Buenos Aires", "zona sur": "Gran Buenos Aires"}
        assert search_text("envio a CABA y a zona  sur?", synonyms) == (
            "envio a CABA (Ciudad de Buenos Aires) y a zona  sur (Gran Buenos Aires)?"
        )

    def test_shorthand_can_be_turned_off(self):
        assert search_text("q sale?", {}, shorthand=False) == "q sale?"

    def test_empty_terms_are_ignored(self):
        assert search_text("hola", {"": "nada", "x": " "}, shorthand=False) == "hola"


class TestSettings:
    def test_a_project_names_its_synonyms(self, tmp_path: Path):
        project = make_project(tmp_path / "bot")
        config = project / "nicobot.toml"
        config.write_text(
            config.read_text(encoding="utf-8")
            + '\n[knowledge.synonyms]\ncaba = "Ciudad de Buenos Aires"\n',
            encoding="utf-8",
        )
        knowledge = load_settings(project).knowledge
        assert knowledge.search_text("q sale a caba?") == (
            "que sale a caba (Ciudad de Buenos Aires)?"
        )

    def test_a_synonym_that_is_not_text_is_a_config_error(self, tmp_path: Path):
        project = make_project(tmp_path / "bot")
        config = project / "nicobot.toml"
        config.write_text(
            config.read_text(encoding="utf-8") + "\n[knowledge.synonyms]\ncaba = 3\n",
            encoding="utf-8",
        )
        with pytest.raises(ConfigError, match="synonyms"):
            load_settings(project)
