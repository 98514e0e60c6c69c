"""The ``exposure`` job: factor-driven dynamic exposure, walk-forward, within risk limits.

```yaml
job: exposure
prices: PATH                   # CSV/parquet: a date column, one close column per asset;
                               # or {BTC: PATH, ...}: one OHLCV/close file per asset
assets: [BTC, ETH]
instrument: spot               # or perpetual (funding P&L from costs.funding)
factors:                       # each a file with a date column and a value column
  - {name: funding, path: PATH, column: funding_mean, lag_days: 1, transform: zscore, window_days: 30}
models: [ridge, gbt, policy]
walk_forward: {start: 2021-01-01, window_days: 730, retrain_every_days: 30}
costs: {fee_bp: 5, slippage_bp: 0, funding: null}
limits: {max_leverage: 1.0, max_weight: 1.0, max_turnover: null, long_only: false, cvar_95: null}
baselines: [buy_and_hold, vol_target, equal_weight, momentum]
seed: 1
```

The substance lives in :mod:`riskengine.allocation` (``factors``, ``signals``, ``policy``,
``walk_forward``, ``exposure``, ``risk_forecast``, ``performance``); this module validates the
config, wires them together and writes ``summary.json``, ``positions.parquet``,
``pnl.parquet``, ``importance.parquet`` and ``report.html``.
"""

from __future__ import annotations

import datetime
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator, model_validator

from riskengine.allocation.exposure import Limits, apply_limits, pnl, risk_budget
from riskengine.allocation.factors import (
    TRANSFORMS,
    FactorInput,
    PriceFactors,
    align,
    build_panel,
    read_series,
    resolve,
)
from riskengine.allocation.performance import (
    DAYS_PER_YEAR,
    sharpe_difference,
    stationary_bootstrap_indices,
    statistics,
)
from riskengine.allocation.policy import PolicySettings
from riskengine.allocation.risk_forecast import RiskForecaster, simulated_normals
from riskengine.allocation.signals import (
    MODEL_NAMES,
    CVSettings,
    GBTSettings,
    RidgeSettings,
    information_coefficient,
)
from riskengine.allocation.walk_forward import WalkForwardSettings, retrain_dates, run_walk_forward
from riskengine.config import ConfigError, Strict
from riskengine.history import load_history
from riskengine.jobs.base import Job, JobContext, JobResult
from riskengine.report import Report
from riskengine.report.exposure import exposure_report
from riskengine.risk import (
    christoffersen_coverage_test,
    christoffersen_independence_test,
    kupiec_test,
)

BASELINES = ("buy_and_hold", "vol_target", "equal_weight", "momentum")


class FactorConfig(Strict):
    name: str = Field(min_length=1)
    path: str = Field(min_length=1)
    column: str | None = None
    date_column: str | None = None
    lag_days: int = 1
    transform: str = "level"
    window_days: int = Field(default=30, ge=2)
    scale: float = Field(default=1.0, allow_inf_nan=False)
    max_ffill_days: int = Field(default=3, ge=0)
    vol_asset: str | None = None

    @field_validator("lag_days")
    @classmethod
    def _lag(cls, v: int) -> int:
        if v < 0:
            raise ValueError("must be >= 0 (a value is usable only after it is published)")
        return v

    @field_validator("transform")
    @classmethod
    def _transform(cls, v: str) -> str:
        if v not in TRANSFORMS:
            raise ValueError(f"unknown transform {v!r}; expected one of {list(TRANSFORMS)}")
        return v


class FundingConfig(Strict):
    """Daily funding rate paid by longs (received by shorts) of perpetuals: ``value * scale``
    (e.g. ``scale: 3`` for the daily mean of 8-hourly rates)."""

    path: str = Field(min_length=1)
    column: str | None = None
    date_column: str | None = None
    scale: float = Field(default=1.0, allow_inf_nan=False)
    max_ffill_days: int = Field(default=3, ge=0)


class CostsConfig(Strict):
    fee_bp: float = Field(default=5.0, ge=0, allow_inf_nan=False)
    slippage_bp: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    funding: FundingConfig | None = None


