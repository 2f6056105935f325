"""Where the LLM client runs: in a child process (``[llm] process = "separate"``, the
default) or in this one (``"inline"``), behind one interface.

litellm is the provider layer. One case skips it: a model ``openai/<name>`` with an
``api_base`` is an OpenAI-compatible server (vLLM, llama.cpp, Ollama, LM Studio, a
gateway), which litellm would only forward to; nicobot posts the chat completion itself
over aiohttp (litellm's own HTTP client; see :mod:`nicobot.openai_compatible`), for a
small part of the CPU per call (litellm spends 4 to 5 ms of it, the openai SDK about 2)
and no litellm import. The code chooses (:func:`openai_compatible`); nothing is
configured.

A call costs CPU and litellm about 190 MB of memory; in a child process that CPU runs
beside the server's event loop (on another core) instead of inside it, and the server
stays small. The child is ``python -m nicobot.llm_process``; requests and answers are
one JSON object a line on its stdin and stdout, many in flight at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import itertools
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Mapping
from typing import Any, Protocol

log = logging.getLogger("nicobot.llm")

STOP_SECONDS = 5.0
START_SECONDS = 120.0
RESTART_SECONDS = 10.0
LINE_LIMIT = 16 * 1024 * 1024


class LLMProcessError(Exception):
    """The child failed a call; the message names the original error type."""


PRELOAD_ENV = "NICOBOT_LLM_PRELOAD"


def openai_compatible(model: str, api_base: str | None) -> bool:
    """True when calls go to an OpenAI-compatible server, posted directly (not litellm)."""
    return model.startswith("openai/") and bool(api_base)


def client_for(model: str, api_base: str | None) -> str:
    """Which client a model's calls need: ``"openai"`` or ``"litellm"``."""
    return "openai" if openai_compatible(model, api_base) else "litellm"


def client_needed(name: str, kwargs: Mapping[str, Any]) -> str:
    """The client a call needs: only a completion on an OpenAI-compatible server skips
    litellm."""
    if name == "acompletion":
        return client_for(str(kwargs.get("model", "")), kwargs.get("api_base"))
    return "litellm"


def import_litellm() -> Any:
    """Import litellm, quiet and with nothing downloaded at run time."""
    litellm: Any = importlib.import_module("litellm")
    litellm.suppress_debug_info = True  # no "Give Feedback" banners in the logs
    litellm.disable_hf_tokenizer_download = True
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.WARNING:
            logger.setLevel(logging.WARNING)  # a line per call, printed twice otherwise
    return litellm


class Clients:
    """This process's LLM clients, each imported on first use (in the caller's thread)."""

    def __init__(self) -> None:
        self._litellm: Any = None
        self._openai: Any = None
        self._openai_clients: dict[tuple[asyncio.AbstractEventLoop, str, str, int], Any] = {}

    def load(self, which: str) -> None:
        if which == "openai":
            self.openai_compatible_module()
        else:
            self.litellm()

    def loaded(self, which: str) -> bool:
        return (self._openai if which == "openai" else self._litellm) is not None

    def litellm(self) -> Any:
        if self._litellm is None:
            self._litellm = import_litellm()
        return self._litellm

    def openai_compatible_module(self) -> Any:
        if self._openai is None:
            self._openai = importlib.import_module("nicobot.openai_compatible")
        return self._openai

    async def close(self) -> None:
        """Close the connections of this event loop's clients."""
        loop = asyncio.get_running_loop()
        for key in [k for k in self._openai_clients if k[0] is loop]:
            await self._openai_clients.pop(key).close()

    def openai(self, base_url: str, api_key: str | None, max_retries: int) -> Any:
        """One client per event loop, server, key and retries: its connections are
        reused (and belong to one loop)."""
        loop = asyncio.get_running_loop()
        key = (loop, base_url, api_key or os.environ.get("OPENAI_API_KEY") or "none", max_retries)
        client = self._openai_clients.get(key)
        if client is None or client.closed:
            for stale in [k for k in self._openai_clients if k[0].is_closed()]:
                del self._openai_clients[stale]
            module = self.openai_compatible_module()
            client = module.OpenAICompatibleClient(base_url, key[2], max_retries)
            self._openai_clients[key] = client
        return client


