"""The one simulation driver every job reuses.

Paths are grouped in fixed-size *blocks* of ``block_size`` paths. Block ``b`` draws all its
randomness from ``jax.random.fold_in(key, b)`` (and, at time step ``t``, from
``fold_in(fold_in(key, b), t)``), so the paths a seed produces do not depend on how many
blocks are processed at once (``chunk_paths``), nor later on how many devices or hosts
share the work. Reductions are summed inside each block by a fixed pairwise tree and the
block sums are accumulated on the host in block order, in float64: results are bitwise
identical whatever the chunk size.

Scaling out (:mod:`riskengine.distributed`): each compiled chunk's blocks are split over the
local devices (``jit`` with ``NamedSharding`` on a 1-D mesh; a chunk holds a multiple of the
device count, padding blocks are dropped), and the chunks are dealt round-robin to the
processes of a ``jax.distributed`` run, whose per-block results are gathered after each
round so that every process accumulates every block in block order. In float64 the results
are bitwise those of one process on one device. With an active
:mod:`riskengine.checkpoint` each chunk's per-block results are saved as they complete and
reloaded on ``--resume``.

Inside a block, time is a ``lax.scan`` over a grid that lands exactly on every
observation time; only the observation times are recorded, never every step, and only the
fields the caller asks for (``record``).

The standard normal shocks of step ``t`` are ``jax.random.normal(fold_in(step_key, 0),
(shocks, block_size, assets), dtype)`` bit for bit, with ``step_key = fold_in(block_key, t)``
(JAX's default threefry keys; :func:`random_bits`, :func:`normal_from_bits`). They are drawn
ahead of the step that uses them and passed in the loop carry (see :func:`simulate_block`).
"""

from __future__ import annotations

import collections
import functools
import math
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from riskengine import checkpoint, distributed, programs
from riskengine.models import GBM, CorrelatedAssets, Model

DEFAULT_BLOCK_SIZE = 1024
DEFAULT_CHUNK_PATHS = 131072  # paths per compiled call: larger amortises the per-step loop overhead
# Chunks computed at once on one process, each on a worker thread: while one waits at a
# synchronisation point of XLA's intra-op parallelism (or in Python between chunks) the
# other keeps the cores busy. Measured on 2 cores (benchmarks/chunks_in_flight.py): the GBM
# price job's simulation 0.81-0.90 of the time of one chunk at a time; the same compiled
# program, results summed in block order (bitwise the same). Memory: this many chunks.
CHUNKS_IN_FLIGHT = 2
# Time steps per scan iteration. 1: the random numbers are pipelined through the loop carry,
# and XLA would fuse (and recompute) them inside an unrolled body. Measured: 2 is ~10% faster
# for GBM, ~15-25% slower for Heston QE, and compiles slower.
SCAN_UNROLL = 1
# Options of the compiled chunks (XLA CPU; no fast-math, nothing that changes the model):
# - region analysis in copy insertion: without it XLA copies the loop-carried arrays that
#   are read and rewritten in the same step (the pipelined random numbers) every step;
#   measured +10-25% steps/s, results bitwise identical;
# - LLVM -O2 instead of -O3: 20-35% less compile time for the same speed (results were
#   identical in our checks; a last-bit difference from FMA contraction is possible).
COMPILER_OPTIONS = {"xla_cpu_copy_insertion_use_region_analysis": True, "xla_backend_optimization_level": 2}

# --- random numbers ---------------------------------------------------------------------------

_THREEFRY_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def _threefry2x32(k0: Array, k1: Array, x0: Array, x1: Array) -> tuple[Array, Array]:
    """The Threefry-2x32 hash (20 rounds) of the counter pairs ``(x0, x1)`` under the key
    ``(k0, k1)``, bit-identical to ``jax.extend.random.threefry_2x32``.

    Written out in jnp operations, XLA evaluates it as one fused elementwise kernel: JAX's
    CPU lowering of the same hash is a rolled loop that streams whole arrays through memory
    five times, which made random numbers most of the cost of a simulation step.
    """
    ks = (k0, k1, k0 ^ k1 ^ np.uint32(0x1BD11BDA))
    x0, x1 = x0 + ks[0], x1 + ks[1]
    for i in range(5):
        for r in _THREEFRY_ROTATIONS[i % 2]:
            x0 = x0 + x1
            x1 = x0 ^ (jax.lax.shift_left(x1, np.uint32(r)) | jax.lax.shift_right_logical(x1, np.uint32(32 - r)))
        x0 = x0 + ks[(i + 1) % 3]
        x1 = x1 + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x0, x1


