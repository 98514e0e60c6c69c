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
from riskengine.book import Book, MarketState, base_state, collateral_values, position_values
from riskengine.market import MarketSnapshot
from riskengine.scenarios import Scenario

__all__ = ["scenario_pnl"]


def scenario_pnl(book: Book, market: MarketSnapshot, scenarios: Sequence[Scenario],
                 value0: Float[np.ndarray, " positions"], *, elapsed_days: float) -> tuple[pd.DataFrame, dict]:
    """``(table, summary)``: the P&L of every position under each scenario against ``value0``
    (today's values, collateral included) — ``table`` one row per scenario and position
    (``scenario, position_id, base_value, scenario_value, pnl``), ``summary`` per scenario its
    ``kind``, ``description``, total ``pnl``, ``by_position`` and ``by_underlying``.

    Full revaluation under each scenario (all scenarios in one call): the shocks hit at
    once and the book is revalued ``elapsed_days`` later (funding accrues at the shocked
    premium, options lose that much time); 0 means an instantaneous shock. Positions at a
    venue the scenario defaults are lost (value 0)."""
    ids = list(book.table["id"])
    venues = book.table["venue"].to_numpy()
    table = pd.DataFrame(columns=["scenario", "position_id", "base_value", "scenario_value", "pnl"])
    if not scenarios:
        return table, {}
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
    for s, m, v in zip(scenarios, shocked, values, strict=True):
        v = v + collateral_values(book, m)
        v = np.where(np.isin(venues, s.shocks.venue_default), 0.0, v)  # lost with the venue
        pnl = v - value0
        rows.extend(
            {"scenario": s.name, "position_id": pid, "base_value": float(b), "scenario_value": float(x), "pnl": float(p)}
            for pid, b, x, p in zip(ids, value0, v, pnl, strict=True)
        )
        summary[s.name] = {
            "kind": s.kind,
            "description": s.description.strip(),
            "pnl": float(pnl.sum()),
            "by_position": dict(zip(ids, pnl.tolist(), strict=True)),
            "by_underlying": risk.group_contributions(pnl, labels=list(book.table["underlying"])),
        }
    return pd.DataFrame(rows, columns=table.columns), summary
