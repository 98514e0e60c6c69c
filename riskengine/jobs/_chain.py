"""The calibrate job on Deribit chains (``surface: {deribit: PATH}``): outputs and report.

The substance is :mod:`riskengine.data.deribit` (reading) and
:mod:`riskengine.calibration.chain` (filter, holdout, fits); this module writes the files.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from riskengine.calibration import write_calibrated_model
from riskengine.calibration.chain import (
    DEFAULT_CHAIN_NODES,
    ChainRun,
    LiquidityFilter,
    calibrate_snapshots,
)
from riskengine.calibration.surface import bs_implied_vol
from riskengine.data import list_snapshots, read_chain
from riskengine.jobs.base import JobResult
from riskengine.report import Report

_YEAR = pd.Timedelta(days=365.25)
_SIMULATOR_NAME = {"black": "gbm"}  # Black's one volatility is GBM's sigma


def run_chain(config, *, progress, path: Path) -> JobResult:
    """The calibrate job on Deribit chains: the figures, tables ``fitted`` and
    ``params_history``, each model's ``<model>/params.yaml`` and ``params.json``, the report."""
    files = list_snapshots(path) if path.is_dir() else [path]
    currency = config.surface.currency.upper()
    rules = LiquidityFilter(**(config.filter.model_dump() if config.filter else {}))
    holdout = config.holdout
    fraction = holdout.fraction if holdout is not None else 0.2
    seed = holdout.seed if holdout is not None else 0
    fit = config.fit
    objective = fit.objective if "objective" in fit.model_fields_set else "price"
    num_nodes = fit.num_nodes if "num_nodes" in fit.model_fields_set else DEFAULT_CHAIN_NODES
    bounds = {m: fit.bounds for m in config.models} if fit.bounds else None
    chains = [functools.partial(read_chain, f, currency=currency) for f in files]
    result = calibrate_snapshots(
        chains, models=config.models, rules=rules, fraction=fraction, seed=seed,
        temporal_penalty=config.temporal_penalty, objective=objective, starts=fit.starts,
        bounds=bounds, num_nodes=num_nodes, max_steps=fit.max_steps, progress=progress)

    dropped: dict[str, int] = {}
    for snap in result.snapshots:
        for key, value in snap["dropped"].items():
            dropped[key] = dropped.get(key, 0) + value
    summary = {
        "job": "calibrate",
        "surface": {"deribit": str(path), "currency": currency, "snapshots": len(files),
                    "first": result.snapshots[0]["timestamp"],
                    "last": result.snapshots[-1]["timestamp"],
                    "rows": int(sum(s["rows"] for s in result.snapshots))},
        "models": list(config.models),
        "filter": {**rules.__dict__},
        "holdout": ({"set_column": True} if any(x["set_column"] for x in result.snapshots)
                    else {"fraction": fraction, "seed": seed}),
        "temporal_penalty": config.temporal_penalty,
        "fit": {"objective": objective, "weights": "1/spread", "starts": fit.starts,
                "max_steps": fit.max_steps, "num_nodes": num_nodes},
        "dropped": dropped,
        "quotes": {"train": int(sum(s["quotes_train"] for s in result.snapshots)),
                   "test": int(sum(s["quotes_test"] for s in result.snapshots))},
        "fits": result.summary,
        "params": result.last_params,
        "snapshots": result.snapshots if len(files) <= 20 else None,
        "paths": config.mc.paths if config.mc is not None else None,  # unused (no Monte Carlo)
        "compile_seconds": result.compile_seconds,
    }
    def write_models(out: Path) -> None:
        for model, params in result.last_params.items():
            folder = out / model
            folder.mkdir(parents=True, exist_ok=True)
            name = _SIMULATOR_NAME.get(model, model)
            stats = result.summary[model]["test"]
            rmse = "n/a" if stats["rmse"] is None else f"{stats['rmse']:.3g}"
            write_calibrated_model(
                folder, name, params,
                comment=(f"{model} calibrated by `riskengine run` (job: calibrate) to the {currency} "
                         f"Deribit chain {result.snapshots[-1]['source']} ({result.snapshots[-1]['timestamp']}); "
                         f"test RMSE {rmse} coin.\nUse it from another job as  model: {{from: <this directory>}}"))
            (folder / "params.json").write_text(json.dumps(
                {"model": {"name": name, "params": params}, "fitted_as": model,
                 "timestamp": result.snapshots[-1]["timestamp"]}, indent=2))

    return JobResult(summary=summary, tables={"fitted": result.fitted, "params_history": result.history},
                     writers=[write_models], report=lambda summary: _report(config, result, summary))