def _threefry_data(key: PRNGKeyArray) -> Array | None:
    """The ``uint32[..., 2]`` words of a threefry key (typed or raw), or None for another PRNG."""
    if str(jax.random.key_impl(key)) != "threefry2x32":
        return None
    return jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key


def seed_key(seed: int) -> PRNGKeyArray:
    """``jax.random.key(seed)``, bit for bit, made on the host for a seed in [0, 2**32):
    JAX's own compiles a small program for it (about 0.08 s of a run's start)."""
    if isinstance(seed, int | np.integer) and 0 <= seed < 2**32 and jax.config.jax_default_prng_impl == "threefry2x32":
        return jax.random.wrap_key_data(np.array([0, seed], np.uint32), impl="threefry2x32")
    return jax.random.key(seed)


def fold_in(key: PRNGKeyArray, data: ArrayLike) -> PRNGKeyArray:
    """``jax.random.fold_in(key, d)`` for every ``d`` of ``data`` (broadcast against the
    keys), bit for bit. For threefry keys it is the hash of ``(0, d)`` under the key,
    evaluated by :func:`_threefry2x32` as one fused elementwise kernel; JAX's own, under
    ``vmap``, is a rolled loop compiled on its own (three of them per simulated block)."""
    words = _threefry_data(key)
    data = jnp.asarray(data, jnp.uint32)
    if words is None:
        return jnp.vectorize(jax.random.fold_in)(key, data)
    hi, lo = _threefry2x32(words[..., 0], words[..., 1], jnp.zeros_like(data), data)
    hi, lo = jnp.broadcast_arrays(hi, lo)
    out = jnp.stack([hi, lo], axis=-1)
    return jax.random.wrap_key_data(out, impl="threefry2x32") if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else out


def random_bits(key: PRNGKeyArray, shape: tuple[int, ...], dtype: Any) -> Array:
    """``jax.random.bits(key, shape, uint)`` with as many bits as ``dtype``, bit for bit, for
    a threefry ``key`` (JAX's default, with ``jax_threefry_partitionable``, also its default):
    the Threefry hash of each element's index, evaluated by :func:`_threefry2x32`."""
    width = jnp.finfo(dtype).bits
    uint = jnp.dtype(f"uint{width}")
    size = math.prod(shape)
    words = _threefry_data(key)
    if words is None or width not in (32, 64) or size >= 2**32:
        return jax.random.bits(key, shape, uint)
    index = jnp.arange(size, dtype=jnp.uint32).reshape(shape)
    hi, lo = _threefry2x32(words[0], words[1], jnp.zeros_like(index), index)
    if width == 32:
        return hi ^ lo
    return jax.lax.shift_left(hi.astype(uint), np.asarray(32, uint)) | lo.astype(uint)


def normal_from_bits(bits: Array, dtype: Any) -> Array:
    """Standard normals from uniformly random bits as ``jax.random.normal`` makes them: a
    uniform on (-1, 1) from the top mantissa bits, then sqrt(2) erfinv. So
    ``normal_from_bits(random_bits(key, shape, dtype), dtype) == jax.random.normal(key, shape, dtype)``."""
    dtype = jnp.dtype(dtype)
    finfo = jnp.finfo(dtype)
    uint = bits.dtype
    one = np.array(1.0, dtype).view(uint)
    floats = jax.lax.bitcast_convert_type(
        jax.lax.shift_right_logical(bits, np.asarray(finfo.bits - finfo.nmant, uint)) | one, dtype
    ) - np.array(1.0, dtype)  # uniform on [0, 1)
    low = np.nextafter(np.array(-1.0, dtype), np.array(0.0, dtype))
    uniform = jnp.maximum(low, floats * (np.array(1.0, dtype) - low) + low)  # on (-1, 1)
    return np.array(np.sqrt(2.0), dtype) * jax.lax.erf_inv(uniform)


@dataclass(frozen=True)
class TimeGrid:
    """Simulation steps that land exactly on each observation time.

    ``dt[k]`` is the length of step k; ``observe[k]`` is the index of the observation time
    reached at the end of step k, or -1. ``times`` are the sorted, unique observation times.
    """

    times: np.ndarray
    dt: np.ndarray
    observe: np.ndarray

    @property
    def num_steps(self) -> int:
        return int(self.dt.shape[0])

    def index(self, t: float) -> int:
        """Index of observation time ``t`` in :attr:`times`."""
        i = int(np.searchsorted(self.times, t))
        if i >= len(self.times) or not math.isclose(self.times[i], t, rel_tol=0, abs_tol=1e-12):
            raise KeyError(f"time {t} is not an observation time of this grid")
        return i


