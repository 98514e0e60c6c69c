"""The book fully revalued under named stress scenarios (:mod:`riskengine.scenarios`):
shocked spots, vols, funding, correlations and venue defaults."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jaxtyping import Float

from riskengine import risk
from riskengine.accounts import Accounts, account_market, account_values, closed_values
from riskengine.book import Book, MarketState, base_state, collateral_values, position_values
from riskengine.market import MarketSnapshot
from riskengine.scenarios import Scenario

__all__ = ["scenario_pnl"]


def scenario_pnl(book: Book, market: MarketSnapshot, scenarios: Sequence[Scenario],
                 value0: Float[np.ndarray, " positions"], *, elapsed_days: float,
                 accounts: Accounts | None = None) -> tuple[pd.DataFrame, dict]:
    """``(table, summary)``: the P&L of every position under each scenario against ``value0``
    (today's values, collateral included) — ``table`` one row per scenario and position
    (``scenario, position_id, base_value, scenario_value, pnl, held_pnl, liquidated``),
    ``summary`` per scenario its ``kind``, ``description``, total ``pnl``, ``by_position``,
    ``by_underlying``, ``pnl_held_to_horizon`` and the ``liquidated`` accounts.

    Full revaluation under each scenario (all scenarios in one call): the shocks hit at
    once and the book is revalued ``elapsed_days`` later (funding accrues at the shocked
    premium, options lose that much time); 0 means an instantaneous shock. With
    ``accounts`` (:mod:`riskengine.accounts`), an account whose margin equity is at or below
    its maintenance margin right after the shock, or ``elapsed_days`` later, is liquidated
    then (its positions closed as the accounts module says); ``held_pnl`` keeps every
    position to the horizon. Positions at a venue the scenario defaults are lost (value 0)."""
    ids = list(book.table["id"])
    venues = book.table["venue"].to_numpy()
    columns = ["scenario", "position_id", "base_value", "scenario_value", "pnl", "held_pnl", "liquidated"]
    if not scenarios:
        return pd.DataFrame(columns=columns), {}
    shocked = [market.shocked(s) for s in scenarios]
    states = [base_state(book, m, elapsed_days=elapsed_days) for m in shocked]
    base = states[0]

    @jax.jit
    def revalue(spot, vol, premium):
        state = MarketState(spot=spot, vol=vol, basis=base.basis, premium=premium, elapsed_days=elapsed_days, rate=base.rate)
        return position_values(book, state, dtype=jnp.float64)

    with jax.enable_x64(True):
        values = np.asarray(jax.vmap(revalue)(
            jnp.asarray(np.stack([st.spot for st in states])),
            jnp.asarray(np.stack([st.vol for st in states])),
            jnp.asarray(np.stack([st.premium for st in states])),
        ))
    rows, summary = [], {}
    for s, m, st, v in zip(scenarios, shocked, states, values, strict=True):
        collateral = collateral_values(book, m)
        held = v + collateral
        aware, liquidated = held, []
        if accounts is not None and accounts.num_members:
            aware, liquidated = _liquidated(accounts, m, st.spot, held, collateral, elapsed_days=elapsed_days)
        lost = np.isin(venues, s.shocks.venue_default)  # lost with the venue
        pnl = np.where(lost, 0.0, aware) - value0
        held_pnl = np.where(lost, 0.0, held) - value0
        closed = np.zeros(len(ids), bool)
        for name, _ in liquidated:
            closed[accounts.rows(accounts.names.index(name))] = True
        rows.extend(
            {"scenario": s.name, "position_id": pid, "base_value": float(b), "scenario_value": float(x + b),
             "pnl": float(p), "held_pnl": float(hp), "liquidated": bool(c)}
            for pid, b, x, p, hp, c in zip(ids, value0, pnl, pnl, held_pnl, closed, strict=True)
        )
        summary[s.name] = {
            "kind": s.kind,
            "description": s.description.strip(),
            "pnl": float(pnl.sum()),
            "by_position": dict(zip(ids, pnl.tolist(), strict=True)),
            "by_underlying": risk.group_contributions(pnl, labels=list(book.table["underlying"])),
            "pnl_held_to_horizon": float(held_pnl.sum()),
            "liquidated": [{"account": name, "at": at} for name, at in liquidated],
        }
    return pd.DataFrame(rows, columns=columns), summary


def _liquidated(accounts: Accounts, market: MarketSnapshot, spot: np.ndarray, held: np.ndarray,
                collateral: np.ndarray, *, elapsed_days: float) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Row values with the accounts liquidated under the shocked ``market`` (right after the
    shock, ``"shock"``, or ``elapsed_days`` later, ``"horizon"``), and which."""
    a = accounts
    am = account_market(a, market)
    member_spot, holding_spot = spot[a.member_underlying], spot[np.maximum(a.holding_underlying, 0)]
    values = held.copy()
    done = np.zeros(a.num_accounts, bool)
    which = []
    with jax.enable_x64(True):
        for at, days in (("shock", 0.0), ("horizon", elapsed_days)):
            v = account_values(a, member_spot=member_spot, holding_spot=holding_spot, market=am, elapsed_days=days)
            closed = np.asarray(closed_values(a, v))
            hit = np.asarray(v.equity <= v.maintenance) & ~done
            for k in np.flatnonzero(hit):
                which.append((a.names[k], at))
                for i in np.flatnonzero(a.member_account == k):
                    row = a.member_row[i]
                    values[row] = closed[i] if a.member_isolated[i] else closed[i] + collateral[row]
            done |= hit
    return values, which
