"""Margin accounts followed along each simulated path, step by step: when an account is
liquidated, and what its positions are worth from then on (the rules are those of
:mod:`riskengine.accounts`).

At the end of every simulation step each account's margin equity is compared with its
maintenance margin at that step's prices (:func:`riskengine.accounts.account_values`:
futures marks on their basis, funding accrued under the venue's rule, coin collateral at
its coin's price less the venue's haircut). The first step where equity <= maintenance
liquidates the account.

Between steps (``bridge=True``) an account whose margin depends on one underlying only is
also liquidated with the Brownian-bridge probability that the log-price crossed the
account's liquidation price (solved once at the snapshot along that underlying) during the
step although both ends lie on the safe side: ``exp(-2 a b / s^2)`` with ``a``, ``b`` the
log-distances of the two ends to the barrier and ``s^2`` the step's conditional variance
of the log-price (the simulator's ``cond_std``; for GBM exactly ``sigma^2 dt``). One uniform
``U`` per path and account, from the block's own key (``fold_in(block_key, 2^32 - 1)``, so
the results stay independent of chunking), decides: the bridge liquidates the account at
the first step where the product of the steps' survival probabilities ``1 - p`` falls below
``U`` (the law of an independent draw per step, for one random number). Crossings decided
by the bridge are timed at the middle of the step; positions are valued at the step's end.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from riskengine.accounts import AccountMarket, Accounts, account_values, closed_values

__all__ = ["BRIDGE_KEY", "PathLiquidation", "liquidate_along_paths", "liquidation_summary"]

BRIDGE_KEY = 2**32 - 1  # fold_in data of the bridge's uniforms (simulation steps use 0 .. steps + 1)


class PathLiquidation(NamedTuple):
    """Per path: each account's liquidation time (days since the snapshot; ``inf`` if not
    within the paths' last step) and each member position's value from then on (USD;
    isolated: ``-fee``, collateral included; cross: P&L and funding at liquidation less the
    fee, collateral excluded, the account floored at ``-fees``)."""

    time_days: Float[Array, "block accounts"]
    frozen: Float[Array, "block members"]


def _crossing_probability(s0, s1, barrier, variance, *, below: bool):
    """Probability that a Brownian log-price bridge from log s0 to log s1 with total
    variance ``variance`` touches log ``barrier`` (both ends on the safe side; else 0)."""
    finite = jnp.isfinite(barrier) & (barrier > 0)
    safe_barrier = jnp.where(finite, barrier, 1.0)
    a = jnp.log(s0 / safe_barrier)
    b = jnp.log(s1 / safe_barrier)
    if not below:
        a, b = -a, -b
    ok = finite & (a > 0) & (b > 0) & (variance > 0)
    return jnp.where(ok, jnp.exp(-2.0 * a * b / jnp.where(ok, variance, 1.0)), 0.0)


def liquidate_along_paths(
    accounts: Accounts,
    *,
    spot: Float[Array, "steps block underlyings"],
    spot0: Float[Array, " underlyings"],
    elapsed_days: Float[Array, " steps"],
    step_days: Float[Array, " steps"],
    market: AccountMarket,
    cond_std: Float[Array, "steps block underlyings"] | None = None,
    barriers: tuple[np.ndarray, np.ndarray] | None = None,
    key=None,
    dtype=jnp.float32,
) -> PathLiquidation:
    """Follow every account along ``spot`` (prices at the end of each step) and return when
    each is liquidated and the frozen values of its positions. ``cond_std``, ``barriers``
    (per account, liquidation prices of its main underlying below and above: NaN/inf where
    none) and ``key`` switch the bridge on (all three, or none)."""
    a = accounts
    block = spot.shape[1]
    bridge = cond_std is not None
    if bridge:
        single = jnp.asarray(a.single)
        low = jnp.asarray(np.nan_to_num(barriers[0], nan=np.inf, posinf=np.inf, neginf=np.inf), dtype)
        high = jnp.asarray(np.nan_to_num(barriers[1], nan=np.inf, posinf=np.inf, neginf=np.inf), dtype)
        uidx = jnp.asarray(a.underlying)
        uniform = jax.random.uniform(jax.random.fold_in(key, BRIDGE_KEY), (block, a.num_accounts), dtype)

    def body(carry, xs):
        time, frozen, previous, survival = carry
        s, std, t, dt, k = xs
        v = account_values(a, member_spot=s[:, a.member_underlying], holding_spot=s[:, np.maximum(a.holding_underlying, 0)],
                           market=market, elapsed_days=t, dtype=dtype)
        hit = v.equity <= v.maintenance
        when = jnp.broadcast_to(t, hit.shape)
        if bridge:
            s0, s1, var = previous[:, uidx], s[:, uidx], jnp.square(std[:, uidx])
            p_low = _crossing_probability(s0, s1, low, var, below=True)
            p_high = _crossing_probability(s0, s1, high, var, below=False)
            survival = survival * (1.0 - p_low) * (1.0 - p_high)
            crossed = single & (survival < uniform) & ~hit
            when = jnp.where(crossed, t - 0.5 * dt, when)
            hit = hit | crossed
        new = jnp.isinf(time) & hit
        value = closed_values(a, v, dtype)
        frozen = jnp.where(new[:, a.member_account], value, frozen)
        time = jnp.where(new, when, time)
        return (time, frozen, s, survival), None

    steps = spot.shape[0]
    std = cond_std if bridge else jnp.zeros((steps, 1, 1), dtype)
    xs = (spot, std, jnp.asarray(elapsed_days, dtype), jnp.asarray(step_days, dtype), jnp.arange(steps, dtype=jnp.uint32))
    init = (jnp.full((block, a.num_accounts), jnp.inf, dtype), jnp.zeros((block, a.num_members), dtype),
            jnp.broadcast_to(jnp.asarray(spot0, dtype), (block, spot.shape[-1])), jnp.ones((block, a.num_accounts), dtype))
    (time, frozen, _, _), _ = jax.lax.scan(body, init, xs)
    return PathLiquidation(time_days=time, frozen=frozen)


def liquidation_summary(accounts: Accounts | None, stats: dict[str, np.ndarray] | None, *, paths: int,
                        horizons_days: list[int], spot: np.ndarray, along: tuple[np.ndarray, np.ndarray] | None,
                        steps_per_day: int, bridge: bool, path_wise: bool) -> dict:
    """The summary's ``liquidation`` section from the path sums of
    :meth:`riskengine.revaluation.PathRevaluation.total_pnl` (``stats``; None: no account
    is margined). Per account (ranked by the probability at the longest horizon) and per
    margined position: the liquidation price of the main underlying (the nearer of
    ``liquidation_price_down``/``_up``, others fixed) beside its ``spot``, and per horizon
    the ``probability`` of liquidation within it (with its standard error), the
    ``expected_time_days`` to it and the ``expected_loss_given_liquidation`` (USD, a loss
    positive; None where no path liquidates)."""
    a = accounts
    keys = [f"{h}d" for h in horizons_days]
    out = {"path_wise": path_wise, "steps_per_day": steps_per_day, "bridge": bridge, "accounts": [], "positions": []}
    if accounts is None or stats is None:  # off, or no margined position
        return out

    def per_horizon(values):
        return dict(zip(keys, values, strict=True))

    ids = list(a.book.table["id"])
    names = a.book.underlyings
    rows = {k: [] for k in range(a.num_accounts)}
    for i, k in enumerate(a.row_account):
        if k >= 0:
            rows[int(k)].append(ids[i])
    for k, name in enumerate(a.names):
        count = stats["count"][:, k]
        p = count / paths
        given = count > 0
        s = float(spot[a.underlying[k]])
        down, up = s * (1.0 + along[0][k]), s * (1.0 + along[1][k])
        nearer = down if abs(along[0][k]) <= abs(along[1][k]) else up
        out["accounts"].append({
            "account": name, "venue": a.venues[k], "mode": a.modes[k], "underlying": names[a.underlying[k]],
            "positions": rows[k],
            "spot": s, "liquidation_price": _finite(nearer), "distance": _finite(nearer / s - 1.0),
            "liquidation_price_down": _finite(down), "liquidation_price_up": _finite(up),
            "probability": per_horizon(p.tolist()),
            "probability_se": per_horizon(np.sqrt(p * (1.0 - p) / paths).tolist()),
            "expected_time_days": per_horizon([float(t / c) if g else None for t, c, g in
                                               zip(stats["time"][:, k], count, given, strict=True)]),
            "expected_loss_given_liquidation": per_horizon([float(-x / c) if g else None for x, c, g in
                                                            zip(stats["account_pnl"][:, k], count, given, strict=True)]),
        })
        for i in np.flatnonzero(a.member_account == k):
            row = int(a.member_row[i])
            c = stats["position_count"][:, row]
            out["positions"].append({
                "id": ids[row], "account": name, "venue": a.venues[k], "underlying": str(a.book.table["underlying"].iat[row]),
                "probability": per_horizon(p.tolist()),
                "expected_time_days": out["accounts"][-1]["expected_time_days"],
                "expected_loss_given_liquidation": per_horizon([float(-x / n) if n > 0 else None for x, n in
                                                                zip(stats["position_pnl"][:, row], c, strict=True)]),
            })
    last = keys[-1]
    out["accounts"].sort(key=lambda r: -r["probability"][last])
    out["positions"].sort(key=lambda r: -r["probability"][last])
    return out


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None
