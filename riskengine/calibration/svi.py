"""Raw SVI per expiry (Gatheral 2004) with butterfly and calendar arbitrage checks.

Total implied variance at forward log-moneyness ``k = log(K/F)``:

    w(k) = a + b (rho (k - m) + sqrt((k - m)^2 + sigma^2)),   implied vol = sqrt(w(k) / T).

Fit. Each slice is fitted by Levenberg–Marquardt (``optimistix``) on implied-vol residuals
``weight_i (sqrt(w(k_i)/T) - vol_i)``, from several starts (wing slopes and the smile's
minimum), all starts of a slice in one vectorised, jitted solve. The parametrisation keeps
``b >= 0``, ``|rho| < 1``, ``sigma > 0`` and ``min_k w = a + b sigma sqrt(1 - rho^2) > 0``
(``a`` is that minimum less ``b sigma sqrt(1 - rho^2)``, the minimum a softplus).

Checks (Gatheral and Jacquier 2014, "Arbitrage-free SVI volatility surfaces"):

- butterfly: the risk-neutral density is non-negative iff
  ``g(k) = (1 - k w'/(2w))^2 - (w'^2/4)(1/w + 1/4) + w''/2 >= 0``, checked on a grid
  covering the quotes and half their width beyond each side, plus Lee's wing bound
  ``b (1 + |rho|) <= 2`` (the limit of ``g`` as ``|k| -> inf``);
- calendar: ``w(k, T)`` non-decreasing in ``T`` at each ``k`` of the grid, between
  consecutive fitted slices.

Violations are listed one per string (expiry, ``k`` range, worst value); ``fit_svi`` warns
(:class:`ArbitrageWarning`), raises :class:`riskengine.config.ConfigError` (one line) or stays
silent, as asked.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

from riskengine.calibration.surface import Surface
from riskengine.errors import ConfigError

__all__ = [
    "SVI_PARAMETERS",
    "ArbitrageWarning",
    "SviFit",
    "SviSlice",
    "butterfly_violations",
    "calendar_violations",
    "fit_svi",
    "fit_svi_slice",
    "svi_density_g",
    "svi_total_variance",
]

SVI_PARAMETERS = ("a", "b", "rho", "m", "sigma")
MIN_QUOTES_PER_SLICE = 5
_RHO_MAX = 0.9999
_SIGMA_MIN = 1e-6
_GRID_POINTS = 801
_G_TOLERANCE = 1e-10
_W_TOLERANCE = 1e-10
_LEE_BOUND = 2.0


class ArbitrageWarning(UserWarning):
    """A fitted surface admits static arbitrage (the message lists where)."""


def _params_array(params) -> tuple:
    if isinstance(params, Mapping):
        return tuple(params[n] for n in SVI_PARAMETERS)
    return tuple(params)


def _xp(*values):
    """``jax.numpy`` if any value is a JAX array (or tracer), else NumPy."""
    return jnp if any(isinstance(v, jax.Array) for v in values) else np


def svi_total_variance(params, k):
    """Raw SVI ``w(k)``; ``params`` a mapping with ``a, b, rho, m, sigma`` or a 5-sequence.
    NumPy in, NumPy out; JAX arrays in, JAX out (differentiable)."""
    a, b, rho, m, sigma = _params_array(params)
    xp = _xp(a, b, rho, m, sigma, k)
    x = k - m
    return a + b * (rho * x + xp.sqrt(x * x + sigma * sigma))


def svi_density_g(params, k):
    """Gatheral's ``g(k)``: the risk-neutral density is ``g(k) n(d2) / sqrt(w)``, so
    ``g >= 0`` everywhere is the absence of butterfly arbitrage."""
    a, b, rho, m, sigma = _params_array(params)
    xp = _xp(a, b, rho, m, sigma, k)
    x = k - m
    root = xp.sqrt(x * x + sigma * sigma)
    w = a + b * (rho * x + root)
    w1 = b * (rho + x / root)
    w2 = b * sigma * sigma / root**3
    return (1.0 - k * w1 / (2.0 * w)) ** 2 - 0.25 * w1 * w1 * (1.0 / w + 0.25) + 0.5 * w2


@dataclasses.dataclass
class SviSlice:
    """One expiry's SVI fit. Vols are decimals (0.01 = one vol point)."""

    expiry: float
    params: dict[str, float]
    rmse_vol: float
    max_abs_vol_error: float
    converged: bool
    quotes: int
    min_g: float  # min of g(k) over the check grid
    k_min_g: float
    butterfly: list[str]  # violations (empty: none)

    @property
    def butterfly_free(self) -> bool:
        return not self.butterfly

    def total_variance(self, k):
        return svi_total_variance(self.params, np.asarray(k, np.float64))

    def implied_vol(self, k):
        return np.sqrt(self.total_variance(k) / self.expiry)

    def to_dict(self) -> dict:
        return {"expiry": self.expiry, "params": dict(self.params), "rmse_vol": self.rmse_vol,
                "max_abs_vol_error": self.max_abs_vol_error, "converged": self.converged,
                "quotes": self.quotes, "min_g": self.min_g, "k_min_g": self.k_min_g,
                "butterfly": list(self.butterfly)}


