"""Training a policy by gradient descent through the simulated P&L.

Each epoch draws fresh paths keyed ``fold_in(key, epoch)``; up to ``epochs_per_call`` epochs
run inside one jitted loop (one dispatch, no host round trip; the count is an argument, so a
shorter last call reuses the compiled program); a checkpoint after each call holds everything
needed to resume, so that an interrupted and resumed training equals an uninterrupted one.

Calls are not free on a CPU: each one allocates the program's working memory afresh and the
operating system faults it in page by page (about 200 MB and 50 ms per call for the pfhedge
benchmark's recipe on the plain JAX path). Fifty epochs per call keep that near 2% of the
training time (ten per call cost 10% there) while the progress bar and checkpoints still move
every few seconds.
"""

from __future__ import annotations

import functools
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from jaxtyping import PRNGKeyArray

from hedging.objectives import Objective
from hedging.pnl import terminal_pnl
from hedging.policies import Policy
from hedging.problem import HedgingProblem, MarketPaths
from riskengine.distributed import local_device_count, local_mesh
from riskengine.simulate import COMPILER_OPTIONS

CHECKPOINT = "checkpoint.eqx"

# XLA's CPU back end hands small matrix products and reductions to YNNPACK by default; for
# the 32-wide layers of a hedging network its kernels are slower than XLA's own (about 15%
# per epoch on the benchmark's network) and cost a warm-up on the first call, so training
# turns them off. LLVM optimisation level 1 compiles the unrolled date loop ~10% sooner and
# runs as fast (the products are library calls). Other back ends ignore ``xla_cpu_*`` options.
TRAIN_COMPILER_OPTIONS = {
    **COMPILER_OPTIONS, "xla_cpu_experimental_ynn_fusion_type": "", "xla_backend_optimization_level": 1,
}

DIVERGENCE_GROWTH = 1e6  # a loss this many times its first value: training diverged


@dataclass
class TrainResult:
    policy: Policy
    objective: Objective
    loss_history: list[float]
    seconds: float
    epochs: int
    stopped_early: bool = False
    compile_seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def loss_fn(trainable, static, problem: HedgingProblem, key: PRNGKeyArray, num_paths: int, mesh: Mesh | None = None):
    policy, objective = eqx.combine(trainable, static)
    paths = problem.simulate(key, num_paths)
    if mesh is not None:
        paths = shard_paths(paths, mesh)
    pnl, _ = terminal_pnl(policy, problem, paths, smooth_costs=True)
    return objective.loss(pnl)


def shard_paths(paths: MarketPaths, mesh: Mesh) -> MarketPaths:
    """Split the path axis over ``mesh`` (data parallelism: XLA's partitioner runs each
    device's paths there and sums the gradients across devices)."""
    axis = mesh.axis_names[0]

    def put(x, spec):
        return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, spec))

    return MarketPaths(
        time=paths.time, spot=put(paths.spot, P(None, axis)), variance=put(paths.variance, P(None, axis)),
        prices=put(paths.prices, P(None, axis, None)), payoff=put(paths.payoff, P(axis)),
    )


def make_optimizer(learning_rate: float | optax.Schedule, *, name: str = "adam", clip: float | None = None):
    if name == "adam":
        opt = optax.adam(learning_rate)
    elif name == "adamw":
        opt = optax.adamw(learning_rate)
    elif name == "sgd":
        opt = optax.sgd(learning_rate, momentum=0.9)
    else:
        raise ValueError(f"train.optimizer: expected adam, adamw or sgd, got {name!r}")
    return optax.chain(optax.clip_by_global_norm(clip), opt) if clip else opt


def _epochs_fn(problem, static, optimizer, num_paths, capacity, mesh=None):
    """``run(trainable, opt_state, key, first_epoch, count)``: ``count <= capacity`` epochs from
    ``first_epoch``; the losses fill the first ``count`` entries of a ``[capacity]`` array."""

    @functools.partial(jax.jit, donate_argnums=(0, 1), compiler_options=TRAIN_COMPILER_OPTIONS)
    def run(trainable, opt_state, key, first_epoch, count):
        def one(i, carry):
            trainable, opt_state, losses = carry
            epoch = first_epoch + i.astype(jnp.uint32)
            loss, grads = jax.value_and_grad(loss_fn)(
                trainable, static, problem, jax.random.fold_in(key, epoch), num_paths, mesh
            )
            updates, opt_state = optimizer.update(grads, opt_state, trainable)
            trainable = eqx.apply_updates(trainable, updates)
            return trainable, opt_state, losses.at[i].set(loss)

        losses = jnp.zeros(capacity, jnp.result_type(float))
        return jax.lax.fori_loop(0, count, one, (trainable, opt_state, losses))

    return run


