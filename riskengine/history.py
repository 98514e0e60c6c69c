"""Daily price history: the bundled closes (``configs/data/history.csv``) or a user's own
OHLCV file, CSV or parquet.

Accepted layouts (column names are case-insensitive; the date column is one of ``date``,
``day``, ``timestamp``, ``time``, ``datetime``):

- *wide*: a date column and one close column per asset (``date,BTC,ETH``);
- *long*: a date column, an asset column (``asset``, ``symbol`` or ``ticker``) and a
  ``close`` column (other OHLCV columns are ignored);
- *single-asset OHLCV*: a date column and ``open,high,low,close,volume``; the ``close`` is
  the asset's price (give exactly one asset).

Rows are sorted by date; a repeated date (per asset) is an error naming it, as is a
non-positive or non-numeric close. Dates where any requested asset has no price are dropped
(their number is reported). With ``proxy``, an asset the file lacks takes another asset's
closes (the stress job: SOL has no bundled history and moves with ETH).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from riskengine.errors import ConfigError
from riskengine.paths import resolve_path

__all__ = ["History", "load_history"]

_DATE_NAMES = ("date", "day", "timestamp", "time", "datetime")
_ASSET_NAMES = ("asset", "symbol", "ticker")


@dataclasses.dataclass
class History:
    closes: pd.DataFrame  # index: dates (ascending), columns: assets
    source: str
    dropped_dates: int
    proxies: dict[str, str] = dataclasses.field(default_factory=dict)  # asset -> the asset whose closes it took

    @property
    def log_returns(self) -> pd.DataFrame:
        """Daily log returns ``log(C_t / C_{t-1})`` (one row fewer than ``closes``)."""
        return np.log(self.closes).diff().iloc[1:]

    @property
    def simple_returns(self) -> pd.DataFrame:
        """Daily simple returns ``C_t / C_{t-1} - 1`` (one row fewer than ``closes``)."""
        return self.closes.pct_change().iloc[1:]


def read_table(path: Path, field: str) -> pd.DataFrame:
    """A CSV (``#`` comments allowed) or parquet table; unreadable files give a ConfigError
    naming ``field``."""
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path, comment="#")
    except FileNotFoundError:
        raise ConfigError(f"{field}: file not found: {str(path)!r}") from None
    except (OSError, ValueError) as err:
        raise ConfigError(f"{field}: cannot read {str(path)!r}: {err}") from None


def load_history(path: str | Path, assets: Sequence[str], *, base_dir: Path | None = None,
                 field: str = "history", proxy: str | None = None) -> History:
    """Daily closes of ``assets`` from ``path`` (relative paths: the current directory, else
    ``base_dir``): a :class:`History` whose ``closes`` has one column per asset, in order.

    ``proxy``: an asset the file does not hold takes the closes of ``proxy``, or of the
    file's first asset when the file lacks ``proxy`` too (``History.proxies`` names them);
    without it a missing asset is an error."""
    p = resolve_path(path, base_dir)
    frame = read_table(p, field)
    lower = {str(c).lower(): c for c in frame.columns}
    date_col = next((lower[n] for n in _DATE_NAMES if n in lower), None)
    if date_col is None:
        raise ConfigError(f"{field}: {str(p)!r} has no date column (one of {list(_DATE_NAMES)}); "
                          f"columns: {list(frame.columns)}")
    try:
        dates = pd.to_datetime(frame[date_col], utc=False)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{field}: column {date_col!r} of {str(p)!r} is not dates: {err}") from None
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_localize(None)
    dates = dates.dt.normalize()
    asset_col = next((lower[n] for n in _ASSET_NAMES if n in lower), None)
    wanted = list(assets)
    if asset_col is not None:  # long format
        if "close" not in lower:
            raise ConfigError(f"{field}: {str(p)!r} has an asset column but no 'close' column")
        long = pd.DataFrame({"date": dates, "asset": frame[asset_col].astype(str),
                             "close": frame[lower["close"]]})
        proxies = _proxies(wanted, list(dict.fromkeys(long["asset"])), proxy)
        assets = list(dict.fromkeys(proxies.get(a, a) for a in wanted))
        missing = [a for a in assets if a not in set(long["asset"])]
        if missing:
            raise ConfigError(f"{field}: no rows for asset {missing[0]!r} in {str(p)!r}; have "
                              f"{sorted(set(long['asset']))[:20]}")
        long = long[long["asset"].isin(assets)]
        dup = long.duplicated(["date", "asset"], keep=False)
        if dup.any():
            row = long[dup].iloc[0]
            raise ConfigError(f"{field}: {str(p)!r} has more than one row for {row['asset']} on "
                              f"{row['date'].date()}")
        wide = long.pivot(index="date", columns="asset", values="close")
    else:
        proxies = _proxies(wanted, [c for c in frame.columns if c != date_col], proxy)
        assets = list(dict.fromkeys(proxies.get(a, a) for a in wanted))
        if "close" in lower and not any(a in frame.columns for a in assets):
            if len(assets) != 1:
                raise ConfigError(f"{field}: {str(p)!r} is a single-asset OHLCV file; give exactly "
                                  f"one asset (got {assets})")
            wide = pd.DataFrame({assets[0]: frame[lower["close"]].to_numpy()}, index=dates)
        else:
            missing = [a for a in assets if a not in frame.columns]
            if missing:
                raise ConfigError(f"{field}: no column {missing[0]!r} in {str(p)!r}; have "
                                  f"{[c for c in frame.columns if c != date_col]}")
            wide = pd.DataFrame({a: frame[a].to_numpy() for a in assets}, index=dates)
        dup = wide.index.duplicated(keep=False)
        if dup.any():
            raise ConfigError(f"{field}: {str(p)!r} has more than one row for {wide.index[dup][0].date()}")
    wide = wide[assets].sort_index()
    for a in assets:
        col = pd.to_numeric(wide[a], errors="coerce")
        bad = col.isna() & wide[a].notna()
        if bad.any():
            raise ConfigError(f"{field}: close of {a} on {wide.index[bad][0].date()} is not a number "
                              f"({wide[a][bad].iloc[0]!r})")
        nonpos = col <= 0
        if nonpos.any():
            raise ConfigError(f"{field}: close of {a} on {wide.index[nonpos][0].date()} is not "
                              f"positive ({col[nonpos].iloc[0]!r})")
        wide[a] = col.astype(float)
    before = len(wide)
    wide = wide.dropna()
    wide.index.name = "date"
    if len(wide) < 3:
        raise ConfigError(f"{field}: {str(p)!r} has {len(wide)} dates with prices for all of {assets}")
    if proxies:
        wide = pd.DataFrame({a: wide[proxies.get(a, a)] for a in wanted}, index=wide.index)
    return History(closes=wide, source=str(p), dropped_dates=before - len(wide), proxies=proxies)


def _proxies(wanted: list[str], available: list[str], proxy: str | None) -> dict[str, str]:
    """``{asset: stand-in}`` for the wanted assets the file lacks (none without ``proxy``)."""
    if proxy is None or not available:
        return {}
    stand_in = proxy if proxy in available else available[0]
    return {a: stand_in for a in wanted if a not in available}
