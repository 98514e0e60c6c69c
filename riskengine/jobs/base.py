"""The one shape of a job.

A job is a :class:`Job`: a pydantic ``Config``, the config fields that ``--paths`` and
``--seed`` set (:class:`Sampling`), an optional cost :meth:`~Job.estimate`, and
``run(config, context) -> JobResult``. A job computes; it does not write files, time
itself, parse overrides or handle checkpoints, x64 and progress bars: the CLI
(:mod:`riskengine.cli`) does each of those chores once for every job, and writes the
result (``summary.json`` with ``seconds``, one parquet file per table, ``report.html``,
and any extra files) into a temporary folder renamed into place.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from riskengine.config import resolve_path

if TYPE_CHECKING:
    import pandas as pd

    from riskengine.budget import Estimate
    from riskengine.report import Report

Progress = Callable[[int, int], None]


class Stopwatch:
    """Seconds per phase of a run: :meth:`lap` records the time since the previous lap
    (or since the stopwatch was made) under a name, in :attr:`seconds`."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = now - self._last
        self._last = now


@dataclasses.dataclass(frozen=True)
class Sampling:
    """Dotted config fields that ``--paths`` and ``--seed`` set, and the one that holds
    the run's dtype (``float64`` turns on JAX's x64 for the run). None: not applicable."""

    paths: str | None = None
    seed: str | None = None
    dtype: str | None = None

    def apply(self, data: dict[str, Any], *, paths: int | None, seed: int | None) -> dict[str, Any]:
        """``data`` with the overrides set (sections created where absent); ``data`` itself
        is not changed."""
        data = dict(data)
        for field, value in ((self.paths, paths), (self.seed, seed)):
            if field is not None and value is not None:
                data = _set(data, field.split("."), value)
        return data

    def read_dtype(self, config: BaseModel) -> str:
        value: Any = config
        for part in (self.dtype or "").split("."):
            if not part:
                return "float32"
            value = getattr(value, part, None)
        return value if value in ("float32", "float64") else "float32"


def _set(data: dict[str, Any], parts: list[str], value: Any) -> dict[str, Any]:
    data = dict(data)
    if len(parts) == 1:
        data[parts[0]] = value
    else:
        inner = data.get(parts[0])
        data[parts[0]] = _set(dict(inner) if isinstance(inner, dict) else {}, parts[1:], value)
    return data


@dataclasses.dataclass(frozen=True)
class JobContext:
    """What a job may know of its run besides its config."""

    base_dir: Path  # the config file's folder: relative paths in the config start here
    progress: Progress | None = None

    def resolve(self, path: str | Path) -> Path:
        """A path from the config: as given when absolute or when it exists from the current
        directory, else relative to the config file's folder."""
        return resolve_path(path, self.base_dir)


@dataclasses.dataclass
class JobResult:
    """What a job computed. ``summary``: the figures (``seconds`` is added by the CLI);
    ``tables``: name -> table, written as ``<name>.parquet``; ``report``: builds the HTML
    report from the final summary; ``writers``: extra outputs, each called with the output
    folder (e.g. a trained policy's files); ``exit_code``: nonzero when a risk limit is
    breached (``--fail-on-breach``); ``console``: a few lines the CLI prints when the run is
    written (what a person reads first, e.g. the stress job's liquidation table)."""

    summary: dict[str, Any]
    tables: dict[str, pd.DataFrame] = dataclasses.field(default_factory=dict)
    report: Callable[[dict[str, Any]], Report] | None = None
    writers: list[Callable[[Path], None]] = dataclasses.field(default_factory=list)
    exit_code: int = 0
    console: str | None = None


class Job:
    """A job kind (see the module docstring). Subclasses set ``name``, ``Config`` and
    ``sampling`` and implement :meth:`run`."""

    name: ClassVar[str]
    Config: ClassVar[type[BaseModel]]
    sampling: ClassVar[Sampling] = Sampling()

    def apply_overrides(self, data: dict[str, Any], *, paths: int | None, seed: int | None) -> dict[str, Any]:
        """The config mapping with ``--paths`` / ``--seed`` applied (before validation)."""
        return self.sampling.apply(data, paths=paths, seed=seed)

    def dtype(self, config: BaseModel) -> str:
        return self.sampling.read_dtype(config)

    def estimate(self, config: BaseModel, context: JobContext) -> Estimate | None:
        """Memory and work of the run, for the CLI's refusal of what cannot finish."""
        return None

    def run(self, config: BaseModel, context: JobContext) -> JobResult:
        raise NotImplementedError


def execute(job: Job, config: BaseModel, out: Path, *, base_dir: Path | None = None,
            progress: Progress | None = None) -> JobResult:
    """Run ``job`` and write its result into the folder ``out`` (which must exist), with the
    run's wall time as ``seconds`` in the summary."""
    started = time.perf_counter()
    result = job.run(config, JobContext(base_dir=Path(base_dir) if base_dir is not None else Path.cwd(),
                                        progress=progress))
    result.summary["seconds"] = time.perf_counter() - started
    write_result(result, Path(out))
    return result


def write_result(result: JobResult, out: Path) -> None:
    """Write a job's result into ``out`` (a fresh temporary folder)."""
    from riskengine.report import write_json, write_parquet

    for name, table in result.tables.items():
        write_parquet(out / f"{name}.parquet", table)
    for writer in result.writers:
        writer(out)
    if result.report is not None:
        result.report(result.summary).write(out / "report.html")
    write_json(out / "summary.json", result.summary)