def time_grid(times: Sequence[float], *, steps_per_year: float) -> TimeGrid:
    """Equal steps of at most ``1 / steps_per_year`` between consecutive observation times."""
    obs = np.unique(np.asarray(times, dtype=np.float64))
    if obs.size == 0:
        raise ValueError("times: at least one observation time is needed")
    if obs[0] <= 0 or not np.all(np.isfinite(obs)):
        raise ValueError(f"times: observation times must be finite and > 0, got {obs.tolist()}")
    if not (steps_per_year > 0 and math.isfinite(steps_per_year)):
        raise ValueError(f"mc.steps_per_year: must be > 0, got {steps_per_year}")
    dts, observe, previous = [], [], 0.0
    for i, t in enumerate(obs):
        n = max(1, math.ceil((t - previous) * steps_per_year - 1e-9))
        dts.extend([(t - previous) / n] * n)
        observe.extend([-1] * (n - 1) + [i])
        previous = t
    return TimeGrid(times=obs, dt=np.asarray(dts), observe=np.asarray(observe, dtype=np.int32))


FIELDS = ("log_return", "cond_mean", "cond_std", "variance")


class Observations(eqx.Module):
    """What one block of paths records at each observation time.

    Shapes are ``[times, paths, assets]``. ``log_return`` is log(S_t / S_0) on each path;
    ``cond_mean`` and ``cond_std`` give its law conditional on everything except the spot
    shock of the step that ends at t (log_return = cond_mean + cond_std * Z), which pricers
    use to integrate that last shock analytically; ``variance`` is the instantaneous
    variance for stochastic-vol assets (NaN for constant-vol ones). A field the simulation
    was not asked to record (``record``) is None.
    """

    log_return: Float[Array, "times paths assets"] | None = None
    cond_mean: Float[Array, "times paths assets"] | None = None
    cond_std: Float[Array, "times paths assets"] | None = None
    variance: Float[Array, "times paths assets"] | None = None


def as_assets(model: Model | CorrelatedAssets) -> CorrelatedAssets:
    return model if isinstance(model, CorrelatedAssets) else CorrelatedAssets.single(model)


def simulate_block(
    assets: CorrelatedAssets,
    key: PRNGKeyArray,
    *,
    dt: Float[Array, " steps"],
    observe: Array,
    num_times: int,
    drift: Float[Array, " assets"],
    block_size: int,
    dtype: Any,
    record: Sequence[str] = FIELDS,
) -> Observations:
    """Simulate one block of ``block_size`` paths from ``key`` (no Python loop over steps),
    recording the ``record`` fields of :class:`Observations` at the observation times."""
    record = tuple(record)
    if not record or set(record) - set(FIELDS):
        raise ValueError(f"record: must be a non-empty subset of {FIELDS}, got {record}")
    num_assets = assets.num_assets
    factor = jnp.asarray(assets.factor, dtype)
    drift = jnp.asarray(drift, dtype)
    num_shocks = 2 if any(m.has_stochastic_vol for m in assets.models) else 1
    shock_shape = (num_shocks, block_size, num_assets)

    def draw_bits(shock_key):
        return random_bits(shock_key, shock_shape, dtype)

    # Keys of steps 0 .. T + 1 (the random numbers are drawn ahead), and of their normal
    # shocks, in two vectorised calls: each is a loop that XLA compiles separately.
    step_keys = fold_in(key, jnp.arange(dt.shape[0] + 2, dtype=jnp.uint32))
    shock_keys = fold_in(step_keys, 0)

    def body(carry, xs):
        x, aux, recorded, shocks, next_bits = carry
        step_dt, slot, step_key, shock_key_two_ahead = xs
        # Random numbers are pipelined: this step's normals and the next step's bits come in
        # the loop carry, so that each is computed once; XLA would otherwise recompute the
        # hash and erfinv inside every fusion that uses them.
        next_shocks = normal_from_bits(next_bits, dtype)
        bits_two_ahead = draw_bits(shock_key_two_ahead)
        # w: the assets' spot shocks; shocks[1]: independent shocks for the variances
        w = shocks[0] @ factor.T if num_assets > 1 else shocks[0]
        new_x, new_aux, means, stds = [], [], [], []
        for i, model in enumerate(assets.models):
            if model.has_stochastic_vol:
                rho = jnp.asarray(model.spot_variance_correlation, dtype)
                c = jnp.sqrt(1.0 - rho**2)
                z_var = rho * w[:, i] + c * shocks[1][:, i]
                z = c * w[:, i] - rho * shocks[1][:, i]
            else:
                z_var = w[:, i]  # unused by constant-vol models
                z = w[:, i]
            aux_i, mean, std = model.step(
                aux[i], dt=step_dt, drift=drift[i], z_var=z_var, key=jax.random.fold_in(step_key, 2 + i)
            )
            cond_mean = x[i] + mean
            new_x.append(cond_mean + std * z)
            new_aux.append(aux_i)
            means.append(cond_mean)
            stds.append(std)
        x = tuple(new_x)
        values = {
            "log_return": lambda: jnp.stack(x, axis=-1),
            "cond_mean": lambda: jnp.stack(means, axis=-1),
            "cond_std": lambda: jnp.stack(stds, axis=-1),
            "variance": lambda: jnp.stack(
                [
                    m.variance(a) if m.has_stochastic_vol else jnp.full((block_size,), jnp.nan, dtype)
                    for m, a in zip(assets.models, new_aux, strict=True)
                ],
                axis=-1,
            ),
        }
        # Write only at observation steps: a conditional, not a write to a scratch row every
        # step, which XLA would fuse by recomputing the whole step a second time.
        recorded = jax.lax.cond(
            slot >= 0,
            lambda r, v: tuple(ri.at[slot].set(vi) for ri, vi in zip(r, v, strict=True)),
            lambda r, v: r,
            recorded,
            tuple(values[f]() for f in record),
        )
        return (x, tuple(new_aux), recorded, next_shocks, bits_two_ahead), None

    x0 = tuple(jnp.zeros((block_size,), dtype) for _ in range(num_assets))
    aux0 = tuple(m.init_aux(block_size, dtype) for m in assets.models)
    recorded0 = tuple(jnp.zeros((num_times, block_size, num_assets), dtype) for _ in record)
    shocks0 = normal_from_bits(draw_bits(shock_keys[0]), dtype)
    bits1 = draw_bits(shock_keys[1])
    xs = (jnp.asarray(dt, dtype), jnp.asarray(observe), step_keys[:-2], shock_keys[2:])
    (_, _, recorded, _, _), _ = jax.lax.scan(body, (x0, aux0, recorded0, shocks0, bits1), xs, unroll=SCAN_UNROLL)
    return Observations(**dict(zip(record, recorded, strict=True)))


