"""Bates (1996): Heston stochastic volatility plus Merton lognormal jumps in the spot."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from riskengine.models.base import check_finite, check_parameter
from riskengine.models.heston import StochasticVolModel, check_heston_fields, heston_step
from riskengine.models.jumps import jump_counts, lognormal_jump_compensator, sum_of_normal_jumps


class Bates(StochasticVolModel):
    """Heston's fields plus ``jump_intensity``, ``jump_mean`` (mean log jump), ``jump_vol``."""

    v0: Float[Array, ""] | float
    kappa: Float[Array, ""] | float
    theta: Float[Array, ""] | float
    sigma: Float[Array, ""] | float
    rho: Float[Array, ""] | float
    jump_intensity: Float[Array, ""] | float
    jump_mean: Float[Array, ""] | float
    jump_vol: Float[Array, ""] | float
    scheme: str = eqx.field(default="qe", static=True)

    def __check_init__(self):
        check_heston_fields("bates", self)
        jumps = {"jump_intensity": self.jump_intensity, "jump_mean": self.jump_mean, "jump_vol": self.jump_vol}
        if check_finite("bates", jumps):
            for name in ("jump_intensity", "jump_vol"):
                check_parameter("bates", name, jumps[name], float(jumps[name]) >= 0, "must be >= 0")

    def step(self, aux, *, dt, drift, z_var, key):
        dtype = dt.dtype
        lam = jnp.asarray(self.jump_intensity, dtype)
        mu_j = jnp.asarray(self.jump_mean, dtype)
        sig_j = jnp.asarray(self.jump_vol, dtype)
        k = lognormal_jump_compensator(mu_j, sig_j)
        v_next, mean, std = heston_step(
            aux, scheme=self.scheme, dt=dt, drift=drift - lam * k, z_var=z_var,
            kappa=self.kappa, theta=self.theta, sigma=self.sigma, rho=self.rho,
        )
        key_n, key_j = jax.random.split(key)
        counts = jump_counts(key_n, lam * dt, z_var.shape, dtype)
        return v_next, mean + sum_of_normal_jumps(key_j, counts, mu_j, sig_j), std
