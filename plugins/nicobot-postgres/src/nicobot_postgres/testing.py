"""A real PostgreSQL server for tests, loaded by pytest as the ``nicobot_postgres`` plugin.

Fixtures:

- ``postgres_server``: one private cluster for the test session (``initdb`` and
  ``pg_ctl`` from the PATH or ``/usr/lib/postgresql/*/bin``, or ``NICOBOT_PG_BIN``), on a
  free loopback port, in a temporary folder. As root it runs as the ``postgres`` user
  (or ``nobody``): PostgreSQL refuses to run as root. It fails, not skips, when it cannot
  start.
- ``postgres_url``: the URL of a fresh, empty database on that server, one per test.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["PostgresServer", "PostgresUnavailable", "find_pg_bin"]

SUPERUSER = "nicobot"


class PostgresUnavailable(RuntimeError):
    """The test server could not be started; the message says why."""


def find_pg_bin() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``."""
    configured = os.environ.get("NICOBOT_PG_BIN")
    candidates = [Path(configured)] if configured else []
    found = shutil.which("initdb")
    if found:
        candidates.append(Path(found).resolve().parent)
    installed = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for folder in [*candidates, *installed]:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    raise PostgresUnavailable(
        "PostgreSQL's server programs (initdb, pg_ctl) were not found: install them "
        "(Debian: apt-get install postgresql) or set NICOBOT_PG_BIN"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_user() -> str | None:
    """Who runs the server: None for ourselves; as root, ``postgres`` or ``nobody``."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise PostgresUnavailable("running as root, and there is no postgres or nobody user")


class PostgresServer:
    """A throwaway PostgreSQL cluster: ``start()``, ``create_database()``, ``stop()``."""

    def __init__(self) -> None:
        self.bin = find_pg_bin()
        self.user = _server_user()
        self.port = 0
        self.folder: Path | None = None
        self._names = itertools.count(1)

    @property
    def data(self) -> Path:
        assert self.folder is not None
        return self.folder / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        return subprocess.run(
            command, cwd="/", capture_output=True, text=True, timeout=120, check=False
        )

    def start(self) -> PostgresServer:
        self.folder = Path(tempfile.mkdtemp(prefix="nicobot-pg-"))
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        initdb = self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        if initdb.returncode != 0:
            self._give_up("initdb failed", initdb.stderr)
        self.port = _free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories='' "
            "-c fsync=off -c full_page_writes=off -c synchronous_commit=off "
            "-c max_connections=200"
        )
        log = self.folder / "postgres.log"
        started = self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(log), "-w", "-t", "60",
            "-o", options, "start",
        )  # fmt: skip
        if started.returncode != 0:
            detail = log.read_text(errors="replace") if log.exists() else started.stderr
            self._give_up(f"the server did not start on port {self.port}", detail)
        return self

    def _give_up(self, what: str, detail: str) -> None:
        tail = "\n".join(detail.strip().splitlines()[-15:])
        self.stop()
        raise PostgresUnavailable(f"PostgreSQL for the tests: {what} (as {self.user}):\n{tail}")

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = f"test_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.folder is None:
            return
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder = None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer().start()
    except PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    return postgres_server.create_database()
