"""Value at risk and expected shortfall of a Monte Carlo (or any empirical) P&L sample.

Conventions used throughout :mod:`riskengine.risk`:

- A P&L array holds *gains*: negative numbers are losses.
- ``level`` is the confidence level ``alpha`` (e.g. ``0.99``); ``beta = 1 - alpha`` is the
  tail probability.
- VaR and ES are reported as *positive* numbers meaning losses.

With the sample sorted ascending, ``p(1) <= ... <= p(n)``, and equal weights ``1/n``:

    VaR = -p(k),   k = ceil(n * beta)          (the lower beta-quantile of the P&L)

    ES  = -( sum_{i < k} p(i) / n  +  (beta - (k - 1) / n) * p(k) ) / beta

ES is the Acerbi–Tasche expected shortfall, ``ES = (1/beta) * integral_0^beta VaR_u du``:
the mean of the worst ``beta`` of the probability mass, where the path at the VaR carries the
fractional atom ``beta - (k - 1)/n`` in ``(0, 1/n]``. It is coherent, equals the plain
tail average when ``n * beta`` is an integer, and ``ES >= VaR`` always holds. With
``weights`` (likelihood ratios, scenario probabilities; normalised to sum to one) the same
definitions hold with cumulative weights in place of ``i / n``.

``n * beta`` within a relative ``1e-9`` of an integer counts as that integer (so that
``1 - 0.99`` rounding to ``0.010000000000000009`` does not move the rank by one).

Ties at the VaR share the fractional atom in proportion to their weights
(:func:`tail_weights`), so the tail does not depend on the sort order; this is what makes the
Euler contributions of :mod:`riskengine.risk.contributions` well defined.

The functions work on numpy arrays (a JAX array is converted): the sample fits in memory and
the unweighted path costs one ``np.partition`` (linear time), the weighted one a sort. They
reduce over the *last* axis, so a ``[batch, paths]`` array gives one number per row.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from jaxtyping import ArrayLike, Float

__all__ = [
    "expected_shortfall",
    "level_key",
    "tail_weights",
    "value_at_risk",
    "var_and_es",
    "var_and_es_by_level",
]

# Relative tolerance on ``n * beta`` (and on cumulative weights against ``beta``).
_RTOL = 1e-9


def check_level(level: float) -> float:
    """``level`` as a float in (0, 1), or a ValueError."""
    value = float(level)
    if not (0.0 < value < 1.0) or not math.isfinite(value):
        raise ValueError(f"level: must lie strictly between 0 and 1, got {level!r}")
    return value


def as_sample(pnl: ArrayLike, name: str = "pnl") -> np.ndarray:
    """``pnl`` as a float64 array of at least one dimension, non-empty and finite."""
    x = np.asarray(pnl, dtype=np.float64)
    if x.ndim == 0:
        raise ValueError(f"{name}: must have at least one dimension (paths), got a scalar")
    if x.shape[-1] == 0:
        raise ValueError(f"{name}: the paths axis (last) is empty")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: contains NaN or infinite values")
    return x


def normalised_weights(weights: ArrayLike | None, shape: tuple[int, ...]) -> np.ndarray | None:
    """Non-negative ``weights`` broadcast to ``shape`` and normalised to sum to one over the
    last axis; None stays None (equal weights)."""
    if weights is None:
        return None
    w = np.asarray(weights, dtype=np.float64)
    try:
        w = np.broadcast_to(w, shape)
    except ValueError as err:
        raise ValueError(
            f"weights: shape {w.shape} does not broadcast to the sample {shape}"
        ) from err
    if not np.all(np.isfinite(w)) or np.any(w < 0.0):
        raise ValueError("weights: must be finite and non-negative")
    total = w.sum(axis=-1, keepdims=True)
    if np.any(total <= 0.0):
        raise ValueError("weights: must have a positive sum along the paths axis")
    return w / total


def tail_rank(num_paths: int, beta: float) -> int:
    """The rank ``k = ceil(n * beta)`` (1-based, clipped to ``[1, n]``) of the VaR scenario."""
    k = math.ceil(num_paths * beta * (1.0 - _RTOL))
    return min(max(k, 1), num_paths)


def _quantile(x: np.ndarray, w: np.ndarray | None, beta: float) -> np.ndarray:
    """The lower ``beta``-quantile of the P&L along the last axis (shape ``x.shape[:-1]``)."""
    if w is None:
        k = tail_rank(x.shape[-1], beta)
        return np.partition(x, k - 1, axis=-1)[..., k - 1]
    order = np.argsort(x, axis=-1, kind="stable")
    xs = np.take_along_axis(x, order, axis=-1)
    cw = np.cumsum(np.take_along_axis(w, order, axis=-1), axis=-1)
    idx = np.argmax(cw >= beta * (1.0 - _RTOL), axis=-1)  # the first index reaching beta
    return np.take_along_axis(xs, idx[..., None], axis=-1)[..., 0]


def split_tail(x: np.ndarray, w: np.ndarray | None, beta: float):
    """(Internal, shared by the package.) ``(v, below, at, mass_below)``: the quantile
    ``v`` (keepdims), the masks of the paths strictly below and equal to it, and the
    probability mass strictly below it."""
    v = _quantile(x, w, beta)[..., None]
    below = x < v
    at = x == v
    if w is None:
        mass_below = below.sum(axis=-1, keepdims=True) / x.shape[-1]
    else:
        mass_below = np.where(below, w, 0.0).sum(axis=-1, keepdims=True)
    return v, below, at, mass_below


def es_from_tail(x, w, beta, v, below, mass_below) -> np.ndarray:
    """(Internal.) The ES from :func:`split_tail`'s output; shape ``x.shape[:-1]``."""
    if w is None:
        sum_below = np.where(below, x, 0.0).sum(axis=-1, keepdims=True) / x.shape[-1]
    else:
        sum_below = np.where(below, w * x, 0.0).sum(axis=-1, keepdims=True)
    # the atom beta - mass_below is in (0, weight of the tied paths]; ES >= VaR since every
    # P&L below v is <= v.
    return (-(sum_below + (beta - mass_below) * v) / beta)[..., 0]


