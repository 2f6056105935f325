"""The built wheels (not the source tree) install and work: init, plugins, a simulator chat;
and a plugin made with ``nicobot plugin new`` installs next to nicobot-framework's wheel in a
fresh virtual environment, with no ``nicobot`` from the package index, and passes its tests."""

from __future__ import annotations

import os
import re
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
UV = Path(sys.executable).with_name("uv")


def build_wheels(out: Path, *packages: Path) -> list[Path]:
    """Wheels of ``packages``, built offline with this environment's hatchling."""
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
            *map(str, packages),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return sorted(out.glob("*.whl"))


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return build_wheels(tmp_path_factory.mktemp("wheels"), *PACKAGES)


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
    assert names == {"nicobot_framework", "nicobot_whatsapp_evolution", "nicobot_telegram"}
    [core] = [w for w in wheels if w.name.startswith("nicobot_framework-")]
    files = set(zipfile.ZipFile(core).namelist())
    for expected in (
        "nicobot/templates/chat.html",
        "nicobot/templates/admin/channels.html",
        "nicobot/static/nicobot.js",
        "nicobot/locale/es/LC_MESSAGES/messages.po",
        "nicobot/channel_plugins.json",
        "nicobot/py.typed",
    ):
        assert expected in files, expected
    for wheel in wheels:  # every plugin depends on the publishable name, never on `nicobot`
        metadata = next(n for n in zipfile.ZipFile(wheel).namelist() if n.endswith("/METADATA"))
        requires = [
            line.split(":", 1)[1].strip()
            for line in zipfile.ZipFile(wheel).read(metadata).decode().splitlines()
            if line.startswith("Requires-Dist:")
        ]
        assert not [r for r in requires if re.match(r"nicobot\b(?!-)", r)], wheel.name


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


def requirements(wheel: Path, extras: tuple[str, ...] = ()) -> list[str]:
    """The wheel's Requires-Dist lines, with those of ``extras``, markers resolved."""
    from packaging.requirements import Requirement

    metadata = next(n for n in zipfile.ZipFile(wheel).namelist() if n.endswith("/METADATA"))
    lines = zipfile.ZipFile(wheel).read(metadata).decode().splitlines()
    wanted = []
    for line in lines:
        if not line.startswith("Requires-Dist:"):
            continue
        requirement = Requirement(line.split(":", 1)[1].strip())
        environments = [{"extra": e} for e in ("", *extras)]
        if requirement.marker is None or any(requirement.marker.evaluate(e) for e in environments):
            requirement.marker = None
            wanted.append(str(requirement))
    return wanted


def test_a_scaffolded_plugin_installs_from_wheels_in_a_fresh_venv(tmp_path):
    """nicobot-framework and the new plugin come from wheels built here (``--no-index``);
    only their third-party dependencies come from the package index (through uv's cache)."""
    made = subprocess.run(
        [sys.executable, "-m", "nicobot", "plugin", "new", "nicobot-demo", "--yes"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    plugin = tmp_path / "nicobot-demo"
    found = build_wheels(tmp_path / "wheels", ROOT, plugin)
    [core] = [w for w in found if w.name.startswith("nicobot_framework-")]

    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "NICOBOT_"))}
    env["VIRTUAL_ENV"] = str(venv)

    def uv(*args: str) -> None:
        result = subprocess.run(
            [str(UV), *args], env=env, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, result.stderr

    uv("venv", "-q", "--python", sys.executable, str(venv))
    # third-party dependencies only: nicobot-framework is not on the index
    uv("pip", "install", "-q", "--python", str(python), *requirements(core, ("testing",)))
    uv(
        "pip",
        "install",
        "-q",
        "--python",
        str(python),
        "--no-index",
        "--find-links",
        str(tmp_path / "wheels"),
        "nicobot-framework[testing]",
        "nicobot-demo[test]",
    )

    def run_in_venv(*args: str, cwd: Path = tmp_path) -> str:
        result = subprocess.run(
            [str(python), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    where = run_in_venv(
        "-c",
        "import importlib.metadata as m, nicobot; print(nicobot.__file__); "
        "print(sorted(d.metadata['Name'] for d in m.distributions() if "
        "d.metadata['Name'].startswith('nicobot')))",
    ).splitlines()
    assert where[0].startswith(str(venv)), "nicobot is imported from the fresh venv"
    assert where[1] == "['nicobot-demo', 'nicobot-framework']"  # and no `nicobot`
    listed = run_in_venv("-m", "nicobot", "plugins", "--json")
    assert '"name": "demo"' in listed
    tested = run_in_venv("-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=plugin)
    assert "3 passed" in tested
