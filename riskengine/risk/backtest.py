"""VaR backtests on a sequence of exceedances: Kupiec and Christoffersen likelihood ratios.

An *exceedance* (hit) on day ``t`` is a realised loss strictly greater than that day's VaR,
``pnl_t < -VaR_t`` (:func:`exceedances`). Under a correct VaR at confidence ``level`` the
hits are i.i.d. Bernoulli with ``p = 1 - level``.

Kupiec proportion of failures (unconditional coverage), ``x`` hits in ``T`` days,
``pi = x / T``:

    LR_pof = -2 ln[(1 - p)^(T - x) p^x] + 2 ln[(1 - pi)^(T - x) pi^x]   ~ chi2(1).

Christoffersen independence, from the counts ``n_ij`` of day pairs ``(t - 1, t)`` with
state ``i`` followed by ``j`` (``T - 1`` pairs), ``pi_0 = n01 / (n00 + n01)``,
``pi_1 = n11 / (n10 + n11)``, ``pi = (n01 + n11) / (T - 1)``:

    LR_ind = -2 ln[(1 - pi)^(n00 + n10) pi^(n01 + n11)]
             + 2 ln[(1 - pi_0)^n00 pi_0^n01 (1 - pi_1)^n10 pi_1^n11]        ~ chi2(1).

Conditional coverage: ``LR_cc = LR_pof + LR_ind ~ chi2(2)`` (the usual textbook sum, with
``LR_pof`` on all ``T`` days). ``0 ln 0 = 0`` throughout, so sequences without hits, or
whose only hit is the last day, are handled; p-values are ``chi2.sf``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from jaxtyping import ArrayLike, Bool, Float
from scipy import special, stats

from riskengine.risk.measures import check_level

__all__ = [
    "LRTest",
    "christoffersen_coverage_test",
    "christoffersen_independence_test",
    "coverage_tests",
    "exceedances",
    "kupiec_test",
    "transition_counts",
]


class LRTest(NamedTuple):
    """A likelihood-ratio test: statistic, its chi-square p-value and degrees of freedom."""

    statistic: float
    p_value: float
    dof: int

    def as_dict(self) -> dict:
        return {"statistic": float(self.statistic), "p_value": float(self.p_value), "dof": int(self.dof)}


def _hits(hits: ArrayLike) -> np.ndarray:
    h = np.asarray(hits)
    if h.ndim != 1 or h.size == 0:
        raise ValueError(f"hits: expected a non-empty 1-D sequence, got shape {h.shape}")
    if h.dtype != bool:
        if not np.all((h == 0) | (h == 1)):
            raise ValueError("hits: must be booleans or 0/1")
        h = h.astype(bool)
    return h


def _loglik(count_fail: float, count_hit: float, prob: float) -> float:
    """``count_fail ln(1 - prob) + count_hit ln(prob)`` with ``0 ln 0 = 0``."""
    return float(special.xlogy(count_fail, 1.0 - prob) + special.xlogy(count_hit, prob))


def _test(statistic: float, dof: int) -> LRTest:
    statistic = max(statistic, 0.0)  # rounding can make an exact 0 slightly negative
    return LRTest(statistic, float(stats.chi2.sf(statistic, dof)), dof)


def exceedances(
    *, pnl: Float[ArrayLike, " days"], var: Float[ArrayLike, " days"]
) -> Bool[np.ndarray, " days"]:
    """The hit sequence ``pnl < -var`` (realised loss strictly beyond the reported VaR)."""
    return np.asarray(pnl, np.float64) < -np.asarray(var, np.float64)


def transition_counts(hits: Bool[ArrayLike, " days"]) -> tuple[int, int, int, int]:
    """``(n00, n01, n10, n11)``: the counts of consecutive day pairs by (previous, current)
    hit state."""
    h = _hits(hits).astype(int)
    pairs = 2 * h[:-1] + h[1:]
    n00, n01, n10, n11 = (int(c) for c in np.bincount(pairs, minlength=4))
    return n00, n01, n10, n11


def kupiec_test(hits: Bool[ArrayLike, " days"], *, level: float) -> LRTest:
    """Kupiec's proportion-of-failures test of ``hit rate == 1 - level`` (chi2, 1 dof)."""
    p = 1.0 - check_level(level)
    h = _hits(hits)
    t, x = h.size, int(h.sum())
    statistic = -2.0 * _loglik(t - x, x, p) + 2.0 * _loglik(t - x, x, x / t)
    return _test(statistic, 1)


def christoffersen_independence_test(hits: Bool[ArrayLike, " days"]) -> LRTest:
    """Christoffersen's first-order Markov independence test of the hits (chi2, 1 dof)."""
    n00, n01, n10, n11 = transition_counts(hits)
    pi0 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi1 = n11 / (n10 + n11) if n10 + n11 else 0.0
    total = n00 + n01 + n10 + n11
    pi = (n01 + n11) / total if total else 0.0
    restricted = _loglik(n00 + n10, n01 + n11, pi)
    unrestricted = _loglik(n00, n01, pi0) + _loglik(n10, n11, pi1)
    return _test(-2.0 * restricted + 2.0 * unrestricted, 1)


def christoffersen_coverage_test(hits: Bool[ArrayLike, " days"], *, level: float) -> LRTest:
    """Christoffersen's conditional-coverage test ``LR_pof + LR_ind`` (chi2, 2 dof)."""
    statistic = kupiec_test(hits, level=level).statistic
    statistic += christoffersen_independence_test(hits).statistic
    return _test(statistic, 2)


def coverage_tests(hits: Bool[ArrayLike, " days"], *, level: float) -> dict[str, dict]:
    """The three tests of a VaR at ``level`` as summary entries: ``kupiec``,
    ``christoffersen_independence`` and ``christoffersen_coverage``, each ``{statistic,
    p_value, dof}``."""
    return {
        "kupiec": kupiec_test(hits, level=level).as_dict(),
        "christoffersen_independence": christoffersen_independence_test(hits).as_dict(),
        "christoffersen_coverage": christoffersen_coverage_test(hits, level=level).as_dict(),
    }
