"""The ``calibrate`` job: Heston or Bates fitted to an option surface by Levenberg–Marquardt.

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
"""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path
from typing import Literal

import jax
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from pydantic import Field, field_validator, model_validator

from riskengine.calibration import (
    DEFAULT_BOUNDS,
    MODEL_PARAMETERS,
    CalibrationResult,
    calibrate,
    load_surface,
    static_arbitrage_violations,
    write_calibrated_model,
)
from riskengine.calibration.heston import DEFAULT_NUM_NODES
from riskengine.config import ConfigError, MarketConfig, McConfig, Strict
from riskengine.report import Report, write_json, write_parquet


class CalibrationModelConfig(Strict):
    name: Literal["heston", "bates"]
    initial: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_initial(self) -> CalibrationModelConfig:
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
    model: CalibrationModelConfig
    surface: str = Field(min_length=1)
    market: MarketConfig
    fit: FitConfig = FitConfig()
    # Accepted so that the CLI's --paths/--seed overrides (which write mc.paths/mc.seed) do
    # not reject this job; the calibration itself uses no Monte Carlo.
    mc: McConfig | None = None


def _resolve(path: str, base_dir: Path | None) -> Path:
    p = Path(path)
    if p.is_absolute() or p.exists() or base_dir is None:
        return p
    return base_dir / p


def run(config: Config, out: Path, *, progress=None, base_dir: Path | None = None) -> dict:
    started = time.perf_counter()
    surface_path = _resolve(config.surface, base_dir)
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
    del progress  # one vectorised solve: nothing to report along the way
    summary = {
        "job": "calibrate",
        **result.to_dict(),
        "surface": {"path": str(surface_path), "quotes": len(surface),
                    "expiries": [float(t) for t in surface.expiries], "quote": surface.quote,
                    "arbitrage_violations": violations},
        "market": {"spot": market.spot, "rate": market.rate, "dividend": market.dividend},
        "paths": config.mc.paths if config.mc is not None else None,  # unused (no Monte Carlo)
        "calibration_seconds": result.seconds,
        "seconds": time.perf_counter() - started,
    }
    write_calibrated_model(
        out, result.model, result.params,
        comment=(f"Calibrated by `riskengine run` (job: calibrate) to {surface_path.name}: "
                 f"{len(surface)} quotes, RMSE {result.rmse_vol_points:.4g} vol points, "
                 f"converged: {str(result.converged).lower()}.\n"
                 f"Use it from another job as  model: {{from: <this directory>}}"),
    )
    write_parquet(out / "fit.parquet", result.quotes)
    summary["seconds"] = time.perf_counter() - started
    _report(config, result, summary).write(out / "report.html")
    write_json(out / "summary.json", summary)
    return summary


