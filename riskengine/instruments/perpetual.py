"""Perpetual swaps, linear and inverse, with 8-hourly funding.

Contract conventions are those of :mod:`riskengine.instruments.futures` (signed
``quantity`` in contracts; linear: ``multiplier`` coins per contract, settled in USD;
inverse: ``multiplier`` USD face per contract, settled in coin; coin converted to USD at
``spot``). The perpetual's P&L against ``entry`` is a future's P&L at the **mark** price.

Funding (Binance/Bybit/BitMEX formula), exchanged every 8 hours::

    rate = premium + clamp(interest - premium, -0.05%, +0.05%)

with ``interest = 0.01%`` per 8 h by default and ``premium`` the (time-averaged) premium
index of the perpetual over the index price, also per 8 h. When ``premium`` lies in
``[interest - 0.05%, interest + 0.05%]`` the rate is just ``interest``.

Each funding timestamp, a position **receives** ``-rate * quantity * notional_per_contract``
at the mark price: longs pay shorts when ``rate > 0`` and shorts pay longs when
``rate < 0``. Per contract, the notional at mark ``M`` is ``multiplier * M`` USD (linear)
and ``multiplier / M`` coins (inverse), so inverse perpetuals accrue funding in coin.

Accrual over a horizon of ``h`` days counts ``floor(3 h)`` funding periods by default:
funding is only paid at the 8-hourly timestamps, and the horizon is taken to start right
after one (``fractional=True`` counts ``3 h`` instead, a smooth pro-rata approximation).
The mark and the premium are held at the values passed in over the whole horizon (pass
the simulated mark at the horizon, and a premium per path or per position).
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Float

from riskengine.instruments._arrays import as_bool, as_float
from riskengine.instruments.futures import futures_pnl

__all__ = [
    "DEFAULT_FUNDING_CLAMP",
    "DEFAULT_FUNDING_INTEREST",
    "FUNDING_PERIODS_PER_DAY",
    "funding_periods",
    "funding_rate",
    "inverse_perpetual_funding_coin",
    "linear_perpetual_funding",
    "perpetual_funding",
    "perpetual_value",
]

FUNDING_PERIODS_PER_DAY = 3  # one funding payment every 8 hours
DEFAULT_FUNDING_INTEREST = 0.0001  # 0.01% per 8 h (0.03% a day)
DEFAULT_FUNDING_CLAMP = 0.0005  # +-0.05% band around the interest rate


def funding_rate(
    *,
    premium: Float[ArrayLike, "*batch"],
    interest: Float[ArrayLike, "*batch"] = DEFAULT_FUNDING_INTEREST,
    clamp: Float[ArrayLike, "*batch"] = DEFAULT_FUNDING_CLAMP,
    cap: Float[ArrayLike, "*batch"] | None = None,
) -> Float[Array, "*batch"]:
    """Funding rate per interval: ``premium + clip(interest - premium, -clamp, +clamp)``,
    then clipped to ``[-cap, cap]`` (no cap: None). With ``interest = 0`` this is Deribit's
    damper ``max(clamp, P) + min(-clamp, P)``."""
    premium, interest, clamp = as_float(premium, interest, clamp)
    rate = premium + jnp.clip(interest - premium, -clamp, clamp)
    if cap is None:
        return rate
    (cap,) = as_float(cap)
    return jnp.clip(rate, -cap, cap)


def funding_periods(
    *,
    horizon_days: Float[ArrayLike, "*batch"],
    fractional: bool | Bool[ArrayLike, "*batch"] = False,
    periods_per_day: Float[ArrayLike, "*batch"] = FUNDING_PERIODS_PER_DAY,
) -> Float[Array, "*batch"]:
    """Number of funding payments in ``horizon_days``: ``floor(n h)`` (default: paid at
    fixed times) or the exact fraction ``n h`` (``fractional``: accrued continuously; a
    Python bool, or a boolean array per row), with ``n = periods_per_day`` (3: every 8 h).

    The floor tolerates rounding of ``n h`` by a few ulps (``h = 7/3`` counts 7 periods).
    Negative horizons count no payment.
    """
    (horizon_days,) = as_float(horizon_days)
    periods = jnp.maximum(periods_per_day * horizon_days, 0.0)
    if fractional is True:
        return periods
    eps = 64.0 * jnp.finfo(periods.dtype).eps
    whole = jnp.floor(periods * (1.0 + eps) + eps)
    if fractional is False:
        return whole
    return jnp.where(as_bool(fractional), periods, whole)


def linear_perpetual_funding(
    *,
    quantity: Float[ArrayLike, "*batch"],
    multiplier: Float[ArrayLike, "*batch"],
    mark: Float[ArrayLike, "*batch"],
    premium: Float[ArrayLike, "*batch"],
    horizon_days: Float[ArrayLike, "*batch"],
    interest: Float[ArrayLike, "*batch"] = DEFAULT_FUNDING_INTEREST,
    clamp: Float[ArrayLike, "*batch"] = DEFAULT_FUNDING_CLAMP,
    fractional: bool | Bool[ArrayLike, "*batch"] = False,
    cap: Float[ArrayLike, "*batch"] | None = None,
    periods_per_day: Float[ArrayLike, "*batch"] = FUNDING_PERIODS_PER_DAY,
) -> Float[Array, "*batch"]:
    """USD funding received by a linear perpetual over the horizon:
    ``-periods * rate * quantity * multiplier * mark`` (negative: paid)."""
    quantity, multiplier, mark = as_float(quantity, multiplier, mark)
    rate = funding_rate(premium=premium, interest=interest, clamp=clamp, cap=cap)
    periods = funding_periods(horizon_days=horizon_days, fractional=fractional, periods_per_day=periods_per_day)
    return -periods * rate * quantity * multiplier * mark


def inverse_perpetual_funding_coin(
    *,
    quantity: Float[ArrayLike, "*batch"],
    multiplier: Float[ArrayLike, "*batch"],
    mark: Float[ArrayLike, "*batch"],
    premium: Float[ArrayLike, "*batch"],
    horizon_days: Float[ArrayLike, "*batch"],
    interest: Float[ArrayLike, "*batch"] = DEFAULT_FUNDING_INTEREST,
    clamp: Float[ArrayLike, "*batch"] = DEFAULT_FUNDING_CLAMP,
    fractional: bool | Bool[ArrayLike, "*batch"] = False,
    cap: Float[ArrayLike, "*batch"] | None = None,
    periods_per_day: Float[ArrayLike, "*batch"] = FUNDING_PERIODS_PER_DAY,
) -> Float[Array, "*batch"]:
    """Coin funding received by an inverse perpetual over the horizon:
    ``-periods * rate * quantity * multiplier / mark`` (the notional in coin at the mark)."""
    quantity, multiplier, mark = as_float(quantity, multiplier, mark)
    rate = funding_rate(premium=premium, interest=interest, clamp=clamp, cap=cap)
    periods = funding_periods(horizon_days=horizon_days, fractional=fractional, periods_per_day=periods_per_day)
    return -periods * rate * quantity * multiplier / mark


def perpetual_funding(
    *,
    quantity: Float[ArrayLike, "*batch"],
    multiplier: Float[ArrayLike, "*batch"],
    mark: Float[ArrayLike, "*batch"],
    spot: Float[ArrayLike, "*batch"],
    premium: Float[ArrayLike, "*batch"],
    horizon_days: Float[ArrayLike, "*batch"],
    inverse: Bool[ArrayLike, "*batch"],
    interest: Float[ArrayLike, "*batch"] = DEFAULT_FUNDING_INTEREST,
    clamp: Float[ArrayLike, "*batch"] = DEFAULT_FUNDING_CLAMP,
    fractional: bool | Bool[ArrayLike, "*batch"] = False,
    cap: Float[ArrayLike, "*batch"] | None = None,
    periods_per_day: Float[ArrayLike, "*batch"] = FUNDING_PERIODS_PER_DAY,
) -> Float[Array, "*batch"]:
    """USD funding received over the horizon by a book mixing linear and inverse
    perpetuals (inverse rows: coin funding times ``spot``)."""
    quantity, multiplier, mark, spot = as_float(quantity, multiplier, mark, spot)
    inverse = as_bool(inverse)
    common = dict(
        quantity=quantity, multiplier=multiplier, mark=mark, premium=premium,
        horizon_days=horizon_days, interest=interest, clamp=clamp, fractional=fractional,
        cap=cap, periods_per_day=periods_per_day,
    )
    linear = linear_perpetual_funding(**common)
    coin = inverse_perpetual_funding_coin(**common)
    return jnp.where(inverse, coin * spot, linear)


def perpetual_value(
    *,
    quantity: Float[ArrayLike, "*batch"],
    multiplier: Float[ArrayLike, "*batch"],
    entry: Float[ArrayLike, "*batch"],
    mark: Float[ArrayLike, "*batch"],
    spot: Float[ArrayLike, "*batch"],
    premium: Float[ArrayLike, "*batch"],
    horizon_days: Float[ArrayLike, "*batch"],
    inverse: Bool[ArrayLike, "*batch"],
    interest: Float[ArrayLike, "*batch"] = DEFAULT_FUNDING_INTEREST,
    clamp: Float[ArrayLike, "*batch"] = DEFAULT_FUNDING_CLAMP,
    fractional: bool | Bool[ArrayLike, "*batch"] = False,
    cap: Float[ArrayLike, "*batch"] | None = None,
    periods_per_day: Float[ArrayLike, "*batch"] = FUNDING_PERIODS_PER_DAY,
) -> Float[Array, "*batch"]:
    """USD value of perpetual positions after ``horizon_days``: P&L against ``entry`` at
    the ``mark`` plus the funding accrued over the horizon (both converted at ``spot`` for
    inverse rows)."""
    pnl = futures_pnl(
        quantity=quantity, multiplier=multiplier, entry=entry, price=mark, spot=spot,
        inverse=inverse,
    )
    funding = perpetual_funding(
        quantity=quantity, multiplier=multiplier, mark=mark, spot=spot, premium=premium,
        horizon_days=horizon_days, inverse=inverse, interest=interest, clamp=clamp,
        fractional=fractional, cap=cap, periods_per_day=periods_per_day,
    )
    return pnl + funding
