"""Evaluating strategies on many fresh paths: all strategies on the same paths, streamed in
blocks keyed ``fold_in(key, block)`` through :func:`riskengine.simulate.stream_blocks`, so
memory stays bounded, the blocks are split over the local devices and the processes of a
``jax.distributed`` run, a CLI run checkpoints them for ``--resume``, and the result does not
depend on any of that."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

from hedging.features import MarketView
from hedging.pnl import terminal_pnl
from hedging.policies import Policy
from hedging.problem import HedgingProblem
from riskengine.simulate import stream_blocks

EVAL_BLOCK = 16384  # paths per evaluation block


def evaluate(
    strategies: dict[str, Policy],
    problem: HedgingProblem,
    *,
    key: PRNGKeyArray,
    num_paths: int,
    progress: Callable[[int, int], None] | None = None,
    devices: int | None = None,
) -> dict[str, np.ndarray]:
    """Terminal P&L (float64 numpy, ``[num_paths]``) of each strategy on the same paths.

    ``devices``: local devices the blocks are split over (default: all); one block per
    device at a time, so memory does not grow with the path count."""
    names = list(strategies)
    arrays, static = eqx.partition((problem, tuple(strategies[n] for n in names)), eqx.is_array)

    def pnl_block(block_key, arrays):
        problem, policies = eqx.combine(arrays, static)
        paths = problem.simulate(block_key, EVAL_BLOCK)
        return jnp.stack([terminal_pnl(p, problem, paths, unroll=1)[0] for p in policies], axis=-1)

    # the checkpoint identity covers the arrays (policy weights, model parameters); the
    # static part (policy kinds, costs, dates) goes into the stage name
    fingerprint = hashlib.sha256(repr(static).encode()).hexdigest()[:12]
    out = {n: np.empty(num_paths, np.float64) for n in names}
    num_devices = jax.local_device_count() if devices is None else devices
    for first, per_block in stream_blocks(
        pnl_block, arrays, key=key, num_paths=num_paths, block_size=EVAL_BLOCK,
        chunk_paths=EVAL_BLOCK * num_devices, devices=devices, progress=progress, name=f"hedge-pnl-{fingerprint}",
    ):
        lo = first * EVAL_BLOCK
        values = np.asarray(per_block, np.float64).reshape(-1, len(names))[: num_paths - lo]  # [paths, strategies]
        for i, n in enumerate(names):
            out[n][lo:lo + len(values)] = values[:, i]
    return out


def sample_hedges(policy: Policy, problem: HedgingProblem, *, key: PRNGKeyArray, num_paths: int = 2000):
    """Positions of ``policy`` and the market it saw, on a few paths (for plots)."""
    paths = problem.simulate(key, num_paths)
    _, hedges = terminal_pnl(policy, problem, paths)
    view = MarketView.of(problem, paths)
    return {
        "log_moneyness": np.asarray(view.feature("log_moneyness")),
        "time_to_maturity": np.asarray(view.time_to_maturity),
        "volatility": np.asarray(view.feature("volatility")),
        "hedge": np.asarray(hedges[..., 0]),
        "bs_delta": np.asarray(view.delta()),
    }
