"""Signal models for the walk-forward: a ridge regression and gradient-boosted trees, with
hyper-parameters chosen by purged and embargoed cross-validation inside the training window.

Each model is fitted on pooled samples ``(x_{t,a}, y_{t,a})`` (date ``t``, asset ``a``; ``y``
the next day's return scaled by the asset's realised volatility up to ``t``) and returns a
fitted model with ``predict(X)`` and ``contributions(X)``: the additive share of each factor
in the prediction (``coef_f * (x_f - mean_f)`` for ridge, TreeSHAP values for the trees), so
that the out-of-sample IC and the importance of each factor are defined the same way for
every model.

Purged k-fold (López de Prado, *Advances in Financial Machine Learning*, ch. 7): the
training dates are cut into ``folds`` contiguous blocks; for each test block the training
samples are those dated outside ``[first - purge_days, last + embargo_days]`` of the block,
so that no training label overlaps the test labels (a label dated ``t`` is the return over
``(t, t + 1]``, hence ``purge_days >= 1``) and serial correlation does not leak from a test
block into the samples that follow it.

Gradient-boosted trees: LightGBM (``lightgbm`` on PyPI: maintained by Microsoft, MIT
licence, wheels for Linux/macOS/Windows with no build step, exact TreeSHAP contributions by
``pred_contrib=True``, deterministic single-threaded training). An equinox network was the
alternative; it would need its own early-stopping machinery and gives no exact attribution.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from jaxtyping import Float, Int

MODEL_NAMES = ("ridge", "gbt", "policy")


def purged_folds(times: Int[np.ndarray, " samples"], *, folds: int, purge_days: int,
                 embargo_days: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(train_index, test_index)`` pairs over samples dated ``times`` (integer days)."""
    unique = np.unique(times)
    blocks = np.array_split(unique, folds)
    for block in blocks:
        if block.size == 0:
            continue
        lo, hi = block[0], block[-1]
        test = (times >= lo) & (times <= hi)
        train = (times < lo - purge_days) | (times > hi + embargo_days)
        if train.sum() == 0 or test.sum() == 0:
            continue
        yield np.flatnonzero(train), np.flatnonzero(test)


@dataclass(frozen=True)
class CVSettings:
    folds: int = 4
    purge_days: int = 1
    embargo_days: int = 5


def _cv_score(fit, params, X, y, times, cv: CVSettings) -> float:
    """Mean squared error of out-of-fold predictions (lower is better)."""
    err, n = 0.0, 0
    for tr, te in purged_folds(times, folds=cv.folds, purge_days=cv.purge_days, embargo_days=cv.embargo_days):
        model = fit(X[tr], y[tr], params)
        resid = y[te] - model.predict(X[te])
        err += float(resid @ resid)
        n += te.size
    return err / max(n, 1)


def _choose(fit, grid, X, y, times, cv: CVSettings):
    scores = [_cv_score(fit, p, X, y, times, cv) for p in grid]
    best = grid[int(np.argmin(scores))]
    return fit(X, y, best), best, scores


# --- ridge ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Ridge:
    coef: np.ndarray
    intercept: float
    mean: np.ndarray
    alpha: float

    def predict(self, X: Float[np.ndarray, "n factors"]) -> Float[np.ndarray, " n"]:
        return self.intercept + (X - self.mean) @ self.coef

    def contributions(self, X: Float[np.ndarray, "n factors"]) -> Float[np.ndarray, "n factors"]:
        return (X - self.mean) * self.coef


def fit_ridge(X: Float[np.ndarray, "n factors"], y: Float[np.ndarray, " n"], alpha: float, *,
              intercept: bool = True) -> Ridge:
    """``min ||y - b - X w||^2 + alpha * n * ||w||^2`` in closed form (intercept unpenalised;
    ``alpha`` is per sample, so the same value means the same shrinkage for any window).
    ``intercept=False``: ``b = 0`` and the factors are not centred (no drift forecast)."""
    n, k = X.shape
    mean = X.mean(axis=0) if intercept else np.zeros(k)
    Xc = X - mean
    yc = y - y.mean() if intercept else y
    gram = Xc.T @ Xc + alpha * n * np.eye(k)
    coef = np.linalg.solve(gram, Xc.T @ yc)
    return Ridge(coef=coef, intercept=float(y.mean()) if intercept else 0.0, mean=mean, alpha=float(alpha))


@dataclass(frozen=True)
class RidgeSettings:
    alphas: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0)
    intercept: bool = True


def train_ridge(X, y, times, *, cv: CVSettings, settings: RidgeSettings = RidgeSettings(), seed: int = 0):
    def fit(a, b, p):
        return fit_ridge(a, b, p, intercept=settings.intercept)

    model, best, scores = _choose(fit, list(settings.alphas), X, y, times, cv)
    return model, {"alpha": best}


# --- gradient-boosted trees ---------------------------------------------------------------------

@dataclass(frozen=True)
class GBTSettings:
    learning_rate: float = 0.05
    grid: tuple[tuple[int, int], ...] = ((4, 50), (4, 150), (8, 100))  # (num_leaves, n_estimators)
    min_child_samples: int = 50
    subsample: float = 0.8
    colsample: float = 0.8


@dataclass
class GBT:
    booster: object
    params: dict = field(default_factory=dict)

    def predict(self, X):
        return self.booster.predict(np.asarray(X, np.float64), num_threads=1)

    def contributions(self, X):
        c = self.booster.predict(np.asarray(X, np.float64), pred_contrib=True, num_threads=1)
        return np.asarray(c)[:, :-1]  # the last column is the expected value


def fit_gbt(X, y, *, num_leaves: int, n_estimators: int, settings: GBTSettings, seed: int) -> GBT:
    import lightgbm as lgb

    params = {
        "objective": "regression", "learning_rate": settings.learning_rate, "num_leaves": num_leaves,
        "min_data_in_leaf": settings.min_child_samples, "bagging_fraction": settings.subsample,
        "bagging_freq": 1, "feature_fraction": settings.colsample, "lambda_l2": 1.0,
        "seed": seed, "deterministic": True, "force_row_wise": True, "num_threads": 1, "verbosity": -1,
    }
    data = lgb.Dataset(np.asarray(X, np.float64), label=np.asarray(y, np.float64), free_raw_data=True,
                       params={"verbosity": -1, "max_bin": 63})
    booster = lgb.train(params, data, num_boost_round=n_estimators)
    return GBT(booster=booster, params={"num_leaves": num_leaves, "n_estimators": n_estimators})


def train_gbt(X, y, times, *, cv: CVSettings, settings: GBTSettings = GBTSettings(), seed: int = 0):
    def fit(a, b, p):
        return fit_gbt(a, b, num_leaves=p[0], n_estimators=p[1], settings=settings, seed=seed)

    model, best, _ = _choose(fit, list(settings.grid), X, y, times, cv)
    return model, {"num_leaves": best[0], "n_estimators": best[1]}


def information_coefficient(pred: Float[np.ndarray, " n"], realised: Float[np.ndarray, " n"]) -> float | None:
    """Pearson correlation of a forecast with the realised outcome (``None`` when either is
    constant or there are fewer than 10 pairs)."""
    ok = np.isfinite(pred) & np.isfinite(realised)
    p, r = pred[ok], realised[ok]
    if p.size < 10 or p.std() == 0 or r.std() == 0:
        return None
    return float(np.corrcoef(p, r)[0, 1])

