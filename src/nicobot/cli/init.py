"""``nicobot init``: scaffold a project."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .common import CONTEXT_SETTINGS

NO_ANSWERS = (
    "the questions got no answer (standard input is not a terminal); pass --yes to use "
    "the defaults, or --name, --business and --language"
)


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--yes", "-y", is_flag=True, help="Use the defaults; never prompt.")
@click.option("--name", help="The assistant's name.")
@click.option("--business", help="The business it serves.")
@click.option("--language", type=click.Choice(["en", "es"]), help="Pages and canned replies.")
@click.option("--force", is_flag=True, help="Overwrite an existing nicobot.toml.")
def init(
    directory: Path,
    yes: bool,
    name: str | None,
    business: str | None,
    language: str | None,
    force: bool,
) -> None:
    """Create a bot project in DIRECTORY: nicobot.toml, .env, knowledge/ and .gitignore."""
    import secrets

    from ..scaffold import write_project

    target = directory.resolve()
    if (target / "nicobot.toml").exists() and not force:
        raise click.ClickException(
            f"{target / 'nicobot.toml'} already exists; use --force to overwrite it"
        )
    if not yes:
        try:
            name = name or click.prompt("Assistant name", default="Nico")
            business = business or click.prompt("Business name", default="our business")
            language = language or click.prompt(
                "Language (en/es)", default="en", type=click.Choice(["en", "es"])
            )
        except click.Abort:
            if sys.stdin.isatty():
                raise
            raise click.ClickException(NO_ANSWERS) from None
    password = secrets.token_urlsafe(18)
    written = write_project(
        target,
        name=name or "Nico",
        business=business or "our business",
        language=language or "en",
        admin_password=password,
    )
    click.echo(f"Created a nicobot project in {target}:")
    for path in written:
        click.echo(f"  {path.relative_to(target)}")
    click.echo("")
    click.echo(f"The admin password is NICOBOT_ADMIN_PASSWORD in {target / '.env'}.")
    click.echo("Next:")
    if target != Path.cwd():
        click.echo(f"  cd {directory}")
    click.echo("  nicobot serve            # then open http://127.0.0.1:7070")
    click.echo("Answers come from knowledge/ until you set [llm] model in nicobot.toml.")
