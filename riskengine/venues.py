"""The venue table: each trading venue's funding rule, maintenance-margin tiers,
liquidation fee and collateral haircuts, as data.

The bundled table is ``riskengine/venues.yaml`` (each rule cites its source there); a user
extends or overrides it with a file of the same shape (``venues: PATH`` in a stress
config): a venue named there replaces the bundled one as a whole. :func:`load_venues`
checks every field and names the venue and field of the first problem in one line.

:func:`position_rules` turns the table into per-position arrays for a book (funding
parameters, tier bounds and rates, liquidation fee, collateral haircut), which revaluation
and the margin accounts (:mod:`riskengine.accounts`) read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, ValidationError, field_validator

from riskengine.config import Strict, format_validation_error, load_yaml
from riskengine.errors import ConfigError

__all__ = [
    "BUNDLED_VENUES",
    "FundingRule",
    "PositionRules",
    "Venue",
    "load_venues",
    "position_rules",
]

BUNDLED_VENUES = Path(__file__).with_name("venues.yaml")
_Source = Field(min_length=1)


class FundingRule(Strict):
    """Rate per interval ``premium + clamp(interest - premium, -clamp, +clamp)``, capped at
    ``+-cap``; accrued per whole interval (``discrete``: paid at fixed times) or pro rata
    (``continuous``)."""

    interest: float = Field(ge=-0.01, le=0.01, allow_inf_nan=False)
    clamp: float = Field(ge=0, le=0.01, allow_inf_nan=False)
    cap: float = Field(gt=0, le=1, allow_inf_nan=False)
    interval_hours: float = Field(gt=0, le=24, allow_inf_nan=False)
    accrual: Literal["discrete", "continuous"]
    source: str = _Source


class MaintenanceRule(Strict):
    """Maintenance-margin tiers by USD notional per underlying (``default`` for the rest):
    rows ``[notional_up_to, rate]``, bounds increasing, rates not decreasing."""

    tiers: dict[str, list[tuple[float, float]]]
    source: str = _Source

    @field_validator("tiers")
    @classmethod
    def _tiers(cls, tiers: dict[str, list[tuple[float, float]]]) -> dict[str, list[tuple[float, float]]]:
        if "default" not in tiers:
            raise ValueError("maintenance.tiers: needs a `default` row list (for underlyings not named)")
        for name, rows in tiers.items():
            if not rows:
                raise ValueError(f"maintenance.tiers.{name}: no tiers")
            bounds = [b for b, _ in rows]
            rates = [r for _, r in rows]
            if any(not b > 0 or math.isnan(b) for b in bounds):
                raise ValueError(f"maintenance.tiers.{name}: notional bounds must be > 0, got {bounds}")
            if any(b2 <= b1 for b1, b2 in zip(bounds, bounds[1:], strict=False)):
                raise ValueError(f"maintenance.tiers.{name}: notional bounds must increase, got {bounds}")
            if any(not 0 < r <= 1 for r in rates):
                raise ValueError(f"maintenance.tiers.{name}: rates must be in (0, 1], got {rates}")
            if any(r2 < r1 for r1, r2 in zip(rates, rates[1:], strict=False)):
                raise ValueError(f"maintenance.tiers.{name}: rates must not decrease, got {rates}")
            if not math.isinf(bounds[-1]):
                raise ValueError(f"maintenance.tiers.{name}: the last bound must be .inf (it covers every larger notional), got {bounds[-1]}")
        return tiers

    def for_underlying(self, underlying: str) -> list[tuple[float, float]]:
        return self.tiers.get(underlying, self.tiers["default"])


class FeeRule(Strict):
    rate: float = Field(ge=0, le=0.5, allow_inf_nan=False)
    source: str = _Source


class HaircutRule(Strict):
    rates: dict[str, float]
    source: str = _Source

    @field_validator("rates")
    @classmethod
    def _rates(cls, rates: dict[str, float]) -> dict[str, float]:
        for coin, rate in rates.items():
            if not 0 <= rate < 1:
                raise ValueError(f"haircuts.rates.{coin}: a haircut must be in [0, 1), got {rate}")
        return rates


class Venue(Strict):
    """One venue's conventions (every field required)."""

    funding: FundingRule
    maintenance: MaintenanceRule
    liquidation_fee: FeeRule
    haircuts: HaircutRule


