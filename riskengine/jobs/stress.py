"""The ``stress`` job: the overnight run. Revalue the book on simulated paths and on named
scenarios; report VaR/ES (Monte Carlo with confidence intervals, historical, delta-normal,
Cornish–Fisher), Euler contributions, AD Greeks, margin and liquidation, limit breaches.

```yaml
job: stress
book: configs/data/book.csv
market: configs/data/market.yaml
model: {name: svcj, params: {...}}     # shared, or {BTC: {name: ..., params: ...}, ...}
horizons_days: [1, 10]
mc: {paths: 200000, seed: 1}
risk: {var_levels: [0.99, 0.975], es_levels: [0.975]}
scenarios: all                          # or a list of names / files in scenarios/
history: configs/data/history.csv       # daily closes: historical and filtered historical VaR
fhs: {model: gjr_garch, distribution: t, paths: 10000, seed: 1}   # optional from: {BTC: CALIBRATION_DIR}; null: off
limits: {var_99_1d: 2.0e6, liquidation_distance_min: 0.15}
liquidation: {path_wise: true, bridge: true}   # margin accounts followed along each path
venues: my_venues.yaml                  # optional: extends riskengine/venues.yaml
```

Paths are simulated with zero drift (risk horizons are days); options are revalued
sticky-strike on the shocked forward, with the implied vol moved on each path by the
model's change in instantaneous vol (see :func:`riskengine.revaluation.vol_adjustment`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import jax.numpy as jnp
import numpy as np
from pydantic import Field, field_validator, model_validator

from riskengine import revaluation
from riskengine.accounts import book_margin, build_accounts
from riskengine.book import Book, base_values, load_book, read_book_table
from riskengine.budget import Estimate
from riskengine.calibration import load_garch
from riskengine.config import ConfigError, ModelConfig, StressMc, Strict, build_assets
from riskengine.data import DeribitMarketConfig
from riskengine.history import load_history
from riskengine.jobs.base import Job, JobContext, JobResult, Sampling, Stopwatch
from riskengine.limits import breaches, check_limit
from riskengine.market import MarketSnapshot, load_market
from riskengine.paths import resolve_path
from riskengine.report import liquidation_lines, stress_report
from riskengine.scenarios import load_scenarios
from riskengine.venues import load_venues


class RiskConfig(Strict):
    var_levels: list[float] = Field(default_factory=lambda: [0.99, 0.975], min_length=1)
    es_levels: list[float] = Field(default_factory=lambda: [0.975], min_length=1)
    confidence: float = Field(default=0.95, gt=0, lt=1)

    @field_validator("var_levels", "es_levels")
    @classmethod
    def _levels(cls, levels: list[float]) -> list[float]:
        for level in levels:
            if not 0.5 <= level < 1:
                raise ValueError(f"levels must be in [0.5, 1), got {level}")
        return levels


class FhsConfig(Strict):
    """Filtered historical simulation on ``history`` (see :mod:`riskengine.risk.filtered_historical`):
    a GARCH filter per underlying, fitted, or read per underlying from a calibrate job's
    output directory (``from: {BTC: DIR}``)."""

    model: Literal["garch", "gjr_garch"] = "gjr_garch"
    distribution: Literal["normal", "t"] = "t"
    paths: int = Field(default=10_000, ge=100)
    seed: int = Field(default=0, ge=0)
    from_: dict[str, str] = Field(default_factory=dict, alias="from")


class LiquidationConfig(Strict):
    """Margin accounts followed along each path (:mod:`riskengine.revaluation.liquidation`):
    ``path_wise: false`` holds every position to the horizon; ``bridge`` adds the
    Brownian-bridge probability of crossing between steps."""

    path_wise: bool = True
    bridge: bool = True


class Config(Strict):
    job: Literal["stress"]
    book: str
    market: str | DeribitMarketConfig  # a market YAML, or {deribit: CHAIN} (riskengine.data)
    model: ModelConfig | dict[str, ModelConfig]
    horizons_days: list[int] = Field(default_factory=lambda: [1, 10], min_length=1)
    mc: StressMc = StressMc()
    risk: RiskConfig = RiskConfig()
    scenarios: Literal["all", "none"] | list[str] = "all"
    scenario_horizon_days: float = Field(default=1.0, ge=0)
    history: str | None = "configs/data/history.csv"
    fhs: FhsConfig | None = FhsConfig()  # null: no filtered historical simulation
    limits: dict[str, float] = Field(default_factory=dict)
    venues: str | None = None  # a venue table extending the bundled one (riskengine/venues.yaml)
    liquidation: LiquidationConfig = LiquidationConfig()

    @field_validator("horizons_days")
    @classmethod
    def _horizons(cls, horizons: list[int]) -> list[int]:
        if any(h < 1 for h in horizons):
            raise ValueError(f"horizons must be >= 1 day, got {horizons}")
        return sorted(set(horizons))

    @model_validator(mode="after")
    def _limits(self) -> Config:
        for key in self.limits:
            check_limit(key, var_levels=self.risk.var_levels, es_levels=self.risk.es_levels,
                        horizons_days=self.horizons_days)
        return self


class StressJob(Job):
    """The overnight run: the book revalued on simulated paths and named scenarios."""

    name = "stress"
    Config = Config
    sampling = Sampling(paths="mc.paths", seed="mc.seed", dtype="mc.dtype")

    def estimate(self, config: Config, context: JobContext) -> Estimate:
        return _estimate(config, context.base_dir)

    def run(self, config: Config, context: JobContext) -> JobResult:
        return _run(config, progress=context.progress, base_dir=context.base_dir)


def _estimate(config: Config, base_dir: Path | None) -> Estimate:
    """Paths × steps × underlyings simulated, paths × horizons × positions revalued (twice:
    P&L, then contributions); every path's P&L per horizon and underlying is kept."""
    table = read_book_table(resolve_path(config.book, base_dir))
    positions = len(table)
    underlyings = table["underlying"].nunique() if "underlying" in table else 1
    paths, horizons = float(config.mc.paths), len(config.horizons_days)
    steps = max(config.horizons_days) * config.mc.steps_per_day
    labels = horizons * (len(config.risk.var_levels) + len(config.risk.es_levels))
    return Estimate(
        memory_bytes=paths * 8.0 * (2 * horizons * (1 + underlyings) + labels + 2),
        work={"path_steps": paths * steps * underlyings, "revaluations": 2 * paths * horizons * positions},
        field="mc.paths",
        detail=f"{paths:.3g} paths x {steps} steps x {underlyings} underlyings, {positions} positions",
    )


