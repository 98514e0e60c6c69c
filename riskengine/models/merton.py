"""Merton (1976) jump diffusion: GBM plus compound Poisson lognormal jumps."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from riskengine.models.base import Model, check_finite, check_parameter
from riskengine.models.jumps import jump_counts, lognormal_jump_compensator, sum_of_normal_jumps


class Merton(Model):
    """dS/S = (r - q - lambda k) dt + sigma dW + (e^J - 1) dN, J ~ N(jump_mean, jump_vol^2)."""

    sigma: Float[Array, ""] | float
    jump_intensity: Float[Array, ""] | float
    jump_mean: Float[Array, ""] | float
    jump_vol: Float[Array, ""] | float

    def __check_init__(self):
        fields = {
            "sigma": self.sigma,
            "jump_intensity": self.jump_intensity,
            "jump_mean": self.jump_mean,
            "jump_vol": self.jump_vol,
        }
        if check_finite("merton", fields):
            for name in ("sigma", "jump_intensity", "jump_vol"):
                check_parameter("merton", name, fields[name], float(fields[name]) >= 0, "must be >= 0")

    has_stochastic_vol = False

    def init_aux(self, num_paths, dtype):
        return ()

    def step(self, aux, *, dt, drift, z_var, key):
        dtype = dt.dtype
        sigma = jnp.asarray(self.sigma, dtype)
        lam = jnp.asarray(self.jump_intensity, dtype)
        mu_j = jnp.asarray(self.jump_mean, dtype)
        sig_j = jnp.asarray(self.jump_vol, dtype)
        k = lognormal_jump_compensator(mu_j, sig_j)
        key_n, key_j = jax.random.split(key)
        counts = jump_counts(key_n, lam * dt, z_var.shape, dtype)
        jumps = sum_of_normal_jumps(key_j, counts, mu_j, sig_j)
        mean = (drift - lam * k - 0.5 * sigma**2) * dt + jumps
        std = jnp.broadcast_to(sigma * jnp.sqrt(dt), z_var.shape)
        return aux, mean, std

    def shift_vol(self, eps):
        return Merton(
            sigma=self.sigma + eps,
            jump_intensity=self.jump_intensity,
            jump_mean=self.jump_mean,
            jump_vol=self.jump_vol,
        )
