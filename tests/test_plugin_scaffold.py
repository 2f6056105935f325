"""``nicobot plugin new``: the package it writes installs, loads and passes its own tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from nicobot.cli.plugin_new import plugin
from nicobot.scaffold_plugin import plugin_names


def run(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args),
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_names_are_derived_from_the_plugin_name() -> None:
    names = plugin_names("nicobot-instagram")
    assert (names.dist, names.package, names.channel, names.label) == (
        "nicobot-instagram",
        "nicobot_instagram",
        "instagram",
        "Instagram",
    )
    assert (names.channel_class, names.env_prefix, names.secret_header) == (
        "InstagramChannel",
        "INSTAGRAM",
        "x-instagram-secret",
    )
    assert plugin_names("instagram") == names
    other = plugin_names("my-chat", channel_name="chat_two", label="Chat Two")
    assert (other.dist, other.package, other.channel, other.label) == (
        "nicobot-my-chat",
        "nicobot_my_chat",
        "chat_two",
        "Chat Two",
    )
    assert other.channel_class == "ChatTwoChannel"
    assert other.secret_header_title == "X-Chat-Two-Secret"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Nicobot-Demo"], "bad plugin name 'Nicobot-Demo'"),
        (["nicobot-"], "bad plugin name"),
        (["2fast"], "bad plugin name"),
        (["with space"], "bad plugin name"),
        (["demo", "--channel-name", "Demo-1"], "bad channel name 'Demo-1'"),
        (["simulator"], "channel name 'simulator' is nicobot's own"),
    ],
)
def test_bad_names_are_one_line_errors(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(plugin, ["new", *args, "--yes", "--directory", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {message}")
    assert result.output.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_an_existing_directory_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "nicobot-demo").mkdir()
    (tmp_path / "nicobot-demo" / "mine.txt").write_text("keep me")
    result = CliRunner().invoke(plugin, ["new", "demo", "--yes", "-d", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output == f"Error: {tmp_path / 'nicobot-demo'} already exists\n"
    assert [p.name for p in (tmp_path / "nicobot-demo").iterdir()] == ["mine.txt"]


def test_it_prompts_without_yes(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        plugin, ["new", "shop-chat", "-d", str(tmp_path)], input="shop\nShop Chat\n"
    )
    assert result.exit_code == 0, result.output
    channel = tmp_path / "nicobot-shop-chat" / "src" / "nicobot_shop_chat" / "channel.py"
    text = channel.read_text()
    assert 'name = "shop"' in text and 'label = "Shop Chat"' in text
    pyproject = (tmp_path / "nicobot-shop-chat" / "pyproject.toml").read_text()
    assert 'shop = "nicobot_shop_chat.plugin"' in pyproject


def test_the_new_plugin_has_every_file(tmp_path: Path) -> None:
    """That it installs from wheels in a fresh environment and passes its own tests is
    tests/test_wheels.py's job."""
    made = run(
        sys.executable, "-m", "nicobot", "plugin", "new", "nicobot-demo", "--yes", cwd=tmp_path
    )
    assert made.returncode == 0, made.stderr
    package = tmp_path / "nicobot-demo"
    assert f"Created the Demo channel plugin in {package}" in made.stdout
    for relative in (
        "pyproject.toml",
        "README.md",
        "src/nicobot_demo/__init__.py",
        "src/nicobot_demo/plugin.py",
        "src/nicobot_demo/channel.py",
        "src/nicobot_demo/py.typed",
        "tests/test_channel.py",
    ):
        assert (package / relative).is_file(), relative
    pyproject = (package / "pyproject.toml").read_text()
    assert 'dependencies = ["nicobot-framework>=' in pyproject
    assert '"nicobot>=' not in pyproject  # an unrelated project owns that name on PyPI
    assert "self.sent" not in (package / "src/nicobot_demo/channel.py").read_text()
