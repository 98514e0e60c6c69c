"""The ``exposure`` job's input files: daily closes, factor series and the funding rate of
perpetuals, read as the config names them (paths relative to the config file's folder), and
which of them are absent (for ``if_missing: skip``).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from riskengine.allocation.exposure_config import FactorConfig, FundingConfig
from riskengine.allocation.factors import FactorInput, align, read_series, resolve
from riskengine.history import load_history


def load_prices(prices: str | Mapping[str, str], assets: Sequence[str], base_dir: Path | None, *,
                end: datetime.date | None = None) -> pd.DataFrame:
    """Daily closes ``[dates, assets]`` (NaN before an asset's first price) from one file with
    a column per asset, or one file per asset; up to ``end`` when given."""
    if isinstance(prices, str):
        closes = load_history(prices, assets, base_dir=base_dir, field="prices").closes
    else:
        cols = [load_history(prices[a], [a], base_dir=base_dir, field=f"prices.{a}").closes
                for a in assets]
        closes = pd.concat(cols, axis=1, join="outer").sort_index()
    closes = closes[list(assets)]
    if end is not None:
        closes = closes[closes.index <= pd.Timestamp(end)]
    return closes


def load_factors(factors: Sequence[FactorConfig], base_dir: Path | None) -> list[FactorInput]:
    out = []
    for i, f in enumerate(factors):
        series = read_series(f.path, column=f.column, date_column=f.date_column, base_dir=base_dir,
                             field=f"factors.{i}")
        out.append(FactorInput(name=f.name, series=series, lag_days=f.lag_days, transform=f.transform,
                               window_days=f.window_days, scale=f.scale, max_ffill_days=f.max_ffill_days,
                               vol_asset=f.vol_asset))
    return out


def load_funding(funding: FundingConfig | None, dates: pd.DatetimeIndex, assets: int,
                 base_dir: Path | None) -> np.ndarray:
    """``[dates, assets]``: the funding rate paid over ``(t, t + 1]`` by a long position held
    at ``t`` (the same rate for every asset; 0 on the last date, without ``funding``, and
    where the rate is unknown)."""
    out = np.zeros((len(dates), assets))
    if funding is None:
        return out
    series = read_series(funding.path, column=funding.column, date_column=funding.date_column,
                         base_dir=base_dir, field="costs.funding")
    daily = align(series, dates, lag_days=0, max_ffill_days=funding.max_ffill_days) * funding.scale
    out[:-1] = np.where(np.isfinite(daily[1:]), daily[1:], 0.0)[:, None]
    return out


def missing_inputs(prices: str | Mapping[str, str], factors: Sequence[FactorConfig],
                   funding: FundingConfig | None, base_dir: Path | None) -> list[tuple[str, str]]:
    """``(field, path)`` of each input file that does not exist."""
    named = ([("prices", prices)] if isinstance(prices, str)
             else [(f"prices.{a}", p) for a, p in prices.items()])
    named += [(f"factors.{i}.path", f.path) for i, f in enumerate(factors)]
    named += [("costs.funding.path", funding.path)] if funding else []
    return [(f, p) for f, p in named if not resolve(p, base_dir).exists()]
