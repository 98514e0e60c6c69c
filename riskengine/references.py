"""Analytic reference prices and Greeks for any simulator model (where a closed form exists).

Greeks use the same definitions as the Monte Carlo pricer (:mod:`riskengine.pricing`):
delta and gamma with respect to the spot, vega with respect to ``Model.shift_vol``.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from riskengine import programs
from riskengine.analytic import (
    bates_price,
    black_scholes_price,
    heston_price,
    merton_price,
    svcj_price,
)
from riskengine.models import GBM, SVCJ, Bates, Heston, Merton, Model


def analytic_price(model: Model, *, spot, strike, maturity, rate, dividend, is_call):
    """Closed-form or characteristic-function price of a European option under ``model``."""
    params = {f.name: getattr(model, f.name) for f in dataclasses.fields(model) if f.name != "scheme"}
    common = dict(spot=spot, strike=strike, maturity=maturity, rate=rate, dividend=dividend, is_call=is_call)
    if isinstance(model, GBM):
        return black_scholes_price(vol=model.sigma, **common)
    pricer = {Heston: heston_price, Bates: bates_price, SVCJ: svcj_price, Merton: merton_price}.get(type(model))
    if pricer is None:
        raise NotImplementedError(f"no analytic price for {type(model).__name__}")
    return pricer(**params, **common)


def has_analytic_price(model: Model) -> bool:
    return isinstance(model, GBM | Heston | Bates | SVCJ | Merton)


def analytic_price_and_greeks(model: Model, *, spot, strike, maturity, rate, dividend, is_call) -> dict:
    """Price, delta, gamma and vega (parallel volatility shift) by AD of the analytic price."""
    spot = jnp.asarray(spot, jnp.result_type(float))
    zero = jnp.zeros_like(spot)

    def price(s, eps):
        return analytic_price(
            model.shift_vol(eps), spot=s, strike=strike, maturity=maturity, rate=rate,
            dividend=dividend, is_call=is_call,
        )

    def value_and_delta(s):
        return jax.jvp(lambda s_: price(s_, zero), (s,), (jnp.ones_like(s),))

    (value, delta), (_, gamma) = jax.jvp(value_and_delta, (spot,), (jnp.ones_like(spot),))
    _, vega = jax.jvp(lambda e: price(spot, e), (zero,), (jnp.ones_like(zero),))
    return {"price": value, "delta": delta, "gamma": gamma, "vega": vega}


def _price_and_greeks(model, spot, strike, maturity, rate, dividend, is_call):
    return analytic_price_and_greeks(
        model, spot=spot, strike=strike, maturity=maturity, rate=rate, dividend=dividend, is_call=is_call
    )


#: :func:`analytic_price_and_greeks` as one compiled program with positional arguments
#: ``(model, spot, strike, maturity, rate, dividend, is_call)``, kept between runs by
#: :mod:`riskengine.programs` (a second run of a price job does not trace the forward-mode
#: Greeks of a characteristic-function pricer again). Compiled whole, its float64 figures
#: may differ from the eager ones in the last bit.
price_and_greeks_program = programs.persistent_jit(_price_and_greeks, key="references.analytic_price_and_greeks")