async def run_call(clients: Clients, name: str, kwargs: Mapping[str, Any]) -> Any:
    """The calls the agent makes, the same in the child and inline: ``acompletion``
    (within its ``timeout``; the reply's text), ``validate_environment``,
    ``supports_vision`` and ``atranscription`` (``file_base64``, ``filename`` and
    ``mimetype``; the text)."""
    if name == "acompletion":
        timeout = float(kwargs.get("timeout") or 60)
        async with asyncio.timeout(timeout):
            if openai_compatible(str(kwargs.get("model", "")), kwargs.get("api_base")):
                return await _openai_completion(clients, kwargs)
            response = await clients.litellm().acompletion(**kwargs)
        return response.choices[0].message.content
    if name == "validate_environment":
        return dict(clients.litellm().validate_environment(**kwargs))
    if name == "supports_vision":
        return bool(clients.litellm().supports_vision(**kwargs))
    if name == "atranscription":  # the file travels as base64 text (one JSON line)
        import base64

        args = dict(kwargs)
        audio = base64.b64decode(args.pop("file_base64"))
        file = (args.pop("filename"), audio, args.pop("mimetype"))
        timeout = float(args.get("timeout") or 60)
        response = await asyncio.wait_for(
            clients.litellm().atranscription(file=file, **args), timeout
        )
        return response.text
    raise ValueError(f"no call named {name!r}")


async def _openai_completion(clients: Clients, kwargs: Mapping[str, Any]) -> Any:
    client = clients.openai(
        str(kwargs["api_base"]), kwargs.get("api_key"), int(kwargs.get("max_retries") or 0)
    )
    options = {k: kwargs[k] for k in ("temperature", "max_tokens") if kwargs.get(k) is not None}
    return await client.complete(
        str(kwargs["model"]).removeprefix("openai/"),
        kwargs["messages"],
        float(kwargs.get("timeout") or 60),
        **options,
    )


class LLMRunner(Protocol):
    """What the agent needs of wherever litellm runs."""

    @property
    def ready(self) -> bool: ...

    @property
    def pid(self) -> int | None: ...

    async def start(self) -> None: ...

    async def call(self, name: str, within: float, **kwargs: Any) -> Any: ...

    async def stop(self) -> None: ...


_clients = Clients()
_loading: dict[str, asyncio.Future[None]] = {}


async def load_client(which: str) -> Clients:
    """This process's clients with ``which`` imported once, in a thread: an import takes
    seconds and must not stall the event loop (webhooks keep being answered meanwhile)."""
    loading = _loading.get(which)
    if loading is None or _stale(loading):
        loading = _loading[which] = asyncio.ensure_future(asyncio.to_thread(_clients.load, which))
    await asyncio.shield(loading)
    return _clients


def _stale(loading: asyncio.Future[None]) -> bool:
    """A load started on an event loop that is gone (an earlier ``asyncio.run``, a
    test's loop): it will never finish there, so it is started again on this one."""
    if loading.cancelled():
        return True
    return not loading.done() and loading.get_loop() is not asyncio.get_running_loop()


async def load_litellm() -> Clients:
    """This process's clients, with litellm imported."""
    return await load_client("litellm")


class InlineLLM:
    """The LLM client in the server's own process (``[llm] process = "inline"``)."""

    def __init__(self, preload: str = "litellm") -> None:
        self.preload = preload

    @property
    def ready(self) -> bool:
        return _clients.loaded(self.preload)

    @property
    def pid(self) -> int | None:
        return os.getpid()

    async def start(self) -> None:
        await load_client(self.preload)

    async def call(self, name: str, within: float, **kwargs: Any) -> Any:
        clients = await load_client(client_needed(name, kwargs))
        async with asyncio.timeout(within):
            return await run_call(clients, name, kwargs)

    async def stop(self) -> None:
        await _clients.close()


