"""Fuzz of every channel's webhook route on a real ``nicobot serve``: random JSON, mutated
recorded payloads, deep nesting, bodies that are not JSON or not UTF-8, with and without
the channel's credentials. No answer may be a 5xx, and every refusal says why in JSON.

Bounded and derandomised; the gateways point at a closed port (nothing leaves the machine).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from nicobot.testing import ServerProcess, free_port, make_project

SECRET = "fuzzsecret0123456789abcdef"
EXAMPLES_PER_CHANNEL = 150
# ../shared beside the checkout (or beside a folder of checkouts)
FIXTURES = next(
    (
        folder / "shared" / "fixtures" / "evolution"
        for folder in Path(__file__).resolve().parents[1].parents
        if (folder / "shared" / "fixtures" / "evolution").is_dir()
    ),
    Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "evolution",
)

#: slug -> the headers that prove the call comes from the platform
CREDENTIALS = {
    "evolution": {"x-nicobot-secret": SECRET},
    "telegram": {"x-telegram-bot-api-secret-token": SECRET},
}
SUBPATHS = ["", SECRET, f"{SECRET}/messages-upsert", "messages-upsert", "x" * 300]


def recorded_payloads() -> list[Any]:
    assert FIXTURES.is_dir(), f"the recorded gateway payloads are missing: {FIXTURES}"
    payloads = [json.loads(path.read_text()) for path in sorted(FIXTURES.glob("*.json"))]
    telegram = {
        "update_id": 1,
        "message": {
            "message_id": 7,
            "date": 1700000000,
            "chat": {"id": 42, "type": "private", "first_name": "Ana"},
            "from": {"id": 42, "is_bot": False, "first_name": "Ana"},
            "text": "hola",
        },
    }
    return [*payloads, telegram]


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=25,
)


@st.composite
def mutated(draw: st.DrawFn, payloads: list[Any]) -> Any:
    """A recorded payload with some of its values replaced by random JSON."""
    payload = json.loads(json.dumps(draw(st.sampled_from(payloads))))
    for _ in range(draw(st.integers(1, 4))):
        node = payload
        for _depth in range(draw(st.integers(0, 4))):
            if isinstance(node, dict) and node:
                child = node[draw(st.sampled_from(sorted(node)))]
                if not isinstance(child, dict | list):
                    break
                node = child
            elif isinstance(node, list) and node:
                child = node[draw(st.integers(0, len(node) - 1))]
                if not isinstance(child, dict | list):
                    break
                node = child
        if isinstance(node, dict) and node:
            node[draw(st.sampled_from(sorted(node)))] = draw(JSON_VALUES)
        elif isinstance(node, list) and node:
            node[draw(st.integers(0, len(node) - 1))] = draw(JSON_VALUES)
    return payload


def bodies(payloads: list[Any]) -> st.SearchStrategy[bytes]:
    encoded = (JSON_VALUES | mutated(payloads)).map(lambda value: json.dumps(value).encode())
    return encoded | st.binary(max_size=200)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    project = make_project(tmp_path_factory.mktemp("webhooks") / "project")
    closed = f"http://127.0.0.1:{free_port()}"
    env = {
        "EVOLUTION_API_URL": closed,
        "EVOLUTION_API_KEY": "fuzz-key",
        "EVOLUTION_INSTANCE_NAME": "fuzz",
        "EVOLUTION_WEBHOOK_SECRET": SECRET,
        "TELEGRAM_BOT_TOKEN": "123:fuzz",
        "TELEGRAM_API_URL": closed,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "NICOBOT_SERVER__MAX_AUTH_FAILURES": "1000000",  # or the fuzz would test the 429
    }
    process = ServerProcess(project, env).start()
    yield process
    process.stop()


def post(server: ServerProcess, slug: str, subpath: str, body: bytes, authed: bool) -> Any:
    headers = {"Content-Type": "application/json", **(CREDENTIALS[slug] if authed else {})}
    path = f"/api/webhooks/{slug}" + (f"/{subpath}" if subpath else "")
    return httpx.post(server.url + path, content=body, headers=headers, timeout=30)


@pytest.mark.parametrize("slug", sorted(CREDENTIALS))
def test_no_webhook_body_gets_a_server_error(server: ServerProcess, slug: str) -> None:
    payloads = recorded_payloads()
    failures: list[str] = []

    @settings(
        max_examples=EXAMPLES_PER_CHANNEL,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(body=bodies(payloads), authed=st.booleans(), subpath=st.sampled_from(SUBPATHS))
    @example(body=b"[" * 990 + b"]" * 990, authed=True, subpath="")
    @example(body=b"[" * 990 + b"]" * 990, authed=False, subpath="")
    @example(body=b'{"a":' * 5000 + b"1" + b"}" * 5000, authed=True, subpath="")
    @example(body=b"[" * 200_000, authed=True, subpath=SECRET)
    @example(body=b"\xff\xfe not utf-8 {", authed=True, subpath="")
    @example(body=b"", authed=True, subpath="")
    def run(body: bytes, authed: bool, subpath: str) -> None:
        response = post(server, slug, subpath, body, authed)
        if response.status_code >= 500:
            failures.append(f"{response.status_code} for {body[:120]!r} authed={authed}")
        elif response.status_code >= 400 and "error" not in response.json():
            failures.append(f"{response.status_code} without an error for {body[:120]!r}")

    run()
    assert failures == []


def test_a_deep_body_is_refused_before_the_channel_sees_it(server: ServerProcess) -> None:
    deep = b"[" * 990 + b"]" * 990
    for authed in (True, False):
        response = post(server, "evolution", "", deep, authed)
        assert response.status_code == 400
        assert "deeper than" in response.json()["error"]
    too_large = b'{"a": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    response = post(server, "evolution", "", too_large, True)
    assert response.status_code == 413
    assert "error" in response.json()
