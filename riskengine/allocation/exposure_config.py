"""The sections of the ``exposure`` job's config (its root, ``Config``, is in
:mod:`riskengine.jobs.exposure`): validated once at the boundary, each turned by
``settings()`` (or ``limits()``) into the plain settings object of the allocation module it
configures, so the walk-forward code never sees pydantic.
"""

from __future__ import annotations

import datetime
from typing import Literal

from pydantic import Field, field_validator

from riskengine.allocation.exposure import Limits
from riskengine.allocation.factors import TRANSFORMS, PriceFactors
from riskengine.allocation.policy import PolicySettings
from riskengine.allocation.signals import CVSettings, GBTSettings, RidgeSettings
from riskengine.allocation.walk_forward import WalkForwardSettings
from riskengine.config import Strict


class FactorConfig(Strict):
    name: str = Field(min_length=1)
    path: str = Field(min_length=1)
    column: str | None = None
    date_column: str | None = None
    lag_days: int = 1
    transform: str = "level"
    window_days: int = Field(default=30, ge=2)
    scale: float = Field(default=1.0, allow_inf_nan=False)
    max_ffill_days: int = Field(default=3, ge=0)
    vol_asset: str | None = None

    @field_validator("lag_days")
    @classmethod
    def _lag(cls, v: int) -> int:
        if v < 0:
            raise ValueError("must be >= 0 (a value is usable only after it is published)")
        return v

    @field_validator("transform")
    @classmethod
    def _transform(cls, v: str) -> str:
        if v not in TRANSFORMS:
            raise ValueError(f"unknown transform {v!r}; expected one of {list(TRANSFORMS)}")
        return v


class FundingConfig(Strict):
    """Daily funding rate paid by longs (received by shorts) of perpetuals: ``value * scale``
    (e.g. ``scale: 3`` for the daily mean of 8-hourly rates)."""

    path: str = Field(min_length=1)
    column: str | None = None
    date_column: str | None = None
    scale: float = Field(default=1.0, allow_inf_nan=False)
    max_ffill_days: int = Field(default=3, ge=0)


class CostsConfig(Strict):
    fee_bp: float = Field(default=5.0, ge=0, allow_inf_nan=False)
    slippage_bp: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    funding: FundingConfig | None = None

    @property
    def rate(self) -> float:
        """Fees plus slippage per unit of traded notional."""
        return (self.fee_bp + self.slippage_bp) / 1e4


class LimitsConfig(Strict):
    max_leverage: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    max_weight: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    max_turnover: float | None = Field(default=None, gt=0)
    long_only: bool = False
    cvar_95: float | None = Field(default=None, gt=0)  # one-day CVaR 95% budget, fraction of equity

    def limits(self) -> Limits:
        return Limits(max_leverage=self.max_leverage, max_weight=self.max_weight,
                      max_turnover=self.max_turnover, long_only=self.long_only)


class CVConfig(Strict):
    folds: int = Field(default=4, ge=2, le=20)
    purge_days: int = Field(default=1, ge=1)
    embargo_days: int = Field(default=5, ge=0)

    def settings(self) -> CVSettings:
        return CVSettings(folds=self.folds, purge_days=self.purge_days, embargo_days=self.embargo_days)


class WalkForwardConfig(Strict):
    start: datetime.date
    end: datetime.date | None = None
    window_days: int = Field(default=730, ge=60)
    retrain_every_days: int = Field(default=30, ge=1)
    cv: CVConfig = CVConfig()

    def settings(self, *, first: int, signal_scale: float, seed: int) -> WalkForwardSettings:
        """``first``: the index of the first decision date in the factor panel."""
        return WalkForwardSettings(first=first, window_days=self.window_days,
                                   retrain_every_days=self.retrain_every_days, cv=self.cv.settings(),
                                   signal_scale=signal_scale, seed=seed)


class PriceFactorsConfig(Strict):
    momentum_days: list[int] = Field(default_factory=lambda: [7, 30, 90])
    drawdown_days: int = Field(default=90, ge=0)
    vol_days: int = Field(default=30, ge=5)
    vol_factor: bool = True  # realised vol as a factor (it always sizes the risk budget)

    def settings(self) -> PriceFactors:
        return PriceFactors(momentum_days=tuple(self.momentum_days), drawdown_days=self.drawdown_days,
                            vol_days=self.vol_days, vol_factor=self.vol_factor)


class StandardiseConfig(Strict):
    min_days: int = Field(default=60, ge=5)
    window_days: int | None = Field(default=None, ge=10)
    clip: float = Field(default=4.0, gt=0)


class SizingConfig(Strict):
    target_vol: float = Field(default=0.5, gt=0, allow_inf_nan=False)  # annualised, of the whole book
    signal_scale: float = Field(default=0.1, gt=0)  # forecast (return / vol, daily) earning the full budget
    momentum_days: int = Field(default=30, ge=2)  # of the momentum baseline


class PolicyConfig(Strict):
    hidden: int = Field(default=16, ge=1)
    depth: int = Field(default=1, ge=0)
    steps: int = Field(default=300, ge=1)
    learning_rate: float = Field(default=0.01, gt=0)
    weight_decay: float = Field(default=1e-3, ge=0)
    objective: Literal["entropic", "cvar"] = "entropic"
    risk_aversion: float = Field(default=2.0, gt=0)
    level: float = Field(default=0.95, gt=0, lt=1)

    def settings(self) -> PolicySettings:
        return PolicySettings(hidden=self.hidden, depth=self.depth, steps=self.steps,
                              learning_rate=self.learning_rate, weight_decay=self.weight_decay,
                              objective=self.objective, risk_aversion=self.risk_aversion, level=self.level)


class RidgeConfig(Strict):
    alphas: list[float] = Field(default_factory=lambda: [0.01, 0.1, 1.0, 10.0], min_length=1)
    intercept: bool = True  # false: no drift forecast (the signal only)

    def settings(self) -> RidgeSettings:
        return RidgeSettings(alphas=tuple(self.alphas), intercept=self.intercept)


class GBTConfig(Strict):
    learning_rate: float = Field(default=0.05, gt=0)
    grid: list[tuple[int, int]] = Field(default_factory=lambda: [(4, 50), (4, 150), (8, 100)], min_length=1)
    min_child_samples: int = Field(default=50, ge=1)

    def settings(self) -> GBTSettings:
        return GBTSettings(learning_rate=self.learning_rate, grid=tuple(tuple(g) for g in self.grid),
                           min_child_samples=self.min_child_samples)


class RiskConfig(Strict):
    levels: list[float] = Field(default_factory=lambda: [0.99, 0.975], min_length=1)
    paths: int = Field(default=2000, ge=100)
    garch: Literal["garch", "gjr"] = "gjr"
    dist: Literal["normal", "t"] = "normal"


class MetricsConfig(Strict):
    bootstrap: int = Field(default=1000, ge=100)
    block_days: float = Field(default=10.0, ge=1)
    trials: int | None = Field(default=None, ge=1)  # configurations tried (default: the models)
