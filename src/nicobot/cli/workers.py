"""``nicobot serve --workers N``: N server processes on one port, sharing the store.

uvicorn's supervisor starts the workers (each a whole nicobot: webhooks, pipeline, LLM
process), restarts one that dies, and stops them all on Ctrl-C or SIGTERM; a worker that
cannot start while others serve is started again later (:func:`worker_supervisor`).
Everything they share goes through the environment, set here before they start: the project, the
address, one admin password, and the Chroma server that this process starts for them
(``chroma run`` on the project's ``data/chroma``, holding its lock so that no other
process opens that folder meanwhile), unless ``[knowledge] chroma_url`` names one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from quart import Quart

    from ..config import Settings

PROJECT_ENV = "NICOBOT_WORKER_PROJECT"
LOG_LEVEL_ENV = "NICOBOT_WORKER_LOG_LEVEL"
CHROMA_URL_ENV = "NICOBOT_KNOWLEDGE__CHROMA_URL"
CHROMA_START_SECONDS = 30.0
GIL_SWITCH_SECONDS = 0.001
#: The longest wait before starting again a worker that could not start.
RESTART_MAX_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def worker_app() -> Quart:
    """The app of one worker process (uvicorn's factory, imported in each worker). A
    config that no longer loads (edited since the start) is one log line and uvicorn's
    start-up failure, which :func:`worker_supervisor` retries later."""
    from uvicorn.config import STARTUP_FAILURE

    from .. import redact
    from ..app import create_app
    from ..config import ConfigError, load_settings
    from ..logs import configure as configure_logging

    configure_logging(os.environ.get(LOG_LEVEL_ENV, "info"))
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    try:
        settings = load_settings(Path(os.environ[PROJECT_ENV]))
        app = create_app(settings)
    except ConfigError as exc:
        logging.getLogger("nicobot").error("this worker cannot start: %s", exc)
        sys.exit(STARTUP_FAILURE)
    redact.install(
        redact.secrets_in(
            settings.env, [app.config["NICOBOT_ADMIN_PASSWORD"], str(app.config["SECRET_KEY"])]
        )
    )
    return app


class ChromaServer:
    """``chroma run`` on a project's Chroma folder, on a free loopback port."""

    def __init__(self, folder: Path) -> None:
        from ..rag.lock import ProcessLock

        self.folder = folder
        self.lock = ProcessLock(folder)
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> ChromaServer:
        self.lock.acquire()  # StoreBusy if a `nicobot serve` or an ingest has the folder
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        log = (self.folder / "chroma-server.log").open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from chromadb.cli.cli import app; sys.exit(app())",
                "run",
                "--path",
                str(self.folder),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
        )
        log.close()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        import httpx

        deadline = time.monotonic() + CHROMA_START_SECONDS
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                break
            try:
                if httpx.get(f"{self.url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise click.ClickException(
            f"the Chroma server for {self.folder} did not start; see "
            f"{self.folder / 'chroma-server.log'}"
        )

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.lock.release()


def worker_supervisor() -> type:
    """uvicorn's supervisor, except for a worker that fails to start (its app's start-up
    failed: the store or the Chroma server did not answer in time, a config file being
    edited) while other workers serve. uvicorn then stops every worker, and the whole
    service is down until someone starts it again; this one keeps the others serving and
    starts that worker again after 1, 2, 4... up to RESTART_MAX_SECONDS. When no worker
    serves, a start-up failure stops them all, as in uvicorn (a broken config fails at once).
    """
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors.multiprocess import Multiprocess, Process, logger

    class WorkerSupervisor(Multiprocess):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.retry_at: dict[int, float] = {}
            self.failures: dict[int, int] = {}

        def keep_subprocess_alive(self) -> None:
            if self.should_exit.is_set():
                return
            for index, process in enumerate(self.processes):
                if index in self.retry_at:
                    if time.monotonic() >= self.retry_at[index]:
                        del self.retry_at[index]
                        self.start_worker(index)
                    continue
                if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                    if index in self.failures and process.is_ready(timeout=1):
                        del self.failures[index]  # it started this time
                    continue
                process.kill()
                process.join()
                if self.should_exit.is_set():
                    return
                if process.exitcode == STARTUP_FAILURE and not self.others_serve(index):
                    logger.error(f"Child process [{process.pid}] failed to start, stopping.")
                    self.should_exit.set()
                    return
                if process.exitcode == STARTUP_FAILURE:
                    failures = self.failures[index] = self.failures.get(index, 0) + 1
                    delay = min(RESTART_MAX_SECONDS, 2.0 ** (failures - 1))
                    logger.warning(
                        f"Child process [{process.pid}] could not start; the other workers "
                        f"serve; starting it again in {delay:.0f} s"
                    )
                    self.retry_at[index] = time.monotonic() + delay
                    continue
                logger.info(f"Child process [{process.pid}] died")
                self.start_worker(index)

        def others_serve(self, index: int) -> bool:
            return any(
                other != index and other not in self.retry_at and process.process.is_alive()
                for other, process in enumerate(self.processes)
            )

        def start_worker(self, index: int) -> None:
            process = Process(self.config, self.sockets)
            process.start()
            self.processes[index] = process

    return WorkerSupervisor


def needs_chroma_server(settings: Settings) -> bool:
    extra: dict[str, Any] = dict(settings.knowledge.model_extra or {})
    return settings.knowledge.backend == "chroma" and not extra.get("chroma_url")


def serve_workers(settings: Settings, workers: int, log_level: str, **uvicorn: Any) -> None:
    """Run ``workers`` processes of this project's app on the configured address."""
    import uvicorn as server

    from ..rag.lock import StoreBusy
    from ..rag.options import CHROMA_DIR

    host, port = settings.server.host, settings.server.port
    os.environ.update(
        {
            PROJECT_ENV: str(settings.project_dir),
            LOG_LEVEL_ENV: log_level,
            "NICOBOT_HOST": host,
            "NICOBOT_PORT": str(port),
        }
    )
    if not settings.admin_password:
        password = secrets.token_urlsafe(12)
        os.environ["NICOBOT_ADMIN_PASSWORD"] = password
        click.echo(f"  no NICOBOT_ADMIN_PASSWORD set; temporary admin password: {password}")
    chroma: ChromaServer | None = None
    if needs_chroma_server(settings):
        try:
            chroma = ChromaServer(settings.data_path / CHROMA_DIR).start()
        except StoreBusy as exc:
            raise click.ClickException(str(exc)) from None
        os.environ[CHROMA_URL_ENV] = chroma.url
        click.echo(f"  knowledge: Chroma server at {chroma.url} for {workers} workers")
    click.echo(f"  {workers} workers")
    try:
        config = server.Config(
            f"{__name__}:worker_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            **uvicorn,
        )
        with contextlib.suppress(KeyboardInterrupt):
            worker_supervisor()(config, sockets=[config.bind_socket()]).run()
    finally:
        if chroma is not None:
            chroma.stop()
