"""The book fully revalued under historical moves: overlapping h-day returns of the history
(historical simulation) and simulated filtered-historical paths (GARCH-filtered residual
dates bootstrapped jointly, :func:`riskengine.risk.simulate_filtered_history`). Spots move;
implied vols and time are held as today."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Float

from riskengine import risk
from riskengine.book import Book, book_value_function
from riskengine.market import MarketSnapshot

__all__ = ["filtered_historical_pnl", "historical_pnl"]


def historical_pnl(book: Book, market: MarketSnapshot, returns: Float[np.ndarray, "days underlyings"], *,
                   horizon: int) -> Float[np.ndarray, " scenarios"]:
    """Book P&L (USD) under each overlapping ``horizon``-day return compounded from the daily
    simple ``returns`` (one column per underlying, in ``book.underlyings`` order)."""
    returns = risk.overlapping_returns(returns, horizon=horizon)
    value, base = book_value_function(book, market)
    with jax.enable_x64(True):
        spot = jnp.asarray(base.spot) * (1.0 + jnp.asarray(returns))
        shocked = jax.jit(jax.vmap(lambda s: value(s, jnp.zeros(len(base.spot)), 0.0)))(spot)
        v0 = value(jnp.asarray(base.spot), jnp.zeros(len(base.spot)), 0.0)
    return np.asarray(shocked - v0)


def filtered_historical_pnl(
    book: Book, market: MarketSnapshot, returns: Float[np.ndarray, "days underlyings"], *,
    horizons_days: Sequence[int], paths: int, seed: int, model: str = "gjr_garch", distribution: str = "t",
    given: dict | None = None,
) -> tuple[Float[np.ndarray, "paths horizons"], risk.FilteredHistory]:
    """``(pnl, filtered)``: filtered historical simulation of the book. The daily simple
    ``returns`` (one column per underlying, in ``book.underlyings`` order) are filtered per
    underlying by a GARCH ``model`` (:func:`riskengine.risk.filter_history`; ``given``: fitted
    parameters per underlying, e.g. from a calibrate job), residual dates are bootstrapped
    jointly and the variance recursion runs forward from the last filtered variance
    (``paths`` paths, key ``seed``), and the book is fully revalued on each path at each
    horizon (days). ``pnl`` in USD, ``filtered`` the filters."""
    names = list(book.underlyings)
    with jax.enable_x64(True):
        filtered = risk.filter_history(np.log1p(returns), names=names, kind=model, dist=distribution, given=given or {})
        log_returns = risk.simulate_filtered_history(filtered, jax.random.key(seed), horizons=list(horizons_days),
                                                     num_paths=paths)  # [paths, horizons, U]
        value, base = book_value_function(book, market)
        zero = jnp.zeros(len(base.spot))
        spot0 = jnp.asarray(base.spot)
        spots = jnp.concatenate([(spot0 * jnp.exp(log_returns)).reshape(-1, len(base.spot)), spot0[None]])
        # the base value in the same compiled call (last row): no eager revaluation; chunks of
        # about 2^22 position values each (lax.map runs them in turn), so memory stays bounded
        chunk = max(1, min(len(spots), (1 << 22) // max(book.num_positions, 1)))
        pad = -len(spots) % chunk
        padded = jnp.concatenate([spots, jnp.broadcast_to(spot0, (pad, len(base.spot)))]).reshape(-1, chunk, len(base.spot))
        values = np.asarray(jax.jit(lambda x: jax.lax.map(jax.vmap(lambda s: value(s, zero, 0.0)), x))(padded)).ravel()
        values = values[: len(spots)]
        return (values[:-1] - values[-1]).reshape(log_returns.shape[:2]), filtered
