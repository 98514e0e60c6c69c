"""The desk's book: loaded from CSV or YAML, validated (every bad row reported at once),
grouped by instrument type, and revalued — all positions on all paths in one vectorised,
differentiable call.

Columns: ``id, venue, type, underlying, quantity, strike, expiry, option, entry_price,
margin_mode, collateral`` and optionally ``multiplier`` (default 1), ``imr``/``mmr``
(initial/maintenance margin rates, default 0.10/0.05) and ``collateral_currency``
(default USDT).

Types and conventions (quantity is signed: long > 0):

| type | quantity | value (USD) |
|---|---|---|
| ``spot`` | coins | q·S |
| ``linear_future`` | contracts of ``multiplier`` coins | P&L since entry, q·m·(F − entry) |
| ``inverse_future`` | contracts of ``multiplier`` USD | q·m·(1/entry − 1/F) coins × S |
| ``linear_perpetual`` / ``inverse_perpetual`` | as the futures | P&L at the mark (= spot) + funding accrued |
| ``linear_option`` | contracts of ``multiplier`` coins | q·m·Black-76(F, K, τ, r, σ) |
| ``inverse_option`` | contracts of ``multiplier`` coins | q·m·(Black-76 undiscounted / F) × S |

``collateral`` is the margin (in ``collateral_currency``, USD-valued at the snapshot's
stablecoin prices) posted for the position: its own for ``isolated`` rows, pooled per venue
for ``cross`` rows.
"""

from __future__ import annotations

import dataclasses
import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import yaml

from riskengine.config import load_yaml, read_text
from riskengine.errors import ConfigError
from riskengine.instruments import (
    futures_pnl,
    option_value,
    perpetual_funding,
)
from riskengine.market import DAYS_PER_YEAR, MarketSnapshot
from riskengine.venues import PositionRules, Venue, load_venues, position_rules

TYPES = (
    "spot",
    "linear_future",
    "inverse_future",
    "linear_perpetual",
    "inverse_perpetual",
    "linear_option",
    "inverse_option",
)
COLUMNS = ("id", "venue", "type", "underlying", "quantity", "strike", "expiry", "option",
           "entry_price", "margin_mode", "collateral")
OPTIONAL = {"multiplier": 1.0, "imr": np.nan, "mmr": np.nan, "collateral_currency": "USDT"}


