"""The ``allocate`` job: how much of the capital each asset or strategy gets, within limits.

```yaml
job: allocate
returns: data/scenarios.csv            # or {from: RUN_DIR} or {simulate: {...}}
objective: {type: min_cvar, alpha: 0.95}
constraints: {long_only: true, budget: 1.0, max_weight: 0.6, min_return: 0.0005}
```

``returns``: a CSV/parquet path (rows = scenarios, columns = assets or strategies), or
``{from: RUN_DIR}`` (a hedge job's ``pnl.parquet``, strategies as columns; or a stress run
with per-underlying P&L columns), or ``{simulate: {assets: {NAME: {name, params}}, correlation,
horizon_days, paths, seed, drift}}``. ``--paths N`` keeps the first N scenarios of a table
(``max_scenarios``) or simulates N paths; ``--seed`` is the simulation's seed.

Outputs: ``summary.json`` (``weights``, ``cvar``, ``var``, ``expected_return``,
``risk_contributions`` and their shares, constraint violations, the efficient frontier),
``weights.parquet``, ``frontier.parquet`` and ``report.html``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from pydantic import Field, field_validator, model_validator

from riskengine.allocation import Constraints, Objective, SolverSettings, allocate
from riskengine.allocation.inputs import load_run_dir, load_table, simulate_returns
from riskengine.allocation.solver import _best_return
from riskengine.config import ConfigError, ModelConfig, Strict
from riskengine.jobs.base import Job, JobContext, JobResult, Sampling
from riskengine.report import Report
from riskengine.risk import expected_shortfall

Level = Field(default=0.95, gt=0.5, lt=1.0)


class FromRun(Strict):
    from_: str = Field(alias="from", min_length=1)
    horizon_days: int | None = Field(default=None, ge=1)
    columns: list[str] | None = None


class SimulateSpec(Strict):
    assets: dict[str, ModelConfig] = Field(min_length=1)
    correlation: list[list[float]] | None = None
    horizon_days: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    paths: int = Field(default=20_000, ge=2)
    seed: int = Field(default=0, ge=0)
    drift: dict[str, float] = Field(default_factory=dict)
    steps_per_day: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    dtype: Literal["float32", "float64"] = "float32"

    @model_validator(mode="after")
    def _names(self) -> SimulateSpec:
        unknown = sorted(set(self.drift) - set(self.assets))
        if unknown:
            raise ValueError(f"drift.{unknown[0]}: not one of the simulated assets {list(self.assets)}")
        if self.correlation is not None:
            n = len(self.assets)
            if len(self.correlation) != n or any(len(row) != n for row in self.correlation):
                raise ValueError(f"correlation: must be {n} x {n} (one row per asset), got "
                                 f"{len(self.correlation)} rows")
        return self


class Simulate(Strict):
    simulate: SimulateSpec


class ObjectiveConfig(Strict):
    type: Literal["min_cvar", "mean_cvar", "risk_parity", "kelly"] = "min_cvar"
    alpha: float = Level
    risk_aversion: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    fraction: float = Field(default=0.5, gt=0, le=1)
    risk_budgets: dict[str, float] | None = None

    @field_validator("risk_budgets")
    @classmethod
    def _positive(cls, budgets):
        if budgets is not None:
            for k, v in budgets.items():
                if not v > 0:
                    raise ValueError(f"{k}: risk budgets must be > 0 (got {v})")
        return budgets


class ExposureLimit(Strict):
    """Net exposure ``|sum_j w_j e_j| <= max`` with ``e_j`` per unit weight of asset j."""
    exposures: dict[str, float] = Field(min_length=1)
    max: float = Field(ge=0, allow_inf_nan=False)


class ConstraintsConfig(Strict):
    long_only: bool = True
    budget: float | None = Field(default=1.0, allow_inf_nan=False)
    min_weight: float | None = Field(default=None, allow_inf_nan=False)
    max_weight: float | None = Field(default=None, allow_inf_nan=False)
    bounds: dict[str, tuple[float, float]] = Field(default_factory=dict)
    min_return: float | None = Field(default=None, allow_inf_nan=False)
    max_leverage: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    current_weights: dict[str, float] | None = None
    max_turnover: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    max_var: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    max_es: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    risk_level: float | None = Field(default=None, gt=0.5, lt=1.0)
    limits: dict[str, ExposureLimit] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> ConstraintsConfig:
        if self.min_weight is not None and self.max_weight is not None and self.min_weight > self.max_weight:
            raise ValueError(f"constraints.min_weight: {self.min_weight} > max_weight {self.max_weight} (infeasible)")
        if self.long_only and self.max_weight is not None and self.max_weight < 0:
            raise ValueError(f"constraints.max_weight: {self.max_weight} < 0 with long_only (infeasible)")
        if self.max_turnover is not None and self.current_weights is None:
            raise ValueError("constraints.max_turnover: needs constraints.current_weights")
        for name, (lo, hi) in self.bounds.items():
            if lo > hi:
                raise ValueError(f"constraints.bounds.{name}: lower {lo} > upper {hi} (infeasible)")
        return self


class FrontierConfig(Strict):
    points: int = Field(default=8, ge=0, le=50)


class Config(Strict):
    job: Literal["allocate"]
    returns: str | FromRun | Simulate
    objective: ObjectiveConfig = ObjectiveConfig()
    constraints: ConstraintsConfig = ConstraintsConfig()
    frontier: FrontierConfig = FrontierConfig()
    max_scenarios: int | None = Field(default=None, ge=2)  # keep the first N rows of a table
    dtype: Literal["float32", "float64"] = "float32"  # the solver's precision



class AllocateJob(Job):
    """Risk-aware weights across assets and strategies (min CVaR, mean-CVaR, risk parity, ...) within limits, on a scenario table, a stress run's P&L or simulated returns."""
    name = "allocate"
    Config = Config
    sampling = Sampling()  # --paths: see apply_overrides; the solver handles its dtype

    def apply_overrides(self, data: dict[str, Any], *, paths: int | None, seed: int | None) -> dict[str, Any]:
        return _apply_overrides(data, paths=paths, seed=seed)

    def run(self, config: Config, context: JobContext) -> JobResult:
        return _run(config, progress=context.progress, base_dir=context.base_dir)


