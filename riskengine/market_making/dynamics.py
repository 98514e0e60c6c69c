"""The mid price a market maker quotes around.

Two kinds of process share one small interface (``init`` and ``step`` on a state
``(mid, aux)``):

* :class:`ArithmeticMid` moves the price itself: arithmetic Brownian motion
  (:class:`riskengine.models.brownian.Brownian`), binomial ``±sigma sqrt(dt)`` steps as in
  Avellaneda & Stoikov (2008) or Gaussian ones;
* :class:`LogModelMid` moves the log-price with any riskengine model (GBM, Heston, Merton,
  Bates, SVCJ) through the generic :meth:`riskengine.models.base.Model.step`, so jump and
  stochastic-volatility models are simulated by the same code as in every other job.

Randomness of one step comes from one key: ``fold_in(key, 0)`` for the spot shock,
``fold_in(key, 1)`` for the independent part of the variance shock, ``fold_in(key, 2)``
for the model's own draws (jumps).
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from riskengine.models.base import Model
from riskengine.models.brownian import Brownian

MidState = tuple[Float[Array, " paths"], Any]  # (mid, model aux)


class ArithmeticMid(eqx.Module):
    """``S(t + dt) = S(t) + increment``: arithmetic Brownian motion, no drift."""

    process: Brownian

    def init(self, spot: Float[Array, ""], num_paths: int, dtype) -> MidState:
        return jnp.full((num_paths,), spot, dtype), ()

    def step(self, state: MidState, *, dt: Float[Array, ""], key: PRNGKeyArray) -> MidState:
        mid, aux = state
        return mid + self.process.increment(jax.random.fold_in(key, 0), mid.shape, dt=dt, dtype=mid.dtype), aux


class LogModelMid(eqx.Module):
    """``log S(t + dt) = log S(t) + mean + std Z`` with ``(mean, std)`` from a riskengine
    model's step and drift ``rate - dividend`` (zero drift keeps the mid a martingale)."""

    model: Model
    drift: Float[Array, ""] | float = 0.0

    def init(self, spot: Float[Array, ""], num_paths: int, dtype) -> MidState:
        return jnp.full((num_paths,), spot, dtype), self.model.init_aux(num_paths, dtype)

    def step(self, state: MidState, *, dt: Float[Array, ""], key: PRNGKeyArray) -> MidState:
        mid, aux = state
        dtype = mid.dtype
        z = jax.random.normal(jax.random.fold_in(key, 0), mid.shape, dtype)
        z_other = jax.random.normal(jax.random.fold_in(key, 1), mid.shape, dtype)
        if self.model.has_stochastic_vol:
            rho = jnp.asarray(self.model.spot_variance_correlation, dtype)
            z_var = rho * z + jnp.sqrt(jnp.maximum(1 - rho**2, 0)) * z_other
        else:
            z_var = z_other
        aux, mean, std = self.model.step(
            aux, dt=jnp.asarray(dt, dtype), drift=jnp.asarray(self.drift, dtype), z_var=z_var,
            key=jax.random.fold_in(key, 2),
        )
        return mid * jnp.exp(mean + std * z), aux


MidProcess = ArithmeticMid | LogModelMid


@eqx.filter_jit
def _terminal_moves(process, key, spot, dt, num_steps: int, num_paths: int, dtype: str):
    def body(state, i):
        return process.step(state, dt=dt, key=jax.random.fold_in(key, i)), None

    state, _ = jax.lax.scan(body, process.init(spot, num_paths, dtype), jnp.arange(num_steps))
    return state[0] - spot


def price_volatility(
    process: MidProcess,
    *,
    key: PRNGKeyArray,
    spot: float,
    horizon: float,
    num_steps: int,
    num_paths: int = 4096,
    dtype: str = "float64",
) -> float:
    """The absolute volatility (price units per square root of time) of the mid over the
    horizon, ``sd(S(T) - S(0)) / sqrt(T)``, by a pilot simulation of ``num_paths`` paths.

    This is the ``sigma`` the Avellaneda–Stoikov and GLFT formulas need when the mid is a
    log-price model: for arithmetic Brownian motion it is the model's ``sigma``."""
    dt = jnp.asarray(horizon / num_steps, dtype)
    moves = _terminal_moves(process, key, jnp.asarray(spot, dtype), dt, num_steps, num_paths, dtype)
    moves = jnp.asarray(moves, jnp.float64 if jax.config.jax_enable_x64 else jnp.float32)
    return float(jnp.std(moves, ddof=1) / jnp.sqrt(horizon))
