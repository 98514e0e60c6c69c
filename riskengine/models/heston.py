"""Heston (1993) stochastic volatility, with Andersen's QE scheme or full-truncation Euler.

    dS/S = (r - q) dt + sqrt(V) dW_S
    dV   = kappa (theta - V) dt + sigma sqrt(V) dW_V,      d<W_S, W_V> = rho dt

``heston_step`` is the variance/log-spot step shared by Heston, Bates and SVCJ.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from riskengine.models.base import Model, check_finite, check_parameter

Scheme = Literal["qe", "euler"]
SCHEMES = ("qe", "euler")
PSI_CRITICAL = 1.5  # Andersen (2008): switch between the quadratic and exponential branches


def safe_sqrt(x: Array) -> Array:
    """sqrt that is 0 with a zero (not NaN) derivative at and below 0."""
    positive = x > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


def _qe_step(v, *, dt, drift, z_var, kappa, theta, sigma, rho):
    """Andersen (2008) quadratic-exponential step with the martingale correction.

    Everything that depends on the step but not on the path is computed once, as scalars,
    so that each per-path line below is a single vector operation; each branch's
    transcendental functions are merged where the branches are exclusive.
    """
    # Per-step scalars. The conditional mean and variance of V' are m = m0 + m1 v and
    # s2 = s0 + s1 v; the log-spot step is drift dt + k0 + k1 v + k2 V' + sqrt(k3 (v + V')) Z
    # (central discretisation of the integrated variance, gamma1 = gamma2 = 1/2).
    ekt = jnp.exp(-kappa * dt)
    one_minus_ekt = -jnp.expm1(-kappa * dt)
    m0, m1 = theta * one_minus_ekt, ekt
    s0 = theta * sigma**2 * one_minus_ekt**2 / (2 * kappa)
    s1 = sigma**2 * ekt * one_minus_ekt / kappa
    k1 = 0.5 * dt * (kappa * rho / sigma - 0.5) - rho / sigma
    k2 = 0.5 * dt * (kappa * rho / sigma - 0.5) + rho / sigma
    k3 = 0.5 * dt * (1.0 - rho**2)  # = k4
    k0 = -rho * kappa * theta * dt / sigma
    big_a = k2 + 0.5 * k3  # A: the martingale correction needs E[exp(A V') | v]

    m = m0 + m1 * v
    psi = (s0 + s1 * v) / (m * m)
    quadratic = psi <= PSI_CRITICAL

    # Quadratic branch: V' = a (b + Z)^2, for psi <= psi_c (psi replaced where unused so
    # that the other branch never produces NaN values or gradients).
    two_over_psi = 2.0 / jnp.where(quadratic, psi, 1.0)
    b2 = two_over_psi - 1.0 + jnp.sqrt(two_over_psi * (two_over_psi - 1.0))
    a = m / (1.0 + b2)
    v_quadratic = a * (jnp.sqrt(b2) + z_var) ** 2

    # Exponential branch: V' = 0 with probability p, else log((1 - p) / (1 - U)) / beta with
    # U = Phi(z_var); 1 - U = erfc(z_var / sqrt 2) / 2 keeps the far tail accurate.
    psi_e = jnp.where(quadratic, 2.0, psi)
    one_minus_p = 2.0 / (psi_e + 1.0)
    p = 1.0 - one_minus_p
    beta = one_minus_p / m
    survival = jnp.maximum(0.5 * jax.lax.erfc(z_var * math.sqrt(0.5)), jnp.finfo(v.dtype).tiny)
    v_exponential = jnp.maximum(jnp.log(one_minus_p / survival), 0.0) / beta

    v_next = jnp.where(quadratic, v_quadratic, v_exponential)

    # Martingale correction: log E[exp(A V') | v] per branch, where it exists:
    # quadratic A b2 a / (1 - 2 A a) - log(1 - 2 A a) / 2, exponential log(p + beta (1 - p) / (beta - A)).
    one_minus_2aa = 1.0 - 2.0 * big_a * a
    corrected = jnp.where(quadratic, one_minus_2aa > 0, big_a < beta)
    log_argument = jnp.where(
        quadratic, one_minus_2aa, p + beta * one_minus_p / jnp.where(quadratic, 1.0, beta - big_a)
    )
    log_argument = jnp.where(corrected, log_argument, 1.0)
    log_m = jnp.where(quadratic, big_a * b2 * a / log_argument, 0.0) + jnp.where(quadratic, -0.5, 1.0) * jnp.log(
        log_argument
    )
    # drift dt + (k0* or k0) + k1 v + k2 V', with k0* = -log_m - (k1 + k3 / 2) v
    offset = jnp.where(corrected, -log_m - (0.5 * k3) * v, k0 + k1 * v)
    mean = drift * dt + offset + k2 * v_next
    std = safe_sqrt(k3 * (v + v_next))
    return v_next, mean, std


def _euler_step(v, *, dt, drift, z_var, kappa, theta, sigma, rho):
    """Full-truncation Euler (Lord, Koekkoek, van Dijk 2010)."""
    v_plus = jnp.maximum(v, 0.0)
    vol_sqrt_dt = safe_sqrt(v_plus * dt)
    v_next = v + kappa * (theta - v_plus) * dt + sigma * vol_sqrt_dt * z_var
    mean = (drift - 0.5 * v_plus) * dt + rho * vol_sqrt_dt * z_var
    std = safe_sqrt((1.0 - rho**2) * v_plus * dt)
    return v_next, mean, std


def heston_step(v, *, scheme: Scheme, dt, drift, z_var, kappa, theta, sigma, rho):
    """One step of the Heston variance and the conditional law of the log-spot step.

    Returns ``(v_next, mean, std)``: log S' = log S + mean + std * Z, Z independent.
    """
    dtype = v.dtype
    params = {k: jnp.asarray(x, dtype) for k, x in dict(kappa=kappa, theta=theta, sigma=sigma, rho=rho).items()}
    step = _qe_step if scheme == "qe" else _euler_step
    return step(v, dt=dt, drift=drift, z_var=z_var, **params)


def check_heston_fields(name: str, model) -> None:
    """Validate the Heston fields shared by Heston, Bates and SVCJ."""
    fields = {f: getattr(model, f) for f in ("v0", "kappa", "theta", "sigma", "rho")}
    if not check_finite(name, fields):
        return
    check_parameter(name, "v0", model.v0, float(model.v0) >= 0, "must be >= 0")
    check_parameter(name, "kappa", model.kappa, float(model.kappa) > 0, "must be > 0")
    check_parameter(name, "theta", model.theta, float(model.theta) >= 0, "must be >= 0")
    check_parameter(name, "sigma", model.sigma, float(model.sigma) > 0, "must be > 0")
    check_parameter(name, "rho", model.rho, -1.0 <= float(model.rho) <= 1.0, "must be in [-1, 1]")
    if model.scheme not in SCHEMES:
        raise ValueError(f"mc.scheme: must be one of {list(SCHEMES)} for model '{name}', got {model.scheme!r}")


def shift_variance_levels(model, eps):
    """Shift sqrt(v0) and sqrt(theta) by ``eps`` (parallel volatility shift)."""
    return dataclasses.replace(
        model,
        v0=(jnp.sqrt(model.v0) + eps) ** 2,
        theta=(jnp.sqrt(model.theta) + eps) ** 2,
    )


class StochasticVolModel(Model):
    """Base of the Heston family (Heston, Bates, SVCJ): the variance is the non-spot state,
    mean-reverting at rate ``kappa`` to ``theta`` with vol-of-variance ``sigma`` and
    spot-variance correlation ``rho``; ``scheme`` is the variance step (``qe`` or ``euler``)."""

    v0: eqx.AbstractVar[Float[Array, ""] | float]
    kappa: eqx.AbstractVar[Float[Array, ""] | float]
    theta: eqx.AbstractVar[Float[Array, ""] | float]
    sigma: eqx.AbstractVar[Float[Array, ""] | float]
    rho: eqx.AbstractVar[Float[Array, ""] | float]

    def long_run_variance(self) -> Float[Array, ""] | float:
        """The level the expected variance reverts to (``theta``; more where the variance
        also jumps)."""
        return self.theta

    def init_aux(self, num_paths, dtype):
        return jnp.full((num_paths,), self.v0, dtype)

    @property
    def spot_variance_correlation(self):
        return self.rho

    def variance(self, aux):
        return jnp.maximum(aux, 0.0)

    def shift_vol(self, eps):
        return shift_variance_levels(self, eps)


class Heston(StochasticVolModel):
    """Heston stochastic volatility; ``scheme`` is ``"qe"`` (default) or ``"euler"``."""

    v0: Float[Array, ""] | float
    kappa: Float[Array, ""] | float
    theta: Float[Array, ""] | float
    sigma: Float[Array, ""] | float
    rho: Float[Array, ""] | float
    scheme: str = eqx.field(default="qe", static=True)

    def __check_init__(self):
        check_heston_fields("heston", self)

    def step(self, aux, *, dt, drift, z_var, key):
        return heston_step(
            aux, scheme=self.scheme, dt=dt, drift=drift, z_var=z_var,
            kappa=self.kappa, theta=self.theta, sigma=self.sigma, rho=self.rho,
        )
