"""Spot holdings of a coin, valued in the quote currency (USD).

``quantity`` is the signed number of coins held (negative: borrowed and sold). A spot
holding is also how coin collateral enters a margin account (see
:mod:`riskengine.instruments.margin`).
"""

from __future__ import annotations

from jaxtyping import Array, ArrayLike, Float

from riskengine.instruments._arrays import as_float

__all__ = ["spot_pnl", "spot_value"]


def spot_value(
    *,
    quantity: Float[ArrayLike, "*batch"],
    spot: Float[ArrayLike, "*batch"],
) -> Float[Array, "*batch"]:
    """USD value of a spot holding: ``quantity * spot``."""
    quantity, spot = as_float(quantity, spot)
    return quantity * spot


def spot_pnl(
    *,
    quantity: Float[ArrayLike, "*batch"],
    entry: Float[ArrayLike, "*batch"],
    spot: Float[ArrayLike, "*batch"],
) -> Float[Array, "*batch"]:
    """USD P&L of a spot holding bought at ``entry``: ``quantity * (spot - entry)``."""
    quantity, entry, spot = as_float(quantity, entry, spot)
    return quantity * (spot - entry)
