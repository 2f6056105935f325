"""What the knowledge base holds: one entry per source, with its file's content hash.

Kept as JSON beside the Chroma files, written atomically. It lets an ingest skip unchanged
files and lets a change of embedder rebuild the collection from the files themselves.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

VERSION = 1


@dataclass(slots=True)
class Entry:
    path: str  # relative to the project directory when inside it, else absolute
    sha256: str
    chunks: int
    updated_at: str


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


class Manifest:
    def __init__(self, path: Path, project_dir: Path) -> None:
        self.path = path
        self.project_dir = project_dir
        self.entries: dict[str, Entry] = {}
        self.embedder: str | None = None

    def load(self) -> Manifest:
        self.entries, self.embedder = {}, None
        try:
            data: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return self
        except (OSError, ValueError):
            data = {}  # unreadable: start over; the next ingest rebuilds it
        self.embedder = data.get("embedder")
        for source, raw in (data.get("documents") or {}).items():
            try:
                self.entries[source] = Entry(**raw)
            except TypeError:
                continue
        return self

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "version": VERSION,
            "embedder": self.embedder,
            "documents": {s: asdict(e) for s, e in sorted(self.entries.items())},
        }
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".manifest-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, ensure_ascii=False, indent=1)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def stored_path(self, path: Path) -> str:
        resolved = path.resolve()
        try:
            return resolved.relative_to(self.project_dir).as_posix()
        except ValueError:
            return str(resolved)

    def resolve(self, stored: str) -> Path:
        path = Path(stored)
        return path if path.is_absolute() else self.project_dir / path

    def file_of(self, source: str) -> Path:
        return self.resolve(self.entries[source].path)
