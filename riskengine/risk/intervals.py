"""Confidence intervals for Monte Carlo VaR and ES.

Both intervals are for the *true* VaR / ES of the distribution the i.i.d. sample was drawn
from, at a stated ``confidence`` (e.g. ``0.95``), with the conventions of
:mod:`riskengine.risk.measures` (P&L = gains, VaR and ES positive = losses).

VaR — distribution-free order-statistic interval. Let ``q`` be the ``beta``-quantile of a
continuous P&L (``beta = 1 - level``) and ``N = #{i : p_i <= q} ~ Binomial(n, beta)``. Then
``p(r) <= q < p(s)`` exactly when ``r <= N <= s - 1``, so

    P(p(r) <= q < p(s)) = B(s - 1) - B(r - 1),      B = the Binomial(n, beta) CDF.

The ranks are equal-tailed: ``r`` is the largest with ``B(r - 1) <= a`` and ``s`` the
smallest with ``1 - B(s - 1) <= a``, ``a = (1 - confidence) / 2``; the coverage is then at
least ``confidence`` for every continuous distribution and any ``n`` (exact binomial, no
asymptotics). The VaR interval is ``[-p(s), -p(r)]``; a rank outside ``1..n`` gives an
infinite end.

ES — asymptotic normal interval ``ES_hat +/- z_{(1+c)/2} * se`` with the standard
(Manistre–Hancock / influence-function) variance

    se^2 = [ Var(L | L >= VaR) + level * (ES - VaR)^2 ] / (n * (1 - level)),

estimated by plugging in the sample tail (with the same fractional atom as the estimate).
With ``weights`` (self-normalised importance sampling) the same influence function gives
``se^2 = sum_i w_i^2 IF_i^2``, ``IF_i = VaR + (L_i - VaR)^+ / beta - ES``, which reduces to
the formula above for equal weights.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from jaxtyping import ArrayLike, Float
from scipy import stats

from riskengine.risk.measures import (
    as_sample,
    check_level,
    es_from_tail,
    normalised_weights,
    split_tail,
    tail_rank,
)

__all__ = [
    "Interval",
    "es_interval",
    "es_standard_error",
    "order_statistic_ranks",
    "var_interval",
]


class Interval(NamedTuple):
    """A point estimate with a two-sided confidence interval (positive = loss)."""

    estimate: Float[np.ndarray, "*batch"]
    lower: Float[np.ndarray, "*batch"]
    upper: Float[np.ndarray, "*batch"]
    confidence: float


def _check_confidence(confidence: float) -> float:
    value = float(confidence)
    if not 0.0 < value < 1.0:
        raise ValueError(f"confidence: must lie strictly between 0 and 1, got {confidence!r}")
    return value


def order_statistic_ranks(
    num_paths: int, *, level: float, confidence: float
) -> tuple[int, int, float]:
    """``(r, s, coverage)``: the 1-based ranks of the equal-tailed order-statistic interval
    ``[p(r), p(s)]`` for the ``(1 - level)``-quantile of ``num_paths`` i.i.d. draws, and its
    exact coverage ``B(s - 1) - B(r - 1)`` for a continuous law (``>= confidence``).

    ``r`` may be 0 and ``s`` may be ``num_paths + 1``: the interval is then unbounded on that
    side (too few paths for the confidence asked).
    """
    n = int(num_paths)
    if n < 1:
        raise ValueError(f"num_paths: must be positive, got {num_paths!r}")
    beta = 1.0 - check_level(level)
    a = 0.5 * (1.0 - _check_confidence(confidence))
    law = stats.binom(n, beta)
    # r - 1 = the largest j >= -1 with B(j) <= a (B(-1) = 0).
    j = int(law.ppf(a))  # the smallest j with B(j) >= a
    while j >= 0 and law.cdf(j) > a:
        j -= 1
    while j + 1 <= n and law.cdf(j + 1) <= a:
        j += 1
    r = j + 1
    # s - 1 = the smallest j with P(N > j) = sf(j) <= a.
    j = int(law.isf(a))
    while j > 0 and law.sf(j - 1) <= a:
        j -= 1
    while law.sf(j) > a:
        j += 1
    s = j + 1
    coverage = float(law.cdf(s - 1) - (law.cdf(r - 1) if r >= 1 else 0.0))
    return r, s, coverage


def var_interval(
    pnl: Float[ArrayLike, "*batch paths"],
    *,
    level: float,
    confidence: float = 0.95,
) -> Interval:
    """VaR with its distribution-free order-statistic confidence interval (equal weights,
    i.i.d. paths). Reduces over the last axis; costs one ``np.partition``."""
    x = as_sample(pnl)
    n = x.shape[-1]
    beta = 1.0 - check_level(level)
    r, s, _ = order_statistic_ranks(n, level=level, confidence=confidence)
    k = tail_rank(n, beta)
    kth = sorted({k - 1} | {i - 1 for i in (r, s) if 1 <= i <= n})
    part = np.partition(x, kth, axis=-1)
    estimate = -part[..., k - 1]
    upper = -part[..., r - 1] if r >= 1 else np.full(estimate.shape, np.inf)
    lower = -part[..., s - 1] if s <= n else np.full(estimate.shape, -np.inf)
    return Interval(estimate[()], np.asarray(lower)[()], np.asarray(upper)[()], float(confidence))


def _es_and_se(pnl, level, weights):
    beta = 1.0 - check_level(level)
    x = as_sample(pnl)
    w = normalised_weights(weights, x.shape)
    v, below, _, mass_below = split_tail(x, w, beta)
    es = es_from_tail(x, w, beta, v, below, mass_below)
    # influence function of ES at each path, in P&L terms: L - VaR = -(x - v)
    influence = -v + np.maximum(v - x, 0.0) / beta - es[..., None]
    if w is None:
        variance = np.mean(influence**2, axis=-1) / x.shape[-1]
    else:
        variance = np.sum((w * influence) ** 2, axis=-1)
    return es, np.sqrt(variance)


def es_standard_error(
    pnl: Float[ArrayLike, "*batch paths"],
    *,
    level: float,
    weights: Float[ArrayLike, "*batch paths"] | None = None,
) -> Float[np.ndarray, "*batch"]:
    """The asymptotic standard error of the empirical ES (see the module docstring)."""
    return _es_and_se(pnl, level, weights)[1][()]


def es_interval(
    pnl: Float[ArrayLike, "*batch paths"],
    *,
    level: float,
    confidence: float = 0.95,
    weights: Float[ArrayLike, "*batch paths"] | None = None,
) -> Interval:
    """ES with its asymptotic normal confidence interval ``ES +/- z * se``."""
    z = float(stats.norm.ppf(0.5 * (1.0 + _check_confidence(confidence))))
    es, se = _es_and_se(pnl, level, weights)
    return Interval(es[()], (es - z * se)[()], (es + z * se)[()], float(confidence))
