"""The ``nicobot`` command line. Commands load lazily so that ``--help`` stays fast."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from ..version import __version__

BUILTIN_COMMANDS = {
    "init": ("nicobot.cli.init", "init"),
    "serve": ("nicobot.cli.serve", "serve"),
    "plugins": ("nicobot.cli.plugins", "plugins"),
    "sessions": ("nicobot.cli.sessions", "sessions"),
    "channels": ("nicobot.cli.channels", "channels"),
    "plugin": ("nicobot.cli.plugin_new", "plugin"),
}


class NicobotGroup(click.Group):
    """Built-in commands by module path; plugin commands from ``register_commands``."""

    _plugin_commands: dict[str, click.Command] | None = None

    def plugin_commands(self) -> dict[str, click.Command]:
        if self._plugin_commands is None:
            from ..plugins import plugin_commands

            self._plugin_commands = plugin_commands(set(BUILTIN_COMMANDS))
        return self._plugin_commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*BUILTIN_COMMANDS, *self.plugin_commands()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        plugin_commands = self.plugin_commands()  # conflicts stop every command, at once
        if cmd_name in BUILTIN_COMMANDS:
            module_name, attr = BUILTIN_COMMANDS[cmd_name]
            command: click.Command = getattr(importlib.import_module(module_name), attr)
            return command
        return plugin_commands.get(cmd_name)


@click.group(cls=NicobotGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nicobot")
def cli() -> None:
    """nicobot: an LLM assistant with a knowledge base on WhatsApp and other channels.

    Start with `nicobot init mybot`, then `cd mybot && nicobot serve`.
    """


def main(argv: list[str] | None = None) -> Any:
    """Run the CLI; errors are one line on stderr and a non-zero exit, never a traceback."""
    from ..errors import ConfigError, PluginError

    try:
        return cli.main(args=argv, prog_name="nicobot", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except (ConfigError, PluginError) as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("NICOBOT_DEBUG"):
            raise
        click.echo(
            f"Error: {type(exc).__name__}: {exc} (set NICOBOT_DEBUG=1 for details)", err=True
        )
        sys.exit(1)
