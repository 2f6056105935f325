"""Schema-driven fuzz of the admin API: schemathesis generates requests from the app's
own ``/openapi.json`` (valid ones and invalid ones) against a real ``nicobot serve``, with
the admin's bearer token, and no answer may be a 5xx.

Bounded and derandomised, so a run is repeatable and short; the webhooks have their own
fuzz (``test_fuzz_webhooks.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

from nicobot.openapi import openapi_document
from nicobot.testing import ServerProcess, make_project

EXAMPLES_PER_OPERATION = 25
SKIPPED_PREFIXES = ("/api/webhooks/",)

SCHEMA = schemathesis.openapi.from_dict(openapi_document())


def streams(operation: Any) -> bool:
    """An event stream never ends by design: it gets its own bounded test below."""
    content = operation.definition.raw["responses"].get("200", {}).get("content", {})
    return "text/event-stream" in content


OPERATIONS = [
    op.ok()
    for op in SCHEMA.get_all_operations()
    if not op.ok().path.startswith(SKIPPED_PREFIXES) and not streams(op.ok())
]
STREAMS = [op.ok().path for op in SCHEMA.get_all_operations() if streams(op.ok())]


def takes_input(operation: Any) -> bool:
    """Whether there is anything to make invalid (negative cases need a parameter or body)."""
    definition = operation.definition.raw
    return bool(definition.get("parameters") or definition.get("requestBody"))


CASES = [(op, GenerationMode.POSITIVE) for op in OPERATIONS] + [
    (op, GenerationMode.NEGATIVE) for op in OPERATIONS if takes_input(op)
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    project = make_project(tmp_path_factory.mktemp("fuzz") / "project")
    process = ServerProcess(project).start()
    yield process
    process.stop()


def fuzz(operation: Any, mode: GenerationMode, server: ServerProcess) -> list[str]:
    server_errors: list[str] = []

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        response = case.call(base_url=server.url, headers=server.headers, timeout=30)
        if response.status_code >= 500:
            server_errors.append(
                f"{response.status_code} for {case.method} {case.formatted_path} "
                f"query={case.query!r} body={str(case.body)[:200]!r}"
            )

    run()
    return server_errors


@pytest.mark.parametrize(
    ("operation", "mode"), CASES, ids=[f"{op.label} {mode.value}" for op, mode in CASES]
)
def test_no_request_gets_a_server_error(
    operation: Any, mode: GenerationMode, server: ServerProcess
) -> None:
    assert fuzz(operation, mode, server) == []
    with server.client() as client:
        assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize("path", STREAMS)
@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ("?after=-5", {}),
        (f"?after={2**70}", {}),
        ("?after=abc", {}),
        ("", {"Last-Event-ID": "x" * 5000}),
        ("", {"Last-Event-ID": str(2**64)}),
        ("?after=%00", {}),
    ],
)
def test_event_streams_refuse_bad_cursors_without_a_server_error(
    server: ServerProcess, path: str, query: str, headers: dict[str, str]
) -> None:
    with (
        httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as client,
        client.stream("GET", path + query, headers=headers) as response,
    ):
        assert response.status_code < 500
