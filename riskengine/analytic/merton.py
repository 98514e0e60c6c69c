"""Merton (1976) jump-diffusion European prices by the Poisson-weighted Black–Scholes series.

Given ``n`` jumps, ``log S_T`` is normal with total variance ``sigma^2 T + n jump_vol^2``
and the compensated drift, so

    V = e^{-rT} sum_n P(N_T = n) Black(F_n, K, sigma^2 T + n jump_vol^2),
    F_n = S_0 exp((r - q - lambda m) T + n (jump_mean + jump_vol^2 / 2)),
    m = exp(jump_mean + jump_vol^2 / 2) - 1,  N_T ~ Poisson(lambda T).

The series is summed over a fixed number of terms (static, so the function jits).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Float

from riskengine.analytic.black_scholes import black_undiscounted

__all__ = ["merton_price"]

# P(N >= 128) < 1e-12 for lambda T <= 60 (Chernoff bound); pass ``terms`` for more.
DEFAULT_TERMS = 128


@functools.partial(jax.jit, static_argnames=("terms",))
def merton_price(
    *,
    spot: Float[ArrayLike, "*batch"],
    strike: Float[ArrayLike, "*batch"],
    maturity: Float[ArrayLike, "*batch"],
    rate: Float[ArrayLike, "*batch"],
    dividend: Float[ArrayLike, "*batch"],
    sigma: Float[ArrayLike, "*batch"],
    jump_intensity: Float[ArrayLike, "*batch"],
    jump_mean: Float[ArrayLike, "*batch"],
    jump_vol: Float[ArrayLike, "*batch"],
    is_call: Bool[ArrayLike, "*batch"],
    terms: int = DEFAULT_TERMS,
) -> Float[Array, "*batch"]:
    """Merton jump-diffusion European option price.

    ``sigma`` is the diffusion volatility, jumps arrive at rate ``jump_intensity`` and the
    log jump is ``N(jump_mean, jump_vol^2)``. ``terms`` (static) is the number of Poisson
    terms: the truncation error is below ``P(N_T >= terms)`` times the largest conditional
    price; the default 128 is enough for ``jump_intensity * maturity <= 60``.
    """
    dtype = jnp.result_type(
        float, spot, strike, maturity, rate, dividend, sigma, jump_intensity, jump_mean, jump_vol
    )
    spot, strike, maturity, rate, dividend, sigma, lam, mu, delta = (
        jnp.asarray(v, dtype)[..., None]
        for v in (spot, strike, maturity, rate, dividend, sigma, jump_intensity, jump_mean,
                  jump_vol)
    )
    is_call = jnp.asarray(is_call, bool)[..., None]
    n = jnp.arange(terms, dtype=dtype)
    lam_t = lam * maturity
    # Poisson weights e^{-lT} (lT)^n / n! as a running product: no log(0) at lT = 0 (so the
    # gradient there is the right one-sided derivative) and no overflow for lT <= 80.
    ratios = jnp.where(n == 0, 1.0, lam_t / jnp.maximum(n, 1.0))
    weight = jnp.exp(-lam_t) * jnp.cumprod(ratios, axis=-1)
    compensator = jnp.expm1(mu + 0.5 * delta * delta)
    log_forward = (
        jnp.log(spot)
        + (rate - dividend - lam * compensator) * maturity
        + n * (mu + 0.5 * delta * delta)
    )
    total_variance = sigma * sigma * maturity + n * delta * delta
    conditional = black_undiscounted(
        forward=jnp.exp(log_forward), strike=strike, total_variance=total_variance,
        is_call=is_call,
    )
    return jnp.exp(-rate[..., 0] * maturity[..., 0]) * jnp.sum(
        weight * conditional, axis=-1
    )