def train(
    policy: Policy,
    objective: Objective,
    problem: HedgingProblem,
    *,
    key: PRNGKeyArray,
    num_paths: int,
    epochs: int,
    optimizer: optax.GradientTransformation,
    epochs_per_call: int = 50,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    patience: int | None = None,
    min_delta: float = 0.0,
    progress: Callable[[int, int, float], None] | None = None,
    stop_after: int | None = None,
    devices: int = 1,
) -> TrainResult:
    """Train ``policy`` (and any learned parameter of ``objective``) for ``epochs`` epochs of
    ``num_paths`` fresh paths.

    ``patience``: stop when the loss, averaged over each call's epochs, has not improved by
    ``min_delta`` for ``patience`` epochs. ``stop_after``: stop (as if killed) after that
    many epochs; for tests of resuming. ``devices``: local devices each epoch's paths are split
    over (data parallelism; the paths are the same for any count, the gradient sums are
    ordered differently, so results agree to rounding, not bit for bit)."""
    if epochs < 1 or num_paths < 2:
        raise ValueError(f"train: epochs must be >= 1 and paths >= 2, got {epochs} and {num_paths}")
    epochs_per_call = max(1, min(epochs_per_call, epochs))
    trainable, static = eqx.partition((policy, objective), eqx.is_inexact_array)
    # fresh buffers (the training loop donates them) and the optimiser's state, in one small
    # compiled program: op by op, each array operation compiles its own (~0.2 s in all)
    trainable, opt_state = jax.jit(lambda t: (jax.tree.map(jnp.copy, t), optimizer.init(t)))(trainable)
    history: list[float] = []
    done, best, since_best, seconds = 0, math.inf, 0, 0.0
    ckpt = Path(checkpoint_dir) / CHECKPOINT if checkpoint_dir else None
    if resume and ckpt is not None and ckpt.exists():
        trainable, opt_state, done, history, best, since_best, seconds = _load(ckpt, trainable, opt_state)
    mesh = local_mesh(local_device_count(devices)) if devices != 1 else None
    started = time.perf_counter()
    run = _epochs_fn(problem, static, optimizer, num_paths, epochs_per_call, mesh).lower(
        trainable, opt_state, key, jnp.uint32(done), jnp.int32(0)).compile()
    compile_seconds = time.perf_counter() - started
    seconds += compile_seconds  # part of the training time, as a user waits for it
    stopped = False
    while done < epochs:
        n = min(epochs_per_call, epochs - done)
        started = time.perf_counter()
        trainable, opt_state, losses = run(trainable, opt_state, key, jnp.uint32(done), jnp.int32(n))
        losses = np.asarray(jax.device_get(losses), np.float64)[:n]
        seconds += time.perf_counter() - started
        history.extend(losses.tolist())
        done += n
        if not np.all(np.isfinite(losses)):
            raise FloatingPointError(f"train: the loss became {losses[~np.isfinite(losses)][0]} at epoch {done}")
        first = abs(history[0])
        if np.max(np.abs(losses)) > DIVERGENCE_GROWTH * max(first, 1e-12):
            raise FloatingPointError(
                f"train: the loss grew from {history[0]:.3g} to {np.max(np.abs(losses)):.3g} "
                f"(over {DIVERGENCE_GROWTH:.0e} times) by epoch {done}")
        mean = float(losses.mean())
        if mean < best - min_delta:
            best, since_best = mean, 0
        else:
            since_best += n
        if ckpt is not None:
            _save(ckpt, trainable, opt_state, done, history, best, since_best, seconds)
        if progress is not None:
            progress(done, epochs, mean)
        if patience is not None and since_best >= patience:
            stopped = True
            break
        if stop_after is not None and done >= stop_after:
            break
    policy, objective = eqx.combine(trainable, static)
    return TrainResult(policy, objective, history, seconds, done, stopped_early=stopped,
                       compile_seconds=compile_seconds)


def _save(path: Path, trainable, opt_state, done, history, best, since_best, seconds) -> None:
    """Write the checkpoint atomically (temp file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    meta = {"done": done, "history": history, "best": best, "since_best": since_best, "seconds": seconds}
    with open(tmp, "wb") as f:
        f.write((json.dumps(meta) + "\n").encode())
        eqx.tree_serialise_leaves(f, (trainable, opt_state))
    os.replace(tmp, path)


def _load(path: Path, trainable, opt_state):
    with open(path, "rb") as f:
        meta = json.loads(f.readline())
        trainable, opt_state = eqx.tree_deserialise_leaves(f, (trainable, opt_state))
    return (trainable, opt_state, meta["done"], meta["history"], meta["best"], meta["since_best"],
            meta["seconds"])


def epoch_progress_bar(total: int) -> Callable[[int, int, float], None]:
    """A terminal progress bar for :func:`train` (its ``progress`` argument): epochs done
    and the last loss, on standard error."""
    import sys

    from tqdm import tqdm

    bar = tqdm(total=total, unit="epoch", file=sys.stderr, leave=False)

    def update(done: int, total: int, loss: float) -> None:
        bar.update(done - bar.n)
        bar.set_postfix(loss=f"{loss:.5g}")
        if done >= total:
            bar.close()

    return update
