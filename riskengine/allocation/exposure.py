"""From signals to positions: risk budgets, the desk's limits, and the P&L with costs and
funding.

- :func:`risk_budget`: the largest exposure of each asset, volatility-targeted: ``min(max_weight,
  target_vol / (sigma_{t,a} sqrt(365)) / n_assets)`` with ``sigma`` the asset's realised daily
  volatility up to ``t`` (0 where the asset has no price or no volatility yet);
- a signal score ``s`` in ``[-1, 1]`` gives the target ``s * budget``: for a model, its
  forecast of the next day's return over volatility (a daily Sharpe ratio) divided by
  ``signal_scale`` (the forecast that earns the full budget, the same in every training
  window) and clipped; for the policy, its output;
- :func:`apply_limits` walks forward day by day: long-only, max weight, gross leverage, and a
  turnover cap against the previous day's positions drifted with prices (the trade moves only
  part of the way to the target when the cap binds);
- :func:`pnl` is the day's net return of the positions held over ``(t, t + 1]``: price return,
  minus funding on perpetuals (longs pay the rate, shorts receive it), minus costs (fees plus
  slippage, per unit of traded notional).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from jaxtyping import Float

DAYS_PER_YEAR = 365


def risk_budget(vol: Float[np.ndarray, "dates assets"], *, target_vol: float, max_weight: float) -> Float[np.ndarray, "dates assets"]:
    n = vol.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        b = target_vol / (vol * math.sqrt(DAYS_PER_YEAR)) / n
    return np.where(np.isfinite(b) & (vol > 0), np.minimum(b, max_weight), 0.0)


def scores_from_forecasts(pred: np.ndarray, scale: float) -> np.ndarray:
    """``clip(pred / scale, -1, 1)``; 0 where ``scale`` is 0 or the forecast is not finite."""
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.clip(pred / scale, -1.0, 1.0)
    return np.where(np.isfinite(s), s, 0.0)


@dataclass(frozen=True)
class Limits:
    max_leverage: float = 1.0
    max_weight: float = 1.0
    max_turnover: float | None = None  # per day, sum of |trade| as a fraction of equity
    long_only: bool = False


def limit_targets(w: Float[np.ndarray, "... assets"], limits: Limits) -> Float[np.ndarray, "... assets"]:
    """Long-only, max weight and gross leverage applied to targets (no history needed)."""
    lo = 0.0 if limits.long_only else -limits.max_weight
    w = np.clip(w, lo, limits.max_weight)
    gross = np.sum(np.abs(w), axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(gross > limits.max_leverage, limits.max_leverage / gross, 1.0)
    return w * scale


def apply_limits(targets: Float[np.ndarray, "dates assets"], returns: Float[np.ndarray, "dates assets"],
                 limits: Limits, *, tradable: np.ndarray | None = None):
    """Positions held over ``(t, t + 1]`` and the notional traded at ``t``.

    ``returns[t]`` is the simple return over ``(t, t + 1]`` (NaN where unknown); it only moves
    the positions to the next day (drift), so positions up to ``t`` never depend on returns
    after ``t``. ``tradable`` (bool) forces 0 where an asset has no price."""
    targets = limit_targets(np.where(np.isfinite(targets), targets, 0.0), limits)
    if tradable is not None:
        targets = np.where(tradable, targets, 0.0)
    days, n = targets.shape
    pos = np.zeros((days, n))
    traded = np.zeros(days)
    prev = np.zeros(n)
    for t in range(days):
        want = targets[t]
        trade = want - prev
        size = float(np.abs(trade).sum())
        if limits.max_turnover is not None and size > limits.max_turnover:
            trade = trade * (limits.max_turnover / size)
            size = limits.max_turnover
        w = prev + trade
        if tradable is not None:
            w = np.where(tradable[t], w, 0.0)
        pos[t] = w
        traded[t] = float(np.abs(w - prev).sum())
        r = np.where(np.isfinite(returns[t]), returns[t], 0.0)
        grown = w * (1.0 + r)
        prev = grown / (1.0 + float(w @ r))
    return pos, traded


def pnl(positions: Float[np.ndarray, "dates assets"], returns: Float[np.ndarray, "dates assets"],
        traded: Float[np.ndarray, " dates"], *, cost_rate: float,
        funding: Float[np.ndarray, "dates assets"] | None = None):
    """``(net, cost, funding_paid)`` per day: the return of the book over ``(t, t + 1]``."""
    r = np.where(np.isfinite(returns), returns, 0.0)
    gross = np.sum(positions * r, axis=1)
    cost = cost_rate * traded
    paid = np.zeros(len(gross)) if funding is None else np.sum(positions * np.where(np.isfinite(funding), funding, 0.0), axis=1)
    return gross - cost - paid, cost, paid
