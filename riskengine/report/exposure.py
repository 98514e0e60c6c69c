"""The exposure job's report (moved out of :mod:`riskengine.jobs.exposure`)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from riskengine.report import Report


def exposure_report(summary: dict, table: pd.DataFrame, positions: pd.DataFrame, importance: pd.DataFrame,
            realised: slice) -> Report:
    st = summary["strategies"]
    rep = Report(f"Dynamic exposure — {', '.join(summary['assets'])}")
    per = summary["period"]
    rep.paragraph(
        f"Out of sample {per['first']} to {per['last']} ({per['days']} days): models re-trained every "
        f"{summary['walk_forward']['retrain_every_days']} days on the previous "
        f"{summary['walk_forward']['window_days']} days ({summary['walk_forward']['retrains']} retrains), "
        f"hyper-parameters by purged and embargoed cross-validation inside each window; fees "
        f"{summary['costs']['fee_bp']:g} bp + slippage {summary['costs']['slippage_bp']:g} bp per unit "
        f"traded; instrument {summary['instrument']}; limits {summary['limits']}.")
    rep.heading("Is it significant?")
    for m, v in summary["significance"].items():
        rep.paragraph(f"{m}: {v['statement']}. Against the others: "
                      + "; ".join(f"{b}: {s}" for b, s in v["against"].items()) + ".")
    rows = []
    for s, m in st.items():
        ci = m["sharpe_ci"] or [np.nan, np.nan]
        rows.append({"strategy": s, "ann. return": m["annual_return"], "ann. vol": m["annual_vol"],
                     "Sharpe": m["sharpe"] if m["sharpe"] is not None else np.nan,
                     "Sharpe 95% CI": f"[{ci[0]:.2f}, {ci[1]:.2f}]",
                     "Sortino": m["sortino"] if m["sortino"] is not None else np.nan,
                     "max DD": m["max_drawdown"], "CVaR 95%": m["cvar_95"], "turnover / yr": m["turnover"],
                     "costs": m["costs"], "funding": m["funding_paid"],
                     "deflated SR": m["deflated_sharpe"] if m["deflated_sharpe"] is not None else np.nan,
                     "p": m["deflated_sharpe_p"] if m["deflated_sharpe_p"] is not None else np.nan})
    rep.heading("Strategies and baselines (net of costs)")
    rep.table(pd.DataFrame(rows), float_format="{:.3g}")
    curves = {}
    for s in st:
        f = table[table["strategy"] == s].iloc[realised]
        curves[s] = (f["date"], np.cumprod(1.0 + f["return"].to_numpy()))
    rep.equity_and_drawdown(curves, alt="Equity curves and drawdowns against the baselines")
    rep.heading("Exposures over time")
    models = summary["models"]
    fig, axes = plt.subplots(len(models), 1, figsize=(10, 2.2 * len(models)), sharex=True, squeeze=False)
    for ax, m in zip(axes[:, 0], models, strict=True):
        p = positions[positions["strategy"] == m].pivot(index="date", columns="asset", values="exposure")
        for a in p.columns:
            ax.plot(p.index, p[a], lw=0.7, label=a)
        ax.set_ylabel(m)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    rep.figure(fig, alt="Exposure per asset over time, per model")
    rep.heading("Factors: out-of-sample IC and importance")
    factors = summary["factors"]
    ic_rows = []
    for f in factors:
        row = {"factor": f, "univariate IC": summary["ic"]["univariate"][f]}
        for m in models:
            row[f"IC {m}"] = summary["ic"][m][f]
            row[f"importance {m}"] = summary["importance"][m][f]
        ic_rows.append(row)
    ic_rows.append({"factor": "forecast", "univariate IC": None,
                    **{f"IC {m}": summary["ic"][m]["forecast"] for m in models}})
    rep.table(pd.DataFrame(ic_rows).fillna(np.nan), float_format="{:.3f}")
    if not importance.empty:
        fig, axes = plt.subplots(len(models), 1, figsize=(10, 2.4 * len(models)), sharex=True, squeeze=False)
        for ax, m in zip(axes[:, 0], models, strict=True):
            p = importance[importance["model"] == m].pivot(index="date", columns="factor", values="importance")
            ax.stackplot(p.index, *[p[c].to_numpy() for c in p.columns], labels=list(p.columns),
                         colors=plt.cm.tab20(np.linspace(0, 1, 20))[: len(p.columns)])
            ax.set_ylabel(m)
        axes[0, 0].legend(fontsize=6, ncol=4, loc="upper left")
        fig.tight_layout()
        rep.figure(fig, alt="Factor importance (share of mean absolute contribution) at each retrain")
    fig, ax = plt.subplots(figsize=(7, 3))
    for m in models:
        vals = [np.nan if v is None else v for v in summary["ic_decay"][m]]
        ax.plot(range(1, len(vals) + 1), vals, marker="o", label=m)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xlabel("horizon (days ahead)")
    ax.set_ylabel("IC")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    rep.figure(fig, alt="IC decay: the forecast's correlation with returns h days ahead")
    rep.heading("Risk forecasts backtested")
    vrows = []
    for s, by in summary["var_backtest"].items():
        for v in by.values():
            vrows.append({"strategy": s, "level": v["level"], "exceedances": v["exceedances"],
                          "expected": v["expected_exceedances"], "Kupiec p": v["kupiec"]["p_value"],
                          "Christoffersen ind. p": v["christoffersen_independence"]["p_value"],
                          "cond. coverage p": v["christoffersen_coverage"]["p_value"]})
    vt = pd.DataFrame(vrows)
    rep.table(vt, float_format="{:.3g}", highlight=vt["cond. coverage p"] < 0.05)
    rep.paragraph(
        "Sharpe: mean over standard deviation of daily net returns times sqrt(365); its interval is the "
        "95% stationary-bootstrap percentile interval (mean block 10 days). Deflated Sharpe: the "
        f"probability that the true Sharpe exceeds the expected maximum of {summary['trials']} no-skill "
        "trials (models; baselines count as one trial); p = 1 - DSR. IC: out-of-sample Pearson "
        "correlation, over all days and assets, with the next day's volatility-scaled return: of the "
        "forecast (what is traded), of each factor (univariate) and of each factor's contribution to the "
        "forecast divided by its standard deviation in the training window (ridge: coefficient times factor; trees: TreeSHAP; policy: gradient times "
        "input). Importance: each factor's share of the mean absolute contribution. VaR: one-day, from "
        "GARCH re-fitted at each retrain and simulated scenarios; exceedance = net return below -VaR.",
        note=True)
    return rep
