"""Run ``nicobot serve`` as a real process on a free port, for end-to-end tests."""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TypeVar

import httpx

from ..config import read_env_file

T = TypeVar("T")


def wait_until(what: str, check: Callable[[], T | None], timeout: float = 60.0) -> T:
    """Poll ``check`` every 50 ms until it returns something truthy; fail after ``timeout``
    seconds, saying ``what`` was awaited. For plain (sync) tests: it sleeps, so inside a
    running event loop it refuses; ``await until(...)`` is its async twin."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("wait_until would block the event loop: use `await until(...)`")
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


async def until(
    what: str, check: Callable[[], T | Awaitable[T | None] | None], seconds: float = 10.0
) -> T:
    """In an async test: await ``check`` (sync or async) every 20 ms until it returns
    something truthy, letting the bot run meanwhile; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")
        await asyncio.sleep(0.02)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    """A ``nicobot serve`` child process; ``start()`` returns once ``/healthz`` answers."""

    def __init__(
        self, project: Path, env: Mapping[str, str] | None = None, port: int | None = None
    ) -> None:
        self.project = Path(project)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_env = dict(env or {})
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.project / "server.log"

    @property
    def password(self) -> str:
        return read_env_file(self.project / ".env")["NICOBOT_ADMIN_PASSWORD"]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.password}"}

    def client(self, timeout: float = 30.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=timeout)

    def start(self, timeout: float = 30.0) -> ServerProcess:
        env = {**os.environ, **self.extra_env}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "nicobot",
                "serve",
                "--project",
                str(self.project),
                "--port",
                str(self.port),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nicobot serve exited early:\n{self.log()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nicobot serve did not answer /healthz in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        return code

    def kill(self) -> None:
        self.stop(signal.SIGKILL)
