"""Bad input is a 4xx with ``{"error": ...}``: ids, names, bodies and redirects."""

from __future__ import annotations

import io
import os
import re
import stat

import pytest
from werkzeug.datastructures import FileStorage

from nicobot.fileperms import create_private_file
from nicobot.web.auth import is_local_path
from nicobot.web.limits import MAX_JSON_DEPTH, json_depth


async def test_an_outbox_id_beyond_64_bits_is_not_found(nicobot_client):
    response = await nicobot_client.post(f"/api/outbox/{2**64 + 5}/retry")
    assert response.status_code == 404
    assert "error" in await response.get_json()


async def test_an_overlong_session_id_is_not_found(nicobot_client):
    response = await nicobot_client.get("/api/sessions/" + "a" * 5000)
    assert response.status_code == 404
    assert "error" in await response.get_json()


async def test_an_overlong_upload_name_is_a_400(nicobot_client):
    name = "n" * 300 + ".md"
    response = await nicobot_client.post(
        "/api/knowledge/documents",
        files={"file": _upload(name, b"# Hello\n\nSome text.\n")},
    )
    assert response.status_code == 400
    assert "longer than" in (await response.get_json())["error"]


async def test_api_bodies_that_are_deep_or_not_utf8_are_a_400(nicobot_client):
    deep = await nicobot_client.put(
        "/api/prompt",
        data=b"[" * 990 + b"]" * 990,
        headers={"Content-Type": "application/json"},
    )
    assert deep.status_code == 400
    assert "deeper than" in (await deep.get_json())["error"]
    binary = await nicobot_client.post(
        "/api/chat", data=b"\xb5\xca", headers={"Content-Type": "application/json"}
    )
    assert binary.status_code == 400
    assert "UTF-8" in (await binary.get_json())["error"]
    huge = await nicobot_client.post("/api/sessions/x/pause", json={"minutes": 1e17})
    assert huge.status_code == 400


def test_json_depth_ignores_brackets_in_strings_and_is_linear():
    assert json_depth(b'{"a": [1, {"b": "[[[[{{{{"}]}') == 3
    assert json_depth(b'"unterminated \\" [[[[') == 0
    assert json_depth(b"[" * (MAX_JSON_DEPTH + 1)) == MAX_JSON_DEPTH + 1
    assert json_depth(b'"\\"' * 1_000_000) == 0  # one pass, not one per quote


@pytest.mark.parametrize(
    "target",
    [
        "/\\other-host/",
        "/\\\\other-host/",
        "//other-host/",
        "https://other-host/",
        "/\t/other-host/",
        "/ /other-host",
        "javascript:alert(1)",
        "other-host",
        "",
    ],
)
def test_redirect_targets_off_this_site_are_refused(target):
    assert not is_local_path(target)


def test_local_redirect_targets_are_kept():
    assert is_local_path("/admin?tab=knowledge")
    assert is_local_path("/?session=abc")


async def test_login_never_redirects_off_site(nicobot_app):
    client = nicobot_app.test_client()
    page = await client.get("/login?next=/%5C%5Cother-host/")
    token = re.search(r'name="csrf_token" value="([^"]+)"', await page.get_data(as_text=True))[1]
    response = await client.post(
        "/login?next=/%5C%5Cother-host/",
        form={"password": "test-password", "csrf_token": token},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def _upload(name: str, data: bytes) -> FileStorage:
    return FileStorage(io.BytesIO(data), filename=name)


def test_private_files_are_0600_from_the_start_and_never_replace_one(tmp_path):
    previous = os.umask(0)  # even with a permissive umask
    try:
        assert create_private_file(tmp_path / ".env", "A=1\n")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / ".env").stat().st_mode) == 0o600
    assert not create_private_file(tmp_path / ".env", "A=2\n")
    assert (tmp_path / ".env").read_text() == "A=1\n"
    assert [p.name for p in tmp_path.iterdir()] == [".env"]  # no temporary file left