def _pairwise_block_sum(x: Array) -> Array:
    """Sum over axis 1 (a power of two) by a fixed halving tree: bitwise reproducible."""
    while x.shape[1] > 1:
        half = x.shape[1] // 2
        x = x[:, :half] + x[:, half:]
    return x[:, 0]


@dataclass(frozen=True)
class Estimate:
    """Monte Carlo mean and standard error of each per-path quantity (same pytree)."""

    mean: Any
    stderr: Any
    num_paths: int


BlockFn = Callable[[PRNGKeyArray, Any], Any]


@dataclass(frozen=True)
class _Layout:
    """How ``num_paths`` paths are cut into blocks and compiled chunks of blocks. A chunk
    holds a multiple of the device count; blocks past the last are computed and dropped."""

    num_paths: int
    block_size: int
    num_blocks: int
    blocks_per_chunk: int

    @classmethod
    def of(cls, num_paths: int, block_size: int, chunk_paths: int, devices: int) -> _Layout:
        _check_counts(num_paths, block_size, chunk_paths)
        num_blocks = -(-num_paths // block_size)
        per_chunk = max(1, min(chunk_paths // block_size, num_blocks))
        per_chunk = -(-per_chunk // devices) * devices
        return cls(int(num_paths), block_size, num_blocks, per_chunk)

    def firsts(self) -> list[int]:
        return list(range(0, self.num_blocks, self.blocks_per_chunk))

    def blocks_here(self, first: int) -> int:
        return min(self.blocks_per_chunk, self.num_blocks - first)

    def block_index(self, first: int) -> np.ndarray:
        return np.arange(first, first + self.blocks_per_chunk, dtype=np.uint32)

    def valid_counts(self, first: int) -> np.ndarray:
        index = np.arange(first, first + self.blocks_per_chunk)
        return np.clip(self.num_paths - index * self.block_size, 0, self.block_size).astype(np.int32)


def _run_chunks(
    compute: Callable[[int], Any],
    *,
    layout: _Layout,
    kind: str,
    identity: tuple,
    progress: Callable[[int, int], None] | None,
    reduce: Callable[[int, Any], Any] | None = None,
):
    """Yield ``(first_block, blocks_here, result)`` for every chunk, in block order, where
    ``result = reduce(first_block, compute(first_block))`` (``reduce`` defaults to keeping
    the values) is a pytree of host arrays with the chunk's block axis first (all
    ``blocks_per_chunk`` blocks; the caller keeps ``blocks_here``).

    ``compute`` runs the compiled chunk and fetches its values; on one process up to
    :data:`CHUNKS_IN_FLIGHT` chunks run at once on worker threads (see :func:`_computed`).
    ``reduce`` always runs on the calling thread, chunk after chunk in block order.
    Chunks are dealt round-robin to the processes of a ``jax.distributed`` run and each
    round's results are gathered on every process, so every process yields every chunk.
    With an active :mod:`riskengine.checkpoint`, each chunk is saved when done, and a
    chunk found saved (``--resume``) is loaded instead of computed.
    """
    if reduce is None:
        reduce = lambda first, values: values  # noqa: E731
    ckpt = checkpoint.current()
    stage = None
    if ckpt is not None:
        stage = ckpt.stage(kind, checkpoint.identity(*identity, layout.num_paths, layout.block_size))
    firsts = layout.firsts()
    per_chunk = layout.blocks_per_chunk
    saved = [stage is not None and stage.has(f, per_chunk) for f in firsts]
    processes, me = distributed.process_count(), distributed.process_index()
    if processes > 1 and stage is not None:
        masks = distributed.allgather(np.asarray(saved, bool))
        if any(not np.array_equal(m, masks[0]) for m in masks):
            raise RuntimeError("resume: the processes found different saved chunks; resume all of them together")
    ready: dict[int, Any] = {}
    position = 0

    def flush():
        nonlocal position
        while position < len(firsts):
            first = firsts[position]
            if first in ready:
                result = ready.pop(first)
            elif saved[position]:
                result = stage.load(first, per_chunk)
            else:
                return
            position += 1
            yield first, layout.blocks_here(first), result
            if progress is not None:
                done = min(layout.num_paths, (first + layout.blocks_here(first)) * layout.block_size)
                progress(done, layout.num_paths)

    todo = [f for f, s in zip(firsts, saved, strict=True) if not s]

    def rounds():  # (chunks, their results) as they complete
        if processes == 1:
            for first, values in _computed(compute, todo):
                yield [first], [reduce(first, values)]
            return
        for group in distributed.round_robin(todo, processes=processes):
            mine = group[me] if me < len(group) else group[-1]  # an idle process repeats one
            yield group, distributed.allgather(reduce(mine, compute(mine)))

    for group, results in rounds():
        for first, result in zip(group, results, strict=False):
            if stage is not None:
                stage.save(first, per_chunk, result)
            ready[first] = result
        yield from flush()
    yield from flush()


def _computed(compute: Callable[[int], Any], firsts: list[int]):
    """Yield ``(first, compute(first))`` in the order of ``firsts``, with up to
    :data:`CHUNKS_IN_FLIGHT` computed at once on worker threads.

    The first chunk is computed on the calling thread, alone: it traces and compiles the
    program (once) under the caller's JAX configuration. The others go to the workers only
    when a worker sees the same configuration (``jax.enable_x64`` and the like are
    per-thread); otherwise they too run here, one after another."""
    if not firsts:
        return
    yield firsts[0], compute(firsts[0])
    rest = firsts[1:]
    pool = ThreadPoolExecutor(CHUNKS_IN_FLIGHT, thread_name_prefix="riskengine-chunk") \
        if CHUNKS_IN_FLIGHT > 1 and len(rest) > 1 else None
    try:
        if pool is None or pool.submit(programs.jax_flags).result() != programs.jax_flags():
            yield from ((first, compute(first)) for first in rest)
            return
        pending = collections.deque()
        for first in rest:
            pending.append((first, pool.submit(compute, first)))
            if len(pending) == CHUNKS_IN_FLIGHT:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def monte_carlo(
    block_fn: BlockFn,
    args: Any,
    *,
    key: PRNGKeyArray,
    num_paths: int,
    block_size: int = DEFAULT_BLOCK_SIZE,
    chunk_paths: int = DEFAULT_CHUNK_PATHS,
    devices: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    program_key: Hashable | None = None,
) -> Estimate:
    """Average ``block_fn(block_key, args)`` (a pytree of ``[block_size, ...]`` per-path
    values) over ``num_paths`` paths, streaming: memory is bounded by one chunk.

    ``block_fn`` must use only ``block_key`` for randomness. ``progress(done, total)`` is
    called after each chunk. Each chunk's blocks are split over ``devices`` local devices
    (default: all), and chunks over the processes of a ``jax.distributed`` run; the result
    is bitwise the same for any device count, process count and chunk size.

    ``program_key``: a stable name of ``block_fn`` and everything it closes over (see
    :func:`riskengine.programs.persistent_jit`); with one, on one device, the compiled chunk
    is kept between runs and a second run loads it without tracing it again.
    """
    devices = distributed.local_device_count(devices)
    layout = _Layout.of(num_paths, block_size, chunk_paths, devices)
    chunk = _reduction_chunk(block_fn, block_size, layout.blocks_per_chunk, devices, program_key)

    def compute(first: int):
        return jax.device_get(chunk(key, layout.block_index(first), layout.valid_counts(first), args))

    sum1 = sum2 = treedef = None
    for _, n_here, (sums, squares) in _run_chunks(
        compute, layout=layout, kind="mc", identity=(_name(block_fn), key, args), progress=progress
    ):
        leaves1, treedef = jax.tree.flatten(sums)
        leaves2 = jax.tree.leaves(squares)
        if sum1 is None:
            sum1 = [np.zeros(s.shape[1:], np.float64) for s in leaves1]
            sum2 = [np.zeros(s.shape[1:], np.float64) for s in leaves1]
        for acc1, acc2, s, q in zip(sum1, sum2, leaves1, leaves2, strict=True):
            _add_in_order(acc1, s[:n_here])
            _add_in_order(acc2, q[:n_here])
    n = float(num_paths)
    means = [s / n for s in sum1]
    variances = [np.maximum(q / n - m * m, 0.0) * n / (n - 1.0) for q, m in zip(sum2, means, strict=True)]
    stderrs = [np.sqrt(v / n) for v in variances]
    return Estimate(
        mean=jax.tree.unflatten(treedef, means),
        stderr=jax.tree.unflatten(treedef, stderrs),
        num_paths=num_paths,
    )


def _add_in_order(acc: np.ndarray, blocks: np.ndarray) -> None:
    """``acc += blocks[0]; acc += blocks[1]; ...`` in float64, in block order, in one call:
    ``np.add.accumulate`` adds strictly one after the other (no pairwise summation), so the
    sum is bitwise that of the loop (a loop of small additions cost a price job ~0.2 s of
    the calling thread, 2 per block and leaf)."""
    stacked = np.concatenate([acc[None], np.asarray(blocks, np.float64)], axis=0)
    acc[...] = np.add.accumulate(stacked, axis=0)[-1]


def _name(fn: Callable) -> str:
    return f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', type(fn).__name__)}"


@functools.lru_cache(maxsize=64)
def _reduction_chunk(
    block_fn: BlockFn, block_size: int, blocks_per_chunk: int, devices: int = 1, program_key: Hashable | None = None
) -> Callable:
    """The compiled unit of work of :func:`monte_carlo`: per-block sums and sums of squares
    of the blocks ``index`` (split over ``devices`` local devices).

    Two programs, one after the other: the per-path values and their squares (paths past
    ``valid_counts`` set to 0), then their per-block sums by the pairwise tree. Compiled as
    one, XLA CPU (which fuses no two results into one kernel) computed each path's values
    again inside the kernel of each sum and sum of squares: for the GBM price job's chunk
    with Greeks (2-core guest, RESULTS.md "GBM cold run, session 13") 152 ms per chunk and
    2.3 s of compilation against 119 ms and 1.6 s in two, with bitwise the same sums
    (``tests/test_simulate.py`` writes out the one program and compares).

    Cached on ``block_fn`` so that repeated estimates reuse the compiled code; kept between
    runs too when ``block_fn`` has a ``program_key`` and runs on one device.
    """

    def values(key, index, valid_counts, args):
        per_path = jax.vmap(block_fn, in_axes=(0, None))(fold_in(key, index), args)
        valid = jnp.arange(block_size)[None, :] < valid_counts[:, None]

        def masked(v):
            return jnp.where(valid.reshape(valid.shape + (1,) * (v.ndim - 2)), v, 0)

        per_path = jax.tree.map(masked, per_path)
        return per_path, jax.tree.map(lambda v: v * v, per_path)

    def sums(per_path, squares):
        return jax.tree.map(_pairwise_block_sum, per_path), jax.tree.map(_pairwise_block_sum, squares)

    blocks = distributed.AXIS
    if program_key is not None and devices == 1:
        name = ("monte_carlo", program_key, block_size, blocks_per_chunk)
        values = programs.persistent_jit(values, key=(*name, "values"), compiler_options=COMPILER_OPTIONS)
        sums = programs.persistent_jit(sums, key=("monte_carlo", "sums"), compiler_options=COMPILER_OPTIONS)
    else:
        values = distributed.shard_blocks(values, devices=devices, in_specs=(None, blocks, blocks, None),
                                          compiler_options=COMPILER_OPTIONS)
        sums = distributed.shard_blocks(sums, devices=devices, in_specs=(blocks, blocks),
                                        compiler_options=COMPILER_OPTIONS)

    def chunk(key, index, valid_counts, args):
        return sums(*values(key, index, valid_counts, args))

    return chunk


def _check_counts(num_paths: int, block_size: int, chunk_paths: int) -> None:
    if not isinstance(num_paths, int | np.integer) or num_paths < 2:
        raise ValueError(f"mc.paths: must be an integer >= 2, got {num_paths!r}")
    if block_size < 1 or block_size & (block_size - 1):
        raise ValueError(f"block_size: must be a power of two, got {block_size}")
    if chunk_paths < 1:
        raise ValueError(f"chunk_paths: must be >= 1, got {chunk_paths}")


def simulate_paths(
    model: Model | CorrelatedAssets,
    *,
    key: PRNGKeyArray,
    times: Sequence[float],
    num_paths: int,
    steps_per_year: float = 252,
    rate: ArrayLike = 0.0,
    dividend: ArrayLike = 0.0,
    dtype: Any = jnp.float32,
    block_size: int = DEFAULT_BLOCK_SIZE,
    chunk_paths: int = DEFAULT_CHUNK_PATHS,
) -> Observations:
    """All paths at the observation ``times``, as host (numpy) arrays ``[times, paths, assets]``.

    Memory grows with ``num_paths``: use :func:`monte_carlo` for estimates. The first
    ``num_paths`` paths are identical to those :func:`monte_carlo` averages for the same key.
    """
    assets = as_assets(model)
    grid = time_grid(times, steps_per_year=steps_per_year)
    drift = np.broadcast_to(np.asarray(rate, np.float64) - np.asarray(dividend, np.float64), (assets.num_assets,))
    _check_counts(num_paths, block_size, chunk_paths)
    num_blocks = -(-num_paths // block_size)
    blocks_per_chunk = max(1, min(chunk_paths // block_size, num_blocks))
    run = block_runner(grid, block_size=block_size, dtype=dtype)

    @functools.partial(jax.jit, compiler_options=COMPILER_OPTIONS)
    def chunk(first_block, assets, drift):
        keys = block_keys(key, first_block, blocks_per_chunk)
        return jax.vmap(run, in_axes=(None, 0, None))(assets, keys, drift)

    pieces = []
    for first in range(0, num_blocks, blocks_per_chunk):
        obs = jax.device_get(chunk(jnp.uint32(first), assets, jnp.asarray(drift, dtype)))
        pieces.append(obs)
    # [chunks][blocks, times, block, assets] -> [times, paths, assets]
    def join(*parts):
        arr = np.concatenate(parts, axis=0)
        arr = np.moveaxis(arr, 0, 1).reshape(arr.shape[1], -1, arr.shape[-1])
        return arr[:, :num_paths]

    return jax.tree.map(join, *pieces)


def block_runner(grid: TimeGrid, *, block_size: int, dtype: Any, record: Sequence[str] = FIELDS) -> Callable:
    """``run(assets, block_key, drift) -> Observations`` for one block on ``grid``,
    recording the ``record`` fields only."""
    dt = np.asarray(grid.dt)
    observe = np.asarray(grid.observe)
    num_times = len(grid.times)
    record = tuple(record)

    def run(assets: CorrelatedAssets, block_key: PRNGKeyArray, drift) -> Observations:
        return simulate_block(
            assets, block_key, dt=jnp.asarray(dt, dtype), observe=jnp.asarray(observe), num_times=num_times,
            drift=drift, block_size=block_size, dtype=dtype, record=record,
        )

    return run


def block_keys(key: PRNGKeyArray, first_block: int | Array, blocks_per_chunk: int) -> PRNGKeyArray:
    """The keys ``fold_in(key, b)`` of blocks ``first_block, first_block + 1, ...``: the one
    keying of path blocks (so the first n paths of a seed do not depend on how many are
    asked for, nor on how they are split)."""
    index = first_block + jnp.arange(blocks_per_chunk, dtype=jnp.uint32)
    return fold_in(key, index)


def stream_blocks(
    block_fn: BlockFn,
    args: Any,
    *,
    key: PRNGKeyArray,
    num_paths: int,
    reducer: Callable[[int, np.ndarray], Any] | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    chunk_paths: int = DEFAULT_CHUNK_PATHS,
    devices: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    name: str = "stream",
):
    """Yield ``(first_block, per_block)`` chunk by chunk, in block order.

    ``values`` is the host array ``[blocks_per_chunk, block_size, ...]`` of
    ``block_fn(block_key, args)`` for the chunk's blocks (the last chunk's blocks past the
    end, and the paths past ``num_paths`` in the last block, are there to be ignored);
    ``per_block = reducer(first_block, values)`` (default: ``values``) is a pytree whose
    leaves have that block axis first, cut to the blocks that exist. Reduce here what a
    job keeps (a per-path P&L, per-block weighted sums): in a ``jax.distributed`` run only
    the reduced results travel between processes, and a checkpoint saves only them.
    Blocks are split over ``devices`` local devices (default: all); the results are
    bitwise the same for any device count, process count and chunk size.
    """
    devices = distributed.local_device_count(devices)
    layout = _Layout.of(num_paths, block_size, chunk_paths, devices)
    chunk = _collect_chunk(block_fn, layout.blocks_per_chunk, devices)

    def compute(first: int):
        return np.asarray(jax.device_get(chunk(key, layout.block_index(first), args)))

    for first, n_here, result in _run_chunks(
        compute, layout=layout, kind=name, identity=(_name(block_fn), _name(reducer) if reducer else "", key, args),
        progress=progress, reduce=reducer,
    ):
        yield first, jax.tree.map(lambda x, n=n_here: x[:n], result)


def stream(
    block_fn: BlockFn,
    args: Any,
    *,
    key: PRNGKeyArray,
    num_paths: int,
    block_size: int = DEFAULT_BLOCK_SIZE,
    chunk_paths: int = DEFAULT_CHUNK_PATHS,
    devices: int | None = None,
    progress: Callable[[int, int], None] | None = None,
):
    """Yield ``(first_path, values)`` chunk by chunk, in path order: ``values`` is the host
    array ``[paths_in_chunk, ...]`` of ``block_fn(block_key, args)`` (``[block_size, ...]``
    per block). For per-path quantities a job reduces on the host (quantiles, weighted
    sums), with memory bounded by one chunk; the paths are those :func:`monte_carlo`
    averages for the same key and block size. The compiled chunk is cached on ``block_fn``.
    See :func:`stream_blocks` to reduce each chunk before it is gathered or saved.
    """
    for first, values in stream_blocks(
        block_fn, args, key=key, num_paths=num_paths, block_size=block_size, chunk_paths=chunk_paths,
        devices=devices, progress=progress,
    ):
        values = values.reshape((-1,) + values.shape[2:])
        first_path = first * block_size
        yield first_path, values[: num_paths - first_path]


def collect(block_fn: BlockFn, args: Any, **kwargs) -> np.ndarray:
    """All per-path values of :func:`stream` as one host array ``[num_paths, ...]``."""
    return np.concatenate([values for _, values in stream(block_fn, args, **kwargs)], axis=0)


@functools.lru_cache(maxsize=64)
def _collect_chunk(block_fn: BlockFn, blocks_per_chunk: int, devices: int = 1) -> Callable:
    def chunk(key, index, args):
        keys = fold_in(key, index)
        return jax.vmap(block_fn, in_axes=(0, None))(keys, args)

    return distributed.shard_blocks(
        chunk, devices=devices, in_specs=(None, distributed.AXIS, None), compiler_options=COMPILER_OPTIONS
    )


def independent_normals(
    *, key: PRNGKeyArray, num_assets: int, paths: int, periods: int, dtype: Any = jnp.float32
) -> np.ndarray:
    """``[periods, paths, assets]`` independent standard normals (float64 numpy) from this
    driver, one whole number of blocks per period (period ``k`` has its own blocks
    ``fold_in(key, b)``, so the first periods do not depend on how many follow). They are
    the driver's spot shocks of one unit step, read off a unit-volatility GBM over one year
    at rate 0 (``log_return = -1/2 + W_1``): the allocation backtest's and the exposure
    job's scenarios."""
    per = -(-paths // DEFAULT_BLOCK_SIZE) * DEFAULT_BLOCK_SIZE
    models = CorrelatedAssets.from_correlation([GBM(sigma=1.0) for _ in range(num_assets)])
    obs = simulate_paths(models, key=key, times=[1.0], num_paths=per * periods, steps_per_year=1, dtype=dtype)
    z = np.asarray(obs.log_return[0], np.float64) + 0.5
    return z.reshape(periods, per, num_assets)[:, :paths]
