"""The backtest job's report (moved out of :mod:`riskengine.jobs.backtest`)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from riskengine.report import Report


def backtest_report(summary: dict, table: pd.DataFrame, names: list[str]) -> Report:
    st = summary["strategies"]
    report = Report(f"Walk-forward backtest — {', '.join(names)}")
    s = st["strategy"]
    report.facts({
        "final equity": f"{s['final_equity']:.3f}",
        "annualised return": f"{100 * s['annualised_return']:.1f}%",
        "Sharpe": f"{s['sharpe']:.2f}" if s["sharpe"] is not None else "—",
        "max drawdown": f"{100 * s['max_drawdown']:.1f}%",
        f"VaR {summary['var_level']:g} exceedances": f"{s['var']['exceedances']} / {s['var']['expected_exceedances']:.1f} expected",
        "Kupiec p": f"{s['var']['kupiec']['p_value']:.3f}",
    })
    f = summary["forecast"]
    report.paragraph(
        f"{summary['period']['first']} to {summary['period']['last']} ({summary['period']['days']} days) "
        f"from {summary['history']}; re-estimated ({f['method']}"
        f"{', ' + f['kind'] + '/' + f['dist'] if f['method'] == 'garch' else ''}) on "
        f"{summary['window_days']} days and rebalanced every {summary['rebalance_days']} days "
        f"({summary['rebalances']} rebalances); {summary['paths']} simulated one-day scenarios per "
        f"rebalance; objective {summary['objective']['type']} at {summary['objective']['alpha']}; "
        f"proportional costs {summary['costs']['proportional']:g}.")
    rows = []
    for k, m in st.items():
        v = m["var"]
        rows.append({
            "strategy": k, "final equity": m["final_equity"], "ann. return": m["annualised_return"],
            "ann. vol": m["annualised_vol"], "Sharpe": m["sharpe"] if m["sharpe"] is not None else np.nan,
            "max drawdown": m["max_drawdown"], "turnover / yr": m["turnover_annualised"], "costs": m["costs"],
            "exceedances": v["exceedances"], "expected": v["expected_exceedances"],
            "Kupiec p": v["kupiec"]["p_value"], "Christoffersen ind. p": v["christoffersen_independence"]["p_value"],
            "cond. coverage p": v["christoffersen_coverage"]["p_value"],
        })
    rows = pd.DataFrame(rows)
    report.heading("Strategy and baselines")
    report.table(rows, float_format="{:.4g}", highlight=rows["cond. coverage p"] < 0.05)
    report.equity_and_drawdown({k: (table["date"], table[f"{k}_equity"]) for k in st},
                               alt="Equity curves and drawdowns of the strategy and the baselines")
    report.heading(f"Realised return against the forecast one-day VaR {summary['var_level']:g}")
    fig, ax = plt.subplots(figsize=(10, 3.6))
    ax.plot(table["date"], table["strategy_return"], lw=0.6, color="tab:blue", label="realised return")
    ax.plot(table["date"], -table["strategy_var"], lw=1.0, color="tab:red", label="-VaR forecast")
    hits = table["strategy_exceedance"]
    ax.plot(table["date"][hits], table["strategy_return"][hits], "x", color="k", label="exceedance")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    report.figure(fig, alt="Daily realised return of the strategy with its forecast VaR and the exceedances")
    fig, ax = plt.subplots(figsize=(10, 2.8))
    ax.stackplot(table["date"], *[table[f"strategy_weight_{a}"] for a in names], labels=names)
    ax.set_ylabel("weights")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    report.figure(fig, alt="The strategy's weights over time")
    report.paragraph(
        "Exceedance: realised portfolio return (before costs) below minus the forecast VaR. Kupiec: "
        "proportion of failures (chi2, 1 dof); Christoffersen: independence of consecutive "
        "exceedances (chi2, 1 dof) and conditional coverage (chi2, 2 dof); small p-values reject "
        "the VaR model. Returns are net of costs in the equity curve; Sharpe uses a zero rate; "
        "annualisation by 365 days.", note=True)
    return report
