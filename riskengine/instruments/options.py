"""European options on a coin, linear (quote-settled) and inverse (coin-settled).

Both are priced with Black-76 on the forward ``F`` of the underlying to the option's
expiry, reusing :mod:`riskengine.analytic.black_scholes` (no pricer is re-implemented
here). Conventions:

- ``quantity``: signed number of contracts; ``multiplier``: coins of underlying per
  contract (1 on Deribit BTC options). Values are per position.
- **Linear** (USDC/USDT-settled): USD value ``quantity * multiplier * Black76(F, K, T, r, vol)``,
  discounted at ``rate``.
- **Inverse** (Deribit style, settled in coin): the payoff ``(F_T - K)^+ / F_T`` coins is
  priced, with zero rates as Deribit does, by the undiscounted Black-76 price divided by
  ``F``::

      call_coin = N(d1) - (K/F) N(d2),        put_coin = (K/F) N(-d2) - N(-d1),

  so put–call parity in coin reads ``C - P = 1 - K/F``. The USD value is the coin value
  times the **spot** (index) price, as for every coin amount in this package.
- **Deltas of inverse options** are in coin, per position:

  - ``delta = d(F * c_coin) / dF``: the Black forward delta, ``N(d1)`` for a call and
    ``N(d1) - 1`` for a put (Deribit's "delta"). With ``F = S exp(b T)`` it is also
    ``d(c_coin * S) / dS``, the delta of the USD value.
  - ``delta_pa = delta - c_coin = F * dc_coin/dF``: the premium-adjusted delta, i.e. the
    hedge in coin once the option premium (itself coin) is counted; ``(K/F) N(d2)`` for a
    call and ``-(K/F) N(-d2)`` for a put.

Time to expiry ``maturity`` (years) may reach or pass zero on some simulated paths: the
option is then worth its intrinsic value, ``(F - K)^+`` or ``(F - K)^+ / F``, with finite
values and gradients (the Black price guards zero variance with a double ``where``).
Deltas are forward-mode derivatives of the price with respect to ``F``, so they can be
differentiated again (gamma, vanna) and stay finite at expiry.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Float

from riskengine.analytic.black_scholes import black76_price, black_undiscounted
from riskengine.instruments._arrays import as_bool, as_float

__all__ = [
    "inverse_option_delta",
    "inverse_option_delta_pa",
    "inverse_option_price_coin",
    "inverse_option_value",
    "linear_option_delta",
    "linear_option_value",
    "option_value",
]


def _time_left(maturity: Array) -> Array:
    """Time to expiry floored at zero (double-``where``: zero gradient past expiry)."""
    alive = maturity > 0.0
    return jnp.where(alive, maturity, 0.0)


def _forward_derivative(price, forward: Array) -> tuple[Array, Array]:
    """Elementwise ``(price(F), dprice/dF)``: each output depends on one forward element."""
    return jax.jvp(price, (forward,), (jnp.ones_like(forward),))


def _linear_unit_price(forward, strike, maturity, rate, vol, is_call) -> Array:
    return black76_price(
        forward=forward, strike=strike, maturity=_time_left(maturity), rate=rate, vol=vol,
        is_call=is_call,
    )


def _inverse_unit_price(forward, strike, maturity, vol, is_call) -> Array:
    undiscounted = black_undiscounted(
        forward=forward, strike=strike, total_variance=vol * vol * _time_left(maturity),
        is_call=is_call,
    )
    return undiscounted / forward


def linear_option_value(
    *,
    quantity: Float[ArrayLike, "*batch"],
    multiplier: Float[ArrayLike, "*batch"],
    forward: Float[ArrayLike, "*batch"],
    strike: Float[ArrayLike, "*batch"],
    maturity: Float[ArrayLike, "*batch"],
    rate: Float[ArrayLike, "*batch"],
    vol: Float[ArrayLike, "*batch"],
    is_call: Bool[ArrayLike, "*batch"],
) -> Float[Array, "*batch"]:
    """USD value of quote-settled European options: ``quantity * multiplier * Black76``."""
    quantity, multiplier, forward, strike, maturity, rate, vol = as_float(
        quantity, multiplier, forward, strike, maturity, rate, vol
    )
    unit = _linear_unit_price(forward, strike, maturity, rate, vol, as_bool(is_call))
    return quantity * multiplier * unit


def linear_option_delta(
    *,
    quantity: Float[ArrayLike, "*batch"],
    multiplier: Float[ArrayLike, "*batch"],
    forward: Float[ArrayLike, "*batch"],
    strike: Float[ArrayLike, "*batch"],
    maturity: Float[ArrayLike, "*batch"],
    rate: Float[ArrayLike, "*batch"],
    vol: Float[ArrayLike, "*batch"],
    is_call: Bool[ArrayLike, "*batch"],
) -> Float[Array, "*batch"]:
    """Forward delta in coin of quote-settled options: ``d(USD value)/dF``
    (``quantity * multiplier * exp(-rT) N(d1)`` for calls)."""
    quantity, multiplier, forward, strike, maturity, rate, vol = as_float(
        quantity, multiplier, forward, strike, maturity, rate, vol
    )
    is_call = as_bool(is_call)
    _, delta = _forward_derivative(
        lambda f: _linear_unit_price(f, strike, maturity, rate, vol, is_call), forward
    )
    return quantity * multiplier * delta


def inverse_option_price_coin(
    *,
    forward: Float[ArrayLike, "*batch"],
    strike: Float[ArrayLike, "*batch"],
    maturity: Float[ArrayLike, "*batch"],
    vol: Float[ArrayLike, "*batch"],
    is_call: Bool[ArrayLike, "*batch"],
) -> Float[Array, "*batch"]:
    """Coin price of one coin-settled option on one coin of underlying: the undiscounted
    Black-76 price divided by ``F`` (``N(d1) - (K/F) N(d2)`` for a call)."""
    forward, strike, maturity, vol = as_float(forward, strike, maturity, vol)
    return _inverse_unit_price(forward, strike, maturity, vol, as_bool(is_call))


def inverse_option_value(
    *,
    quantity: Float[ArrayLike, "*batch"],
    multiplier: Float[ArrayLike, "*batch"],
    forward: Float[ArrayLike, "*batch"],
    strike: Float[ArrayLike, "*batch"],
    maturity: Float[ArrayLike, "*batch"],
    vol: Float[ArrayLike, "*batch"],
    is_call: Bool[ArrayLike, "*batch"],
    spot: Float[ArrayLike, "*batch"],
) -> Float[Array, "*batch"]:
    """USD value of coin-settled options: ``quantity * multiplier * price_coin * spot``."""
    quantity, multiplier, spot = as_float(quantity, multiplier, spot)
    coin = inverse_option_price_coin(
        forward=forward, strike=strike, maturity=maturity, vol=vol, is_call=is_call
    )
    return quantity * multiplier * coin * spot


def _inverse_deltas(quantity, multiplier, forward, strike, maturity, vol, is_call):
    quantity, multiplier, forward, strike, maturity, vol = as_float(
        quantity, multiplier, forward, strike, maturity, vol
    )
    is_call = as_bool(is_call)
    # delta = d(F c)/dF is the derivative of the undiscounted Black price F * c_coin.
    coin, dcoin = _forward_derivative(
        lambda f: _inverse_unit_price(f, strike, maturity, vol, is_call), forward
    )
    size = quantity * multiplier
    delta_pa = size * forward * dcoin  # = size * (delta - c_coin)
    return size * (forward * dcoin + coin), delta_pa


def inverse_option_delta(
    *,
    quantity: Float[ArrayLike, "*batch"],
    multiplier: Float[ArrayLike, "*batch"],
    forward: Float[ArrayLike, "*batch"],
    strike: Float[ArrayLike, "*batch"],
    maturity: Float[ArrayLike, "*batch"],
    vol: Float[ArrayLike, "*batch"],
    is_call: Bool[ArrayLike, "*batch"],
) -> Float[Array, "*batch"]:
    """Delta in coin of coin-settled options, ``quantity * multiplier * d(F c_coin)/dF``
    (``N(d1)`` per call, ``N(d1) - 1`` per put)."""
    delta, _ = _inverse_deltas(quantity, multiplier, forward, strike, maturity, vol, is_call)
    return delta


def inverse_option_delta_pa(
    *,
    quantity: Float[ArrayLike, "*batch"],
    multiplier: Float[ArrayLike, "*batch"],
    forward: Float[ArrayLike, "*batch"],
    strike: Float[ArrayLike, "*batch"],
    maturity: Float[ArrayLike, "*batch"],
    vol: Float[ArrayLike, "*batch"],
    is_call: Bool[ArrayLike, "*batch"],
) -> Float[Array, "*batch"]:
    """Premium-adjusted delta in coin, ``delta - c_coin = F dc_coin/dF`` per unit
    (``(K/F) N(d2)`` per call, ``-(K/F) N(-d2)`` per put), times ``quantity * multiplier``."""
    _, delta_pa = _inverse_deltas(quantity, multiplier, forward, strike, maturity, vol, is_call)
    return delta_pa


def option_value(
    *,
    quantity: Float[ArrayLike, "*batch"],
    multiplier: Float[ArrayLike, "*batch"],
    forward: Float[ArrayLike, "*batch"],
    strike: Float[ArrayLike, "*batch"],
    maturity: Float[ArrayLike, "*batch"],
    rate: Float[ArrayLike, "*batch"],
    vol: Float[ArrayLike, "*batch"],
    is_call: Bool[ArrayLike, "*batch"],
    spot: Float[ArrayLike, "*batch"],
    inverse: Bool[ArrayLike, "*batch"],
) -> Float[Array, "*batch"]:
    """USD value of a book mixing linear and inverse options (``inverse`` per position);
    ``rate`` is ignored on inverse rows (undiscounted) and ``spot`` on linear rows."""
    linear = linear_option_value(
        quantity=quantity, multiplier=multiplier, forward=forward, strike=strike,
        maturity=maturity, rate=rate, vol=vol, is_call=is_call,
    )
    coin_settled = inverse_option_value(
        quantity=quantity, multiplier=multiplier, forward=forward, strike=strike,
        maturity=maturity, vol=vol, is_call=is_call, spot=spot,
    )
    return jnp.where(as_bool(inverse), coin_settled, linear)
