"""Where scenario returns come from: a CSV/parquet table, another job's output directory, or
a fresh simulation with riskengine's models.

Every loader returns ``(returns[scenarios, columns], names, description)`` with the values
checked finite (:func:`riskengine.allocation.check_returns`: a NaN names its column and row).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from riskengine.allocation.problem import check_returns
from riskengine.config import ConfigError, resolve_path
from riskengine.history import read_table
from riskengine.models import CorrelatedAssets
from riskengine.simulate import simulate_paths

__all__ = ["load_table", "load_run_dir", "simulate_returns", "resolve_path"]

DAYS_PER_YEAR = 365.0  # crypto trades every day


def _numeric(frame: pd.DataFrame, field: str, columns: Sequence[str] | None, source: str):
    if columns:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ConfigError(f"{field}: no column {missing[0]!r} in {source}; have {list(frame.columns)}")
        frame = frame[list(columns)]
    else:
        frame = frame.select_dtypes(include=[np.number, "bool"]).astype(float) if len(frame.columns) else frame
        dropped = [c for c in frame.columns if str(c).lower() in ("scenario", "path", "index", "id")]
        frame = frame.drop(columns=dropped)
    if frame.shape[1] == 0:
        raise ConfigError(f"{field}: {source} has no numeric columns")
    for col in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[col]):
            bad = pd.to_numeric(frame[col], errors="coerce").isna() & frame[col].notna()
            row = int(np.flatnonzero(bad.to_numpy())[0]) if bad.any() else 0
            raise ConfigError(f"{field}: column {col!r} of {source} is not numeric (row {row}: "
                              f"{frame[col].iloc[row]!r})")
    names = [str(c) for c in frame.columns]
    try:
        values = check_returns(frame.to_numpy(np.float64), names)
    except ConfigError as err:
        raise ConfigError(f"{field}: {source}: {str(err).removeprefix('returns: ')}") from None
    return values, names


def load_table(path: str | Path, *, base_dir: Path | None = None, columns: Sequence[str] | None = None,
               field: str = "returns"):
    """Scenario returns from a CSV (``#`` comments) or parquet file: rows are scenarios,
    numeric columns are assets or strategies (a ``scenario``/``path`` index column is
    ignored)."""
    p = resolve_path(path, base_dir)
    values, names = _numeric(read_table(p, field), field, columns, repr(str(p)))
    return values, names, f"table {p}"


def load_run_dir(run_dir: str | Path, *, base_dir: Path | None = None, horizon_days: int | None = None,
                 columns: Sequence[str] | None = None, field: str = "returns.from"):
    """Scenario P&L from another job's output directory, by its ``summary.json`` ``job``:

    - ``hedge``: ``pnl.parquet``, one column per strategy (P&L per evaluation path);
    - ``stress``: ``pnl.parquet`` per-underlying columns ``pnl_<h>d_<UNDERLYING>`` for the
      horizon ``horizon_days`` (default: the first horizon); a stress run that wrote only the
      book total ``pnl_<h>d`` cannot be allocated across underlyings.
    """
    d = resolve_path(run_dir, base_dir)
    summary_path = d / "summary.json"
    try:
        summary = json.loads(summary_path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{field}: {str(d)!r} is not a job output directory (no summary.json)") from None
    except (OSError, ValueError) as err:
        raise ConfigError(f"{field}: cannot read {str(summary_path)!r}: {err}") from None
    job = summary.get("job")
    pnl_path = d / "pnl.parquet"
    if job not in ("hedge", "stress"):
        raise ConfigError(f"{field}: {str(d)!r} holds a {job!r} run; expected the output of a hedge "
                          f"or stress job")
    frame = read_table(pnl_path, field)
    if job == "stress" and not columns:
        horizons = summary.get("horizons_days") or sorted(
            {int(c[4:].split("d")[0]) for c in frame.columns if c.startswith("pnl_") and "d" in c[4:]})
        h = horizon_days if horizon_days is not None else (horizons[0] if horizons else 1)
        prefix = f"pnl_{h}d_"
        cols = [c for c in frame.columns if c.startswith(prefix)]
        if not cols:
            raise ConfigError(
                f"{field}: the stress run {str(d)!r} has only the book's total P&L "
                f"({', '.join(map(str, frame.columns))}); allocating across underlyings needs per-"
                f"underlying columns {prefix}<UNDERLYING> in pnl.parquet (or give returns.from."
                f"columns)")
        frame = frame[cols].rename(columns={c: c[len(prefix):] for c in cols})
    values, names = _numeric(frame, field, columns, repr(str(pnl_path)))
    return values, names, f"{job} run {d}"


def simulate_returns(
    assets: Mapping[str, object],
    *,
    correlation=None,
    horizon_days: float,
    paths: int,
    seed: int,
    drift: Mapping[str, float] | None = None,
    steps_per_day: float = 1.0,
    dtype=jnp.float32,
):
    """Simple horizon returns ``S_T / S_0 - 1`` of correlated assets simulated by
    :func:`riskengine.simulate_paths`. ``assets``: ``{name: model}`` (riskengine models);
    ``drift``: annual drift per asset (the models' rate; default 0)."""
    names = list(assets)
    models = [assets[n] for n in names]
    try:
        combined = CorrelatedAssets.from_correlation(models, correlation, names=names)
    except ValueError as err:
        raise ConfigError(f"returns.simulate.{err}") from None
    rate = np.asarray([float((drift or {}).get(n, 0.0)) for n in names])
    years = horizon_days / DAYS_PER_YEAR
    obs = simulate_paths(combined, key=jax.random.key(seed), times=[years], num_paths=paths,
                         steps_per_year=steps_per_day * DAYS_PER_YEAR, rate=rate, dtype=dtype)
    returns = np.expm1(np.asarray(obs.log_return[0], np.float64))
    return check_returns(returns, names), names, (
        f"simulated: {paths} paths, {horizon_days:g}-day returns of {', '.join(names)}")