@dataclasses.dataclass
class SviFit:
    """SVI slices (ascending expiry) and the surface's arbitrage diagnostics."""

    slices: list[SviSlice]
    calendar: list[str]
    k_grid: np.ndarray

    @property
    def violations(self) -> list[str]:
        return [v for s in self.slices for v in s.butterfly] + list(self.calendar)

    @property
    def arbitrage_free(self) -> bool:
        return not self.violations

    def to_dict(self) -> dict:
        return {"slices": [s.to_dict() for s in self.slices], "calendar": list(self.calendar),
                "arbitrage_free": self.arbitrage_free}


def butterfly_violations(params, k_grid, *, expiry: float | None = None) -> tuple[list[str], float, float]:
    """Butterfly violations of one SVI slice on ``k_grid``: ``(messages, min g, k at min)``."""
    p = {n: float(v) for n, v in zip(SVI_PARAMETERS, _params_array(params), strict=True)}
    k = np.asarray(k_grid, np.float64)
    g = svi_density_g(p, k)
    w = svi_total_variance(p, k)
    where = f"expiry {expiry:g}y" if expiry is not None else "slice"
    messages = []
    bad_w = w <= _W_TOLERANCE
    if bad_w.any():
        messages.append(f"butterfly at {where}: total variance <= 0 for k in "
                        f"[{k[bad_w].min():.3f}, {k[bad_w].max():.3f}] (min {w.min():.3g})")
    bad = (g < -_G_TOLERANCE) & ~bad_w
    i_min = int(np.nanargmin(g))
    if bad.any():
        messages.append(f"butterfly at {where}: density g(k) < 0 for k in "
                        f"[{k[bad].min():.3f}, {k[bad].max():.3f}] (min g {g[i_min]:.3g} at "
                        f"k={k[i_min]:.3f})")
    wing = p["b"] * (1.0 + abs(p["rho"]))
    if wing > _LEE_BOUND + 1e-12:
        messages.append(f"butterfly at {where}: wing slope b(1+|rho|) = {wing:.3g} exceeds "
                        f"Lee's bound {_LEE_BOUND:g}")
    return messages, float(g[i_min]), float(k[i_min])


def calendar_violations(slices: Sequence[SviSlice], k_grid) -> list[str]:
    """Calendar violations between consecutive slices (sorted by expiry) on ``k_grid``."""
    k = np.asarray(k_grid, np.float64)
    ordered = sorted(slices, key=lambda s: s.expiry)
    out = []
    for early, late in zip(ordered[:-1], ordered[1:], strict=True):
        shortfall = early.total_variance(k) - late.total_variance(k)
        bad = shortfall > _W_TOLERANCE
        if bad.any():
            i = int(np.argmax(shortfall))
            out.append(
                f"calendar between expiries {early.expiry:g}y and {late.expiry:g}y: total "
                f"variance decreases for k in [{k[bad].min():.3f}, {k[bad].max():.3f}] "
                f"(by up to {shortfall[i]:.3g} at k={k[i]:.3f})"
            )
    return out


# --------------------------------------------------------------------------------------
# Fitting
# --------------------------------------------------------------------------------------


def _natural(z, lee: bool = False):
    """Unconstrained ``z`` (5,) -> ``(a, b, rho, m, sigma)``; with ``lee`` the wing slopes
    obey Lee's bound, ``b (1 + |rho|) = 2 sigmoid(z_1) < 2``."""
    rho = _RHO_MAX * jnp.tanh(z[2])
    if lee:
        b = _LEE_BOUND * jax.nn.sigmoid(z[1]) / (1.0 + jnp.abs(rho))
    else:
        b = jax.nn.softplus(z[1])
    m = z[3]
    sigma = _SIGMA_MIN + jax.nn.softplus(z[4])
    a = jax.nn.softplus(z[0]) - b * sigma * jnp.sqrt(1.0 - rho * rho)
    return jnp.stack([a, b, rho, m, sigma])


