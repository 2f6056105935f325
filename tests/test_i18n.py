"""Every page string and canned reply has a translation in every catalogue."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[1]
LOCALE = ROOT / "src" / "nicobot" / "locale"
METHOD_MAP = [("src/nicobot/**.py", "python"), ("templates/**.html", "jinja2")]
OPTIONS = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}
PLACEHOLDER = re.compile(r"%\(\w+\)s")


def extracted() -> dict[str, str]:
    found = {}
    for filename, _line, message, _comments, _context in extract_from_dir(
        ROOT, METHOD_MAP, OPTIONS, keywords={"_": None, "gettext": None}
    ):
        if isinstance(message, str):
            found[message] = filename
    return found


def catalogue(language: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for po_path in sorted((LOCALE / language / "LC_MESSAGES").glob("*.po")):
        with po_path.open("rb") as handle:
            for message in read_po(handle):
                if message.id and message.string and not message.fuzzy:
                    merged[str(message.id)] = str(message.string)
    return merged


@pytest.mark.parametrize("language", ["es"])
def test_every_string_is_translated(language):
    strings = extracted()
    assert len(strings) > 50
    translations = catalogue(language)
    missing = {m: f for m, f in strings.items() if m not in translations}
    assert missing == {}, f"add these to src/nicobot/locale/{language}/LC_MESSAGES/*.po"


@pytest.mark.parametrize("language", ["es"])
def test_translations_keep_their_placeholders(language):
    for source, target in catalogue(language).items():
        assert sorted(PLACEHOLDER.findall(source)) == sorted(PLACEHOLDER.findall(target)), source
