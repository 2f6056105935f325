"""``nicobot plugins``: what is installed."""

from __future__ import annotations

import json

import click

from .common import CONTEXT_SETTINGS, echo_table


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins(as_json: bool) -> None:
    """List the plugins nicobot loads, their versions and the hooks they implement."""
    from ..plugins import describe_plugins, make_plugin_manager
    from ..version import __version__

    infos = describe_plugins(make_plugin_manager())
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "name": i.name,
                        "version": i.version or __version__,
                        "builtin": i.builtin,
                        "hooks": list(i.hooks),
                    }
                    for i in infos
                ],
                indent=2,
            )
        )
        return
    echo_table(
        [
            [
                i.name,
                i.version or __version__,
                "built-in" if i.builtin else "installed",
                ", ".join(i.hooks),
            ]
            for i in infos
        ],
        ["plugin", "version", "kind", "provides"],
    )
