"""``nicobot channels connect whatsapp`` against the fake gateway, as a real process: the QR
is redrawn when the gateway rotates it; the command ends on the scan, on the gateway's QR
limit, or on Ctrl-C."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from nicobot_whatsapp_evolution.testing import FakeGateway

from nicobot.testing import make_project

INSTANCE = "shop"
HEADING = "Scan this code with the phone"


class Connect:
    """The command running, its output read line by line in a thread."""

    def __init__(self, project: Path, gateway: FakeGateway) -> None:
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "EVOLUTION_API_URL": gateway.url,
            "EVOLUTION_API_KEY": gateway.api_key,
            "EVOLUTION_INSTANCE_NAME": INSTANCE,
            "EVOLUTION_WEBHOOK_SECRET": "connect-secret",
            "NICOBOT_PUBLIC_URL": "http://127.0.0.1:9",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "nicobot", "channels", "connect", "whatsapp"],
            cwd=project,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # a terminal's Ctrl-C works even when this run started with SIGINT ignored
            # (a background job), which Python would otherwise keep ignoring
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = 60) -> None:
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {text!r} in: {''.join(self.output)}") from None
            self.output.append(line)
            if text in line:
                return

    def finish(self) -> tuple[int, str, str]:
        code = self.process.wait(timeout=60)
        rest = self.process.stdout.read() if self.process.stdout else ""
        while not self.lines.empty():
            self.output.append(self.lines.get())
        stderr = self.process.stderr.read() if self.process.stderr else ""
        return code, "".join(self.output) + rest, stderr


@pytest.fixture
def gateway() -> Iterator[FakeGateway]:
    with FakeGateway(api_key="connect-key") as fake:
        yield fake


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "shop")


@pytest.fixture
def connect(project: Path, gateway: FakeGateway) -> Iterator[Connect]:
    command = Connect(project, gateway)
    yield command
    if command.process.poll() is None:
        command.process.kill()
        command.process.wait()


def test_the_qr_is_redrawn_when_it_rotates_and_the_scan_ends_it(connect, gateway):
    connect.wait_for("Code 1:")
    gateway.rotate_qr(INSTANCE)
    connect.wait_for("Code 2:")
    gateway.rotate_qr(INSTANCE)
    connect.wait_for("Code 3:")
    gateway.scan(INSTANCE)
    code, out, err = connect.finish()
    assert code == 0, err
    assert out.count(HEADING) == 3
    assert "WhatsApp connected." in out
    assert err == ""


def test_the_gateways_qr_limit_ends_it(connect, gateway):
    connect.wait_for("Code 1:")
    gateway.refuse(INSTANCE)
    code, _out, err = connect.finish()
    assert code == 1
    assert err.strip().splitlines() == [
        "Error: the code was not scanned in time (WhatsApp stopped offering new ones); "
        "run the command again for a new code"
    ]


def test_ctrl_c_ends_it_with_one_line(connect, gateway):
    connect.wait_for("Code 1:")
    connect.process.send_signal(signal.SIGINT)
    code, _out, err = connect.finish()
    assert code == 130
    assert err.strip().splitlines() == ["Stopped waiting; the channel is not connected yet."]
