"""The payoff of a vanilla (European) option, written once: the Monte Carlo pricer, the
closed forms' zero-variance limit and the hedging package's derivative all call it."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Float


def vanilla_payoff(
    spot: Float[ArrayLike, "*batch"], strike: Float[ArrayLike, "*batch"], is_call: Bool[ArrayLike, "*batch"] | bool
) -> Float[Array, "*batch"]:
    """``max(S - K, 0)`` for a call, ``max(K - S, 0)`` for a put, elementwise (the dtype of
    ``spot`` and ``strike``)."""
    difference = jnp.asarray(spot) - jnp.asarray(strike)
    sign = jnp.where(jnp.asarray(is_call), 1.0, -1.0).astype(difference.dtype)
    return jnp.maximum(sign * difference, 0.0)
