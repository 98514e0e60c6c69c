"""The hedge job's report (moved out of :mod:`riskengine.jobs.hedge`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from riskengine.report import Report

if TYPE_CHECKING:
    from riskengine.jobs.hedge import Config


def hedge_report(config: Config, summary: dict, pnl: pd.DataFrame, sample: dict) -> Report:
    report = Report("Hedge job — deep hedging against classic hedges")
    report.facts({
        "policy price": f"{summary['price']:.6g} ± {summary['price_stderr']:.2g}",
        **{f"{k} price": f"{v:.6g}" for k, v in summary["baselines"].items()},
        "train seconds": f"{summary['train_seconds']:.1f}",
        "epochs": str(summary["epochs"]),
    })
    ref = summary["reference_price"]
    report.paragraph(
        f"Model {config.model.name} {config.model.params}; {config.derivative.option} strike "
        f"{config.derivative.strike}, maturity {config.derivative.maturity}; hedged {config.hedge.steps} times with "
        f"{config.hedge.instruments} at proportional cost {config.hedge.cost}. Objective {config.objective.type}; "
        f"prices are the seller's indifference prices rho(P&L) on {config.evaluate.paths:,} fresh paths."
        + (f" Risk-neutral price without costs: {ref:.6g}." if ref is not None else ""),
    )
    rows = [{"strategy": name, "price": summary["price"] if name == "policy" else summary["baselines"][name],
             "stderr": summary["price_stderr"] if name == "policy" else summary["baseline_stderrs"][name],
             "pnl mean": summary["pnl_mean"][name], "pnl std": summary["pnl_std"][name]} for name in pnl.columns]
    report.heading("Indifference prices")
    report.table(pd.DataFrame(rows))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    axes[0].plot(summary["loss_history"], lw=0.8)
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("training loss")
    axes[0].set_title("Loss")
    lo, hi = np.quantile(pnl.to_numpy(), [0.001, 0.999])
    bins = np.linspace(lo, hi, 80)
    for name in pnl.columns:
        axes[1].hist(pnl[name].to_numpy()[:200_000], bins=bins, histtype="step", density=True, label=name)
    axes[1].set_title("Terminal P&L")
    axes[1].legend(fontsize=8)
    t = sample["hedge"].shape[0] // 2
    order = np.argsort(sample["log_moneyness"][t])
    axes[2].scatter(sample["log_moneyness"][t], sample["hedge"][t], s=3, alpha=0.4, label="policy")
    axes[2].plot(sample["log_moneyness"][t][order], sample["bs_delta"][t][order], color="k", lw=1, label="BS delta")
    axes[2].set_xlabel("log moneyness")
    axes[2].set_ylabel("hedge ratio")
    axes[2].set_title(f"Hedge at date {t} (time to maturity {sample['time_to_maturity'][t][0]:.3g})")
    axes[2].legend(fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
    report.figure(fig, alt="Loss curve, P&L histograms and hedge ratio against moneyness")
    report.paragraph(
        "The trained policy (its weights in policy.eqx, its structure in policy.json; "
        "hedging.load_policy(DIR) loads it) and the P&L of every strategy (pnl.parquet) are in this directory.",
        note=True,
    )
    return report
