"""Deribit option-chain snapshots: one reader for the exports in ``../shared/data``.

Two column layouts are read (the layout is recognised from the header):

- the daily snapshots of ``deribit/options/*.csv.gz`` (:data:`DERIBIT_COLUMNS`): prices in
  coin (``bid_price``, ``ask_price``, ``mark_price``; an empty cell is a missing side),
  ``futures_price`` the expiry's forward (where it is empty, as for the one- and two-day
  expiries from April 2026, Deribit's underlying price ``underlying``, there the index),
  ``implied_volatility`` the mark IV as a decimal,
  ``time_to_maturity`` in years;
- the February 2021 chains of ``deribit_2021/*.csv`` (:data:`DERIBIT_2021_COLUMNS`, Deribit's
  ticker API): ``best_bid_price``/``best_ask_price`` in coin (0 is a missing side),
  ``underlying_price`` the forward, ``mark_iv`` in percent, ``timestamp`` in milliseconds;
  expiry, strike and type are parsed from ``instrument_name`` (``BTC-26MAR21-40000-C``;
  Deribit options expire at 08:00 UTC).

Either file may be gzip-compressed or plain. An optional ``set`` column (``train``/``test``)
is kept, for a user-chosen holdout.

The result, :class:`Chain`, holds one typed row per quote with both sides quoted:
``timestamp, instrument_name, currency, expiry, maturity, strike, option, is_call, bid, ask,
mark, mid, spread`` (coin), ``bid_usd, ask_usd, mark_usd, mid_usd`` (coin × the expiry's
forward, as an inverse option's coin premium is worth that many USD on the forward),
``forward, index, mark_iv, open_interest`` (and ``set`` if given). Rows without a bid or an
ask, crossed or locked rows (``bid >= ask``) expired rows (``maturity <= 0``), rows without a forward and repeated
instruments (the 2021 files hold some tickers twice: the latest capture is kept) are dropped
and counted in :attr:`Chain.dropped`. A missing column or an unreadable file raises
:class:`~riskengine.config.ConfigError` naming the file and the column.
"""

from __future__ import annotations

import dataclasses
import gzip
import re
import zlib
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from riskengine.config import ConfigError, Strict

__all__ = ["DERIBIT_2021_COLUMNS", "DERIBIT_COLUMNS", "Chain", "DeribitMarketConfig", "chain_market",
           "list_snapshots", "market_from_chain", "read_chain"]

DERIBIT_COLUMNS = (
    "timestamp", "instrument_name", "option_type", "strike", "expiry_datetime", "bid_price",
    "ask_price", "mark_price", "futures_price", "implied_volatility", "open_interest",
    "currency", "index_price",
)
DERIBIT_2021_COLUMNS = (
    "timestamp", "instrument_name", "underlying_price", "best_bid_price", "best_ask_price",
    "mark_price", "mark_iv", "open_interest", "index_price",
)
_YEAR_SECONDS = 365.25 * 86400.0  # as the exports' time_to_maturity
_INSTRUMENT = re.compile(r"^([A-Z]+)-(\d{1,2}[A-Z]{3}\d{2})-([0-9.]+)-([CP])$")
_SNAPSHOT_SUFFIXES = (".csv", ".csv.gz")


@dataclasses.dataclass(frozen=True)
class Chain:
    """One snapshot's quotes for one currency (see the module docstring for the columns)."""

    quotes: pd.DataFrame
    currency: str
    timestamp: pd.Timestamp
    source: str
    dropped: dict[str, int]  # one_sided, crossed, expired, no_forward, duplicate
    rows: int  # rows of this currency in the file

    def __len__(self) -> int:
        return len(self.quotes)

    @property
    def index(self) -> float:
        return float(self.quotes["index"].median())

    @property
    def forwards(self) -> pd.Series:
        """The forward per expiry (indexed by expiry)."""
        return self.quotes.groupby("expiry")["forward"].first()


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, compression="infer", low_memory=False)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, expected a Deribit chain CSV") from None
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile, UnicodeDecodeError,
            pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConfigError(f"{path}: cannot read as a Deribit chain CSV: {first}") from None


