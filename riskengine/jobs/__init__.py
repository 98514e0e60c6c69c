"""Job kinds: one module per ``job:`` value, each with ``Config`` and ``run(config, out)``."""

from __future__ import annotations

from types import ModuleType

from riskengine.jobs import (
    allocate,
    backtest,
    calibrate,
    exposure,
    hedge,
    market_making,
    price,
    stress,
)

JOBS: dict[str, ModuleType] = {
    "allocate": allocate,
    "backtest": backtest,
    "calibrate": calibrate,
    "exposure": exposure,
    "hedge": hedge,
    "market_making": market_making,
    "price": price,
    "stress": stress,
}

__all__ = ["JOBS"]
