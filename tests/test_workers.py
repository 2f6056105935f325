"""Several workers on one store: two `nicobot serve` on one PostgreSQL and one Chroma server,
and `nicobot serve --workers 2` on SQLite. Real processes, the fake Evolution gateway as a
process, the fake LLM; workers are killed with SIGKILL."""

from __future__ import annotations

import contextlib
import os
import re
import signal
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from nicobot_whatsapp_evolution.testing import GatewayProcess

from nicobot.cli.workers import ChromaServer
from nicobot.testing import FakeLLM, ServerProcess, free_port, make_project, wait_until
from test_pipeline_e2e import API_KEY, SCHEMAS

DEADLINE = 120.0


@pytest.fixture
def gateway() -> Iterator[GatewayProcess]:
    gw = GatewayProcess(API_KEY, SCHEMAS)
    yield gw
    gw.stop()


def whatsapp_env(gateway: GatewayProcess, fake_llm: FakeLLM, public_url: str) -> dict[str, str]:
    return {
        **fake_llm.env,
        "EVOLUTION_API_URL": gateway.url,
        "EVOLUTION_API_KEY": API_KEY,
        "NICOBOT_PUBLIC_URL": public_url,
        "NICOBOT_CHANNELS__WHATSAPP__DEBOUNCE_SECONDS": "0",
        "NICOBOT_CHANNELS__WHATSAPP__TYPING_MAX_SECONDS": "0",
        "NICOBOT_PIPELINE__SEND_BACKOFF_SECONDS": "0.2",
        "NICOBOT_PIPELINE__SEND_BACKOFF_MAX_SECONDS": "1",
        "NICOBOT_PIPELINE__CONCURRENCY": "4",
        "NICOBOT_LLM__PROCESS": "inline",  # one LLM client import per server, not two
        "NICOBOT_KNOWLEDGE__EMBEDDER": "hashing",  # the cheapest: this is about workers
    }


def burst(gateway: GatewayProcess, conversations: int, per_conversation: int) -> list[str]:
    """Every conversation's messages in order, one in ten delivered twice at once."""
    numbers = [f"54911000007{n:02d}" for n in range(conversations)]

    def conversation(index: int) -> int:
        number, accepted = numbers[index], 0
        for n in range(per_conversation):
            copies = 2 if (index * per_conversation + n) % 10 == 0 else 1
            deliveries = gateway.control(
                "deliver",
                text=f"{number} m{n}",
                number=number,
                copies=copies,
                message_id=f"{number}-{n}",
            )
            assert all(d["status"] == 200 for d in deliveries), deliveries
            accepted += sum(d["answer"].get("accepted", 0) for d in deliveries)
        return accepted

    with ThreadPoolExecutor(max_workers=10) as pool:
        assert sum(pool.map(conversation, range(conversations))) == conversations * per_conversation
    return numbers


def held_by(url: str, server: ServerProcess) -> bool:
    """True while ``server``'s process has claimed turns in the store."""
    assert server.process is not None
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM inbox WHERE status = 'claimed' AND worker LIKE %s",
            (f"%:{server.process.pid}:%",),
        ).fetchone()
    return bool(row and row[0])


