"""The Heston "model hedge" (Buehler, Gonon, Teichmann, Wood 2019, section 5): the
complete-market replication of a European option under Heston with the stock and the
variance swap ``E_t[int_0^T v ds]``.

With ``C(S, v, tau)`` the Heston price, the option's discounted value moves like
``C_S dS + C_v dv`` (plus a drift), and the variance swap's discounted price
``VS_t = int_0^t v ds + theta tau + (v - theta)(1 - e^{-kappa tau}) / kappa`` (times
``e^{-rT}``) moves like ``e^{-rT} w(tau) dv`` with ``w(tau) = (1 - e^{-kappa tau}) / kappa``.
So the hedge holds ``C_S`` shares and ``e^{r tau} C_v / w(tau)`` variance swaps; with the
stock only it is the Heston delta ``C_S``.

``C_S`` and ``C_v`` are exact derivatives (autodiff) of the Fourier pricer
:func:`riskengine.analytic.heston_price`, evaluated on every path and date (``lax.map`` over
dates keeps memory at one date's ``paths x nodes``).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from hedging.policies import Policy
from riskengine.analytic import heston_price
from riskengine.models import Heston

MODEL_HEDGE_NODES = 96  # Gauss–Legendre nodes of the pricer; the price's error is far below a hedge's noise


class HestonDeltaVega(Policy):
    """Delta in the underlying and (when the problem has a variance swap) vega in the
    variance swap, from the Heston price's sensitivities: the complete-market hedge,
    rebalanced at every date whatever the cost."""
    kappa: float = eqx.field(static=True)
    theta: float = eqx.field(static=True)
    sigma: float = eqx.field(static=True)
    rho: float = eqx.field(static=True)
    num_nodes: int = eqx.field(static=True, default=MODEL_HEDGE_NODES)

    @classmethod
    def of(cls, model, **kwargs) -> HestonDeltaVega:
        """From a :class:`riskengine.models.Heston` (its ``v0`` is not needed: the hedge reads the
        path's current variance)."""
        if not isinstance(model, Heston):
            raise ValueError(f"evaluate.baselines: heston_delta_vega needs a heston model, got {type(model).__name__}")
        return cls(kappa=float(model.kappa), theta=float(model.theta), sigma=float(model.sigma),
                   rho=float(model.rho), **kwargs)

    def sensitivities(self, spot, variance, tau, *, strike, is_call, rate=0.0):
        """``(C_S, C_v)`` of the Heston price, elementwise over arrays of one shape."""
        dtype = spot.dtype

        def total_price(s, v):
            p = heston_price(
                spot=s, strike=jnp.asarray(strike, dtype), maturity=tau, rate=jnp.asarray(rate, dtype),
                dividend=jnp.asarray(0.0, dtype), v0=v, kappa=jnp.asarray(self.kappa, dtype),
                theta=jnp.asarray(self.theta, dtype), sigma=jnp.asarray(self.sigma, dtype),
                rho=jnp.asarray(self.rho, dtype), is_call=is_call, num_nodes=self.num_nodes,
            )
            return jnp.sum(p)  # prices are independent: the gradient is elementwise

        return jax.grad(total_price, argnums=(0, 1))(spot, variance)

    def encode(self, view):
        d = view.derivative
        variance = jnp.maximum(view.variance, 0.0)

        def one_date(args):
            spot, v, tau = args
            return self.sensitivities(spot, v, tau, strike=d.strike, is_call=d.is_call, rate=view.rate)

        delta, dc_dv = jax.lax.map(one_date, (view.spot, variance, view.time_to_maturity))
        if view.num_instruments == 1:
            return delta[..., None]
        tau = view.time_to_maturity
        weight = -jnp.expm1(-self.kappa * tau) / self.kappa  # d VarSwap / dv
        vega_units = jnp.exp(view.rate * tau) * dc_dv / weight
        hedge = jnp.stack([delta, vega_units], axis=-1)
        pad = view.num_instruments - 2
        return jnp.pad(hedge, [(0, 0), (0, 0), (0, pad)]) if pad else hedge

    def decide(self, encoded, carry):
        return encoded, encoded
