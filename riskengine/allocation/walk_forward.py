"""Walk-forward training and prediction of the signal models and the exposure policy.

Decisions are taken at the close of the panel's dates ``first, first + 1, ...``. At the
retrain dates ``t0 = first, first + every, ...`` (anchored at ``first``, so a run on data
truncated after ``t`` has the same retrain dates up to ``t``) a model is trained on the
samples dated ``t0 - window_days .. t0 - 1`` (a rolling window of fixed length; the label of
the sample dated ``s`` is the return over ``(s, s + 1]``, realised by ``t0``), and used for the
decisions ``t0 .. t0 + every - 1``. Nothing dated after a decision enters it: the factors are
causal (:mod:`riskengine.allocation.factors`), the targets are realised, the training is
deterministic (LightGBM single-threaded and seeded; JAX keyed by ``fold_in(key(seed),
retrain_index)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import numpy as np
from jaxtyping import Float

from riskengine.allocation.exposure import scores_from_forecasts
from riskengine.allocation.factors import Panel
from riskengine.allocation.policy import PolicySettings, train_policy
from riskengine.allocation.signals import (
    CVSettings,
    GBTSettings,
    RidgeSettings,
    train_gbt,
    train_ridge,
)


@dataclass(frozen=True)
class WalkForwardSettings:
    first: int  # index of the first decision date
    window_days: int
    retrain_every_days: int
    cv: CVSettings = CVSettings()
    signal_scale: float = 0.1  # the forecast (next-day return / vol) that gives the full budget
    seed: int = 0


@dataclass
class WalkForwardResult:
    model: str
    first: int
    scores: Float[np.ndarray, "decisions assets"]  # in [-1, 1]: fraction of the risk budget
    forecasts: Float[np.ndarray, "decisions assets"]  # the model's output (the score for the policy)
    contributions: Float[np.ndarray, "decisions assets factors"]
    # the training window's standard deviation of each factor's contribution (per decision):
    # contributions / contribution_scale are comparable across differently shrunk models
    contribution_scale: Float[np.ndarray, "decisions factors"]
    retrains: list[dict] = field(default_factory=list)


def retrain_dates(first: int, last: int, every: int) -> list[int]:
    return list(range(first, last + 1, every))


def run_walk_forward(model: str, panel: Panel, target: Float[np.ndarray, "dates assets"], *,
                     settings: WalkForwardSettings, ridge: RidgeSettings | None = None,
                     gbt: GBTSettings | None = None, policy: PolicySettings | None = None,
                     returns: np.ndarray | None = None, budget: np.ndarray | None = None,
                     funding: np.ndarray | None = None, cost: float = 0.0, max_leverage: float = 1.0,
                     progress=None) -> WalkForwardResult:
    """Scores for the decision dates ``settings.first .. len(panel.dates) - 1``.

    ``target[s, a]``: the label of the sample (the vol-scaled return over ``(s, s + 1]``; NaN
    where unknown). The policy trains on ``returns`` (simple, over ``(s, s + 1]``), ``budget``
    and ``funding`` instead."""
    ridge = ridge or RidgeSettings()
    gbt = gbt or GBTSettings()
    policy = policy or PolicySettings()
    X = panel.values
    days, assets, k = X.shape
    first, window, every = settings.first, settings.window_days, settings.retrain_every_days
    if first - window < 0:
        raise ValueError(f"window_days: {window} days before the first decision; only {first} available")
    last = days - 1
    n_dec = last - first + 1
    scores = np.zeros((n_dec, assets))
    forecasts = np.zeros((n_dec, assets))
    contrib = np.zeros((n_dec, assets, k))
    contrib_scale = np.full((n_dec, k), np.nan)
    retrains = []
    base_key = jax.random.key(settings.seed)
    schedule = retrain_dates(first, last, every)
    for i, t0 in enumerate(schedule):
        lo = t0 - window
        stop = min(t0 + every, last + 1)
        Xw = X[lo:t0]
        # predict on a fixed shape (a whole period, zero rows past the data), so that a run on
        # truncated data evaluates the same compiled program on the same rows: bitwise equal
        Xp = np.zeros((every * assets, k))
        rows_p = (stop - t0) * assets
        Xp[:rows_p] = X[t0:stop].reshape(-1, k)
        if model in ("ridge", "gbt"):
            yw = target[lo:t0]
            ok = np.isfinite(yw)
            times = np.broadcast_to(np.arange(lo, t0)[:, None], yw.shape)[ok]
            Xs, ys = Xw[ok], yw[ok]
            if ys.size < 50:  # too little history: no position
                retrains.append({"date": panel.dates[t0], "samples": int(ys.size), "params": None,
                                 "importance": {n: 0.0 for n in panel.names}})
                continue
            if model == "ridge":
                fitted, params = train_ridge(Xs, ys, times, cv=settings.cv, settings=ridge, seed=settings.seed)
            else:
                fitted, params = train_gbt(Xs, ys, times, cv=settings.cv, settings=gbt, seed=settings.seed + i)
            pred = fitted.predict(Xp)
            c_in = fitted.contributions(Xs)
            c_out = fitted.contributions(Xp)
            s = scores_from_forecasts(pred, settings.signal_scale)
        elif model == "policy":
            key = jax.random.fold_in(base_key, i)
            pol, losses = train_policy(Xw, returns[lo:t0], budget[lo:t0], funding[lo:t0], cost=cost,
                                       max_leverage=max_leverage, key=key, settings=policy)
            import jax.numpy as jnp

            pred = np.asarray(pol.scores(jnp.asarray(Xp, jnp.float32)), np.float64)
            s = pred
            mask = np.isfinite(returns[lo:t0])
            c_in = np.asarray(pol.contributions(jnp.asarray(Xw[mask], jnp.float32)), np.float64)
            c_out = np.asarray(pol.contributions(jnp.asarray(Xp, jnp.float32)), np.float64)
            params = {"final_loss": float(losses[-1]), "first_loss": float(losses[0])}
        else:
            raise ValueError(f"models: unknown model {model!r}")
        rows = slice(t0 - first, stop - first)
        scores[rows] = s[:rows_p].reshape(stop - t0, assets)
        forecasts[rows] = pred[:rows_p].reshape(stop - t0, assets)
        contrib[rows] = c_out[:rows_p].reshape(stop - t0, assets, k)
        contrib_scale[rows] = c_in.std(axis=0)
        mag = np.abs(c_in).mean(axis=0)
        share = mag / mag.sum() if mag.sum() > 0 else mag
        retrains.append({"date": panel.dates[t0], "samples": int(c_in.shape[0]), "params": params,
                         "importance": {n: float(v) for n, v in zip(panel.names, share, strict=True)}})
        if progress is not None:
            progress(i + 1, len(schedule))
    return WalkForwardResult(model=model, first=first, scores=scores, forecasts=forecasts,
                             contributions=contrib, contribution_scale=contrib_scale, retrains=retrains)
