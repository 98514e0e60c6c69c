"""The allocation problem: scenario returns, an objective and a constraint set.

Returns are per-scenario returns (or P&L per unit of exposure) ``R[scenarios, assets]``;
a portfolio with weights ``w`` earns ``R @ w`` and loses ``L = -R @ w``. All risk figures are
positive numbers meaning losses, in the units of ``R`` (fractions of capital for returns).

Objectives (``Objective.type``):

- ``min_cvar``: minimise ``CVaR_alpha(L)`` (Rockafellar–Uryasev);
- ``mean_cvar``: maximise ``E[R w] - risk_aversion * CVaR_alpha``;
- ``risk_parity``: CVaR risk parity, every asset's Euler contribution
  ``w_j dCVaR/dw_j`` in proportion to its risk budget (long-only; solved as
  ``min CVaR(y) - sum_j b_j log y_j``, ``w = budget * y / sum(y)``);
- ``kelly``: fractional Kelly, ``w = fraction * argmax E[log(1 + R w)]`` over the
  constraint set (the rest of the capital is held in cash).

Constraints (:class:`Constraints`): per-asset bounds (long-only: lower bound 0), budget
``sum(w) = budget``, minimum expected return, gross leverage ``sum|w|``, turnover
``sum|w - current|``, maximum CVaR (ES) and VaR at ``risk_level`` (VaR is enforced through
CVaR at the same level, which bounds it from above: conservative, because the exact VaR
constraint is not convex), and net exposure limits ``|sum_j w_j e_j| <= limit`` (e.g. net
delta and vega per unit weight).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np

from riskengine.config import ConfigError

ObjectiveType = Literal["min_cvar", "mean_cvar", "risk_parity", "kelly"]
OBJECTIVES: tuple[str, ...] = ("min_cvar", "mean_cvar", "risk_parity", "kelly")


@dataclasses.dataclass(frozen=True)
class Objective:
    type: ObjectiveType = "min_cvar"
    alpha: float = 0.95
    risk_aversion: float = 1.0  # mean_cvar: lambda
    fraction: float = 0.5  # kelly: fraction of the growth-optimal weights
    risk_budgets: tuple[float, ...] | None = None  # risk_parity: default equal


@dataclasses.dataclass(frozen=True)
class Constraints:
    """The feasible set. ``lower``/``upper``: per-asset bounds (``-inf``/``inf`` = none)."""

    lower: np.ndarray
    upper: np.ndarray
    budget: float | None = 1.0
    min_return: float | None = None
    max_leverage: float | None = None
    current: np.ndarray | None = None
    max_turnover: float | None = None
    max_var: float | None = None
    max_es: float | None = None
    risk_level: float = 0.95
    exposures: np.ndarray | None = None  # [limits, assets]: e_k per unit weight
    exposure_limits: np.ndarray | None = None  # [limits]
    exposure_names: tuple[str, ...] = ()

    @property
    def num_assets(self) -> int:
        return int(np.asarray(self.lower).shape[0])

    @property
    def risk_limit(self) -> float | None:
        """The bound on CVaR at ``risk_level`` that enforces ``max_es`` and ``max_var``."""
        limits = [x for x in (self.max_es, self.max_var) if x is not None]
        return min(limits) if limits else None

    @classmethod
    def simple(cls, num_assets: int, *, long_only: bool = True, budget: float | None = 1.0,
               min_weight: float | None = None, max_weight: float | None = None,
               **kwargs) -> Constraints:
        lo = 0.0 if long_only else -np.inf
        if min_weight is not None:
            lo = max(lo, min_weight)
        hi = np.inf if max_weight is None else max_weight
        return cls(lower=np.full(num_assets, lo), upper=np.full(num_assets, hi),
                   budget=budget, **kwargs)


def check_returns(returns, names=None) -> np.ndarray:
    """A finite 2-D float array ``[scenarios, assets]``, or a ConfigError naming the first
    bad entry by column and row."""
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 2 or r.shape[0] < 2 or r.shape[1] < 1:
        raise ConfigError(f"returns: expected a [scenarios, assets] table with at least 2 rows "
                          f"and 1 column, got shape {r.shape}")
    bad = ~np.isfinite(r)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        name = names[col] if names is not None else f"column {col}"
        raise ConfigError(f"returns: {int(bad.sum())} non-finite value(s); first in column "
                          f"{name!r}, row {row} (value {r[row, col]!r})")
    return r
