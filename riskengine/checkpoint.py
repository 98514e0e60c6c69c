"""Resumable runs: completed chunks of a Monte Carlo stream are written as they finish.

A :class:`Checkpoint` is a folder (the CLI uses ``<out>.checkpoint/``) with a
``manifest.json`` holding a fingerprint of everything that decides the numbers (the
validated config, seed and path count, the job, the package and JAX versions, the process
count). While one is *active* (:func:`active`), each streaming call of
:mod:`riskengine.simulate` opens a *stage*, named by its order in the run and a hash of its
inputs (key, arguments, path count, block size), and saves each completed chunk's
per-block results there, atomically (write to a temporary file, then rename). Started
again with ``resume=True``, a stage loads the chunks it finds instead of computing them:
the per-block results are the same bits, accumulated in the same block order, so the
result is bitwise the one of an uninterrupted run. A manifest with another fingerprint
is refused (:class:`CheckpointMismatch`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jax
import numpy as np

# Test hook: exit (as if killed) right after this many chunks were computed and saved.
EXIT_AFTER_ENV = "RISKENGINE_EXIT_AFTER_CHUNKS"
EXIT_CODE = 86
MANIFEST = "manifest.json"

_ACTIVE: Checkpoint | None = None


class CheckpointMismatch(ValueError):
    """A resume found a checkpoint written by a different run."""


class Checkpoint:
    """A checkpoint folder for one run (see the module docstring)."""

    def __init__(self, folder: str | Path, *, fingerprint: str, resume: bool, description: dict | None = None):
        self.folder = Path(folder)
        self.fingerprint = fingerprint
        self._description = description or {}
        manifest = self.folder / MANIFEST
        if self.folder.exists() or self.folder.is_symlink():
            found = _read_fingerprint(manifest)
            if found is None:  # not a checkpoint of ours: never delete what we did not write
                raise CheckpointMismatch(
                    f"{str(self.folder)!r} exists and is not a riskengine checkpoint; move it away or choose another --out"
                )
            if resume and found != fingerprint:
                raise CheckpointMismatch(
                    f"the checkpoint in {str(self.folder)!r} was written by a different run "
                    f"(config, seed, paths, process count or code: fingerprint {str(found)[:12]} != "
                    f"{fingerprint[:12]}); remove it or run without --resume"
                )
            if not resume:
                shutil.rmtree(self.folder)
        # The folder is created with the first saved chunk: a run that saves nothing leaves
        # nothing behind.
        self._stages = 0
        self._computed = 0
        self._exit_after = int(os.environ.get(EXIT_AFTER_ENV, "0") or 0)

    def ensure(self) -> Path:
        """Create the folder and its manifest now (for a consumer that saves its own files
        there, e.g. hedge training); return the folder."""
        self._ensure()
        return self.folder

    def _ensure(self) -> None:
        manifest = self.folder / MANIFEST
        if not manifest.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            _atomic_write(manifest, json.dumps({"fingerprint": self.fingerprint, **self._description}, indent=1).encode())

    def has_chunks(self) -> bool:
        """Whether anything was saved that a ``--resume`` could reuse."""
        return self.folder.is_dir() and any(p.name != MANIFEST for p in self.folder.iterdir())

    def stage(self, kind: str, identity: bytes) -> Stage:
        self._stages += 1
        digest = hashlib.sha256(identity).hexdigest()[:16]
        return Stage(self, self.folder / f"{self._stages:03d}-{kind}-{digest}")

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def _computed_one(self) -> None:
        self._computed += 1
        if self._exit_after and self._computed >= self._exit_after:
            os._exit(EXIT_CODE)  # as if killed: no clean-up, no output


class Stage:
    """The saved chunks of one streaming call."""

    def __init__(self, checkpoint: Checkpoint, folder: Path):
        self.checkpoint = checkpoint
        self.folder = folder

    def _path(self, first_block: int, blocks: int) -> Path:
        return self.folder / f"{first_block:010d}+{blocks}.npz"

    def has(self, first_block: int, blocks: int) -> bool:
        return self._path(first_block, blocks).exists()

    def load(self, first_block: int, blocks: int) -> Any:
        with np.load(self._path(first_block, blocks), allow_pickle=False) as data:
            structure = json.loads(bytes(data["__structure__"]).decode())
            leaves = [data[f"leaf_{i}"] for i in range(int(data["__leaves__"]))]
        return _decode(structure, iter(leaves))

    def save(self, first_block: int, blocks: int, tree: Any, *, write: bool = True) -> None:
        """Save one chunk (``write=False``: count it only, for a process that does not
        write); counts toward the test hook's exit."""
        if write:
            self.checkpoint._ensure()
            self.folder.mkdir(parents=True, exist_ok=True)
            leaves: list[np.ndarray] = []
            structure = _encode(tree, leaves)
            arrays = {f"leaf_{i}": np.asarray(x) for i, x in enumerate(leaves)}
            arrays["__structure__"] = np.frombuffer(json.dumps(structure).encode(), np.uint8)
            arrays["__leaves__"] = np.asarray(len(leaves))
            path = self._path(first_block, blocks)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=self.folder)
            try:
                with os.fdopen(fd, "wb") as f:
                    np.savez(f, **arrays)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        self.checkpoint._computed_one()


def _encode(tree: Any, leaves: list) -> Any:
    if isinstance(tree, dict):
        return {"d": {str(k): _encode(v, leaves) for k, v in tree.items()}}
    if isinstance(tree, tuple | list):
        return {"t" if isinstance(tree, tuple) else "l": [_encode(v, leaves) for v in tree]}
    if tree is None:
        return {"n": 0}
    leaves.append(np.asarray(tree))
    return {"a": len(leaves) - 1}


def _decode(structure: Any, leaves: Iterator[np.ndarray]) -> Any:
    (kind, value), = structure.items()
    if kind == "d":
        return {k: _decode(v, leaves) for k, v in value.items()}
    if kind in ("t", "l"):
        items = [_decode(v, leaves) for v in value]
        return tuple(items) if kind == "t" else items
    if kind == "n":
        return None
    return next(leaves)


def _read_fingerprint(manifest: Path) -> str | None:
    try:
        found = json.loads(manifest.read_text()).get("fingerprint")
    except (OSError, ValueError, AttributeError):
        return None
    return found if isinstance(found, str) else None


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def identity(*parts: Any) -> bytes:
    """Bytes that identify a stage's inputs: array leaves by dtype, shape and content
    (typed PRNG keys by their key data), anything else by ``repr``."""
    h = hashlib.sha256()
    for part in parts:
        for leaf in jax.tree.leaves(part):
            if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
                leaf = jax.random.key_data(leaf)
            if isinstance(leaf, jax.Array | np.ndarray | np.generic):
                arr = np.asarray(leaf)
                h.update(f"{arr.dtype}{arr.shape}".encode())
                h.update(np.ascontiguousarray(arr).tobytes())
            else:
                h.update(repr(leaf).encode())
    return h.digest()


def current() -> Checkpoint | None:
    """The active checkpoint, or None."""
    return _ACTIVE


@contextlib.contextmanager
def active(checkpoint: Checkpoint | None) -> Iterator[Checkpoint | None]:
    """Make ``checkpoint`` the one streaming calls save to, for the ``with`` block."""
    global _ACTIVE
    previous, _ACTIVE = _ACTIVE, checkpoint
    try:
        yield checkpoint
    finally:
        _ACTIVE = previous