class LimitsConfig(Strict):
    max_leverage: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    max_weight: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    max_turnover: float | None = Field(default=None, gt=0)
    long_only: bool = False
    cvar_95: float | None = Field(default=None, gt=0)  # one-day CVaR 95% budget, fraction of equity


class CVConfig(Strict):
    folds: int = Field(default=4, ge=2, le=20)
    purge_days: int = Field(default=1, ge=1)
    embargo_days: int = Field(default=5, ge=0)


class WalkForwardConfig(Strict):
    start: datetime.date
    end: datetime.date | None = None
    window_days: int = Field(default=730, ge=60)
    retrain_every_days: int = Field(default=30, ge=1)
    cv: CVConfig = CVConfig()


class PriceFactorsConfig(Strict):
    momentum_days: list[int] = Field(default_factory=lambda: [7, 30, 90])
    drawdown_days: int = Field(default=90, ge=0)
    vol_days: int = Field(default=30, ge=5)
    vol_factor: bool = True  # realised vol as a factor (it always sizes the risk budget)


class StandardiseConfig(Strict):
    min_days: int = Field(default=60, ge=5)
    window_days: int | None = Field(default=None, ge=10)
    clip: float = Field(default=4.0, gt=0)


class SizingConfig(Strict):
    target_vol: float = Field(default=0.5, gt=0, allow_inf_nan=False)  # annualised, of the whole book
    signal_scale: float = Field(default=0.1, gt=0)  # forecast (return / vol, daily) earning the full budget
    momentum_days: int = Field(default=30, ge=2)  # of the momentum baseline


class PolicyConfig(Strict):
    hidden: int = Field(default=16, ge=1)
    depth: int = Field(default=1, ge=0)
    steps: int = Field(default=300, ge=1)
    learning_rate: float = Field(default=0.01, gt=0)
    weight_decay: float = Field(default=1e-3, ge=0)
    objective: Literal["entropic", "cvar"] = "entropic"
    risk_aversion: float = Field(default=2.0, gt=0)
    level: float = Field(default=0.95, gt=0, lt=1)


class RidgeConfig(Strict):
    alphas: list[float] = Field(default_factory=lambda: [0.01, 0.1, 1.0, 10.0], min_length=1)
    intercept: bool = True  # false: no drift forecast (the signal only)


class GBTConfig(Strict):
    learning_rate: float = Field(default=0.05, gt=0)
    grid: list[tuple[int, int]] = Field(default_factory=lambda: [(4, 50), (4, 150), (8, 100)], min_length=1)
    min_child_samples: int = Field(default=50, ge=1)


class RiskConfig(Strict):
    levels: list[float] = Field(default_factory=lambda: [0.99, 0.975], min_length=1)
    paths: int = Field(default=2000, ge=100)
    garch: Literal["garch", "gjr"] = "gjr"
    dist: Literal["normal", "t"] = "normal"


class MetricsConfig(Strict):
    bootstrap: int = Field(default=1000, ge=100)
    block_days: float = Field(default=10.0, ge=1)
    trials: int | None = Field(default=None, ge=1)  # configurations tried (default: the models)