class DirectFirstLLM:
    """``[llm] process = "separate"`` for a model on an OpenAI-compatible server: its
    completions are POSTed from this process (one HTTP call costs less CPU than passing it
    to a child and back), and litellm's calls (voice notes, image checks) go to the child
    process, started on the first of them, so litellm's memory stays out of the server."""

    def __init__(self) -> None:
        self.direct = InlineLLM("openai")
        self.child = LLMProcess("litellm")

    @property
    def ready(self) -> bool:
        return self.direct.ready

    @property
    def pid(self) -> int | None:
        """The process completions run in: this one."""
        return self.direct.pid

    async def start(self) -> None:
        await self.direct.start()

    async def call(self, name: str, within: float, **kwargs: Any) -> Any:
        if client_needed(name, kwargs) == "openai":
            return await self.direct.call(name, within, **kwargs)
        return await self.child.call(name, within, **kwargs)

    async def stop(self) -> None:
        await self.child.stop()
        await self.direct.stop()


def runner_for(process: str, client: str) -> LLMRunner:
    """Where the LLM calls run: ``process`` is ``[llm] process``, ``client`` what the
    configured model needs (:func:`client_for`)."""
    if process == "inline":
        return InlineLLM(client)
    return DirectFirstLLM() if client == "openai" else LLMProcess(client)


class LLMProcess:
    """The parent's side: start the child on first use, send calls, restart it if it dies
    (not more often than every RESTART_SECONDS when it dies before it is ready)."""

    def __init__(self, preload: str = "litellm") -> None:
        self.preload = preload
        self._child: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._starting = asyncio.Lock()
        self._stopped = False
        self._failed_start_at: float | None = None

    @property
    def ready(self) -> bool:
        return self._ready is not None and self._ready.done() and self._child is not None

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None else None

    async def start(self) -> None:
        """Start the child if it is not running; return once its client is imported."""
        async with self._starting:
            if self._stopped:
                raise LLMProcessError("the LLM process is stopped")
            if self._child is None or self._child.returncode is not None:
                failed_at = self._failed_start_at
                if failed_at is not None and time.monotonic() - failed_at < RESTART_SECONDS:
                    raise LLMProcessError("the LLM process failed to start; see the log")
                self._ready = asyncio.get_running_loop().create_future()
                self._child = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "nicobot.llm_process",
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    env={
                        **os.environ,
                        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                        PRELOAD_ENV: self.preload,
                    },
                    limit=LINE_LIMIT,
                )
                self._reader = asyncio.create_task(self._read(self._child, self._ready))
            ready, child = self._ready, self._child
        assert ready is not None
        try:
            await asyncio.wait_for(asyncio.shield(ready), START_SECONDS)
        except TimeoutError:
            log.error("the LLM process did not start within %.0f s; restarting it", START_SECONDS)
            _kill(child)  # its reader fails the calls waiting; the next call starts another
            raise

    async def call(self, name: str, within: float, **kwargs: Any) -> Any:
        """Run ``litellm.<name>(**kwargs)`` in the child; TimeoutError after ``within`` s."""
        await self.start()
        child = self._child
        if child is None or child.stdin is None:
            raise LLMProcessError("the LLM process exited")
        call_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = future
        try:
            async with asyncio.timeout(within):  # a child that stops reading fills the pipe
                line = json.dumps({"id": call_id, "call": name, "kwargs": kwargs}) + "\n"
                child.stdin.write(line.encode())
                await child.stdin.drain()
                return await future
        finally:
            self._pending.pop(call_id, None)

    async def stop(self) -> None:
        """Stop for good: calls in flight get STOP_SECONDS to finish, if anyone still
        waits for them; the child is killed after that."""
        async with self._starting:
            self._stopped = True
            child, reader, self._child = self._child, self._reader, None
        if child is None:
            return
        if child.stdin is not None:
            child.stdin.close()
        try:
            await asyncio.wait_for(child.wait(), STOP_SECONDS if self._pending else 0.5)
        except TimeoutError:
            _kill(child)
            await child.wait()
        if reader is not None:
            await reader

    async def _read(self, child: asyncio.subprocess.Process, ready: asyncio.Future[None]) -> None:
        assert child.stdout is not None
        while True:
            try:
                line = await child.stdout.readline()
            except ValueError:  # an answer longer than LINE_LIMIT: start afresh
                log.error("the LLM process sent an answer over %d bytes; restarting it", LINE_LIMIT)
                _kill(child)
                continue
            if not line:
                break
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if message.get("ready"):
                if not ready.done():
                    ready.set_result(None)
                    log.info("the LLM calls run in their own process (pid %s)", child.pid)
                continue
            future = self._pending.get(message.get("id"))
            if future is None or future.done():
                continue
            if "error" in message:
                error = message["error"]
                future.set_exception(
                    TimeoutError(error) if message.get("timeout") else LLMProcessError(error)
                )
            else:
                future.set_result(message.get("result"))
        code = await child.wait()
        stopped = LLMProcessError(f"the LLM process exited (code {code})")
        if self._child is child:
            log.warning("the LLM process exited (code %s); it restarts on the next call", code)
            self._child = None
        if not ready.done():
            self._failed_start_at = time.monotonic()
            ready.set_exception(stopped)
            ready.exception()  # retrieved here; callers get it from start()
        for future in list(self._pending.values()):
            if not future.done():
                future.set_exception(stopped)


