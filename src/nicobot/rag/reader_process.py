"""Documents are read in a child process with a memory and time budget.

The child (``python -m nicobot.rag.reader_process``: a clean interpreter, whatever the
parent runs) is started once and reused; it limits its own address space, so a document
that would need more raises ``MemoryError`` there and is reported as unreadable, and one
that takes too long is abandoned by killing the child. A child that grew large is
replaced after the document, so its memory goes back to the system. Requests and answers
are pickled over its stdin and stdout.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from .chunking import Chunk
from .readers import UnreadableDocument, chunks_of

MB = 1024 * 1024
STARTUP_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class ReadLimits:
    memory_mb: int = 768  # beyond what the reader needs at rest
    seconds: float = 180.0
    recycle_mb: int = 256  # replace the child once it has grown past this


DEFAULT_LIMITS = ReadLimits()


def _limit_memory(budget_mb: int) -> None:
    import resource

    with open("/proc/self/status", encoding="ascii") as status:
        size_kb = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
    limit = size_kb * 1024 + budget_mb * MB
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))


def _peak_mb() -> int:
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)


def main() -> None:
    """The child: requests come on stdin; answers go out on what was stdout, which now
    points at stderr (so that nothing a library prints can garble them)."""
    answers = os.dup(1)
    os.dup2(2, 1)
    serve(Connection(0, writable=False), Connection(answers, readable=False), int(sys.argv[1]))


def serve(requests: Connection, answers: Connection, budget_mb: int) -> None:
    """Read what the parent asks, answer chunks or why not."""
    import pypdf  # noqa: F401  (loaded before the limit, so the budget is the document's)
    from lxml import html  # noqa: F401

    with contextlib.suppress(OSError, ValueError, StopIteration, ImportError):
        _limit_memory(budget_mb)
    answers.send(("ready", None, _peak_mb()))
    while True:
        try:
            path, max_chars, overlap = requests.recv()
        except EOFError:
            return
        try:
            answer: tuple[str, Any] = ("ok", chunks_of(Path(path), max_chars, overlap))
        except UnreadableDocument as exc:
            answer = ("unreadable", str(exc))
        except MemoryError:
            answer = ("unreadable", f"reading it needs more than {budget_mb} MB of memory")
        except RecursionError:
            answer = ("unreadable", "nested too deeply to read")
        except Exception as exc:  # a reader's bug: one line, and the next file goes on
            answer = ("unreadable", f"could not read it ({type(exc).__name__}: {exc})")
        answers.send((*answer, _peak_mb()))


class ReaderProcess:
    """One child reading one document at a time."""

    def __init__(self, limits: ReadLimits) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._requests: Connection | None = None
        self._answers: Connection | None = None

    def _start(self) -> tuple[Connection, Connection]:
        if self._process is None or self._process.poll() is not None:
            self._stop()
            process = subprocess.Popen(
                [sys.executable, "-m", __name__, str(self.limits.memory_mb)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                close_fds=True,
            )
            assert process.stdin is not None and process.stdout is not None
            self._requests = Connection(os.dup(process.stdin.fileno()), readable=False)
            self._answers = Connection(os.dup(process.stdout.fileno()), writable=False)
            process.stdin.close()
            process.stdout.close()
            self._process = process
            if not self._answers.poll(STARTUP_SECONDS) or self._answers.recv()[0] != "ready":
                self._stop()
                raise UnreadableDocument("the document reader did not start")
        assert self._requests is not None and self._answers is not None
        return self._requests, self._answers

    def _stop(self) -> None:
        process, self._process = self._process, None
        for connection in (self._requests, self._answers):
            if connection is not None:
                connection.close()
        self._requests = self._answers = None
        if process is not None:
            process.kill()
            process.wait(10)

    def read(self, path: Path, max_chars: int, overlap: int) -> list[Chunk]:
        with self._lock:
            requests, connection = self._start()
            try:
                requests.send((str(path), max_chars, overlap))
                if not connection.poll(self.limits.seconds):
                    self._stop()
                    raise UnreadableDocument(
                        f"reading it took longer than {self.limits.seconds:g} s; "
                        "split it into smaller files"
                    )
                kind, value, peak_mb = connection.recv()
            except (EOFError, OSError, BrokenPipeError):
                self._stop()
                raise UnreadableDocument(
                    "the reader stopped while reading it (out of memory?)"
                ) from None
            if peak_mb > self.limits.recycle_mb or kind != "ok":
                self._stop()
        if kind != "ok":
            raise UnreadableDocument(value)
        chunks: list[Chunk] = value
        return chunks

    def close(self) -> None:
        with self._lock:
            self._stop()


_readers: dict[ReadLimits, ReaderProcess] = {}
_readers_lock = threading.Lock()


def read_in_reader_process(
    path: Path, max_chars: int, overlap: int, limits: ReadLimits | None = None
) -> list[Chunk]:
    limits = limits or DEFAULT_LIMITS
    with _readers_lock:
        reader = _readers.get(limits)
        if reader is None:
            reader = _readers[limits] = ReaderProcess(limits)
    return reader.read(path, max_chars, overlap)


if __name__ == "__main__":
    main()
