"""docs/plugins/tutorial.md works: its code blocks, put together, are a plugin that installs,
loads from its entry point and answers a webhook message through a real server."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from nicobot.testing import make_project, wait_until

DOCS = Path(__file__).resolve().parents[1] / "docs" / "plugins"
TUTORIAL = DOCS / "tutorial.md"
TESTING = DOCS / "testing.md"
BLOCK = re.compile(r"<!-- (tutorial|testing)-file: (\S+) -->\n```\w*\n(.*?)```\n", re.DOTALL)
SECRET = "tutorial-secret"


def tutorial_files(doc: Path = TUTORIAL) -> dict[str, str]:
    """Each file's blocks, in order: a block that starts indented continues the class
    above it (one blank line between), any other starts a new top-level part (two)."""
    files: dict[str, str] = {}
    for _kind, name, code in BLOCK.findall(doc.read_text(encoding="utf-8")):
        if name in files:
            files[name] += ("\n" if code.startswith(" ") else "\n\n") + code
        else:
            files[name] = code
    return files


class Receiver:
    """A real HTTP server that records the replies the plugin posts."""

    def __init__(self) -> None:
        self.received: list[Any] = []
        self.lock = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver.lock:
                    receiver.received.append(json.loads(body))
                    receiver.lock.notify_all()
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/replies"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Any]:
        with self.lock:
            if not self.lock.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(f"received {len(self.received)} replies, not {count}")
            return list(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def relay_site(tmp_path: Path) -> Path:
    """The tutorial's two files, installed into a folder that only these tests see."""
    if importlib.util.find_spec("hatchling") is None:
        pytest.fail("building the plugin offline needs hatchling: pip install 'nicobot[test]'")
    package = tmp_path / "nicobot-relay"
    package.mkdir()
    for name, text in tutorial_files().items():
        (package / name).write_text(text, encoding="utf-8")
    site = tmp_path / "site"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(site),
            str(package),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return site


def test_the_tutorial_has_exactly_its_two_files() -> None:
    files = tutorial_files()
    assert sorted(files) == ["nicobot_relay.py", "pyproject.toml"]
    assert 'relay = "nicobot_relay"' in files["pyproject.toml"]
    compile(files["nicobot_relay.py"], "nicobot_relay.py", "exec")


def test_the_tutorial_module_is_clean(tmp_path: Path) -> None:
    module = tmp_path / "nicobot_relay.py"
    module.write_text(tutorial_files()["nicobot_relay.py"], encoding="utf-8")
    config = str(TUTORIAL.parents[2] / "pyproject.toml")
    for args in (["check"], ["format", "--check", "--diff"]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *args, "--config", config, str(module)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_tutorial_plugin_answers_through_a_real_server(
    tmp_path: Path, relay_site: Path, receiver: Receiver, nicobot_server: Any
) -> None:
    env = {
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(relay_site), os.environ.get("PYTHONPATH")])
        ),
        "NICOBOT_LOAD_PLUGINS": "relay",
        "RELAY_SECRET": SECRET,
        "RELAY_REPLY_URL": receiver.url,
    }
    listed = subprocess.run(
        [sys.executable, "-m", "nicobot", "plugins", "--json"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    [relay] = [p for p in json.loads(listed.stdout) if p["name"] == "relay"]
    assert (relay["version"], relay["hooks"]) == ("0.1.0", ["register_channels"])

    server = nicobot_server(make_project(tmp_path / "mybot"), env)
    webhook = server.url + "/api/webhooks/relay"
    body = {"id": "msg-1", "from": "customer-42", "name": "Ana", "text": "When are you open?"}
    denied = httpx.post(webhook, json=body)
    assert denied.status_code == 401
    answer = httpx.post(webhook, json=body, headers={"X-Relay-Secret": SECRET})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"ok": True, "accepted": 1, "duplicates": 0}
    [reply] = receiver.wait_for(1)
    assert reply["to"] == "customer-42"
    assert reply["text"].strip()
    ignored = httpx.post(webhook, content=b"not json", headers={"X-Relay-Secret": SECRET})
    assert ignored.json() == {"ok": True, "ignored": "not a message"}

    with server.client() as admin:
        status = admin.get("/api/channels/relay/status").json()
        assert status["connected"] is True
        assert status["details"] == f"Replies go to {receiver.url}."
        sessions = wait_until(
            "the conversation",
            lambda: [
                s for s in admin.get("/api/sessions").json()["sessions"] if s["channel"] == "relay"
            ],
        )
    assert [(s["address"], s["sender_name"]) for s in sessions] == [("customer-42", "Ana")]


def test_the_testing_guides_example_passes(tmp_path: Path, relay_site: Path) -> None:
    [(name, code)] = tutorial_files(TESTING).items()
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / name).write_text(code, encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "asyncio_mode=auto",
            "-o",
            "asyncio_default_fixture_loop_scope=function",
            "--rootdir",
            str(tmp_path),
            str(tmp_path / "tests"),
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(relay_site), "NICOBOT_LOAD_PLUGINS": "relay"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "7 passed" in result.stdout, result.stdout
