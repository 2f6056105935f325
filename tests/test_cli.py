"""The command line, run as a user runs it: real processes."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import subprocess
import sys

import pytest


def nicobot(*args: str, cwd=None, env=None, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "nicobot", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_init_writes_a_working_project(tmp_path):
    target = tmp_path / "mybot"
    result = nicobot("init", str(target), "--yes")
    assert "NICOBOT_ADMIN_PASSWORD" in result.stdout
    for name in ("nicobot.toml", ".env", ".gitignore", "knowledge/about.md"):
        assert (target / name).is_file(), name
    env_text = (target / ".env").read_text()
    assert "NICOBOT_ADMIN_PASSWORD=" in env_text
    assert "NICOBOT_WEBHOOK_SECRET=" in env_text
    assert stat.S_IMODE((target / ".env").stat().st_mode) == 0o600
    password = env_text.split("NICOBOT_ADMIN_PASSWORD=")[1].splitlines()[0]
    assert len(password) >= 20
    assert password not in result.stdout
    again = nicobot("init", str(target), "--yes", check=False)
    assert again.returncode != 0
    assert again.stderr.strip().count("\n") == 0
    assert "already exists" in again.stderr


def test_init_prompts_without_yes(tmp_path):
    target = tmp_path / "asked"
    result = subprocess.run(
        [sys.executable, "-m", "nicobot", "init", str(target)],
        input="Lola\nLa Tienda\nes\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    config = (target / "nicobot.toml").read_text()
    assert 'name = "Lola"' in config
    assert 'language = "es"' in config
    assert (target / "knowledge" / "nosotros.md").is_file()


def test_init_without_a_terminal_or_answers_says_how_to_skip_the_questions(tmp_path):
    target = tmp_path / "unasked"
    result = subprocess.run(
        [sys.executable, "-m", "nicobot", "init", str(target)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    [line] = [text for text in result.stderr.splitlines() if text.startswith("Error:")]
    assert "--yes" in line
    assert "Traceback" not in result.stderr
    assert not (target / "nicobot.toml").exists()


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys; sys.argv = ['nicobot', '--help']\n"
        "from nicobot.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('litellm', 'chromadb', 'quart', 'uvicorn') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert "HEAVY []" in result.stdout, result.stdout + result.stderr
    assert "serve" in result.stdout and "sessions" in result.stdout


def test_plugins_lists_the_builtins():
    result = nicobot("plugins", "--json")
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert "register_channels" in plugins["nicobot.builtins.simulator"]["hooks"]
    assert plugins["nicobot.builtins.sqlite_store"]["builtin"] is True
    table = nicobot("plugins").stdout
    assert "nicobot.builtins.simulator" in table


def test_config_errors_are_one_line(tmp_path):
    project = tmp_path / "broken"
    nicobot("init", str(project), "--yes")
    (project / "nicobot.toml").write_text("[llm]\ntimeout_seconds = 'soon'\n")
    result = nicobot("sessions", "list", "--project", str(project), check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: nicobot.toml: llm.timeout_seconds:")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_commands_outside_a_project_say_so(tmp_path):
    result = nicobot("sessions", "list", cwd=tmp_path, check=False)
    assert result.returncode != 0
    assert "nicobot init" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_a_public_address_without_password(tmp_path):
    project = tmp_path / "open"
    nicobot("init", str(project), "--yes")
    (project / ".env").write_text("")
    result = nicobot("serve", "--project", str(project), "--host", "0.0.0.0", check=False)
    assert result.returncode == 1
    assert "refusing to listen on 0.0.0.0" in result.stderr


def test_sessions_list_show_and_export(tmp_path, nicobot_server):
    project = tmp_path / "withdata"
    nicobot("init", str(project), "--yes")
    server = nicobot_server(project)
    with server.client() as client:
        turn = client.post(
            "/api/chat",
            json={"phone_number": "5491100000001", "sender_name": "Ana", "message": "hola"},
        ).json()
    server.stop()
    listing = nicobot("sessions", "list", "--project", str(project)).stdout
    assert turn["session_id"] in listing and "Ana" in listing
    shown = nicobot("sessions", "show", turn["session_id"], "--project", str(project)).stdout
    assert "user: hola" in shown
    exported = json.loads(nicobot("sessions", "export", "--project", str(project)).stdout)
    assert exported[0]["messages"][0]["text"] == "hola"
    out = tmp_path / "out.csv"
    nicobot("sessions", "export", "--format", "csv", "-o", str(out), "--project", str(project))
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["role"] for r in rows] == ["user", "assistant"]
    missing = nicobot("sessions", "show", "nope", "--project", str(project), check=False)
    assert missing.returncode == 1 and "no session" in missing.stderr


@pytest.mark.parametrize("args", [["channels", "status", "nope"], ["channels", "connect", "nope"]])
def test_unknown_channel_is_a_one_line_error(tmp_path, args):
    project = tmp_path / "p"
    nicobot("init", str(project), "--yes")
    result = nicobot(*args, "--project", str(project), check=False)
    assert result.returncode == 1
    assert "no channel named 'nope'" in result.stderr
