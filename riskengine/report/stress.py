"""The stress job's report: key figures, limit breaches, the simulated P&L distribution
with VaR and ES by every method, Euler contributions, Greeks, scenarios, margin and
liquidation."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from jaxtyping import Float
from matplotlib.ticker import FuncFormatter

from riskengine.report.html import Report

__all__ = ["stress_report"]

_MEASURES = (("var", "VaR"), ("es", "ES"))


def _money(x: float) -> str:
    """USD amount with thousands separators, no decimals."""
    return f"{x:,.0f}"


def stress_report(
    summary: dict, pnl: Float[np.ndarray, "paths horizons"], *, horizons_days: Sequence[int], confidence: float
) -> Report:
    """The stress job's HTML report (:class:`Report`) from its ``summary`` (the figures of
    summary.json) and the Monte Carlo P&L per path and horizon (``horizons_days``, days);
    ``confidence`` is that of the Monte Carlo intervals."""
    report = Report(f"Overnight stress — book as of {summary['asof']}")
    first = f"{horizons_days[0]}d"
    facts = {"positions": str(summary["positions"]), "paths": f"{summary['paths']:,}",
             "book value (USD)": _money(summary["base_value"])}
    for measure, name in _MEASURES:
        for level, v in summary[measure][first].items():
            facts[f"{name} {level} {first}"] = _money(v)
    facts["limit breaches"] = str(len(summary["breaches"]))
    report.facts(facts)

    report.heading("Limit breaches")
    if summary["breaches"]:
        report.table(pd.DataFrame(summary["breaches"]), highlight=pd.Series([True] * len(summary["breaches"])))
    else:
        report.paragraph("No limit is breached.")
    _distribution(report, summary, pnl, horizons_days=horizons_days, confidence=confidence)
    _contributions(report, summary["contributions"][first], first)

    report.heading("Greeks (automatic differentiation of the full revaluation)")
    greek_rows = [{"underlying": u, **g} for u, g in summary["greeks"].items() if isinstance(g, dict)]
    report.table(pd.DataFrame(greek_rows), float_format="{:,.2f}")
    report.paragraph("delta in coins (delta_usd in USD per 100% move), gamma per USD of spot, vega per 1.00 of "
                     "implied vol, theta in USD per day.", note=True)
    if summary["scenarios"]:
        _scenarios(report, summary)

    report.heading("Margin and liquidation")
    margin = pd.DataFrame([{"venue": k, **v} for k, v in summary["margin"].items()])
    report.table(margin, float_format="{:,.3f}")
    if summary["isolated"]:
        report.table(pd.DataFrame(summary["isolated"]), float_format="{:,.3f}")
    report.paragraph("liquidation_move_down/up: the common relative move of the venue's underlyings at which the "
                     "cross account's equity falls to its maintenance margin (futures, perpetuals and collateral).",
                     note=True)
    return report


def _distribution(report: Report, summary: dict, pnl: np.ndarray, *, horizons_days: Sequence[int],
                  confidence: float) -> None:
    """P&L histograms with the Monte Carlo VaR and ES per horizon, and the table of VaR and ES
    by every method."""
    report.heading("Simulated P&L distribution")
    fig, axes = plt.subplots(1, len(horizons_days), figsize=(5.5 * len(horizons_days), 3.8), squeeze=False)
    for j, h in enumerate(horizons_days):
        ax = axes[0, j]
        ax.hist(pnl[:, j], bins=120, color="#4c72b0", alpha=0.8)
        for level, v in summary["var"][f"{h}d"].items():
            ax.axvline(-v, color="#dd8452", ls="--", label=f"VaR {level}: {_money(v)}")
        for level, v in summary["es"][f"{h}d"].items():
            ax.axvline(-v, color="#c44e52", ls="-", label=f"ES {level}: {_money(v)}")
        ax.set_title(f"P&L over {h} day(s), USD")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1e3:,.0f}k"))
        ax.legend(fontsize=8)
    report.figure(fig, alt="P&L histograms with VaR and ES")
    nan, fhs = float("nan"), summary.get("filtered_historical") or {}
    rows = []
    for hk in summary["var"]:
        methods = summary["methods"][hk]
        for measure, name in _MEASURES:
            for level, v in summary[measure][hk].items():
                ci = summary[f"{measure}_ci"][hk][level]
                rows.append({"horizon": hk, "measure": f"{name} {level}", "Monte Carlo": v,
                             "CI low": ci["lower"], "CI high": ci["upper"],
                             "historical": methods.get("historical", {}).get(measure, {}).get(level, nan),
                             "filtered historical": fhs.get(hk, {}).get(measure, {}).get(level, nan),
                             "delta-normal": methods["delta_normal"][measure][level],
                             "Cornish–Fisher": methods["cornish_fisher"].get(measure, {}).get(level, nan)})
    report.table(pd.DataFrame(rows), float_format="{:,.0f}")
    report.paragraph(f"Monte Carlo intervals at {confidence:.0%} confidence (order statistics for VaR, "
                     "asymptotic normal for ES). Losses are positive.", note=True)
    if fhs:
        report.paragraph(f"Filtered historical simulation: {fhs['model']} ({fhs['distribution']}) per underlying on "
                         f"{fhs['days']} days of history, residual dates bootstrapped jointly, {fhs['paths']:,} paths; "
                         "spots moved, implied vols and time held as in the historical method.", note=True)


def _contributions(report: Report, contrib: dict, horizon: str) -> None:
    """The Euler contributions to the first ES (else the first measure) over ``horizon``, by
    underlying and for the largest positions."""
    report.heading("Where the risk comes from (Euler contributions)")
    measure = next((k for k in contrib if k.startswith("es")), next(iter(contrib)))
    by_u = contrib[measure]["by_underlying"]
    by_p = pd.Series(contrib[measure]["by_position"]).sort_values(key=np.abs, ascending=False).head(15)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    axes[0].bar(list(by_u), list(by_u.values()), color="#55a868")
    axes[0].set_title(f"{measure} {horizon} by underlying (USD)")
    axes[1].barh(by_p.index[::-1], by_p.values[::-1], color="#8172b3")
    axes[1].set_title(f"{measure} {horizon}: largest position contributions")
    report.figure(fig, alt="Contributions to expected shortfall")
    report.paragraph("A position's P&L includes the collateral posted on its row (coin collateral moves with "
                     "its coin).", note=True)


def _scenarios(report: Report, summary: dict) -> None:
    """Scenario P&L, worst first, and the stressed VaR."""
    report.heading("Stress scenarios")
    sc = pd.DataFrame([{"scenario": k, "kind": v["kind"], "P&L (USD)": v["pnl"]} for k, v in summary["scenarios"].items()])
    sc = sc.sort_values("P&L (USD)")
    fig, ax = plt.subplots(figsize=(10, 0.35 * len(sc) + 1))
    ax.barh(sc["scenario"], sc["P&L (USD)"], color=np.where(sc["P&L (USD)"] < 0, "#c44e52", "#55a868"))
    ax.set_title("Scenario P&L (USD)")
    report.figure(fig, alt="Scenario P&L")
    report.table(sc, float_format="{:,.0f}")
    if summary["stressed_var"]:
        report.paragraph(f"Stressed VaR with shocked correlations: {summary['stressed_var']}")
