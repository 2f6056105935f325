"""Chat completions from an OpenAI-compatible server (vLLM, llama.cpp, Ollama, LM Studio, a
gateway) over one aiohttp session: the request litellm would forward, without litellm's
or the openai SDK's per-call work (request models, response models, header lookups).

aiohttp comes with litellm (its HTTP client); the session's connections are reused, the
proxy settings are read from the environment once, when the client is made. Failures
are retried as the openai SDK retries them (408, 409, 429, 5xx and lost connections,
0.5 s doubling up to 8 s), ``max_retries`` times.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Mapping
from typing import Any

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

RETRY_STATUSES = frozenset({408, 409, 429}) | frozenset(range(500, 600))
FIRST_RETRY_SECONDS = 0.5
LAST_RETRY_SECONDS = 8.0


class CompletionError(Exception):
    """The server refused or failed the call; the message says how."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class OpenAICompatibleClient:
    """``POST {base_url}/chat/completions`` on one event loop's session."""

    def __init__(self, base_url: str, api_key: str, max_retries: int = 0) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.max_retries = max_retries
        self.proxy, self.proxy_auth = _proxy_for(self.url)
        self._session = aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
            # no cap of its own (aiohttp's default is 100 connections): the pipeline's
            # `concurrency` bounds the calls in flight
            connector=aiohttp.TCPConnector(limit=0),
        )

    @property
    def closed(self) -> bool:
        return self._session.closed

    async def close(self) -> None:
        await self._session.close()

    async def complete(
        self, model: str, messages: list[dict[str, Any]], request_seconds: float, **options: Any
    ) -> str | None:
        """The first choice's text (None when the server sent none); each try may take
        ``request_seconds`` (the caller bounds the whole call)."""
        body = json.dumps({"model": model, "messages": messages, **options})
        attempt = 0
        while True:
            try:
                return await self._post(body, request_seconds)
            except (CompletionError, aiohttp.ClientConnectionError) as exc:
                status = getattr(exc, "status", None)
                retryable = status is None or status in RETRY_STATUSES
                if not retryable or attempt >= self.max_retries:
                    raise
            await asyncio.sleep(retry_delay(attempt))
            attempt += 1

    async def _post(self, body: str, request_seconds: float) -> str | None:
        async with self._session.post(
            self.url,
            data=body,
            proxy=self.proxy,
            proxy_auth=self.proxy_auth,
            timeout=aiohttp.ClientTimeout(total=request_seconds),
        ) as response:
            raw = await response.read()
            if response.status >= 300:
                raise CompletionError(
                    f"{response.status} from {self.url}: {_error_text(raw)}", response.status
                )
        try:
            answer = json.loads(raw)
            return _content(answer)
        except (ValueError, LookupError, TypeError):
            raise CompletionError(
                f"{self.url} answered something that is not a chat completion: {raw[:200]!r}"
            ) from None


def retry_delay(attempt: int) -> float:
    """The wait before retry ``attempt + 1``: doubling, with up to a quarter of jitter."""
    delay = min(LAST_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2.0**attempt)
    return delay * (1 - 0.25 * random.random())


def _content(answer: Mapping[str, Any]) -> str | None:
    content = answer["choices"][0]["message"].get("content")
    return content if content is None else str(content)


def _error_text(raw: bytes) -> str:
    """The server's own words: OpenAI's ``{"error": {"message": ...}}``, or the body."""
    try:
        error = json.loads(raw).get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])[:300]
    if isinstance(error, str) and error:
        return error[:300]
    return raw.decode("utf-8", "replace").strip()[:300] or "(empty body)"


def _proxy_for(url: str) -> tuple[str | None, aiohttp.BasicAuth | None]:
    """The proxy the environment names for ``url`` (``HTTPS_PROXY``, ``NO_PROXY``, netrc)."""
    try:
        proxy, auth = get_env_proxy_for_url(URL(url))
    except LookupError:
        return None, None
    return str(proxy), auth
