"""Evaluating strategies on many fresh paths: all strategies on the same paths, streamed in
blocks keyed ``fold_in(key, block)`` so memory stays bounded and the result does not depend
on how many blocks run per call."""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import numpy as np
from jaxtyping import PRNGKeyArray

from hedging.pnl import terminal_pnl
from hedging.policies import Policy
from hedging.problem import HedgingProblem

EVAL_BLOCK = 16384  # paths per evaluation block


def evaluate(
    strategies: dict[str, Policy],
    problem: HedgingProblem,
    *,
    key: PRNGKeyArray,
    num_paths: int,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, np.ndarray]:
    """Terminal P&L (float64 numpy, ``[num_paths]``) of each strategy on the same paths."""
    names = list(strategies)
    block = _block_fn(problem)
    out = {n: np.empty(num_paths, np.float64) for n in names}
    num_blocks = -(-num_paths // EVAL_BLOCK)
    policies = tuple(strategies[n] for n in names)
    for b in range(num_blocks):
        pnls = jax.device_get(block(policies, jax.random.fold_in(key, b)))
        lo, hi = b * EVAL_BLOCK, min(num_paths, (b + 1) * EVAL_BLOCK)
        for n, p in zip(names, pnls, strict=True):
            out[n][lo:hi] = p[: hi - lo]
        if progress is not None:
            progress(hi, num_paths)
    return out


def _block_fn(problem: HedgingProblem):
    @eqx.filter_jit
    def block(policies, key):
        paths = problem.simulate(key, EVAL_BLOCK)
        return tuple(terminal_pnl(p, problem, paths, unroll=1)[0] for p in policies)

    return block


def sample_hedges(policy: Policy, problem: HedgingProblem, *, key: PRNGKeyArray, num_paths: int = 2000):
    """Positions of ``policy`` and the market it saw, on a few paths (for plots)."""
    from hedging.features import MarketView

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
