"""Shared pieces of the benchmarks: processes, the stack (fake LLM, fake gateway, ``nicobot
serve``), authentic Evolution webhooks, an aiohttp load generator, and result files.

Everything measured runs as its own process on 127.0.0.1; this module only starts,
drives and stops them.
"""

from __future__ import annotations

import asyncio
import copy
import importlib.util
import itertools
import json
import os
import platform
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
#: A folder the servers' logs are copied to at the end of each run (unset: not kept).
LOGS_ENV = "NICOBOT_BENCH_LOGS"
SHARED = ROOT.parent / "shared" / "fixtures" / "evolution"
SCHEMAS = SHARED / "schemas"
FIXTURE = SHARED / "v2_messages_upsert_conversation_with_http_headers.json"
PYTHON = sys.executable
API_KEY = "bench-gateway-key"
#: A real, priced model name pointed at the fake LLM, as a deployment would configure it
#: (an unknown name such as ``openai/fake-model`` costs litellm ~2 ms more CPU per call
#: in its cost lookup).
MODEL = "openai/gpt-4o-mini"

from nicobot.agent import CANNED_DEFAULTS  # noqa: E402
from nicobot.testing import ServerProcess, free_port, make_project  # noqa: E402

#: What nicobot puts before a reply that comes later than [pipeline] delayed_reply_seconds
#: (the benchmark's projects are in English; see Bot._with_delay_apology).
LATE_PREFIX = CANNED_DEFAULTS["delayed"] + "\n\n"


class BenchError(Exception):
    """A benchmark failed; ``main`` prints it as one line and exits 1."""