def _apply_overrides(data: dict[str, Any], *, paths: int | None, seed: int | None) -> dict[str, Any]:
    """``--paths``: simulated paths, or the first N scenarios of a table; ``--seed``: the
    simulation's seed (no effect on a table)."""
    data = dict(data)
    returns = data.get("returns")
    if isinstance(returns, dict) and isinstance(returns.get("simulate"), dict):
        spec = dict(returns["simulate"])
        if paths is not None:
            spec["paths"] = paths
        if seed is not None:
            spec["seed"] = seed
        data["returns"] = {**returns, "simulate": spec}
    elif paths is not None:
        data["max_scenarios"] = paths
    return data


def load_returns(config: Config, base_dir: Path | None):
    spec = config.returns
    if isinstance(spec, str):
        r, names, source = load_table(spec, base_dir=base_dir)
    elif isinstance(spec, FromRun):
        r, names, source = load_run_dir(spec.from_, base_dir=base_dir, horizon_days=spec.horizon_days,
                                        columns=spec.columns)
    else:
        s = spec.simulate
        models = {}
        for name, model in s.assets.items():
            models[name] = model.build()
        r, names, source = simulate_returns(
            models, correlation=s.correlation, horizon_days=s.horizon_days, paths=s.paths,
            seed=s.seed, drift=s.drift, steps_per_day=s.steps_per_day,
            dtype=jnp.float64 if s.dtype == "float64" else jnp.float32)
    if config.max_scenarios is not None and r.shape[0] > config.max_scenarios:
        r = r[: config.max_scenarios]
        source += f" (first {config.max_scenarios} scenarios)"
    return r, names, source


def _per_asset(values: dict[str, Any], names: list[str], field: str) -> None:
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ConfigError(f"{field}.{unknown[0]}: not one of the columns {names}")


