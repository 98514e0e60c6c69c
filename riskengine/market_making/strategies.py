"""Quoting strategies: each gives the distances ``(delta_bid, delta_ask)`` of its quotes
from the mid, bid = mid - delta_bid and ask = mid + delta_ask, from the inventory ``q`` and
the time left ``tau``.

* :class:`AvellanedaStoikov` (Avellaneda & Stoikov 2008, eqs. 29-30): reservation price
  ``r = s - q gamma sigma^2 tau`` and total spread
  ``gamma sigma^2 tau + (2 / gamma) ln(1 + gamma / k)``; ``time_term=False`` drops the
  ``gamma sigma^2 tau`` term from the spread (the paper's printed spreads omit it).
* :class:`GLFT` (Guéant, Lehalle & Fernandez-Tapia 2013, the closed-form asymptotic
  approximations of the optimal quotes far from the horizon):
  ``delta_bid = (1/gamma) ln(1 + gamma/k) + (2q + 1)/2 * c``,
  ``delta_ask = (1/gamma) ln(1 + gamma/k) - (2q - 1)/2 * c``,
  ``c = sqrt(sigma^2 gamma / (2 k A) * (1 + gamma/k)^(1 + k/gamma))``.
* :class:`Symmetric`: a fixed half-spread around the mid, whatever the inventory.

Inventory limits are applied by the simulator (a side that would breach the limit is not
quoted), not by the strategies.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float


class Strategy(eqx.Module):
    """Interface: quote distances from the mid."""

    def offsets(
        self, inventory: Float[Array, " paths"], time_left: Float[Array, ""]
    ) -> tuple[Float[Array, " paths"], Float[Array, " paths"]]:
        raise NotImplementedError


def as_reservation_offset(
    inventory: Float[Array, " paths"], time_left: Float[Array, ""], *, gamma, sigma
) -> Float[Array, " paths"]:
    """``s - r = q gamma sigma^2 (T - t)``: how far the reservation price is below the mid."""
    return inventory * gamma * sigma**2 * time_left


def as_spread(time_left: Float[Array, ""], *, gamma, sigma, k, time_term: bool = True) -> Float[Array, ""]:
    """Avellaneda–Stoikov total spread ``gamma sigma^2 (T - t) + (2/gamma) ln(1 + gamma/k)``
    (without the first term when ``time_term`` is False)."""
    spread = 2.0 / gamma * jnp.log1p(gamma / k)
    if time_term:
        spread = spread + gamma * sigma**2 * time_left
    return spread


def glft_skew(*, gamma, sigma, k, A) -> Float[Array, ""]:
    """GLFT's ``c = sqrt(sigma^2 gamma / (2 k A) (1 + gamma/k)^(1 + k/gamma))``: the quotes
    move by ``c`` per unit of inventory, and the spread is ``(2/gamma) ln(1 + gamma/k) + c``."""
    power = jnp.exp((1.0 + k / gamma) * jnp.log1p(gamma / k))
    return jnp.sqrt(sigma**2 * gamma / (2.0 * k * A) * power)


def glft_offsets(
    inventory: Float[Array, " paths"], *, gamma, sigma, k, A
) -> tuple[Float[Array, " paths"], Float[Array, " paths"]]:
    """GLFT's asymptotic optimal quote distances ``(delta_bid, delta_ask)``."""
    base = jnp.log1p(gamma / k) / gamma
    c = glft_skew(gamma=gamma, sigma=sigma, k=k, A=A)
    return base + (2 * inventory + 1) / 2 * c, base - (2 * inventory - 1) / 2 * c


class AvellanedaStoikov(Strategy):
    gamma: Float[Array, ""]
    k: Float[Array, ""]
    sigma: Float[Array, ""]
    time_term: bool = eqx.field(default=True, static=True)

    def offsets(self, inventory, time_left):
        half = 0.5 * as_spread(time_left, gamma=self.gamma, sigma=self.sigma, k=self.k, time_term=self.time_term)
        skew = as_reservation_offset(inventory, time_left, gamma=self.gamma, sigma=self.sigma)
        return half + skew, half - skew


class GLFT(Strategy):
    gamma: Float[Array, ""]
    k: Float[Array, ""]
    A: Float[Array, ""]
    sigma: Float[Array, ""]

    def offsets(self, inventory, time_left):
        return glft_offsets(inventory, gamma=self.gamma, sigma=self.sigma, k=self.k, A=self.A)


class Symmetric(Strategy):
    half_spread: Float[Array, ""]

    def offsets(self, inventory, time_left):
        half = jnp.broadcast_to(self.half_spread, inventory.shape).astype(inventory.dtype)
        return half, half
