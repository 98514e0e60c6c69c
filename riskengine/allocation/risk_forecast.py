"""One-day risk forecasts of a book of exposures, re-fitted walk-forward, by simulation.

At each retrain date a GARCH or GJR-GARCH(1,1) (:func:`riskengine.calibration.garch.fit_garch`)
is fitted to each asset's daily log returns of the training window, and the correlation of
the standardised residuals is taken; ``paths`` independent standard normals per retrain
period are simulated by riskengine (:func:`riskengine.simulate.simulate_paths`: a GBM with
unit volatility over one year at rate 0 has ``log_return = -1/2 + W_1``, keyed by
``fold_in(key(seed), block)``) and correlated. Every day ``t`` the variance forecast
``sigma^2_{t+1}`` of each asset is the GARCH filter (:func:`~riskengine.calibration.garch.filter_garch`)
of the asset's last ``filter_days`` log returns up to ``t`` with the period's parameters, and
the one-day scenarios of simple returns are ``expm1(sigma_{t+1} z)``. VaR and ES (CVaR) of
exposures ``w`` are those of ``scenarios @ w`` (:func:`riskengine.risk.var_and_es`). Assets
with fewer than 100 returns in the window use their sample standard deviation instead.
Everything at ``t`` depends on returns up to ``t`` only.
"""

from __future__ import annotations

import jax
import numpy as np
from jaxtyping import Float

from riskengine.calibration.garch import MIN_OBSERVATIONS, filter_garch, fit_garch
from riskengine.models.correlated import correlation_factor, repaired_correlation
from riskengine.risk import var_and_es
from riskengine.simulate import independent_normals


def simulated_normals(*, assets: int, paths: int, periods: int, seed: int) -> Float[np.ndarray, "periods paths assets"]:
    """Independent standard normals from riskengine's simulator, one block of ``paths`` per
    period (the first ``k`` periods do not depend on how many follow)."""
    return independent_normals(key=jax.random.key(seed), num_assets=assets, paths=paths, periods=periods)


class RiskForecaster:
    """Scenario generator of one retrain period (see the module docstring)."""

    def __init__(self, window: Float[np.ndarray, "days assets"], normals: Float[np.ndarray, "paths assets"],
                 *, kind: str = "gjr", dist: str = "normal", filter_days: int = 365):
        n = window.shape[1]
        self.kind = kind
        self.filter_days = filter_days
        self.params: list[dict | None] = []
        resid = np.zeros_like(window)
        for a in range(n):
            r = window[:, a]
            ok = np.isfinite(r)
            if ok.sum() >= MIN_OBSERVATIONS:
                fit = fit_garch(r[ok], kind=kind, dist=dist)
                p = dict(fit.params)
                self.params.append(p)
                resid[ok, a] = (r[ok] - p["mu"]) / fit.conditional_vol
            else:
                self.params.append(None)
                sd = float(np.std(r[ok], ddof=1)) if ok.sum() > 2 else np.nan
                resid[ok, a] = r[ok] / sd if sd > 0 else 0.0
        corr = np.corrcoef(resid, rowvar=False) if n > 1 else np.ones((1, 1))
        corr = np.where(np.isfinite(corr), corr, 0.0)
        self.shocks = normals @ correlation_factor(repaired_correlation(corr)).T

    def vol(self, history: Float[np.ndarray, "days assets"]) -> Float[np.ndarray, " assets"]:
        """Daily volatility forecasts for the day after the last row of ``history``."""
        out = np.full(history.shape[1], np.nan)
        for a, p in enumerate(self.params):
            r = history[-self.filter_days:, a]
            r = r[np.isfinite(r)]
            if r.size < 20:
                continue
            if p is None:
                out[a] = float(np.std(r, ddof=1))
            else:
                out[a] = float(np.sqrt(filter_garch(p, r, kind=self.kind)[1]))
        return out

    def scenarios(self, vol: Float[np.ndarray, " assets"]) -> Float[np.ndarray, "paths assets"]:
        return np.expm1(self.shocks * np.where(np.isfinite(vol), vol, 0.0))

    @staticmethod
    def var_es(scenarios: np.ndarray, weights: Float[np.ndarray, "... assets"], *, level: float):
        """VaR and ES (positive = loss, fraction of equity) of ``weights`` (one book or a batch)."""
        pnl = np.asarray(weights) @ scenarios.T
        return var_and_es(pnl, level=level)


def daily_scenarios(log_returns: Float[np.ndarray, "dates assets"], normals: Float[np.ndarray, "periods paths assets"],
                    *, first: int, window_days: int, retrain_every_days: int, kind: str = "gjr",
                    dist: str = "normal") -> list[Float[np.ndarray, "paths assets"]]:
    """The one-day scenarios of every decision date from ``first`` on, the forecaster re-fitted
    every ``retrain_every_days`` on the last ``window_days`` log returns (``log_returns[t]``:
    over ``(t - 1, t]``), period ``k`` with ``normals[k]``."""
    out = []
    forecaster = None
    for i in range(len(log_returns) - first):
        t = first + i
        if (i % retrain_every_days) == 0:
            forecaster = RiskForecaster(log_returns[t - window_days + 1: t + 1], normals[i // retrain_every_days],
                                        kind=kind, dist=dist)
        out.append(forecaster.scenarios(forecaster.vol(log_returns[: t + 1])))
    return out


def cap_to_cvar(targets: Float[np.ndarray, "days assets"], scenarios: list[np.ndarray], budget: float,
                *, level: float = 0.95) -> None:
    """Scale each day's targets (in place) down into the one-day CVaR budget; NaN targets
    become 0 on the days that are scaled."""
    for i in range(len(targets)):
        w = np.where(np.isfinite(targets[i]), targets[i], 0.0)
        _, es = RiskForecaster.var_es(scenarios[i], w, level=level)
        if es > budget:
            targets[i] = w * (budget / float(es))


def daily_var(scenarios: list[np.ndarray], positions: Float[np.ndarray, "days assets"],
              levels: list[float]) -> dict[float, Float[np.ndarray, " days"]]:
    """``{level: the forecast one-day VaR of each day's positions}``."""
    return {lv: np.array([float(RiskForecaster.var_es(scenarios[i], positions[i], level=lv)[0])
                          for i in range(len(positions))]) for lv in levels}
