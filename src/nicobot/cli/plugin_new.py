"""``nicobot plugin new NAME``: start a channel plugin package."""

from __future__ import annotations

from pathlib import Path

import click

from .common import CONTEXT_SETTINGS


@click.group(context_settings=CONTEXT_SETTINGS)
def plugin() -> None:
    """Tools for plugin authors."""


@plugin.command("new")
@click.argument("name")
@click.option(
    "--directory",
    "-d",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    help="Where to create the package's folder.",
)
@click.option("--channel-name", help="The channel's name (default: NAME without nicobot-).")
@click.option("--label", help="The channel's label on the pages (default: from the name).")
@click.option("--yes", "-y", is_flag=True, help="Use the defaults; never prompt.")
def new(name: str, directory: Path, channel_name: str | None, label: str | None, yes: bool) -> None:
    """Create a working channel plugin package NAME (like nicobot-instagram or instagram):
    pyproject.toml with the `nicobot` entry point, the channel, tests and a README."""
    from ..scaffold_plugin import plugin_names, write_plugin

    try:
        names = plugin_names(name, channel_name, label)
        if not yes:
            if channel_name is None:
                channel_name = click.prompt("Channel name", default=names.channel)
            if label is None:
                label = click.prompt("Channel label", default=names.label)
            names = plugin_names(name, channel_name, label)
        target = write_plugin(directory.resolve(), names)
    except (ValueError, FileExistsError) as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot write the plugin: {exc}") from None
    click.echo(f"Created the {names.label} channel plugin in {target}:")
    for path in sorted(p for p in target.rglob("*") if p.is_file()):
        click.echo(f"  {path.relative_to(target)}")
    click.echo("")
    click.echo("Next:")
    click.echo(f"  cd {target}")
    click.echo("  pip install -e '.[test]'")
    click.echo(f"  nicobot plugins        # lists {names.channel}")
    click.echo("  pytest")