def read_book_table(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    text = read_text(path, what="book")
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            data = load_yaml(path, what="book")  # duplicate keys refused
            rows = data.get("positions") if isinstance(data, dict) else data
            if not isinstance(rows, list):
                raise ConfigError(f"book {path.name}: expected a list of positions (or a 'positions' list)")
            table = pd.DataFrame(rows)
        else:
            table = pd.read_csv(io.StringIO(text), dtype={"id": str, "venue": str, "underlying": str, "option": str})
    except pd.errors.EmptyDataError:
        raise ConfigError(f"book {path.name}: the file is empty (expected a header and one row per position)") from None
    except (yaml.YAMLError, pd.errors.ParserError) as err:
        raise ConfigError(f"book {path.name}: not readable: {str(err).splitlines()[0]}") from None
    if table.empty:
        raise ConfigError(f"book {path.name}: no positions (the file has no rows)")
    return table


@dataclasses.dataclass(frozen=True)
class Book:
    """Validated positions, sorted by type (``table``), with the arrays revaluation uses."""

    table: pd.DataFrame
    underlyings: tuple[str, ...]
    venues: tuple[str, ...]
    groups: tuple[tuple[str, int, int], ...]  # (type, start, stop) slices of ``table``
    rules: PositionRules  # each position's venue conventions (funding, tiers, fee, haircut)

    @property
    def num_positions(self) -> int:
        return len(self.table)

    def column(self, name: str, dtype=np.float64) -> np.ndarray:
        return self.table[name].to_numpy(dtype=dtype)

    @property
    def underlying_index(self) -> np.ndarray:
        where = {u: i for i, u in enumerate(self.underlyings)}
        return np.asarray([where[u] for u in self.table["underlying"]], dtype=np.int32)

    @property
    def venue_index(self) -> np.ndarray:
        where = {v: i for i, v in enumerate(self.venues)}
        return np.asarray([where[v] for v in self.table["venue"]], dtype=np.int32)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or (isinstance(value, str) and not value.strip())


def validate_book(table: pd.DataFrame, market: MarketSnapshot, *, source: str = "book",
                  venues: dict[str, Venue] | None = None) -> Book:
    """Check every row; raise one ConfigError listing every problem, row by row. ``venues``:
    the venue table (default: the bundled one, :func:`riskengine.venues.load_venues`)."""
    missing_columns = [c for c in COLUMNS if c not in table.columns]
    if missing_columns:
        raise ConfigError(f"{source}: missing columns {missing_columns}")
    table = table.copy()
    for column, default in OPTIONAL.items():
        if column not in table.columns:
            table[column] = default
        table[column] = table[column].where(~table[column].isna(), default)
    problems: list[str] = []
    seen: dict[str, int] = {}
    asof = pd.Timestamp(market.asof)
    expiries = []
    for i, row in enumerate(table.to_dict("records")):
        label = f"row {i + 1} (id {row['id']!r})"
        bad = []
        pid = str(row["id"]).strip() if not _is_missing(row["id"]) else ""
        if not pid:
            bad.append("id is missing")
        elif pid in seen:
            bad.append(f"duplicate id (also row {seen[pid] + 1})")
        else:
            seen[pid] = i
        kind = row["type"]
        if kind not in TYPES:
            bad.append(f"unknown instrument type {kind!r}" + ("" if len(problems) else f" (expected one of {', '.join(TYPES)})"))
        if _is_missing(row["venue"]):
            bad.append("venue is missing")
        if row["underlying"] not in market.underlyings:
            bad.append(f"no market data for underlying {row['underlying']!r}")
        for field in ("quantity", "multiplier", "imr", "mmr"):
            value = _number(row[field])
            if field in ("imr", "mmr") and value is not None and math.isnan(value):
                continue  # not given: the venue's rules
            if value is None or not math.isfinite(value):
                bad.append(f"{field} is {row[field]!r}")
            elif field == "multiplier" and value <= 0:
                bad.append(f"multiplier must be > 0, got {value!r}")
            elif field in ("imr", "mmr") and not 0 < value <= 1:
                bad.append(f"{field} must be in (0, 1], got {value!r}")
        imr, mmr = _number(row["imr"]), _number(row["mmr"])
        if imr is not None and mmr is not None and 0 < imr <= 1 and 0 < mmr <= 1 and mmr > imr:  # NaN: False
            bad.append(f"mmr ({mmr!r}) must not exceed imr ({imr!r})")
        collateral = _number(row["collateral"]) if not _is_missing(row["collateral"]) else 0.0
        if collateral is None or not math.isfinite(collateral) or collateral < 0:
            bad.append(f"collateral is {row['collateral']!r}")
        if row["margin_mode"] not in ("isolated", "cross"):
            bad.append(f"margin_mode must be 'isolated' or 'cross', got {row['margin_mode']!r}")
        if row["collateral_currency"] not in market.stablecoins and row["collateral_currency"] not in market.underlyings:
            bad.append(f"no price for collateral_currency {row['collateral_currency']!r}")
        expiry = None
        if kind in ("linear_future", "inverse_future", "linear_option", "inverse_option"):
            try:
                expiry = pd.Timestamp(row["expiry"])
                if pd.isna(expiry):
                    raise ValueError
            except (ValueError, TypeError):
                bad.append(f"expiry is {row['expiry']!r}")
                expiry = None
            if expiry is not None and expiry <= asof:
                bad.append(f"expired on {expiry.date()} (market as of {market.asof})")
        if kind in ("linear_option", "inverse_option"):
            strike = _number(row["strike"])
            if strike is None or not (strike > 0 and math.isfinite(strike)):
                bad.append(f"strike is {row['strike']!r}")
            if row["option"] not in ("call", "put"):
                bad.append(f"option must be 'call' or 'put', got {row['option']!r}")
        if kind in ("linear_future", "inverse_future", "linear_perpetual", "inverse_perpetual"):
            entry = _number(row["entry_price"])
            if entry is None or not (entry > 0 and math.isfinite(entry)):
                bad.append(f"entry_price is {row['entry_price']!r}")
        if bad:
            problems.append(f"{label}: " + ", ".join(bad))
        expiries.append(expiry)
    if problems:
        raise ConfigError(f"{source}: {len(problems)} bad row(s): " + "; ".join(problems))
    table["expiry_years"] = [
        (e - asof).total_seconds() / (DAYS_PER_YEAR * 86400.0) if e is not None else np.nan for e in expiries
    ]
    for field in ("quantity", "multiplier", "imr", "mmr", "strike", "entry_price", "collateral"):
        table[field] = pd.to_numeric(table[field], errors="coerce").astype(np.float64)
    table["collateral"] = table["collateral"].fillna(0.0)
    table["id"] = table["id"].astype(str).str.strip()
    order = np.argsort([TYPES.index(t) for t in table["type"]], kind="stable")
    table = table.iloc[order].reset_index(drop=True)
    groups, start = [], 0
    for kind in TYPES:
        stop = start + int((table["type"] == kind).sum())
        if stop > start:
            groups.append((kind, start, stop))
        start = stop
    used = set(table["underlying"]) | set(table["collateral_currency"])
    underlyings = tuple(u for u in market.underlyings if u in used)
    rules = position_rules(
        load_venues() if venues is None else venues, venue=list(table["venue"]), underlying=list(table["underlying"]),
        collateral_currency=list(table["collateral_currency"]), mmr=table["mmr"].to_numpy(np.float64), source=source)
    return Book(table=table, underlyings=underlyings, venues=tuple(dict.fromkeys(table["venue"])), groups=tuple(groups),
                rules=rules)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def load_book(path: str | Path, market: MarketSnapshot, *, venues: dict[str, Venue] | None = None) -> Book:
    return validate_book(read_book_table(path), market, source=f"book {Path(path).name}", venues=venues)


@dataclasses.dataclass(frozen=True)
class MarketState:
    """What revaluation needs besides the positions, as arrays.

    ``spot``: [..., underlyings]; ``vol``: [..., positions] implied vol per position (for
    options; ignored elsewhere); ``basis`` and ``premium``: [underlyings]; ``elapsed_days``:
    time since the snapshot; ``rate``: the USD rate.
    """

    spot: Any
    vol: Any
    basis: Any
    premium: Any
    elapsed_days: Any
    rate: Any


def position_values(book: Book, state: MarketState, *, dtype=jnp.float64):
    """USD value of every position ([..., positions], in ``book.table`` order)."""
    uidx = book.underlying_index
    spot_all = jnp.asarray(state.spot, dtype)
    elapsed = jnp.asarray(state.elapsed_days, dtype)
    values = []
    for kind, a, b in book.groups:
        rows = slice(a, b)
        u = uidx[rows]
        s = spot_all[..., u]
        q = jnp.asarray(book.column("quantity")[rows], dtype)
        m = jnp.asarray(book.column("multiplier")[rows], dtype)
        inverse = kind.startswith("inverse")
        if kind == "spot":
            values.append(q * s)
            continue
        if kind.endswith("perpetual"):
            entry = jnp.asarray(book.column("entry_price")[rows], dtype)
            pnl = futures_pnl(quantity=q, multiplier=m, entry=entry, price=s, spot=s, inverse=inverse)
            funding = perpetual_funding(
                quantity=q, multiplier=m, mark=s, spot=s, horizon_days=elapsed, inverse=inverse,
                **venue_funding(book.rules, rows, jnp.asarray(state.premium, dtype)[u], dtype),
            )
            values.append(pnl + funding)
            continue
        tau = jnp.asarray(book.column("expiry_years")[rows], dtype) - elapsed / DAYS_PER_YEAR
        basis = jnp.asarray(state.basis, dtype)[u]
        forward = s * jnp.exp(basis * jnp.maximum(tau, 0.0))
        if kind.endswith("future"):
            entry = jnp.asarray(book.column("entry_price")[rows], dtype)
            values.append(futures_pnl(quantity=q, multiplier=m, entry=entry, price=forward, spot=s, inverse=inverse))
            continue
        strike = jnp.asarray(book.column("strike")[rows], dtype)
        is_call = jnp.asarray(book.table["option"].to_numpy()[rows] == "call")
        vol = jnp.asarray(state.vol, dtype)[..., rows]
        values.append(option_value(
            quantity=q, multiplier=m, forward=forward, strike=strike, maturity=tau,
            rate=jnp.asarray(state.rate, dtype), vol=vol, is_call=is_call, spot=s, inverse=inverse,
        ))
    shape = jnp.broadcast_shapes(*(v.shape[:-1] for v in values))
    return jnp.concatenate([jnp.broadcast_to(v, shape + v.shape[-1:]) for v in values], axis=-1)


def venue_funding(rules: PositionRules, rows: slice | np.ndarray, premium_8h, dtype) -> dict:
    """The keyword arguments of :func:`riskengine.instruments.perpetual_funding` for the
    positions ``rows`` under their venues' funding rules, with the market's premium per 8 h
    (``premium_8h``, per row) quoted per funding interval."""
    return {
        "premium": premium_8h * jnp.asarray(rules.premium_scale[rows], dtype),
        "interest": jnp.asarray(rules.interest[rows], dtype), "clamp": jnp.asarray(rules.clamp[rows], dtype),
        "cap": jnp.asarray(rules.cap[rows], dtype), "fractional": jnp.asarray(rules.continuous[rows]),
        "periods_per_day": jnp.asarray(rules.periods_per_day[rows], dtype),
    }


def position_vols(book: Book, market: MarketSnapshot, *, elapsed_days: float = 0.0) -> np.ndarray:
    """Sticky-strike implied vol of every option position at its time to expiry after
    ``elapsed_days`` (NaN-free: 0 for non-options)."""
    vols = np.zeros(book.num_positions)
    options = book.table["type"].str.endswith("_option").to_numpy()
    for u in book.underlyings:
        rows = options & (book.table["underlying"] == u).to_numpy()
        if rows.any():
            tau = book.table.loc[rows, "expiry_years"].to_numpy() - elapsed_days / DAYS_PER_YEAR
            vols[rows] = market.implied_vol(u, strike=book.table.loc[rows, "strike"].to_numpy(), expiry_years=tau)
    return vols


def base_state(book: Book, market: MarketSnapshot, *, elapsed_days: float = 0.0) -> MarketState:
    names = book.underlyings
    return MarketState(
        spot=np.asarray([market.underlyings[u].spot for u in names]),
        vol=position_vols(book, market, elapsed_days=elapsed_days),
        basis=np.asarray([market.underlyings[u].basis for u in names]),
        premium=np.asarray([market.underlyings[u].funding_premium_8h for u in names]),
        elapsed_days=elapsed_days,
        rate=market.rate,
    )


def coin_collateral(book: Book) -> tuple[np.ndarray, np.ndarray]:
    """Collateral held in a simulated coin: ``(units, underlying index)`` per position
    (units 0 for stablecoin collateral, whose value does not move with the paths)."""
    currencies = book.table["collateral_currency"]
    coin = np.asarray([c in book.underlyings for c in currencies])
    index = np.asarray([book.underlyings.index(c) if c in book.underlyings else 0 for c in currencies], dtype=np.int32)
    return np.where(coin, book.column("collateral"), 0.0), index


def collateral_values(book: Book, market: MarketSnapshot) -> np.ndarray:
    """USD value of the collateral of each position at the snapshot's prices."""
    prices = {**market.stablecoins, **{u: m.spot for u, m in market.underlyings.items()}}
    return book.column("collateral") * np.asarray([prices[c] for c in book.table["collateral_currency"]])


def base_values(book: Book, market: MarketSnapshot) -> np.ndarray:
    """Every position's USD value at the snapshot, collateral included (float64,
    [positions] in ``book.table`` order)."""
    with jax.enable_x64(True):
        return np.asarray(position_values(book, base_state(book, market), dtype=jnp.float64)) + collateral_values(book, market)


def book_value_function(book: Book, market: MarketSnapshot) -> tuple[Callable[..., jax.Array], MarketState]:
    """``(value, base)``: ``value(spot, vol_shift, elapsed_days)``, the book's USD value
    (float64, collateral included; coin collateral moves with its coin's ``spot``) with
    every option's implied vol moved by its underlying's ``vol_shift`` [underlyings], and the
    snapshot's ``base`` state. Differentiable: what the Greeks and the historical methods
    revalue."""
    base = base_state(book, market)
    collateral = collateral_values(book, market)
    units, cu = coin_collateral(book)
    uidx = book.underlying_index

    def value(spot, vol_shift, elapsed_days):
        state = MarketState(
            spot=spot, vol=jnp.asarray(base.vol) + vol_shift[uidx], basis=base.basis, premium=base.premium,
            elapsed_days=elapsed_days, rate=base.rate,
        )
        values = position_values(book, state, dtype=jnp.float64)
        return values.sum() + (collateral + units * (spot[cu] - jnp.asarray(base.spot)[cu])).sum()

    return value, base
