"""register_commands: a plugin's command runs; a name already taken stops the CLI, naming both."""

from __future__ import annotations

from hook_support import install_plugin, nicobot

HELLO = """
import click
from nicobot import hookimpl


@click.command("{name}")
def hello():
    click.echo("hello from a plugin")


@hookimpl
def register_commands(cli):
    cli.add_command(hello)
"""


def test_hook_register_commands(tmp_path):
    env = install_plugin(tmp_path / "site", "greeter", HELLO.format(name="hello"))
    result = nicobot(env, "hello")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello from a plugin\n"
    assert "hello" in nicobot(env, "--help").stdout


def test_a_command_name_taken_by_nicobot_is_refused(tmp_path):
    env = install_plugin(tmp_path / "site", "greeter", HELLO.format(name="serve"))
    result = nicobot(env, "plugins")
    assert result.returncode == 1
    assert result.stderr == "Error: command 'serve' is provided by both 'nicobot' and 'greeter'\n"
