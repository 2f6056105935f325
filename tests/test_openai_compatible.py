"""The fast path for OpenAI-compatible servers, against the fake LLM over real HTTP."""

from __future__ import annotations

import pytest

from nicobot.openai_compatible import (
    CompletionError,
    OpenAICompatibleClient,
    _proxy_for,
    retry_delay,
)
from nicobot.testing import FakeLLM, free_port

MESSAGES = [{"role": "system", "content": "Sé breve."}, {"role": "user", "content": "hola"}]


async def test_a_completion_is_the_first_choices_text(fake_llm: FakeLLM):
    client = OpenAICompatibleClient(fake_llm.api_base, "fake-key")
    try:
        text = await client.complete("fake-model", MESSAGES, 10, temperature=0.2, max_tokens=50)
    finally:
        await client.close()
    assert text == "Echo: hola"
    [request] = fake_llm.requests
    assert request == {
        "model": "fake-model",
        "messages": MESSAGES,
        "temperature": 0.2,
        "max_tokens": 50,
    }


async def test_a_server_error_is_retried_then_reported_in_the_servers_words(fake_llm: FakeLLM):
    fake_llm.fail_status = 503
    client = OpenAICompatibleClient(fake_llm.api_base, "fake-key", max_retries=1)
    try:
        with pytest.raises(CompletionError, match=r"503 from .*: fake failure") as failed:
            await client.complete("fake-model", MESSAGES, 10)
    finally:
        await client.close()
    assert failed.value.status == 503
    assert len(fake_llm.requests) == 2, "one try and one retry"


async def test_a_refusal_is_not_retried(fake_llm: FakeLLM):
    fake_llm.fail_status = 401
    client = OpenAICompatibleClient(fake_llm.api_base, "wrong-key", max_retries=3)
    try:
        with pytest.raises(CompletionError, match="401"):
            await client.complete("fake-model", MESSAGES, 10)
    finally:
        await client.close()
    assert len(fake_llm.requests) == 1


async def test_a_server_that_is_not_there_fails_after_its_retries():
    client = OpenAICompatibleClient(f"http://127.0.0.1:{free_port()}/v1", "k", max_retries=0)
    try:
        with pytest.raises(OSError):
            await client.complete("fake-model", MESSAGES, 5)
    finally:
        await client.close()


async def test_an_answer_that_is_not_a_completion_is_an_error(fake_llm: FakeLLM):
    client = OpenAICompatibleClient(fake_llm.url + "/elsewhere", "k")  # answers 404 JSON
    try:
        with pytest.raises(CompletionError, match=r"404 from .*: not found"):
            await client.complete("fake-model", MESSAGES, 5)
    finally:
        await client.close()


def test_the_proxy_is_read_from_the_environment_once(monkeypatch: pytest.MonkeyPatch):
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    assert _proxy_for("http://llm.example/v1/chat/completions")[0] == "http://proxy.example:3128"
    monkeypatch.setenv("NO_PROXY", "llm.example")
    assert _proxy_for("http://llm.example/v1/chat/completions") == (None, None)


def test_retries_wait_longer_each_time_up_to_eight_seconds():
    waits = [retry_delay(n) for n in range(8)]
    assert 0.375 <= waits[0] <= 0.5
    assert all(6.0 <= w <= 8.0 for w in waits[5:])
    assert waits[3] > waits[1]


async def test_more_calls_than_aiohttps_default_pool_are_in_flight_at_once(fake_llm: FakeLLM):
    """The pipeline bounds the calls in flight (``concurrency`` up to 1000); the client
    must not queue them behind a pool of its own (aiohttp's default holds 100)."""
    import asyncio

    fake_llm.latency = 1.0
    client = OpenAICompatibleClient(fake_llm.api_base, "fake-key")
    try:
        replies = await asyncio.gather(
            *(client.complete("fake-model", MESSAGES, 30) for _ in range(150))
        )
    finally:
        await client.close()
    assert replies == ["Echo: hola"] * 150
    assert fake_llm.max_in_flight == 150
