"""Closed-form and semi-analytic European option pricers in JAX.

Pure, differentiable, ``jit``-able functions with keyword-only arguments that broadcast over
strikes, maturities and parameters. The characteristic-function (Fourier) pricers need
float64 (``jax.config.update("jax_enable_x64", True)``) for 1e-6 relative accuracy.
"""

from riskengine.analytic.black_scholes import (
    black76_price,
    black_scholes_greeks,
    black_scholes_price,
    implied_vol,
)
from riskengine.analytic.characteristic import bates_cf, heston_cf, svcj_cf
from riskengine.analytic.fourier import lewis_price
from riskengine.analytic.heston import bates_price, heston_price, svcj_price
from riskengine.analytic.inverse import INVERSE_MODELS, inverse_price
from riskengine.analytic.merton import merton_price

__all__ = [
    "INVERSE_MODELS",
    "bates_cf",
    "bates_price",
    "black76_price",
    "black_scholes_greeks",
    "black_scholes_price",
    "heston_cf",
    "heston_price",
    "implied_vol",
    "inverse_price",
    "lewis_price",
    "merton_price",
    "svcj_cf",
    "svcj_price",
]
