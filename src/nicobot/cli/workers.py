"""``nicobot serve --workers N``: N server processes on one port, sharing the store.

uvicorn's supervisor starts the workers (each a whole nicobot: webhooks, pipeline, LLM
process), restarts one that dies, and stops them all on Ctrl-C or SIGTERM. Everything
they share goes through the environment, set here before they start: the project, the
address, one admin password, and the Chroma server that this process starts for them
(``chroma run`` on the project's ``data/chroma``, holding its lock so that no other
process opens that folder meanwhile), unless ``[knowledge] chroma_url`` names one.
"""

from __future__ import annotations

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def worker_app() -> Quart:
    """The app of one worker process (uvicorn's factory, imported in each worker)."""
    from .. import redact
    from ..app import create_app
    from ..config import load_settings
    from ..logs import configure as configure_logging

    configure_logging(os.environ.get(LOG_LEVEL_ENV, "info"))
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    settings = load_settings(Path(os.environ[PROJECT_ENV]))
    app = create_app(settings)
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
        server.run(
            f"{__name__}:worker_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            **uvicorn,
        )
    finally:
        if chroma is not None:
            chroma.stop()
