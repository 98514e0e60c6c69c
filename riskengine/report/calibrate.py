"""The calibrate job's report (moved out of :mod:`riskengine.jobs.calibrate`)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from riskengine.calibration import (
    CalibrationResult,
    GarchResult,
)
from riskengine.report import Report

if TYPE_CHECKING:
    from riskengine.jobs.calibrate import Config


def surface_report(config: Config, result: CalibrationResult, summary: dict) -> Report:
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


def garch_report(config: Config, result: GarchResult, summary: dict, dates, returns) -> Report:
    report = Report(f"Calibration job — {config.model.name} ({config.distribution}) on {config.asset}")
    report.facts({
        "model": f"{config.model.name} / {config.distribution}",
        "observations": str(result.observations),
        "log-likelihood": f"{result.loglik:.2f}",
        "converged": "yes" if result.converged else "NO",
        "persistence": f"{result.persistence:.4f}",
        "next-day vol": f"{100 * math.sqrt(result.next_variance):.2f}%",
        "fit seconds": f"{summary['calibration_seconds']:.2f}",
    })
    report.heading("Parameters")
    rows = pd.DataFrame({
        "parameter": list(result.params),
        "value": list(result.params.values()),
        "standard error": [result.stderr[n] for n in result.params],
        "robust standard error": [result.robust_stderr[n] for n in result.params],
    })
    report.table(rows, float_format="{:.4g}")
    report.paragraph(
        "r_t = mu + sigma_t z_t, sigma_t^2 = omega + (alpha + gamma 1{eps<0}) eps_{t-1}^2 + beta sigma_{t-1}^2 "
        "(gamma = 0 for GARCH), z_t standard normal or unit-variance Student-t(nu). Maximum likelihood "
        "(BFGS, two starts); standard errors from the inverse Hessian, robust ones from the sandwich. "
        + (f"Constraints (nearly) binding: {', '.join(result.at_bounds)}; standard errors are not meaningful there."
           if result.at_bounds else "No constraint is binding."),
        note=True,
    )
    fig, ax = plt.subplots(figsize=(10, 3.5))
    ax.plot(dates, np.abs(returns), color="#bbbbbb", lw=0.6, label="|return|")
    ax.plot(dates, result.conditional_vol, color="#c44e52", lw=1.2, label="conditional vol")
    ax.set_ylabel("daily")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    report.figure(fig, alt="Absolute daily returns and the fitted conditional volatility")
    return report
