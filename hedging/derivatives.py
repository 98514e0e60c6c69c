"""The derivative a desk is short and hedges: a European option (payoff, and the
Black–Scholes delta and gamma the baselines and features use, from
:func:`riskengine.analytic.black_scholes_greeks`)."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from riskengine.analytic.black_scholes import black_scholes_greeks
from riskengine.payoffs import vanilla_payoff

_MIN_STD = 1e-12  # floor on vol * sqrt(tau): a path whose variance hit zero keeps finite Greeks


class EuropeanOption(eqx.Module):
    """A European call or put on the simulated underlying."""

    strike: float = eqx.field(static=True)
    maturity: float = eqx.field(static=True)
    is_call: bool = eqx.field(static=True, default=True)

    def payoff(self, spot: Float[Array, "*paths"]) -> Float[Array, "*paths"]:
        return vanilla_payoff(spot, self.strike, self.is_call)

    def _greeks(self, spot, tau, vol, rate):
        vol = jnp.maximum(vol, _MIN_STD / jnp.sqrt(tau))
        return black_scholes_greeks(spot=spot, strike=self.strike, maturity=tau, rate=rate, dividend=0.0, vol=vol,
                                    is_call=self.is_call)

    def bs_delta(
        self, spot: Float[Array, "*paths"], *, tau: Float[Array, "*paths"], vol: Float[Array, "*paths"], rate: float
    ) -> Float[Array, "*paths"]:
        """Black–Scholes delta with time to maturity ``tau`` (> 0) and volatility ``vol``."""
        return self._greeks(spot, tau, vol, rate)["delta"]

    def bs_gamma(
        self, spot: Float[Array, "*paths"], *, tau: Float[Array, "*paths"], vol: Float[Array, "*paths"], rate: float
    ) -> Float[Array, "*paths"]:
        return self._greeks(spot, tau, vol, rate)["gamma"]