def _unconstrained(a, b, rho, m, sigma, lee: bool = False) -> np.ndarray:
    def inv_softplus(x):
        x = max(x, 1e-10)
        return x + math.log(-math.expm1(-x))

    sigma = max(sigma, 2 * _SIGMA_MIN)
    rho = float(np.clip(rho, -0.99, 0.99))
    b = max(b, 1e-6)
    if lee:
        share = float(np.clip(b * (1.0 + abs(rho)) / _LEE_BOUND, 1e-6, 0.99))
        b = share * _LEE_BOUND / (1.0 + abs(rho))
        z_b = math.log(share / (1.0 - share))
    else:
        z_b = inv_softplus(b)
    w_min = a + b * sigma * math.sqrt(1.0 - rho * rho)
    return np.asarray([inv_softplus(w_min), z_b, math.atanh(rho / _RHO_MAX), m,
                       inv_softplus(sigma - _SIGMA_MIN)])


_POINT_BUCKET = 16  # slices are padded to a multiple of this many quotes (fewer compiles)


@functools.partial(jax.jit, static_argnames=("max_steps", "lee"))
def _solve_starts(z0, k, vol, weight, expiry, *, max_steps: int, lee: bool = False):
    """LM from each of the starts ``z0`` (starts, 5) for one slice; padded quotes carry zero
    weight."""

    def residuals(z, args):
        k, vol, weight, expiry = args
        w = svi_total_variance(_natural(z, lee), k)
        model = jnp.sqrt(jnp.maximum(w, 1e-300) / expiry)
        return weight * (model - vol)

    def one(z0):
        solver = optx.LevenbergMarquardt(rtol=1e-8, atol=1e-10)
        sol = optx.least_squares(residuals, solver, z0, args=(k, vol, weight, expiry),
                                 max_steps=max_steps, throw=False)
        r = residuals(sol.value, (k, vol, weight, expiry))
        return _natural(sol.value, lee), jnp.sum(r * r), sol.result == optx.RESULTS.successful

    return jax.vmap(one)(z0)


def _starts(k: np.ndarray, w: np.ndarray, count: int, lee: bool = False) -> list[np.ndarray]:
    """Starting points from the smile's minimum and its wing slopes."""
    i = int(np.argmin(w))
    m = float(k[i])
    w_min = float(w[i])
    span = float(k[-1] - k[0]) or 1.0
    right = (w[-1] - w_min) / max(k[-1] - m, 1e-3 * span)
    left = (w[0] - w_min) / max(m - k[0], 1e-3 * span)
    b = max(0.5 * (right + left), 1e-3)
    rho = float(np.clip((right - left) / max(right + left, 1e-12), -0.9, 0.9))
    out = []
    for j in range(count):
        sigma = (0.1, 0.3, 0.03, 0.6, 0.2)[j % 5] * span
        rho_j = rho if j < 3 else float(np.clip(rho + (-0.3 if j % 2 else 0.3), -0.9, 0.9))
        a = w_min - b * sigma * math.sqrt(1 - rho_j**2)
        out.append(_unconstrained(a, b, rho_j, m, sigma, lee))
    return out


def _fit_slices(problems: list[dict], *, starts: int, max_steps: int, lee: bool = False):
    """``problems``: dicts with ``k``, ``vol``, ``weight``, ``expiry`` (sorted by k). One
    compiled solve per padded slice size, all starts of a slice in one vectorised call.
    ``lee``: fit within Lee's wing bound ``b (1 + |rho|) < 2``."""
    out = []
    with jax.enable_x64(True):
        for p in problems:
            n = p["k"].size
            pad = -n % _POINT_BUCKET
            k = np.concatenate([p["k"], np.full(pad, p["k"][-1])])
            vol = np.concatenate([p["vol"], np.full(pad, p["vol"][-1])])
            weight = np.concatenate([p["weight"], np.zeros(pad)])
            z0 = np.asarray(_starts(p["k"], p["vol"] ** 2 * p["expiry"], starts, lee))
            params, objective, ok = (np.asarray(x) for x in _solve_starts(
                *(jnp.asarray(x, jnp.float64) for x in (z0, k, vol, weight, p["expiry"])),
                max_steps=max_steps, lee=lee))
            obj = np.where(np.isfinite(objective), objective, np.inf)
            j = int(np.argmin(obj))
            # Converged: some start met LM's criterion at (numerically) the best objective.
            near = obj <= obj[j] * (1 + 1e-6) + 1e-16
            out.append((params[j], bool(np.any(ok & near)) and math.isfinite(obj[j])))
    return out


def _default_grid(k_all: np.ndarray) -> np.ndarray:
    lo, hi = float(np.min(k_all)), float(np.max(k_all))
    width = max(hi - lo, 0.1)
    return np.linspace(lo - 0.5 * width, hi + 0.5 * width, _GRID_POINTS)


