"""Geometric Brownian motion (Black–Scholes)."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

from riskengine.models.base import Model, check_finite, check_parameter


class GBM(Model):
    """dS/S = (r - q) dt + sigma dW. The log-spot step is exact."""

    sigma: Float[Array, ""] | float

    def __check_init__(self):
        if check_finite("gbm", {"sigma": self.sigma}):
            check_parameter("gbm", "sigma", self.sigma, float(self.sigma) >= 0, "must be >= 0")

    has_stochastic_vol = False

    def init_aux(self, num_paths, dtype):
        return ()

    def step(self, aux, *, dt, drift, z_var, key):
        sigma = jnp.asarray(self.sigma, dt.dtype)
        mean = (drift - 0.5 * sigma**2) * dt
        std = sigma * jnp.sqrt(dt)
        shape = z_var.shape
        return aux, jnp.broadcast_to(mean, shape), jnp.broadcast_to(std, shape)

    def shift_vol(self, eps):
        return GBM(sigma=self.sigma + eps)
