"""One process at a time per Chroma folder: Chroma's local store is not safe to share
between processes (a second writer leaves the first one's index unreadable)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; run one process at a time
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = "nicobot.lock"


class StoreBusy(RuntimeError):
    """Another process holds the knowledge store; the message says what to do."""


class ProcessLock:
    def __init__(self, folder: Path, name: str = LOCK_FILE) -> None:
        self.path = folder / name
        self._handle: IO[str] | None = None

    def acquire(self, wait: bool = False) -> None:
        """Take the lock, or raise :class:`StoreBusy`; with ``wait``, wait for it."""
        if self._handle is not None or fcntl is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise StoreBusy(
                f"the knowledge store {self.path.parent} is in use by {holder} (a running "
                "`nicobot serve`?): stop it first, or use the admin page's Knowledge tab"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            with contextlib.suppress(OSError):
                handle.truncate(0)
            handle.close()  # closing drops the lock
