"""Job kinds: the registry maps each ``job:`` value to its :class:`~riskengine.jobs.base.Job`
class, explicitly, by name; a job's module is imported when the job is first asked for, so
a price job does not pay for importing the allocation solvers, the hedging package or the
exposure models.
"""

from __future__ import annotations

import importlib
from typing import Any

from riskengine.jobs.base import (
    Job,
    JobContext,
    JobResult,
    Sampling,
    execute,
    resolve_path,
    write_result,
)

JOB_CLASSES: dict[str, str] = {
    "allocate": "riskengine.jobs.allocate:AllocateJob",
    "backtest": "riskengine.jobs.backtest:BacktestJob",
    "calibrate": "riskengine.jobs.calibrate:CalibrateJob",
    "exposure": "riskengine.jobs.exposure:ExposureJob",
    "hedge": "riskengine.jobs.hedge:HedgeJob",
    "market_making": "riskengine.jobs.market_making:MarketMakingJob",
    "price": "riskengine.jobs.price:PriceJob",
    "stress": "riskengine.jobs.stress:StressJob",
}


def load_job(target: str) -> Job:
    """The :class:`Job` a registry entry (``"module:Class"``) names."""
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)()


class _Registry(dict):
    """``JOBS[kind]``: the job, loaded on first use (an entry set to an object is kept)."""

    def __getitem__(self, kind: str) -> Any:
        value = super().__getitem__(kind)
        return load_job(value) if isinstance(value, str) else value


JOBS: dict[str, Any] = _Registry(JOB_CLASSES)

__all__ = ["JOBS", "JOB_CLASSES", "Job", "JobContext", "JobResult", "Sampling", "execute", "load_job", "resolve_path",
           "write_result"]
