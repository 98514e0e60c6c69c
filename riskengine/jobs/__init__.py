"""Job kinds: one module per ``job:`` value, each with ``Config`` and ``run(config, out)``."""

from __future__ import annotations

from types import ModuleType

from riskengine.jobs import price

JOBS: dict[str, ModuleType] = {
    "price": price,
}

__all__ = ["JOBS"]
