"""Historical-simulation VaR and ES: past returns applied to today's exposures.

``returns`` is a ``[days, assets]`` table of *simple* daily returns (oldest first) and
``exposures`` the current cash exposure to each asset (currency P&L per unit relative
return: the position value for spot, ``Delta * S`` for a derivative), so each historical
scenario ``t`` gives the linear P&L ``sum_j exposures_j * R_tj``.

Horizon ``h`` (days), two ways:

- ``scaling="overlapping"`` (default): the scenarios are the ``days - h + 1`` overlapping
  ``h``-day compounded returns ``R_t = prod_{i=t}^{t+h-1} (1 + r_i) - 1``; VaR and ES are
  the empirical ones of :mod:`riskengine.risk.measures` on those P&Ls. This keeps fat tails,
  drift, autocorrelation and compounding, but the windows overlap, so the effective sample
  is only about ``days / h`` and the estimate is noisier than the scenario count suggests.
- ``scaling="sqrt"``: the one-day VaR / ES times ``sqrt(h)``. Exact only for i.i.d.
  zero-mean normal daily P&L; offered as the regulatory-style alternative.

Both use the quantile and ES conventions of :mod:`riskengine.risk.measures` (P&L = gains,
VaR and ES positive = losses).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from jaxtyping import ArrayLike, Float

from riskengine.risk.measures import var_and_es

__all__ = [
    "historical_es",
    "historical_pnl",
    "historical_var",
    "overlapping_returns",
]

Scaling = Literal["overlapping", "sqrt"]


def overlapping_returns(
    returns: Float[ArrayLike, "days assets"], *, horizon: int
) -> Float[np.ndarray, "windows assets"]:
    """The ``days - horizon + 1`` overlapping compounded ``horizon``-day simple returns
    ``prod(1 + r) - 1`` (window ``t`` covers days ``t .. t + horizon - 1``). A 1-D
    ``returns`` (one asset) gives a 1-D result."""
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim not in (1, 2) or r.shape[0] == 0:
        raise ValueError(f"returns: expected a non-empty [days, assets] table, got shape {r.shape}")
    if not np.all(np.isfinite(r)) or np.any(r < -1.0):
        raise ValueError("returns: must be finite simple returns >= -1")
    h = int(horizon)
    if h != horizon or not 1 <= h <= r.shape[0]:
        raise ValueError(f"horizon: must be an integer in [1, {r.shape[0]}] days, got {horizon!r}")
    if h == 1:
        return r.copy()
    windows = np.lib.stride_tricks.sliding_window_view(1.0 + r, h, axis=0)
    return windows.prod(axis=-1) - 1.0


def historical_pnl(
    returns: Float[ArrayLike, "days assets"],
    *,
    exposures: Float[ArrayLike, "*batch assets"],
    horizon: int = 1,
) -> Float[np.ndarray, "*batch scenarios"]:
    """The P&L of the current ``exposures`` under each overlapping ``horizon``-day
    historical scenario: ``exposures @ R_t`` (a batch of portfolios gives a batch of rows)."""
    scenarios = overlapping_returns(returns, horizon=horizon)
    e = np.asarray(exposures, dtype=np.float64)
    if scenarios.ndim == 1:
        scenarios = scenarios[:, None]
        if e.ndim == 0:
            e = e[None]
    if e.ndim == 0 or e.shape[-1] != scenarios.shape[1]:
        raise ValueError(
            f"exposures: expected {scenarios.shape[1]} assets on the last axis, got shape {e.shape}"
        )
    return np.einsum("sa,...a->...s", scenarios, e)


def _historical(returns, exposures, level, horizon, scaling, weights):
    if scaling == "overlapping":
        pnl = historical_pnl(returns, exposures=exposures, horizon=horizon)
        return var_and_es(pnl, level=level, weights=weights)
    if scaling == "sqrt":
        overlapping_returns(returns, horizon=horizon)  # validates the horizon
        pnl = historical_pnl(returns, exposures=exposures, horizon=1)
        var, es = var_and_es(pnl, level=level, weights=weights)
        factor = math.sqrt(horizon)
        return var * factor, es * factor
    raise ValueError(f"scaling: expected 'overlapping' or 'sqrt', got {scaling!r}")


def historical_var(
    returns: Float[ArrayLike, "days assets"],
    *,
    exposures: Float[ArrayLike, "*batch assets"],
    level: float,
    horizon: int = 1,
    scaling: Scaling = "overlapping",
    weights: Float[ArrayLike, " scenarios"] | None = None,
) -> Float[np.ndarray, "*batch"]:
    """Historical VaR of the current exposures over ``horizon`` days (positive = loss).

    ``weights`` (optional) weight the scenarios (e.g. age weighting); there is one per
    overlapping window, or per day with ``scaling="sqrt"``.
    """
    return _historical(returns, exposures, level, horizon, scaling, weights)[0]


def historical_es(
    returns: Float[ArrayLike, "days assets"],
    *,
    exposures: Float[ArrayLike, "*batch assets"],
    level: float,
    horizon: int = 1,
    scaling: Scaling = "overlapping",
    weights: Float[ArrayLike, " scenarios"] | None = None,
) -> Float[np.ndarray, "*batch"]:
    """Historical (Acerbi–Tasche) ES of the current exposures over ``horizon`` days."""
    return _historical(returns, exposures, level, horizon, scaling, weights)[1]
