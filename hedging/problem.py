"""A hedging problem: the model, the market, the derivative, the hedge instruments, the
trading dates and the costs, and the simulation of its market paths through
:mod:`riskengine.simulate` (no private copy of any model)."""

from __future__ import annotations

import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from hedging.costs import TransactionCosts
from hedging.derivatives import EuropeanOption
from riskengine.models import Model
from riskengine.references import analytic_price_and_greeks, has_analytic_price
from riskengine.simulate import as_assets, block_keys, simulate_block

INSTRUMENTS = ("underlying", "variance_swap")
BLOCK_SIZE = 1024  # paths per random-number block, keyed by riskengine.simulate.block_keys


class MarketPaths(eqx.Module):
    """Simulated market on the hedge dates ``t_0 = 0 < ... < t_T = maturity``.

    ``prices`` are the hedge instruments' prices discounted to time 0, ``payoff`` the
    derivative's discounted payoff."""
    time: Float[Array, " dates"]
    spot: Float[Array, "dates paths"]
    variance: Float[Array, "dates paths"]
    prices: Float[Array, "dates paths instruments"]
    payoff: Float[Array, " paths"]

    @property
    def num_paths(self) -> int:
        return self.spot.shape[1]


class HedgingProblem(eqx.Module):
    """Everything but the policy and the objective."""
    model: Model
    derivative: EuropeanOption
    spot: float = eqx.field(static=True)
    rate: float = eqx.field(static=True, default=0.0)
    steps: int = eqx.field(static=True, default=20)
    substeps: int = eqx.field(static=True, default=1)
    instruments: tuple[str, ...] = eqx.field(static=True, default=("underlying",))
    costs: TransactionCosts = eqx.field(default_factory=TransactionCosts)
    dtype: Any = eqx.field(static=True, default=jnp.float32)

    def __check_init__(self):
        if not self.instruments or self.instruments[0] != "underlying":
            raise ValueError(f"hedge.instruments: must start with 'underlying', got {list(self.instruments)}")
        unknown = sorted(set(self.instruments) - set(INSTRUMENTS))
        if unknown:
            raise ValueError(f"hedge.instruments: unknown instrument {unknown[0]!r}; expected some of {list(INSTRUMENTS)}")
        if "variance_swap" in self.instruments and not self.model.has_stochastic_vol:
            raise ValueError("hedge.instruments: a variance swap needs a stochastic-volatility model (heston, bates, svcj)")
        if self.steps < 1 or self.substeps < 1:
            raise ValueError(f"hedge.steps: must be >= 1, got {self.steps} (substeps {self.substeps})")

    @property
    def num_instruments(self) -> int:
        return len(self.instruments)

    @property
    def dt(self) -> float:
        return self.derivative.maturity / self.steps

    def constant_variance(self) -> float:
        """sigma² of a constant-volatility model (its diffusive part)."""
        return float(getattr(self.model, "sigma", 0.0)) ** 2

    def simulate(self, key: PRNGKeyArray, num_paths: int) -> MarketPaths:
        """Market paths for ``num_paths`` paths: blocks of ``BLOCK_SIZE`` paths keyed
        ``fold_in(key, block)``, so the first n paths do not depend on ``num_paths``."""
        num_blocks = -(-num_paths // BLOCK_SIZE)
        keys = block_keys(key, 0, num_blocks)
        blocks = jax.vmap(self._simulate_block)(keys)  # [blocks, fine dates, block]

        def join(x):
            return jnp.moveaxis(x, 0, 1).reshape(x.shape[1], -1)[:, :num_paths]

        log_return, variance = join(blocks[0]), join(blocks[1])
        return self._market(log_return, variance)

    def _simulate_block(self, key):
        num_fine = self.steps * self.substeps
        dt = jnp.full((num_fine,), self.derivative.maturity / num_fine, self.dtype)
        sv = self.model.has_stochastic_vol
        record = ("log_return", "variance") if sv else ("log_return",)
        obs = simulate_block(
            as_assets(self.model), key, dt=dt, observe=jnp.arange(num_fine, dtype=jnp.int32),
            num_times=num_fine, drift=jnp.asarray([self.rate], self.dtype), block_size=BLOCK_SIZE,
            dtype=self.dtype, record=record,
        )
        log_return = obs.log_return[..., 0]
        if sv:
            variance = obs.variance[..., 0]
            v0 = jnp.full((1, BLOCK_SIZE), self.model.v0, self.dtype)
        else:
            variance = jnp.full_like(log_return, self.constant_variance())
            v0 = jnp.full((1, BLOCK_SIZE), self.constant_variance(), self.dtype)
        zero = jnp.zeros((1, BLOCK_SIZE), self.dtype)
        return jnp.concatenate([zero, log_return]), jnp.concatenate([v0, variance])

    def _market(self, log_return, variance) -> MarketPaths:
        """From fine-grid log-returns and variances ``[fine dates + 1, paths]`` to the
        market on the hedge dates."""
        maturity = self.derivative.maturity
        fine_time = jnp.linspace(0.0, maturity, self.steps * self.substeps + 1, dtype=self.dtype)
        spot = self.spot * jnp.exp(log_return)
        take = slice(None, None, self.substeps)
        time = fine_time[take]
        prices = [spot[take] * jnp.exp(-self.rate * time)[:, None]]
        if "variance_swap" in self.instruments:
            prices.append(self._variance_swap(fine_time, variance)[take] * math.exp(-self.rate * maturity))
        payoff = self.derivative.payoff(spot[-1]) * math.exp(-self.rate * maturity)
        return MarketPaths(
            time=time, spot=spot[take], variance=variance[take], prices=jnp.stack(prices, axis=-1), payoff=payoff
        )

    def _variance_swap(self, fine_time, variance):
        """``E_t[int_0^T v ds]``: realised integrated variance (trapezoid on the simulation
        grid) plus the expected remainder under the model's mean-reverting variance."""
        m = self.model
        kappa, theta = float(m.kappa), float(m.long_run_variance())
        dt = jnp.diff(fine_time)[:, None]
        realised = jnp.concatenate(
            [jnp.zeros_like(variance[:1]), jnp.cumsum(0.5 * (variance[1:] + variance[:-1]) * dt, axis=0)]
        )
        remaining = (self.derivative.maturity - fine_time)[:, None]
        expected = theta * remaining + (variance - theta) * (-jnp.expm1(-kappa * remaining)) / kappa
        return realised + expected


def reference_price(problem: HedgingProblem) -> float | None:
    """The model's risk-neutral price of the derivative (no costs), where a closed form exists."""
    if not has_analytic_price(problem.model):
        return None
    d = problem.derivative
    with jax.enable_x64(True):
        values = analytic_price_and_greeks(
            problem.model, spot=problem.spot, strike=np.asarray([d.strike]), maturity=np.asarray([d.maturity]),
            rate=problem.rate, dividend=0.0, is_call=np.asarray([d.is_call]),
        )
        return float(np.asarray(values["price"], np.float64)[0])
