"""SVCJ: stochastic volatility with correlated jumps in price and variance.

Duffie, Pan and Singleton (2000); Eraker, Johannes and Polson (2003); fitted to bitcoin by
Hou, Wang, Chen and Härdle (2020). Jumps arrive at rate ``jump_intensity``; each adds
J_V ~ Exponential(mean ``vol_jump_mean``) to the variance and J_S | J_V ~
N(``jump_mean`` + ``jump_corr`` * J_V, ``jump_vol``^2) to the log-spot. The spot drift is
compensated by jump_intensity * (E[e^{J_S}] - 1), with
E[e^{J_S}] = exp(jump_mean + jump_vol^2 / 2) / (1 - jump_corr * vol_jump_mean).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from riskengine.models.base import check_finite, check_parameter
from riskengine.models.heston import StochasticVolModel, check_heston_fields, heston_step
from riskengine.models.jumps import jump_counts


def svcj_jump_compensator(jump_mean, jump_vol, vol_jump_mean, jump_corr):
    """E[e^{J_S}] - 1 for SVCJ's correlated jumps."""
    return jnp.exp(jump_mean + 0.5 * jump_vol**2) / (1.0 - jump_corr * vol_jump_mean) - 1.0


class SVCJ(StochasticVolModel):
    """Heston's fields plus ``jump_intensity, jump_mean, jump_vol, vol_jump_mean, jump_corr``."""

    v0: Float[Array, ""] | float
    kappa: Float[Array, ""] | float
    theta: Float[Array, ""] | float
    sigma: Float[Array, ""] | float
    rho: Float[Array, ""] | float
    jump_intensity: Float[Array, ""] | float
    jump_mean: Float[Array, ""] | float
    jump_vol: Float[Array, ""] | float
    vol_jump_mean: Float[Array, ""] | float
    jump_corr: Float[Array, ""] | float
    scheme: str = eqx.field(default="qe", static=True)


    def long_run_variance(self):
        """``theta + jump_intensity vol_jump_mean / kappa``: the variance jumps (mean
        ``vol_jump_mean`` at rate ``jump_intensity``) raise the mean-reversion level."""
        return self.theta + self.jump_intensity * self.vol_jump_mean / self.kappa

    def __check_init__(self):
        check_heston_fields("svcj", self)
        jumps = {
            "jump_intensity": self.jump_intensity,
            "jump_mean": self.jump_mean,
            "jump_vol": self.jump_vol,
            "vol_jump_mean": self.vol_jump_mean,
            "jump_corr": self.jump_corr,
        }
        if check_finite("svcj", jumps):
            for name in ("jump_intensity", "jump_vol", "vol_jump_mean"):
                check_parameter("svcj", name, jumps[name], float(jumps[name]) >= 0, "must be >= 0")
            check_parameter(
                "svcj", "jump_corr", self.jump_corr,
                float(self.jump_corr) * float(self.vol_jump_mean) < 1.0,
                "jump_corr * vol_jump_mean must be < 1 (else E[exp(jump)] is infinite)",
            )

    def step(self, aux, *, dt, drift, z_var, key):
        dtype = dt.dtype
        lam = jnp.asarray(self.jump_intensity, dtype)
        mu_s = jnp.asarray(self.jump_mean, dtype)
        sig_s = jnp.asarray(self.jump_vol, dtype)
        mu_v = jnp.asarray(self.vol_jump_mean, dtype)
        rho_j = jnp.asarray(self.jump_corr, dtype)
        k = svcj_jump_compensator(mu_s, sig_s, mu_v, rho_j)
        v_next, mean, std = heston_step(
            aux, scheme=self.scheme, dt=dt, drift=drift - lam * k, z_var=z_var,
            kappa=self.kappa, theta=self.theta, sigma=self.sigma, rho=self.rho,
        )
        key_n, key_v, key_s = jax.random.split(key, 3)
        counts = jump_counts(key_n, lam * dt, z_var.shape, dtype)
        # Sum of `counts` exponentials = Gamma(counts) * mean; zero when there is no jump.
        has_jump = counts > 0
        gamma = jax.random.gamma(key_v, jnp.where(has_jump, counts, 1.0), dtype=dtype)
        variance_jumps = jnp.where(has_jump, gamma, 0.0) * mu_v
        z = jax.random.normal(key_s, z_var.shape, dtype)
        spot_jumps = counts * mu_s + rho_j * variance_jumps + jnp.sqrt(counts) * sig_s * z
        # Variance jumps land at the end of the step; the log-spot used the diffusive V'.
        return v_next + variance_jumps, mean + spot_jumps, std
