"""Which factors the walk-forward models used, on the realised decision days: information
coefficients (each factor alone, each model's factor contributions, its forecast), the
forecast's IC decay over the next ten days, and each factor's share of the contributions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from jaxtyping import Float

from riskengine.allocation.factors import Panel
from riskengine.allocation.signals import information_coefficient
from riskengine.allocation.walk_forward import WalkForwardResult


@dataclass
class Attribution:
    ic: dict = field(default_factory=dict)  # "univariate" and per model: {factor: IC}, and "forecast"
    ic_decay: dict = field(default_factory=dict)  # per model: IC of the forecast h = 1..10 days ahead
    importance: dict = field(default_factory=dict)  # per model: {factor: share of |contribution|}
    importance_rows: list[dict] = field(default_factory=list)  # per retrain, model and factor
    retrains: dict = field(default_factory=dict)  # per model: date, samples, chosen params


def attribute(results: dict[str, WalkForwardResult], panel: Panel, target: Float[np.ndarray, "dates assets"],
              *, first: int, realised: slice) -> Attribution:
    """``target[t]``: the label of date ``t`` (the vol-scaled return over ``(t, t + 1]``);
    ``realised``: the decision days (counted from ``first``) whose label is known."""
    out = Attribution()
    n_dec = len(panel.dates) - first
    dec = slice(first, len(panel.dates))
    realised_target = target[dec][realised]
    out.ic["univariate"] = {f: information_coefficient(panel.values[dec][realised][:, :, j].ravel(),
                                                       realised_target.ravel())
                            for j, f in enumerate(panel.names)}
    for m, res in results.items():
        c = res.contributions[realised]
        with np.errstate(invalid="ignore", divide="ignore"):
            cn = c / res.contribution_scale[realised][:, None, :]  # in each window's own units
        out.ic[m] = {f: information_coefficient(cn[:, :, j].ravel(), realised_target.ravel())
                     for j, f in enumerate(panel.names)}
        out.ic[m]["forecast"] = information_coefficient(res.forecasts[realised].ravel(), realised_target.ravel())
        out.ic_decay[m] = []
        for h in range(1, 11):  # forecast at t against the return over (t + h - 1, t + h]
            fc = res.forecasts[: n_dec - h]
            tg = target[first + h - 1: first + n_dec - 1]
            out.ic_decay[m].append(information_coefficient(fc.ravel(), tg.ravel()))
        mag = np.abs(c).mean(axis=(0, 1))
        share = mag / mag.sum() if mag.sum() > 0 else mag
        out.importance[m] = {f: float(v) for f, v in zip(panel.names, share, strict=True)}
        for r in res.retrains:
            for f, v in r["importance"].items():
                out.importance_rows.append({"date": r["date"], "model": m, "factor": f, "importance": v})
        out.retrains[m] = [{"date": str(r["date"].date()), "samples": r["samples"], "params": r["params"]}
                           for r in res.retrains]
    return out
