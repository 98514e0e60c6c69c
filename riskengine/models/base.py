"""The interface every simulator model implements.

A model advances the *non-spot* state (e.g. the variance) over one time step and returns
the conditional law of the log-spot increment, which is Gaussian given that state and the
model's other randomness (variance shocks, jumps):

    log S(t + dt) = log S(t) + mean + std * Z,      Z ~ N(0, 1) independent of the rest.

Writing every model this way keeps one simulator core (``riskengine.simulate``) for all of
them, lets several assets share correlated spot shocks ``Z``, and lets the pricer integrate
the last step's ``Z`` analytically (conditional Monte Carlo), which makes payoffs smooth so
that gamma by automatic differentiation exists.
"""

from __future__ import annotations

import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

Aux = Any  # a pytree of arrays of shape [paths]


def is_concrete(value: Any) -> bool:
    """True when ``value`` is a plain number or a concrete array (not a JAX tracer)."""
    return not isinstance(value, jax.core.Tracer)


def check_parameter(model: str, field: str, value: Any, ok: bool, requirement: str) -> None:
    """Raise a ValueError naming the field and value unless ``ok``."""
    if not ok:
        raise ValueError(f"model.params.{field}: {requirement} for model '{model}', got {value!r}")


def check_finite(model: str, fields: dict[str, Any]) -> bool:
    """Check that every concrete scalar field is finite; return False (nothing more to
    check) if any field is traced or batched."""
    for name, value in fields.items():
        if not is_concrete(value):
            return False
        arr = jnp.asarray(value)
        if arr.ndim != 0:
            return False  # batched parameters (e.g. vmapped calibration) are checked by the caller
        check_parameter(model, name, value, bool(math.isfinite(float(arr))), "must be finite")
    return True


class Model(eqx.Module):
    """Abstract single-asset model under the risk-neutral measure (drift ``r - q``)."""

    # Whether ``step`` uses the variance shock ``z_var`` (a class constant, not a field).
    has_stochastic_vol = True

    def init_aux(self, num_paths: int, dtype: Any) -> Aux:
        """The initial non-spot state for ``num_paths`` paths."""
        raise NotImplementedError

    def step(
        self,
        aux: Aux,
        *,
        dt: Float[Array, ""],
        drift: Float[Array, ""],
        z_var: Float[Array, " paths"],
        key: PRNGKeyArray,
    ) -> tuple[Aux, Float[Array, " paths"], Float[Array, " paths"]]:
        """Advance ``aux`` by ``dt``; return ``(aux_next, mean, std)`` of the log-spot step.

        ``z_var`` is the standard normal shock of the variance (correlated with the spot
        shock by :attr:`spot_variance_correlation`); ``key`` drives any other randomness
        (jumps, the uniform of the QE scheme).
        """
        raise NotImplementedError

    @property
    def spot_variance_correlation(self) -> Float[Array, ""] | float:
        """Correlation between the spot and variance Brownian motions (0 without SV)."""
        return 0.0

    def variance(self, aux: Aux) -> Float[Array, " paths"] | None:
        """The instantaneous variance carried in ``aux`` (None for constant-vol models)."""
        return None

    def shift_vol(self, eps: Float[Array, ""]) -> Model:
        """The model with its volatility level shifted by ``eps`` (used for vega).

        Constant-vol models shift ``sigma``; stochastic-vol models shift ``sqrt(v0)`` and
        ``sqrt(theta)`` in parallel, i.e. the whole volatility term structure moves by ``eps``.
        """
        raise NotImplementedError
