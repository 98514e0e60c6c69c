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

__all__ = ["liquidation_lines", "stress_report"]

_MEASURES = (("var", "VaR"), ("es", "ES"))


def _money(x: float) -> str:
    """USD amount with thousands separators, no decimals."""
    return f"{x:,.0f}"


def stress_report(
    summary: dict, pnl: Float[np.ndarray, "paths horizons"], *, horizons_days: Sequence[int], confidence: float,
    curve: tuple[np.ndarray, dict[str, np.ndarray]] | None = None,
) -> Report:
    """The stress job's HTML report (:class:`Report`) from its ``summary`` (the figures of
    summary.json) and the Monte Carlo P&L per path and horizon (``horizons_days``, days);
    ``confidence`` is that of the Monte Carlo intervals; ``curve``: each account's
    probability of liquidation by every simulation step (``(days, {account: [steps]})``)."""
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

    _liquidation(report, summary, horizons_days=horizons_days, curve=curve)
    report.heading("Margin today")
    margin = pd.DataFrame([{"venue": k, **v} for k, v in summary["margin"].items()])
    report.table(margin, float_format="{:,.3f}")
    if summary["isolated"]:
        report.table(pd.DataFrame(summary["isolated"]), float_format="{:,.3f}")
    report.paragraph("liquidation_move_down/up: the common relative move of every coin price at which the "
                     "cross account's margin equity falls to its maintenance margin (futures, perpetuals and "
                     "collateral after the venue's haircuts, maintenance by the venue's notional tiers).", note=True)
    return report


def _liquidation(report: Report, summary: dict, *, horizons_days: Sequence[int],
                 curve: tuple[np.ndarray, dict[str, np.ndarray]] | None) -> None:
    """Accounts ranked by liquidation probability, their liquidation price beside the spot,
    the probability against the horizon, and the effect on VaR (held to horizon beside)."""
    liq = summary.get("liquidation") or {}
    report.heading("Liquidations along the paths")
    if not liq.get("accounts"):
        report.paragraph("No futures or perpetual position is margined: nothing can be liquidated."
                         if liq.get("path_wise", True) else "Path-wise liquidation is off (liquidation.path_wise).")
        return
    last = f"{horizons_days[-1]}d"
    rows = []
    for acc in liq["accounts"]:
        row = {"account": acc["account"], "venue": acc["venue"], "mode": acc["mode"], "underlying": acc["underlying"],
               "spot": acc["spot"], "liquidation price": acc["liquidation_price"], "distance": acc["distance"]}
        for h in horizons_days:
            row[f"P(liq) {h}d"] = acc["probability"][f"{h}d"]
        row[f"E[time | liq] {last} (days)"] = acc["expected_time_days"][last]
        row[f"E[loss | liq] {last} (USD)"] = acc["expected_loss_given_liquidation"][last]
        rows.append(row)
    table = pd.DataFrame(rows).astype(object).where(lambda f: f.notna(), "none")
    report.table(table, float_format="{:,.6g}", highlight=pd.Series([r[f"P(liq) {last}"] > 0.01 for r in rows]))
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    shown = [a for a in liq["accounts"] if a["probability"][last] > 0][:8]
    for acc in shown:
        p = [acc["probability"][f"{h}d"] for h in horizons_days]
        se = [acc["probability_se"][f"{h}d"] for h in horizons_days]
        line = ax.errorbar(horizons_days, p, yerr=[3 * e for e in se], marker="o", capsize=3, ls="none",
                           label=acc["account"])
        if curve is not None:  # by the end of every simulation step (lines join the steps)
            ax.plot(np.concatenate([[0.0], curve[0]]), np.concatenate([[0.0], curve[1][acc["account"]]]),
                    color=line[0].get_color(), lw=1.2)
    ax.set_xlabel("horizon (days)")
    ax.set_ylabel("probability of liquidation")
    ax.set_title("Liquidation probability against horizon (dots: horizons, bars: 3 s.e.)")
    if shown:
        ax.legend(fontsize=8)
    report.figure(fig, alt="Liquidation probability against horizon")
    held = summary.get("held_to_horizon", {})
    effect = [{"horizon": hk, "measure": f"{name} {level}", "with liquidations": v,
               "held to horizon": held.get(measure, {}).get(hk, {}).get(level, float("nan"))}
              for measure, name in _MEASURES for hk, levels in summary[measure].items() for level, v in levels.items()]
    report.table(pd.DataFrame(effect), float_format="{:,.0f}")
    bridge = "with the Brownian-bridge probability of crossing between steps" if liq["bridge"] else "at step ends only"
    report.paragraph(f"Accounts are checked at every simulation step ({liq['steps_per_day']} a day), {bridge}. An "
                     "isolated position that is liquidated loses its margin and the venue's fee; a cross account's "
                     "positions close at that step and pay the fee. Liquidation price: the account's main underlying "
                     "moved alone, other prices fixed (none: not within -99.9% .. +900%).", note=True)


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
    sc = pd.DataFrame([{"scenario": k, "kind": v["kind"], "P&L (USD)": v["pnl"],
                        "held to horizon (USD)": v.get("pnl_held_to_horizon", v["pnl"]),
                        "liquidated": ", ".join(f"{x['account']} ({x['at']})" for x in v.get("liquidated", []))}
                       for k, v in summary["scenarios"].items()])
    sc = sc.sort_values("P&L (USD)")
    fig, ax = plt.subplots(figsize=(10, 0.35 * len(sc) + 1))
    ax.barh(sc["scenario"], sc["P&L (USD)"], color=np.where(sc["P&L (USD)"] < 0, "#c44e52", "#55a868"))
    ax.set_title("Scenario P&L (USD)")
    report.figure(fig, alt="Scenario P&L")
    report.table(sc, float_format="{:,.0f}")
    if summary["stressed_var"]:
        report.paragraph(f"Stressed VaR with shocked correlations: {summary['stressed_var']}")


def liquidation_lines(summary: dict, *, rows: int = 8) -> str:
    """The liquidation table as text (the accounts most likely to be liquidated first):
    what ``riskengine run`` prints after a stress run."""
    liq = summary.get("liquidation") or {}
    accounts = liq.get("accounts") or []
    if not accounts:
        return "liquidation: no margined futures or perpetual position" if liq.get("path_wise", True) else \
            "liquidation: path-wise liquidation is off"
    keys = list(accounts[0]["probability"])
    price = lambda x: "none" if x is None else f"{x:,.6g}"  # noqa: E731
    head = f"{'account':<22} {'venue':<9} {'spot':>10} {'liq. price':>11} " + " ".join(f"{'P ' + k:>8}" for k in keys)
    lines = [f"liquidation risk ({len(accounts)} margin accounts, most likely first; details in report.html):", head]
    for acc in accounts[:rows]:
        lines.append(f"{acc['account'][:22]:<22} {acc['venue'][:9]:<9} {price(acc['spot']):>10} "
                     f"{price(acc['liquidation_price']):>11} " + " ".join(f"{acc['probability'][k]:>8.2%}" for k in keys))
    if len(accounts) > rows:
        lines.append(f"... and {len(accounts) - rows} more")
    return "\n".join(lines)
