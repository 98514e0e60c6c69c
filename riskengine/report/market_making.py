"""The market_making job's report (moved out of :mod:`riskengine.jobs.market_making`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from riskengine.market_making import (
    MarketMakingResult,
)
from riskengine.report import Report

if TYPE_CHECKING:
    from riskengine.jobs.market_making import Config

PAPER_COLUMNS = ("spread_mean", "profit_mean", "profit_std", "final_inventory_mean", "final_inventory_std")
_LABELS = {"avellaneda_stoikov": "Avellaneda–Stoikov", "glft": "GLFT", "symmetric": "symmetric (configured)"}


def market_making_report(config: Config, summary: dict, strategy: MarketMakingResult, symmetric: MarketMakingResult,
                         *, paper_table: dict) -> Report:
    """The market-making report: quotes, inventory and profit against the symmetric benchmark,
    and the published table (``paper_table``) where the config reproduces the paper."""
    label = _LABELS[config.strategy.type]
    report = Report(f"Market making — {label} on {config.model.name}")
    report.facts({
        "strategy": label,
        "model": config.model.name,
        "paths": f"{config.simulation.paths:,}",
        "steps": str(config.simulation.num_steps),
        "profit (mean ± sd)": f"{summary['profit_mean']:.2f} ± {summary['profit_std']:.2f}",
        "symmetric profit": f"{summary['symmetric']['profit_mean']:.2f} ± {summary['symmetric']['profit_std']:.2f}",
        "seconds": f"{summary['seconds']:.2f}",
    })
    s = config.strategy
    report.paragraph(
        f"Strategy {s.model_dump(exclude_none=True)}; model {config.model.name} {summary['model']['params']}; "
        f"spot {config.market.spot}; horizon {config.simulation.horizon} in steps of {config.simulation.dt}; "
        f"fills '{config.simulation.fills}' ({config.simulation.timing}) with intensity A exp(-k delta); quoting sigma {summary['strategy_sigma']:.6g} "
        f"(from {summary['strategy_sigma_source']}). The symmetric strategy quotes around the mid with the "
        f"strategy's mean spread, on the same mid paths and fill draws.",
    )
    report.heading("Strategy against symmetric quoting")
    rows = []
    for name, stats in (("strategy: " + label, summary["strategy"]), ("symmetric, same mean spread", summary["symmetric"])):
        rows.append({"strategy": name, **{k: stats[k] for k in (*PAPER_COLUMNS, "fills_mean", "max_abs_inventory")}})
    report.table(pd.DataFrame(rows), float_format="{:.4g}")

    report.heading("Against Avellaneda & Stoikov (2008), section 4")
    paper = pd.DataFrame([
        {"gamma": gamma, "strategy": kind, **dict(zip(PAPER_COLUMNS, values, strict=True))}
        for gamma, row in paper_table.items() for kind, values in row.items()
    ])
    if summary["paper"] is not None:
        ours = pd.DataFrame([
            {"gamma": s.gamma, "strategy": "inventory (this run)", **{k: summary["strategy"][k] for k in PAPER_COLUMNS}},
            {"gamma": s.gamma, "strategy": "symmetric (this run)", **{k: summary["symmetric"][k] for k in PAPER_COLUMNS}},
        ])
        paper = pd.concat([paper[paper["gamma"] == s.gamma].assign(strategy=lambda f: f["strategy"] + " (paper)"), ours])
        report.table(paper, float_format="{:.4g}")
    else:
        report.table(paper, float_format="{:.4g}")
        report.paragraph("This run is not the paper's set-up (s = 100, T = 1, sigma = 2 binomial, dt = 0.005, "
                         "k = 1.5, A = 140, no inventory limit): the paper's table is shown for reference.", note=True)
    report.paragraph(
        "The paper's spreads are (2/gamma) ln(1 + gamma/k) without the gamma sigma^2 (T - t) term of its own "
        "formula; spread_time_term: false reproduces that. The printed gamma = 0.5 row (profit 33.92) does not "
        "follow from the paper's formulas with either spread: see benchmarks/RESULTS.md.", note=True,
    )

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    bins = np.histogram_bin_edges(np.concatenate([strategy.profit, symmetric.profit]), bins=50)
    axes[0].hist(symmetric.profit, bins=bins, alpha=0.6, label="symmetric")
    axes[0].hist(strategy.profit, bins=bins, alpha=0.6, label=label)
    axes[0].set_title("Profit at the horizon")
    bins_q = np.arange(min(strategy.final_inventory.min(), symmetric.final_inventory.min()) - 0.5,
                       max(strategy.final_inventory.max(), symmetric.final_inventory.max()) + 1.5)
    axes[1].hist(symmetric.final_inventory, bins=bins_q, alpha=0.6, label="symmetric")
    axes[1].hist(strategy.final_inventory, bins=bins_q, alpha=0.6, label=label)
    axes[1].set_title("Final inventory")
    report.figure(fig, alt="Histograms of profit and final inventory", legend_and_grid=True)

    sample = strategy.sample
    fig, axes = plt.subplots(2, 1, figsize=(11, 6), sharex=True, height_ratios=[2, 1])
    axes[0].plot(sample["time"], sample["mid"], color="k", lw=1, label="mid")
    axes[0].plot(sample["time"], sample["bid"], lw=0.8, label="bid")
    axes[0].plot(sample["time"], sample["ask"], lw=0.8, label="ask")
    axes[0].set_title(f"Path 0: mid and {label} quotes")
    axes[1].step(sample["time"], sample["inventory"], where="post", label=label)
    axes[1].step(symmetric.sample["time"], symmetric.sample["inventory"], where="post", alpha=0.7, label="symmetric")
    axes[1].set_ylabel("inventory")
    axes[1].set_xlabel("time")
    report.figure(fig, alt="A sample path of the mid, the quotes and the inventory", legend_and_grid=True)
    return report
