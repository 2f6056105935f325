"""``nicobot knowledge``: ingest, list, query, remove and re-index documents."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..cli.common import CONTEXT_SETTINGS, clip, echo_table, load_project, project_option

if TYPE_CHECKING:
    from .chroma_store import ChromaKnowledgeBase

T = TypeVar("T")
PROGRESS_MIN_FILES = 4
EMPTY = "The knowledge base is empty; add documents with `nicobot knowledge ingest`."


def empty_message(kb: ChromaKnowledgeBase) -> str:
    """What to tell a user who finds the knowledge base empty: documents may be waiting in
    the knowledge folder (a fresh `nicobot init`, before the first `nicobot serve`)."""
    from .ingest import visible_files
    from .readers import is_supported

    folder = kb.knowledge_dir
    waiting = [p for p in visible_files(folder) if is_supported(p)]  # none if no folder
    if not waiting:
        return EMPTY
    many = len(waiting) > 1
    count = f"{len(waiting)} document{'s' if many else ''}"
    return (
        f"The knowledge base is empty, but {folder.name}/ holds {count} not loaded yet: "
        f"load {'them' if many else 'it'} with `nicobot knowledge ingest` "
        "(`nicobot serve` also loads the folder when it starts)."
    )


def load_knowledge_base(project: Path) -> ChromaKnowledgeBase:
    """The project's Chroma knowledge base; a one-line ClickException on any problem."""
    import nicobot

    try:
        settings = load_project(project)
    except nicobot.ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    backend = settings.knowledge.backend
    if backend != "chroma":
        raise click.ClickException(
            f"knowledge.backend is {backend!r} in nicobot.toml; these commands manage the "
            "built-in 'chroma' knowledge base"
        )
    from .chroma_store import ChromaKnowledgeBase

    try:
        return ChromaKnowledgeBase.from_settings(settings)
    except nicobot.ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def run(kb: ChromaKnowledgeBase, work: Callable[[], Awaitable[T]]) -> T:
    """Connect (telling the user about a re-index), do ``work``, close; errors in one line."""
    from .embedders import EmbedderError
    from .lock import StoreBusy

    async def main() -> T:
        try:
            await kb.connect()
            if kb.reindexed is not None:
                click.echo(kb.reindexed.message(), err=True)
            return await work()
        finally:
            await kb.close()

    try:
        import asyncio

        return asyncio.run(main())
    except (EmbedderError, StoreBusy) as exc:
        raise click.ClickException(str(exc)) from None


@click.group("knowledge", context_settings=CONTEXT_SETTINGS)
def knowledge() -> None:
    """Manage the documents the bot answers from (the knowledge base)."""


@knowledge.command("ingest")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@project_option
@click.option("--force", is_flag=True, help="Embed every file again, even unchanged ones.")
def ingest(paths: tuple[Path, ...], project: Path, force: bool) -> None:
    """Add or update documents from files or folders.

    PATHS default to the project's knowledge/ folder. Unchanged files are skipped, and
    documents whose file was deleted from a folder are removed. Reads .md, .txt, .html
    and .pdf.
    """
    from .ingest import plan_ingest, run_plan

    kb = load_knowledge_base(project)
    targets = list(paths)
    if not targets:
        if not kb.knowledge_dir.is_dir():
            raise click.ClickException(
                f"no {kb.knowledge_dir} folder: create it and put documents in it, "
                "or name the files to ingest"
            )
        targets = [kb.knowledge_dir]

    async def work() -> tuple[Any, int]:
        plan = plan_ingest(kb, targets)
        if len(plan.files) < PROGRESS_MIN_FILES or not sys.stderr.isatty():
            report = await run_plan(kb, plan, force)
        else:
            with click.progressbar(
                length=len(plan.files),
                label="Ingesting",
                file=sys.stderr,
                item_show_func=lambda item: item,
            ) as bar:
                report = await run_plan(
                    kb, plan, force, on_file=lambda source: bar.update(1, source)
                )
        return report, await kb.count()

    report, total = run(kb, work)
    for source, problem in report.failed:
        click.echo(f"Error: {source}: {problem}", err=True)
    click.echo(f"Ingested: {report.summary()}. The knowledge base holds {total} chunks.")
    if report.failed:
        raise click.exceptions.Exit(1)


