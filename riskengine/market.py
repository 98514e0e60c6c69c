"""The market snapshot: spots, futures basis, funding, implied-vol surfaces, rates and
correlations per underlying, loaded from YAML and validated; and the scenario shocks that
move it.

```yaml
asof: 2026-11-24
rate: 0.04                        # USD rate, continuously compounded
stablecoins: {USDT: 1.0, USDC: 1.0}
underlyings:
  BTC:
    spot: 95000.0
    basis: 0.06                   # annualised: F(T) = spot * exp(basis * T)
    funding_premium_8h: 0.0001    # perpetual premium per 8 h
    vol_surface:                  # implied vols, expiries (days) x strikes
      expiries_days: [7, 30, 90]
      strikes: [70000, 95000, 120000]
      vols: [[0.7, 0.55, 0.6], [0.65, 0.52, 0.56], [0.62, 0.5, 0.53]]
correlation:
  underlyings: [BTC, ETH]
  matrix: [[1.0, 0.8], [0.8, 1.0]]
```

``vol_interpolation`` (top level) chooses how the surface is read between its nodes:

- ``linear`` (default): implied vols linear in log-strike within each expiry (flat outside
  the strikes), linear in total variance between expiries at fixed strike (flat vol outside
  the expiries);
- ``svi``: a raw SVI smile ``w(k) = a + b (rho (k - m) + sqrt((k - m)^2 + sigma^2))`` is
  fitted to each expiry's quotes (at least 5 strikes per expiry;
  :mod:`riskengine.calibration.svi`), then read by the SVI formula in strike (its wings
  extrapolate linearly in total variance) and linearly in total variance between expiries at
  fixed log-forward-moneyness ``k = log(K / F(t))`` (flat vol outside the expiries). The fit
  is done once per distinct surface (cached); the evaluation is a closed formula, in NumPy for
  NumPy inputs and in ``jax.numpy`` (differentiable) for JAX inputs. Butterfly (``g(k) >= 0``)
  and calendar checks are reported by :meth:`MarketSnapshot.vol_surface_summary`; a fit whose
  RMSE exceeds :data:`SVI_MAX_RMSE` is refused with a :class:`ConfigError`.

Surfaces are sticky-strike: a spot move leaves the vol at a fixed strike unchanged in both
modes (SVI is fitted in log-strike, which a spot move only translates). A scenario's vol
shock moves the quoted vols; in SVI mode the slices are then refitted to the moved quotes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import math
from pathlib import Path
from typing import Annotated, Literal

import jax
import jax.numpy as jnp
import numpy as np
from pydantic import Field, model_validator

from riskengine.config import ConfigError, Strict, load_yaml, validate
from riskengine.models import correlation_factor
from riskengine.scenarios import Scenario

DAYS_PER_YEAR = 365.0
MIN_VOL = 0.01
SVI_MIN_STRIKES = 5
SVI_MAX_RMSE = 0.02  # vol (2 vol points): an SVI fit worse than this is refused


class VolSurface(Strict):
    expiries_days: list[float] = Field(min_length=1)
    strikes: list[float] = Field(min_length=1)
    vols: list[list[float | None]]

    @model_validator(mode="after")
    def _check(self) -> VolSurface:
        problems = []
        if any(not (d > 0 and math.isfinite(d)) for d in self.expiries_days) or sorted(set(self.expiries_days)) != self.expiries_days:
            problems.append(f"expiries_days must be positive and strictly increasing, got {self.expiries_days}")
        if any(not (k > 0 and math.isfinite(k)) for k in self.strikes) or sorted(set(self.strikes)) != self.strikes:
            problems.append(f"strikes must be positive and strictly increasing, got {self.strikes}")
        if len(self.vols) != len(self.expiries_days):
            problems.append(f"vols has {len(self.vols)} rows for {len(self.expiries_days)} expiries")
        for i, row in enumerate(self.vols):
            if len(row) != len(self.strikes):
                problems.append(f"vols row {i} has {len(row)} entries for {len(self.strikes)} strikes")
                continue
            for j, v in enumerate(row):
                if v is None or not math.isfinite(v) or v <= 0:
                    problems.append(f"vols[{i}][{j}] (expiry {self.expiries_days[i]}d, strike {self.strikes[j]}) is {v!r}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def array(self) -> np.ndarray:
        return np.asarray(self.vols, dtype=np.float64)


class UnderlyingMarket(Strict):
    spot: float = Field(gt=0, allow_inf_nan=False)
    basis: float = Field(default=0.0, ge=-5.0, le=5.0, allow_inf_nan=False)  # annualised, ±500%
    funding_premium_8h: float = Field(default=0.0, ge=-0.05, le=0.05, allow_inf_nan=False)  # ±5% per 8 h
    vol_surface: VolSurface


class CorrelationConfig(Strict):
    underlyings: list[str]
    matrix: list[list[float]]


class MarketSnapshot(Strict):
    asof: dt.date
    description: str = ""
    rate: float = Field(default=0.0, ge=-1.0, le=5.0, allow_inf_nan=False)
    stablecoins: dict[str, Annotated[float, Field(gt=0, allow_inf_nan=False)]] = Field(default_factory=lambda: {"USD": 1.0})
    underlyings: dict[str, UnderlyingMarket] = Field(min_length=1)
    correlation: CorrelationConfig | None = None
    vol_interpolation: Literal["linear", "svi"] = "linear"

    @model_validator(mode="after")
    def _svi_strikes(self) -> MarketSnapshot:
        if self.vol_interpolation == "svi":
            for name, u in self.underlyings.items():
                n = len(u.vol_surface.strikes)
                if n < SVI_MIN_STRIKES:
                    raise ValueError(
                        f"underlyings.{name}.vol_surface: {n} strike(s); vol_interpolation: svi needs at "
                        f"least {SVI_MIN_STRIKES} per expiry (add strikes or use vol_interpolation: linear)")
        return self

    @model_validator(mode="after")
    def _correlation(self) -> MarketSnapshot:
        if self.correlation is not None:
            unknown = [u for u in self.correlation.underlyings if u not in self.underlyings]
            if unknown:
                raise ValueError(f"correlation.underlyings: {unknown} not in underlyings {sorted(self.underlyings)}")
            correlation_factor(self.correlation.matrix, names=self.correlation.underlyings)
        return self

    @property
    def names(self) -> list[str]:
        return list(self.underlyings)

    def correlation_matrix(self, names: list[str]) -> np.ndarray:
        """Correlation between ``names`` (identity where the snapshot gives none)."""
        corr = np.eye(len(names))
        if self.correlation is None:
            return corr
        where = {u: i for i, u in enumerate(self.correlation.underlyings)}
        given = np.asarray(self.correlation.matrix, dtype=np.float64)
        for a, ua in enumerate(names):
            for b, ub in enumerate(names):
                if a != b and ua in where and ub in where:
                    corr[a, b] = given[where[ua], where[ub]]
        return corr

    def implied_vol(self, underlying: str, *, strike, expiry_years) -> np.ndarray:
        """Implied vol of ``underlying`` at ``strike`` and ``expiry_years`` (arrays broadcast)."""
        surface = self.underlyings[underlying].vol_surface
        if self.vol_interpolation == "svi":
            return self.svi_surface(underlying).implied_vol(strike=strike, expiry_years=expiry_years)
        return interpolate_vol(
            np.asarray(surface.expiries_days) / DAYS_PER_YEAR, np.asarray(surface.strikes),
            surface.array(), strike=strike, expiry_years=expiry_years,
        )

    def svi_surface(self, underlying: str) -> SviVolSurface:
        """The SVI surface of ``underlying`` (fitted once per distinct set of quotes)."""
        u = self.underlyings[underlying]
        s = u.vol_surface
        fit = _fit_svi_surface(tuple(s.expiries_days), tuple(s.strikes), tuple(tuple(r) for r in s.vols))
        bad = [(d, e) for d, e in zip(s.expiries_days, fit.rmse, strict=True) if not e <= SVI_MAX_RMSE]
        if bad:
            raise ConfigError(
                f"market: underlyings.{underlying}.vol_surface: SVI does not fit expiry {bad[0][0]:g}d "
                f"(RMSE {100 * bad[0][1]:.3g} vol points > {100 * SVI_MAX_RMSE:g}); check the quotes or use "
                "vol_interpolation: linear")
        return SviVolSurface(expiries_years=fit.expiries_years, params=fit.params, log_ref=fit.log_ref,
                             basis=u.basis, rmse=fit.rmse, converged=fit.converged)

    def vol_surface_summary(self) -> dict:
        """The interpolation mode and, for SVI, per underlying the fitted slices (in
        log-forward-moneyness ``k = log(K/F(T))``), their fit and the arbitrage checks."""
        if self.vol_interpolation != "svi":
            return {"interpolation": self.vol_interpolation}
        out: dict = {"interpolation": "svi", "underlyings": {}, "warnings": []}
        for name in self.underlyings:
            checks = self.svi_surface(name).checks(spot=self.underlyings[name].spot,
                                                   strikes=self.underlyings[name].vol_surface.strikes,
                                                   vols=self.underlyings[name].vol_surface.array())
            out["underlyings"][name] = checks
            out["warnings"] += [f"{name}: {v}" for v in checks["violations"]]
        return out

    def forward(self, underlying: str, *, expiry_years) -> np.ndarray:
        u = self.underlyings[underlying]
        return u.spot * np.exp(u.basis * np.maximum(np.asarray(expiry_years, np.float64), 0.0))

    def shocked(self, scenario: Scenario) -> MarketSnapshot:
        """The snapshot after ``scenario``'s market shocks (spot, vol, funding, correlation,
        stablecoins). Venue defaults act on the book, not on the market."""
        shocks = scenario.shocks
        underlyings = {}
        for name, u in self.underlyings.items():
            surface = u.vol_surface
            vols = surface.array()
            vol = scenario.vol_shock(name)
            if vol is not None:
                add = np.zeros(len(surface.expiries_days))
                if vol.add_by_expiry_days:
                    days = np.asarray(list(vol.add_by_expiry_days))
                    adds = np.asarray(list(vol.add_by_expiry_days.values()))
                    add = np.interp(surface.expiries_days, days, adds)
                vols = np.maximum(vols * vol.scale + add[:, None], MIN_VOL)
            premium = shocks.funding_premium_8h.get(name, shocks.funding_premium_8h.get("*", u.funding_premium_8h))
            underlyings[name] = u.model_copy(update={
                "spot": u.spot * (1.0 + scenario.spot_move(name)),
                "funding_premium_8h": premium,
                "vol_surface": surface.model_copy(update={"vols": vols.tolist()}),
            })
        correlation = self.correlation
        if shocks.correlation is not None and correlation is not None:
            n = len(correlation.underlyings)
            matrix = np.full((n, n), shocks.correlation.all)
            np.fill_diagonal(matrix, 1.0)
            correlation = correlation.model_copy(update={"matrix": matrix.tolist()})
        stablecoins = {c: p * (1.0 + shocks.stablecoin.get(c, 0.0)) for c, p in self.stablecoins.items()}
        return self.model_copy(update={"underlyings": underlyings, "correlation": correlation, "stablecoins": stablecoins})


def interpolate_vol(expiries_years, strikes, vols, *, strike, expiry_years) -> np.ndarray:
    """Linear in log-strike per expiry (flat outside the strikes), linear in total variance
    between expiries (flat vol outside the expiries)."""
    strike = np.asarray(strike, np.float64)
    t = np.maximum(np.asarray(expiry_years, np.float64), 1e-8)
    strike, t = np.broadcast_arrays(strike, t)
    log_k = np.log(strikes)
    rows = np.stack([np.interp(np.log(strike), log_k, row) for row in vols])  # [expiries, ...]
    if len(expiries_years) == 1:
        return rows[0]
    total = rows**2 * np.asarray(expiries_years).reshape((-1,) + (1,) * strike.ndim)
    flat = t.reshape(-1)
    out = np.empty(flat.shape)
    total_flat = total.reshape(len(expiries_years), -1)
    rows_flat = rows.reshape(len(expiries_years), -1)
    for i, ti in enumerate(flat):
        if ti <= expiries_years[0]:
            out[i] = rows_flat[0, i]
        elif ti >= expiries_years[-1]:
            out[i] = rows_flat[-1, i]
        else:
            w = np.interp(ti, expiries_years, total_flat[:, i])
            out[i] = math.sqrt(w / ti)
    return out.reshape(strike.shape)


@dataclasses.dataclass(frozen=True)
class _SviFitResult:
    expiries_years: np.ndarray  # (n,)
    params: np.ndarray  # (n, 5): a, b, rho, m, sigma in x = log(K) - log_ref
    log_ref: float
    rmse: np.ndarray  # (n,) in vol
    converged: np.ndarray  # (n,)


@functools.lru_cache(maxsize=512)
def _fit_svi_surface(expiries_days: tuple, strikes: tuple, vols: tuple) -> _SviFitResult:
    """Raw SVI per expiry in ``x = log(K) - log_ref`` (``log_ref`` the mean log-strike),
    within Lee's wing bound ``b (1 + |rho|) < 2``: the fit depends on the quotes only, not on
    spot or basis."""
    from riskengine.calibration.svi import _fit_slices, svi_total_variance

    log_k = np.log(np.asarray(strikes, np.float64))
    log_ref = float(np.mean(log_k))
    x = log_k - log_ref
    t = np.asarray(expiries_days, np.float64) / DAYS_PER_YEAR
    rows = np.asarray(vols, np.float64)
    problems = [{"k": x, "vol": row, "weight": np.ones_like(x), "expiry": float(ti)} for ti, row in zip(t, rows, strict=True)]
    fitted = _fit_slices(problems, starts=5, max_steps=500, lee=True)
    params = np.stack([p for p, _ in fitted])
    rmse = np.asarray([np.sqrt(np.mean((np.sqrt(np.maximum(svi_total_variance(p, x), 0.0) / ti) - row) ** 2))
                       for p, ti, row in zip(params, t, rows, strict=True)])
    return _SviFitResult(expiries_years=t, params=params, log_ref=log_ref, rmse=rmse,
                         converged=np.asarray([ok for _, ok in fitted]))


def _namespace(*values):
    """``(jax.numpy, input float dtype)`` if any value is a JAX array (or tracer), else
    ``(numpy, float64)``."""
    if not any(isinstance(v, jax.Array) for v in values):
        return np, np.float64
    dtype = jnp.result_type(*[v for v in values if isinstance(v, jax.Array)])
    return jnp, dtype if jnp.issubdtype(dtype, jnp.floating) else jnp.result_type(float)


@dataclasses.dataclass(frozen=True)
class SviVolSurface:
    """Raw SVI slices of one underlying, read in strike by the SVI formula and in expiry
    linearly in total variance at fixed log-forward-moneyness (flat vol outside the expiries).

    ``params[i]`` are slice ``i``'s ``(a, b, rho, m, sigma)`` in ``x = log(K) - log_ref``;
    slice ``i`` at log-forward-moneyness ``k`` is read at ``x = k + log F(T_i) - log_ref``,
    which for a target ``(K, t)`` is ``log(K) + basis (T_i - t) - log_ref`` (spot cancels).
    """

    expiries_years: np.ndarray
    params: np.ndarray
    log_ref: float
    basis: float
    rmse: np.ndarray
    converged: np.ndarray

    def total_variance(self, *, strike, expiry_years):
        """``w(K, t) = sigma_imp^2 t`` (NumPy for NumPy inputs, JAX for JAX inputs)."""
        xp, dtype = _namespace(strike, expiry_years)
        n = len(self.expiries_years)
        big_t = xp.asarray(self.expiries_years, dtype=dtype)
        t = xp.maximum(xp.asarray(expiry_years, dtype=dtype), 1e-8)
        strike, t = xp.broadcast_arrays(xp.asarray(strike, dtype=dtype), t)
        shape = (-1,) + (1,) * t.ndim
        a, b, rho, m, sigma = (xp.asarray(self.params[:, j], dtype=dtype).reshape(shape) for j in range(5))
        xi = xp.log(strike)[None] + self.basis * (big_t.reshape(shape) - t[None]) - self.log_ref
        d = xi - m
        w = a + b * (rho * d + xp.sqrt(d * d + sigma * sigma))  # [expiries, ...]
        if n == 1:
            return w[0] / big_t[0] * t
        lo = xp.clip(xp.searchsorted(big_t, t, side="right") - 1, 0, n - 2)
        w_lo = xp.take_along_axis(w, lo[None], axis=0)[0]
        w_hi = xp.take_along_axis(w, lo[None] + 1, axis=0)[0]
        t_lo, t_hi = big_t[lo], big_t[lo + 1]
        lam = (t - t_lo) / (t_hi - t_lo)
        inside = w_lo + lam * (w_hi - w_lo)
        before = w[0] / big_t[0] * t
        after = w[-1] / big_t[-1] * t
        return xp.where(t <= big_t[0], before, xp.where(t >= big_t[-1], after, inside))

    def implied_vol(self, *, strike, expiry_years):
        xp, dtype = _namespace(strike, expiry_years)
        t = xp.maximum(xp.asarray(expiry_years, dtype=dtype), 1e-8)
        return xp.sqrt(self.total_variance(strike=strike, expiry_years=expiry_years) / t)

    def moneyness_params(self, spot: float) -> list[dict[str, float]]:
        """Each slice's raw SVI parameters in ``k = log(K / F(T_i))``, ``F(T) = spot e^{basis T}``."""
        out = []
        for t, p in zip(self.expiries_years, self.params, strict=True):
            shift = math.log(spot) + self.basis * t - self.log_ref  # k = x - shift
            out.append(dict(zip(("a", "b", "rho", "m", "sigma"), (float(p[0]), float(p[1]), float(p[2]),
                                                                  float(p[3] - shift), float(p[4])), strict=True)))
        return out

    def checks(self, *, spot: float, strikes, vols) -> dict:
        """Per-slice fit and butterfly check, and the calendar check between slices, on a
        log-forward-moneyness grid spanning the quotes (and half as much again each side)."""
        from riskengine.calibration.svi import (
            SVI_PARAMETERS,
            _default_grid,
            _make_slice,
            calendar_violations,
        )

        strikes = np.asarray(strikes, np.float64)
        forwards = spot * np.exp(self.basis * self.expiries_years)
        k_quotes = np.log(strikes[None, :] / forwards[:, None])
        grid = _default_grid(k_quotes.ravel())
        slices = [
            _make_slice(float(t), np.asarray([p[n] for n in SVI_PARAMETERS]), bool(ok), k_quotes[i], np.asarray(vols[i]), grid)
            for i, (t, p, ok) in enumerate(zip(self.expiries_years, self.moneyness_params(spot), self.converged, strict=True))
        ]
        calendar = calendar_violations(slices, grid)
        return {
            "slices": [{"expiry_days": float(s.expiry * DAYS_PER_YEAR), **s.params, "rmse": s.rmse_vol,
                        "max_abs_error": s.max_abs_vol_error, "converged": s.converged, "min_g": s.min_g,
                        "butterfly_ok": s.butterfly_free} for s in slices],
            "butterfly_ok": all(s.butterfly_free for s in slices),
            "calendar_ok": not calendar,
            "violations": [v for s in slices for v in s.butterfly] + calendar,
        }


def load_market(path: str | Path) -> MarketSnapshot:
    try:
        return validate(MarketSnapshot, load_yaml(path, what="file"))
    except ConfigError as err:
        raise ConfigError(f"market {Path(path).name}: {err}") from None
