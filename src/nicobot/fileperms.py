"""Private files: what nicobot keeps (conversations, keys) is readable by its user only."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create ``path`` (and its missing parents) as 0700; tighten it if it exists."""
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):  # a folder owned by someone else stays as it is
        path.chmod(PRIVATE_DIR_MODE)
    return path


def make_private(path: Path) -> None:
    """Make an existing file 0600 (files made before nicobot tightened them)."""
    with contextlib.suppress(FileNotFoundError, PermissionError):
        path.chmod(PRIVATE_FILE_MODE)


def create_private_file(path: Path, text: str) -> bool:
    """Write ``text`` to a new file that is 0600 from its first byte and appears whole;
    False (and nothing written) when ``path`` already exists."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)  # fails, rather than replaces, when path exists
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(tmp)


def private_database(path: Path) -> None:
    """Before SQLite opens ``path``: its folder 0700, the file (made empty if new) and its
    journals 0600; SQLite creates a WAL with the database file's permissions."""
    private_dir(path.parent)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE_MODE))
    for suffix in ("", "-wal", "-shm", "-journal"):
        make_private(path.with_name(path.name + suffix))
