"""The strategies the exposure models are measured against, as daily target exposures from
the first decision date on:

- ``buy_and_hold``: equal weights bought at the first decision and left to drift
  (:func:`buy_and_hold`: no trade after);
- ``vol_target``: the full risk budget of every asset, long;
- ``equal_weight``: ``min(1, max_leverage) / n`` in each tradable asset, rebalanced daily;
- ``momentum``: the sign of the asset's log return over ``momentum_days``, times its budget.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float

from riskengine.allocation.exposure import Limits, apply_limits

BASELINES = ("buy_and_hold", "vol_target", "equal_weight", "momentum")


def baseline_targets(names: list[str], *, closes: Float[np.ndarray, "dates assets"],
                     budget: Float[np.ndarray, "dates assets"], tradable: np.ndarray, decisions: slice,
                     max_leverage: float, momentum_days: int) -> dict[str, np.ndarray]:
    """``{name: targets[decisions, assets]}``; ``buy_and_hold`` is NaN after its first day
    (no target: the position drifts)."""
    eq = np.where(tradable[decisions], 1.0, 0.0)
    count = np.maximum(eq.sum(axis=1, keepdims=True), 1.0)
    equal = eq / count * min(1.0, max_leverage)
    targets = {}
    for b in names:
        if b == "buy_and_hold":
            bh = np.full(equal.shape, np.nan)
            bh[0] = equal[0]
            targets[b] = bh
        elif b == "vol_target":
            targets[b] = budget[decisions].copy()
        elif b == "equal_weight":
            targets[b] = equal
        elif b == "momentum":
            logp = np.log(closes)
            mom = np.full_like(logp, np.nan)
            k = momentum_days
            mom[k:] = logp[k:] - logp[:-k]
            targets[b] = np.where(np.isfinite(mom[decisions]), np.sign(mom[decisions]), 0.0) * budget[decisions]
    return targets


def buy_and_hold(initial: Float[np.ndarray, " assets"], returns: Float[np.ndarray, "days assets"],
                 tradable: np.ndarray, limits: Limits):
    """Positions and traded notional (as :func:`~riskengine.allocation.exposure.apply_limits`)
    of the initial weights bought at the first day and left to drift (no trade after)."""
    days, n = returns.shape
    targets = np.full((days, n), np.nan)
    targets[0] = initial
    first, traded = apply_limits(targets[:1], returns[:1], limits, tradable=tradable[:1])
    pos = np.zeros((days, n))
    pos[0] = first[0]
    w = first[0]
    for t in range(1, days):
        r = np.where(np.isfinite(returns[t - 1]), returns[t - 1], 0.0)
        w = w * (1.0 + r) / (1.0 + float(w @ r))
        pos[t] = w
    out = np.zeros(days)
    out[0] = traded[0]
    return pos, out
