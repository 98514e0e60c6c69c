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

The substance lives in :mod:`riskengine.allocation` (``exposure_config``: the config's
sections; ``exposure_inputs``, ``factors``, ``signals``, ``policy``, ``walk_forward``,
``baselines``, ``exposure``, ``risk_forecast``, ``evaluation``, ``attribution``); this module
holds the config's root, wires them together and returns ``summary.json``,
``positions.parquet``, ``pnl.parquet``, ``importance.parquet`` and ``report.html``.
"""


from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator, model_validator

from riskengine.allocation.attribution import attribute
from riskengine.allocation.baselines import BASELINES, baseline_targets, buy_and_hold
from riskengine.allocation.evaluation import (
    comparisons,
    level_tag,
    strategy_statistics,
    var_backtests,
    verdicts,
)
from riskengine.allocation.exposure import apply_limits, pnl, risk_budget
from riskengine.allocation.exposure_config import (
    CostsConfig,
    FactorConfig,
    GBTConfig,
    LimitsConfig,
    MetricsConfig,
    PolicyConfig,
    PriceFactorsConfig,
    RidgeConfig,
    RiskConfig,
    SizingConfig,
    StandardiseConfig,
    WalkForwardConfig,
)
from riskengine.allocation.exposure_inputs import (
    load_factors,
    load_funding,
    load_prices,
    missing_inputs,
)
from riskengine.allocation.factors import build_panel, resolve
from riskengine.allocation.performance import stationary_bootstrap_indices
from riskengine.allocation.risk_forecast import (
    cap_to_cvar,
    daily_scenarios,
    daily_var,
    simulated_normals,
)
from riskengine.allocation.signals import MODEL_NAMES
from riskengine.allocation.walk_forward import retrain_dates, run_walk_forward
from riskengine.config import ConfigError, Strict
from riskengine.jobs.base import Job, JobContext, JobResult, Sampling
from riskengine.report import Report
from riskengine.report.exposure import exposure_report


class Config(Strict):
    job: Literal["exposure"]
    prices: str | dict[str, str]
    assets: list[str] = Field(min_length=1)
    instrument: Literal["spot", "perpetual"] = "spot"
    factors: list[FactorConfig] = Field(default_factory=list)
    price_factors: PriceFactorsConfig = PriceFactorsConfig()
    standardise: StandardiseConfig = StandardiseConfig()
    walk_forward: WalkForwardConfig
    models: list[str] = Field(default_factory=lambda: ["ridge", "gbt", "policy"], min_length=1)
    ridge: RidgeConfig = RidgeConfig()  # each model's settings beside the list of models
    gbt: GBTConfig = GBTConfig()
    policy: PolicyConfig = PolicyConfig()
    sizing: SizingConfig = SizingConfig()
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


class ExposureJob(Job):
    """Factor-driven dynamic exposure: walk-forward signals sized within risk limits."""

    name = "exposure"
    Config = Config
    # --paths: the simulated one-day scenarios of the risk forecast
    sampling = Sampling(paths="risk.paths", seed="seed")

    def run(self, config: Config, context: JobContext) -> JobResult:
        return _run(config, progress=context.progress, base_dir=context.base_dir)


def _skip(config: Config, base_dir: Path | None) -> JobResult | None:
    missing = missing_inputs(config.prices, config.factors, config.costs.funding, base_dir)
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


def _run(config: Config, *, progress=None, base_dir: Path | None = None) -> JobResult:
    if config.if_missing == "skip":
        skipped = _skip(config, base_dir)
        if skipped is not None:
            return skipped
    wf, names = config.walk_forward, list(config.assets)
    closes = load_prices(config.prices, names, base_dir, end=wf.end)
    panel = build_panel(closes, load_factors(config.factors, base_dir),
                        price_factors=config.price_factors.settings(),
                        standardise_min_days=config.standardise.min_days,
                        standardise_window=config.standardise.window_days, clip=config.standardise.clip)
    dates = panel.dates
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
    with np.errstate(invalid="ignore", divide="ignore"):
        target = np.log1p(ret) / panel.vol  # vol-scaled next-day return: the label of date t
    target = np.where(np.isfinite(target), target, np.nan)
    tradable = np.isfinite(px) & np.isfinite(panel.vol) & (panel.vol > 0)
    funding_next = load_funding(config.costs.funding if config.instrument == "perpetual" else None,
                                dates, len(names), base_dir)
    budget = risk_budget(panel.vol, target_vol=config.sizing.target_vol, max_weight=config.limits.max_weight)
    budget = np.where(tradable, budget, 0.0)
    limits, dec, n_dec = config.limits.limits(), slice(first, len(dates)), len(dates) - first
    # walk-forward signals of each model, then the baselines: target exposures per decision day
    settings = wf.settings(first=first, signal_scale=config.sizing.signal_scale, seed=config.seed)
    timings: dict[str, float] = {}
    targets: dict[str, np.ndarray] = {}
    results = {}
    for m in config.models:
        t0 = time.perf_counter()
        results[m] = run_walk_forward(
            m, panel, target, settings=settings, ridge=config.ridge.settings(), gbt=config.gbt.settings(),
            policy=config.policy.settings(), returns=ret, budget=budget, funding=funding_next,
            cost=config.costs.rate, max_leverage=config.limits.max_leverage)
        targets[m] = results[m].scores * budget[dec]
        timings[m] = time.perf_counter() - t0
    targets.update(baseline_targets(config.baselines, closes=px, budget=budget, tradable=tradable, decisions=dec,
                                    max_leverage=config.limits.max_leverage,
                                    momentum_days=config.sizing.momentum_days))
    # risk forecasts: GARCH re-fitted at each retrain date, simulated scenarios
    t0 = time.perf_counter()
    log_ret = np.vstack([np.full((1, len(names)), np.nan), np.diff(np.log(px), axis=0)])  # over (t-1, t]
    schedule = retrain_dates(first, len(dates) - 1, wf.retrain_every_days)
    normals = simulated_normals(assets=len(names), paths=config.risk.paths, periods=len(schedule), seed=config.seed)
    scenarios = daily_scenarios(log_ret, normals, first=first, window_days=wf.window_days,
                                retrain_every_days=wf.retrain_every_days, kind=config.risk.garch,
                                dist=config.risk.dist)
    timings["risk_model"] = time.perf_counter() - t0
    if config.limits.cvar_95 is not None:  # scale each day's targets into the CVaR budget
        for s, tg in targets.items():
            if s != "buy_and_hold":
                cap_to_cvar(tg, scenarios, config.limits.cvar_95)
    # positions, P&L
    strategies = list(config.models) + list(config.baselines)
    frames, pos_rows, var = [], [], {}
    for s in strategies:
        if s == "buy_and_hold":
            pos, traded = buy_and_hold(targets[s][0], ret[dec], tradable[dec], limits)
        else:
            pos, traded = apply_limits(targets[s], ret[dec], limits, tradable=tradable[dec])
        net, cost, paid = pnl(pos, ret[dec], traded, cost_rate=config.costs.rate, funding=funding_next[dec])
        var[s] = daily_var(scenarios, pos, config.risk.levels)
        frames.append(pd.DataFrame({"date": dates[dec], "strategy": s, "return": net, "cost": cost,
                                    "funding": paid, "turnover": traded,
                                    "gross_exposure": np.abs(pos).sum(axis=1), "net_exposure": pos.sum(axis=1),
                                    **{f"var_{level_tag(lv)}": var[s][lv] for lv in config.risk.levels}}))
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
    stats = strategy_statistics(pnl_table, strategies, list(config.models), realised=realised, boot=boot,
                                trials=trials)
    returns_by = {s: pnl_table[pnl_table["strategy"] == s]["return"].to_numpy()[realised] for s in strategies}
    compared = comparisons(returns_by, list(config.models), list(config.baselines), boot=boot)
    factors = attribute(results, panel, target, first=first, realised=realised)
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
        "strategies": stats,
        "ic": factors.ic,
        "ic_decay": factors.ic_decay,
        "importance": factors.importance,
        "var_backtest": var_backtests(returns_by, var),
        "retrains": factors.retrains,
        "comparisons": compared,
        "significance": verdicts(stats, compared, list(config.models)),
        "timings": timings,
    }
    importance = pd.DataFrame(factors.importance_rows)
    if progress is not None:
        progress(1, 1)
    return JobResult(
        summary=summary, tables={"positions": positions_table, "pnl": pnl_table, "importance": importance},
        report=lambda summary: exposure_report(summary, pnl_table, positions_table, importance, realised),
    )
