"""The book's Greeks by automatic differentiation of its full revaluation
(:func:`riskengine.book.book_value_function`): delta, gamma and vega per underlying, theta per
underlying (by position attribution) and for the book."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from riskengine import risk
from riskengine.book import Book, MarketState, base_state, book_value_function, position_values
from riskengine.market import MarketSnapshot

__all__ = ["book_greeks", "theta_by_underlying"]


def book_greeks(book: Book, market: MarketSnapshot) -> dict:
    """``{underlying: {"delta", "delta_usd", "gamma", "vega", "theta"}, "book_theta": ...}``:
    book delta (coins; ``delta_usd``: USD per 100% move), gamma (per underlying, USD per 1 USD
    of spot), vega (per 1.00 vol), theta (USD per day) by automatic differentiation of the
    full revaluation."""
    with jax.enable_x64(True):
        value, base = book_value_function(book, market)
        spot = jnp.asarray(base.spot, jnp.float64)
        zero = jnp.zeros_like(spot)

        @jax.jit
        def derivatives(spot, shift, t):
            first = jax.grad(value, argnums=(0, 1, 2))(spot, shift, t)
            return first, jnp.diag(jax.hessian(value, argnums=0)(spot, shift, t))

        (delta, vega, theta), gamma = derivatives(spot, zero, jnp.float64(0.0))
        # theta is the same for every underlying: report it per underlying by position attribution
        per_underlying_theta = theta_by_underlying(book, market)
    return {
        u: {
            "delta": float(delta[i]),
            "delta_usd": float(delta[i] * spot[i]),
            "gamma": float(gamma[i]),
            "vega": float(vega[i]),
            "theta": per_underlying_theta[u],
        }
        for i, u in enumerate(book.underlyings)
    } | {"book_theta": float(theta)}


def theta_by_underlying(book: Book, market: MarketSnapshot) -> dict[str, float]:
    """Theta (USD per day) of the positions on each underlying (0 for an underlying without
    positions), by forward differentiation of every position's value in elapsed time."""
    base = base_state(book, market)

    def values(elapsed):
        state = MarketState(spot=base.spot, vol=base.vol, basis=base.basis, premium=base.premium,
                            elapsed_days=elapsed, rate=base.rate)
        return position_values(book, state, dtype=jnp.float64)

    with jax.enable_x64(True):
        per_position = np.asarray(jax.jit(jax.jacfwd(values))(jnp.float64(0.0)))
    return risk.group_contributions(per_position, labels=list(book.table["underlying"])) | {
        u: 0.0 for u in book.underlyings if u not in set(book.table["underlying"])
    }
