"""The mid price a market maker quotes around.

Two kinds of process share one small interface: ``moves`` draws what moves the mid at every
step of one batch of paths, ahead of the quoting loop (the mid does not depend on the
quotes), and ``advance`` applies one step's move to the mid.

* :class:`ArithmeticMid` moves the price itself: arithmetic Brownian motion
  (:class:`riskengine.models.brownian.Brownian`), binomial ``±sigma sqrt(dt)`` steps as in
  Avellaneda & Stoikov (2008) or Gaussian ones; step ``i`` of a batch draws from
  ``fold_in(fold_in(fold_in(batch_key, i), 1), 0)``.
* :class:`LogModelMid` takes its paths from :func:`riskengine.simulate.simulate_block`, the
  one driver every job uses (GBM, Heston, Merton, Bates, SVCJ: the same law, the same
  correlation of spot and variance shocks as the price and stress jobs), every step an
  observation; the batch's block key is ``fold_in(batch_key, MID_STREAM)``, a stream no
  quoting step uses.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from riskengine.models.base import Model
from riskengine.models.brownian import Brownian
from riskengine.simulate import as_assets, simulate_block

MID_STREAM = 0xFFFFFFFF  # fold_in index of the log-model mid's block key (steps use 0, 1, ...)


class ArithmeticMid(eqx.Module):
    """``S(t + dt) = S(t) + increment``: arithmetic Brownian motion, no drift."""

    process: Brownian

    def moves(self, batch_key: PRNGKeyArray, *, spot, dt, num_steps: int, num_paths: int,
              dtype) -> Float[Array, "steps paths"]:
        """The price increment of every step."""
        def one(i):
            key = jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(batch_key, i), 1), 0)
            return self.process.increment(key, (num_paths,), dt=dt, dtype=dtype)

        return jax.vmap(one)(jnp.arange(num_steps))

    def advance(self, mid: Float[Array, " paths"], move: Float[Array, " paths"]) -> Float[Array, " paths"]:
        return mid + move


class LogModelMid(eqx.Module):
    """``S(t) = S(0) exp(X(t))`` with ``X`` a riskengine model's log-return path from the
    simulation driver, drift ``rate - dividend`` (zero drift keeps the mid a martingale)."""

    model: Model
    drift: Float[Array, ""] | float = 0.0

    def moves(self, batch_key: PRNGKeyArray, *, spot, dt, num_steps: int, num_paths: int,
              dtype) -> Float[Array, "steps paths"]:
        """The mid at the end of every step."""
        observed = simulate_block(
            as_assets(self.model), jax.random.fold_in(batch_key, MID_STREAM),
            dt=jnp.full((num_steps,), dt, dtype), observe=jnp.arange(num_steps, dtype=jnp.int32),
            num_times=num_steps, drift=jnp.asarray([self.drift], dtype), block_size=num_paths,
            dtype=dtype, record=("log_return",),
        )
        return spot * jnp.exp(observed.log_return[..., 0])

    def advance(self, mid: Float[Array, " paths"], move: Float[Array, " paths"]) -> Float[Array, " paths"]:
        return move


MidProcess = ArithmeticMid | LogModelMid


@eqx.filter_jit
def _terminal_moves(process, key, spot, dt, num_steps: int, num_paths: int, dtype: str):
    moves = process.moves(key, spot=spot, dt=dt, num_steps=num_steps, num_paths=num_paths, dtype=dtype)

    def body(mid, move):
        return process.advance(mid, move), None

    mid, _ = jax.lax.scan(body, jnp.full((num_paths,), spot, dtype), moves)
    return mid - spot


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
