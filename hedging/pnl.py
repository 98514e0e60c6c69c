"""The hedged profit and loss of a policy on simulated paths (all in time-0 money)."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

from hedging.features import MarketView
from hedging.policies import Policy, hedge_positions
from hedging.problem import HedgingProblem, MarketPaths


def terminal_pnl(
    policy: Policy,
    problem: HedgingProblem,
    paths: MarketPaths,
    *,
    smooth_costs: bool = False,
    unroll: int | bool | None = None,
) -> tuple[Float[Array, " paths"], Float[Array, "dates paths instruments"]]:
    """``PL = sum_t h_t (P_{t+1} - P_t) - costs(h) - payoff`` and the positions ``h``.

    The position bought at ``t_0`` pays its cost; the last position is held to maturity and
    not unwound (pfhedge's convention), so the option is cash-settled against it."""
    view = MarketView.of(problem, paths)
    hedges = hedge_positions(policy, view, unroll=unroll)
    prices = paths.prices
    gains = jnp.sum(hedges * (prices[1:] - prices[:-1]), axis=(0, 2))
    trades = jnp.diff(hedges, axis=0, prepend=jnp.zeros_like(hedges[:1]))
    costs = problem.costs(trades, prices[:-1], smooth=smooth_costs)
    return gains - costs - paths.payoff, hedges
