"""A real `nicobot serve` process: the done-when of the core, end to end."""

from __future__ import annotations

import subprocess
import sys

import httpx


def test_fresh_project_answers_offline_and_keeps_conversations(tmp_path, nicobot_server):
    project = tmp_path / "x"
    subprocess.run(
        [sys.executable, "-m", "nicobot", "init", str(project), "--yes"],
        check=True,
        capture_output=True,
    )
    server = nicobot_server(project)
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(server.url + "/api/sessions").status_code == 401
    login_redirect = httpx.get(server.url + "/admin")
    assert login_redirect.status_code == 302
    assert login_redirect.headers["location"].startswith("/login")
    with server.client() as client:
        turn = client.post(
            "/api/chat",
            json={"phone_number": "5491100000001", "message": "What are your opening hours?"},
        ).json()
    assert turn["reply"].strip()
    assert server.stop() in (0, -15)  # uvicorn re-raises SIGTERM after a graceful stop
    assert "Application shutdown complete" in server.log()
    again = nicobot_server(project)
    with again.client() as client:
        sessions = client.get("/api/sessions").json()["sessions"]
        detail = client.get(f"/api/sessions/{turn['session_id']}").json()
    assert [s["id"] for s in sessions] == [turn["session_id"]]
    assert [m["role"] for m in detail["messages"]] == ["user", "assistant"]
