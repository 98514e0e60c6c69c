"""Small array helpers shared by the instrument modules (private)."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike


def as_float(*values: ArrayLike) -> list[Array]:
    """Convert to one common floating dtype (float32, or float64 under x64).

    Shapes are left alone: the instrument functions broadcast position fields of shape
    ``[positions]`` against market state of shape ``[paths, positions]`` elementwise.
    """
    dtype = jnp.result_type(float, *values)
    return [jnp.asarray(v, dtype) for v in values]


def as_bool(value: ArrayLike) -> Array:
    return jnp.asarray(value, bool)
