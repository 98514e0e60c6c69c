"""Compiled programs kept whole between runs, loaded without tracing.

JAX's persistent compilation cache (:mod:`riskengine.cache`) spares a second run XLA's
compilation, not JAX's tracing and lowering, which redo in Python all the work of building
the program: for a Monte Carlo chunk with forward-mode Greeks of a Heston QE simulation
they take about 1 s, as long as the simulation of 16384 paths itself. :func:`persistent_jit`
is ``jax.jit`` for a function whose caller can name everything it closes over in a stable
``key``: the compiled executable is serialised into ``cache.programs_dir()`` the first time,
and a later run that asks for the same program deserialises it and calls it, with no
tracing, lowering or compilation cache look-up. It is the very executable the first run
ran, so its results are bitwise the same.

A stored program is found by a fingerprint of the ``key``, the arguments' tree structure
(model classes and their static fields) and their shapes, dtypes and weak types, the
compiler options, the source of the riskengine package, the versions of jax, jaxlib,
equinox and numpy, JAX's configuration flags (x64, PRNG implementation, ...), the backend,
its device and, on CPU, the processor's model and instruction-set flags. Any change to any
of them makes a new entry: an old one is never used for another program, only left behind.
A file that cannot be read back (truncated, from another jaxlib) is compiled again and
replaced; a folder that cannot be written only costs the saving.

Without :func:`riskengine.cache.enable_compilation_cache` (a library caller, tests, or
``RISKENGINE_COMPILATION_CACHE=0``), and in a ``jax.distributed`` run, it is plain
``jax.jit``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
import os
import pickle
import platform
import secrets
import sys
import tempfile
import threading
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import jax

from riskengine import cache

SUFFIX = ".program"


def persistent_jit(fn: Callable, *, key: Hashable, compiler_options: dict[str, Any] | None = None) -> Callable:
    """``jax.jit(fn, compiler_options=...)``, kept between runs under ``key``.

    ``key`` must be a value whose ``repr`` is the same in every process and names
    everything ``fn`` closes over (its static configuration); ``fn``'s code is covered by
    the package source in the fingerprint. Positional arguments only."""
    jitted = jax.jit(fn, compiler_options=compiler_options)
    loaded: dict[tuple, Callable] = {}  # by (folder, tree, argument avals, JAX's flags)
    lock = threading.Lock()

    @functools.wraps(fn)
    def call(*args):
        folder = cache.programs_dir()
        if folder is None or jax.process_count() > 1:
            return jitted(*args)
        leaves, treedef = jax.tree.flatten(args)
        flags = jax_flags()
        signature = (folder, treedef, tuple(_aval(leaf) for leaf in leaves), flags)
        program = loaded.get(signature)
        if program is not None:
            return program(*leaves)
        with lock:  # threads asking at once for a program not yet here: one loads or compiles it
            program = loaded.get(signature)
            if program is not None:
                return program(*leaves)
            digest = _fingerprint(key, treedef, signature[2], compiler_options, flags)
            path = folder / f"{digest}{SUFFIX}"
            program = _load(path)
            if program is not None:
                try:  # the first call waits for its result: a program that loads but cannot run
                    result = jax.block_until_ready(program(*leaves))  # says so only then
                except jax.errors.JaxRuntimeError:
                    program = None  # compile it again
            if program is None:
                program = _compile(fn, treedef, leaves, compiler_options)
                _store(path, program)
                result = program(*leaves)
            loaded[signature] = program
            return result

    return call


def _load(path: Path) -> Callable | None:
    """The executable stored at ``path``; None when absent, truncated or not loadable by
    this jaxlib."""
    from jax.experimental import serialize_executable

    try:
        with open(path, "rb") as f:
            payload, in_tree, out_tree = pickle.load(f)
        return serialize_executable.deserialize_and_load(payload, in_tree, out_tree)
    except Exception:
        return None


def _compile(fn: Callable, treedef, leaves: list, compiler_options) -> Callable:
    """``fn`` compiled on flat arguments (a deserialised executable rebuilds its argument
    tree with placeholder leaves, which an equinox model's unflattening does not accept).

    JAX's persistent compilation cache stays out of it: an executable loaded from there
    serialises without its kernels (jaxlib 0.10.2 on CPU: the stored program then fails with
    ``NOT_FOUND: Function multiply_add_fusion not found``). So the program gets a name no
    earlier compilation had (JAX's cache cannot have it), and JAX does not keep it."""

    def flat(*flat_leaves):
        return fn(*jax.tree.unflatten(treedef, flat_leaves))

    flat.__name__ = f"{getattr(fn, '__name__', 'program')}_{secrets.token_hex(8)}"
    lowered = jax.jit(flat, compiler_options=compiler_options).lower(*leaves)
    with _outside_jax_cache():
        return lowered.compile()


_outside = threading.Lock()
_compiling = 0  # programs compiling in here now, on any thread
_threshold = 0.0  # JAX's own setting, put back when the last of them is done


@contextlib.contextmanager
def _outside_jax_cache():
    """JAX's persistent cache stores no program compiled in here. The flag is global, and
    two threads may compile at once (a price job's references beside its chunk): it is
    switched by the first and put back by the last, so that no thread puts back the other's
    infinity and JAX's cache stays off for the rest of the process."""
    global _compiling, _threshold
    with _outside:
        if _compiling == 0:
            _threshold = jax.config.jax_persistent_cache_min_compile_time_secs
            jax.config.update("jax_persistent_cache_min_compile_time_secs", math.inf)
        _compiling += 1
    try:
        yield
    finally:
        with _outside:
            _compiling -= 1
            if _compiling == 0:
                jax.config.update("jax_persistent_cache_min_compile_time_secs", _threshold)


def _store(path: Path, compiled) -> None:
    """Write ``compiled`` to ``path`` atomically; give up quietly (a full or read-only
    disk, a program that cannot be serialised): storing only saves time."""
    from jax.experimental import serialize_executable

    tmp = None
    try:
        data = pickle.dumps(serialize_executable.serialize(compiled))
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except Exception:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _aval(leaf) -> tuple:
    """What of an argument a compiled program depends on: shape, dtype, weak type."""
    aval = jax.typeof(leaf)
    return tuple(aval.shape), str(aval.dtype), bool(getattr(aval, "weak_type", False))


# Flags of JAX's own compilation cache and of its logging: they do not change what a program
# compiles to, and one of them is switched for a moment while a program compiles (see
# _compile), which another thread must not take for a different program.
_NOT_PROGRAM_FLAGS = ("jax_compilation_cache_", "jax_persistent_cache_", "jax_enable_compilation_cache",
                      "jax_raise_persistent_cache_errors", "jax_explain_cache_misses", "jax_log_compiles",
                      "jax_logging_level", "jax_debug_log_modules", "jax_compiler_detailed_logging_min_ops")


def jax_flags() -> tuple:
    """JAX's configuration flags that can change a compiled program, as the calling thread
    sees them now (``jax.enable_x64`` and the like change them for one thread, for a while)."""
    return tuple(sorted((k, repr(v)) for k, v in jax.config.values.items() if not k.startswith(_NOT_PROGRAM_FLAGS)))


def _fingerprint(key: Hashable, treedef, avals: tuple, compiler_options, flags: tuple) -> str:
    """The stored program's name (computed once per signature in a process: hashing the
    tree structure of a model's arguments costs milliseconds, a chunk's call as few)."""
    payload = repr((key, str(treedef), list(avals), sorted((compiler_options or {}).items()), _environment(), list(flags)))
    return hashlib.sha256(payload.encode()).hexdigest()


@functools.lru_cache(maxsize=1)
def _environment() -> str:
    """What, besides a program's key, its arguments and JAX's flags (which a thread can
    change for itself, e.g. ``jax.enable_x64``), decides what it compiles to."""
    import equinox
    import jaxlib
    import numpy

    device = jax.devices()[0]
    parts = [_source_digest(), sys.version, jax.__version__, jaxlib.__version__, equinox.__version__,
             numpy.__version__, device.platform, device.device_kind, device.client.platform_version]
    if device.platform == "cpu":
        parts.append(_cpu())
    return repr(parts)


def _source_digest() -> str:
    """SHA-256 of every Python file of the riskengine package (names and contents)."""
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _cpu() -> str:
    """The processor's model and instruction-set flags (XLA compiles for the host's)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return f"{platform.machine()} {platform.processor()}"
    wanted = ("model name", "flags", "Features", "CPU implementer", "CPU part")
    seen = {}
    for line in lines:
        name, _, value = line.partition(":")
        name = name.strip()
        if name in wanted and name not in seen:
            seen[name] = value.strip()
    return f"{platform.machine()} {sorted(seen.items())}"
