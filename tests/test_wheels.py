"""The built wheels (not the source tree) install and work: init, plugins, a simulator chat."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from nicobot.testing import ServerProcess

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = [
    ROOT,
    ROOT / "plugins" / "nicobot-whatsapp-evolution",
    ROOT / "plugins" / "nicobot-telegram",
]


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("wheels")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            *map(str, PACKAGES),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return sorted(out.glob("*.whl"))


@pytest.fixture(scope="module")
def installed(wheels: list[Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The wheels in a folder of their own, first on the path; dependencies from this venv."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            *map(str, wheels),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return {**os.environ, "PYTHONPATH": str(target)}


def run(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "nicobot", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_wheels_carry_pages_catalogues_and_plugins(wheels):
    names = {w.name.split("-")[0] for w in wheels}
    assert names == {"nicobot", "nicobot_whatsapp_evolution", "nicobot_telegram"}
    [core] = [w for w in wheels if w.name.startswith("nicobot-")]
    files = set(zipfile.ZipFile(core).namelist())
    for expected in (
        "nicobot/templates/chat.html",
        "nicobot/templates/admin/channels.html",
        "nicobot/static/nicobot.js",
        "nicobot/locale/es/LC_MESSAGES/messages.po",
        "nicobot/py.typed",
    ):
        assert expected in files, expected


def test_installed_wheels_init_list_plugins_and_chat(installed, tmp_path):
    location = subprocess.run(
        [sys.executable, "-c", "import nicobot; print(nicobot.__file__)"],
        env=installed,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert location.startswith(installed["PYTHONPATH"]), "the wheel, not the checkout, is used"
    project = tmp_path / "fromwheel"
    run(installed, "init", str(project), "--yes")
    plugins = run(installed, "plugins")
    assert "whatsapp" in plugins and "telegram" in plugins
    server = ServerProcess(project, {"PYTHONPATH": installed["PYTHONPATH"]}).start()
    try:
        with server.client() as client:
            page = client.get("/admin?tab=channels")
            assert page.status_code == 200 and 'data-channel="whatsapp"' in page.text
            turn = client.post(
                "/api/chat", json={"phone_number": "5491100000001", "message": "opening hours?"}
            ).json()
        assert "Monday to Friday" in turn["reply"]
    finally:
        server.stop()
