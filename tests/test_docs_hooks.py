"""docs/plugins/hooks.md states every hook with its full signature, and every hook has a
``tests/test_hook_<name>.py`` with a ``test_hook_<name>`` that fails if the core stops
calling it."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from nicobot import hookspecs

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "plugins" / "hooks.md"


def hooks() -> dict[str, object]:
    return {
        name: fn
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(fn, "nicobot_spec")
    }


def signature(name: str, fn: object) -> str:
    """``reply_sent(bot: BotContext, ...)``, with ``-> X`` unless it returns Any."""
    spec = inspect.signature(fn)  # type: ignore[arg-type]
    params = ", ".join(f"{p.name}: {p.annotation}" for p in spec.parameters.values())
    returns = spec.return_annotation
    return f"{name}({params})" + ("" if returns == "Any" else f" -> {returns}")


def sections() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    parts = re.split(r"^### (\w+)\n", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_hook_has_a_section_and_no_section_is_stale():
    assert set(sections()) == set(hooks())


@pytest.mark.parametrize("name", sorted(hooks()))
def test_each_hook_section_states_its_full_signature(name):
    expected = f"`{signature(name, hooks()[name])}`"
    assert expected in sections()[name], f"hooks.md, ### {name}: write {expected}"


@pytest.mark.parametrize("name", sorted(hooks()))
def test_each_hook_has_its_own_test(name):
    path = ROOT / "tests" / f"test_hook_{name}.py"
    assert path.is_file(), f"{path.name} is missing"
    assert re.search(rf"^(async )?def test_hook_{name}\(", path.read_text(), re.MULTILINE)
