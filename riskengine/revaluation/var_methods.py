"""The book's VaR and ES by every method, per horizon and level (keys from
:func:`riskengine.risk.level_key`): Monte Carlo with confidence intervals (the P&L of
:class:`riskengine.revaluation.PathRevaluation`), delta-normal (the Greeks' USD deltas, 30-day
ATM implied vols, the snapshot's correlations), Cornish–Fisher (the Monte Carlo P&L moments),
historical and filtered historical simulation (full revaluation,
:mod:`riskengine.revaluation.historical`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from jaxtyping import Float

from riskengine import risk
from riskengine.book import Book
from riskengine.market import DAYS_PER_YEAR, MarketSnapshot
from riskengine.revaluation.historical import filtered_historical_pnl, historical_pnl

__all__ = ["filtered_historical_var", "historical_var", "monte_carlo_var", "parametric_var"]

key = risk.level_key


def monte_carlo_var(pnl: Float[np.ndarray, "paths horizons"], *, horizons_days: Sequence[int],
                    var_levels: Sequence[float], es_levels: Sequence[float],
                    confidence: float) -> tuple[dict, dict[str, risk.Moments]]:
    """``(figures, moments)``: ``figures`` has ``var``, ``es``, ``var_ci`` and ``es_ci``, each
    ``{"<h>d": {level: ...}}`` (the intervals ``{"lower", "upper", "confidence"}`` at
    ``confidence``: order statistics for VaR, asymptotic normal for ES); ``moments`` the P&L
    moments per horizon, for Cornish–Fisher."""
    figures: dict = {"var": {}, "es": {}, "var_ci": {}, "es_ci": {}}
    moments = {}
    for j, h in enumerate(horizons_days):
        hk, x = f"{h}d", pnl[:, j]
        var_es = risk.var_and_es_by_level(x, var_levels=var_levels, es_levels=es_levels)
        figures["var"][hk], figures["es"][hk] = var_es["var"], var_es["es"]
        figures["var_ci"][hk] = {key(a): _interval(risk.var_interval(x, level=a, confidence=confidence)) for a in var_levels}
        figures["es_ci"][hk] = {key(a): _interval(risk.es_interval(x, level=a, confidence=confidence)) for a in es_levels}
        moments[hk] = risk.pnl_moments(x)
    return figures, moments


def _interval(iv: risk.Interval) -> dict[str, float]:
    return {"lower": float(iv.lower), "upper": float(iv.upper), "confidence": float(iv.confidence)}


def parametric_var(book: Book, market: MarketSnapshot, greeks: Mapping[str, dict], moments: Mapping[str, risk.Moments], *,
                   horizons_days: Sequence[int], var_levels: Sequence[float], es_levels: Sequence[float]) -> dict:
    """``{"<h>d": {"delta_normal": {"var", "es"}, "cornish_fisher": {"var", "moments"}}}``:
    delta-normal VaR and ES of the book's USD deltas (``greeks`` per underlying, as
    :func:`riskengine.revaluation.book_greeks` gives them) with the covariance of 30-day ATM
    implied vols and the snapshot's correlations over ``h`` days; Cornish–Fisher VaR from
    the Monte Carlo P&L ``moments`` per horizon (``"<h>d"``)."""
    names = list(book.underlyings)
    exposures = np.asarray([greeks[u]["delta_usd"] for u in names])
    atm = np.asarray([
        float(market.implied_vol(u, strike=market.underlyings[u].spot, expiry_years=30 / DAYS_PER_YEAR)) for u in names
    ])
    corr = market.correlation_matrix(names)
    out: dict = {}
    for h in horizons_days:
        cov, m = np.outer(atm, atm) * corr * (h / DAYS_PER_YEAR), moments[f"{h}d"]
        out[f"{h}d"] = {
            "delta_normal": {
                "var": {key(a): float(risk.delta_normal_var(delta=exposures, covariance=cov, level=a)) for a in var_levels},
                "es": {key(a): float(risk.delta_normal_es(delta=exposures, covariance=cov, level=a)) for a in es_levels},
            },
            "cornish_fisher": {
                "var": {key(a): float(risk.cornish_fisher_var(mean=m.mean, std=m.std, skewness=m.skewness,
                                                              excess_kurtosis=m.excess_kurtosis, level=a))
                        for a in var_levels},
                "moments": {"mean": float(m.mean), "std": float(m.std), "skewness": float(m.skewness),
                            "excess_kurtosis": float(m.excess_kurtosis)},
            },
        }
    return out


def historical_var(book: Book, market: MarketSnapshot, returns: Float[np.ndarray, "days underlyings"], *,
                   horizons_days: Sequence[int], var_levels: Sequence[float], es_levels: Sequence[float]) -> dict:
    """``{"<h>d": {"var", "es", "days"}}``: historical VaR and ES of the book fully revalued
    under each overlapping ``h``-day return of the daily simple ``returns`` (one column per
    underlying, in ``book.underlyings`` order); ``days``: the number of such returns."""
    out: dict = {}
    for h in horizons_days:
        pnl = historical_pnl(book, market, returns, horizon=h)
        out[f"{h}d"] = risk.var_and_es_by_level(pnl, var_levels=var_levels, es_levels=es_levels) | {"days": int(len(pnl))}
    return out


def filtered_historical_var(
    book: Book, market: MarketSnapshot, returns: Float[np.ndarray, "days underlyings"], *,
    horizons_days: Sequence[int], var_levels: Sequence[float], es_levels: Sequence[float],
    paths: int, seed: int, model: str, distribution: str, given: Mapping | None = None,
) -> dict:
    """``{"model", "distribution", "paths", "seed", "days", "underlyings", "<h>d": {"var",
    "es"}}``: VaR and ES of the book by filtered historical simulation
    (:func:`riskengine.revaluation.filtered_historical_pnl`, arguments as there); ``days``: the
    daily returns filtered, ``underlyings``: each filter's parameters."""
    pnl, filtered = filtered_historical_pnl(book, market, returns, horizons_days=horizons_days, paths=paths, seed=seed,
                                            model=model, distribution=distribution, given=given)
    out: dict = {"model": model, "distribution": distribution, "paths": paths, "seed": seed,
                 "days": int(len(returns)), "underlyings": filtered.to_dict()}
    for j, h in enumerate(horizons_days):
        out[f"{h}d"] = risk.var_and_es_by_level(pnl[:, j], var_levels=var_levels, es_levels=es_levels)
    return out
