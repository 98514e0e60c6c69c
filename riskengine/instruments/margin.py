"""Margin of delta-one positions per venue: isolated and cross.

Conventions (see :mod:`riskengine.instruments.futures` for the contract conventions):

- Positions lie along the **last axis** (``[positions]`` fields, ``[*batch, positions]``
  market state such as ``[paths, positions]``); ``venue`` maps each position to an integer
  venue (account) index and per-venue results have a last axis of ``[venues]``.
- All amounts are in USD; coin amounts (inverse P&L, inverse notionals) are converted at
  the coin's ``spot`` (index) price. Liquidation conditions compare two amounts in the same
  currency, so the conversion rate cancels out of every liquidation price.
- The **position value at the mark** ``M`` (notional) is ``|q| m M`` USD for a linear
  contract and ``|q| m / M`` coins (times ``spot`` in USD) for an inverse contract.
- Initial and maintenance margins are ``IMR`` and ``MMR`` times that notional (flat rates:
  no risk-limit tiers, no fees).
- ``equity = collateral + P&L`` (unrealised P&L against the entry price at the mark).
- **Margin ratio** = maintenance margin / equity (Bybit, Deribit "MM%"): the account or
  position is liquidated when the ratio reaches 1 (100%); it is ``+inf`` when the equity is
  not positive. (OKX quotes the reciprocal, equity / maintenance margin.)

Isolated liquidation prices
---------------------------
An isolated position posts collateral ``IMR`` times its entry notional (``IMR`` is the
margin fraction posted: the initial margin rate when opened at the maximum leverage, or
``1 / leverage``). Liquidation happens at the mark ``P`` where equity = maintenance margin.
Linear, ``Q = |q| m`` coins, collateral ``IMR Q E`` USD::

    long:   IMR Q E + Q (P - E) = MMR Q P   =>   P = E (1 - IMR) / (1 - MMR)
    short:  IMR Q E - Q (P - E) = MMR Q P   =>   P = E (1 + IMR) / (1 + MMR)

Inverse, ``N = |q| m`` USD face, collateral ``IMR N / E`` coins, all in coin::

    long:   IMR N/E + N (1/E - 1/P) = MMR N/P   =>   P = E (1 + MMR) / (1 + IMR)
    short:  IMR N/E - N (1/E - 1/P) = MMR N/P   =>   P = E (1 - MMR) / (1 - IMR)

An inverse short posted with ``IMR >= 1`` (1x short: the coin collateral hedges the
position) is never liquidated (``+inf``); a linear long with ``IMR >= 1`` only at ``P <= 0``.

Cross margin
------------
All positions of a venue share the venue's collateral. Under a common relative move ``x``
of the underlyings (every mark and spot times ``1 + x``) the account's equity and
maintenance requirement are::

    equity(x) = C + sum_i pnl_i(x),    MM(x) = sum_i MMR_i notional_i(x),

and the liquidation move solves ``equity(x) = MM(x)``. Coin collateral enters as a spot
holding: a linear position with ``multiplier = 1``, ``entry = 0``, ``mmr = 0`` and the coin's
spot as its mark (its "P&L" is then its USD value). For delta-one positions the excess
``equity - MM`` is affine in ``x`` (inverse USD P&L is ``q m S (1+x) (1/E - 1/(M (1+x)))``
and inverse USD notionals do not move), but the solver is numerical and generic
(:func:`solve_liquidation_move`) so that nonlinear books (options) can reuse it: a grid
scan from ``x = 0`` outwards finds the first sign change of the excess, bisection refines
it, and a final Newton step, taken with the bracket held constant, makes the result
differentiable (implicit function theorem: ``dx*/dθ = -(∂g/∂θ) / (∂g/∂x)``).

A book's margin
---------------
:mod:`riskengine.accounts` applies the above to a desk's book: each venue's cross account
and each isolated position, with the venue's tiers, fees and collateral haircuts
(:mod:`riskengine.venues`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Float, Int

from riskengine.instruments._arrays import as_bool, as_float
from riskengine.instruments.futures import futures_pnl

__all__ = [
    "CrossAccount",
    "LiquidationMove",
    "cross_account",
    "cross_liquidation_move",
    "equity",
    "isolated_liquidation_price",
    "margin_ratio",
    "margin_requirement",
    "position_notional",
    "solve_liquidation_move",
    "tiered_maintenance",
    "venue_sum",
]


def position_notional(
    *,
    quantity: Float[ArrayLike, "*batch"],
    multiplier: Float[ArrayLike, "*batch"],
    mark: Float[ArrayLike, "*batch"],
    spot: Float[ArrayLike, "*batch"],
    inverse: Bool[ArrayLike, "*batch"],
) -> Float[Array, "*batch"]:
    """USD position value at the mark: ``|q| m M`` (linear) or ``|q| m / M * spot``
    (inverse; ``spot`` is ignored on linear rows)."""
    quantity, multiplier, mark, spot = as_float(quantity, multiplier, mark, spot)
    inverse = as_bool(inverse)
    size = jnp.abs(quantity) * multiplier
    safe_mark = jnp.where(inverse, mark, 1.0)
    return jnp.where(inverse, size / safe_mark * spot, size * mark)


def margin_requirement(
    *,
    notional: Float[ArrayLike, "*batch"],
    rate: Float[ArrayLike, "*batch"],
) -> Float[Array, "*batch"]:
    """Initial (``rate = IMR``) or maintenance (``rate = MMR``) margin: ``rate * notional``."""
    notional, rate = as_float(notional, rate)
    return rate * notional


def tiered_maintenance(
    notional: Float[ArrayLike, "*batch"],
    *,
    lower: Float[ArrayLike, "*batch tiers"],
    width: Float[ArrayLike, "*batch tiers"],
    rate: Float[ArrayLike, "*batch tiers"],
) -> Float[Array, "*batch"]:
    """Maintenance margin of a position of USD ``notional`` under notional tiers:
    ``sum_k rate_k * clip(notional - lower_k, 0, width_k)`` (tier k covers notionals in
    ``(lower_k, lower_k + width_k]``; the last width may be ``inf``; padding tiers have
    width 0). This equals Binance's ``notional * rate_k - maintenance_amount_k`` with
    ``maintenance_amount_k = maintenance_amount_{k-1} + lower_k (rate_k - rate_{k-1})``:
    continuous in the notional."""
    notional, lower, width, rate = as_float(notional, lower, width, rate)
    # A sum over the (few) tiers written out: a reduction over a short minor axis is ~30x
    # slower on XLA CPU than these fused elementwise terms.
    total = jnp.zeros(jnp.broadcast_shapes(notional.shape, lower.shape[:-1]), notional.dtype)
    for k in range(lower.shape[-1]):
        total = total + rate[..., k] * jnp.minimum(jnp.maximum(notional - lower[..., k], 0.0), width[..., k])
    return total


def equity(
    *,
    collateral: Float[ArrayLike, "*batch"],
    pnl: Float[ArrayLike, "*batch"],
) -> Float[Array, "*batch"]:
    """Equity = collateral + unrealised P&L."""
    collateral, pnl = as_float(collateral, pnl)
    return collateral + pnl


def margin_ratio(
    *,
    maintenance_margin: Float[ArrayLike, "*batch"],
    equity: Float[ArrayLike, "*batch"],
) -> Float[Array, "*batch"]:
    """Maintenance margin / equity; liquidation at ``>= 1``; ``+inf`` when equity <= 0."""
    maintenance_margin, equity = as_float(maintenance_margin, equity)
    positive = equity > 0.0
    safe = jnp.where(positive, equity, 1.0)
    return jnp.where(positive, maintenance_margin / safe, jnp.inf)


def venue_sum(
    values: Float[ArrayLike, "*batch positions"],
    *,
    venue: Int[ArrayLike, " positions"],
    num_venues: int,
) -> Float[Array, "*batch venues"]:
    """Sum per venue over the last (positions) axis: an exact segment sum."""
    values = jnp.asarray(values)
    summed = jax.ops.segment_sum(
        jnp.moveaxis(values, -1, 0), jnp.asarray(venue), num_segments=num_venues
    )
    return jnp.moveaxis(summed, 0, -1)


def isolated_liquidation_price(
    *,
    entry: Float[ArrayLike, "*batch"],
    imr: Float[ArrayLike, "*batch"],
    mmr: Float[ArrayLike, "*batch"],
    is_long: Bool[ArrayLike, "*batch"],
    inverse: Bool[ArrayLike, "*batch"],
) -> Float[Array, "*batch"]:
    """Mark price at which an isolated position posted with ``imr`` of its entry notional
    is liquidated (no fees; derivation in the module docstring)::

        linear long  E (1 - IMR)/(1 - MMR)     linear short  E (1 + IMR)/(1 + MMR)
        inverse long E (1 + MMR)/(1 + IMR)     inverse short E (1 - MMR)/(1 - IMR)

    ``+inf`` for an inverse short with ``IMR >= 1``, floored at 0 for a linear long.
    """
    entry, imr, mmr = as_float(entry, imr, mmr)
    is_long = as_bool(is_long)
    inverse = as_bool(inverse)
    linear_long = jnp.maximum(entry * (1.0 - imr) / (1.0 - mmr), 0.0)
    linear_short = entry * (1.0 + imr) / (1.0 + mmr)
    inverse_long = entry * (1.0 + mmr) / (1.0 + imr)
    finite = imr < 1.0
    inverse_short = jnp.where(
        finite, entry * (1.0 - mmr) / jnp.where(finite, 1.0 - imr, 1.0), jnp.inf
    )
    linear = jnp.where(is_long, linear_long, linear_short)
    coin = jnp.where(is_long, inverse_long, inverse_short)
    return jnp.where(inverse, coin, linear)


class CrossAccount(NamedTuple):
    """Per-venue USD equity and maintenance requirement of cross-margined accounts."""

    equity: Float[Array, "*batch venues"]
    maintenance: Float[Array, "*batch venues"]


def cross_account(
    *,
    move: Float[ArrayLike, "*batch venues"] = 0.0,
    collateral: Float[ArrayLike, "*batch venues"],
    quantity: Float[ArrayLike, "*batch positions"],
    multiplier: Float[ArrayLike, "*batch positions"],
    entry: Float[ArrayLike, "*batch positions"],
    mark: Float[ArrayLike, "*batch positions"],
    spot: Float[ArrayLike, "*batch positions"],
    mmr: Float[ArrayLike, "*batch positions"],
    inverse: Bool[ArrayLike, "*batch positions"],
    venue: Int[ArrayLike, " positions"] | None = None,
    num_venues: int | None = None,
) -> CrossAccount:
    """Equity and maintenance margin (USD) of cross-margined venue accounts after a
    relative move ``move`` of every mark and spot of the venue's positions.

    With ``venue=None`` all positions form one account: ``move`` and ``collateral`` have
    shape ``[*batch]`` and so do the results. Otherwise ``venue`` (ints in
    ``[0, num_venues)``) assigns positions to accounts and the last axis of ``move``,
    ``collateral`` and the results is ``[venues]``. A scalar ``move`` applies to all.
    """
    move, collateral, quantity, multiplier, entry, mark, spot, mmr = as_float(
        move, collateral, quantity, multiplier, entry, mark, spot, mmr
    )
    if venue is not None and num_venues is None:
        raise ValueError("cross_account: num_venues is required when venue is given")
    if move.ndim == 0:
        per_position = move
    elif venue is None:
        per_position = move[..., None]
    else:
        per_position = jnp.take(move, jnp.asarray(venue), axis=-1)
    scale = 1.0 + per_position
    moved_mark = mark * scale
    moved_spot = spot * scale
    pnl = futures_pnl(
        quantity=quantity, multiplier=multiplier, entry=entry, price=moved_mark,
        spot=moved_spot, inverse=inverse,
    )
    maintenance = margin_requirement(
        notional=position_notional(
            quantity=quantity, multiplier=multiplier, mark=moved_mark, spot=moved_spot,
            inverse=inverse,
        ),
        rate=mmr,
    )
    if venue is None:
        total_pnl, total_mm = pnl.sum(axis=-1), maintenance.sum(axis=-1)
    else:
        total_pnl = venue_sum(pnl, venue=venue, num_venues=num_venues)
        total_mm = venue_sum(maintenance, venue=venue, num_venues=num_venues)
    return CrossAccount(equity=equity(collateral=collateral, pnl=total_pnl), maintenance=total_mm)


class LiquidationMove(NamedTuple):
    """Relative moves of the underlyings at which accounts reach liquidation.

    ``down`` in ``[-max_down, 0]`` (``-inf``: none down to ``-max_down``), ``up`` in
    ``[0, max_up]`` (``+inf``: none up to ``max_up``); both 0 if already liquidated.
    The liquidation mark of a position is ``mark * (1 + move)``.
    """

    down: Float[Array, "*batch venues"]
    up: Float[Array, "*batch venues"]


def solve_liquidation_move(
    excess: Callable[[Array, Any], Array],
    params: Any,
    *,
    move_like: Float[ArrayLike, "*shape"],
    direction: int,
    bound: float,
    grid: int = 64,
    iterations: int = 60,
) -> Float[Array, "*shape"]:
    """The move ``x`` closest to 0 in ``direction`` (+1 up, -1 down), within
    ``|x| <= bound``, at which ``excess(x, params) = equity - maintenance`` reaches 0.

    ``excess`` maps a move of the shape of ``move_like`` to an excess of the same shape,
    elementwise (each element its own account). Vectorised: a ``lax.scan`` over ``grid``
    equally spaced points finds the first point with ``excess <= 0`` (a root bracket),
    ``iterations`` bisection steps shrink it, and one Newton step with the bracket held
    constant (``stop_gradient``) carries the implicit-function-theorem gradient with
    respect to ``params``. Returns 0 where the excess is already ``<= 0`` at ``x = 0`` and
    ``direction * inf`` where no root lies within the bound. Two crossings inside one grid
    cell (a tangency) can be missed.
    """
    sign = 1.0 if direction > 0 else -1.0
    template = jnp.asarray(move_like)
    dtype = jnp.result_type(float, template)
    zeros = jnp.zeros(template.shape, dtype)
    frozen = jax.tree.map(jax.lax.stop_gradient, params)

    def g(t: Array) -> Array:  # excess at distance t in the search direction, no gradient
        return excess(sign * t, frozen)

    liquidated = g(zeros) <= 0.0
    step = jnp.asarray(bound / grid, dtype)

    def scan_body(carry, k):
        found, lo, hi = carry
        t = zeros + k * step
        hit = (~found) & (g(t) <= 0.0)
        return (found | hit, jnp.where(hit, t - step, lo), jnp.where(hit, t, hi)), None

    ks = jnp.arange(1, grid + 1, dtype=dtype)
    (found, lo, hi), _ = jax.lax.scan(scan_body, (liquidated, zeros, zeros), ks)

    def bisect(_, bracket):
        lo, hi = bracket
        mid = 0.5 * (lo + hi)
        above = g(mid) > 0.0
        return jnp.where(above, mid, lo), jnp.where(above, hi, mid)

    lo, hi = jax.lax.fori_loop(0, iterations, bisect, (lo, hi))
    x0 = jax.lax.stop_gradient(sign * 0.5 * (lo + hi))

    value, slope = jax.jvp(lambda x: excess(x, params), (x0,), (jnp.ones_like(x0),))
    newton = found & ~liquidated & (slope != 0.0)
    correction = jnp.where(newton, value, 0.0) / jnp.where(newton, slope, 1.0)
    # Keep the correction only where it stays within the final bracket (not at tangencies).
    small = jnp.abs(jax.lax.stop_gradient(correction)) <= (hi - lo) + 4.0 * jnp.finfo(dtype).eps
    root = x0 - jnp.where(small, correction, 0.0)
    return jnp.where(liquidated, 0.0, jnp.where(found, root, sign * jnp.inf))


def cross_liquidation_move(
    *,
    collateral: Float[ArrayLike, "*batch venues"],
    quantity: Float[ArrayLike, "*batch positions"],
    multiplier: Float[ArrayLike, "*batch positions"],
    entry: Float[ArrayLike, "*batch positions"],
    mark: Float[ArrayLike, "*batch positions"],
    spot: Float[ArrayLike, "*batch positions"],
    mmr: Float[ArrayLike, "*batch positions"],
    inverse: Bool[ArrayLike, "*batch positions"],
    venue: Int[ArrayLike, " positions"] | None = None,
    num_venues: int | None = None,
    max_down: float = 0.999,
    max_up: float = 9.0,
    grid: int = 64,
    iterations: int = 60,
) -> LiquidationMove:
    """Common relative moves of the underlyings (down and up) at which each venue's
    cross-margined equity falls to its maintenance requirement; arguments as for
    :func:`cross_account`, solver as :func:`solve_liquidation_move`."""
    params = dict(
        collateral=collateral, quantity=quantity, multiplier=multiplier, entry=entry,
        mark=mark, spot=spot, mmr=mmr,
    )
    params = dict(zip(params, as_float(*params.values()), strict=True))
    inverse = as_bool(inverse)

    def excess(move, p):
        account = cross_account(
            move=move, inverse=inverse, venue=venue, num_venues=num_venues, **p
        )
        return account.equity - account.maintenance

    like = jax.eval_shape(lambda p: excess(jnp.zeros((), params["mark"].dtype), p), params)
    move_like = jnp.zeros(like.shape, like.dtype)
    common = dict(move_like=move_like, grid=grid, iterations=iterations)
    down = solve_liquidation_move(excess, params, direction=-1, bound=max_down, **common)
    up = solve_liquidation_move(excess, params, direction=+1, bound=max_up, **common)
    return LiquidationMove(down=down, up=up)
