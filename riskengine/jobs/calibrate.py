"""The ``calibrate`` job: Heston or Bates fitted to an option surface by Levenberg–Marquardt,
or GARCH(1,1) / GJR-GARCH(1,1) fitted to daily returns by maximum likelihood.

```yaml
job: calibrate
model: {name: heston}          # or bates; optional initial: {kappa: 2.0, ...}
surface: configs/data/btc_surface.csv
market: {spot: 100.0, rate: 0.0}
fit: {objective: vol, weights: uniform, starts: 3, feller_weight: 0.0}   # optional
```

The surface path is taken from the current directory, else from the config's folder. The
surface is validated row by row and checked for static arbitrage (``fit.arbitrage``:
``error`` by default, or ``warn``/``ignore``). Outputs: ``summary.json`` (parameters, RMSE,
convergence, Jacobian condition, per-expiry fit, timings), ``params.yaml``
(``{model: {name, params}}``, for ``model: {from: DIR}`` in other jobs), ``fit.parquet``
(per quote: market and model vols and prices) and ``report.html``.

```yaml
job: calibrate
model: {name: gjr_garch}       # or garch
returns: configs/data/history.csv   # daily closes with a date column; log returns are fitted
asset: BTC                     # the column
distribution: t                # or normal
```

Deribit option chains (coin-settled options; see :mod:`riskengine.calibration.chain`):

```yaml
job: calibrate
surface: {deribit: ../shared/data/deribit/options/20260301T091500Z.csv.gz, currency: BTC}
models: [black, heston, svcj]       # any of black, heston, bates, svcj
filter: {min_maturity: 0.00274, min_open_interest: 1, max_relative_spread: 0.5,
         min_moneyness: 0.5, max_moneyness: 2.0}    # optional (these are the defaults)
holdout: {fraction: 0.2, seed: 0}  # or a `set` column (train/test) in the file
temporal_penalty: 0.0              # folder of snapshots: penalty on the change of parameters
fit: {objective: price, starts: 3, max_steps: 100, num_nodes: 32}   # optional
```

``deribit`` is a chain file or a folder of them (calibrated in date order, each snapshot
warm-started from the previous fit). Outputs: ``<model>/params.yaml`` and
``<model>/params.json`` (the last snapshot's parameters; ``model: {from: DIR/<model>}``;
Black is written as ``gbm`` with its ``sigma``), ``fitted.parquet`` (one row per quote:
``timestamp, instrument_name, currency, expiry, strike, option, forward, set, bid, ask, mid``
in coin and ``price_<model>``, ``inside_<model>``), ``params_history.parquet`` (per snapshot
and model: parameters, ``rmse/mae/inside/quotes`` for train and test, ``seconds``,
``converged``), ``summary.json`` (per model and set: RMSE and MAE in coin, share inside the
bid–ask, quotes; seconds, converged; the dropped-quote counts) and ``report.html``.

GARCH outputs: ``summary.json`` (``params``, ``standard_errors`` (inverse Hessian),
``robust_standard_errors`` (sandwich), ``log_likelihood``, ``converged``, ``seconds``,
persistence, unconditional and next-day vol), ``params.yaml`` (``{model: {name, distribution,
asset, params, standard_errors, ...}}``, read by :func:`riskengine.calibration.load_garch`,
e.g. the stress job's ``fhs: {from: {BTC: DIR}}``), ``filtered.parquet`` (per day: return,
conditional vol, standardised residual) and ``report.html``. A GARCH calibration is a daily
discrete-time model: ``model: {from: DIR}`` in a job that simulates a continuous-time model
refuses it with a clear error.
"""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path
from typing import Literal

import jax
import pandas as pd
from pydantic import Field, field_validator, model_validator

from riskengine.calibration import (
    DEFAULT_BOUNDS,
    GARCH_MODEL_NAMES,
    MODEL_PARAMETERS,
    calibrate,
    fit_garch,
    load_returns,
    load_surface,
    static_arbitrage_violations,
    write_calibrated_model,
    write_garch_model,
)
from riskengine.calibration.heston import DEFAULT_NUM_NODES
from riskengine.config import ConfigError, MarketConfig, McConfig, Strict
from riskengine.jobs._chain import run_chain
from riskengine.jobs.base import Job, JobContext, JobResult, Sampling, execute
from riskengine.paths import resolve_path
from riskengine.report.calibrate import garch_report, surface_report