def _ivs(frame: pd.DataFrame, price: np.ndarray) -> np.ndarray:
    t = ((frame["expiry"] - frame["timestamp"]) / _YEAR).to_numpy(np.float64)
    k = (frame["strike"] / frame["forward"]).to_numpy(np.float64)
    return bs_implied_vol(price=np.asarray(price, np.float64), spot=np.ones(len(frame)), strike=k,
                          maturity=t, rate=0.0, dividend=0.0,
                          is_call=(frame["option"] == "call").to_numpy())


def _fmt(value, spec=".3g") -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def _report(config, result: ChainRun, summary: dict) -> Report:
    models = list(config.models)
    s = summary["surface"]
    report = Report(f"Calibration job — {', '.join(models)} on Deribit {s['currency']} chains")
    facts = {"snapshots": str(s["snapshots"]),
             "quotes (train / test)": f"{summary['quotes']['train']} / {summary['quotes']['test']}"}
    for m in models:
        facts[f"{m} test RMSE (coin)"] = _fmt(result.summary[m]["test"]["rmse"], ".3g")
        facts[f"{m} test inside bid–ask"] = _fmt(result.summary[m]["test"]["inside"], ".1%")
    report.facts(facts)
    report.paragraph(
        f"Source {s['deribit']}: {s['snapshots']} snapshot(s) from {s['first']} to {s['last']}, "
        f"{s['rows']} {s['currency']} rows. Coin prices of inverse options (USD price on the "
        f"expiry's forward / forward); residuals (model − mid) / (ask − bid), "
        f"{summary['fit']['objective']} objective; holdout {summary['holdout']}; temporal penalty "
        f"{summary['temporal_penalty']:g}. Data: Deribit exports (research use).")

    report.heading("Fit per model and set (pooled over snapshots)")
    rows = []
    for m in models:
        for label in ("train", "test"):
            st = result.summary[m][label]
            rows.append({"model": m, "set": label, "RMSE (coin)": st["rmse"], "MAE (coin)": st["mae"],
                         "inside bid–ask": st["inside"], "quotes": st["quotes"],
                         "seconds": result.summary[m]["seconds"],
                         "converged": f"{result.summary[m]['converged']}/{result.summary[m]['fits']}"})
    report.table(pd.DataFrame(rows))
    report.heading("Quotes dropped")
    report.table(pd.DataFrame([{"reason": k, "quotes": v} for k, v in summary["dropped"].items()]))
    report.paragraph(
        "one_sided: no bid or no ask; crossed: bid >= ask; expired: expiry before the snapshot "
        "(reader). short_maturity, low_open_interest, wide_spread, moneyness: the liquidity filter "
        f"{summary['filter']} (each quote counted under the first rule it fails).", note=True)

    last = result.fitted[result.fitted["timestamp"] == result.fitted["timestamp"].max()]
    report.heading(f"Smile per expiry ({last['timestamp'].iloc[0]})")
    _smiles(report, last, models)
    _residuals(report, last, models)
    if summary["surface"]["snapshots"] > 1:
        _history(report, result.history, models)
    report.paragraph(
        "Method: Levenberg–Marquardt (optimistix) on the characteristic-function pricer (Lewis' "
        "formula) with spot 1 and strike K/F, exact forward-mode Jacobian; each snapshot starts "
        "from the previous snapshot's fit. Model prices in the tables: 256-node quadrature "
        "(the 1024-node prices to 3e-15 coin on the BTC history).",
        note=True)
    return report


