"""Security of a real ``nicobot serve``: start-up failures, keys, sessions across restarts,
forwarded addresses, private files and what the logs may say."""

from __future__ import annotations

import re
import stat
import subprocess
import sys
from pathlib import Path

import httpx

from nicobot.testing import ServerProcess, free_port, make_project

SECRET = "path-secret-0123456789"


def set_env(project: Path, **values: str | None) -> None:
    env_path = project / ".env"
    lines = [
        line for line in env_path.read_text().splitlines() if line.split("=", 1)[0] not in values
    ]
    lines += [f"{key}={value}" for key, value in values.items() if value is not None]
    env_path.write_text("\n".join(lines) + "\n")


def login(
    server: ServerProcess, password: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    with httpx.Client(base_url=server.url, headers=headers or {}) as client:
        page = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]
        return client.post("/login", data={"password": password, "csrf_token": token})


def session_cookie(response: httpx.Response) -> dict[str, str]:
    return dict(response.cookies)


def test_serve_exits_non_zero_when_it_cannot_start(tmp_path, nicobot_server):
    project = make_project(tmp_path / "project")
    nicobot_server(project)  # holds the knowledge store
    second = subprocess.run(
        [
            sys.executable,
            "-m",
            "nicobot",
            "serve",
            "--project",
            str(project),
            "--port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert second.returncode != 0
    assert "could not start" in second.stderr
    assert "in use" in second.stderr


def test_a_generated_key_and_a_new_password_end_sessions(tmp_path, nicobot_server):
    project = make_project(tmp_path / "project")
    set_env(project, NICOBOT_SECRET_KEY=None)
    server = nicobot_server(project)
    assert "NICOBOT_SECRET_KEY is not set" in server.log()
    key_file = project / "data" / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert "test-password" not in key_file.read_text()
    cookies = session_cookie(login(server, "test-password"))
    [name] = cookies
    assert name == f"nicobot_session_{server.port}"
    assert httpx.get(server.url + "/api/sessions", cookies=cookies).status_code == 200

    server.stop()  # same key file, same password: the session survives a restart
    server.start()
    assert httpx.get(server.url + "/api/sessions", cookies=cookies).status_code == 200

    server.stop()
    set_env(project, NICOBOT_ADMIN_PASSWORD="another-password")
    server.start()
    assert httpx.get(server.url + "/api/sessions", cookies=cookies).status_code == 401

    cookies = session_cookie(login(server, "another-password"))
    server.stop()
    set_env(project, NICOBOT_SECRET_KEY="k" * 64)
    server.start()
    assert httpx.get(server.url + "/api/sessions", cookies=cookies).status_code == 401


def test_forwarded_addresses_count_only_from_trusted_proxies(tmp_path, nicobot_server):
    project = make_project(tmp_path / "project")
    server = nicobot_server(project, {"NICOBOT_SERVER__MAX_AUTH_FAILURES": "3"})
    for n in range(3):
        assert login(server, "nope", {"X-Forwarded-For": f"192.0.2.{n}"}).status_code == 401
    spoofed = login(server, "test-password", {"X-Forwarded-For": "192.0.2.99"})
    assert spoofed.status_code == 429  # a made-up address does not escape the throttle
    server.stop()

    project = make_project(tmp_path / "behind-proxy")
    server = nicobot_server(
        project,
        {"NICOBOT_SERVER__MAX_AUTH_FAILURES": "3", "NICOBOT_SERVER__TRUSTED_PROXIES": "127.0.0.1"},
    )
    for _ in range(3):
        assert login(server, "nope", {"X-Forwarded-For": "192.0.2.1"}).status_code == 401
    assert login(server, "test-password", {"X-Forwarded-For": "192.0.2.1"}).status_code == 429
    # another customer of the same proxy is not locked out
    assert login(server, "test-password", {"X-Forwarded-For": "192.0.2.2"}).status_code == 302


def test_files_are_private_and_secrets_stay_out_of_the_logs(tmp_path, nicobot_server):
    project = make_project(tmp_path / "project")
    env = {
        "NICOBOT_LOG_LEVEL": "debug",
        "EVOLUTION_API_URL": f"http://127.0.0.1:{free_port()}",
        "EVOLUTION_API_KEY": "evolution-api-key-value",
        "EVOLUTION_INSTANCE_NAME": "shop",
        "EVOLUTION_WEBHOOK_SECRET": SECRET,
    }
    server = nicobot_server(project, env)
    body = {"event": "connection.update", "instance": "shop", "data": {"state": "open"}}
    accepted = httpx.post(f"{server.url}/api/webhooks/evolution/{SECRET}", json=body)
    assert accepted.status_code == 200
    assert (
        httpx.get(server.url + "/api/sessions", headers={"Authorization": "Bearer x"}).status_code
        == 401
    )
    assert httpx.get(server.url + "/api/sessions", headers=server.headers).status_code == 200
    log = server.log()
    assert "/api/webhooks/evolution/..." in log  # the access log is on
    for secret in (SECRET, "evolution-api-key-value", "test-password"):
        assert secret not in log
    data = project / "data"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "nicobot.sqlite3").stat().st_mode) == 0o600
    assert stat.S_IMODE((data / "nicobot.sqlite3-wal").stat().st_mode) == 0o600
    for path in data.rglob("*"):  # the knowledge index too: nothing for group or others
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, (path, oct(path.stat().st_mode))