def _report(config: Config, result: CalibrationResult, summary: dict) -> Report:
    report = Report(f"Calibration job — {result.model}")
    report.facts({
        "model": result.model,
        "RMSE (vol points)": f"{result.rmse_vol_points:.4g}",
        "RMSE (price)": f"{result.rmse_price:.3g}",
        "converged": "yes" if result.converged else "NO",
        "Jacobian condition": f"{result.jacobian_condition:.3g}",
        "fit seconds (after compile)": f"{result.solve_seconds:.2f}",
        "compile seconds": f"{result.compile_seconds:.1f}",
    })
    s = summary["surface"]
    report.paragraph(
        f"Surface {s['path']}: {s['quotes']} quotes ({s['quote']}), {len(s['expiries'])} expiries. "
        f"Market: spot {config.market.spot}, rate {config.market.rate}, dividend "
        f"{config.market.dividend}. Objective: {result.settings['objective']} residuals, "
        f"{result.settings['weights']} weights, {result.settings['starts']} starts, Feller "
        f"penalty weight {result.settings['feller_weight']:g}, {result.num_nodes}-node quadrature "
        f"(max difference to the 1024-node pricer at the solution: {result.quadrature_error:.2g})."
    )
    if s["arbitrage_violations"]:
        report.paragraph("Static-arbitrage violations in the quotes (fitted anyway): "
                         + "; ".join(s["arbitrage_violations"]))

    report.heading("Parameters")
    bounds = result.settings["bounds"]
    rows = pd.DataFrame({
        "parameter": list(result.params),
        "value": list(result.params.values()),
        "lower bound": [bounds[n][0] for n in result.params],
        "upper bound": [np.nan if bounds[n][1] is None else bounds[n][1] for n in result.params],
        "at bound": ["yes" if n in result.at_bounds else "" for n in result.params],
    })
    report.table(rows, highlight=rows["at bound"] == "yes")
    feller = result.feller["2*kappa*theta - sigma^2"]
    report.paragraph(
        f"Condition number of the Jacobian of the weighted residuals with respect to the "
        f"parameters at the solution: {result.jacobian_condition:.3g} (singular values "
        f"{', '.join(f'{v:.3g}' for v in result.singular_values)}). A large condition number "
        f"means some combination of parameters moves the fitted surface little, so it is "
        f"poorly determined by these quotes. Feller: 2 kappa theta - sigma^2 = {feller:.4g} "
        f"({'satisfied' if result.feller['satisfied'] else 'violated: the variance can reach 0'}). "
        f"LM: {result.message} after {result.steps} steps.",
        note=True,
    )

    report.heading("Fit per expiry")
    per = pd.DataFrame(result.per_expiry)
    per.insert(1, "days", (per["expiry"] * 365).round(1))
    report.table(per, highlight=per["max_abs_vol_error_points"] > 1.0)
    quotes = result.quotes
    expiries = sorted(quotes["expiry"].unique())
    cols = min(5, len(expiries))
    rows_n = math.ceil(len(expiries) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(3.2 * cols, 2.7 * rows_n), squeeze=False)
    for ax, t in zip(axes.ravel(), expiries, strict=False):
        part = quotes[quotes["expiry"] == t].sort_values("strike")
        ax.plot(part["strike"], 100 * part["market_vol"], "o", ms=4, label="market")
        ax.plot(part["strike"], 100 * part["model_vol"], "-", lw=1.5, label=result.model)
        ax.set_title(f"T = {t * 365:.0f}d", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(expiries):]:
        ax.axis("off")
    axes[0, 0].set_ylabel("implied vol (%)", fontsize=8)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"Fitted vs market implied vol per expiry (RMSE {result.rmse_vol_points:.3g} vol points)",
                 fontsize=10)
    fig.tight_layout()
    report.figure(fig, alt="Fitted and market implied vols against strike, one panel per expiry")

    fig, ax = plt.subplots(figsize=(8, 3.5))
    scatter = ax.scatter(quotes["log_moneyness"], 100 * quotes["vol_error"], c=quotes["expiry"] * 365,
                         cmap="viridis", s=18)
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_xlabel("log-moneyness log(K/F)")
    ax.set_ylabel("model - market (vol points)")
    fig.colorbar(scatter, ax=ax, label="days to expiry")
    ax.grid(alpha=0.3)
    report.figure(fig, alt="Vol error per quote against log-moneyness, coloured by expiry")

    report.heading("Starts")
    starts = pd.DataFrame([
        {"start": i, "objective": st["objective"], "converged": "yes" if st["converged"] else "no",
         "steps": st["steps"], **{f"initial {k}": v for k, v in st["initial"].items()}}
        for i, st in enumerate(result.starts)
    ])
    report.table(starts)
    report.paragraph(
        "Method: Levenberg–Marquardt (optimistix) on the characteristic-function pricer (Lewis' "
        "formula), all quotes priced in one vectorised call, exact Jacobian by forward-mode "
        "automatic differentiation; parameters kept within their bounds by softplus/sigmoid/tanh "
        "reparametrisation; model implied vols by Newton inversion of the model prices. The "
        "objective is the sum of squared weighted residuals; the best start is kept.",
        note=True,
    )
    return report