def answered_by(url: str) -> set[int]:
    """The pids of the processes that answered turns."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT DISTINCT worker FROM inbox WHERE status = 'done'").fetchall()
    return {int(worker.split(":")[1]) for (worker,) in rows}


def resumed_sends(server: ServerProcess) -> int:
    with server.client() as api:
        metrics = api.get("/metrics").text
    match = re.search(r'nicobot_resends_after_crash_total\{channel="whatsapp"\} (\d+)', metrics)
    return int(float(match.group(1))) if match else 0


def test_two_servers_on_one_postgres_survive_a_kill_mid_burst(
    tmp_path, gateway, fake_llm, postgres_url, chroma_server
):
    fake_llm.latency = 0.05
    project = make_project(tmp_path / "bot")
    public = ServerProcess(project)
    env = {
        **whatsapp_env(gateway, fake_llm, public.url),
        "NICOBOT_STORE__BACKEND": "postgres",
        "NICOBOT_STORE__URL": postgres_url,
        "NICOBOT_KNOWLEDGE__CHROMA_URL": chroma_server.url,
    }
    first = ServerProcess(project, env, port=public.port).start(timeout=60)
    second = ServerProcess(project, env).start(timeout=60)
    assert first.process is not None and second.process is not None
    first_pid, second_pid = first.process.pid, second.process.pid
    try:
        with first.client() as api:
            assert api.post("/api/channels/whatsapp/connect").status_code == 200
        gateway.control("scan")
        for server in (first, second):
            with server.client() as api:
                found = api.post("/api/knowledge/query", json={"q": "opening hours"})
                assert found.status_code == 200, found.text
                assert found.json()["snippets"], "both servers search the shared Chroma server"

        numbers: list[str] = []
        with ThreadPoolExecutor(max_workers=1) as background:
            burst_done = background.submit(burst, gateway, 30, 10)
            wait_until(
                "the second server answering, and holding a turn",
                lambda: second_pid in answered_by(postgres_url) and held_by(postgres_url, second),
                timeout=DEADLINE,
            )
            second.stop(signal.SIGKILL)  # mid-burst, holding turns
            numbers = burst_done.result(timeout=DEADLINE)

        expected = {n: [f"Echo: {n} m{k}" for k in range(10)] for n in numbers}
        wait_until(
            "every message answered",
            lambda: all(set(gateway.texts_to(n)) >= set(texts) for n, texts in expected.items()),
            timeout=DEADLINE,
        )
        sent = Counter(s["text"] for s in gateway.sent())
        doubled = [text for text, count in sent.items() if count > 1]
        # only a send cut between the gateway accepting it and the store recording it can
        # go twice: the survivor sends it again and counts it as resumed, one at most per
        # conversation
        assert len(doubled) <= resumed_sends(first) <= len(numbers), doubled
        for number, texts in expected.items():
            got = gateway.texts_to(number)
            assert sorted(set(got), key=got.index) == texts
        assert "resuming work of a stopped process" in first.log()
        assert answered_by(postgres_url) == {first_pid, second_pid}
    finally:
        second.stop()
        first.stop()


def worker_pids(log: str) -> list[int]:
    return [int(pid) for pid in re.findall(r"Started server process \[(\d+)\]", log)]


def live_worker(log: str) -> int:
    """A worker process that runs now (on a loaded machine the supervisor may already have
    replaced one that missed its health check)."""
    for pid in worker_pids(log):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 0)
            return pid
    raise AssertionError(f"no live worker in the log:\n{log}")


def two_workers(project: Path) -> ServerProcess:
    """`nicobot serve` with two workers on ``project``, started."""
    server = ServerProcess(
        project,
        {"NICOBOT_SERVER__WORKERS": "2", "NICOBOT_KNOWLEDGE__EMBEDDER": "hashing"},
        port=free_port(),
    )
    return server.start(timeout=90)


def test_serve_with_two_workers_shares_the_store_and_knowledge(tmp_path):
    project = make_project(tmp_path / "bot")
    server = two_workers(project)
    try:
        wait_until("two workers", lambda: len(worker_pids(server.log())) >= 2, timeout=60)
        wait_until("both started", lambda: server.log().count("startup complete") >= 2)
        assert "Chroma server at http://127.0.0.1:" in server.log()
        assert "another worker is syncing the folder" in server.log() or (
            server.log().count("knowledge folder synced") == 1
        )
        with server.client() as api:
            for n in range(8):
                chat = api.post(
                    "/api/chat", json={"phone_number": f"549110000090{n}", "message": "hola"}
                )
                assert chat.status_code == 200, chat.text
                documents = api.get("/api/knowledge/documents")
                assert documents.status_code == 200
                assert len(documents.json()["documents"]) == 1
            assert len(api.get("/api/sessions").json()["sessions"]) == 8

        victim = live_worker(server.log())
        started, complete = len(worker_pids(server.log())), server.log().count("startup complete")
        os.kill(victim, signal.SIGKILL)
        wait_until("a new worker", lambda: len(worker_pids(server.log())) > started, timeout=60)
        wait_until("it started", lambda: server.log().count("startup complete") > complete)
        with server.client() as api:
            for n in range(4):
                chat = api.post(
                    "/api/chat", json={"phone_number": f"549110000091{n}", "message": "hola"}
                )
                assert chat.status_code == 200, chat.text
            assert len(api.get("/api/sessions").json()["sessions"]) == 12
    finally:
        code = server.stop()
    assert code == 0
    assert "Traceback" not in server.log()
    # the Chroma server is gone with the workers: the folder is free again
    assert not (tmp_path / "bot" / "data" / "chroma" / "nicobot.lock").read_text().strip()


def test_a_second_worker_set_on_a_busy_folder_is_one_line(tmp_path):
    project = make_project(tmp_path / "bot")
    holder = ChromaServer(project / "data" / "chroma").start()
    try:
        busy = ServerProcess(project, {"NICOBOT_SERVER__WORKERS": "2"})
        with pytest.raises(RuntimeError, match="exited early") as raised:
            busy.start(timeout=60)
        assert "is in use by" in str(raised.value)
        assert "Traceback" not in busy.log()
    finally:
        holder.stop()


#: What stops a replacement worker from starting: a config edited into an invalid one (the
#: app cannot be made), or a store that does not answer (the app's start-up fails).
BREAKAGES = {
    "invalid config": "\n[pipeline]\nconcurrency = -1\n",
    "store down": '\n[store]\nbackend = "postgres"\nurl = "postgresql://nicobot@127.0.0.1:9/nicobot"\n',
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_a_worker_that_cannot_start_again_does_not_stop_the_others(tmp_path, breakage):
    """uvicorn alone stops every worker when a replacement fails its start-up; here the
    others keep serving and the replacement is started again until it starts."""
    project = make_project(tmp_path / "bot")
    server = two_workers(project)
    config = project / "nicobot.toml"
    good = config.read_text(encoding="utf-8")
    try:
        wait_until("both started", lambda: server.log().count("startup complete") >= 2)
        config.write_text(good + BREAKAGES[breakage], encoding="utf-8")
        os.kill(live_worker(server.log()), signal.SIGKILL)
        wait_until("a failed restart", lambda: "could not start; the other workers" in server.log())
        with server.client() as api:
            for n in range(3):  # the other worker answers meanwhile
                chat = api.post(
                    "/api/chat", json={"phone_number": f"549110000092{n}", "message": "hola"}
                )
                assert chat.status_code == 200, chat.text
        config.write_text(good, encoding="utf-8")
        wait_until("the replacement started", lambda: server.log().count("startup complete") >= 3)
        assert server.process is not None and server.process.poll() is None
    finally:
        config.write_text(good, encoding="utf-8")
        code = server.stop()
    assert code == 0
