"""Arithmetic Brownian motion ``dS = sigma dW`` (Bachelier), the mid price of
Avellaneda & Stoikov (2008) and Guéant, Lehalle & Fernandez-Tapia (2013).

Unlike the models in :data:`riskengine.models.MODELS` this one moves the *price*, not the
log-price, so it does not implement the log-spot :class:`~riskengine.models.base.Model`
interface and is deliberately not registered there: the price and stress jobs, which
simulate in log space, cannot mistake it for a log model. The market_making job accepts
it as ``model: {name: brownian, params: {sigma: 2.0}}``.

``increments`` chooses the law of one step: ``"binomial"`` moves ``±sigma sqrt(dt)`` with
probability 1/2 each (the walk of Avellaneda & Stoikov's simulations), ``"gaussian"``
draws ``sigma sqrt(dt) Z`` (exact Brownian increments).
"""

from __future__ import annotations

import math
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from riskengine.models.base import check_parameter, is_concrete

Increments = Literal["binomial", "gaussian"]
INCREMENTS: tuple[str, ...] = ("binomial", "gaussian")


class Brownian(eqx.Module):
    """Arithmetic Brownian motion with absolute volatility ``sigma`` (price units per
    square root of time) and no drift."""

    sigma: Float[Array, ""] | float
    increments: str = eqx.field(default="binomial", static=True)

    def __check_init__(self):
        if self.increments not in INCREMENTS:
            raise ValueError(
                f"model.params.increments: must be one of {list(INCREMENTS)} for model 'brownian', "
                f"got {self.increments!r}"
            )
        if is_concrete(self.sigma) and jnp.ndim(self.sigma) == 0:
            value = float(self.sigma)
            check_parameter("brownian", "sigma", self.sigma, math.isfinite(value), "must be finite")
            check_parameter("brownian", "sigma", self.sigma, value >= 0, "must be >= 0")

    def increment(
        self, key: PRNGKeyArray, shape: tuple[int, ...], *, dt: Float[Array, ""], dtype
    ) -> Float[Array, "..."]:
        """Price increments over one step of length ``dt``."""
        scale = jnp.asarray(self.sigma, dtype) * jnp.sqrt(jnp.asarray(dt, dtype))
        if self.increments == "binomial":
            sign = jnp.where(jax.random.bernoulli(key, 0.5, shape), 1.0, -1.0).astype(dtype)
            return scale * sign
        return scale * jax.random.normal(key, shape, dtype)
