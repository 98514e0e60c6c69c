"""Dated futures, linear (quote-margined) and inverse (coin-margined).

Conventions (shared by every instrument module):

- ``quantity`` is the signed number of contracts (positive long, negative short).
- Linear contract: ``multiplier`` coins of underlying per contract, P&L settled in USD.
- Inverse contract: ``multiplier`` USD of face value per contract (e.g. 1 USD on BitMEX,
  10 USD on Deribit/OKX), P&L settled in coin.
- Coin amounts are converted to the reporting currency (USD) at the **spot (index) price**
  of the coin, passed as ``spot``: the coin sitting in the account is worth ``spot`` USD
  whatever instrument produced it. At expiry the futures price equals the spot, so this
  agrees with conversion at the exit price there.
- A future's value is its P&L against ``entry`` (variation margin): zero at inception.

Every function is elementwise and broadcasts position fields (shape ``[positions]``)
against market state on paths (shape ``[paths, positions]``), runs under ``jit``/``vmap``
and is differentiable.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Float

from riskengine.instruments._arrays import as_bool, as_float

__all__ = [
    "futures_pnl",
    "futures_price",
    "inverse_futures_pnl_coin",
    "linear_futures_pnl",
]


def futures_price(
    *,
    spot: Float[ArrayLike, "*batch"],
    basis: Float[ArrayLike, "*batch"],
    maturity: Float[ArrayLike, "*batch"],
) -> Float[Array, "*batch"]:
    """Futures price ``F = S * exp(basis * T)`` from the spot, an annualised continuously
    compounded basis (carry: rate minus coin yield plus any premium) and the time to expiry
    in years. Expired contracts (``T <= 0``) trade at the spot."""
    spot, basis, maturity = as_float(spot, basis, maturity)
    return spot * jnp.exp(basis * jnp.maximum(maturity, 0.0))


def linear_futures_pnl(
    *,
    quantity: Float[ArrayLike, "*batch"],
    multiplier: Float[ArrayLike, "*batch"],
    entry: Float[ArrayLike, "*batch"],
    price: Float[ArrayLike, "*batch"],
) -> Float[Array, "*batch"]:
    """USD P&L of a linear future: ``quantity * multiplier * (F - entry)``."""
    quantity, multiplier, entry, price = as_float(quantity, multiplier, entry, price)
    return quantity * multiplier * (price - entry)


def inverse_futures_pnl_coin(
    *,
    quantity: Float[ArrayLike, "*batch"],
    multiplier: Float[ArrayLike, "*batch"],
    entry: Float[ArrayLike, "*batch"],
    price: Float[ArrayLike, "*batch"],
) -> Float[Array, "*batch"]:
    """Coin P&L of an inverse future: ``N * (1/entry - 1/F)``, ``N = quantity * multiplier``
    USD of face value.

    A long of ``N`` USD face holds ``N / entry`` coins' worth of exposure bought at
    ``entry``; closing at ``F`` returns ``N / F`` coins' worth, hence the coin P&L.
    """
    quantity, multiplier, entry, price = as_float(quantity, multiplier, entry, price)
    return quantity * multiplier * (1.0 / entry - 1.0 / price)


def futures_pnl(
    *,
    quantity: Float[ArrayLike, "*batch"],
    multiplier: Float[ArrayLike, "*batch"],
    entry: Float[ArrayLike, "*batch"],
    price: Float[ArrayLike, "*batch"],
    spot: Float[ArrayLike, "*batch"],
    inverse: Bool[ArrayLike, "*batch"],
) -> Float[Array, "*batch"]:
    """USD P&L of a book mixing linear and inverse futures (``inverse`` per position).

    Inverse rows are :func:`inverse_futures_pnl_coin` times ``spot``; linear rows ignore
    ``spot``. Safe (double-``where``) against a zero ``entry`` on linear rows, e.g. a spot
    holding written as a linear position with ``entry = 0``.
    """
    quantity, multiplier, entry, price, spot = as_float(quantity, multiplier, entry, price, spot)
    inverse = as_bool(inverse)
    linear = linear_futures_pnl(quantity=quantity, multiplier=multiplier, entry=entry, price=price)
    safe_entry = jnp.where(inverse, entry, 1.0)
    safe_price = jnp.where(inverse, price, 1.0)
    coin = inverse_futures_pnl_coin(
        quantity=quantity, multiplier=multiplier, entry=safe_entry, price=safe_price
    )
    return jnp.where(inverse, coin * spot, linear)
