"""Compound Poisson jumps in the log-spot, shared by Merton, Bates and SVCJ."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray


def lognormal_jump_compensator(
    jump_mean: Float[Array, ""], jump_vol: Float[Array, ""]
) -> Float[Array, ""]:
    """E[e^J] - 1 for a log jump J ~ N(jump_mean, jump_vol^2)."""
    return jnp.expm1(jump_mean + 0.5 * jump_vol**2)


def jump_counts(
    key: PRNGKeyArray, intensity_dt: Float[Array, ""], shape: tuple[int, ...], dtype
) -> Float[Array, "..."]:
    """Number of jumps in a step, Poisson(intensity * dt), as floats."""
    return jax.random.poisson(key, intensity_dt, shape).astype(dtype)


def sum_of_normal_jumps(
    key: PRNGKeyArray,
    counts: Float[Array, " paths"],
    jump_mean: Float[Array, ""],
    jump_vol: Float[Array, ""],
) -> Float[Array, " paths"]:
    """Sum of ``counts`` i.i.d. N(jump_mean, jump_vol^2) log jumps, sampled exactly."""
    z = jax.random.normal(key, counts.shape, counts.dtype)
    return counts * jump_mean + jnp.sqrt(counts) * jump_vol * z