class Config(Strict):
    job: Literal["exposure"]
    prices: str | dict[str, str]
    assets: list[str] = Field(min_length=1)
    instrument: Literal["spot", "perpetual"] = "spot"
    factors: list[FactorConfig] = Field(default_factory=list)
    price_factors: PriceFactorsConfig = PriceFactorsConfig()
    standardise: StandardiseConfig = StandardiseConfig()
    models: list[str] = Field(default_factory=lambda: ["ridge", "gbt", "policy"], min_length=1)
    walk_forward: WalkForwardConfig
    sizing: SizingConfig = SizingConfig()
    policy: PolicyConfig = PolicyConfig()
    ridge: RidgeConfig = RidgeConfig()
    gbt: GBTConfig = GBTConfig()
    costs: CostsConfig = CostsConfig()
    limits: LimitsConfig = LimitsConfig()
    baselines: list[Literal["buy_and_hold", "vol_target", "equal_weight", "momentum"]] = Field(
        default_factory=lambda: list(BASELINES))
    risk: RiskConfig = RiskConfig()
    metrics: MetricsConfig = MetricsConfig()
    seed: int = Field(default=0, ge=0)
    # skip: when an input file is absent, write a summary that says so (``skipped``) and
    # exit 0 instead of failing; for configs reading external data such as ../shared/data
    if_missing: Literal["error", "skip"] = "error"

    @field_validator("models")
    @classmethod
    def _models(cls, v: list[str]) -> list[str]:
        for m in v:
            if m not in MODEL_NAMES:
                raise ValueError(f"unknown model {m!r}; expected some of {list(MODEL_NAMES)}")
        if len(set(v)) != len(v):
            raise ValueError(f"repeated model in {v}")
        return v

    @model_validator(mode="after")
    def _checks(self) -> Config:
        if len(set(self.assets)) != len(self.assets):
            raise ValueError(f"assets: repeated name in {self.assets}")
        if isinstance(self.prices, dict):
            missing = [a for a in self.assets if a not in self.prices]
            if missing:
                raise ValueError(f"prices.{missing[0]}: no price file for this asset")
        names = [f.name for f in self.factors]
        if len(set(names)) != len(names):
            raise ValueError(f"factors: repeated name in {names}")
        for i, f in enumerate(self.factors):
            if f.vol_asset is not None and f.vol_asset not in self.assets:
                raise ValueError(f"factors.{i}.vol_asset: {f.vol_asset!r} is not one of the assets")
        if self.instrument == "perpetual" and self.costs.funding is None:
            raise ValueError("costs.funding: needed for instrument perpetual (the funding rate file)")
        if self.walk_forward.end is not None and self.walk_forward.end <= self.walk_forward.start:
            raise ValueError("walk_forward.end: must be after walk_forward.start")
        return self


def _apply_overrides(data: dict[str, Any], *, paths: int | None, seed: int | None) -> dict[str, Any]:
    """``--paths`` sets ``risk.paths`` (the simulated one-day scenarios of the risk forecast);
    ``--seed`` sets ``seed``."""
    data = dict(data)
    if paths is not None:
        data["risk"] = {**dict(data.get("risk") or {}), "paths": paths}
    if seed is not None:
        data["seed"] = seed
    return data


# --- inputs ------------------------------------------------------------------------------------

def load_prices(config: Config, base_dir: Path | None, *, end: datetime.date | None = None) -> pd.DataFrame:
    """Daily closes ``[dates, assets]`` (NaN before an asset's first price)."""
    if isinstance(config.prices, str):
        closes = load_history(config.prices, config.assets, base_dir=base_dir, field="prices").closes
    else:
        cols = [load_history(config.prices[a], [a], base_dir=base_dir, field=f"prices.{a}").closes
                for a in config.assets]
        closes = pd.concat(cols, axis=1, join="outer").sort_index()
    closes = closes[list(config.assets)]
    if end is not None:
        closes = closes[closes.index <= pd.Timestamp(end)]
    return closes


def load_factors(config: Config, base_dir: Path | None) -> list[FactorInput]:
    out = []
    for i, f in enumerate(config.factors):
        series = read_series(f.path, column=f.column, date_column=f.date_column, base_dir=base_dir,
                             field=f"factors.{i}")
        out.append(FactorInput(name=f.name, series=series, lag_days=f.lag_days, transform=f.transform,
                               window_days=f.window_days, scale=f.scale, max_ffill_days=f.max_ffill_days,
                               vol_asset=f.vol_asset))
    return out


# --- the run -------------------------------------------------------------------------------------

def _input_paths(config: Config) -> list[tuple[str, str]]:
    prices = ([("prices", config.prices)] if isinstance(config.prices, str)
              else [(f"prices.{a}", p) for a, p in config.prices.items()])
    factors = [(f"factors.{i}.path", f.path) for i, f in enumerate(config.factors)]
    funding = [("costs.funding.path", config.costs.funding.path)] if config.costs.funding else []
    return prices + factors + funding


