"""Job kinds: one module per ``job:`` value, each with ``Config`` and ``run(config, out)``."""

from __future__ import annotations

from types import ModuleType

from riskengine.jobs import calibrate, price, stress

JOBS: dict[str, ModuleType] = {
    "calibrate": calibrate,
    "price": price,
    "stress": stress,
}

__all__ = ["JOBS"]
