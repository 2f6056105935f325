"""``GET /api/events`` on a real `nicobot serve`: changes from the store, resuming with
Last-Event-ID, and a stop that does not wait for open streams."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

import httpx

from nicobot.testing import make_project


def events(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """Parsed server-sent events (comments and retry lines skipped)."""
    event: dict[str, Any] = {}
    for line in response.iter_lines():
        if not line:
            if "event" in event:
                yield event
            event = {}
        elif line.startswith("event: "):
            event["event"] = line[7:]
        elif line.startswith("id: "):
            event["id"] = int(line[4:])
        elif line.startswith("data: "):
            event["data"] = json.loads(line[6:])


def next_event(stream: Iterator[dict[str, Any]], name: str) -> dict[str, Any]:
    for event in stream:
        if event["event"] == name:
            return event
    raise AssertionError(f"the stream ended before a {name!r} event")


def test_changes_stream_resume_and_reset(tmp_path, nicobot_server):
    server = nicobot_server(make_project(tmp_path / "bot"))
    with server.client() as api:
        assert api.get("/api/events", headers={"Authorization": ""}).status_code == 401
        with api.stream("GET", "/api/events") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            stream = events(response)
            hello = next_event(stream, "hello")
            turn = api.post("/api/chat", json={"phone_number": "5491100000400", "message": "hola"})
            session = turn.json()["session_id"]
            first = next_event(stream, "change")
            assert first["data"]["kind"] == "message"
            assert first["data"]["session_id"] == session
            assert first["id"] > hello["data"]["cursor"]
            second = next_event(stream, "change")  # the bot's reply
            assert second["id"] > first["id"]
        api.post(f"/api/sessions/{session}/pause")
        headers = {"Last-Event-ID": str(second["id"])}
        with api.stream("GET", "/api/events", headers=headers) as response:
            stream = events(response)
            assert next_event(stream, "hello")["data"]["cursor"] == second["id"]
            missed = next_event(stream, "change")
            assert missed["data"] == {
                "id": missed["id"],
                "kind": "session",
                "session_id": session,
                "message_id": None,
            }
        with api.stream("GET", "/api/events", params={"after": "0"}) as response:
            replayed = next_event(events(response), "change")
            assert replayed["id"] == first["id"]  # from the start: nothing lost
        # a page that comes back after the log dropped what it missed reloads everything
        with sqlite3.connect(server.project / "data" / "nicobot.sqlite3") as db:
            db.execute("DELETE FROM changes WHERE id <= ?", (second["id"],))
        with api.stream("GET", "/api/events", params={"after": str(first["id"])}) as response:
            reset = next_event(events(response), "reset")
            assert reset["data"]["cursor"] == reset["id"] > second["id"]


def test_stopping_ends_open_streams_at_once(tmp_path, nicobot_server):
    server = nicobot_server(make_project(tmp_path / "bot"))
    ended = threading.Event()
    opened = threading.Event()

    def listen() -> None:
        with server.client(timeout=60) as api, api.stream("GET", "/api/events") as response:
            stream = events(response)
            next_event(stream, "hello")
            opened.set()
            for _event in stream:
                pass
        ended.set()

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert opened.wait(30)
    server.stop()  # SIGTERM, as a service manager sends
    listener.join(30)
    assert ended.is_set(), "the stream did not end with the server"
    assert "timeout graceful shutdown exceeded" not in server.log()