def build_problem(config: Config, names: list[str]) -> tuple[Objective, Constraints]:
    """The solver's objective and constraints for the columns ``names``."""
    o, c = config.objective, config.constraints
    n = len(names)
    if o.risk_budgets is not None:
        _per_asset(o.risk_budgets, names, "objective.risk_budgets")
    budgets = None if o.risk_budgets is None else tuple(o.risk_budgets.get(k, 1.0) for k in names)
    objective = Objective(type=o.type, alpha=o.alpha, risk_aversion=o.risk_aversion,
                          fraction=o.fraction, risk_budgets=budgets)
    lower = np.full(n, 0.0 if c.long_only else -np.inf)
    upper = np.full(n, np.inf)
    if c.min_weight is not None:
        lower = np.maximum(lower, c.min_weight)
    if c.max_weight is not None:
        upper = np.minimum(upper, c.max_weight)
    _per_asset(c.bounds, names, "constraints.bounds")
    for k, (lo, hi) in c.bounds.items():
        j = names.index(k)
        lower[j], upper[j] = (max(lo, 0.0) if c.long_only else lo), hi
        if lower[j] > upper[j]:
            raise ConfigError(f"constraints.bounds.{k}: upper bound {hi} < 0 with long_only (infeasible)")
    current = None
    if c.current_weights is not None:
        _per_asset(c.current_weights, names, "constraints.current_weights")
        current = np.asarray([c.current_weights.get(k, 0.0) for k in names])
    exposures = limits = None
    exposure_names: tuple[str, ...] = ()
    if c.limits:
        rows = []
        for lname, lim in c.limits.items():
            _per_asset(lim.exposures, names, f"constraints.limits.{lname}.exposures")
            rows.append([lim.exposures.get(k, 0.0) for k in names])
        exposures = np.asarray(rows, float)
        limits = np.asarray([lim.max for lim in c.limits.values()], float)
        exposure_names = tuple(c.limits)
    constraints = Constraints(
        lower=lower, upper=upper, budget=c.budget, min_return=c.min_return,
        max_leverage=c.max_leverage, current=current, max_turnover=c.max_turnover,
        max_var=c.max_var, max_es=c.max_es,
        risk_level=c.risk_level if c.risk_level is not None else o.alpha,
        exposures=exposures, exposure_limits=limits, exposure_names=exposure_names)
    return objective, constraints


def efficient_frontier(r: np.ndarray, objective: Objective, constraints: Constraints, *, points: int,
                       dtype) -> pd.DataFrame:
    """Minimum CVaR at ``points`` expected-return targets from the minimum-CVaR portfolio's
    return to the largest return the bounds and budget allow (other constraints kept)."""
    base = Objective("min_cvar", alpha=objective.alpha)
    settings = SolverSettings(dtype=dtype)
    free = Constraints(**{**constraints.__dict__, "min_return": None})
    start = allocate(r, base, free, settings=settings)
    best = _best_return(free, r.mean(axis=0))
    rows = [{"target_return": np.nan, "expected_return": start.expected_return, "cvar": start.cvar,
             "var": start.var}]
    if not np.isfinite(best) or best <= start.expected_return:
        return pd.DataFrame(rows)
    for target in np.linspace(start.expected_return, best, points + 1)[1:]:
        target = float(target) - 1e-9 * abs(best)
        c = Constraints(**{**free.__dict__, "min_return": target})
        try:
            a = allocate(r, base, c, settings=settings)
        except ConfigError:
            continue  # a target the other constraints cannot reach
        rows.append({"target_return": target, "expected_return": a.expected_return, "cvar": a.cvar,
                     "var": a.var})
    return pd.DataFrame(rows)


