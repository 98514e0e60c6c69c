"""Parametric VaR and ES: delta-normal and Cornish–Fisher (4-moment) approximations.

Same conventions as :mod:`riskengine.risk.measures`: the inputs describe the P&L (gains)
over the risk horizon, ``level`` is the confidence ``alpha``, ``beta = 1 - alpha``, and VaR and
ES come out positive for losses. ``z = Phi^{-1}(alpha) > 0`` below.

Normal P&L with mean ``mu`` and standard deviation ``sigma``:

    VaR = -mu + sigma * z,          ES = -mu + sigma * phi(z) / beta.

Delta-normal: ``P&L = delta . r`` with ``r ~ N(m, Sigma)`` the asset returns over the horizon
and ``delta`` the *cash* exposures (currency P&L per unit relative return, i.e. ``Delta_i *
S_i`` for a derivative book), so ``mu = delta . m`` and ``sigma^2 = delta' Sigma delta``.
``Sigma`` (and ``m``) must already be for the horizon (e.g. ``h * Sigma_1day`` for i.i.d.
daily returns).

Cornish–Fisher: the ``beta``-quantile of the standardised P&L is approximated by the
4-moment expansion of the normal quantile ``z_beta = -z``,

    z_cf(x) = x + (x^2 - 1) s / 6 + (x^3 - 3x) k / 24 - (2x^3 - 5x) s^2 / 36,

with ``s`` the skewness and ``k`` the *excess* kurtosis of the P&L, and
``VaR = -(mu + sigma * z_cf(-z))``. Negative P&L skewness raises the VaR. Equivalently, in
loss terms, ``VaR = mu_L + sigma * z_cf(z)`` with the loss skewness ``-s``.

Modified ES (derived here, in the manner of Boudt, Peterson & Croux 2008): integrate the
second-order Edgeworth density ``f(x) = phi(x) [1 + s/6 He3 + k/24 He4 + s^2/72 He6]``
over the CF tail ``x <= g = z_cf(-z)``. With ``int_{-inf}^g phi He_m = -phi(g) He_{m-1}(g)``
and ``x He_n = He_{n+1} + n He_{n-1}``,

    int_{-inf}^g x f(x) dx = -phi(g) [1 + s g^3 / 6 + k (g^4 - 2 g^2 - 1) / 24
                                       + s^2 (g^6 - 9 g^4 + 9 g^2 + 3) / 72],

and ``ES = -(mu + sigma * that / beta)``. With ``s = k = 0`` both reduce to the normal
formulas. The expansion is only reliable for moderate ``s`` and ``k``: outside that domain
``z_cf`` is not monotone in the level and the modified ES can even fall below the modified
VaR; the functions return the formulas unclamped.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from jaxtyping import ArrayLike, Float
from scipy import stats

from riskengine.risk.measures import as_sample, check_level, normalised_weights

__all__ = [
    "Moments",
    "cornish_fisher_es",
    "cornish_fisher_var",
    "cornish_fisher_z",
    "delta_normal_es",
    "delta_normal_var",
    "normal_es",
    "normal_var",
    "pnl_moments",
]


class Moments(NamedTuple):
    """The first four moments of a P&L distribution (``excess_kurtosis`` = kurtosis - 3)."""

    mean: Float[np.ndarray, "*batch"]
    std: Float[np.ndarray, "*batch"]
    skewness: Float[np.ndarray, "*batch"]
    excess_kurtosis: Float[np.ndarray, "*batch"]


def _z(level: float) -> float:
    return float(stats.norm.ppf(check_level(level)))


def normal_var(
    *, mean: Float[ArrayLike, "*batch"], std: Float[ArrayLike, "*batch"], level: float
) -> Float[np.ndarray, "*batch"]:
    """VaR of a normal P&L: ``-mean + std * Phi^{-1}(level)``."""
    return (-np.asarray(mean, np.float64) + np.asarray(std, np.float64) * _z(level))[()]


def normal_es(
    *, mean: Float[ArrayLike, "*batch"], std: Float[ArrayLike, "*batch"], level: float
) -> Float[np.ndarray, "*batch"]:
    """ES of a normal P&L: ``-mean + std * phi(z) / (1 - level)``, ``z = Phi^{-1}(level)``."""
    z = _z(level)
    scale = float(stats.norm.pdf(z)) / (1.0 - level)
    return (-np.asarray(mean, np.float64) + np.asarray(std, np.float64) * scale)[()]


def _delta_normal_moments(delta, covariance, mean):
    d = np.asarray(delta, np.float64)
    cov = np.asarray(covariance, np.float64)
    if d.ndim < 1:
        raise ValueError("delta: must have an assets axis (last)")
    m = d.shape[-1]
    if cov.shape != (m, m):
        raise ValueError(f"covariance: expected shape {(m, m)} for {m} assets, got {cov.shape}")
    variance = np.einsum("...i,ij,...j->...", d, cov, d)
    scale = np.einsum("...i,ij,...j->...", np.abs(d), np.abs(cov), np.abs(d))
    if np.any(variance < -1e-12 * scale):
        raise ValueError("covariance: delta' Sigma delta < 0 (not positive semi-definite)")
    mu = np.zeros(d.shape[:-1]) if mean is None else d @ np.asarray(mean, np.float64)
    return mu, np.sqrt(np.maximum(variance, 0.0))


def delta_normal_var(
    *,
    delta: Float[ArrayLike, "*batch assets"],
    covariance: Float[ArrayLike, "assets assets"],
    level: float,
    mean: Float[ArrayLike, " assets"] | None = None,
) -> Float[np.ndarray, "*batch"]:
    """Delta-normal VaR ``-delta.m + z sqrt(delta' Sigma delta)`` (cash deltas, horizon
    covariance of returns; ``mean`` returns default to zero)."""
    mu, sigma = _delta_normal_moments(delta, covariance, mean)
    return normal_var(mean=mu, std=sigma, level=level)


def delta_normal_es(
    *,
    delta: Float[ArrayLike, "*batch assets"],
    covariance: Float[ArrayLike, "assets assets"],
    level: float,
    mean: Float[ArrayLike, " assets"] | None = None,
) -> Float[np.ndarray, "*batch"]:
    """Delta-normal ES ``-delta.m + sqrt(delta' Sigma delta) phi(z) / (1 - level)``."""
    mu, sigma = _delta_normal_moments(delta, covariance, mean)
    return normal_es(mean=mu, std=sigma, level=level)


def cornish_fisher_z(
    *,
    z: Float[ArrayLike, "*batch"],
    skewness: Float[ArrayLike, "*batch"],
    excess_kurtosis: Float[ArrayLike, "*batch"],
) -> Float[np.ndarray, "*batch"]:
    """The 4-moment Cornish–Fisher quantile ``z + (z^2-1)s/6 + (z^3-3z)k/24 - (2z^3-5z)s^2/36``
    of a standardised variable with skewness ``s`` and excess kurtosis ``k``, given the
    standard normal quantile ``z`` at the same probability."""
    x = np.asarray(z, np.float64)
    s = np.asarray(skewness, np.float64)
    k = np.asarray(excess_kurtosis, np.float64)
    return (
        x
        + (x**2 - 1.0) * s / 6.0
        + (x**3 - 3.0 * x) * k / 24.0
        - (2.0 * x**3 - 5.0 * x) * s**2 / 36.0
    )[()]


def cornish_fisher_var(
    *,
    mean: Float[ArrayLike, "*batch"],
    std: Float[ArrayLike, "*batch"],
    skewness: Float[ArrayLike, "*batch"],
    excess_kurtosis: Float[ArrayLike, "*batch"],
    level: float,
) -> Float[np.ndarray, "*batch"]:
    """Cornish–Fisher VaR ``-(mean + std * z_cf(-Phi^{-1}(level)))`` from the P&L moments."""
    g = cornish_fisher_z(z=-_z(level), skewness=skewness, excess_kurtosis=excess_kurtosis)
    return (-(np.asarray(mean, np.float64) + np.asarray(std, np.float64) * g))[()]


def cornish_fisher_es(
    *,
    mean: Float[ArrayLike, "*batch"],
    std: Float[ArrayLike, "*batch"],
    skewness: Float[ArrayLike, "*batch"],
    excess_kurtosis: Float[ArrayLike, "*batch"],
    level: float,
) -> Float[np.ndarray, "*batch"]:
    """Modified (Cornish–Fisher / Edgeworth) ES; see the module docstring for the formula
    and its domain of validity."""
    beta = 1.0 - check_level(level)
    s = np.asarray(skewness, np.float64)
    k = np.asarray(excess_kurtosis, np.float64)
    g = np.asarray(cornish_fisher_z(z=-_z(level), skewness=s, excess_kurtosis=k))
    g2 = g * g
    bracket = (
        1.0
        + s * g * g2 / 6.0
        + k * (g2 * g2 - 2.0 * g2 - 1.0) / 24.0
        + s**2 * (g2**3 - 9.0 * g2 * g2 + 9.0 * g2 + 3.0) / 72.0
    )
    tail_mean = -stats.norm.pdf(g) * bracket / beta  # E_Edgeworth[X ; X <= g] / beta
    return (-(np.asarray(mean, np.float64) + np.asarray(std, np.float64) * tail_mean))[()]


def pnl_moments(
    pnl: Float[ArrayLike, "*batch paths"],
    *,
    weights: Float[ArrayLike, "*batch paths"] | None = None,
) -> Moments:
    """Mean, standard deviation, skewness and excess kurtosis of a P&L sample (the
    population / plug-in estimators, optionally weighted), for the Cornish–Fisher inputs."""
    x = as_sample(pnl)
    w = normalised_weights(weights, x.shape)
    if w is None:
        w = np.full(x.shape, 1.0 / x.shape[-1])
    mean = np.sum(w * x, axis=-1)
    d = x - mean[..., None]
    m2 = np.sum(w * d**2, axis=-1)
    m3 = np.sum(w * d**3, axis=-1)
    m4 = np.sum(w * d**4, axis=-1)
    if np.any(m2 <= 0.0):
        raise ValueError("pnl: has zero variance; skewness and kurtosis are undefined")
    return Moments(mean[()], np.sqrt(m2)[()], (m3 / m2**1.5)[()], (m4 / m2**2 - 3.0)[()])
