"""Inverse (coin-settled) European options priced in coin, for every model with a pricer here.

A Deribit option on ``F`` (the expiry's forward, USD per coin) settles ``(F_T - K)^+ / F_T``
coin (call). Its value in coin is the USD value on the forward divided by the forward: with
Deribit's convention of undiscounted forward prices (rate 0),

    price_coin = E[(F_T - K)^+] / F = E[(F_T/F - K/F)^+],

so it is the model price of an option with spot 1, strike ``K/F``, rate and dividend 0. This
module is that one line for each model — Black-76 (``black_undiscounted``), Heston, Bates and
SVCJ (the characteristic-function pricers of :mod:`riskengine.analytic.heston`, Lewis'
formula) — vectorised over quotes (every argument broadcasts) and differentiable in every
argument, parameters included. Normalising to spot 1 also puts the Fourier pricer's
truncation tolerance (``1e-12 * spot``) on the coin scale.

Float64 (``jax_enable_x64``) is needed for the Fourier models' accuracy (see ``fourier``).
"""

from __future__ import annotations

from collections.abc import Mapping

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Float

from riskengine.analytic.black_scholes import black_undiscounted
from riskengine.analytic.fourier import DEFAULT_NODES
from riskengine.analytic.heston import bates_price, heston_price, svcj_price

__all__ = ["INVERSE_MODELS", "inverse_price"]

# Model name -> its parameters (the names the price job and the simulators use).
INVERSE_MODELS: dict[str, tuple[str, ...]] = {
    "black": ("sigma",),
    "heston": ("v0", "kappa", "theta", "sigma", "rho"),
    "bates": ("v0", "kappa", "theta", "sigma", "rho", "jump_intensity", "jump_mean", "jump_vol"),
    "svcj": ("v0", "kappa", "theta", "sigma", "rho", "jump_intensity", "jump_mean", "jump_vol",
             "vol_jump_mean", "jump_corr"),
}
_FOURIER = {"heston": heston_price, "bates": bates_price, "svcj": svcj_price}


def inverse_price(
    model: str,
    params: Mapping[str, Float[ArrayLike, "*batch"]],
    *,
    forward: Float[ArrayLike, "*batch"],
    strike: Float[ArrayLike, "*batch"],
    maturity: Float[ArrayLike, "*batch"],
    is_call: Bool[ArrayLike, "*batch"],
    num_nodes: int = DEFAULT_NODES,
) -> Float[Array, "*batch"]:
    """Coin price of inverse options under ``model`` (``black``, ``heston``, ``bates``,
    ``svcj``): the USD price on ``forward`` (rate 0) divided by ``forward``.

    ``params`` maps the model's parameter names (:data:`INVERSE_MODELS`; Black's is the
    volatility ``sigma``) to scalars or arrays broadcasting against the quotes.
    ``num_nodes``: Gauss–Legendre nodes of the Fourier pricers (unused by Black).
    """
    if model not in INVERSE_MODELS:
        raise ValueError(f"inverse_price: unknown model {model!r}; expected one of {sorted(INVERSE_MODELS)}")
    names = INVERSE_MODELS[model]
    missing = [n for n in names if n not in params]
    if missing:
        raise ValueError(f"inverse_price: {model} needs parameter {missing[0]!r}; expected {list(names)}")
    dtype = jnp.result_type(float, forward, strike, maturity, *(params[n] for n in names))
    moneyness = jnp.asarray(strike, dtype) / jnp.asarray(forward, dtype)
    maturity = jnp.asarray(maturity, dtype)
    if model == "black":
        sigma = jnp.asarray(params["sigma"], dtype)
        return black_undiscounted(forward=jnp.ones_like(moneyness), strike=moneyness,
                                  total_variance=sigma * sigma * maturity, is_call=is_call)
    one = jnp.ones((), dtype)
    zero = jnp.zeros((), dtype)
    return _FOURIER[model](spot=one, strike=moneyness, maturity=maturity, rate=zero,
                           dividend=zero, is_call=is_call, num_nodes=num_nodes,
                           **{n: jnp.asarray(params[n], dtype) for n in names})
