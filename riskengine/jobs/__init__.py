"""Job kinds: one module per ``job:`` value, each with ``Config`` and ``run(config, out)``.

The registry maps each ``job:`` value to its module by name, explicitly; a module is
imported when its job is first asked for, so a price job does not pay for importing the
allocation solvers, the hedging package or the exposure models.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from types import ModuleType

JOB_MODULES: dict[str, str] = {
    "allocate": "riskengine.jobs.allocate",
    "backtest": "riskengine.jobs.backtest",
    "calibrate": "riskengine.jobs.calibrate",
    "exposure": "riskengine.jobs.exposure",
    "hedge": "riskengine.jobs.hedge",
    "market_making": "riskengine.jobs.market_making",
    "price": "riskengine.jobs.price",
    "stress": "riskengine.jobs.stress",
}


class _Registry(Mapping[str, ModuleType]):
    """``JOBS[kind]``: the job's module, imported on first use."""

    def __getitem__(self, kind: str) -> ModuleType:
        return importlib.import_module(JOB_MODULES[kind])

    def __iter__(self) -> Iterator[str]:
        return iter(JOB_MODULES)

    def __len__(self) -> int:
        return len(JOB_MODULES)

    def __contains__(self, kind: object) -> bool:
        return kind in JOB_MODULES


JOBS: Mapping[str, ModuleType] = _Registry()

__all__ = ["JOBS", "JOB_MODULES"]