def _skip(config: Config, base_dir: Path | None) -> JobResult | None:
    missing = [(f, p) for f, p in _input_paths(config) if not resolve(p, base_dir).exists()]
    if not missing:
        return None
    field, path = missing[0]
    reason = (f"{field}: {str(resolve(path, base_dir))!r} is absent ({len(missing)} input file(s) "
              "missing); if_missing: skip, so nothing was run")
    summary = {"job": "exposure", "skipped": reason, "missing": [p for _, p in missing],
               "paths": config.risk.paths, "seed": config.seed}

    def report(summary: dict) -> Report:
        rep = Report("Dynamic exposure — not run")
        rep.paragraph(reason)
        return rep

    return JobResult(summary=summary, report=report)


class ExposureJob(Job):
    """Factor-driven dynamic exposure: walk-forward signals sized within risk limits."""

    name = "exposure"
    Config = Config

    def apply_overrides(self, data: dict[str, Any], *, paths: int | None, seed: int | None) -> dict[str, Any]:
        return _apply_overrides(data, paths=paths, seed=seed)

    def run(self, config: Config, context: JobContext) -> JobResult:
        return _run(config, progress=context.progress, base_dir=context.base_dir)


def _run(config: Config, *, progress=None, base_dir: Path | None = None) -> JobResult:
    if config.if_missing == "skip":
        skipped = _skip(config, base_dir)
        if skipped is not None:
            return skipped
    wf = config.walk_forward
    closes = load_prices(config, base_dir, end=wf.end)
    factors = load_factors(config, base_dir)
    pf = config.price_factors
    panel = build_panel(closes, factors,
                        price_factors=PriceFactors(momentum_days=tuple(pf.momentum_days),
                                                   drawdown_days=pf.drawdown_days, vol_days=pf.vol_days,
                                                   vol_factor=pf.vol_factor),
                        standardise_min_days=config.standardise.min_days,
                        standardise_window=config.standardise.window_days, clip=config.standardise.clip)
    dates = panel.dates
    names = list(config.assets)
    n = len(names)
    first = int(np.searchsorted(dates, pd.Timestamp(wf.start)))
    if first >= len(dates) - 1:
        raise ConfigError(f"walk_forward.start: {wf.start} leaves no day to test (prices end "
                          f"{dates[-1].date()})")
    if first < wf.window_days:
        raise ConfigError(f"walk_forward.window_days: {wf.window_days} days is longer than the data: "
                          f"{first} days of prices before walk_forward.start ({wf.start})")
    px = closes.to_numpy(np.float64)
    ret = np.full_like(px, np.nan)
    ret[:-1] = px[1:] / px[:-1] - 1.0  # simple return over (t, t + 1]
    log_next = np.log1p(ret)
    with np.errstate(invalid="ignore", divide="ignore"):
        target = log_next / panel.vol  # vol-scaled next-day return: the label of date t
    target = np.where(np.isfinite(target), target, np.nan)
    tradable = np.isfinite(px) & np.isfinite(panel.vol) & (panel.vol > 0)
    funding_next = np.zeros_like(px)
    if config.instrument == "perpetual":
        fc = config.costs.funding
        fs = read_series(fc.path, column=fc.column, date_column=fc.date_column, base_dir=base_dir,
                         field="costs.funding")
        daily = align(fs, dates, lag_days=0, max_ffill_days=fc.max_ffill_days) * fc.scale
        funding_next[:-1] = np.where(np.isfinite(daily[1:]), daily[1:], 0.0)[:, None]
    cost_rate = (config.costs.fee_bp + config.costs.slippage_bp) / 1e4
    budget = risk_budget(panel.vol, target_vol=config.sizing.target_vol, max_weight=config.limits.max_weight)
    budget = np.where(tradable, budget, 0.0)
    limits = Limits(max_leverage=config.limits.max_leverage, max_weight=config.limits.max_weight,
                    max_turnover=config.limits.max_turnover, long_only=config.limits.long_only)
    settings = WalkForwardSettings(first=first, window_days=wf.window_days,
                                   retrain_every_days=wf.retrain_every_days,
                                   cv=CVSettings(folds=wf.cv.folds, purge_days=wf.cv.purge_days,
                                                 embargo_days=wf.cv.embargo_days),
                                   signal_scale=config.sizing.signal_scale, seed=config.seed)
    pc = config.policy
    policy_settings = PolicySettings(hidden=pc.hidden, depth=pc.depth, steps=pc.steps,
                                     learning_rate=pc.learning_rate, weight_decay=pc.weight_decay,
                                     objective=pc.objective, risk_aversion=pc.risk_aversion, level=pc.level)
    timings: dict[str, float] = {}
    dec = slice(first, len(dates))
    n_dec = len(dates) - first
    targets: dict[str, np.ndarray] = {}
    results = {}
    for m in config.models:
        t0 = time.perf_counter()
        res = run_walk_forward(
            m, panel, target, settings=settings, ridge=RidgeSettings(alphas=tuple(config.ridge.alphas),
                                                      intercept=config.ridge.intercept),
            gbt=GBTSettings(learning_rate=config.gbt.learning_rate, grid=tuple(tuple(g) for g in config.gbt.grid),
                            min_child_samples=config.gbt.min_child_samples),
            policy=policy_settings, returns=ret, budget=budget,
            funding=funding_next if config.instrument == "perpetual" else np.zeros_like(ret),
            cost=cost_rate, max_leverage=config.limits.max_leverage)
        results[m] = res
        targets[m] = res.scores * budget[dec]
        timings[m] = time.perf_counter() - t0
    # baselines
    eq = np.where(tradable[dec], 1.0, 0.0)
    count = np.maximum(eq.sum(axis=1, keepdims=True), 1.0)
    equal = eq / count * min(1.0, config.limits.max_leverage)
    for b in config.baselines:
        if b == "buy_and_hold":
            bh = np.full((n_dec, n), np.nan)
            bh[0] = equal[0]
            targets[b] = bh
        elif b == "vol_target":
            targets[b] = budget[dec].copy()
        elif b == "equal_weight":
            targets[b] = equal
        elif b == "momentum":
            logp = np.log(px)
            mom = np.full_like(logp, np.nan)
            k = config.sizing.momentum_days
            mom[k:] = logp[k:] - logp[:-k]
            targets[b] = np.where(np.isfinite(mom[dec]), np.sign(mom[dec]), 0.0) * budget[dec]
    # risk forecasts: GARCH re-fitted at each retrain date, simulated scenarios
    t0 = time.perf_counter()
    log_ret = np.vstack([np.full((1, n), np.nan), np.diff(np.log(px), axis=0)])  # over (t-1, t]
    schedule = retrain_dates(first, len(dates) - 1, wf.retrain_every_days)
    normals = simulated_normals(assets=n, paths=config.risk.paths, periods=len(schedule), seed=config.seed)
    scen_by_day: list[np.ndarray] = []
    forecaster = None
    for i in range(n_dec):
        t = first + i
        if (i % wf.retrain_every_days) == 0:
            k = i // wf.retrain_every_days
            forecaster = RiskForecaster(log_ret[t - wf.window_days + 1: t + 1], normals[k],
                                        kind=config.risk.garch, dist=config.risk.dist)
        scen_by_day.append(forecaster.scenarios(forecaster.vol(log_ret[: t + 1])))
    timings["risk_model"] = time.perf_counter() - t0
    if config.limits.cvar_95 is not None:  # scale each day's targets into the CVaR budget
        for s, tg in targets.items():
            if s == "buy_and_hold":
                continue
            for i in range(n_dec):
                w = np.where(np.isfinite(tg[i]), tg[i], 0.0)
                _, es = RiskForecaster.var_es(scen_by_day[i], w, level=0.95)
                if es > config.limits.cvar_95:
                    tg[i] = w * (config.limits.cvar_95 / float(es))
    # positions, P&L
    strategies = list(config.models) + list(config.baselines)
    positions, frames, pos_rows = {}, [], []
    var_frames = {}
    for s in strategies:
        tg = targets[s]
        if s == "buy_and_hold":
            pos, traded = _buy_and_hold(tg[0], ret[dec], tradable[dec], limits)
        else:
            pos, traded = apply_limits(tg, ret[dec], limits, tradable=tradable[dec])
        positions[s] = pos
        net, cost, paid = pnl(pos, ret[dec], traded, cost_rate=cost_rate, funding=funding_next[dec])
        var = {lv: np.array([float(RiskForecaster.var_es(scen_by_day[i], pos[i], level=lv)[0])
                             for i in range(n_dec)]) for lv in config.risk.levels}
        var_frames[s] = var
        frame = pd.DataFrame({"date": dates[dec], "strategy": s, "return": net, "cost": cost,
                              "funding": paid, "turnover": traded,
                              "gross_exposure": np.abs(pos).sum(axis=1), "net_exposure": pos.sum(axis=1),
                              **{f"var_{_tag(lv)}": var[lv] for lv in config.risk.levels}})
        frames.append(frame)
        for j, a in enumerate(names):
            pos_rows.append(pd.DataFrame({"date": dates[dec], "strategy": s, "asset": a, "exposure": pos[:, j]}))
    pnl_table = pd.concat(frames, ignore_index=True)
    positions_table = pd.concat(pos_rows, ignore_index=True)
    # the last decision's P&L is not known yet (its day lies after the data): not in the statistics
    realised = slice(0, n_dec - 1)
    days = n_dec - 1
    if days < 30:
        raise ConfigError(f"walk_forward.start: only {days} days to test; need at least 30")
    boot = stationary_bootstrap_indices(days, resamples=config.metrics.bootstrap,
                                        block_days=config.metrics.block_days, seed=config.seed)
    trials = config.metrics.trials or len(config.models)
    stats_out = {}
    years = days / DAYS_PER_YEAR
    for s in strategies:
        f = pnl_table[pnl_table["strategy"] == s]
        r = f["return"].to_numpy()[realised]
        st = statistics(r, boot=boot, trials=trials if s in config.models else 1)
        st["turnover"] = float(f["turnover"].to_numpy()[realised].sum() / years)
        st["costs"] = float(f["cost"].to_numpy()[realised].sum())
        st["funding_paid"] = float(f["funding"].to_numpy()[realised].sum())
        st["mean_gross_exposure"] = float(f["gross_exposure"].to_numpy()[realised].mean())
        stats_out[s] = st
    returns_by = {s: pnl_table[pnl_table["strategy"] == s]["return"].to_numpy()[realised] for s in strategies}
    comparisons = {}  # each model against every baseline and every other model (paired bootstrap)
    for i, m in enumerate(config.models):
        for other in list(config.models[i + 1:]) + list(config.baselines):
            comparisons[f"{m}_vs_{other}"] = sharpe_difference(returns_by[m], returns_by[other], boot=boot)
    var_backtest = {}
    for s in strategies:
        r = pnl_table[pnl_table["strategy"] == s]["return"].to_numpy()[realised]
        out_s = {}
        for lv in config.risk.levels:
            hits = r < -var_frames[s][lv][realised]
            out_s[_tag(lv)] = {
                "level": lv, "days": days, "exceedances": int(hits.sum()),
                "expected_exceedances": (1 - lv) * days,
                "kupiec": _lr(kupiec_test(hits, level=lv)),
                "christoffersen_independence": _lr(christoffersen_independence_test(hits)),
                "christoffersen_coverage": _lr(christoffersen_coverage_test(hits, level=lv)),
            }
        var_backtest[s] = out_s
    ic, ic_decay, importance, imp_rows, retrain_info = {}, {}, {}, [], {}
    realised_target = target[dec][realised]
    ic["univariate"] = {f: information_coefficient(panel.values[dec][realised][:, :, j].ravel(),
                                                   realised_target.ravel())
                        for j, f in enumerate(panel.names)}
    for m, res in results.items():
        c = res.contributions[realised]
        with np.errstate(invalid="ignore", divide="ignore"):
            cn = c / res.contribution_scale[realised][:, None, :]  # in each window's own units
        ic[m] = {f: information_coefficient(cn[:, :, j].ravel(), realised_target.ravel())
                 for j, f in enumerate(panel.names)}
        ic[m]["forecast"] = information_coefficient(res.forecasts[realised].ravel(), realised_target.ravel())
        ic_decay[m] = []
        for h in range(1, 11):  # forecast at t against the return over (t + h - 1, t + h]
            fc = res.forecasts[: n_dec - h]
            tg = target[first + h - 1: first + n_dec - 1]
            ic_decay[m].append(information_coefficient(fc.ravel(), tg.ravel()))
        mag = np.abs(c).mean(axis=(0, 1))
        share = mag / mag.sum() if mag.sum() > 0 else mag
        importance[m] = {f: float(v) for f, v in zip(panel.names, share, strict=True)}
        for r in res.retrains:
            for f, v in r["importance"].items():
                imp_rows.append({"date": r["date"], "model": m, "factor": f, "importance": v})
        retrain_info[m] = [{"date": str(r["date"].date()), "samples": r["samples"], "params": r["params"]}
                           for r in res.retrains]
    summary = {
        "job": "exposure",
        "assets": names,
        "instrument": config.instrument,
        "factors": list(panel.names),
        "models": list(config.models),
        "baselines": list(config.baselines),
        "period": {"first": str(dates[first].date()), "last": str(dates[-2].date()), "days": days,
                   "last_decision": str(dates[-1].date())},
        "walk_forward": {"window_days": wf.window_days, "retrain_every_days": wf.retrain_every_days,
                         "retrains": len(schedule), "cv": wf.cv.model_dump()},
        "costs": config.costs.model_dump(),
        "limits": config.limits.model_dump(),
        "sizing": config.sizing.model_dump(),
        "paths": config.risk.paths,
        "seed": config.seed,
        "trials": trials,
        "strategies": stats_out,
        "ic": ic,
        "ic_decay": ic_decay,
        "importance": importance,
        "var_backtest": var_backtest,
        "retrains": retrain_info,
        "comparisons": comparisons,
        "significance": _verdicts(stats_out, comparisons, config.models),
        "timings": timings,
    }
    importance = pd.DataFrame(imp_rows)
    if progress is not None:
        progress(1, 1)
    return JobResult(
        summary=summary, tables={"positions": positions_table, "pnl": pnl_table, "importance": importance},
        report=lambda summary: exposure_report(summary, pnl_table, positions_table, importance, realised),
    )