def main(run: Callable[[], None]) -> None:
    """Run a benchmark; any failure is one line on stderr and exit status 1
    (``BENCH_DEBUG=1`` shows the traceback of an unexpected one)."""
    try:
        run()
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("BENCH_DEBUG"):
            raise
        print(f"error: {type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)
        sys.exit(1)


# measuring


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def ms(values: list[float]) -> dict[str, float]:
    """p50/p99/max of durations in seconds, in milliseconds."""
    return {
        "p50": round(percentile(values, 50) * 1000, 1),
        "p99": round(percentile(values, 99) * 1000, 1),
        "max": round(max(values, default=float("nan")) * 1000, 1),
    }


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def proc_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (nicobot serve's LLM process)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return [pid]
    return [pid, *(p for child in children for p in proc_tree(int(child)))]


def proc_stats(pid: int) -> dict[str, float]:
    """Resident memory now and at peak (VmRSS, VmHWM) in MiB and CPU seconds used, of
    ``pid`` alone and (``tree_...``) with its child processes."""
    stats = _own_stats(pid)
    tree = [_own_stats(p) for p in proc_tree(pid)]
    for key in ("rss_mb", "hwm_mb", "cpu_s"):
        stats["tree_" + key] = round(sum(t.get(key, 0.0) for t in tree), 2)
    stats["processes"] = len(tree)
    return stats


def _own_stats(pid: int) -> dict[str, float]:
    stats: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                stats[key.lower()[2:] + "_mb"] = round(int(value.split()[0]) / 1024, 1)
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        stats["cpu_s"] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        pass
    return stats


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "nproc": os.cpu_count(),
        # what uvicorn's "auto" picks for nicobot serve and the trivial servers
        "uvicorn_loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        "uvicorn_http": "httptools" if importlib.util.find_spec("httptools") else "h11",
        "cpu": cpu,
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
    }


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    if isinstance(data.get("machine"), dict):
        data["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path


def table(rows: list[list[Any]], headers: list[str]) -> str:
    cells = [[str(c) for c in headers]] + [[_cell(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return str(value)


def run_async(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run on uvloop when it is installed (as uvicorn does), else on asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


# processes


class Processes:
    """Child processes that are always stopped: SIGTERM, then SIGKILL after a grace."""

    def __init__(self) -> None:
        self.children: list[subprocess.Popen[Any]] = []
        self.servers: list[ServerProcess] = []
        self.tmp = tempfile.TemporaryDirectory(prefix="nicobot-bench-")
        self.dir = Path(self.tmp.name)

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def spawn(self, args: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
        process = subprocess.Popen(args, **kwargs)
        self.children.append(process)
        return process

    def stop(self, process: subprocess.Popen[Any], grace: float = 10.0) -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)

    def close(self) -> None:
        for server in reversed(self.servers):
            server.stop(timeout=15)
        for process in reversed(self.children):
            self.stop(process)
        self.keep_logs()
        self.tmp.cleanup()

    def keep_logs(self) -> None:
        """Copy the servers' logs to ``$NICOBOT_BENCH_LOGS`` (when set) before the run's
        folder goes."""
        target = os.environ.get(LOGS_ENV)
        if not target:
            return
        folder = Path(target) / self.dir.name
        for log in self.dir.rglob("*.log"):
            destination = folder / log.relative_to(self.dir)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(log, destination)


def wait_http(
    url: str, timeout: float = 30.0, process: subprocess.Popen[Any] | None = None
) -> None:
    """Until ``url`` answers anything over HTTP."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise BenchError(f"{' '.join(map(str, process.args))} exited early")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.02)
    raise BenchError(f"{url} did not answer within {timeout:.0f}s")


def start_fake_llm(procs: Processes, latency: float) -> str:
    port = free_port()
    args = ["-m", "nicobot.testing.fake_llm", "--port", str(port), "--latency", str(latency)]
    process = procs.spawn([PYTHON, "-W", "ignore::RuntimeWarning", *args])
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/v1/models", process=process)
    return url


def start_gateway(procs: Processes, echo_sent: bool = False) -> Gateway:
    args = [str(HERE / "_gateway.py"), "--api-key", API_KEY, "--schemas", str(SCHEMAS)]
    process = procs.spawn(
        [PYTHON, *args, *(["--echo-sent"] if echo_sent else [])], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    match = re.search(r"listening on (http://\S+)", process.stdout.readline())
    if not match:
        raise BenchError("the fake gateway did not start")
    return Gateway(match.group(1), process.pid)


@dataclass
class Gateway:
    url: str
    pid: int
    seen: int = 0

    def control(self, action: str, **body: Any) -> Any:
        response = httpx.post(f"{self.url}/_fake/{action}", json=body, timeout=60)
        response.raise_for_status()
        return response.json()

    def state(self) -> Any:
        response = httpx.get(f"{self.url}/_fake/state", timeout=60)
        response.raise_for_status()
        return response.json()

    def new_sends(self) -> list[tuple[float, str, str]]:
        """Replies the gateway accepted since the last call: (monotonic time, number, text)."""
        sent = self.control("bench-sent", after=self.seen)["sent"]
        self.seen += len(sent)
        return [tuple(s) for s in sent]


@dataclass
class Hook:
    """Where and how the gateway calls nicobot, as nicobot configured it."""

    url: str
    headers: dict[str, str]
    instance: str
    token: str
    template: dict[str, Any] = field(default_factory=dict)

    def body(self, text: str, number: str, message_id: str, name: str = "Contact") -> bytes:
        """A ``messages.upsert`` body shaped like the recorded v2 fixture."""
        body = copy.deepcopy(self.template)
        data = body["data"]
        data["key"] = {"remoteJid": f"{number}@s.whatsapp.net", "fromMe": False, "id": message_id}
        data["pushName"] = name
        data["message"]["conversation"] = text
        data["messageTimestamp"] = int(time.time())
        body.update(
            instance=self.instance,
            destination=self.url,
            apikey=self.token,
            date_time=datetime.now().isoformat(timespec="milliseconds") + "Z",
        )
        return json.dumps(body).encode()


def nicobot_env(llm_url: str, gateway: Gateway, port: int, concurrency: int) -> dict[str, str]:
    return {
        "NICOBOT_MODEL": MODEL,
        "NICOBOT_LLM_API_BASE": llm_url + "/v1",
        "NICOBOT_LLM_API_KEY": "fake-key",
        "EVOLUTION_API_URL": gateway.url,
        "EVOLUTION_API_KEY": API_KEY,
        "NICOBOT_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "NICOBOT_CHANNELS__WHATSAPP__DEBOUNCE_SECONDS": "0",
        "NICOBOT_CHANNELS__WHATSAPP__TYPING_MAX_SECONDS": "0",
        "NICOBOT_PIPELINE__CONCURRENCY": str(concurrency),
    }


def wait_llm_ready(url: str, timeout: float = 120.0) -> float:
    """Poll ``/readyz`` until litellm is imported; returns the monotonic time it was."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            answer = httpx.get(url + "/readyz", timeout=2)
            if answer.status_code == 200 and answer.json().get("llm") == "ready":
                return time.monotonic()
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    raise BenchError(f"/readyz did not report llm ready within {timeout:.0f}s")


@dataclass
class Stack:
    server: ServerProcess
    gateway: Gateway
    hook: Hook
    llm_url: str

    @property
    def pid(self) -> int:
        assert self.server.process is not None
        return self.server.process.pid


def start_stack(
    procs: Processes,
    *,
    latency: float,
    concurrency: int,
    echo_sent: bool = False,
    extra_env: dict[str, str] | None = None,
) -> Stack:
    """Fake LLM, fake gateway and ``nicobot serve``, paired as an operator would pair them;
    ``extra_env`` adds settings (workers, the store, the model)."""
    llm_url = start_fake_llm(procs, latency)
    gateway = start_gateway(procs, echo_sent)
    project = make_project(procs.dir / f"bot-{uuid.uuid4().hex[:6]}")
    port = free_port()
    env = {**nicobot_env(llm_url, gateway, port, concurrency), **(extra_env or {})}
    server = ServerProcess(project, env, port=port)
    procs.servers.append(server)
    try:
        server.start(timeout=60)
    except RuntimeError as exc:
        raise BenchError(str(exc).splitlines()[0]) from None
    with server.client() as api:
        answer = api.post("/api/channels/whatsapp/connect")
        if answer.status_code != 200:
            raise BenchError(f"connect answered {answer.status_code}: {answer.text[:200]}")
    gateway.control("scan")
    [instance] = gateway.state()["instances"].values()
    webhook = instance["webhook"]
    template = json.loads(FIXTURE.read_text(encoding="utf-8"))["body"]
    hook = Hook(
        webhook["url"],
        {"user-agent": "axios/1.7.9", "content-type": "application/json", **webhook["headers"]},
        instance["name"],
        instance["token"],
        template,
    )
    wait_llm_ready(server.url)
    return Stack(server, gateway, hook, llm_url)


# the load generator


@dataclass
class Request:
    url: str
    body: bytes
    headers: dict[str, str]
    tag: Any = None


@dataclass
class Sent:
    tag: Any
    start: float  # monotonic; the scheduled time in open loop
    latency: float
    status: int | None
    answer: bytes = b""
    error: str | None = None


async def send_all(
    requests: Iterable[Request],
    *,
    rate: float | None = None,
    connections: int = 64,
    limit_seconds: float = 600.0,
) -> tuple[list[Sent], float]:
    """Send every request: open loop at ``rate`` per second (latency counted from each
    request's scheduled time, so a stalled server cannot hide its queue), or closed loop
    with ``connections`` senders when ``rate`` is None. Returns the results and the wall
    time from the first send to the last answer."""
    import aiohttp

    results: list[Sent] = []
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(request: Request, start: float) -> None:
            status, answer, error = None, b"", None
            try:
                async with session.post(
                    request.url, data=request.body, headers=request.headers
                ) as response:
                    answer = await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = type(exc).__name__
            results.append(
                Sent(request.tag, start, time.monotonic() - start, status, answer, error)
            )

        t0 = time.monotonic()
        deadline = t0 + limit_seconds
        if rate is None:
            pending = iter(requests)

            async def worker() -> None:
                for request in pending:
                    if time.monotonic() > deadline:
                        return
                    await one(request, time.monotonic())

            await asyncio.gather(*(worker() for _ in range(connections)))
        else:
            tasks = []
            for i, request in enumerate(requests):
                at = t0 + i / rate
                if at > deadline:
                    break
                delay = at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(request, at)))
            if tasks:
                await asyncio.wait(tasks, timeout=max(1.0, deadline - time.monotonic()))
        return results, time.monotonic() - t0


# a load through the whole path


def build_requests(
    hook: Hook, count: int, conversations: int, dup: float, rng: random.Random
) -> tuple[list[Request], dict[str, str]]:
    """``count`` unique messages round-robin over the conversations, plus ``dup`` of them
    again (the identical body a few requests later, as the gateway retries); returns the
    requests in sending order and {expected reply: number}."""
    tag = uuid.uuid4().hex[:6]
    keyed: list[tuple[float, Request]] = []
    expected: dict[str, str] = {}
    duplicated = set(rng.sample(range(count), round(count * dup)))
    for i in range(count):
        conversation = i % conversations
        number = f"54911{conversation:08d}"
        text = f"bench {tag} c{conversation} m{i}"
        body = hook.body(text, number, uuid.uuid4().hex.upper(), name=f"Client {conversation}")
        request = Request(hook.url, body, hook.headers, tag=text)
        keyed.append((i, request))
        if i in duplicated:
            keyed.append((i + rng.uniform(1, 20), request))
        expected["Echo: " + text] = number
    keyed.sort(key=lambda pair: pair[0])
    return [request for _, request in keyed], expected


def collect_replies(
    gateway: Gateway, expected: dict[str, str], idle: float, cap: float
) -> list[tuple[float, str, str]]:
    """Poll the gateway until every expected reply came, nothing new came for ``idle``
    seconds, or ``cap`` seconds passed; then once more after a pause, for late duplicates."""
    replies: list[tuple[float, str, str]] = []
    missing = set(expected)
    started = last_new = time.monotonic()
    while missing and time.monotonic() - last_new < idle and time.monotonic() - started < cap:
        new = gateway.new_sends()
        if new:
            last_new = time.monotonic()
            replies += new
            missing -= {text for _, _, text in new}
        time.sleep(0.05)
    time.sleep(1.0)
    return replies + gateway.new_sends()


def warm_up(stack: Stack, count: int = 5) -> None:
    """A few messages through the whole path (first LLM call, first Chroma query)."""
    requests, expected = build_requests(stack.hook, count, count, 0.0, random.Random(0))
    run_async(send_all(requests, connections=count, limit_seconds=30))
    replies = collect_replies(stack.gateway, expected, idle=30, cap=60)
    if not set(expected) <= {text for _, _, text in replies}:
        raise BenchError("warm-up: not every message was answered; see the server log")


def measure_load(
    stack: Stack,
    *,
    count: int,
    conversations: int,
    dup: float = 0.0,
    rate: float | None = None,
    connections: int = 64,
    drain_idle: float = 20.0,
    cap: float = 600.0,
) -> dict[str, Any]:
    """Send ``count`` messages as webhooks (open loop at ``rate`` webhooks/s, or closed
    loop), wait for their replies at the gateway, and measure the whole path."""
    rng = random.Random(f"{count}-{conversations}-{rate}")
    requests, expected = build_requests(stack.hook, count, conversations, dup, rng)
    stack.gateway.new_sends()  # skip what came before
    pids = {"nicobot": stack.pid, "gateway": stack.gateway.pid}
    cpu_before, gen_before = _cpu(pids), time.process_time()
    sent, wall = run_async(
        send_all(requests, rate=rate, connections=connections, limit_seconds=cap)
    )
    replies = collect_replies(stack.gateway, expected, drain_idle, cap)
    cpu_after, gen_cpu = _cpu(pids), time.process_time() - gen_before
    if not sent:
        raise BenchError("nothing was sent")
    first_send, last_send = min(s.start for s in sent), max(s.start for s in sent)
    window = max([t for t, _, _ in replies], default=time.monotonic()) - first_send

    sent_at: dict[str, float] = {}
    for s in sent:
        key = "Echo: " + s.tag
        sent_at[key] = min(s.start, sent_at.get(key, s.start))
    replied_at: dict[str, float] = {}
    duplicated = unexpected = late = 0
    for at, number, text in replies:
        if text.startswith(LATE_PREFIX):  # answered past delayed_reply_seconds: the same reply
            text = text.removeprefix(LATE_PREFIX)
            late += 1
        if expected.get(text) != number:
            unexpected += 1
        elif text in replied_at:
            duplicated += 1
        else:
            replied_at[text] = at
    by_number: dict[str, list[tuple[float, int]]] = {}
    for text, at in replied_at.items():
        by_number.setdefault(expected[text], []).append((at, int(text.rpartition(" m")[2])))
    out_of_order = sum(
        later < earlier
        for replies_in_order in by_number.values()
        for (_, earlier), (_, later) in itertools.pairwise(sorted(replies_in_order))
    )
    answers = [json.loads(s.answer) for s in sent if s.status == 200]
    nicobot_cpu = cpu_after["nicobot"] - cpu_before["nicobot"]
    return {
        "messages": count,
        "conversations": conversations,
        "webhooks": len(requests),
        "offered_per_s": rate,
        "webhooks_per_s": round(len(sent) / wall, 1),
        "answered_per_s": round(len(replied_at) / window, 1),
        "seconds": round(window, 2),
        "backlog_at_last_send": len(sent_at) - sum(t <= last_send for t in replied_at.values()),
        "webhook_ms": ms([s.latency for s in sent]),
        "reply_ms": ms([replied_at[t] - sent_at[t] for t in replied_at if t in sent_at]),
        "failed_webhooks": sum(s.status != 200 for s in sent) + len(requests) - len(sent),
        "accepted": sum(a.get("accepted", 0) for a in answers),
        "duplicates_refused": sum(a.get("duplicates", 0) for a in answers),
        "lost_replies": len(set(expected) - set(replied_at)),
        "duplicated_replies": duplicated,
        "unexpected_replies": unexpected,
        "late_apologies": late,
        "out_of_order_replies": out_of_order,
        "stages": stages(stack.server.project, expected) if stack.server else {},
        "cpu_pct": {
            **{k: round(100 * (cpu_after[k] - cpu_before[k]) / window) for k in pids},
            "generator": round(100 * gen_cpu / window),
        },
        "nicobot_cpu_ms_per_message": round(1000 * nicobot_cpu / count, 2),
        "nicobot_memory": proc_stats(stack.pid),
    }


def stages(project: Path, expected: dict[str, str]) -> dict[str, dict[str, float]]:
    """Where the reply time went, from nicobot's own database (read-only): inbox insert
    to reply stored with its outbox entry (queue + turn), and stored to sent (delivery)."""
    from nicobot.store.sqlite import DB_FILE

    if not (project / "data" / DB_FILE).is_file():  # another store
        return {}
    db = sqlite3.connect(f"file:{project / 'data' / DB_FILE}?mode=ro", uri=True, timeout=30)
    try:
        received = {
            "Echo: " + json.loads(payload)["text"]: at
            for payload, at in db.execute("SELECT payload, received_at FROM inbox")
        }
        stored, delivered = [], []
        for text, created, sent in db.execute("SELECT text, created_at, sent_at FROM outbox"):
            if text in expected and text in received and sent:
                created_at = datetime.fromisoformat(created).timestamp()
                stored.append(created_at - received[text])
                delivered.append(datetime.fromisoformat(sent).timestamp() - created_at)
    finally:
        db.close()
    return {"received_to_stored_ms": ms(stored), "stored_to_sent_ms": ms(delivered)}


def problems(label: str, result: dict[str, Any]) -> list[str]:
    """What went wrong in a :func:`measure_load` result (nothing, normally)."""
    found = [
        f"{label}: {result[key]} {key.replace('_', ' ')}"
        for key in ("lost_replies", "duplicated_replies", "unexpected_replies", "failed_webhooks")
        if result[key]
    ]
    accepted, refused = result["accepted"], result["duplicates_refused"]
    if accepted != result["messages"] or accepted + refused != result["webhooks"]:
        found.append(
            f"{label}: {result['messages']} messages in {result['webhooks']} webhooks, but "
            f"{accepted} accepted and {refused} refused as duplicates"
        )
    return found


def _cpu(pids: dict[str, int]) -> dict[str, float]:
    return {name: proc_stats(pid).get("tree_cpu_s", 0.0) for name, pid in pids.items()}