def _run(config: Config, *, progress=None, base_dir: Path | None = None) -> JobResult:
    """The stress job's figures (summary), tables ``pnl`` and ``scenarios``, its report, and
    exit code 3 on a limit breach (``--fail-on-breach``)."""
    market = (load_market(resolve_path(config.market, base_dir)) if isinstance(config.market, str)
              else config.market.load(base_dir))
    venues = load_venues(None if config.venues is None else resolve_path(config.venues, base_dir))
    book = load_book(resolve_path(config.book, base_dir), market, venues=venues)
    accounts = build_accounts(book)
    scenarios = [] if config.scenarios == "none" else load_scenarios(config.scenarios)
    names, levels = list(book.underlyings), config.risk
    assets = build_assets(config.model, names, market.correlation_matrix(names), scheme=config.mc.scheme)
    history = None if config.history is None else load_history(  # daily simple returns; SOL moves with ETH
        config.history, names, base_dir=base_dir, proxy="ETH").simple_returns.to_numpy()
    value0 = base_values(book, market)
    lap = (watch := Stopwatch()).lap
    summary: dict = {
        "job": "stress", "asof": str(market.asof), "paths": config.mc.paths, "seed": config.mc.seed,
        "horizons_days": config.horizons_days, "positions": book.num_positions, "underlyings": names,
        "base_value": float(value0.sum()),
    }

    # --- Monte Carlo: per-path P&L, then Euler contributions in a second pass -----------------
    mc, dtype = config.mc, jnp.float64 if config.mc.dtype == "float64" else jnp.float32
    simulated = revaluation.PathRevaluation(
        book, market, assets, horizons_days=config.horizons_days, value0=value0, paths=mc.paths, seed=mc.seed,
        dtype=dtype, steps_per_day=mc.steps_per_day, block_size=mc.block_size, chunk_paths=mc.chunk_paths,
        accounts=accounts if config.liquidation.path_wise else None, bridge=config.liquidation.bridge)
    pnl = simulated.total_pnl(progress)  # [paths, horizons], accounts liquidated along the paths
    lap("simulation")
    by_level = {"horizons_days": config.horizons_days, "var_levels": levels.var_levels, "es_levels": levels.es_levels}
    figures, moments = revaluation.monte_carlo_var(pnl, **by_level, confidence=levels.confidence)
    summary.update(figures)
    held, _ = revaluation.monte_carlo_var(simulated.held_pnl, **by_level, confidence=levels.confidence)
    summary["held_to_horizon"] = {"var": held["var"], "es": held["es"]}
    summary["liquidation"] = simulated.liquidation_summary(path_wise=config.liquidation.path_wise)
    summary["contributions"] = simulated.contributions(pnl, var_levels=levels.var_levels, es_levels=levels.es_levels)
    lap("contributions")

    # --- Greeks and other VaR methods ---------------------------------------------------------
    summary["greeks"] = greeks = revaluation.book_greeks(book, market)
    lap("greeks")
    summary["methods"] = methods = revaluation.parametric_var(book, market, greeks, moments, **by_level)
    if history is not None:
        for hk, figures in revaluation.historical_var(book, market, history, **by_level).items():
            methods[hk]["historical"] = figures
    summary["vol_surface"] = market.vol_surface_summary()
    summary["filtered_historical"] = _filtered_historical(config, book, market, history, base_dir)
    lap("other_methods")

    # --- scenarios, stressed VaR, margin and liquidation, limits --------------------------------
    scenario_table, summary["scenarios"] = revaluation.scenario_pnl(
        book, market, scenarios, value0, elapsed_days=config.scenario_horizon_days, accounts=accounts)
    summary["held_to_horizon"]["scenarios"] = {k: v["pnl_held_to_horizon"] for k, v in summary["scenarios"].items()}
    lap("scenarios")
    summary["stressed_var"] = {s.name: simulated.stressed_var(s, levels=levels.var_levels)
                               for s in scenarios if s.shocks.correlation is not None}
    lap("stressed_var")
    summary["margin"], summary["isolated"] = book_margin(accounts, market, along=simulated.along)
    summary["limits"] = dict(config.limits)
    summary["breaches"] = breaches(config.limits, summary)
    lap("margin_and_limits")
    summary["seconds_by_phase"] = watch.seconds
    return JobResult(
        summary=summary, tables={"pnl": simulated.pnl_table(pnl), "scenarios": scenario_table},
        report=lambda summary: stress_report(summary, pnl, horizons_days=config.horizons_days,
                                             confidence=levels.confidence, curve=simulated.liquidation_curve()),
        exit_code=3 if summary["breaches"] else 0, console=liquidation_lines(summary),
    )


def _filtered_historical(config: Config, book: Book, market: MarketSnapshot, history: np.ndarray | None,
                         base_dir: Path | None) -> dict | None:
    """Filtered historical VaR and ES, with the GARCH filters fitted or read from calibrate
    jobs (``fhs.from``); None when off."""
    if config.fhs is None or history is None:
        return None
    fhs = config.fhs
    unknown = sorted(set(fhs.from_) - set(book.underlyings))
    if unknown:
        raise ConfigError(f"fhs.from.{unknown[0]}: not an underlying of the book {list(book.underlyings)}")
    given = {}
    for u, directory in fhs.from_.items():
        try:
            given[u] = load_garch(directory, base_dir=base_dir)
        except ConfigError as err:
            raise ConfigError(f"fhs.from.{u}: {err}") from None
    return revaluation.filtered_historical_var(
        book, market, history, horizons_days=config.horizons_days, var_levels=config.risk.var_levels,
        es_levels=config.risk.es_levels, paths=fhs.paths, seed=fhs.seed, model=fhs.model,
        distribution=fhs.distribution, given=given)
