"""Monte Carlo prices and AD Greeks of European options under any simulator model.

Two estimators of the same discretised expectation:

- ``"smoothed"`` (default): conditional Monte Carlo on the last step. Every model's last
  log-spot step is Gaussian given the rest of the path, so the payoff's expectation over
  that step is a Black–Scholes-type formula. The estimator is unbiased for the scheme,
  has a lower variance than ``"plain"``, and is smooth in the spot and the parameters, so
  delta, gamma and vega all come from automatic differentiation through the simulation.
- ``"plain"``: the payoff on each sampled path. Delta and vega are pathwise AD derivatives;
  gamma does not exist pathwise (the payoff's second derivative is a Dirac mass) and is NaN.

Vega is the derivative with respect to a parallel shift of volatility: ``sigma`` for
constant-volatility models, ``sqrt(v0)`` and ``sqrt(theta)`` together for stochastic-vol
models (see ``Model.shift_vol``), per 1.00 of volatility.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtr
from jaxtyping import Array, Float, PRNGKeyArray

from riskengine.models import Model
from riskengine.payoffs import vanilla_payoff
from riskengine.simulate import (
    DEFAULT_BLOCK_SIZE,
    DEFAULT_CHUNK_PATHS,
    TimeGrid,
    as_assets,
    block_runner,
    monte_carlo,
    time_grid,
)

Estimator = Literal["smoothed", "plain"]


@dataclass(frozen=True)
class EuropeanEstimates:
    """Per-instrument Monte Carlo estimates (numpy arrays of shape [instruments])."""

    price: np.ndarray
    stderr: np.ndarray
    delta: np.ndarray
    delta_stderr: np.ndarray
    gamma: np.ndarray
    gamma_stderr: np.ndarray
    vega: np.ndarray
    vega_stderr: np.ndarray
    num_paths: int


def smoothed_payoff(
    log_spot_mean: Float[Array, "..."],
    log_spot_std: Float[Array, "..."],
    strike: Float[Array, "..."],
    is_call: Array,
) -> Float[Array, "..."]:
    """E[(S - K)^+] or E[(K - S)^+] for log S ~ N(mean, std^2); exact limit at std = 0."""
    positive = log_spot_std > 0
    std = jnp.where(positive, log_spot_std, 1.0)
    log_k = jnp.log(strike)
    d2 = (log_spot_mean - log_k) / std
    d1 = d2 + std
    forward = jnp.exp(log_spot_mean + 0.5 * std**2)
    # The Black formula written as calls and puts apart, not through black_from_d's sign form:
    # XLA contracts the two forms into different fused multiply-adds, and the float32 prices of
    # the configs would move in their last bits (5e-8 relative measured on configs/demo.yaml).
    call = forward * ndtr(d1) - strike * ndtr(d2)
    put = strike * ndtr(-d2) - forward * ndtr(-d1)
    smooth = jnp.where(is_call, call, put)
    return jnp.where(positive, smooth, vanilla_payoff(jnp.exp(log_spot_mean), strike, is_call))


def sampled_payoff(log_spot, strike, is_call):
    """The payoff on a sampled path."""
    return vanilla_payoff(jnp.exp(log_spot), strike, is_call)


def price_europeans(
    model: Model,
    *,
    key: PRNGKeyArray,
    spot: float,
    rate: float,
    dividend: float,
    strikes: Sequence[float],
    maturities: Sequence[float],
    is_call: Sequence[bool],
    num_paths: int,
    steps_per_year: float = 252,
    dtype: Any = jnp.float32,
    estimator: Estimator = "smoothed",
    greeks: bool = True,
    block_size: int = DEFAULT_BLOCK_SIZE,
    chunk_paths: int = DEFAULT_CHUNK_PATHS,
    devices: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> EuropeanEstimates:
    """Price European options on one asset by Monte Carlo, with AD Greeks and stderrs.

    All instruments share the same paths; the time grid lands on every maturity with steps
    of at most ``1 / steps_per_year``. Paths are split over ``devices`` local devices
    (default: all) and over ``jax.distributed`` processes, with bitwise the same result.
    """
    if estimator not in ("smoothed", "plain"):
        raise ValueError(f"mc.estimator: must be 'smoothed' or 'plain', got {estimator!r}")
    grid = time_grid(maturities, steps_per_year=steps_per_year)
    index = tuple(grid.index(t) for t in maturities)
    real = jnp.dtype(dtype)
    static = dict(block_size=block_size, dtype=real.name, estimator=estimator, greeks=greeks)
    block_fn = _european_block_fn(_GridKey.of(grid), index, **static)
    args = {  # host arrays: the compiled chunk takes them as they are (no JAX dispatch per array)
        "assets": as_assets(model),
        "spot": np.asarray(spot, real),
        "drift": np.asarray([rate - dividend], real),
        "strikes": np.asarray(strikes, real),
        "is_call": np.asarray(is_call, bool),
        "discount": np.asarray(np.exp(-rate * np.asarray(maturities, np.float64)), real),
    }
    est = monte_carlo(
        block_fn, args, key=key, num_paths=num_paths,
        block_size=block_size, chunk_paths=chunk_paths, devices=devices, progress=progress,
        program_key=("price_europeans", _GridKey.of(grid), index, tuple(sorted(static.items()))),
    )
    nan = np.full(len(maturities), np.nan)
    get = lambda d, k: np.asarray(d.get(k, nan), np.float64)  # noqa: E731
    return EuropeanEstimates(
        price=get(est.mean, "price"), stderr=get(est.stderr, "price"),
        delta=get(est.mean, "delta"), delta_stderr=get(est.stderr, "delta"),
        gamma=get(est.mean, "gamma"), gamma_stderr=get(est.stderr, "gamma"),
        vega=get(est.mean, "vega"), vega_stderr=get(est.stderr, "vega"),
        num_paths=num_paths,
    )


@dataclass(frozen=True)
class _GridKey:
    """A hashable time grid (a cache key for compiled code)."""

    times: tuple[float, ...]
    dt: tuple[float, ...]
    observe: tuple[int, ...]

    @classmethod
    def of(cls, grid: TimeGrid) -> _GridKey:
        return cls(tuple(grid.times.tolist()), tuple(grid.dt.tolist()), tuple(grid.observe.tolist()))

    def grid(self) -> TimeGrid:
        return TimeGrid(np.asarray(self.times), np.asarray(self.dt), np.asarray(self.observe, np.int32))


@functools.lru_cache(maxsize=64)
def _european_block_fn(
    grid_key: _GridKey, index: tuple[int, ...], *, block_size: int, dtype: str, estimator: str, greeks: bool
) -> Callable:
    """Per-path discounted payoffs (and their AD Greeks) for one block; cached by its
    static configuration so that repeated pricing reuses compiled code."""
    record = ("cond_mean", "cond_std") if estimator == "smoothed" else ("log_return",)
    run = block_runner(grid_key.grid(), block_size=block_size, dtype=dtype, record=record)
    index = np.asarray(index, dtype=np.int32)

    def block_fn(block_key, args):
        assets, spot, drift = args["assets"], args["spot"], args["drift"]
        strikes, calls, discount = args["strikes"], args["is_call"], args["discount"]

        def observe(eps):
            obs = run(assets.shift_vol(eps) if greeks else assets, block_key, drift)
            if estimator == "smoothed":
                return obs.cond_mean[index, :, 0].T, obs.cond_std[index, :, 0].T  # [paths, instruments]
            return obs.log_return[index, :, 0].T, jnp.zeros((block_size, len(index)), dtype)

        def payoff(spot, mean, std):
            log_spot = jnp.log(spot) + mean
            if estimator == "smoothed":
                return discount * smoothed_payoff(log_spot, std, strikes, calls)
            return discount * sampled_payoff(log_spot, strikes, calls)

        zero, one = jnp.zeros((), dtype), jnp.ones((), dtype)
        if not greeks:
            mean, std = observe(zero)
            return {"price": payoff(spot, mean, std)}
        (mean, std), (dmean, dstd) = jax.jvp(observe, (zero,), (one,))

        def value_and_delta(s):
            return jax.jvp(lambda s_: payoff(s_, mean, std), (s,), (one,))

        (value, delta), (_, gamma) = jax.jvp(value_and_delta, (spot,), (one,))
        _, vega = jax.jvp(lambda m, s: payoff(spot, m, s), (mean, std), (dmean, dstd))
        if estimator == "plain":
            gamma = jnp.full_like(gamma, jnp.nan)
        return {"price": value, "delta": delta, "gamma": gamma, "vega": vega}

    return block_fn
