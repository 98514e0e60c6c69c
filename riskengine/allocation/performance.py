"""Performance statistics of a daily return series: annualised return and volatility,
Sharpe ratio with a stationary-bootstrap confidence interval, Sortino ratio, maximum
drawdown, CVaR, and the deflated Sharpe ratio.

- Sharpe: ``mean / std * sqrt(365)`` of daily net returns (zero rate).
- Confidence interval: percentile interval of the Sharpe over ``resamples`` stationary
  bootstrap resamples (Politis & Romano 1994, geometric blocks of mean ``block_days``), which
  keeps the serial dependence (volatility clustering) that an i.i.d. bootstrap would lose.
- Deflated Sharpe ratio (Bailey & López de Prado 2014): the probability that the true Sharpe
  exceeds ``SR0``, the expected maximum of ``trials`` Sharpe estimates of strategies with no
  skill, ``SR0 = sqrt(V) ((1 - g) Phi^-1(1 - 1/N) + g Phi^-1(1 - 1/(N e)))`` (``g`` the
  Euler–Mascheroni constant), given the estimate's skewness and kurtosis:
  ``DSR = Phi((SR - SR0) sqrt(T - 1) / sqrt(1 - skew SR + (kurt - 1) / 4 SR^2))`` with SR per
  day. ``V``, the variance of the trials' Sharpe estimates under no skill, is the sampling
  variance ``1 / (T - 1)`` of a daily Sharpe estimate. With one trial ``SR0 = 0`` (the
  probabilistic Sharpe ratio). ``p = 1 - DSR``.
"""

from __future__ import annotations

import math

import numpy as np
from jaxtyping import Float
from scipy import stats

from riskengine.risk import expected_shortfall

DAYS_PER_YEAR = 365
EULER_GAMMA = 0.5772156649015329


def stationary_bootstrap_indices(days: int, *, resamples: int, block_days: float,
                                 seed: int) -> np.ndarray:
    """``[resamples, days]`` indices of stationary-bootstrap resamples."""
    rng = np.random.default_rng(seed)
    p = 1.0 / block_days
    idx = np.empty((resamples, days), np.int64)
    idx[:, 0] = rng.integers(0, days, resamples)
    new = rng.random((resamples, days)) < p
    starts = rng.integers(0, days, (resamples, days))
    for t in range(1, days):
        idx[:, t] = np.where(new[:, t], starts[:, t], (idx[:, t - 1] + 1) % days)
    return idx


def sharpe(returns: Float[np.ndarray, "... days"]) -> np.ndarray:
    sd = returns.std(axis=-1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sd > 0, returns.mean(axis=-1) / sd * math.sqrt(DAYS_PER_YEAR), np.nan)


def expected_max_sharpe(trials: int, variance: float) -> float:
    """Expected maximum of ``trials`` Sharpe estimates with mean 0 and ``variance``."""
    if trials <= 1:
        return 0.0
    n = float(trials)
    return math.sqrt(variance) * ((1 - EULER_GAMMA) * stats.norm.ppf(1 - 1 / n)
                                  + EULER_GAMMA * stats.norm.ppf(1 - 1 / (n * math.e)))


def deflated_sharpe(returns: Float[np.ndarray, " days"], *, trials: int) -> tuple[float, float]:
    """``(DSR, p-value)`` of daily ``returns`` among ``trials`` strategies tried."""
    r = np.asarray(returns, np.float64)
    t = r.size
    sd = r.std(ddof=1)
    if t < 3 or sd == 0:
        return float("nan"), float("nan")
    sr = r.mean() / sd
    skew = float(stats.skew(r))
    kurt = float(stats.kurtosis(r, fisher=False))
    sr0 = expected_max_sharpe(trials, 1.0 / (t - 1))
    denom = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr * sr
    z = (sr - sr0) * math.sqrt(t - 1) / math.sqrt(max(denom, 1e-12))
    dsr = float(stats.norm.cdf(z))
    return dsr, 1.0 - dsr


def statistics(returns: Float[np.ndarray, " days"], *, boot: np.ndarray, trials: int,
               confidence: float = 0.95) -> dict:
    """Figures of daily net returns; ``boot``: bootstrap indices (shared by the strategies so
    that their intervals are paired)."""
    r = np.asarray(returns, np.float64)
    days = r.size
    years = days / DAYS_PER_YEAR
    equity = np.cumprod(1.0 + r)
    vol = float(r.std(ddof=1) * math.sqrt(DAYS_PER_YEAR))
    sr = float(sharpe(r))
    dist = sharpe(r[boot])
    a = (1.0 - confidence) / 2.0
    downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)) * DAYS_PER_YEAR)
    curve = np.concatenate([[1.0], equity])
    drawdown = 1.0 - curve / np.maximum.accumulate(curve)
    dsr, p = deflated_sharpe(r, trials=trials)
    final = float(equity[-1])
    return {
        "annual_return": float(final ** (1.0 / years) - 1.0) if final > 0 else -1.0,
        "annual_vol": vol,
        "sharpe": sr if math.isfinite(sr) else None,
        "sharpe_ci": [float(np.nanquantile(dist, a)), float(np.nanquantile(dist, 1 - a))]
        if np.isfinite(dist).any() else None,
        "sortino": float(r.mean() * DAYS_PER_YEAR / downside) if downside > 0 else None,
        "max_drawdown": float(drawdown.max()),
        "cvar_95": float(expected_shortfall(r, level=0.95)),
        "final_equity": final,
        "deflated_sharpe": dsr if math.isfinite(dsr) else None,
        "deflated_sharpe_p": p if math.isfinite(p) else None,
        "trials": int(trials),
        "days": int(days),
    }


def sharpe_difference(a: Float[np.ndarray, " days"], b: Float[np.ndarray, " days"], *, boot: np.ndarray,
                      confidence: float = 0.95) -> dict:
    """Paired comparison of two strategies on the same days: the Sharpe difference ``a - b``,
    its stationary-bootstrap percentile interval (the same resampled days for both) and the
    two-sided bootstrap p-value of no difference."""
    diff = float(sharpe(a) - sharpe(b))
    dist = sharpe(a[boot]) - sharpe(b[boot])
    dist = dist[np.isfinite(dist)]
    q = (1.0 - confidence) / 2.0
    p = float(min(1.0, 2.0 * min(np.mean(dist <= 0.0), np.mean(dist >= 0.0))))
    return {"sharpe_difference": diff, "ci": [float(np.quantile(dist, q)), float(np.quantile(dist, 1 - q))],
            "p_value": p}
