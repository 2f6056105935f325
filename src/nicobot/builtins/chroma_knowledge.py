"""The built-in knowledge plugin: a Chroma knowledge base, its CLI, API and admin tab.

Registered like any third-party plugin; importing it loads neither chromadb nor litellm.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..hookspecs import hookimpl
from ..i18n import add_catalogue_dir

if TYPE_CHECKING:
    import click
    import quart

    from ..admin import AdminTab
    from ..knowledge import KnowledgeBase

add_catalogue_dir(Path(__file__).resolve().parents[1] / "locale", domain="knowledge")


@hookimpl
def register_knowledge_bases() -> list[type[KnowledgeBase]]:
    from ..rag.chroma_store import ChromaKnowledgeBase

    return [ChromaKnowledgeBase]


@hookimpl
def register_commands(cli: click.Group) -> None:
    from ..rag.cli import knowledge

    cli.add_command(knowledge)


@hookimpl
def register_routes(app: quart.Quart) -> None:
    from ..rag.web import make_blueprint

    app.register_blueprint(make_blueprint())


@hookimpl
def register_admin_tabs() -> list[AdminTab]:
    from ..admin import AdminTab

    return [
        AdminTab(name="knowledge", label=_("Knowledge"), template="admin/knowledge.html", order=20)
    ]


def _(message: str) -> str:
    """Mark a tab label for the catalogues; the admin page translates it."""
    return message
