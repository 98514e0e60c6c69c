"""Characteristic functions of ``log(S_T / S_0)`` under the risk-neutral measure.

Models (parameter names as in ``riskengine.models``):

- Heston: ``dV = kappa (theta - V) dt + sigma sqrt(V) dW_V``, ``d<W_S, W_V> = rho dt``;
- Bates: Heston plus log-normal price jumps at rate ``jump_intensity``, log jump
  ``~ N(jump_mean, jump_vol^2)``;
- SVCJ (Duffie, Pan and Singleton 2000; Eraker, Johannes and Polson 2003): Heston plus
  simultaneous jumps at rate ``jump_intensity`` in the variance, ``J_V ~ Exponential(mean
  vol_jump_mean)``, and in the log price, ``J_S | J_V ~ N(jump_mean + jump_corr J_V,
  jump_vol^2)``.

The spot drift is ``rate - dividend`` minus the jump compensator, so that
``E[S_T] = S_0 exp((rate - dividend) T)``, i.e. ``cf(u=-1j) = exp((rate - dividend) T)``.

All three are affine: ``E[exp(i u log(S_T/S_0))] = exp(i u (r - q) T + A(u, T) + B(u, T) v0)``.
``B`` and the diffusive part of ``A`` use the "little Heston trap" form (Albrecher, Mayer,
Schoutens and Tistaert 2007), whose complex logarithm stays on the principal branch, so the
functions are continuous in ``u`` for any maturity. ``u`` may be complex (the pricers use
``u - i/2``) and broadcasts against the parameters. ``sigma`` must be > 0.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Complex, Float

__all__ = ["bates_cf", "heston_cf", "svcj_cf"]


class _HestonParts(NamedTuple):
    """Pieces of the Heston Riccati solution at ``(u, T)``."""

    d: Array  # sqrt(beta^2 + sigma^2 (u^2 + i u)), Re(d) >= 0
    g: Array  # (beta - d) / (beta + d)
    a: Array  # B(infinity) = (beta - d) / sigma^2
    exp_dt: Array  # e^{-d T}
    one_minus_exp: Array  # 1 - e^{-d T}
    b: Array  # B(T), the coefficient of v0
    log_ratio: Array  # log((1 - g e^{-dT}) / (1 - g))
    a_diffusive: Array  # Heston's A(T) without the i u (r - q) T drift


def _heston_parts(u, maturity, kappa, theta, sigma, rho) -> _HestonParts:
    """Heston's ``A`` and ``B`` in the little-trap form, written without cancellation.

    With ``beta = kappa - i rho sigma u``, ``s = u^2 + i u`` and ``d`` as above:
    ``beta - d = -sigma^2 s / (beta + d)``, so ``B(inf) = -s / (beta + d)`` and
    ``g = -sigma^2 s / (beta + d)^2`` carry no cancellation for small ``sigma``, and
    ``log((1 - g e^{-dT}) / (1 - g)) = log1p(g (1 - e^{-dT}) / (1 - g))`` (the same
    principal-branch value). Then ``B(T) = B(inf) (1 - e^{-dT}) / (1 - g e^{-dT})`` and
    ``A(T) = kappa theta (B(inf) T - 2 log(...) / sigma^2)``.
    """
    s = u * u + 1j * u
    sigma2 = sigma * sigma
    beta = kappa - 1j * rho * sigma * u
    d = jnp.sqrt(beta * beta + sigma2 * s)
    # s = 0 (u = 0 or u = -i) gives B = 0 exactly; the guard also covers beta + d = 0,
    # which happens there when rho sigma > kappa (a removable 0/0).
    s_zero = s == 0
    beta_plus_d = jnp.where(s_zero, 1.0, beta + d)
    a = jnp.where(s_zero, 0.0, -s / beta_plus_d)
    g = sigma2 * a / beta_plus_d
    exp_dt = jnp.exp(-d * maturity)
    one_minus_exp = -jnp.expm1(-d * maturity)
    b = a * one_minus_exp / (1.0 - g * exp_dt)
    log_ratio = jnp.log1p(g * one_minus_exp / (1.0 - g))
    a_diffusive = kappa * theta * (a * maturity - 2.0 * log_ratio / sigma2)
    return _HestonParts(d, g, a, exp_dt, one_minus_exp, b, log_ratio, a_diffusive)


def _as_complex_u(u: ArrayLike, *params: ArrayLike) -> Array:
    dtype = jnp.result_type(float, *params)
    cdtype = jnp.result_type(dtype, jnp.complex64)
    return jnp.asarray(u, cdtype)


@jax.jit
def heston_cf(
    *,
    u: Complex[ArrayLike, "*batch"] | Float[ArrayLike, "*batch"],
    maturity: Float[ArrayLike, "*batch"],
    rate: Float[ArrayLike, "*batch"],
    dividend: Float[ArrayLike, "*batch"],
    v0: Float[ArrayLike, "*batch"],
    kappa: Float[ArrayLike, "*batch"],
    theta: Float[ArrayLike, "*batch"],
    sigma: Float[ArrayLike, "*batch"],
    rho: Float[ArrayLike, "*batch"],
) -> Complex[Array, "*batch"]:
    """Heston characteristic function ``E[exp(i u log(S_T/S_0))]``."""
    u = _as_complex_u(u, maturity, rate, dividend, v0, kappa, theta, sigma, rho)
    h = _heston_parts(u, maturity, kappa, theta, sigma, rho)
    return jnp.exp(1j * u * (rate - dividend) * maturity + h.a_diffusive + h.b * v0)


def _lognormal_jump_exponent(u, maturity, jump_intensity, jump_mean, jump_vol):
    """``lambda T (E[e^{i u J}] - 1 - i u (E[e^J] - 1))`` for ``J ~ N(jump_mean, jump_vol^2)``."""
    jump_cf = jnp.exp(1j * u * jump_mean - 0.5 * u * u * jump_vol * jump_vol)
    compensator = jnp.expm1(jump_mean + 0.5 * jump_vol * jump_vol)
    return jump_intensity * maturity * (jump_cf - 1.0 - 1j * u * compensator)


@jax.jit
def bates_cf(
    *,
    u: Complex[ArrayLike, "*batch"] | Float[ArrayLike, "*batch"],
    maturity: Float[ArrayLike, "*batch"],
    rate: Float[ArrayLike, "*batch"],
    dividend: Float[ArrayLike, "*batch"],
    v0: Float[ArrayLike, "*batch"],
    kappa: Float[ArrayLike, "*batch"],
    theta: Float[ArrayLike, "*batch"],
    sigma: Float[ArrayLike, "*batch"],
    rho: Float[ArrayLike, "*batch"],
    jump_intensity: Float[ArrayLike, "*batch"],
    jump_mean: Float[ArrayLike, "*batch"],
    jump_vol: Float[ArrayLike, "*batch"],
) -> Complex[Array, "*batch"]:
    """Bates (Heston + compensated log-normal jumps) characteristic function."""
    u = _as_complex_u(u, maturity, rate, dividend, v0, kappa, theta, sigma, rho, jump_intensity)
    h = _heston_parts(u, maturity, kappa, theta, sigma, rho)
    jumps = _lognormal_jump_exponent(u, maturity, jump_intensity, jump_mean, jump_vol)
    return jnp.exp(1j * u * (rate - dividend) * maturity + h.a_diffusive + h.b * v0 + jumps)


def _log1p_ratio(log1p_z: Array, z: Array) -> Array:
    """``log1p(z) / z`` given both, with the series near ``z = 0`` (NaN-free gradients)."""
    small = jnp.abs(z) < 1e-6
    safe_z = jnp.where(small, 1.0, z)
    return jnp.where(small, 1.0 - 0.5 * z + z * z / 3.0, log1p_z / safe_z)


@jax.jit
def svcj_cf(
    *,
    u: Complex[ArrayLike, "*batch"] | Float[ArrayLike, "*batch"],
    maturity: Float[ArrayLike, "*batch"],
    rate: Float[ArrayLike, "*batch"],
    dividend: Float[ArrayLike, "*batch"],
    v0: Float[ArrayLike, "*batch"],
    kappa: Float[ArrayLike, "*batch"],
    theta: Float[ArrayLike, "*batch"],
    sigma: Float[ArrayLike, "*batch"],
    rho: Float[ArrayLike, "*batch"],
    jump_intensity: Float[ArrayLike, "*batch"],
    jump_mean: Float[ArrayLike, "*batch"],
    jump_vol: Float[ArrayLike, "*batch"],
    vol_jump_mean: Float[ArrayLike, "*batch"],
    jump_corr: Float[ArrayLike, "*batch"],
) -> Complex[Array, "*batch"]:
    """SVCJ characteristic function (Duffie, Pan and Singleton 2000, section 5.3).

    Requires ``jump_corr * vol_jump_mean < 1`` (else ``E[e^{J_S}]`` is infinite).

    Derivation. The jumps do not depend on the state, so ``B`` is Heston's and

        A(T) = A_Heston(T) - i u lambda m T + lambda int_0^T (E[exp(i u J_S + B(s) J_V)] - 1) ds,

    with ``m = E[e^{J_S}] - 1``. Conditioning on ``J_V``,
    ``E[exp(i u J_S + b J_V)] = exp(i u mu_s - u^2 delta^2 / 2) / (1 - mu_v (c + b))``,
    ``c = i u rho_J``. Writing ``x = e^{-d s}`` and ``B(s) = a (1 - x) / (1 - g x)``,

        1 / (1 - mu_v (c + B(s))) = (1 - g x) / (A0 + A1 x),
        A0 = 1 - mu_v (c + a),   A1 = mu_v a - g (1 - mu_v c),

    and partial fractions give

        I = int_0^T ds / (1 - mu_v (c + B(s)))
          = T / A0 + mu_v a (1 - g) / (A0 A1 d) * log((A0 + A1 e^{-dT}) / (A0 + A1)).

    Since ``A0 + A1 = (1 - g)(1 - mu_v c)`` and ``A0 + A1 e^{-dT} = (1 - mu_v (c + B(T)))
    (1 - g e^{-dT})``, the logarithm is evaluated as
    ``log(1 - mu_v (c + B(T))) - log(1 - mu_v c) + log((1 - g e^{-dT}) / (1 - g))``: the first
    two arguments have positive real part wherever the characteristic function exists and the
    last is the little-trap logarithm, so no term crosses a branch cut. The ``1/A1`` (which
    vanishes at ``u = 0``) is removed through ``log(1 + z) / z`` with
    ``z = A1 (e^{-dT} - 1) / ((1 - g)(1 - mu_v c))``:

        I = T / A0 + mu_v a (e^{-dT} - 1) / (A0 d (1 - mu_v c)) * log(1 + z) / z.
    """
    u = _as_complex_u(
        u, maturity, rate, dividend, v0, kappa, theta, sigma, rho, jump_intensity, vol_jump_mean
    )
    h = _heston_parts(u, maturity, kappa, theta, sigma, rho)
    iu = 1j * u
    mu_v = vol_jump_mean
    c = iu * jump_corr
    one_minus_muv_c = 1.0 - mu_v * c
    a0 = 1.0 - mu_v * (c + h.a)
    a1 = mu_v * h.a - h.g * one_minus_muv_c
    exp_dt_minus_1 = -h.one_minus_exp
    # (e^{-dT} - 1) / d, which is -T at d = 0
    d_zero = h.d == 0
    expm1_over_d = jnp.where(d_zero, -maturity, exp_dt_minus_1 / jnp.where(d_zero, 1.0, h.d))
    z = a1 * exp_dt_minus_1 / ((1.0 - h.g) * one_minus_muv_c)
    log1p_z = jnp.log(1.0 - mu_v * (c + h.b)) - jnp.log(one_minus_muv_c) + h.log_ratio
    integral = maturity / a0 + mu_v * h.a * expm1_over_d / (
        a0 * one_minus_muv_c
    ) * _log1p_ratio(log1p_z, z)
    price_jump_cf = jnp.exp(iu * jump_mean - 0.5 * u * u * jump_vol * jump_vol)
    compensator = jnp.exp(jump_mean + 0.5 * jump_vol * jump_vol) / (1.0 - jump_corr * mu_v) - 1.0
    jumps = jump_intensity * (price_jump_cf * integral - maturity - iu * compensator * maturity)
    return jnp.exp(iu * (rate - dividend) * maturity + h.a_diffusive + h.b * v0 + jumps)
