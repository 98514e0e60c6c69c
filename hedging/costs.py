"""Transaction costs of rebalancing the hedge."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float


class TransactionCosts(eqx.Module):
    """Proportional costs ``c_h |trade| price`` per instrument and a fixed cost per
    rebalancing of any instrument. ``charge_initial_trade=False`` leaves the first trade (setting
    up the hedge at ``t_0``) free: a desk that already holds its initial hedge, or a study of the
    rebalancing costs alone.

    The fixed cost has zero gradient almost everywhere; during training it is replaced by
    the smooth ``fixed * (1 - exp(-|trade| / fixed_scale))`` (``smooth=True``)."""

    proportional: tuple[float, ...] = eqx.field(static=True, default=(0.0,))
    fixed: float = eqx.field(static=True, default=0.0)
    fixed_scale: float = eqx.field(static=True, default=1e-3)
    charge_initial_trade: bool = eqx.field(static=True, default=True)

    def __check_init__(self):
        if any(not (c >= 0) for c in self.proportional) or not (self.fixed >= 0):
            raise ValueError(f"hedge.cost: costs must be >= 0, got {list(self.proportional)} and fixed {self.fixed}")

    def __call__(
        self,
        trades: Float[Array, "dates paths instruments"],
        prices: Float[Array, "dates paths instruments"],
        *,
        smooth: bool = False,
    ) -> Float[Array, " paths"]:
        if not self.charge_initial_trade:
            trades, prices = trades[1:], prices[1:]
        rate = jnp.asarray(self.proportional, trades.dtype)
        total = jnp.sum(jnp.abs(trades) * prices * rate, axis=(0, 2))
        if self.fixed > 0:
            size = jnp.sum(jnp.abs(trades), axis=-1)
            if smooth:
                traded = -jnp.expm1(-size / self.fixed_scale)
            else:
                traded = (size > 1e-12).astype(trades.dtype)
            total = total + self.fixed * jnp.sum(traded, axis=0)
        return total
