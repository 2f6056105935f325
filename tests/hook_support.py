"""Helpers for the hook tests: a recording plugin, webhooks to the fake channel, and
plugins installed as real entry points for the command line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from nicobot import IncomingMessage, Store
from nicobot.testing import FAKE_SECRET

HEADERS = {"Authorization": "", "X-Fake-Secret": FAKE_SECRET}


async def deliver(client: Any, message_id: str, address: str, text: str, **extra: Any) -> Any:
    response = await client.post(
        "/api/webhooks/fake",
        json={"id": message_id, "address": address, "text": text, **extra},
        headers=HEADERS,
    )
    assert response.status_code == 200
    return await response.get_json()


DEAD_WORKER = f"{socket.gethostname()}:999999999:dead"


async def answered_by_a_dead_worker(
    store: Store, address: str, message_id: str, reply: str, parts: list[str]
) -> None:
    """A customer message that a worker of this host, now dead, answered: the reply and
    its outbox parts are stored, the worker never sent them (it held nothing else)."""
    await store.enqueue(
        IncomingMessage(channel="fake", address=address, text="hola", message_id=message_id),
        debounce=0,
        max_wait=0,
    )
    [turn] = await store.claim_turns(DEAD_WORKER, 1, lease=3600)
    await store.complete_turn(turn, reply, {}, parts)


def install_plugin(site: Path, name: str, source: str) -> dict[str, str]:
    """Write module ``{name}_plugin`` and a ``.dist-info`` with its ``nicobot`` entry point
    into ``site``; return the environment that makes nicobot load it (and only it)."""
    site.mkdir(parents=True, exist_ok=True)
    module = f"{name}_plugin"
    (site / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = site / f"{module}-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1.0\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(f"[nicobot]\n{name} = {module}\n", encoding="utf-8")
    return {"PYTHONPATH": str(site), "NICOBOT_LOAD_PLUGINS": name}


def nicobot(env: dict[str, str], *args: str, cwd: Path | None = None) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "nicobot", *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
