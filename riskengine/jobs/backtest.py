"""The ``backtest`` job: a walk-forward test of the allocation on daily history.

```yaml
job: backtest
history: data/history.csv          # wide closes, long format, or one asset's OHLCV (CSV/parquet)
assets: [BTC, ETH]
window_days: 365                   # estimation window (returns)
rebalance_days: 7
forecast: {method: garch}          # or rolling; garch: {kind: garch|gjr, dist: normal|t}
simulate: {paths: 5000, seed: 1}
objective: {type: min_cvar, alpha: 0.95}
constraints: {long_only: true, budget: 1.0, max_weight: 0.8}
costs: {proportional: 0.001}       # fraction of the traded notional
var_level: 0.99
```

At every rebalance date ``k`` (every ``rebalance_days`` after the first ``window_days``
returns) the model is re-estimated on the last ``window_days`` daily log returns, one-day
scenarios are simulated with riskengine (correlated standard normal shocks from
``simulate_paths``, keyed ``fold_in(key(seed), rebalance_index)``; the correlation is that of
the window's standardised returns), turned into one-day simple returns with the model's
marginals, and the allocator picks the weights; the book trades to them at that day's close
paying ``costs.proportional`` times the traded notional. Between rebalances the positions
are held (weights drift with prices). Every day the one-day VaR of the current positions is
forecast from the same shocks, scaled by the day's volatility forecast: GARCH's filtered
``sigma_{t+1}`` (parameters refitted at each rebalance, the filter run daily) or the
rolling-window standard deviation up to that day. The realised portfolio return (before
costs) is compared with that VaR: exceedances, Kupiec and Christoffersen tests. The same
is done for the equal-weight and inverse-volatility baselines (same dates, costs, VaR
method).

Outputs: ``summary.json`` (per strategy: final equity, annualised return and volatility,
Sharpe, maximum drawdown, turnover and costs, VaR exceedances and tests), ``equity.parquet``
(one row per day: per strategy equity, return, forecast VaR, exceedance, turnover; the
strategy's weights), ``weights.parquet`` (targets at each rebalance) and ``report.html``.
"""

from __future__ import annotations

import datetime
import math
import time
from pathlib import Path
from typing import Literal

import jax.numpy as jnp
import numpy as np
import pandas as pd
from pydantic import Field, model_validator
from scipy import stats

from riskengine.allocation import SolverSettings, allocate
from riskengine.calibration import load_garch
from riskengine.calibration.garch import fit_garch, gjr_variance
from riskengine.config import ConfigError, Strict
from riskengine.history import load_history
from riskengine.jobs.allocate import ConstraintsConfig, ObjectiveConfig, build_problem
from riskengine.jobs.base import Job, JobContext, JobResult, Sampling
from riskengine.models.correlated import correlation_factor, repaired_correlation
from riskengine.report.backtest import backtest_report
from riskengine.risk import coverage_tests, value_at_risk
from riskengine.simulate import independent_normals, seed_key

DAYS_PER_YEAR = 365
STRATEGIES = ("strategy", "equal_weight", "inverse_vol")


class ForecastConfig(Strict):
    method: Literal["garch", "rolling"] = "garch"
    kind: Literal["garch", "gjr"] = "garch"
    dist: Literal["normal", "t"] = "normal"
    mean: Literal["zero", "sample"] = "zero"


class GarchFrom(Strict):
    """``{from: DIR}`` or ``{from: {ASSET: DIR}}``: GARCH/GJR parameters written by calibrate
    jobs (``model: {name: garch | gjr_garch}``), kept fixed; only the variance filter runs.
    A single DIR applies to every asset; assets not named are refitted at each rebalance."""
    from_: str | dict[str, str] = Field(alias="from")


class SimulateConfig(Strict):
    paths: int = Field(default=5000, ge=100)
    seed: int = Field(default=0, ge=0)


class CostsConfig(Strict):
    proportional: float = Field(default=0.001, ge=0, lt=1, allow_inf_nan=False)


