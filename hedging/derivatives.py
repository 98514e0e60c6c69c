"""The derivative a desk is short and hedges: a European option (payoff, Black–Scholes
price, delta and gamma used by the baselines and features)."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jax.scipy.special import ndtr
from jaxtyping import Array, Float


class EuropeanOption(eqx.Module):
    """A European call or put on the simulated underlying."""

    strike: float = eqx.field(static=True)
    maturity: float = eqx.field(static=True)
    is_call: bool = eqx.field(static=True, default=True)

    def payoff(self, spot: Float[Array, "*paths"]) -> Float[Array, "*paths"]:
        sign = 1.0 if self.is_call else -1.0
        return jnp.maximum(sign * (spot - self.strike), 0.0)

    def _d1(self, spot, tau, vol, rate):
        tau = jnp.maximum(tau, 1e-12)
        std = jnp.maximum(vol * jnp.sqrt(tau), 1e-12)
        return (jnp.log(spot / self.strike) + (rate + 0.5 * vol * vol) * tau) / std, std

    def bs_delta(
        self, spot: Float[Array, "*paths"], *, tau: Float[Array, "*paths"], vol: Float[Array, "*paths"], rate: float
    ) -> Float[Array, "*paths"]:
        """Black–Scholes delta with time to maturity ``tau`` and volatility ``vol``."""
        d1, _ = self._d1(spot, tau, vol, rate)
        return ndtr(d1) if self.is_call else ndtr(d1) - 1.0

    def bs_gamma(
        self, spot: Float[Array, "*paths"], *, tau: Float[Array, "*paths"], vol: Float[Array, "*paths"], rate: float
    ) -> Float[Array, "*paths"]:
        d1, std = self._d1(spot, tau, vol, rate)
        return jnp.exp(-0.5 * d1 * d1) / jnp.sqrt(2.0 * jnp.pi) / (spot * std)

    def bs_price(
        self, spot: Float[Array, "*paths"], *, tau: Float[Array, "*paths"], vol: Float[Array, "*paths"], rate: float
    ) -> Float[Array, "*paths"]:
        d1, std = self._d1(spot, tau, vol, rate)
        d2 = d1 - std
        df = jnp.exp(-rate * tau)
        call = spot * ndtr(d1) - self.strike * df * ndtr(d2)
        return call if self.is_call else call - spot + self.strike * df
