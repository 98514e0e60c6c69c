"""Euler allocation of ES and VaR to positions, and grouping of contributions by a label.

Input: the per-path, per-position P&L ``pnl[paths, positions]`` (gains) of one simulation;
the portfolio P&L is its row sum. The Euler (gradient) allocation of a positively
homogeneous risk measure ``rho`` assigns position ``i`` the contribution
``d rho(P + eps P_i) / d eps`` at 0, and the contributions add up to ``rho(P)``.

ES: ``ES_i = -E[P_i | P in the tail] = -sum_paths tail_p * pnl[p, i] / (1 - level)``, with
the *same* tail weights as the portfolio ES (:func:`riskengine.risk.measures.tail_weights`:
full weight below the VaR scenario, the fractional atom at it, shared among ties). Because
the portfolio P&L is the row sum, the contributions sum to the portfolio ES exactly (up to
floating-point rounding).

VaR: ``VaR_i = -E[P_i | P = -VaR]``. The conditioning event has probability zero in a
sample, so the expectation is estimated with a Gaussian kernel in the portfolio P&L around
the VaR scenario (Nadaraya–Watson):

    raw_i = -sum_p K((P_p + VaR) / h) w_p pnl[p, i] / sum_p K((P_p + VaR) / h) w_p,

with Silverman's bandwidth ``h = 0.9 min(sd, IQR / 1.34) n^(-1/5)`` of the portfolio P&L
by default (``n`` the effective sample size under ``weights``). The raw contributions sum
to ``-E[P | P near -VaR]``, which is close to but not exactly the VaR (kernel bias), so they
are rescaled by ``VaR / sum(raw)`` to sum to the VaR exactly; the rescaling keeps their
proportions. A ``bandwidth`` of 0 uses only the paths exactly at the VaR scenario.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
from jaxtyping import ArrayLike, Float

from riskengine.risk.measures import (
    as_sample,
    check_level,
    normalised_weights,
    tail_weights,
    value_at_risk,
)

__all__ = [
    "default_bandwidth",
    "es_contributions",
    "group_contributions",
    "var_contributions",
]


def _positions(pnl_by_position: ArrayLike) -> np.ndarray:
    p = as_sample(pnl_by_position, "pnl_by_position")
    if p.ndim != 2 or p.shape[0] == 0:
        raise ValueError(
            f"pnl_by_position: expected a [paths, positions] array, got shape {p.shape}"
        )
    return p


def es_contributions(
    pnl_by_position: Float[ArrayLike, "paths positions"],
    *,
    level: float,
    weights: Float[ArrayLike, " paths"] | None = None,
) -> Float[np.ndarray, " positions"]:
    """Euler ES contributions ``-E[pnl_i | tail]``; they sum to the ES of the row sums."""
    beta = 1.0 - check_level(level)
    p = _positions(pnl_by_position)
    tail = tail_weights(p.sum(axis=1), level=level, weights=weights)
    return -(tail @ p) / beta


def default_bandwidth(
    pnl: Float[ArrayLike, " paths"], *, weights: Float[ArrayLike, " paths"] | None = None
) -> float:
    """Silverman's rule ``0.9 min(sd, IQR / 1.34) n_eff^(-1/5)`` for a P&L sample."""
    x = as_sample(pnl)
    w = normalised_weights(weights, x.shape)
    if w is None:
        w = np.full(x.shape, 1.0 / x.shape[-1])
    mean = np.sum(w * x)
    sd = float(np.sqrt(np.sum(w * (x - mean) ** 2)))
    # lower quartile = -VaR at level 0.75, upper quartile = -VaR at level 0.25
    iqr = float(value_at_risk(x, level=0.75, weights=w) - value_at_risk(x, level=0.25, weights=w))
    spread = min(sd, iqr / 1.34) if iqr > 0.0 else sd
    n_eff = 1.0 / float(np.sum(w**2))
    return 0.9 * spread * n_eff ** (-0.2)


def var_contributions(
    pnl_by_position: Float[ArrayLike, "paths positions"],
    *,
    level: float,
    weights: Float[ArrayLike, " paths"] | None = None,
    bandwidth: float | None = None,
) -> Float[np.ndarray, " positions"]:
    """Euler VaR contributions by a Gaussian-kernel estimate of ``-E[pnl_i | P = -VaR]``,
    rescaled to sum exactly to the portfolio VaR (see the module docstring)."""
    check_level(level)
    p = _positions(pnl_by_position)
    total = p.sum(axis=1)
    w = normalised_weights(weights, total.shape)
    if w is None:
        w = np.full(total.shape, 1.0 / total.shape[0])
    var = float(value_at_risk(total, level=level, weights=w))
    h = default_bandwidth(total, weights=w) if bandwidth is None else float(bandwidth)
    if not h >= 0.0:
        raise ValueError(f"bandwidth: must be non-negative, got {bandwidth!r}")
    if h > 0.0:
        kernel = w * np.exp(-0.5 * ((total + var) / h) ** 2)
    else:
        kernel = np.where(total == -var, w, 0.0)
    if not kernel.sum() > 0.0:
        raise ValueError("bandwidth: too small, no path near the VaR scenario")
    raw = -(kernel @ p) / kernel.sum()
    raw_total = raw.sum()
    if raw_total == 0.0:
        raise ValueError("cannot rescale VaR contributions: their raw sum is zero")
    return raw * (var / raw_total)


def group_contributions(
    contributions: Float[ArrayLike, "*batch positions"],
    *,
    labels: Sequence[Hashable],
) -> dict[Hashable, Float[np.ndarray, "*batch"]]:
    """Sum contributions over positions sharing a label (e.g. the underlying), in the order
    labels first appear. The group totals add up to the total of the contributions."""
    c = np.asarray(contributions, dtype=np.float64)
    labels = list(labels)
    if c.ndim == 0 or c.shape[-1] != len(labels):
        raise ValueError(
            f"labels: expected one per position ({c.shape[-1] if c.ndim else 0}), got {len(labels)}"
        )
    groups: dict[Hashable, list[int]] = {}
    for index, label in enumerate(labels):
        groups.setdefault(label, []).append(index)
    return {label: c[..., idx].sum(axis=-1)[()] for label, idx in groups.items()}