def _numeric(frame: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() & frame[column].notna() & (frame[column].astype(str).str.strip() != "")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ConfigError(f"{path}: column {column!r} row {row + 2}: not a number "
                          f"({frame[column].iloc[row]!r})")
    return values.to_numpy(np.float64)


def _require(frame: pd.DataFrame, columns, path: Path, layout: str) -> None:
    for column in columns:
        if column not in frame.columns:
            raise ConfigError(f"{path}: missing column {column!r} ({layout} layout)")


def _timestamps(values: pd.Series, path: Path, column: str, *, unit: str | None = None) -> pd.Series:
    try:
        if unit is not None:
            return pd.to_datetime(pd.to_numeric(values), unit=unit, utc=True)
        return pd.to_datetime(values, utc=True, format="ISO8601")
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{path}: column {column!r}: not a timestamp ({str(err).splitlines()[0]})") from None


def _standard_layout(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    _require(frame, DERIBIT_COLUMNS, path, "Deribit snapshot")
    timestamp = _timestamps(frame["timestamp"], path, "timestamp")
    expiry = _timestamps(frame["expiry_datetime"], path, "expiry_datetime")
    option = frame["option_type"].astype(str).str.lower().str.strip()
    bad = ~option.isin(["call", "put"])
    if bad.any():
        raise ConfigError(f"{path}: column 'option_type': expected call or put "
                          f"(got {frame['option_type'][bad].iloc[0]!r})")
    forward = _numeric(frame, "futures_price", path)
    if "underlying" in frame.columns:
        # Expiries without a listed future (from April 2026 the one- and two-day ones) have no
        # futures_price; Deribit's underlying for them is the index, in `underlying`.
        forward = np.where(np.isfinite(forward), forward, _numeric(frame, "underlying", path))
    out = pd.DataFrame({
        "timestamp": timestamp,
        "instrument_name": frame["instrument_name"].astype(str),
        "currency": frame["currency"].astype(str).str.upper().str.strip(),
        "expiry": expiry,
        "strike": _numeric(frame, "strike", path),
        "option": option.to_numpy(),
        "bid": _numeric(frame, "bid_price", path),
        "ask": _numeric(frame, "ask_price", path),
        "mark": _numeric(frame, "mark_price", path),
        "forward": forward,
        "index": _numeric(frame, "index_price", path),
        "mark_iv": _numeric(frame, "implied_volatility", path),
        "open_interest": _numeric(frame, "open_interest", path),
    })
    return out


def _layout_2021(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    _require(frame, DERIBIT_2021_COLUMNS, path, "Deribit 2021 ticker")
    names = frame["instrument_name"].astype(str)
    parts = names.str.extract(_INSTRUMENT)
    bad = parts[0].isna()
    if bad.any():
        raise ConfigError(f"{path}: column 'instrument_name': expected COIN-DDMMMYY-STRIKE-C/P "
                          f"(got {names[bad].iloc[0]!r})")
    try:
        expiry = pd.to_datetime(parts[1].str.zfill(7), format="%d%b%y", utc=True) + pd.Timedelta(hours=8)
    except ValueError as err:
        raise ConfigError(f"{path}: column 'instrument_name': bad expiry date "
                          f"({str(err).splitlines()[0]})") from None
    bid = _numeric(frame, "best_bid_price", path)
    ask = _numeric(frame, "best_ask_price", path)
    return pd.DataFrame({
        "timestamp": _timestamps(frame["timestamp"], path, "timestamp", unit="ms"),
        "instrument_name": names,
        "currency": parts[0].to_numpy(),
        "expiry": expiry,
        "strike": parts[2].astype(np.float64).to_numpy(),
        "option": np.where(parts[3] == "C", "call", "put"),
        "bid": np.where(bid > 0, bid, np.nan),  # the ticker API writes 0 for no order
        "ask": np.where(ask > 0, ask, np.nan),
        "mark": _numeric(frame, "mark_price", path),
        "forward": _numeric(frame, "underlying_price", path),
        "index": _numeric(frame, "index_price", path),
        "mark_iv": _numeric(frame, "mark_iv", path) / 100.0,
        "open_interest": _numeric(frame, "open_interest", path),
    })


def read_chain(path: str | Path, *, currency: str = "BTC") -> Chain:
    """The quotes of ``currency`` in the Deribit chain export ``path`` (either layout; gzip
    or plain), with the dropped rows counted. Raises :class:`ConfigError` (one line)."""
    path = Path(path)
    frame = _read_csv(path)
    if "best_bid_price" in frame.columns and "bid_price" not in frame.columns:
        table = _layout_2021(frame, path)
    else:
        table = _standard_layout(frame, path)
    if "set" in frame.columns:
        labels = frame["set"].astype(str).str.strip().str.lower()
        bad = ~labels.isin(["train", "test"])
        if bad.any():
            raise ConfigError(f"{path}: column 'set': expected train or test "
                              f"(got {frame['set'][bad].iloc[0]!r})")
        table["set"] = labels.to_numpy()
    currency = currency.upper()
    mine = (table["currency"] == currency).to_numpy()
    if not mine.any():
        found = sorted(table["currency"].unique())
        raise ConfigError(f"{path}: no {currency} quotes (currencies in the file: {found})")
    table = table[mine].reset_index(drop=True)
    for column in ("strike",):
        values = table[column].to_numpy()
        if not np.all(np.isfinite(values) & (values > 0)):
            row = int(np.flatnonzero(~(np.isfinite(values) & (values > 0)))[0])
            raise ConfigError(f"{path}: {table['instrument_name'].iloc[row]}: {column} must be a "
                              f"positive number (got {values[row]})")
    rows = len(table)
    seconds = (table["expiry"] - table["timestamp"]).dt.total_seconds().to_numpy()
    table["maturity"] = seconds / _YEAR_SECONDS
    bid, ask = table["bid"].to_numpy(), table["ask"].to_numpy()
    forward = table["forward"].to_numpy()
    no_forward = ~(np.isfinite(forward) & (forward > 0))
    one_sided = ~no_forward & ~(np.isfinite(bid) & np.isfinite(ask) & (bid > 0) & (ask > 0))
    expired = ~no_forward & ~one_sided & (table["maturity"].to_numpy() <= 0)
    crossed = ~no_forward & ~one_sided & ~expired & (bid >= ask)
    dropped = {"one_sided": int(one_sided.sum()), "crossed": int(crossed.sum()),
               "expired": int(expired.sum()), "no_forward": int(no_forward.sum())}
    one_sided |= no_forward
    # the same instrument twice (a re-captured ticker): keep the latest capture
    later = table.assign(_row=np.arange(len(table))).sort_values(["timestamp", "_row"], kind="stable")
    valid = ~(one_sided | expired | crossed)
    later = later[valid[later["_row"].to_numpy()]]
    duplicate = np.zeros(len(table), bool)
    duplicate[later["_row"].to_numpy()[later.duplicated("instrument_name", keep="last").to_numpy()]] = True
    dropped["duplicate"] = int(duplicate.sum())
    table = table[~(one_sided | expired | crossed | duplicate)].copy()
    table["is_call"] = (table["option"] == "call").to_numpy()
    table["mid"] = 0.5 * (table["bid"] + table["ask"])
    table["spread"] = table["ask"] - table["bid"]
    for side in ("bid", "ask", "mark", "mid"):
        table[f"{side}_usd"] = table[side] * table["forward"]
    columns = ["timestamp", "instrument_name", "currency", "expiry", "maturity", "strike",
               "option", "is_call", "bid", "ask", "mark", "mid", "spread", "bid_usd", "ask_usd",
               "mark_usd", "mid_usd", "forward", "index", "mark_iv", "open_interest"]
    if "set" in table.columns:
        columns.append("set")
    table = table[columns].sort_values(["expiry", "strike", "option"], kind="stable")
    timestamp = table["timestamp"].iloc[0] if len(table) else pd.Timestamp(0, tz="UTC")
    return Chain(quotes=table.reset_index(drop=True), currency=currency, timestamp=timestamp,
                 source=str(path), dropped=dropped, rows=rows)


def list_snapshots(folder: str | Path) -> list[Path]:
    """The chain files (``*.csv``, ``*.csv.gz``) in ``folder``, in name order (Deribit's
    export names start with the snapshot time, so this is date order)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"{folder}: not a folder")
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and p.name.endswith(_SNAPSHOT_SUFFIXES))
    if not files:
        raise ConfigError(f"{folder}: no *.csv or *.csv.gz chain files")
    return files


MARKET_MONEYNESS = (0.6, 0.7, 0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.2, 1.35, 1.6)


def market_from_chain(
    path: str | Path,
    *,
    currencies: tuple[str, ...] = ("BTC", "ETH"),
    rate: float = 0.0,
    moneyness: tuple[float, ...] = MARKET_MONEYNESS,
    min_days: float = 7.0,
    vol_interpolation: str = "svi",
) -> dict:
    """A market snapshot (the dict :func:`riskengine.market.load_market` reads) from one chain:
    per currency the spot is the index, ``basis`` the annualised rate through the expiries'
    forwards (least squares of ``log(F/S) = basis T``, through the origin), and the vol
    surface the mark IVs of the out-of-the-money quotes, interpolated linearly in log-strike
    (flat beyond the quoted strikes) onto the strikes ``spot * moneyness`` for every expiry
    at least ``min_days`` away with at least 5 strikes. ``vol_interpolation: svi`` makes the
    stress job fit SVI per expiry to that grid, as for any market file; where SVI does not fit
    the grid within the market's tolerance the surface is read linearly instead (the
    ``description`` says so)."""
    underlyings = {}
    asof = None
    for currency in currencies:
        chain = read_chain(path, currency=currency)
        q = chain.quotes
        if not len(q):
            raise ConfigError(f"{path}: no two-sided {currency} quotes to build a market from")
        asof = chain.timestamp
        spot = chain.index
        forwards = q.groupby("maturity")["forward"].first()
        t = forwards.index.to_numpy(np.float64)
        basis = float(np.sum(t * np.log(forwards.to_numpy() / spot)) / np.sum(t * t))
        strikes = [float(round(spot * m, 2)) for m in moneyness]
        days, vols = [], []
        for _expiry, part in q.groupby("expiry", sort=True):
            days_to = float(part["maturity"].iloc[0] * 365.0)  # the market file counts 365-day years
            otm = part[(part["option"] == "call") == (part["strike"] >= part["forward"])]
            otm = otm[np.isfinite(otm["mark_iv"]) & (otm["mark_iv"] > 0)].sort_values("strike")
            if days_to < min_days or otm["strike"].nunique() < 5:
                continue
            x = np.log(otm["strike"].to_numpy())
            vols.append([float(v) for v in np.interp(np.log(strikes), x, otm["mark_iv"].to_numpy())])
            days.append(round(days_to, 4))
        if not days:
            raise ConfigError(f"{path}: no {currency} expiry with 5 or more strikes at least "
                              f"{min_days:g} day(s) out")
        underlyings[currency] = {"spot": float(spot), "basis": basis,
                                 "vol_surface": {"expiries_days": days, "strikes": strikes, "vols": vols}}
    market = {
        "asof": str(asof.date()),
        "description": f"Deribit chain {Path(path).name} ({asof}): index spots, basis through "
                       "the forwards, mark-IV surfaces",
        "rate": float(rate),
        "underlyings": underlyings,
        "vol_interpolation": vol_interpolation,
    }
    if vol_interpolation == "svi":
        # The grid repeats the edge vols beyond each expiry's quoted strikes, which SVI may
        # not fit within the market's tolerance: then the surface is read linearly (said so).
        from riskengine.config import validate
        from riskengine.market import MarketSnapshot

        snapshot = validate(MarketSnapshot, market)
        try:
            for name in snapshot.underlyings:
                snapshot.svi_surface(name)
        except ConfigError as err:
            market["vol_interpolation"] = "linear"
            market["description"] += f"; linear vol interpolation (SVI refused: {err})"
    return market


class DeribitMarketConfig(Strict):
    """The stress job's ``market: {deribit: CHAIN, currencies: [BTC, ETH], rate: 0.0,
    vol_interpolation: linear}``: the market snapshot of :func:`market_from_chain`."""

    deribit: str = Field(min_length=1)
    currencies: list[str] = Field(default_factory=lambda: ["BTC", "ETH"], min_length=1)
    rate: float = Field(default=0.0, allow_inf_nan=False)
    vol_interpolation: Literal["linear", "svi"] = "linear"

    def load(self, base_dir: str | Path | None = None):
        path = Path(self.deribit)
        if not path.is_absolute() and not path.exists() and base_dir is not None:
            path = Path(base_dir) / path
        return chain_market(path, currencies=tuple(c.upper() for c in self.currencies),
                            rate=self.rate, vol_interpolation=self.vol_interpolation)


def chain_market(path: str | Path, *, currencies: tuple[str, ...] = ("BTC", "ETH"),
                 rate: float = 0.0, vol_interpolation: str = "linear"):
    """:func:`market_from_chain` validated into a :class:`riskengine.market.MarketSnapshot`
    (the stress job's ``market: {deribit: PATH}``)."""
    from riskengine.config import validate
    from riskengine.market import MarketSnapshot

    return validate(MarketSnapshot, market_from_chain(
        path, currencies=currencies, rate=rate, vol_interpolation=vol_interpolation))
