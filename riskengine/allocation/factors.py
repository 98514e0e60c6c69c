"""Factor panel: what is known at each decision time, and nothing else.

A decision is taken at the close of day ``t`` (the price dates of the panel). A factor
value dated ``d`` with publication lag ``L`` days is usable from ``d + L`` on. Values are put
on a daily calendar, shifted by their lag, forward-filled for at most ``max_ffill_days``
calendar days (never backward), and read at the decision dates. Derived factors (z-score,
change, log change, implied minus realised volatility) and the price factors of each asset
(momentum over several windows, drawdown, realised volatility) are then computed from the
aligned values with trailing windows only, and every factor is standardised by its own
past (expanding, or trailing ``window`` days) mean and standard deviation, clipped to
``+-clip`` and set to 0 (the neutral value) where unknown.

Every step is a causal filter run forwards in time (pandas ``rolling``/``expanding``/
``ffill`` and differences), so the panel of data truncated after ``t`` equals, bitwise, the
first rows of the panel of the full data: ``tests/test_exposure_factors.py`` checks it.

File formats: CSV (``#`` comments and a UTF-8 byte-order mark allowed) or parquet with a
date column (``date``, ``Date``, ``datetime``, ``timestamp``, ...; ISO dates, ``YYYY.M.D``
or timestamps) and a value column. A file with several rows on one calendar day is refused
unless its dates carry times of day (an intraday series), which is reduced to the last value
of each day.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from jaxtyping import Float

from riskengine.config import ConfigError

Transform = Literal["level", "change", "log_change", "zscore", "minus_realised_vol"]
TRANSFORMS: tuple[str, ...] = ("level", "change", "log_change", "zscore", "minus_realised_vol")
DAYS_PER_YEAR = 365
_DATE_NAMES = ("date", "datetime", "timestamp", "time", "day", "datetime_utc")


def resolve(path: str | Path, base_dir: Path | None) -> Path:
    """``path`` as given if it exists or is absolute, else relative to ``base_dir``."""
    p = Path(path)
    if not (p.is_absolute() or p.exists()) and base_dir is not None:
        p = Path(base_dir) / p
    return p


def _read(p: Path, field: str) -> pd.DataFrame:
    try:
        if p.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(p)
        return pd.read_csv(p, comment="#", encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{field}: file not found: {str(p)!r}") from None
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise ConfigError(f"{field}: cannot read {str(p)!r}: {err}") from None


def _parse_dates(raw: pd.Series, field: str, p: Path) -> pd.Series:
    text = raw.astype(str).str.strip()
    try:
        if text.str.fullmatch(r"\d{4}\.\d{1,2}\.\d{1,2}").all():
            dates = pd.to_datetime(text, format="%Y.%m.%d")
        elif pd.api.types.is_numeric_dtype(raw):  # epoch timestamps: seconds or milliseconds
            unit = "ms" if float(np.nanmax(np.abs(raw.to_numpy(float)))) > 1e11 else "s"
            dates = pd.to_datetime(raw, unit=unit)
        else:
            dates = pd.to_datetime(text.str.replace(" UTC", "", regex=False), format="mixed")
    except (ValueError, TypeError, OverflowError) as err:
        raise ConfigError(f"{field}: the date column of {str(p)!r} is not dates: {err}") from None
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_convert("UTC").dt.tz_localize(None)
    return dates


def read_series(path: str | Path, *, column: str | None = None, date_column: str | None = None,
                base_dir: Path | None = None, field: str = "factors") -> pd.Series:
    """One daily series (index: normalised dates, ascending; float values, NaN where not a
    number) from a CSV/parquet file. Raises :class:`ConfigError` naming ``field`` for a file
    without dates, without the column, or with duplicated dates."""
    p = resolve(path, base_dir)
    frame = _read(p, f"{field}.path")
    frame.columns = [str(c).strip() for c in frame.columns]
    lower = {c.lower(): c for c in frame.columns}
    if date_column is not None:
        if date_column not in frame.columns:
            raise ConfigError(f"{field}.date_column: no column {date_column!r} in {str(p)!r}; "
                              f"have {list(frame.columns)}")
        date_col = date_column
    else:
        date_col = next((lower[n] for n in _DATE_NAMES if n in lower), None)
        if date_col is None:
            raise ConfigError(f"{field}.path: {str(p)!r} has no date column (one of "
                              f"{list(_DATE_NAMES)}); columns: {list(frame.columns)}")
    others = [c for c in frame.columns if c != date_col]
    if column is None:
        if len(others) == 1:
            column = others[0]
        elif "Data" in others:
            column = "Data"
        else:
            raise ConfigError(f"{field}.column: {str(p)!r} has several value columns {others}; "
                              "name one")
    elif column not in frame.columns:
        raise ConfigError(f"{field}.column: no column {column!r} in {str(p)!r}; have {others}")
    if frame.empty:
        raise ConfigError(f"{field}.path: {str(p)!r} has no rows")
    stamps = _parse_dates(frame[date_col], f"{field}.path", p)
    if stamps.isna().any():
        raise ConfigError(f"{field}.path: {str(p)!r} has a row without a date "
                          f"(row {int(np.flatnonzero(stamps.isna())[0]) + 2})")
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(np.float64)
    days = stamps.dt.normalize()
    intraday = bool((stamps != days).any())
    series = pd.Series(values, index=pd.DatetimeIndex(stamps if intraday else days))
    if intraday:  # an intraday series: the last value of each calendar day
        series = series.sort_index()
        series = series.groupby(series.index.normalize()).last()
    else:
        dup = series.index.duplicated(keep=False)
        if dup.any():
            raise ConfigError(f"{field}.path: {str(p)!r} has duplicated dates "
                              f"({series.index[dup][0].date()})")
        series = series.sort_index()
    series.index.name = "date"
    return series


def align(series: pd.Series, dates: pd.DatetimeIndex, *, lag_days: int,
          max_ffill_days: int) -> Float[np.ndarray, " dates"]:
    """The value of ``series`` usable at each of ``dates``: dated ``d`` is usable from
    ``d + lag_days``; forward-filled for at most ``max_ffill_days`` calendar days; NaN where
    nothing is usable."""
    if lag_days < 0:
        raise ValueError(f"lag_days: must be >= 0, got {lag_days}")
    s = series.dropna()
    s.index = s.index + pd.Timedelta(days=int(lag_days))
    if s.empty or len(dates) == 0:
        return np.full(len(dates), np.nan)
    first = min(s.index[0], dates[0])
    calendar = pd.date_range(first, dates[-1], freq="D")
    s = s[s.index <= dates[-1]]
    daily = s.reindex(calendar).ffill(limit=int(max_ffill_days)) if max_ffill_days > 0 else s.reindex(calendar)
    return daily.reindex(dates).to_numpy(np.float64)


def standardise(x: Float[np.ndarray, "dates ..."], *, min_days: int, window: int | None = None,
                clip: float = 4.0) -> Float[np.ndarray, "dates ..."]:
    """Past-only z-score along the first axis: ``(x_t - mean) / std`` of the values up to and
    including ``t`` (expanding, or the trailing ``window`` days), needing ``min_days`` values;
    clipped to ``+-clip``; 0 where unknown."""
    shape = x.shape
    frame = pd.DataFrame(x.reshape(shape[0], -1))
    roll = frame.expanding(min_periods=min_days) if window is None else frame.rolling(window, min_periods=min_days)
    mean, std = roll.mean().to_numpy(), roll.std(ddof=1).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (frame.to_numpy() - mean) / std
    z = np.where(np.isfinite(z), np.clip(z, -clip, clip), 0.0)
    return z.reshape(shape)


@dataclass(frozen=True)
class FactorInput:
    """A factor read from a file: the series, its lag, its transform."""

    name: str
    series: pd.Series
    lag_days: int = 1
    transform: Transform = "level"
    window_days: int = 30  # of change / log_change / zscore / the realised vol
    scale: float = 1.0  # multiplies the raw value (e.g. 0.01 for vol points)
    max_ffill_days: int = 3
    vol_asset: str | None = None  # minus_realised_vol: whose realised vol (default: the first asset)


@dataclass(frozen=True)
class PriceFactors:
    """Factors of each asset's own closes."""

    momentum_days: tuple[int, ...] = (7, 30, 90)
    drawdown_days: int = 90  # 0: no drawdown factor
    vol_days: int = 30  # the realised vol (a factor, and the risk budget's volatility)
    vol_factor: bool = True


