"""Filtered historical simulation (FHS; Barone-Adesi, Giannopoulos and Vosper 1999).

Per underlying, a GARCH(1,1) or GJR-GARCH(1,1) (normal or Student-t likelihood) is fitted to
the daily log returns (or its parameters are given, e.g. read from a calibrate job's output
with :func:`riskengine.calibration.load_garch`) and the history is filtered: conditional
variances ``sigma_t^2`` and standardised residuals ``z_t = (r_t - mu) / sigma_t``. Scenarios
then bootstrap residual *dates* (all underlyings' residuals of one date together, which keeps
their cross-sectional dependence) and run the variance recursion forward from the last
filtered variance (the one-step forecast ``sigma_{n+1}^2``):

    r_{n+d} = mu + sigma_{n+d} z*_d,   sigma_{n+d+1}^2 = omega + (alpha + gamma 1{eps<0}) eps^2 + beta sigma_{n+d}^2,

with ``z*_d`` the residual row of a date drawn uniformly (with replacement) for day ``d`` of
each path. The output is the cumulative log return over each horizon; the caller revalues
its book on ``spot * exp(R_h)``.

Randomness: one key; batch ``b`` of ``batch_size`` paths uses ``fold_in(key, b)``, so a
path's scenario does not depend on how many paths are asked for. The simulation is one
``lax.scan`` over days inside ``jit``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from riskengine.calibration.garch import (
    GarchParams,
    filter_garch,
    fit_garch,
    garch_parameter_names,
    gjr_variance,
)

__all__ = ["FilteredHistory", "filter_history", "simulate_filtered_history"]

_KIND = {"garch": "garch", "gjr": "gjr", "gjr_garch": "gjr"}


@dataclasses.dataclass(frozen=True)
class FilteredHistory:
    """GARCH filters of several underlyings over common dates."""

    names: list[str]
    kind: list[str]  # garch | gjr, per underlying
    dist: list[str]  # normal | t, per underlying
    params: list[dict[str, float]]  # mu, omega, alpha, gamma (0 for garch), beta (+ nu)
    standard_errors: list[dict[str, float]]
    source: list[str]  # "fitted" or the params file read
    converged: list[bool]
    residuals: np.ndarray  # [days, underlyings] standardised residuals
    variance: np.ndarray  # [days, underlyings] filtered sigma_t^2
    next_variance: np.ndarray  # [underlyings] sigma_{n+1}^2

    def array(self, name: str) -> np.ndarray:
        return np.asarray([p.get(name, 0.0) for p in self.params], np.float64)

    def to_dict(self) -> dict:
        return {
            u: {"model": "gjr_garch" if k == "gjr" else "garch", "distribution": d, "params": dict(p),
                "standard_errors": dict(se), "source": s, "converged": c,
                "next_day_vol": float(np.sqrt(v)), "residual_std": float(np.std(self.residuals[:, i])),
                "days": int(self.residuals.shape[0])}
            for i, (u, k, d, p, se, s, c, v) in enumerate(zip(
                self.names, self.kind, self.dist, self.params, self.standard_errors, self.source,
                self.converged, self.next_variance, strict=True))
        }


def filter_history(
    returns: Float[np.ndarray, "days underlyings"],
    *,
    names: Sequence[str],
    kind: str = "gjr",
    dist: str = "t",
    given: Mapping[str, GarchParams] | None = None,
) -> FilteredHistory:
    """Fit (or take from ``given``) a GARCH filter per column of daily log ``returns`` and
    standardise the residuals. Identical columns (a proxy) are fitted once."""
    r = np.asarray(returns, np.float64)
    if r.ndim != 2 or r.shape[1] != len(names):
        raise ValueError(f"returns must be [days, {len(names)}], got {r.shape}")
    kind = _KIND[kind]
    given = dict(given or {})
    fits: dict[bytes, object] = {}
    out = {k: [] for k in ("kind", "dist", "params", "standard_errors", "source", "converged")}
    residuals, variance, next_var = [], [], []
    for i, u in enumerate(names):
        column = r[:, i]
        if u in given:
            g = given[u]
            params = {n: g.params[n] for n in garch_parameter_names(g.kind, g.dist)}
            var, nxt = filter_garch(params, column, kind=g.kind)
            k, d, se, source, ok = g.kind, g.dist, dict(g.standard_errors), g.source or "given", True
        else:
            key = column.tobytes()
            if key not in fits:
                fits[key] = fit_garch(column, kind=kind, dist=dist)
            fit = fits[key]
            params, var, nxt = dict(fit.params), fit.conditional_vol**2, fit.next_variance
            k, d, se, source, ok = kind, dist, dict(fit.stderr), "fitted", bool(fit.converged)
        params.setdefault("gamma", 0.0)
        residuals.append((column - params["mu"]) / np.sqrt(var))
        variance.append(var)
        next_var.append(nxt)
        for field, value in zip(out, (k, d, params, se, source, ok), strict=True):
            out[field].append(value)
    return FilteredHistory(names=list(names), residuals=np.stack(residuals, axis=1),
                           variance=np.stack(variance, axis=1), next_variance=np.asarray(next_var), **out)


@functools.partial(jax.jit, static_argnames=("horizons", "batch_size", "num_batches"))
def _simulate(key, first_batch, residuals, mu, omega, alpha, gamma, beta, var0, *,
              horizons: tuple[int, ...], batch_size: int, num_batches: int):
    days = max(horizons)
    pick = jnp.asarray([h - 1 for h in horizons])

    def batch(b):
        k = jax.random.fold_in(key, b)
        dates = jax.random.randint(k, (days, batch_size), 0, residuals.shape[0])
        z = residuals[dates]  # [days, batch, U]: one date's residuals for every underlying

        def step(carry, z_d):
            var, total = carry
            eps = jnp.sqrt(var) * z_d
            total = total + mu + eps
            var = gjr_variance(var, eps, omega=omega, alpha=alpha, gamma=gamma, beta=beta)
            return (var, total), total

        init = (jnp.broadcast_to(var0, (batch_size, var0.shape[0])), jnp.zeros((batch_size, var0.shape[0]), var0.dtype))
        _, cumulative = jax.lax.scan(step, init, z)  # [days, batch, U]
        return cumulative[pick].transpose(1, 0, 2)  # [batch, horizons, U]

    return jax.lax.map(batch, first_batch + jnp.arange(num_batches))


def simulate_filtered_history(
    filtered: FilteredHistory,
    key: jax.Array,
    *,
    horizons: Sequence[int],
    num_paths: int,
    batch_size: int = 4096,
    dtype=jnp.float64,
) -> Float[Array, "paths horizons underlyings"]:
    """Cumulative log returns over each horizon (days) of ``num_paths`` FHS paths."""
    horizons = tuple(int(h) for h in horizons)
    if not horizons or min(horizons) < 1:
        raise ValueError(f"horizons must be >= 1 day, got {horizons}")
    if num_paths < 1:
        raise ValueError(f"num_paths must be >= 1, got {num_paths}")
    num_batches = -(-num_paths // batch_size)

    def arr(x):
        return jnp.asarray(x, dtype)

    out = _simulate(key, 0, arr(filtered.residuals), arr(filtered.array("mu")), arr(filtered.array("omega")),
                    arr(filtered.array("alpha")), arr(filtered.array("gamma")), arr(filtered.array("beta")),
                    arr(filtered.next_variance), horizons=horizons, batch_size=batch_size, num_batches=num_batches)
    return out.reshape(num_batches * batch_size, len(horizons), -1)[:num_paths]
