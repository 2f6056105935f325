"""Credentials: throttled per client, sessions that end, cookies and headers."""

from __future__ import annotations

import logging
import re
import stat

import pytest

from nicobot.redact import SecretsFilter, WebhookPathFilter, secrets_in
from nicobot.testing import FAKE_SECRET
from nicobot.web.auth import DEFAULT_MAX_FAILURES, CredentialThrottle

NO_AUTH = {"Authorization": ""}
ATTACKER = {"client": ("203.0.113.9", 40000)}
ADMIN_DESK = {"client": ("198.51.100.7", 40000)}


async def login(client, password: str = "test-password", scope=None):
    page = await client.get("/login", headers=NO_AUTH, scope_base=scope)
    token = re.search(r'name="csrf_token" value="([^"]+)"', await page.get_data(as_text=True))[1]
    return await client.post(
        "/login", form={"password": password, "csrf_token": token}, scope_base=scope
    )


async def test_wrong_bearer_tokens_are_throttled_for_that_client_only(nicobot_client):
    wrong = {"Authorization": "Bearer guess"}
    for _ in range(DEFAULT_MAX_FAILURES):
        response = await nicobot_client.get("/api/sessions", headers=wrong, scope_base=ATTACKER)
        assert response.status_code == 401
    blocked = await nicobot_client.get("/api/sessions", headers=wrong, scope_base=ATTACKER)
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0
    assert "too many" in (await blocked.get_json())["error"]
    # even the right password, from that client, waits
    right = await nicobot_client.get("/api/sessions", scope_base=ATTACKER)
    assert right.status_code == 429
    # the admin elsewhere is not locked out, by token or by login
    assert (await nicobot_client.get("/api/sessions", scope_base=ADMIN_DESK)).status_code == 200
    assert (await login(nicobot_client, scope=ADMIN_DESK)).status_code == 302