def _smiles(report: Report, frame: pd.DataFrame, models: list[str]) -> None:
    # out-of-the-money side only, one point per strike
    otm = frame[(frame["option"] == "call") == (frame["strike"] >= frame["forward"])]
    expiries = sorted(otm["expiry"].unique())
    cols = min(4, max(len(expiries), 1))
    nrows = max(math.ceil(len(expiries) / cols), 1)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.4 * cols, 2.7 * nrows), squeeze=False)
    for ax, expiry in zip(axes.ravel(), expiries, strict=False):
        part = otm[otm["expiry"] == expiry].sort_values("strike")
        bid, ask = _ivs(part, part["bid"].to_numpy()), _ivs(part, part["ask"].to_numpy())
        bid = np.where(np.isfinite(bid), bid, 0.0)
        x = part["strike"].to_numpy()
        ax.vlines(x, 100 * bid, 100 * ask, color="#555555", lw=2, label="bid–ask")
        for m in models:
            ax.plot(x, 100 * _ivs(part, part[f"price_{m}"].to_numpy()), "-", lw=1.2, label=m)
        days = (pd.Timestamp(expiry) - part["timestamp"].iloc[0]) / pd.Timedelta(days=1)
        ax.set_title(f"{pd.Timestamp(expiry):%Y-%m-%d} ({days:.0f}d)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(expiries):]:
        ax.axis("off")
    axes[0, 0].set_ylabel("implied vol (%)", fontsize=8)
    axes[0, 0].legend(fontsize=6)
    fig.tight_layout()
    report.figure(fig, alt="Market bid–ask implied-vol bars and each model's smile, one panel per expiry")


def _residuals(report: Report, frame: pd.DataFrame, models: list[str]) -> None:
    fig, axes = plt.subplots(1, len(models), figsize=(3.6 * len(models), 3.0), squeeze=False)
    days = ((frame["expiry"] - frame["timestamp"]) / pd.Timedelta(days=1)).to_numpy()
    x = np.log(frame["strike"] / frame["forward"]).to_numpy()
    half = 0.5 * (frame["ask"] - frame["bid"]).to_numpy()
    for ax, m in zip(axes[0], models, strict=True):
        err = frame[f"price_{m}"].to_numpy() - frame["mid"].to_numpy()
        sc = ax.scatter(x, err, c=days, s=8, cmap="viridis")
        order = np.argsort(x)
        ax.fill_between(x[order], -half[order], half[order], color="#dddddd", lw=0, label="± half spread")
        ax.axhline(0.0, color="k", lw=0.6)
        ax.set_title(m, fontsize=9)
        ax.set_xlabel("log(K/F)", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0, 0].set_ylabel("model − mid (coin)", fontsize=8)
    fig.colorbar(sc, ax=axes[0, -1], label="days to expiry")
    fig.tight_layout()
    report.figure(fig, alt="Coin residuals by log-moneyness, coloured by days to expiry, per model")


def _history(report: Report, history: pd.DataFrame, models: list[str]) -> None:
    report.heading("Parameter paths and errors over the snapshots")
    for m in models:
        mine = history[history["model"] == m]
        params = [c for c in mine.columns[2:] if c not in ("rmse_train",) and mine[c].notna().all()
                  and c not in ("rmse_test", "mae_train", "mae_test", "inside_train", "inside_test",
                                "quotes_train", "quotes_test", "seconds", "converged", "steps",
                                "objective", "quote_objective")]
        cols = min(5, len(params))
        nrows = math.ceil(len(params) / cols)
        fig, axes = plt.subplots(nrows, cols, figsize=(3.0 * cols, 2.2 * nrows), squeeze=False)
        for ax, p in zip(axes.ravel(), params, strict=False):
            ax.plot(mine["timestamp"], mine[p], lw=1)
            ax.set_title(f"{m}: {p}", fontsize=8)
            ax.tick_params(labelsize=6, labelrotation=30)
        for ax in axes.ravel()[len(params):]:
            ax.axis("off")
        fig.tight_layout()
        report.figure(fig, alt=f"{m} parameters per snapshot")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.0))
    for m in models:
        mine = history[history["model"] == m]
        axes[0].plot(mine["timestamp"], mine["rmse_test"], lw=1, label=m)
        axes[1].plot(mine["timestamp"], mine["inside_test"], lw=1, label=m)
    axes[0].set_ylabel("test RMSE (coin)")
    axes[1].set_ylabel("test share inside bid–ask")
    for ax in axes:
        ax.legend(fontsize=7)
        ax.tick_params(labelsize=7, labelrotation=30)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    report.figure(fig, alt="Test RMSE and share inside the bid–ask per snapshot")
