"""The margin accounts of a book: each isolated futures or perpetual position with its own
collateral, and each venue's cross account (its cross-margined futures and perpetuals and
all the collateral posted on its cross rows), valued at any prices.

An account's **margin equity** (USD) is its collateral, each holding valued at its price
times ``1 - haircut`` (the venue's haircut for that currency), plus the unrealised P&L of
its positions at their marks and the funding they accrued; its **maintenance margin** is
the sum over its positions of the venue's notional tiers (:func:`tiered_maintenance`) on
each position's USD notional at its mark. The account is liquidated when the equity falls
to the maintenance margin. Collateral may be any stablecoin or any coin of the market
(ETH posted against a BTC contract): a coin holding moves with its coin.

Liquidation (what :mod:`riskengine.revaluation.liquidation` and the scenarios apply):

- an **isolated** position is closed and its posted margin is lost, plus the venue's
  liquidation fee on its notional at the liquidation mark: its value (collateral included)
  becomes ``-fee``, whatever happens after;
- a **cross** account's positions all close at the marks of the step where it is
  liquidated (their P&L and funding are frozen there), each paying the fee; the
  collateral stays in the account (a coin holding keeps moving with its coin); a loss
  beyond the collateral (a gap through zero equity) is the insurance fund's: the account
  never ends below ``-fees``.

Options and spot positions are not margined here (their collateral, if any, counts).

Liquidation prices (:func:`liquidation_moves`) solve ``equity = maintenance`` for a
relative move ``x`` of prices: ``along="underlying"`` moves only the account's main
underlying (its largest USD notional), every other price fixed (the reported liquidation
price, ``mark * (1 + x)``); ``along="common"`` moves every coin price together (the joint
move of the cross accounts' ``liquidation_move_down``/``_up``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from riskengine.book import Book, venue_funding
from riskengine.instruments import (
    futures_pnl,
    perpetual_funding,
    position_notional,
    solve_liquidation_move,
)
from riskengine.instruments.margin import tiered_maintenance
from riskengine.market import DAYS_PER_YEAR, MarketSnapshot

__all__ = [
    "AccountMarket",
    "AccountValues",
    "Accounts",
    "account_market",
    "account_values",
    "book_margin",
    "build_accounts",
    "closed_values",
    "gather_prices",
    "liquidation_moves",
]

_MARGINED = ("linear_future", "inverse_future", "linear_perpetual", "inverse_perpetual")


@dataclass(frozen=True, eq=False)
class Accounts:
    """A book's margin accounts as arrays: ``[accounts]``, ``[members]`` (the margined
    positions, each in one account) and ``[holdings]`` (collateral rows)."""

    names: tuple[str, ...]  # isolated: the position id; cross: "<venue> cross"
    venues: tuple[str, ...]
    modes: tuple[str, ...]  # "isolated" | "cross"
    underlying: np.ndarray  # [A] main underlying (index into book.underlyings)
    single: np.ndarray  # [A] every member and coin holding on the main underlying
    member_row: np.ndarray  # [M] row of book.table
    member_account: np.ndarray  # [M]
    member_underlying: np.ndarray  # [M]
    perpetual: np.ndarray  # [M] bool
    inverse: np.ndarray  # [M] bool
    quantity: np.ndarray
    multiplier: np.ndarray
    entry: np.ndarray
    expiry_years: np.ndarray  # [M] (0 for perpetuals)
    holding_row: np.ndarray  # [H]
    holding_account: np.ndarray  # [H]
    holding_units: np.ndarray  # [H]
    holding_underlying: np.ndarray  # [H] index into book.underlyings, -1 for a stablecoin
    holding_currency: tuple[str, ...]  # [H]
    holding_haircut: np.ndarray  # [H]
    row_account: np.ndarray  # [positions] the account a row's value (position or collateral) belongs to, -1: none
    book: Book

    @property
    def num_accounts(self) -> int:
        return len(self.names)

    @functools.cached_property
    def member_isolated(self) -> np.ndarray:
        """``[members]``: whether each member is an isolated position (its own account)."""
        return np.asarray([self.modes[k] == "isolated" for k in self.member_account], bool)

    def sum_members(self, values: Float[Array, "*batch members"]) -> Float[Array, "*batch accounts"]:
        """Per account, the sum of its members' ``values``. Accounts are ordered isolated
        first (one member each: a gather) then cross (a few: a product with a one-hot
        matrix); no scatter, which is slow on CPU."""
        return self._sum(values, self._member_sum)

    def sum_holdings(self, values: Float[Array, "*batch holdings"]) -> Float[Array, "*batch accounts"]:
        """Per account, the sum of its collateral holdings' ``values`` (as :meth:`sum_members`)."""
        return self._sum(values, self._holding_sum)

    @staticmethod
    def _sum(values, plan):
        first, present, onehot = plan
        values = jnp.asarray(values)
        isolated = jnp.where(present, values[..., first], 0.0) if first.size else values[..., :0]
        cross = values @ jnp.asarray(onehot, values.dtype)
        return jnp.concatenate([isolated, cross], axis=-1)

    @functools.cached_property
    def _member_sum(self):
        return _sum_plan(self.member_account, self.modes)

    @functools.cached_property
    def _holding_sum(self):
        return _sum_plan(self.holding_account, self.modes)

    @property
    def num_members(self) -> int:
        return int(self.member_row.shape[0])

    def rows(self, account: int) -> list[int]:
        """Rows of ``book.table`` whose value belongs to ``account``."""
        return np.flatnonzero(self.row_account == account).tolist()