def _read(path: Path, *, what: str) -> dict[str, Venue]:
    data = load_yaml(path, what=what)
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{what} {path.name}: expected a mapping of venue names to their conventions")
    venues = {}
    for name, row in data.items():
        if not isinstance(row, dict):
            raise ConfigError(f"venues.{name}: expected a mapping with funding, maintenance, liquidation_fee, haircuts")
        try:
            venues[str(name)] = Venue.model_validate(row)
        except ValidationError as err:
            raise ConfigError(f"venues.{name}.{format_validation_error(err)} ({path.name})") from None
    return venues


def load_venues(path: str | Path | None = None) -> dict[str, Venue]:
    """The bundled venue table, extended (and per venue overridden) by the table at
    ``path``; a ConfigError naming the venue and field of the first bad entry."""
    venues = _read(BUNDLED_VENUES, what="venue table")
    if path is not None:
        venues.update(_read(Path(path), what="venues"))
    return venues


@dataclass(frozen=True)
class PositionRules:
    """Each position's venue conventions as arrays (``[positions]``; tiers ``[positions,
    tiers]``, padded with zero-width, zero-rate tiers).

    Funding: ``interest``, ``clamp``, ``cap`` per interval, ``periods_per_day`` (24 /
    interval hours), ``continuous`` accrual, ``premium_scale`` (interval / 8 h: the market's
    premium is quoted per 8 h). Margin: ``tier_lower``, ``tier_width``, ``tier_rate`` (the
    maintenance margin is ``sum rate * clip(notional - lower, 0, width)``), ``fee`` (the
    liquidation fee rate), ``haircut`` of the position's collateral currency.
    """

    interest: np.ndarray
    clamp: np.ndarray
    cap: np.ndarray
    periods_per_day: np.ndarray
    continuous: np.ndarray
    premium_scale: np.ndarray
    tier_lower: np.ndarray
    tier_width: np.ndarray
    tier_rate: np.ndarray
    fee: np.ndarray
    haircut: np.ndarray


def _tier_arrays(rows: list[list[tuple[float, float]]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    width = max(len(r) for r in rows)
    lower = np.zeros((len(rows), width))
    span = np.zeros((len(rows), width))
    rate = np.zeros((len(rows), width))
    for i, tiers in enumerate(rows):
        previous = 0.0
        for k, (bound, r) in enumerate(tiers):
            lower[i, k], span[i, k], rate[i, k] = previous, bound - previous, r
            previous = bound
    return lower, span, rate


def position_rules(venues: dict[str, Venue], *, venue: list[str], underlying: list[str],
                   collateral_currency: list[str], mmr: np.ndarray, source: str = "book") -> PositionRules:
    """Per-position arrays of the conventions of each position's venue. ``mmr``: the book's
    own maintenance rate per row (NaN: the venue's tiers). A ConfigError names an unknown
    venue or a collateral currency without a haircut."""
    unknown = sorted({v for v in venue if v not in venues})
    if unknown:
        raise ConfigError(f"{source}: venue {unknown[0]!r} is not in the venue table (known: {', '.join(sorted(venues))}); "
                          "add it to a `venues:` table")
    for v, c in zip(venue, collateral_currency, strict=True):
        if c not in venues[v].haircuts.rates:
            raise ConfigError(f"venues.{v}.haircuts.rates: no haircut for collateral currency {c!r} "
                              f"(known: {', '.join(venues[v].haircuts.rates)})")
    funding = [venues[v].funding for v in venue]
    tiers = [
        [(math.inf, float(m))] if not math.isnan(m) else venues[v].maintenance.for_underlying(u)
        for v, u, m in zip(venue, underlying, mmr, strict=True)
    ]
    lower, width, rate = _tier_arrays(tiers) if tiers else (np.zeros((0, 1)),) * 3
    return PositionRules(
        interest=np.asarray([f.interest for f in funding], np.float64),
        clamp=np.asarray([f.clamp for f in funding], np.float64),
        cap=np.asarray([f.cap for f in funding], np.float64),
        periods_per_day=np.asarray([24.0 / f.interval_hours for f in funding], np.float64),
        continuous=np.asarray([f.accrual == "continuous" for f in funding], bool),
        premium_scale=np.asarray([f.interval_hours / 8.0 for f in funding], np.float64),
        tier_lower=lower, tier_width=width, tier_rate=rate,
        fee=np.asarray([venues[v].liquidation_fee.rate for v in venue], np.float64),
        haircut=np.asarray([venues[v].haircuts.rates[c] for v, c in zip(venue, collateral_currency, strict=True)], np.float64),
    )
