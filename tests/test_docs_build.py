"""The documentation site builds with ``mkdocs build --strict``, and the generated command
reference (docs/cli.md) is up to date."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_cli_reference_is_up_to_date():
    spec = importlib.util.spec_from_file_location("gen_cli", ROOT / "docs" / "gen_cli.py")
    assert spec is not None and spec.loader is not None
    gen_cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen_cli)
    committed = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert committed == gen_cli.render(), "docs/cli.md is out of date: run python docs/gen_cli.py"


def test_openapi_reference_is_up_to_date():
    spec = importlib.util.spec_from_file_location("gen_openapi", ROOT / "docs" / "gen_openapi.py")
    assert spec is not None and spec.loader is not None
    gen_openapi = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen_openapi)
    committed = (ROOT / "docs" / "openapi.md").read_text(encoding="utf-8")
    assert committed == gen_openapi.render(), "run python docs/gen_openapi.py"


def test_mkdocs_build_is_strict_clean(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(tmp_path / "site"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for page in ("index.html", "configuration/index.html", "cli/index.html", "api/index.html"):
        assert (tmp_path / "site" / page).is_file(), f"{page} was not built"