def _sum_plan(owner: np.ndarray, modes: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(first, present, onehot)``: for each isolated account (the first ones) the index of
    its one item (``present`` False: none), and a one-hot ``[items, cross accounts]``."""
    isolated = sum(m == "isolated" for m in modes)
    if any(m == "isolated" for m in modes[isolated:]):
        raise ValueError("accounts: isolated accounts must come first")
    first = np.zeros(isolated, np.int32)
    present = np.zeros(isolated, bool)
    for i, k in enumerate(owner):
        if k < isolated:
            if present[k]:
                raise ValueError(f"accounts: isolated account {k} has more than one item")
            first[k], present[k] = i, True
    onehot = np.zeros((len(owner), len(modes) - isolated))
    cross = owner >= isolated
    onehot[np.flatnonzero(cross), owner[cross] - isolated] = 1.0
    return first, present, onehot


class AccountMarket(NamedTuple):
    """What account values read besides prices: per underlying ``basis`` and ``premium``
    (per 8 h), per holding the stablecoin ``price`` (coin holdings: ignored)."""

    basis: Float[Array, " underlyings"]
    premium: Float[Array, " underlyings"]
    stable_price: Float[Array, " holdings"]


class AccountValues(NamedTuple):
    """Accounts at given prices (USD): ``equity`` (haircuts applied), ``maintenance``,
    ``collateral`` (no haircut), per member its ``value`` (P&L + funding) and ``notional``."""

    equity: Float[Array, "*batch accounts"]
    maintenance: Float[Array, "*batch accounts"]
    collateral: Float[Array, "*batch accounts"]
    value: Float[Array, "*batch members"]
    notional: Float[Array, "*batch members"]


def build_accounts(book: Book) -> Accounts:
    """The margin accounts of ``book`` (see the module docstring)."""
    t = book.table
    kind = t["type"].to_numpy()
    margined = np.isin(kind, _MARGINED)
    cross = (t["margin_mode"] == "cross").to_numpy()
    collateral = t["collateral"].to_numpy(np.float64)
    names, venues, modes, members, holdings = [], [], [], [], []
    for i in np.flatnonzero(margined & ~cross):
        names.append(str(t["id"].iat[i]))
        venues.append(str(t["venue"].iat[i]))
        modes.append("isolated")
        members.append([i])
        holdings.append([i] if collateral[i] > 0 else [])
    for venue in book.venues:
        at = cross & (t["venue"] == venue).to_numpy()
        rows_m, rows_h = np.flatnonzero(at & margined), np.flatnonzero(at & (collateral > 0))
        if len(rows_m) or len(rows_h):
            names.append(f"{venue} cross")
            venues.append(venue)
            modes.append("cross")
            members.append(rows_m.tolist())
            holdings.append(rows_h.tolist())
    uidx = book.underlying_index
    where = {u: k for k, u in enumerate(book.underlyings)}
    member_row = np.asarray([i for m in members for i in m], np.int32)
    member_account = np.asarray([a for a, m in enumerate(members) for _ in m], np.int32)
    holding_row = np.asarray([i for h in holdings for i in h], np.int32)
    holding_account = np.asarray([a for a, h in enumerate(holdings) for _ in h], np.int32)
    currency = tuple(str(t["collateral_currency"].iat[i]) for i in holding_row)
    holding_underlying = np.asarray([where.get(c, -1) for c in currency], np.int32)
    q, m = t["quantity"].to_numpy(np.float64), t["multiplier"].to_numpy(np.float64)
    entry = t["entry_price"].to_numpy(np.float64)
    size = np.abs(q) * m
    coin_of = {i: where.get(str(t["collateral_currency"].iat[i]), -1) for h in holdings for i in h}
    main, single = [], []
    for rows, held in zip(members, holdings, strict=True):
        coins_held = {coin_of[i] for i in held if coin_of[i] >= 0}
        if rows:  # largest notional at entry in USD: linear |q| m E, inverse |q| m
            usd = [size[i] * (1.0 if str(kind[i]).startswith("inverse") else entry[i]) for i in rows]
            u = int(uidx[rows[int(np.argmax(usd))]])
        else:
            u = min(coins_held, default=0)
        main.append(u)
        single.append({int(uidx[i]) for i in rows} | coins_held <= {u})
    row_account = np.full(book.num_positions, -1, np.int32)  # a row is in one account at most
    for a, (m_rows, h_rows) in enumerate(zip(members, holdings, strict=True)):
        row_account[m_rows + h_rows] = a
    return Accounts(
        names=tuple(names), venues=tuple(venues), modes=tuple(modes),
        underlying=np.asarray(main, np.int32), single=np.asarray(single, bool),
        member_row=member_row, member_account=member_account, member_underlying=uidx[member_row].astype(np.int32),
        perpetual=np.asarray([str(kind[i]).endswith("perpetual") for i in member_row], bool),
        inverse=np.asarray([str(kind[i]).startswith("inverse") for i in member_row], bool),
        quantity=q[member_row], multiplier=m[member_row], entry=entry[member_row],
        expiry_years=np.nan_to_num(t["expiry_years"].to_numpy(np.float64)[member_row], nan=0.0),
        holding_row=holding_row, holding_account=holding_account, holding_units=collateral[holding_row],
        holding_underlying=holding_underlying, holding_currency=currency,
        holding_haircut=book.rules.haircut[holding_row], row_account=row_account, book=book,
    )


def account_market(accounts: Accounts, market: MarketSnapshot) -> AccountMarket:
    """The market's basis and premium per underlying and stablecoin prices per holding
    (float64 numpy)."""
    names = accounts.book.underlyings
    return AccountMarket(
        basis=np.asarray([market.underlyings[u].basis for u in names]),
        premium=np.asarray([market.underlyings[u].funding_premium_8h for u in names]),
        stable_price=np.asarray([market.stablecoins.get(c, 0.0) for c in accounts.holding_currency]),
    )


def account_values(accounts: Accounts, *, member_spot: Float[Array, "*batch members"],
                   holding_spot: Float[Array, "*batch holdings"], market: AccountMarket,
                   elapsed_days, dtype=jnp.float64) -> AccountValues:
    """Every account's equity and maintenance margin with each member's underlying at
    ``member_spot`` and each coin holding's coin at ``holding_spot`` (stablecoin holdings
    at ``market.stable_price``), ``elapsed_days`` after the snapshot (futures marks roll
    down their basis, perpetuals accrue funding at the market's premium under their venue's
    rule). Differentiable in the prices."""
    a = accounts
    rules = a.book.rules
    rows = a.member_row
    f = lambda x: jnp.asarray(x, dtype)  # noqa: E731
    spot = f(member_spot)
    elapsed = f(elapsed_days)
    tau = jnp.maximum(f(a.expiry_years) - elapsed / DAYS_PER_YEAR, 0.0)
    basis = f(market.basis)[a.member_underlying]
    mark = jnp.where(a.perpetual, spot, spot * jnp.exp(basis * tau))
    pnl = futures_pnl(quantity=f(a.quantity), multiplier=f(a.multiplier), entry=f(a.entry), price=mark, spot=spot,
                      inverse=a.inverse)
    funding = perpetual_funding(
        quantity=f(a.quantity), multiplier=f(a.multiplier), mark=mark, spot=spot, horizon_days=elapsed,
        inverse=a.inverse, **venue_funding(rules, rows, f(market.premium)[a.member_underlying], dtype))
    value = pnl + jnp.where(a.perpetual, funding, 0.0)
    notional = position_notional(quantity=f(a.quantity), multiplier=f(a.multiplier), mark=mark, spot=spot,
                                 inverse=a.inverse)
    mm = tiered_maintenance(notional, lower=f(rules.tier_lower[rows]), width=f(rules.tier_width[rows]),
                            rate=f(rules.tier_rate[rows]))
    price = jnp.where(a.holding_underlying >= 0, f(holding_spot), f(market.stable_price))
    held = f(a.holding_units) * price
    collateral = a.sum_holdings(held)
    margin_collateral = a.sum_holdings(held * (1.0 - f(a.holding_haircut)))
    return AccountValues(
        equity=margin_collateral + a.sum_members(value),
        maintenance=a.sum_members(mm),
        collateral=collateral, value=value, notional=notional,
    )


def closed_values(accounts: Accounts, values: AccountValues, dtype=jnp.float64) -> Float[Array, "*batch members"]:
    """Each member's value once its account is liquidated at ``values`` (USD): isolated,
    ``-fee`` (its posted margin lost, collateral included); cross, its P&L and funding
    less the fee, the account's loss beyond its collateral (``collateral + sum of values
    < 0``) given back pro rata to notional (the insurance fund's), so that the account
    never ends below ``-fees``. The fee is the venue's rate on the notional at the mark."""
    a = accounts
    fee = jnp.asarray(a.book.rules.fee[a.member_row], dtype) * values.notional
    raw = values.collateral + a.sum_members(values.value)
    deficit = jnp.maximum(-raw, 0.0)
    total = a.sum_members(values.notional)
    share = values.notional / jnp.where(total > 0, total, 1.0)[..., a.member_account]
    return jnp.where(a.member_isolated, -fee, values.value - fee + deficit[..., a.member_account] * share)


def gather_prices(accounts: Accounts, spot: Float[Array, "*batch underlyings"]):
    """``(member_spot, holding_spot)`` from one price per underlying."""
    spot = jnp.asarray(spot)
    return spot[..., accounts.member_underlying], spot[..., np.maximum(accounts.holding_underlying, 0)]


def liquidation_moves(accounts: Accounts, *, spot: np.ndarray, market: AccountMarket,
                      along: Literal["underlying", "common"], elapsed_days: float = 0.0,
                      max_down: float = 0.999, max_up: float = 9.0) -> tuple[np.ndarray, np.ndarray]:
    """``(down, up)``: per account the relative moves (``down`` in ``[-max_down, 0]``,
    ``up`` in ``[0, max_up]``; ``-inf``/``+inf`` if none within; 0 if liquidated already)
    at which its margin equity meets its maintenance margin, moving its main underlying
    only (``along="underlying"``, other prices fixed) or every coin price together
    (``"common"``). Float64."""
    a = accounts
    if a.num_accounts == 0:
        return np.zeros(0), np.zeros(0)
    with jax.enable_x64(True):
        spot = np.asarray(spot, np.float64)
        member_spot0 = jnp.asarray(spot[a.member_underlying])
        holding_spot0 = jnp.asarray(spot[np.maximum(a.holding_underlying, 0)])
        if along == "common":
            m_along = np.ones(a.num_members)
            h_along = np.ones(len(a.holding_row))
        else:
            m_along = (a.member_underlying == a.underlying[a.member_account]).astype(np.float64)
            h_along = (a.holding_underlying == a.underlying[a.holding_account]).astype(np.float64)

        def excess(x, params):
            ms = params["member"] * (1.0 + x[a.member_account] * m_along)
            hs = params["holding"] * (1.0 + x[a.holding_account] * h_along)
            v = account_values(a, member_spot=ms, holding_spot=hs, market=market, elapsed_days=elapsed_days)
            return v.equity - v.maintenance

        params = {"member": member_spot0, "holding": holding_spot0}
        like = jnp.zeros(a.num_accounts, jnp.float64)
        down = solve_liquidation_move(excess, params, move_like=like, direction=-1, bound=max_down)
        up = solve_liquidation_move(excess, params, move_like=like, direction=+1, bound=max_up)
        return np.asarray(down), np.asarray(up)


def book_margin(accounts: Accounts, market: MarketSnapshot, *, along: tuple[np.ndarray, np.ndarray] | None = None
                ) -> tuple[dict[str, dict[str, float]], list[dict]]:
    """``(cross, isolated)`` at today's market: per venue with a cross account, its margin
    ``equity`` (haircuts applied), ``maintenance_margin``, ``margin_ratio`` (maintenance /
    equity, ``inf`` when the equity is not positive) and the common moves
    ``liquidation_move_down``/``_up``; per isolated futures or perpetual position, its
    ``liquidation_price`` (the mark at which it is liquidated, moving its underlying only),
    ``mark``, relative ``distance`` to it and ``notional_usd``. USD, float64. ``along``: the
    accounts' :func:`liquidation_moves` along their underlying, if already solved."""
    a, book = accounts, accounts.book
    names = book.underlyings
    spot = np.asarray([market.underlyings[u].spot for u in names])
    am = account_market(a, market)
    with jax.enable_x64(True):
        values = account_values(a, member_spot=spot[a.member_underlying],
                                holding_spot=spot[np.maximum(a.holding_underlying, 0)], market=am, elapsed_days=0.0)
        values = jax.tree.map(np.asarray, values)
    common = liquidation_moves(a, spot=spot, market=am, along="common")
    if along is None:
        along = liquidation_moves(a, spot=spot, market=am, along="underlying")
    t = book.table
    cross, isolated = {}, []
    for k, name in enumerate(a.names):
        if a.modes[k] == "cross":
            eq, mm = float(values.equity[k]), float(values.maintenance[k])
            cross[a.venues[k]] = {
                "equity": eq, "maintenance_margin": mm, "margin_ratio": mm / eq if eq > 0 else float("inf"),
                "liquidation_move_down": float(common[0][k]), "liquidation_move_up": float(common[1][k]),
            }
            continue
        member = int(np.flatnonzero(a.member_account == k)[0])
        row = int(a.member_row[member])
        mark = float(_member_mark(a, member, spot, am))
        down, up = float(along[0][k]), float(along[1][k])
        move = down if abs(down) <= abs(up) else up
        isolated.append({
            "id": name, "venue": a.venues[k], "underlying": str(t["underlying"].iat[row]),
            "liquidation_price": mark * (1.0 + move), "mark": mark, "distance": move,
            "notional_usd": float(values.notional[member]),
        })
    return cross, isolated


def _member_mark(a: Accounts, member: int, spot: np.ndarray, market: AccountMarket) -> float:
    s = spot[a.member_underlying[member]]
    if a.perpetual[member]:
        return s
    return s * np.exp(market.basis[a.member_underlying[member]] * a.expiry_years[member])