def value_at_risk(
    pnl: Float[ArrayLike, "*batch paths"],
    *,
    level: float,
    weights: Float[ArrayLike, "*batch paths"] | None = None,
) -> Float[np.ndarray, "*batch"]:
    """Empirical VaR at confidence ``level``: ``-p(ceil(n * (1 - level)))`` (see the module
    docstring), a positive number for a loss. Reduces over the last axis."""
    beta = 1.0 - check_level(level)
    x = as_sample(pnl)
    w = normalised_weights(weights, x.shape)
    return -_quantile(x, w, beta)[()]


def expected_shortfall(
    pnl: Float[ArrayLike, "*batch paths"],
    *,
    level: float,
    weights: Float[ArrayLike, "*batch paths"] | None = None,
) -> Float[np.ndarray, "*batch"]:
    """Empirical (Acerbi–Tasche) ES at confidence ``level``: the mean loss over the worst
    ``1 - level`` of the probability mass, including the fractional atom at the VaR.
    Always ``>=`` :func:`value_at_risk`. Reduces over the last axis."""
    return var_and_es(pnl, level=level, weights=weights)[1]


def var_and_es(
    pnl: Float[ArrayLike, "*batch paths"],
    *,
    level: float,
    weights: Float[ArrayLike, "*batch paths"] | None = None,
) -> tuple[Float[np.ndarray, "*batch"], Float[np.ndarray, "*batch"]]:
    """``(VaR, ES)`` from one pass over the sample (one partition or sort)."""
    beta = 1.0 - check_level(level)
    x = as_sample(pnl)
    w = normalised_weights(weights, x.shape)
    v, below, _, mass_below = split_tail(x, w, beta)
    es = es_from_tail(x, w, beta, v, below, mass_below)
    return -v[..., 0][()], es[()]


def level_key(level: float) -> str:
    """The key of a confidence level in summaries and reports: ``0.99 -> "0.99"``."""
    return f"{level:g}"


def var_and_es_by_level(
    pnl: Float[ArrayLike, " paths"],
    *,
    var_levels: Iterable[float] = (),
    es_levels: Iterable[float] = (),
) -> dict[str, dict[str, float]]:
    """``{"var": {key: VaR}, "es": {key: ES}}`` of one P&L sample at each level (keys from
    :func:`level_key`; no levels give an empty dict): the figures a summary reports per
    horizon."""
    return {
        "var": {level_key(a): float(value_at_risk(pnl, level=a)) for a in var_levels},
        "es": {level_key(a): float(expected_shortfall(pnl, level=a)) for a in es_levels},
    }


def tail_weights(
    pnl: Float[ArrayLike, "*batch paths"],
    *,
    level: float,
    weights: Float[ArrayLike, "*batch paths"] | None = None,
) -> Float[np.ndarray, "*batch paths"]:
    """The probability mass each path carries in the ES tail; sums to ``1 - level`` over
    the last axis, and ``ES = -sum(tail * pnl) / (1 - level)`` exactly.

    Paths strictly below the VaR P&L carry their full weight; the paths *at* it share the
    fractional atom ``(1 - level) - mass_below`` in proportion to their weights; the rest
    carry zero.
    """
    beta = 1.0 - check_level(level)
    x = as_sample(pnl)
    w = normalised_weights(weights, x.shape)
    _, below, at, mass_below = split_tail(x, w, beta)
    if w is None:
        w = np.full(x.shape, 1.0 / x.shape[-1])
    mass_at = np.where(at, w, 0.0).sum(axis=-1, keepdims=True)
    return np.where(below, w, 0.0) + np.where(at, w * (beta - mass_below) / mass_at, 0.0)
