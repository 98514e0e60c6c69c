"""Scaling out on JAX's own runtime: local devices through ``jax.sharding``, hosts through
``jax.distributed``.

The unit of work everywhere is a *block* of paths keyed ``fold_in(key, block_index)``
(:mod:`riskengine.simulate`). A compiled chunk of blocks is split over the local devices
by :func:`shard_blocks` (``jit`` with :class:`jax.sharding.NamedSharding` on a 1-D
:class:`jax.sharding.Mesh` with axis ``"blocks"``); chunks are dealt to processes round-robin (:func:`round_robin`) and the
per-block results of each round are exchanged with
:func:`jax.experimental.multihost_utils.process_allgather` (:func:`allgather`), so every
process accumulates every block in global block order and gets the same numbers, bit for
bit, as one process on one device.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

AXIS = "blocks"
_COORDINATOR = re.compile(r"^\[?[A-Za-z0-9_.:-]+\]?:\d{1,5}$")


def initialize(*, coordinator: str, num_processes: int, process_id: int) -> None:
    """Join a run of ``num_processes`` processes through ``jax.distributed`` (the
    coordinator is process 0's ``HOST:PORT``). CPU collectives go through gloo.

    Must be called before any JAX computation. Raises ``ValueError`` on bad arguments."""
    check_process_arguments(coordinator=coordinator, num_processes=num_processes, process_id=process_id)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=coordinator, num_processes=num_processes, process_id=process_id
    )


def joined() -> bool:
    """Whether this process joined a ``jax.distributed`` run (:func:`initialize`)."""
    return jax.distributed.is_initialized()


def check_process_arguments(*, coordinator: str | None, num_processes: int | None, process_id: int | None) -> None:
    """Validate ``--coordinator/--num-processes/--process-id`` (all three or none)."""
    given = [x is not None for x in (coordinator, num_processes, process_id)]
    if any(given) and not all(given):
        raise ValueError("--coordinator, --num-processes and --process-id: give all three or none")
    if not any(given):
        return
    if not _COORDINATOR.match(coordinator):
        raise ValueError(f"--coordinator: expected HOST:PORT, got {coordinator!r}")
    if num_processes < 1:
        raise ValueError(f"--num-processes: must be >= 1, got {num_processes}")
    if not 0 <= process_id < num_processes:
        raise ValueError(f"--process-id: must be in [0, {num_processes}), got {process_id}")


def process_index() -> int:
    return jax.process_index()


def process_count() -> int:
    return jax.process_count()


def local_device_count(devices: int | None = None) -> int:
    """``devices`` checked against the local devices, or all of them when None."""
    available = jax.local_device_count()
    if devices is None:
        return available
    if not 1 <= devices <= available:
        raise ValueError(f"devices: must be in [1, {available}] (the local devices), got {devices}")
    return devices


@functools.lru_cache(maxsize=16)
def local_mesh(devices: int) -> Mesh:
    """A 1-D mesh over the first ``devices`` local devices, axis ``"blocks"``."""
    return Mesh(np.asarray(jax.local_devices()[:devices]), (AXIS,))


def shard_blocks(fn: Callable, *, devices: int, in_specs: tuple, compiler_options: dict | None = None) -> Callable:
    """``jit`` of ``fn`` with its block axis split over ``devices`` local devices.

    ``fn(*args)`` returns a pytree whose leaves have the block axis first; ``in_specs``
    says, per positional argument, ``"blocks"`` (split on its first axis) or None
    (replicated). The arguments and results carry NamedShardings
    over :func:`local_mesh` and XLA's SPMD partitioner splits the (vmapped) blocks, so
    each device runs the one-device computation of its blocks. With one device it is a
    plain ``jit``.

    (``shard_map`` over the same mesh was measured to change the last bit of a few
    per-path values of the stress revaluation against one device; the partitioned
    ``jit`` reproduced one device bit for bit, see ``tests/test_devices.py``.)
    """
    if devices == 1:
        return jax.jit(fn, compiler_options=compiler_options)
    mesh = local_mesh(devices)
    shardings = tuple(NamedSharding(mesh, P(AXIS) if s == AXIS else P()) for s in in_specs)
    return jax.jit(fn, in_shardings=shardings, out_shardings=NamedSharding(mesh, P(AXIS)),
                   compiler_options=compiler_options)


def round_robin(items: Sequence[Any], *, processes: int) -> list[list[Any]]:
    """Rounds of at most ``processes`` items, in order: in each round, process i takes the
    i-th item (a process without one repeats the round's last item and drops the result)."""
    return [list(items[i:i + processes]) for i in range(0, len(items), processes)]


def allgather(tree: Any) -> list[Any]:
    """Every process's ``tree`` (host arrays of identical shapes on every process), as a
    list indexed by process. The leaves travel as raw bytes, so float64 survives whatever
    ``jax_enable_x64`` says."""
    if jax.process_count() == 1:
        return [tree]
    from jax.experimental import multihost_utils

    leaves, treedef = jax.tree.flatten(tree)
    leaves = [np.ascontiguousarray(np.asarray(x)) for x in leaves]
    payload = np.concatenate([x.reshape(-1).view(np.uint8) for x in leaves]) if leaves else np.zeros(0, np.uint8)
    gathered = np.asarray(multihost_utils.process_allgather(payload))  # [processes, bytes]
    out = []
    for row in gathered:
        pieces, offset = [], 0
        for x in leaves:
            pieces.append(row[offset:offset + x.nbytes].view(x.dtype).reshape(x.shape).copy())
            offset += x.nbytes
        out.append(jax.tree.unflatten(treedef, pieces))
    return out