class DeribitSurfaceConfig(Strict):
    deribit: str = Field(min_length=1)  # a chain file or a folder of them
    currency: str = Field(default="BTC", min_length=1)


class LiquidityFilterConfig(Strict):
    min_maturity: float = Field(default=1.0 / 365.0, ge=0, allow_inf_nan=False)
    min_open_interest: float = Field(default=1.0, ge=0, allow_inf_nan=False)
    max_relative_spread: float = Field(default=0.5, gt=0, allow_inf_nan=False)
    min_moneyness: float = Field(default=0.5, ge=0, allow_inf_nan=False)
    max_moneyness: float = Field(default=2.0, gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _ordered(self) -> LiquidityFilterConfig:
        if self.min_moneyness >= self.max_moneyness:
            raise ValueError(f"filter: min_moneyness {self.min_moneyness} must be below "
                             f"max_moneyness {self.max_moneyness}")
        return self


class HoldoutConfig(Strict):
    fraction: float = Field(default=0.2, ge=0, lt=1, allow_inf_nan=False)
    seed: int = 0


class CalibrationModelConfig(Strict):
    name: Literal["heston", "bates", "garch", "gjr_garch"]
    initial: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_initial(self) -> CalibrationModelConfig:
        if self.name in GARCH_MODEL_NAMES:
            if self.initial:
                raise ValueError(f"model.initial: not used by {self.name} (maximum likelihood from fixed starts)")
            return self
        names = MODEL_PARAMETERS[self.name]
        for key, value in self.initial.items():
            if key not in names:
                raise ValueError(f"model.initial.{key}: not a parameter of {self.name}; expected {list(names)}")
            if not math.isfinite(value):
                raise ValueError(f"model.initial.{key}: must be finite (got {value})")
        return self


class FitConfig(Strict):
    objective: Literal["vol", "price"] = "vol"
    weights: Literal["uniform", "vega", "bidask"] = "uniform"
    starts: int = Field(default=3, ge=1, le=64)
    feller_weight: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    num_nodes: int = Field(default=DEFAULT_NUM_NODES, ge=16, le=4096)
    max_steps: int = Field(default=100, ge=1, le=10_000)
    bounds: dict[str, tuple[float, float | None]] = Field(default_factory=dict)
    arbitrage: Literal["error", "warn", "ignore"] = "error"

    @field_validator("bounds")
    @classmethod
    def _known_bounds(cls, bounds):
        for key in bounds:
            if key not in DEFAULT_BOUNDS:
                raise ValueError(f"unknown parameter {key!r}; expected one of {sorted(DEFAULT_BOUNDS)}")
        return bounds


class Config(Strict):
    job: Literal["calibrate"]
    model: CalibrationModelConfig | None = None
    surface: str | DeribitSurfaceConfig | None = Field(default=None)
    # Deribit chains only
    models: list[Literal["black", "heston", "bates", "svcj"]] | None = Field(default=None, min_length=1)
    filter: LiquidityFilterConfig | None = None
    holdout: HoldoutConfig | None = None
    temporal_penalty: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    market: MarketConfig | None = None
    fit: FitConfig = FitConfig()
    # GARCH / GJR-GARCH: daily closes, the column to fit, the innovations' distribution.
    returns: str | None = Field(default=None, min_length=1)
    asset: str | None = Field(default=None, min_length=1)
    distribution: Literal["normal", "t"] = "normal"
    # Accepted so that the CLI's --paths/--seed overrides (which write mc.paths/mc.seed) do
    # not reject this job; the calibration itself uses no Monte Carlo.
    mc: McConfig | None = None

    @model_validator(mode="after")
    def _inputs(self) -> Config:
        chain_only = ("models", "filter", "holdout", "temporal_penalty")
        if isinstance(self.surface, DeribitSurfaceConfig):
            if self.models is None:
                raise ValueError("models: required for a Deribit surface (e.g. [black, heston, svcj])")
            if len(set(self.models)) != len(self.models):
                raise ValueError(f"models: listed twice in {self.models}")
            for key in ("model", "market", "returns", "asset", "distribution"):
                if key in self.model_fields_set:
                    raise ValueError(f"{key}: not used with surface.deribit (the chain gives the "
                                     "forwards; list the models under models:)")
            fit = self.fit
            if "weights" in fit.model_fields_set and fit.weights != "bidask":
                raise ValueError("fit.weights: chains are fitted with 1/spread weights (bidask)")
            for key in ("feller_weight", "arbitrage"):
                if key in fit.model_fields_set:
                    raise ValueError(f"fit.{key}: not used with surface.deribit")
            return self
        for key in chain_only:
            if key in self.model_fields_set:
                raise ValueError(f"{key}: only with surface: {{deribit: PATH}}")
        if self.model is None:
            raise ValueError("model: required (or surface: {deribit: PATH} with models: [...])")
        if isinstance(self.surface, str) is False and self.surface is not None:
            raise ValueError("surface: a CSV path or {deribit: PATH, currency: BTC}")
        if self.model.name in GARCH_MODEL_NAMES:
            if self.returns is None:
                raise ValueError(f"returns: required for model {self.model.name} (a CSV of daily closes)")
            if self.asset is None:
                raise ValueError(f"asset: required for model {self.model.name} (the column of {self.returns} to fit)")
            for key in ("surface", "market", "fit"):
                if key in self.model_fields_set:
                    raise ValueError(f"{key}: not used by model {self.model.name} (it fits returns)")
        else:
            for key in ("surface", "market"):
                if getattr(self, key) is None:
                    raise ValueError(f"{key}: required for model {self.model.name}")
            for key in ("returns", "asset", "distribution"):
                if key in self.model_fields_set:
                    raise ValueError(f"{key}: only for garch/gjr_garch (model {self.model.name} fits a surface)")
        return self


class CalibrateJob(Job):
    """Model parameters fitted to an option surface, Deribit chains, or daily returns (GARCH)."""

    name = "calibrate"
    Config = Config
    sampling = Sampling(paths="mc.paths", seed="mc.seed")  # unused: no Monte Carlo

    def run(self, config: Config, context: JobContext) -> JobResult:
        if isinstance(config.surface, DeribitSurfaceConfig):
            return run_chain(config, progress=context.progress, path=context.resolve(config.surface.deribit))
        if config.model.name in GARCH_MODEL_NAMES:
            return _run_garch(config, base_dir=context.base_dir)
        return _run_surface(config, base_dir=context.base_dir)


def run(config: Config, out: Path, *, progress=None, base_dir: Path | None = None) -> dict:
    """Run the job into the folder ``out`` (as ``riskengine run`` does); the summary."""
    return execute(CalibrateJob(), config, out, base_dir=base_dir, progress=progress).summary


def _run_surface(config: Config, *, base_dir: Path | None) -> JobResult:
    surface_path = resolve_path(config.surface, base_dir)
    market = config.market
    fit = config.fit
    with jax.enable_x64(True):
        surface = load_surface(surface_path, spot=market.spot, rate=market.rate,
                               dividend=market.dividend)
        violations = static_arbitrage_violations(surface)
        if violations and fit.arbitrage == "error":
            shown = "; ".join(violations[:3])
            more = f"; and {len(violations) - 3} more" if len(violations) > 3 else ""
            raise ConfigError(f"{surface.source}: {len(violations)} static-arbitrage violation(s) "
                              f"(set fit.arbitrage: warn to fit anyway): {shown}{more}")
        if violations and fit.arbitrage == "warn":
            warnings.warn(f"{surface.source}: {len(violations)} static-arbitrage violation(s): "
                          + "; ".join(violations), RuntimeWarning, stacklevel=2)
        if fit.bounds:
            bad = sorted(set(fit.bounds) - set(MODEL_PARAMETERS[config.model.name]))
            if bad:
                raise ConfigError(f"fit.bounds.{bad[0]}: not a parameter of {config.model.name}")
        result = calibrate(
            surface, model=config.model.name, objective=fit.objective, weights=fit.weights,
            starts=fit.starts, initial=config.model.initial or None, bounds=fit.bounds or None,
            feller_weight=fit.feller_weight, num_nodes=fit.num_nodes, max_steps=fit.max_steps,
        )
    summary = {
        "job": "calibrate",
        **result.to_dict(),
        "surface": {"path": str(surface_path), "quotes": len(surface),
                    "expiries": [float(t) for t in surface.expiries], "quote": surface.quote,
                    "arbitrage_violations": violations},
        "market": {"spot": market.spot, "rate": market.rate, "dividend": market.dividend},
        "paths": config.mc.paths if config.mc is not None else None,  # unused (no Monte Carlo)
        "calibration_seconds": result.seconds,
    }
    comment = (f"Calibrated by `riskengine run` (job: calibrate) to {surface_path.name}: "
               f"{len(surface)} quotes, RMSE {result.rmse_vol_points:.4g} vol points, "
               f"converged: {str(result.converged).lower()}.\n"
               f"Use it from another job as  model: {{from: <this directory>}}")
    return JobResult(
        summary=summary, tables={"fit": result.quotes},
        writers=[lambda out: write_calibrated_model(out, result.model, result.params, comment=comment)],
        report=lambda summary: surface_report(config, result, summary),
    )


# --------------------------------------------------------------------------------------------
# GARCH / GJR-GARCH
# --------------------------------------------------------------------------------------------


def _run_garch(config: Config, *, base_dir: Path | None) -> JobResult:
    path = resolve_path(config.returns, base_dir)
    kind = GARCH_MODEL_NAMES[config.model.name]
    returns = load_returns(path, config.asset)
    try:
        dates = pd.read_csv(path, comment="#", parse_dates=["date"]).set_index("date").sort_index()[config.asset].dropna().index[1:]
    except (KeyError, ValueError):
        dates = pd.RangeIndex(len(returns))
    fit_started = time.perf_counter()
    result = fit_garch(returns, kind=kind, dist=config.distribution)
    fit_seconds = time.perf_counter() - fit_started
    summary = {
        "job": "calibrate",
        "model": config.model.name,
        "distribution": config.distribution,
        "asset": config.asset,
        "returns": {"path": str(path), "observations": int(returns.size), "kind": "daily log returns",
                    "first": str(dates[0].date()) if hasattr(dates[0], "date") else None,
                    "last": str(dates[-1].date()) if hasattr(dates[-1], "date") else None},
        "params": dict(result.params),
        "standard_errors": dict(result.stderr),
        "robust_standard_errors": dict(result.robust_stderr),
        "log_likelihood": result.loglik,
        "aic": result.aic,
        "bic": result.bic,
        "converged": result.converged,
        "steps": result.steps,
        "persistence": result.persistence,
        "at_bounds": list(result.at_bounds),
        "unconditional_vol_daily": None if math.isnan(result.unconditional_vol) else result.unconditional_vol,
        "unconditional_vol_annualised": None if math.isnan(result.unconditional_vol) else result.annualised_vol,
        "next_day_vol": math.sqrt(result.next_variance),
        "paths": config.mc.paths if config.mc is not None else None,  # unused (no Monte Carlo)
        "calibration_seconds": fit_seconds,
    }
    comment = (f"Calibrated by `riskengine run` (job: calibrate) to daily log returns of {config.asset} in "
               f"{path.name}: {returns.size} days, {config.model.name}/{config.distribution}, "
               f"converged: {str(result.converged).lower()}.\n"
               "A daily discrete-time model: read it with riskengine.calibration.load_garch, e.g. the "
               f"stress job's  fhs: {{from: {{{config.asset}: <this directory>}}}}")
    eps = returns - result.params["mu"]
    filtered = pd.DataFrame({
        "date": dates, "return": returns, "conditional_vol": result.conditional_vol,
        "standardised_residual": eps / result.conditional_vol,
    })
    return JobResult(
        summary=summary, tables={"filtered": filtered},
        writers=[lambda out: write_garch_model(out, result, asset=config.asset, comment=comment)],
        report=lambda summary: garch_report(config, result, summary, dates, returns),
    )