def _kill(child: asyncio.subprocess.Process | None) -> None:
    if child is not None:
        with contextlib.suppress(ProcessLookupError):
            child.kill()


# the child

_answers: Any = None  # the child's real stdout; sys.stdout goes to stderr instead


def _answer(message: dict[str, Any]) -> None:
    _answers.write(json.dumps(message) + "\n")
    _answers.flush()


async def _serve_call(clients: Clients, request: dict[str, Any]) -> None:
    call_id = request.get("id")
    name, kwargs = str(request.get("call")), request.get("kwargs") or {}
    try:
        await asyncio.to_thread(clients.load, client_needed(name, kwargs))
        result = await run_call(clients, name, kwargs)
        _answer({"id": call_id, "result": result})
    except TimeoutError:
        _answer({"id": call_id, "error": "TimeoutError: the LLM did not answer", "timeout": True})
    except Exception as exc:  # every failure goes back to the caller, the child goes on
        _answer({"id": call_id, "error": f"{type(exc).__name__}: {exc}"})


async def _child_main() -> None:
    logging.basicConfig(level=logging.WARNING, format="llm process: %(levelname)s %(message)s")
    clients = Clients()
    clients.load(os.environ.get(PRELOAD_ENV, "litellm"))
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    _answer({"ready": True})
    calls: set[asyncio.Task[None]] = set()
    while line := await reader.readline():
        try:
            request = json.loads(line)
        except ValueError:
            continue
        task = asyncio.create_task(_serve_call(clients, request))
        calls.add(task)
        task.add_done_callback(calls.discard)
    if calls:
        await asyncio.wait(calls, timeout=STOP_SECONDS)
    await clients.close()


def main() -> None:
    """Answer calls until stdin closes: the parent's stop, or the parent's death. Signals
    are the parent's to handle (a Ctrl-C or a service manager's SIGTERM reaches the whole
    group), so that calls in flight finish while the parent parks its work."""
    global _answers
    _answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # a library's print() must not garble the answers
    sys.stdout = sys.stderr
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_child_main())
        _answers.flush()
    except BrokenPipeError:  # the parent died (a kill -9): nobody is left to answer
        os._exit(0)
    # every call is answered and nothing else is kept here; litellm's threads and exit
    # handlers would hold the exit (and the server's stop) for a second or two
    os._exit(0)


if __name__ == "__main__":
    main()