@knowledge.command("list")
@project_option
def list_documents(project: Path) -> None:
    """List the documents in the knowledge base."""
    kb = load_knowledge_base(project)

    async def work() -> list[Any]:
        return await kb.documents()

    documents = run(kb, work)
    if not documents:
        click.echo(empty_message(kb))
        return
    echo_table(
        [[d.source, d.chunks, (d.updated_at or "").replace("T", " ")[:16]] for d in documents],
        ["source", "chunks", "updated (UTC)"],
    )


@knowledge.command("query")
@click.argument("text", nargs=-1, required=True)
@project_option
@click.option("-k", "top_k", type=click.IntRange(1, 50), help="How many snippets (default: top_k).")
@click.option("--full", is_flag=True, help="Print whole chunks, not the first lines.")
def query(text: tuple[str, ...], project: Path, top_k: int | None, full: bool) -> None:
    """Show which chunks a question retrieves.

    Scores go from 0 to 1; chunks under [knowledge] min_score are not given to the bot.
    """
    import nicobot
    from nicobot.answer_kind import (
        stating_a_time_first,
        unused_reason,
        whole_asks_duration,
        whole_asks_price,
    )

    kb = load_knowledge_base(project)
    settings = nicobot.load_settings(project)
    question = " ".join(text).strip()
    if not question:
        raise click.ClickException("give a question to search for")
    k = top_k or settings.knowledge.top_k
    min_score = settings.knowledge.min_score

    spelled_out = settings.knowledge.search_text(question)
    searched = settings.knowledge.query_text(spelled_out, settings.bot.language)

    async def work() -> tuple[list[Any], bool]:
        found = await kb.search(searched, k)
        return found, not found and await kb.count() == 0  # counted only when needed

    snippets, empty = run(kb, work)
    if whole_asks_duration(spelled_out):
        snippets = stating_a_time_first(snippets)  # in the order the bot uses them
    if searched != question:
        click.echo(f"Searched as: {searched}")
    if not snippets:
        click.echo(empty_message(kb) if empty else "Nothing found.")
        return
    notes = {
        None: "",
        "min_score": f"  (under min_score {min_score}: not used)",
        "no_price": "  (states no price, and the question asks one: not used)",
    }
    price_asked = whole_asks_price(spelled_out)
    for snippet in snippets:
        where = snippet.source + (f" > {snippet.heading}" if snippet.heading else "")
        note = notes[unused_reason(snippet.score, min_score, price_asked, snippet.text)]
        click.echo(click.style(f"[{snippet.score:.3f}] {where}", bold=True) + note)
        body = snippet.text if full else clip(snippet.text, 300)
        click.echo(textwrap.indent(body, "    "))


@knowledge.command("remove")
@click.argument("source")
@project_option
def remove(source: str, project: Path) -> None:
    """Remove a document (SOURCE as `nicobot knowledge list` shows it)."""
    kb = load_knowledge_base(project)

    async def work() -> bool:
        name = source
        if name not in kb.manifest.entries and Path(name).is_file():  # noqa: ASYNC240
            name = kb.source_for(Path(name))
        return await kb.delete(name)

    if not run(kb, work):
        raise click.ClickException(f"no document {source!r}; see `nicobot knowledge list`")
    click.echo(f"Removed {source}.")
    inside = kb.knowledge_dir / source
    if inside.is_file():
        click.echo(
            f"Its file is still in {kb.knowledge_dir.name}/: delete it there too, or the next "
            "ingest adds it again.",
            err=True,
        )


@knowledge.command("reindex")
@project_option
def reindex(project: Path) -> None:
    """Embed every document again.

    Use it after changing chunk_size or chunk_overlap; a change of embedder re-indexes
    by itself.
    """
    from .ingest import ingest_paths

    kb = load_knowledge_base(project)

    async def work() -> Any:
        result = await kb.reindex()
        click.echo(result.message())
        if kb.knowledge_dir.is_dir():
            return await ingest_paths(kb, [kb.knowledge_dir])
        return None

    report = run(kb, work)
    if report is not None and report.changed:
        click.echo(f"Knowledge folder: {report.summary()}.")
    failed = [*(kb.reindexed.failed if kb.reindexed else []), *(report.failed if report else [])]
    for source, problem in failed:
        click.echo(f"Error: {source}: {problem}", err=True)
    if failed:
        raise click.exceptions.Exit(1)
