"""Incremental ingestion of files and folders into a knowledge base.

Unchanged files (same content hash) are skipped, changed ones replaced, and documents
whose file was deleted from a scanned folder are removed. One unreadable file is reported
and the others go on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .readers import UnreadableDocument, is_supported

if TYPE_CHECKING:
    from .chroma_store import ChromaKnowledgeBase


@dataclass(slots=True)
class Plan:
    files: list[tuple[Path, str]] = field(default_factory=list)  # (path, source)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (name, why)
    skipped: list[str] = field(default_factory=list)  # unsupported files inside folders
    stale: list[str] = field(default_factory=list)  # sources whose file left a folder


@dataclass(slots=True)
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    chunks: int = 0  # chunks written by this run

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    def summary(self) -> str:
        text = (
            f"{len(self.added)} added, {len(self.updated)} updated, "
            f"{len(self.unchanged)} unchanged, {len(self.removed)} removed, "
            f"{len(self.failed)} failed; {self.chunks} chunks written"
        )
        if self.skipped:
            text += f"; {len(self.skipped)} skipped (not .md, .txt, .html or .pdf)"
        return text

    def to_dict(self) -> dict[str, object]:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "failed": [{"source": s, "error": e} for s, e in self.failed],
            "skipped": self.skipped,
            "chunks": self.chunks,
        }


def visible_files(folder: Path) -> Iterable[Path]:
    """The files under ``folder`` that ingest reads: none hidden (``.obsidian/``) or
    temporary (``~$notes.docx``)."""
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).parts
        if path.is_file() and not any(part.startswith((".", "~")) for part in relative):
            yield path


def plan_ingest(kb: ChromaKnowledgeBase, paths: Iterable[Path]) -> Plan:
    """Which files to ingest, and which known documents vanished from the given folders."""
    plan = Plan()
    seen: set[str] = set()
    folders: list[Path] = []
    for given in paths:
        if given.is_dir():
            folders.append(given.resolve())
            for path in visible_files(given):
                if is_supported(path):
                    source = kb.source_for(path)
                    if source not in seen:
                        seen.add(source)
                        plan.files.append((path, source))
                else:
                    plan.skipped.append(kb.source_for(path))
        elif given.is_file():
            source = kb.source_for(given)
            if not is_supported(given):
                plan.problems.append(
                    (source, "unsupported file type (use .md, .txt, .html or .pdf)")
                )
            elif source not in seen:
                seen.add(source)
                plan.files.append((given, source))
        else:
            plan.problems.append((str(given), "no such file or folder"))
    for source in sorted(kb.manifest.entries):
        if source in seen:
            continue
        file = kb.manifest.file_of(source).resolve()
        if any(file.is_relative_to(folder) for folder in folders) and not file.is_file():
            plan.stale.append(source)
    return plan


async def run_plan(
    kb: ChromaKnowledgeBase,
    plan: Plan,
    force: bool = False,
    on_file: Callable[[str], None] | None = None,
) -> IngestReport:
    from .chroma_store import FILES_PER_WRITE

    report = IngestReport(failed=list(plan.problems), skipped=list(plan.skipped))
    for start in range(0, len(plan.files), FILES_PER_WRITE):
        batch = plan.files[start : start + FILES_PER_WRITE]
        results = await kb.ingest_files(batch, force=force)
        for (_path, source), result in zip(batch, results, strict=True):
            if isinstance(result, UnreadableDocument):
                report.failed.append((source, str(result)))
            else:
                getattr(report, result.status).append(source)
                if result.status != "unchanged":
                    report.chunks += result.chunks
            if on_file is not None:
                on_file(source)
    for source in plan.stale:
        if await kb.delete(source):
            report.removed.append(source)
    return report


async def ingest_paths(
    kb: ChromaKnowledgeBase, paths: Iterable[Path], force: bool = False
) -> IngestReport:
    await kb.connect()
    return await run_plan(kb, plan_ingest(kb, paths), force)