class Config(Strict):
    job: Literal["backtest"]
    history: str = Field(min_length=1)
    assets: list[str] = Field(min_length=1)
    window_days: int = Field(default=365, ge=30)
    rebalance_days: int = Field(default=7, ge=1)
    start: datetime.date | None = None  # first decision on or after this date (default: after the window)
    end: datetime.date | None = None  # last day of the history used
    forecast: ForecastConfig = ForecastConfig()
    model: GarchFrom | None = None
    simulate: SimulateConfig = SimulateConfig()
    objective: ObjectiveConfig = ObjectiveConfig()
    constraints: ConstraintsConfig = ConstraintsConfig()
    costs: CostsConfig = CostsConfig()
    var_level: float = Field(default=0.99, gt=0.5, lt=1.0)
    dtype: Literal["float32", "float64"] = "float32"

    @model_validator(mode="after")
    def _checks(self) -> Config:
        if len(set(self.assets)) != len(self.assets):
            raise ValueError(f"assets: repeated name in {self.assets}")
        if self.forecast.method == "garch" and self.window_days < 100:
            raise ValueError(f"window_days: GARCH needs at least 100 returns (got {self.window_days})")
        if self.model is not None and self.forecast.method != "garch":
            raise ValueError("model.from: calibrated GARCH parameters need forecast.method: garch")
        if self.model is not None and isinstance(self.model.from_, dict):
            unknown = sorted(set(self.model.from_) - set(self.assets))
            if unknown:
                raise ValueError(f"model.from.{unknown[0]}: not one of the assets {self.assets}")
        if self.constraints.current_weights is not None:
            raise ValueError("constraints.current_weights: not used by the backtest (the current "
                             "weights are the book's drifted weights at each rebalance)")
        return self


class BacktestJob(Job):
    """Walk-forward allocation on daily history with GARCH risk forecasts, costs, baselines and VaR backtests."""
    name = "backtest"
    Config = Config
    sampling = Sampling(paths="simulate.paths", seed="simulate.seed")  # the solver handles its dtype

    def run(self, config: Config, context: JobContext) -> JobResult:
        return _run(config, progress=context.progress, base_dir=context.base_dir)


# --- forecasting -------------------------------------------------------------------------------

class _Forecaster:
    """Volatility and marginal model of each asset, refitted at a rebalance."""
    def __init__(self, config: Config, window: np.ndarray, fixed: list | None = None):
        self.method = config.forecast.method
        self.dist = config.forecast.dist
        n = window.shape[1]
        self.mean = window.mean(axis=0) if config.forecast.mean == "sample" else np.zeros(n)
        self.nu = np.full(n, np.inf)
        if self.method == "garch":
            self.params = []
            resid = np.empty_like(window)
            self.var_next = np.empty(n)
            self.kinds = []
            self.dists = []
            for j in range(n):
                given = fixed[j] if fixed is not None else None
                if given is not None:  # calibrated parameters: run the filter only
                    p, kind, dist = dict(given.params), given.kind, given.dist
                    var, var_next = given.filter(window[:, j])
                    cond_vol = np.sqrt(var)
                else:
                    fit = fit_garch(window[:, j], kind=config.forecast.kind, dist=config.forecast.dist)
                    p, kind, dist = fit.params, config.forecast.kind, config.forecast.dist
                    cond_vol, var_next = fit.conditional_vol, fit.next_variance
                if kind != "gjr":
                    p["gamma"] = 0.0
                self.params.append(p)
                self.kinds.append(kind)
                self.dists.append(dist)
                resid[:, j] = (window[:, j] - p["mu"]) / cond_vol
                self.var_next[j] = var_next
                if dist == "t":
                    self.nu[j] = p["nu"]
                if config.forecast.mean == "sample":
                    self.mean[j] = p["mu"]
            self.vol = np.sqrt(self.var_next)
            self.corr = np.corrcoef(resid, rowvar=False) if n > 1 else np.ones((1, 1))
        else:
            self.vol = window.std(axis=0, ddof=1)
            self.corr = np.corrcoef(window, rowvar=False) if n > 1 else np.ones((1, 1))

    def update(self, realised: np.ndarray, rolling_vol: np.ndarray) -> None:
        """Move to the next day's volatility forecast after observing ``realised`` returns."""
        if self.method == "garch":
            for j, p in enumerate(self.params):
                eps = realised[j] - p["mu"]
                gamma = p.get("gamma", 0.0)
                self.var_next[j] = gjr_variance(self.var_next[j], eps, omega=p["omega"], alpha=p["alpha"],
                                                gamma=gamma, beta=p["beta"])
            self.vol = np.sqrt(self.var_next)
        else:
            self.vol = rolling_vol

    def marginals(self, z: np.ndarray) -> np.ndarray:
        """Unit-variance shocks with the model's marginal law from standard normals ``z``."""
        if self.method == "rolling" or not np.any(np.isfinite(self.nu)):
            return z
        u = np.clip(stats.norm.cdf(z), 1e-12, 1 - 1e-12)
        t = stats.t.ppf(u, np.where(np.isfinite(self.nu), self.nu, 1e6)) * np.sqrt(
            np.where(np.isfinite(self.nu), (self.nu - 2.0) / self.nu, 1.0))
        return np.where(np.isfinite(self.nu), t, z)

    def scenarios(self, shocks: np.ndarray) -> np.ndarray:
        """One-day simple returns ``[paths, assets]`` for the current volatility forecast."""
        return np.expm1(self.mean + self.vol * shocks)