def _run(config: Config, *, progress=None, base_dir: Path | None = None) -> JobResult:
    del progress
    r, names, source = load_returns(config, base_dir)
    objective, constraints = build_problem(config, names)
    dtype = jnp.float64 if config.dtype == "float64" else jnp.float32

    result = allocate(r, objective, constraints, names=names, settings=SolverSettings(dtype=dtype))
    frontier = (efficient_frontier(r, objective, constraints, points=config.frontier.points, dtype=dtype)
                if config.frontier.points and objective.type != "risk_parity" else pd.DataFrame())
    mean = r.mean(axis=0)
    vol = r.std(axis=0, ddof=1)
    summary = {
        "job": "allocate",
        "source": source,
        "paths": int(r.shape[0]),
        "scenarios": int(r.shape[0]),
        "names": names,
        **result.to_dict(),
        "objective_settings": {"type": objective.type, "alpha": objective.alpha,
                               "risk_aversion": objective.risk_aversion, "fraction": objective.fraction},
        "gross_leverage": float(np.sum(np.abs(result.weights))),
        "frontier": frontier.to_dict(orient="records"),
    }
    table = pd.DataFrame({
        "name": names, "weight": result.weights, "risk_contribution": result.contributions,
        "risk_contribution_pct": result.contributions / result.cvar if result.cvar else np.nan,
        "mean": mean, "vol": vol,
    })
    return JobResult(summary=summary, tables={"weights": table, "frontier": frontier},
                     report=lambda summary: _report(summary, table, frontier, r))


def _report(summary: dict, table: pd.DataFrame, frontier: pd.DataFrame, r: np.ndarray) -> Report:
    report = Report(f"Allocation — {summary['objective']}")
    a = summary["alpha"]
    report.facts({
        "objective": summary["objective"],
        f"CVaR {a:g}": f"{summary['cvar']:.4g}",
        f"VaR {a:g}": f"{summary['var']:.4g}",
        "expected return": f"{summary['expected_return']:.4g}",
        "gross leverage": f"{summary['gross_leverage']:.3g}",
        "scenarios": str(summary["scenarios"]),
    })
    report.paragraph(f"Scenarios: {summary['source']}. Figures are per unit of capital, in the "
                     f"units of the scenario table (returns, or P&L per unit of a strategy); "
                     f"risk figures are losses.")
    report.heading("Weights and CVaR contributions")
    report.table(table)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    axes[0].bar(table["name"], table["weight"], color="tab:blue")
    axes[0].set_title("weights")
    axes[1].bar(table["name"], table["risk_contribution"], color="tab:red")
    axes[1].set_title(f"Euler contributions to CVaR {a:g} (sum = {summary['cvar']:.3g})")
    for ax in axes:
        ax.tick_params(axis="x", rotation=45, labelsize=8)
        ax.axhline(0, color="k", lw=0.6)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    report.figure(fig, alt="Bar charts of the weights and of each asset's CVaR contribution")
    if len(frontier):
        report.heading("Efficient frontier (minimum CVaR per expected-return target)")
        fig, ax = plt.subplots(figsize=(7, 4.2))
        ax.plot(frontier["cvar"], frontier["expected_return"], "o-", label="efficient frontier")

        for j, name in enumerate(table["name"]):
            es = float(expected_shortfall(r[:, j], level=a))
            ax.plot(es, table["mean"][j], "s", color="grey")
            ax.annotate(str(name), (es, table["mean"][j]), fontsize=7)
        ax.plot(summary["cvar"], summary["expected_return"], "*", ms=14, color="tab:red", label="chosen")
        ax.set_xlabel(f"CVaR {a:g} (loss)")
        ax.set_ylabel("expected return")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        report.figure(fig, alt="Efficient frontier: expected return against CVaR, assets and the chosen portfolio")
        report.table(frontier)
    violations = {k: v for k, v in summary["constraint_violations"].items() if v > 0}
    report.paragraph(
        "Method: Rockafellar–Uryasev CVaR with a softplus-smoothed plus function whose temperature "
        "is annealed towards 0, accelerated projected gradient on the weights (exact projection on "
        "the bounds, budget and turnover/leverage l1 ball), the other constraints by an augmented "
        "Lagrangian; the figures above are the exact empirical ones of the final weights. "
        f"Constraint violations (> 0 only): {violations or 'none'}.", note=True)
    return report