def _buy_and_hold(initial, returns, tradable, limits):
    """Buy the initial weights at the first decision and let them drift (no trade after)."""
    days, n = returns.shape
    targets = np.full((days, n), np.nan)
    targets[0] = initial
    first, traded = apply_limits(targets[:1], returns[:1], limits, tradable=tradable[:1])
    pos = np.zeros((days, n))
    pos[0] = first[0]
    w = first[0]
    for t in range(1, days):
        r = np.where(np.isfinite(returns[t - 1]), returns[t - 1], 0.0)
        w = w * (1.0 + r) / (1.0 + float(w @ r))
        pos[t] = w
    out = np.zeros(days)
    out[0] = traded[0]
    return pos, out


def _tag(level: float) -> str:
    return f"{level * 100:g}".replace(".", "")


def _lr(test) -> dict:
    return {"statistic": float(test.statistic), "p_value": float(test.p_value), "dof": int(test.dof)}


def _verdicts(stats_out: dict, comparisons: dict, models: list[str]) -> dict:
    """Plain words per model: is its deflated Sharpe significant at 5%, and is its Sharpe
    different from each baseline's and each other model's (paired bootstrap interval of the
    difference)."""
    out = {}
    for m in models:
        p = stats_out[m]["deflated_sharpe_p"]
        against = {}
        for key, c in comparisons.items():
            a, _, b = key.partition("_vs_")
            if m not in (a, b):
                continue
            sign = 1.0 if a == m else -1.0
            other = b if a == m else a
            lo, hi = sorted((sign * c["ci"][0], sign * c["ci"][1]))
            d = sign * c["sharpe_difference"]
            word = ("higher, significant at 5%" if lo > 0 else "lower, significant at 5%" if hi < 0
                    else "not significantly different")
            against[other] = f"Sharpe difference {d:+.2f}, 95% CI [{lo:+.2f}, {hi:+.2f}]: {word}"
        sig = p is not None and p < 0.05
        out[m] = {"significant": bool(sig),
                  "statement": (f"deflated Sharpe p = {p:.3f}: "
                                + ("significant at 5%" if sig else "not significant at 5%")) if p is not None
                  else "undefined",
                  "against": against}
    return out