# --- the walk-forward ----------------------------------------------------------------------------

def _var(scenario_returns: np.ndarray, weights: np.ndarray, level: float) -> float:

    return float(value_at_risk(scenario_returns @ weights, level=level))


def _run(config: Config, *, progress=None, base_dir: Path | None = None) -> JobResult:
    history = load_history(config.history, config.assets, base_dir=base_dir)
    closes = history.closes
    if config.end is not None:
        closes = closes[closes.index <= pd.Timestamp(config.end)]
    names = list(config.assets)
    n = len(names)
    log_ret = np.log(closes.to_numpy()).T
    log_ret = np.diff(log_ret, axis=1).T  # [days, assets]; return t is from close t to t+1
    simple = np.expm1(log_ret)
    dates = closes.index[1:]
    first = config.window_days
    if config.start is not None:
        first = max(first, int(np.searchsorted(dates, pd.Timestamp(config.start))))
    if first >= len(dates) - 1:
        raise ConfigError(f"window_days: {config.window_days} returns leave no day to test in "
                          f"{len(dates)} returns of {history.source}")
    objective, constraints = build_problem(config, names)
    if constraints.budget is None:
        raise ConfigError("constraints.budget: the backtest needs a budget (fraction of equity invested)")
    budget = float(constraints.budget)
    dtype = jnp.float64 if config.dtype == "float64" else jnp.float32
    settings = SolverSettings(dtype=dtype)
    base_key = seed_key(config.simulate.seed)
    rolling_std = pd.DataFrame(log_ret).rolling(config.window_days).std().to_numpy()
    fixed = None
    if config.model is not None:

        spec = config.model.from_
        dirs = {a: spec for a in names} if isinstance(spec, str) else spec
        loaded = {}
        for a, d in dirs.items():
            try:
                loaded[a] = load_garch(d, base_dir=base_dir)
            except ConfigError as err:
                raise ConfigError(f"model.from: {str(err).removeprefix('garch from: ')}") from None
        fixed = [loaded.get(a) for a in names]

    days = range(first - 1, len(dates) - 1)  # decision at close of day d, realised on day d+1
    num_days = len(days)
    normals = independent_normals(key=base_key, num_assets=n, paths=config.simulate.paths,
                                  periods=-(-num_days // config.rebalance_days), dtype=dtype)
    weights = {s: np.zeros(n) for s in STRATEGIES}
    equity = {s: 1.0 for s in STRATEGIES}
    rec = {s: {"equity": [], "return": [], "var": [], "turnover": [], "cost": []} for s in STRATEGIES}
    strategy_weights = []
    targets = []
    forecaster = None
    shocks = None
    rebalance_index = 0
    solve_seconds = 0.0
    for i, d in enumerate(days):
        rebalance = i % config.rebalance_days == 0
        if rebalance:
            window = log_ret[d + 1 - config.window_days: d + 1]
            forecaster = _Forecaster(config, window, fixed)
            shocks = forecaster.marginals(
                normals[rebalance_index] @ correlation_factor(repaired_correlation(forecaster.corr)).T)
        elif forecaster is not None:
            forecaster.update(log_ret[d], rolling_std[d])
        scen = forecaster.scenarios(shocks)
        if rebalance:
            t0 = time.perf_counter()
            c = constraints
            if c.max_turnover is not None:
                c = type(c)(**{**c.__dict__, "current": weights["strategy"].copy()})
            try:
                result = allocate(scen, objective, c, names=names, settings=settings)
            except ConfigError as err:
                field, _, problem = str(err).partition(": ")
                raise ConfigError(f"{field}: at the rebalance of {dates[d].date()}: {problem}") from None
            solve_seconds += time.perf_counter() - t0
            inv = 1.0 / np.maximum(forecaster.vol, 1e-12)
            new = {"strategy": result.weights,
                   "equal_weight": np.full(n, budget / n),
                   "inverse_vol": budget * inv / inv.sum()}
            targets.append({"date": dates[d],
                            **{f"{s}_{a}": float(new[s][j]) for s in STRATEGIES for j, a in enumerate(names)},
                            **{f"forecast_vol_{a}": float(forecaster.vol[j]) for j, a in enumerate(names)}})
            rebalance_index += 1
        realised = simple[d + 1]
        for s in STRATEGIES:
            traded = 0.0
            if rebalance:
                traded = float(np.sum(np.abs(new[s] - weights[s])))
                weights[s] = new[s].copy()
            cost = config.costs.proportional * traded
            var = _var(scen, weights[s], config.var_level)
            gross = float(weights[s] @ realised)
            equity[s] *= (1.0 - cost) * (1.0 + gross)
            # weights drift with prices (the uninvested rest is cash at 0%)
            grown = weights[s] * (1.0 + realised)
            weights[s] = grown / (1.0 + gross)
            r = rec[s]
            r["equity"].append(equity[s])
            r["return"].append(gross)
            r["var"].append(var)
            r["turnover"].append(traded)
            r["cost"].append(cost)
        strategy_weights.append(weights["strategy"].copy())
        if progress is not None:
            progress(i + 1, num_days)

    out_dates = dates[first:first + num_days]
    frame = {"date": out_dates}
    for s in STRATEGIES:
        for k, v in rec[s].items():
            frame[f"{s}_{k}"] = np.asarray(v)
        frame[f"{s}_exceedance"] = np.asarray(rec[s]["return"]) < -np.asarray(rec[s]["var"])
    sw = np.asarray(strategy_weights)
    for j, a in enumerate(names):
        frame[f"strategy_weight_{a}"] = sw[:, j]
    table = pd.DataFrame(frame)
    summary = {
        "job": "backtest",
        "history": history.source,
        "assets": names,
        "period": {"first": str(out_dates[0].date()), "last": str(out_dates[-1].date()),
                   "days": num_days},
        "paths": config.simulate.paths,
        "rebalances": rebalance_index,
        "rebalance_days": config.rebalance_days,
        "window_days": config.window_days,
        "forecast": config.forecast.model_dump(),
        "calibrated_model": (None if fixed is None else
                             {a: (None if g is None else {"source": g.source, "kind": g.kind, "dist": g.dist,
                                                          "params": g.params})
                              for a, g in zip(names, fixed, strict=True)}),
        "objective": config.objective.model_dump(),
        "costs": config.costs.model_dump(),
        "var_level": config.var_level,
        "dropped_dates": history.dropped_dates,
        "strategies": {s: _metrics(table, s, config.var_level) for s in STRATEGIES},
        "solve_seconds": solve_seconds,
    }
    return JobResult(summary=summary, tables={"equity": table, "weights": pd.DataFrame(targets)},
                     report=lambda summary: backtest_report(summary, table, names))


def _metrics(table: pd.DataFrame, s: str, level: float) -> dict:
    eq = table[f"{s}_equity"].to_numpy()
    ret = eq / np.concatenate([[1.0], eq[:-1]]) - 1.0  # net of costs
    days = len(eq)
    years = days / DAYS_PER_YEAR
    vol = float(np.std(ret, ddof=1) * math.sqrt(DAYS_PER_YEAR))
    mean_ann = float(np.mean(ret) * DAYS_PER_YEAR)
    peak = np.maximum.accumulate(np.concatenate([[1.0], eq]))
    drawdown = 1.0 - np.concatenate([[1.0], eq]) / peak
    hits = table[f"{s}_exceedance"].to_numpy()
    turnover = table[f"{s}_turnover"].to_numpy()
    return {
        "final_equity": float(eq[-1]),
        "annualised_return": float(eq[-1] ** (1.0 / years) - 1.0),
        "annualised_vol": vol,
        "sharpe": mean_ann / vol if vol > 0 else None,
        "max_drawdown": float(drawdown.max()),
        "turnover": float(turnover.sum()),
        "turnover_annualised": float(turnover.sum() / years),
        "costs": float(table[f"{s}_cost"].sum()),
        "var": {
            "level": level,
            "days": days,
            "exceedances": int(hits.sum()),
            "expected_exceedances": (1.0 - level) * days,
            "rate": float(hits.mean()),
            "mean_forecast_var": float(table[f"{s}_var"].mean()),
            **coverage_tests(hits, level=level),
        },
    }


