"""Where riskengine keeps what it can reuse between runs: ``$RISKENGINE_CACHE`` (default
``~/.cache/riskengine``), one folder per kind (``jax``: compiled XLA programs; ``programs``:
whole compiled programs of :mod:`riskengine.programs`, loaded without tracing; ``native``:
the hedging package's CPU kernels).

JAX's persistent compilation cache is on for every ``riskengine run`` (so a second run of
a job loads its compiled programs instead of compiling them again); set
``RISKENGINE_COMPILATION_CACHE=0`` to turn it off (and the ``programs`` folder with it).
Entries are keyed by JAX on the program, the backend, the compiler options and the
versions, so a stale entry is never used.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

CACHE_ENV = "RISKENGINE_CACHE"
COMPILATION_CACHE_ENV = "RISKENGINE_COMPILATION_CACHE"

_programs: Path | None = None  # set by enable_compilation_cache


def cache_dir(kind: str) -> Path:
    """``$RISKENGINE_CACHE/<kind>``, created; the system's temporary folder when that cannot
    be created (a read-only home)."""
    path = Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "riskengine")) / kind
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        user = os.getuid() if hasattr(os, "getuid") else 0
        path = Path(tempfile.gettempdir()) / f"riskengine-{kind}-{user}"
        path.mkdir(parents=True, exist_ok=True)
    return path


def enable_compilation_cache() -> Path | None:
    """Turn on JAX's persistent compilation cache in ``cache_dir("jax")`` for every program
    however quick to compile (unless ``RISKENGINE_COMPILATION_CACHE=0``); return the folder."""
    if os.environ.get(COMPILATION_CACHE_ENV, "1").strip().lower() in ("0", "false", "off", "no"):
        return None
    import jax

    try:
        path = cache_dir("jax")
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    global _programs
    try:
        _programs = cache_dir("programs")
    except OSError:
        _programs = None
    return path


def programs_dir() -> Path | None:
    """``cache_dir("programs")`` once :func:`enable_compilation_cache` has turned the cache
    on in this process; None otherwise (a library caller, or the cache turned off)."""
    return _programs