async def test_login_guesses_and_bearer_guesses_share_one_budget(nicobot_client):
    for _ in range(DEFAULT_MAX_FAILURES // 2):
        assert (await login(nicobot_client, "nope", scope=ATTACKER)).status_code == 401
    for _ in range(DEFAULT_MAX_FAILURES - DEFAULT_MAX_FAILURES // 2):
        response = await nicobot_client.get(
            "/api/sessions", headers={"Authorization": "Bearer x"}, scope_base=ATTACKER
        )
        assert response.status_code == 401
    assert (await login(nicobot_client, scope=ATTACKER)).status_code == 429


async def test_wrong_webhook_secrets_are_throttled(nicobot_client, fake_channel):
    body = {"text": "hola", "address": "1", "id": "m1"}
    for _ in range(DEFAULT_MAX_FAILURES):
        response = await nicobot_client.post(
            "/api/webhooks/fake",
            json=body,
            headers={"X-Fake-Secret": "guess", **NO_AUTH},
            scope_base=ATTACKER,
        )
        assert response.status_code == 401
    blocked = await nicobot_client.post(
        "/api/webhooks/fake",
        json=body,
        headers={"X-Fake-Secret": FAKE_SECRET, **NO_AUTH},
        scope_base=ATTACKER,
    )
    assert blocked.status_code == 429
    gateway = await nicobot_client.post(
        "/api/webhooks/fake",
        json=body,
        headers={"X-Fake-Secret": FAKE_SECRET, **NO_AUTH},
        scope_base=ADMIN_DESK,
    )
    assert gateway.status_code == 200
    assert (await gateway.get_json())["accepted"] == 1


def test_the_throttle_forgets_old_failures_and_bounds_its_memory():
    throttle = CredentialThrottle(max_failures=2, window_seconds=0.0, max_clients=3)
    throttle.failed(("admin", "a"))
    throttle.failed(("admin", "a"))
    assert not throttle.blocked(("admin", "a"))  # a zero window forgets at once
    throttle = CredentialThrottle(max_failures=1, max_clients=3)
    for client in "abcde":
        throttle.failed(("admin", client))
    assert not throttle.blocked(("admin", "a"))
    assert throttle.blocked(("admin", "e"))


async def test_logout_ends_the_session_even_for_a_copied_cookie(nicobot_app):
    client = nicobot_app.test_client()
    logged_in = await login(client)
    assert logged_in.status_code == 302
    stolen = logged_in.headers["Set-Cookie"].split(";")[0]  # what an attacker copied
    page = await client.get("/")
    assert page.status_code == 200
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', await page.get_data(as_text=True))[1]
    other = nicobot_app.test_client()
    assert (await other.get("/api/sessions", headers={"Cookie": stolen})).status_code == 200
    assert (await client.post("/logout", form={"csrf_token": csrf})).status_code == 302
    assert (await other.get("/api/sessions", headers={"Cookie": stolen})).status_code == 401


async def test_a_new_admin_password_ends_existing_sessions(nicobot_app):
    client = nicobot_app.test_client()
    assert (await login(client)).status_code == 302
    assert (await client.get("/api/sessions")).status_code == 200
    nicobot_app.config["NICOBOT_ADMIN_PASSWORD"] = "a-new-password"  # as after a restart
    assert (await client.get("/api/sessions")).status_code == 401
    assert (await login(client, "a-new-password")).status_code == 302
    assert (await client.get("/api/sessions")).status_code == 200


async def test_the_cookie_is_named_for_the_port_and_http_only(nicobot_app):
    client = nicobot_app.test_client()
    response = await login(client)
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("nicobot_session_7070=")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie


@pytest.fixture
def secure_env(nicobot_env):
    nicobot_env.update({"NICOBOT_SERVER__SECURE_COOKIES": "true", "NICOBOT_PORT": "7171"})
    return nicobot_env


async def test_secure_cookies_are_pinned_to_https_and_this_host(secure_env, nicobot_app):
    client = nicobot_app.test_client()
    response = await login(client)
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-nicobot_session_7171=")
    assert "Secure" in cookie


async def test_pages_and_answers_carry_csp_and_frame_headers(nicobot_client):
    for path in ("/login", "/api/sessions", "/healthz"):
        response = await nicobot_client.get(path)
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        policy = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy
        assert "script-src 'self' 'nonce-" in policy
        assert "unsafe-inline" not in policy


async def test_inline_scripts_carry_the_requests_nonce(nicobot_client):
    response = await nicobot_client.get("/admin?tab=knowledge")
    html = await response.get_data(as_text=True)
    nonce = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"])[1]
    for tag in re.findall(r"<(?:script|style)\b[^>]*>", html):
        assert 'type="application/json"' in tag or "src=" in tag or f'nonce="{nonce}"' in tag
    assert not re.search(r"<[a-z]+\s[^>]*\son[a-z]+=", html)  # no inline event handlers


@pytest.fixture
def full_disk_env(nicobot_env):
    nicobot_env["NICOBOT_SERVER__MIN_FREE_DISK_MB"] = str(10**7)  # more than any test disk
    return nicobot_env


async def test_readyz_reports_a_full_disk(full_disk_env, nicobot_client):
    response = await nicobot_client.get("/readyz", headers=NO_AUTH)
    assert response.status_code == 503
    body = await response.get_json()
    assert body["status"] == "not ready"
    assert "free" in body["error"]
    assert (await nicobot_client.get("/healthz", headers=NO_AUTH)).status_code == 200


async def test_the_store_files_are_private(nicobot_bot):
    data = nicobot_bot.settings.data_path
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    databases = list(data.glob("*.sqlite3*"))
    assert databases
    for path in databases:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_secrets_are_redacted_from_log_records():
    env = {"NICOBOT_ADMIN_PASSWORD": "hunter2-long", "EVOLUTION_API_KEY": "k3y-value", "X": "ok"}
    redactor = SecretsFilter(secrets_in(env, ["derived-secret-value"]))
    record = logging.LogRecord(
        "t",
        logging.INFO,
        __file__,
        1,
        "login with %s and %s, %s",
        ("hunter2-long", "ok", "k3y-value"),
        None,
    )
    redactor.filter(record)
    assert record.getMessage() == "login with [redacted] and ok, [redacted]"
    access = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:1", "POST", "/api/webhooks/evolution/derived-secret-value/x?y=1", "1.1", 200),
        None,
    )
    WebhookPathFilter().filter(access)
    assert "derived-secret-value" not in access.getMessage()
    assert "/api/webhooks/evolution/..." in access.getMessage()
