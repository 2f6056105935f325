"""docs/configuration.md documents every setting the code accepts, with the right defaults.

The Settings model is walked section by section: a key added to the model without a row in
its section's table (or a row left for a key that no longer exists) fails here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from nicobot.channels import ChannelConfig
from nicobot.config import SHORT_ENV_NAMES, Settings

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "configuration.md"
OPTIONS_SOURCE = ROOT / "src" / "nicobot" / "rag" / "options.py"
ROW_RE = re.compile(r"^\|\s*`([a-z_][a-z0-9_]*)`\s*\|", re.M)


def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def section(heading_mark: str, *, main_table_only: bool = True) -> str:
    """The text under the heading that contains ``heading_mark``, up to the next heading
    (of any level when ``main_table_only``, else of the same or a higher level)."""
    lines = doc_text().splitlines()
    for index, line in enumerate(lines):
        if line.startswith("#") and heading_mark in line:
            level = len(line) - len(line.lstrip("#"))
            body: list[str] = []
            for following in lines[index + 1 :]:
                if following.startswith("#"):
                    other = len(following) - len(following.lstrip("#"))
                    if main_table_only or other <= level:
                        break
                body.append(following)
            return "\n".join(body)
    raise AssertionError(f"docs/configuration.md has no heading with {heading_mark}")


def rows(text: str) -> dict[str, str]:
    """Table rows by their first cell's key: ``| `key` | ... |``."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        match = ROW_RE.match(line)
        if match:
            found[match.group(1)] = line
    return found


def expected_default(value: Any) -> str | None:
    """How a default is written in the tables, or None when it is not checked."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, int | float):
        return f"`{value:g}`"
    if isinstance(value, str) and len(value) <= 40:
        return f"`{json.dumps(value, ensure_ascii=False)}`"
    return None


def model_sections(model: type[BaseModel], prefix: str = "") -> list[tuple[str, type[BaseModel]]]:
    """Every table of the model, nested ones included: ``[("bot", BotSettings), ...]``."""
    found = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            dotted = f"{prefix}{name}"
            found.append((dotted, annotation))
            found += model_sections(annotation, prefix=f"{dotted}.")
    return found


SECTIONS = model_sections(Settings)


def test_the_model_has_sections():
    names = [name for name, _ in SECTIONS]
    assert {"bot", "llm", "server", "store", "knowledge", "messages"} <= set(names)


@pytest.mark.parametrize(("name", "model"), SECTIONS, ids=[name for name, _ in SECTIONS])
def test_every_key_is_documented_with_its_default(name, model):
    table = rows(section(f"`[{name}]`"))
    nested = {
        key
        for key, field in model.model_fields.items()
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
    }
    keys = set(model.model_fields) - nested
    missing = keys - set(table)
    assert not missing, f"[{name}] keys missing from docs/configuration.md: {sorted(missing)}"
    stale = set(table) - keys
    assert not stale, f"docs/configuration.md documents unknown [{name}] keys: {sorted(stale)}"
    for key in keys:
        field = model.model_fields[key]
        default = None if field.default_factory is not None else field.default
        wanted = expected_default(default)
        if field.default_factory is None and wanted is not None:
            assert wanted in table[key], f"[{name}] {key}: the default should read {wanted}"


def test_channel_keys_are_documented():
    table = rows(section("`[channels.NAME]`"))
    assert set(ChannelConfig.model_fields) == set(table)
    for key, field in ChannelConfig.model_fields.items():
        wanted = expected_default(field.default)
        assert wanted is None or wanted in table[key], f"channels {key}: default {wanted}"


def test_whatsapp_keys_are_documented():
    from nicobot_whatsapp_evolution import config

    table = rows(section("`[channels.whatsapp]`"))
    fields = config.WhatsAppConfig.model_fields
    common = ChannelConfig.model_fields
    # The plugin's own keys, and common ones whose default it changes.
    own = {k for k in fields if k not in common or fields[k].default != common[k].default}
    assert own <= set(table), f"undocumented WhatsApp keys: {sorted(own - set(table))}"
    assert set(table) <= set(fields), f"unknown WhatsApp keys: {sorted(set(table) - set(fields))}"
    for variable, key in config.ENV_KEYS.items():
        assert variable in table[key], f"{variable} should be named in the {key} row"
    assert config.FALLBACK_SECRET_ENV in table["webhook_secret"]


def test_chroma_options_are_documented():
    read = set(re.findall(r'_option\(\s*extra,\s*"(\w+)"', OPTIONS_SOURCE.read_text("utf-8")))
    assert read, "no options found in nicobot/rag/options.py"
    table = rows(section("Options of the built-in Chroma"))
    secrets = {key for key in read if key.endswith("_api_key")}
    assert read - secrets <= set(table), f"undocumented: {sorted(read - secrets - set(table))}"
    for key in secrets:
        assert f"NICOBOT_KNOWLEDGE__{key.upper()}" in doc_text()


def test_short_environment_names_are_documented():
    table = section("### Short names")
    for variable, (sect, key) in SHORT_ENV_NAMES.items():
        line = next((row for row in table.splitlines() if f"`{variable}`" in row), None)
        assert line is not None, f"{variable} is not documented"
        assert f"[{sect}] {key}" in line, f"{variable} should say it sets [{sect}] {key}"


def test_secrets_and_switches_are_documented():
    from nicobot.plugins import LOAD_PLUGINS_ENV

    text = doc_text()
    for variable in (
        "NICOBOT_ADMIN_PASSWORD",
        "NICOBOT_SECRET_KEY",
        "NICOBOT_WEBHOOK_SECRET",
        LOAD_PLUGINS_ENV,
        "NICOBOT_DEBUG",
    ):
        assert f"`{variable}`" in text, f"{variable} is not documented"