@dataclass(frozen=True)
class Panel:
    """Standardised factors known at the close of each date."""

    dates: pd.DatetimeIndex
    assets: tuple[str, ...]
    names: tuple[str, ...]
    values: Float[np.ndarray, "dates assets factors"]  # standardised, 0 where unknown
    raw: Float[np.ndarray, "dates assets factors"]  # before standardisation (NaN where unknown)
    vol: Float[np.ndarray, "dates assets"]  # daily realised vol of each asset up to t (NaN early)


def realised_vol(log_returns: Float[np.ndarray, "dates assets"], days: int) -> Float[np.ndarray, "dates assets"]:
    """Trailing standard deviation of daily log returns (per day, not annualised)."""
    return pd.DataFrame(log_returns).rolling(days, min_periods=max(5, days // 2)).std(ddof=1).to_numpy()


def _derive(values: np.ndarray, f: FactorInput, ref_vol: np.ndarray) -> np.ndarray:
    v = values * f.scale
    w = f.window_days
    s = pd.Series(v)
    if f.transform == "level":
        return v
    if f.transform == "change":
        return (s - s.shift(w)).to_numpy()
    if f.transform == "log_change":
        with np.errstate(invalid="ignore", divide="ignore"):
            return (np.log(s.where(s > 0)) - np.log(s.where(s > 0)).shift(w)).to_numpy()
    if f.transform == "zscore":
        roll = s.rolling(w, min_periods=max(5, w // 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            return ((s - roll.mean()) / roll.std(ddof=1)).to_numpy()
    if f.transform == "minus_realised_vol":  # implied (annualised, decimal) minus realised
        return v - ref_vol * math.sqrt(DAYS_PER_YEAR)
    raise ValueError(f"transform: unknown {f.transform!r}; expected one of {TRANSFORMS}")


def build_panel(closes: pd.DataFrame, factors: list[FactorInput], *,
                price_factors: PriceFactors = PriceFactors(), standardise_min_days: int = 60,
                standardise_window: int | None = None, clip: float = 4.0) -> Panel:
    """The panel at the dates of ``closes`` (rows: dates ascending; columns: assets; NaN
    where an asset does not trade yet). File factors are common to all assets; price
    factors are per asset."""
    dates = pd.DatetimeIndex(closes.index)
    assets = tuple(str(a) for a in closes.columns)
    logp = np.log(closes.to_numpy(np.float64))
    log_ret = np.vstack([np.full((1, len(assets)), np.nan), np.diff(logp, axis=0)])
    vol = realised_vol(log_ret, price_factors.vol_days)
    names: list[str] = []
    columns: list[np.ndarray] = []  # each [dates, assets]
    for f in factors:
        aligned = align(f.series, dates, lag_days=f.lag_days, max_ffill_days=f.max_ffill_days)
        ref = assets.index(f.vol_asset) if f.vol_asset in assets else 0
        ref_vol = realised_vol(log_ret[:, [ref]], f.window_days)[:, 0]
        derived = _derive(aligned, f, ref_vol)
        names.append(f.name)
        columns.append(np.repeat(derived[:, None], len(assets), axis=1))
    frame = pd.DataFrame(logp)
    for m in price_factors.momentum_days:
        names.append(f"momentum_{m}d")
        columns.append((frame - frame.shift(m)).to_numpy())
    if price_factors.drawdown_days:
        names.append(f"drawdown_{price_factors.drawdown_days}d")
        peak = frame.rolling(price_factors.drawdown_days, min_periods=1).max()
        columns.append((frame - peak).to_numpy())
    if price_factors.vol_factor:
        names.append(f"realised_vol_{price_factors.vol_days}d")
        columns.append(vol * math.sqrt(DAYS_PER_YEAR))
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ConfigError(f"factors: the name {dup!r} is used twice")
    raw = np.stack(columns, axis=-1) if columns else np.zeros((len(dates), len(assets), 0))
    values = standardise(raw, min_days=standardise_min_days, window=standardise_window, clip=clip)
    return Panel(dates=dates, assets=assets, names=tuple(names), values=values, raw=raw, vol=vol)
