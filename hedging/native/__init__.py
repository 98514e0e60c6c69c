"""Native CPU kernels, built by ``make install`` (``python -m hedging.native``) with the
system's C++ compiler and cached; chosen explicitly (``train.backend: native``).

``mlp_rollout.cc``: the recurrent perceptron's date loop, forward and reverse, as XLA FFI
custom calls (float32, hidden width 32) — see :mod:`hedging.rollout`. Everything works without
them: ``backend: jax`` (the default) runs the same function and gradients (to rounding) in
plain JAX; ``backend: native`` where the library is not built is refused with a clear message.

The library is built once per source version and machine into ``$RISKENGINE_CACHE`` (default
``~/.cache/riskengine``), written to a temporary name and renamed, so that concurrent first
uses do not see a half-written file. ``make install`` builds it ahead of time.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import jax

from riskengine.cache import cache_dir as riskengine_cache_dir

SOURCE = Path(__file__).with_name("mlp_rollout.cc")
FLAGS = ("-O3", "-march=native", "-std=c++17", "-shared", "-fPIC", "-pthread", "-fno-math-errno")
TARGETS = {"riskengine_mlp_rollout_forward": "MlpRolloutForward",
           "riskengine_mlp_rollout_reverse": "MlpRolloutReverse"}


def cache_dir() -> Path:
    """``$RISKENGINE_CACHE/native`` (default ``~/.cache/riskengine/native``); the system's temporary
    folder when that cannot be created (a read-only home)."""
    return riskengine_cache_dir("native")


def _cpu_signature() -> bytes:
    """The CPU's instruction-set flags: ``-march=native`` code must not be loaded on another CPU
    (a cache directory shared between machines)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line.encode()
    except OSError:
        pass
    return (platform.processor() or platform.machine()).encode()


def library_path() -> Path:
    digest = hashlib.sha256(SOURCE.read_bytes() + " ".join(FLAGS).encode() + _cpu_signature()
                            + jax.__version__.encode()).hexdigest()[:16]
    return cache_dir() / f"mlp_rollout-{digest}.so"


def build(*, force: bool = False) -> Path:
    """Compile the kernels (if not cached) and return the library's path; raises on failure."""
    target = library_path()
    if target.exists() and not force:
        return target
    compiler = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if compiler is None:
        raise RuntimeError("no C++ compiler (c++, g++ or clang++) on PATH")
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        out = Path(tmp) / target.name
        cmd = [compiler, *FLAGS, f"-I{jax.ffi.include_dir()}", str(SOURCE), "-o", str(out)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"building {SOURCE.name} failed:\n{done.stderr[-2000:]}")
        os.replace(out, target)
    return target


@functools.cache
def available() -> bool:
    """Whether the native kernels are built (by ``make install`` / :func:`build`; nothing is
    compiled here) and now registered with XLA for the CPU."""
    if os.environ.get("RISKENGINE_NATIVE", "1") == "0":
        return False
    target = library_path()
    if not target.exists():
        return False
    try:
        lib = ctypes.cdll.LoadLibrary(str(target))
        for name, symbol in TARGETS.items():
            jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(lib, symbol)), platform="cpu")
    except (OSError, RuntimeError, AttributeError) as err:
        warnings.warn(f"hedging: native CPU kernels unavailable, using plain JAX ({err})", stacklevel=2)
        return False
    return True


if __name__ == "__main__":  # python -m hedging.native: build the kernels (make install does)
    print(build())
