"""How fast nicobot starts, and how much memory it holds when idle.

- ``nicobot --help`` and ``nicobot plugins``: wall time of the console script, ``--runs``
  times (median and min);
- ``nicobot serve`` on a ``nicobot init`` project with a model configured (the fake LLM
  process): time to the first 200 from ``/healthz``, time until ``/readyz`` says
  ``"llm": "ready"`` (litellm imported in the background), resident memory 2 s after
  that, and the time SIGTERM takes to stop it. Each run starts a fresh project (new
  database, knowledge ingested) and then restarts it (the common case); both are
  reported. Polling is every 10 ms.

    .venv/bin/python benchmarks/startup.py [--quick] [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import _harness as h
import httpx

NICOBOT = str(Path(h.PYTHON).parent / "nicobot")


def cli_times(args: list[str], runs: int) -> dict[str, Any]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            [NICOBOT, *args], capture_output=True, timeout=120, cwd=h.ROOT, check=False
        )
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise h.BenchError(f"nicobot {' '.join(args)} exited {done.returncode}")
    return {"runs": runs, "median_s": round(h.median(times), 3), "min_s": round(min(times), 3)}


def poll(check: Any, what: str, process: subprocess.Popen[Any], timeout: float = 120) -> float:
    """Poll ``check()`` every 10 ms until true; returns the monotonic time it was."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise h.BenchError(f"nicobot serve exited while waiting for {what}")
        try:
            if check():
                return time.monotonic()
        except httpx.TransportError:
            pass
        time.sleep(0.01)
    raise h.BenchError(f"nicobot serve: no {what} within {timeout:.0f}s")


def serve_once(procs: h.Processes, project: Path, llm_url: str) -> dict[str, float]:
    port = h.free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "NICOBOT_MODEL": h.MODEL,
        "NICOBOT_LLM_API_BASE": llm_url + "/v1",
        "NICOBOT_LLM_API_KEY": "fake-key",
    }
    with (project / "server.log").open("ab") as log:
        started = time.monotonic()
        process = procs.spawn(
            [NICOBOT, "serve", "--project", str(project), "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        healthy = poll(
            lambda: httpx.get(url + "/healthz", timeout=1).status_code == 200, "/healthz", process
        )
        ready = poll(
            lambda: httpx.get(url + "/readyz", timeout=1).json().get("llm") == "ready",
            "/readyz llm ready",
            process,
        )
        time.sleep(2.0)
        memory = h.proc_stats(process.pid)
        stopping = time.monotonic()
        procs.stop(process, grace=30)
        stopped = time.monotonic()
    finally:
        procs.stop(process)
    return {
        "healthz_s": healthy - started,
        "llm_ready_s": ready - started,
        "idle_rss_mb": memory.get("rss_mb", float("nan")),
        "idle_rss_with_llm_process_mb": memory.get("tree_rss_mb", float("nan")),
        "stop_s": stopped - stopping,
    }


def summarise(samples: list[dict[str, float]]) -> dict[str, Any]:
    keys = samples[0].keys()
    return {
        "runs": len(samples),
        **{f"{k}_median": round(h.median([s[k] for s in samples]), 3) for k in keys},
        **{f"{k}_min": round(min(s[k] for s in samples), 3) for k in keys},
    }


def report(data: dict[str, Any]) -> str:
    rows = [
        [f"nicobot {name}", r["runs"], r["median_s"], r["min_s"], ""]
        for name, r in (("--help", data["help"]), ("plugins", data["plugins"]))
    ]
    for name in ("serve_first_start", "serve_restart"):
        r = data[name]
        label = name.removeprefix("serve_").replace("_", " ")
        rows += [
            [
                f"serve {label}: /healthz 200",
                r["runs"],
                r["healthz_s_median"],
                r["healthz_s_min"],
                "",
            ],
            [
                f"serve {label}: llm ready",
                r["runs"],
                r["llm_ready_s_median"],
                r["llm_ready_s_min"],
                "",
            ],
            [f"serve {label}: SIGTERM to exit", r["runs"], r["stop_s_median"], r["stop_s_min"], ""],
            [f"serve {label}: idle RSS", r["runs"], "", "", f"{r['idle_rss_mb_median']} MB"],
            [
                f"serve {label}: idle RSS with its LLM process",
                r["runs"],
                "",
                "",
                f"{r.get('idle_rss_with_llm_process_mb_median', '?')} MB",
            ],
        ]
    return h.table(rows, ["what", "runs", "median s", "min s", "memory"])


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="3 CLI runs, 1 serve run")
    parser.add_argument("--runs", type=int, help="CLI runs (7); serve runs are half, at least 2")
    args = parser.parse_args()
    runs = args.runs or (3 if args.quick else 7)
    serve_runs = 1 if args.quick else max(2, (runs + 1) // 2)

    data: dict[str, Any] = {"mode": "quick" if args.quick else "full", "machine": h.machine()}
    data["help"] = cli_times(["--help"], runs)
    data["plugins"] = cli_times(["plugins"], runs)
    first, again = [], []
    with h.Processes() as procs:
        llm_url = h.start_fake_llm(procs, 0.0)
        for n in range(serve_runs):
            project = h.make_project(procs.dir / f"project-{n}")
            first.append(serve_once(procs, project, llm_url))
            again.append(serve_once(procs, project, llm_url))
    data["serve_first_start"] = summarise(first)
    data["serve_restart"] = summarise(again)
    print(report(data))
    print(f"wrote {h.write_result('startup', data)}")


if __name__ == "__main__":
    h.main(run)
