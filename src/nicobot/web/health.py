"""Readiness checks beyond the store answering."""

from __future__ import annotations

import shutil
from pathlib import Path

MB = 1024 * 1024


def low_disk(folder: Path, min_free_mb: int) -> str | None:
    """Why ``folder``'s disk is too full to take messages, or None when it is not."""
    if min_free_mb <= 0:
        return None
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is None:
        return None
    free_mb = shutil.disk_usage(existing).free // MB
    if free_mb >= min_free_mb:
        return None
    return (
        f"only {free_mb} MB free on the disk of the data folder {folder} "
        f"(server.min_free_disk_mb is {min_free_mb}): free some space"
    )