def _make_slice(expiry, params_vec, converged, k, vol, k_grid) -> SviSlice:
    params = {n: float(v) for n, v in zip(SVI_PARAMETERS, params_vec, strict=True)}
    fitted = np.sqrt(svi_total_variance(params, k) / expiry)
    error = fitted - vol
    butterfly, min_g, k_min_g = butterfly_violations(params, k_grid, expiry=expiry)
    return SviSlice(expiry=float(expiry), params=params, rmse_vol=float(np.sqrt(np.mean(error**2))),
                    max_abs_vol_error=float(np.max(np.abs(error))), converged=converged,
                    quotes=int(k.size), min_g=min_g, k_min_g=k_min_g, butterfly=butterfly)


def fit_svi_slice(
    k, implied_vol, expiry: float, *, weight=None, starts: int = 5, max_steps: int = 500,
    k_grid=None,
) -> SviSlice:
    """Fit raw SVI to one slice: log-moneyness ``k = log(K/F)``, implied vols, expiry (years)."""
    k = np.asarray(k, np.float64)
    vol = np.asarray(implied_vol, np.float64)
    order = np.argsort(k)
    k, vol = k[order], vol[order]
    weight = np.ones_like(k) if weight is None else np.asarray(weight, np.float64)[order]
    _check_slice(k, vol, expiry, "slice")
    grid = _default_grid(k) if k_grid is None else np.asarray(k_grid, np.float64)
    ((params, ok),) = _fit_slices([{"k": k, "vol": vol, "weight": weight, "expiry": float(expiry)}],
                                  starts=starts, max_steps=max_steps)
    return _make_slice(float(expiry), params, ok, k, vol, grid)


def _check_slice(k, vol, expiry, where):
    if k.size < MIN_QUOTES_PER_SLICE:
        raise ConfigError(f"{where}: {k.size} quote(s) at expiry {expiry:g}y; SVI needs at "
                          f"least {MIN_QUOTES_PER_SLICE} per expiry")
    if not (np.all(np.isfinite(vol)) and np.all(vol > 0)):
        raise ConfigError(f"{where}: implied vols at expiry {expiry:g}y must be finite and > 0")
    if np.unique(k).size != k.size:
        raise ConfigError(f"{where}: repeated log-moneyness at expiry {expiry:g}y (one quote per "
                          "strike: drop calls or puts)")


def fit_svi(
    surface: Surface,
    *,
    weights: Literal["uniform", "vega", "bidask"] = "uniform",
    arbitrage: Literal["warn", "error", "ignore"] = "warn",
    starts: int = 5,
    max_steps: int = 500,
    k_grid=None,
) -> SviFit:
    """Fit raw SVI to every expiry of ``surface`` and check butterfly and calendar arbitrage.

    ``weights``: ``"vega"`` (vega / max vega of the slice) or ``"bidask"`` (1 / vol spread).
    Raises :class:`ConfigError` for a slice with fewer than 5 quotes.
    """
    if arbitrage not in ("warn", "error", "ignore"):
        raise ConfigError(f"svi.arbitrage: must be warn, error or ignore (got {arbitrage!r})")
    if weights == "bidask" and not surface.has_spread:
        raise ConfigError(f"svi.weights: 'bidask' needs bid and ask columns in {surface.source}")
    if weights not in ("uniform", "vega", "bidask"):
        raise ConfigError(f"svi.weights: must be uniform, vega or bidask (got {weights!r})")
    k_all = surface.log_moneyness
    problems = []
    for idx in surface.slices():
        idx = idx[np.argsort(k_all[idx], kind="stable")]
        t = float(surface.expiry[idx[0]])
        if weights == "vega":
            weight = surface.vega[idx] / surface.vega[idx].max()
        elif weights == "bidask":
            weight = 1.0 / surface.spread_vol[idx]
        else:
            weight = np.ones(idx.size)
        _check_slice(k_all[idx], surface.implied_vol[idx], t, surface.source)
        problems.append({"k": k_all[idx], "vol": surface.implied_vol[idx], "weight": weight,
                         "expiry": t})
    grid = _default_grid(k_all) if k_grid is None else np.asarray(k_grid, np.float64)
    fitted = _fit_slices(problems, starts=starts, max_steps=max_steps)
    slices = [_make_slice(p["expiry"], params, ok, p["k"], p["vol"], grid)
              for p, (params, ok) in zip(problems, fitted, strict=True)]
    fit = SviFit(slices=slices, calendar=calendar_violations(slices, grid), k_grid=grid)
    report_arbitrage(fit.violations, arbitrage, surface.source)
    return fit


def report_arbitrage(violations: list[str], mode: str, source: str = "surface") -> None:
    """Warn about (``"warn"``) or raise on (``"error"``) a list of violations."""
    if not violations or mode == "ignore":
        return
    text = f"{source}: {len(violations)} SVI arbitrage violation(s): " + "; ".join(violations)
    if mode == "error":
        raise ConfigError(text)
    warnings.warn(text, ArbitrageWarning, stacklevel=3)
