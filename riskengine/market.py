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

Implied vols are interpolated linearly in log-strike within each expiry (flat outside) and
linearly in total variance between expiries (flat vol outside). Surfaces are sticky-strike.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
from pydantic import Field, model_validator

from riskengine.config import ConfigError, Strict, load_yaml, validate
from riskengine.models import correlation_factor
from riskengine.scenarios import Scenario

DAYS_PER_YEAR = 365.0
MIN_VOL = 0.01


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
    basis: float = Field(default=0.0, allow_inf_nan=False)
    funding_premium_8h: float = Field(default=0.0, allow_inf_nan=False)
    vol_surface: VolSurface


class CorrelationConfig(Strict):
    underlyings: list[str]
    matrix: list[list[float]]


class MarketSnapshot(Strict):
    asof: dt.date
    description: str = ""
    rate: float = Field(default=0.0, allow_inf_nan=False)
    stablecoins: dict[str, float] = Field(default_factory=lambda: {"USD": 1.0})
    underlyings: dict[str, UnderlyingMarket] = Field(min_length=1)
    correlation: CorrelationConfig | None = None

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
        return interpolate_vol(
            np.asarray(surface.expiries_days) / DAYS_PER_YEAR, np.asarray(surface.strikes),
            surface.array(), strike=strike, expiry_years=expiry_years,
        )

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


def load_market(path: str | Path) -> MarketSnapshot:
    try:
        return validate(MarketSnapshot, load_yaml(path))
    except ConfigError as err:
        raise ConfigError(f"market {Path(path).name}: {err}") from None
