"""How the walk-forward strategies did, from their realised daily returns: performance
statistics (:func:`~riskengine.allocation.performance.statistics`), each model's Sharpe
against every baseline and every other model (paired bootstrap), the backtest of each day's
VaR forecast (Kupiec and Christoffersen), and a verdict in plain words per model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from riskengine.allocation.performance import DAYS_PER_YEAR, sharpe_difference, statistics
from riskengine.risk import coverage_tests


def level_tag(level: float) -> str:
    """A confidence level in column names and summary keys: ``0.975 -> "975"``."""
    return f"{level * 100:g}".replace(".", "")


def strategy_statistics(pnl_table: pd.DataFrame, strategies: list[str], models: list[str], *,
                        realised: slice, boot: np.ndarray, trials: int) -> dict[str, dict]:
    """Per strategy, the statistics of its realised returns (``trials`` configurations for a
    model's deflated Sharpe, one for a baseline), annual turnover, total costs, funding paid
    and mean gross exposure. ``pnl_table``: one row per strategy and day."""
    days = realised.stop - realised.start
    years = days / DAYS_PER_YEAR
    out = {}
    for s in strategies:
        f = pnl_table[pnl_table["strategy"] == s]
        r = f["return"].to_numpy()[realised]
        st = statistics(r, boot=boot, trials=trials if s in models else 1)
        st["turnover"] = float(f["turnover"].to_numpy()[realised].sum() / years)
        st["costs"] = float(f["cost"].to_numpy()[realised].sum())
        st["funding_paid"] = float(f["funding"].to_numpy()[realised].sum())
        st["mean_gross_exposure"] = float(f["gross_exposure"].to_numpy()[realised].mean())
        out[s] = st
    return out


def comparisons(returns: dict[str, np.ndarray], models: list[str], baselines: list[str], *,
                boot: np.ndarray) -> dict[str, dict]:
    """``{"<model>_vs_<other>": Sharpe difference}`` for each model against every later model
    and every baseline."""
    out = {}
    for i, m in enumerate(models):
        for other in list(models[i + 1:]) + list(baselines):
            out[f"{m}_vs_{other}"] = sharpe_difference(returns[m], returns[other], boot=boot)
    return out


def var_backtests(returns: dict[str, np.ndarray], var: dict[str, dict[float, np.ndarray]]) -> dict:
    """Per strategy and level: the exceedances of the forecast VaR (``var[strategy][level]``,
    one value a day, aligned with ``returns[strategy]``) and their coverage tests."""
    out = {}
    for s, r in returns.items():
        out_s = {}
        for lv, forecast in var[s].items():
            hits = r < -forecast[: len(r)]
            out_s[level_tag(lv)] = {"level": lv, "days": len(r), "exceedances": int(hits.sum()),
                                    "expected_exceedances": (1 - lv) * len(r),
                                    **coverage_tests(hits, level=lv)}
        out[s] = out_s
    return out


def verdicts(stats: dict, comparisons: dict, models: list[str]) -> dict:
    """Plain words per model: is its deflated Sharpe significant at 5%, and is its Sharpe
    different from each baseline's and each other model's (paired bootstrap interval of the
    difference)."""
    out = {}
    for m in models:
        p = stats[m]["deflated_sharpe_p"]
        against = {}
        for key, c in comparisons.items():
            a, _, b = key.partition("_vs_")
            if m not in (a, b):
                continue
            sign = 1.0 if a == m else -1.0
            other = b if a == m else a
            lo, hi = sorted((sign * c["ci"][0], sign * c["ci"][1]))
            d = sign * c["sharpe_difference"]
            word = ("higher, significant at 5%" if lo > 0 else "lower, significant at 5%" if hi < 0
                    else "not significantly different")
            against[other] = f"Sharpe difference {d:+.2f}, 95% CI [{lo:+.2f}, {hi:+.2f}]: {word}"
        sig = p is not None and p < 0.05
        out[m] = {"significant": bool(sig),
                  "statement": (f"deflated Sharpe p = {p:.3f}: "
                                + ("significant at 5%" if sig else "not significant at 5%")) if p is not None
                  else "undefined",
                  "against": against}
    return out
