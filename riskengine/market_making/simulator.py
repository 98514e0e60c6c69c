"""Simulating a market maker on many paths at once.

Each step of length ``dt``, in this order (Avellaneda & Stoikov 2008, section 4):

1. the strategy quotes ``bid = s - delta_bid`` and ``ask = s + delta_ask`` from the mid
   ``s``, its inventory ``q`` and the time left; a side that would take ``|q|`` beyond
   ``inventory_limit`` is not quoted;
2. each quoted side is filled (one unit) with probability ``A exp(-k delta) dt``, capped at
   1 (``fills="linear"``, the paper's rule) or ``1 - exp(-A exp(-k delta) dt)``
   (``fills="poisson"``: at least one arrival of a Poisson stream in the step);
3. the mid moves (:mod:`riskengine.market_making.dynamics`).

With ``timing="move_then_fill"`` steps 2 and 3 swap: the quotes posted at the start of the
step stand while the mid moves, and the fill probabilities use their distances from the
*new* mid (so a quote the mid moved towards is filled more often: adverse selection).
With ``clip_at_mid`` a quote on the wrong side of the mid (an ask below it or a bid above
it, which the Avellaneda–Stoikov skew produces for large ``gamma q``) is moved to the mid.

Profit is the terminal wealth marked at the mid, ``cash + q S(T)``.

Paths are grouped in batches of ``batch_size``; batch ``b`` draws from
``fold_in(key, b)`` and step ``i`` of it from ``fold_in(fold_in(key, b), i)``
(``fold_in(., 0)``: the two fill uniforms; the mid's moves are drawn ahead of the quoting
loop by :mod:`riskengine.market_making.dynamics`), so two strategies run
with the same key see the same mid paths and the same fill uniforms (common random
numbers). Time is a ``lax.scan`` inside ``jit``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from riskengine.market_making.dynamics import MidProcess
from riskengine.market_making.strategies import Strategy

FillRule = Literal["linear", "poisson"]
FILL_RULES: tuple[str, ...] = ("linear", "poisson")
Timing = Literal["fill_then_move", "move_then_fill"]
TIMINGS: tuple[str, ...] = ("fill_then_move", "move_then_fill")


class FillModel(eqx.Module):
    """Market orders arrive at a quote ``delta`` from the mid with intensity ``A exp(-k delta)``."""

    A: Float[Array, ""]
    k: Float[Array, ""]
    rule: str = eqx.field(default="linear", static=True)

    def __check_init__(self):
        if self.rule not in FILL_RULES:
            raise ValueError(f"simulation.fills: must be one of {list(FILL_RULES)}, got {self.rule!r}")

    def probability(self, delta: Float[Array, " paths"], dt: Float[Array, ""]) -> Float[Array, " paths"]:
        """Probability that a quote at distance ``delta`` is filled within one step."""
        rate_dt = self.A * jnp.exp(-self.k * delta) * dt
        if self.rule == "linear":
            return jnp.clip(rate_dt, 0.0, 1.0)
        return -jnp.expm1(-rate_dt)


@dataclass(frozen=True)
class MarketMakingResult:
    """Per-path outcomes (numpy, ``[paths]``) and one sample path (path 0)."""

    profit: np.ndarray
    final_inventory: np.ndarray
    fills: np.ndarray
    max_abs_inventory: np.ndarray
    spread_sum: np.ndarray  # per path: sum of quoted spreads over steps with both sides quoted
    spread_count: np.ndarray  # per path: number of such steps
    sample: dict[str, np.ndarray]  # time, mid, bid, ask, inventory (NaN where a side is not quoted)

    @property
    def spread_mean(self) -> float:
        """Mean quoted spread ``ask - bid`` over all steps (of all paths) quoting both sides."""
        count = float(self.spread_count.sum())
        return float(self.spread_sum.sum() / count) if count else math.nan

    def statistics(self) -> dict[str, float]:
        n = self.profit.size
        profit = self.profit.astype(np.float64)
        inventory = self.final_inventory.astype(np.float64)
        ddof = 1 if n > 1 else 0
        return {
            "profit_mean": float(profit.mean()),
            "profit_std": float(profit.std(ddof=ddof)),
            "final_inventory_mean": float(inventory.mean()),
            "final_inventory_std": float(inventory.std(ddof=ddof)),
            "spread_mean": self.spread_mean,
            "profit_stderr": float(profit.std(ddof=ddof) / math.sqrt(n)),
            "fills_mean": float(self.fills.mean()),
            "max_abs_inventory": float(self.max_abs_inventory.max()),
        }


@eqx.filter_jit
def _simulate_batch(strategy, process, fills, key, batch_index, spot, horizon, dt, limit,
                    num_steps: int, batch: int, dtype: str, timing: str, clip_at_mid: bool):
    batch_key = jax.random.fold_in(key, batch_index)
    zeros = jnp.zeros((batch,), dtype)
    moves = process.moves(batch_key, spot=spot, dt=dt, num_steps=num_steps, num_paths=batch, dtype=dtype)
    carry0 = (jnp.full((batch,), spot, dtype), zeros, zeros, zeros, zeros, zeros, zeros, zeros)

    def body(carry, xs):
        i, move = xs
        mid, q, cash, n_fills, max_q, spread_sum, spread_count, _ = carry
        step_key = jax.random.fold_in(batch_key, i)
        time_left = horizon - i.astype(dtype) * dt
        delta_bid, delta_ask = strategy.offsets(q, time_left)
        if clip_at_mid:
            delta_bid, delta_ask = jnp.maximum(delta_bid, 0.0), jnp.maximum(delta_ask, 0.0)
        bid_on = q + 1 <= limit
        ask_on = q - 1 >= -limit
        bid, ask = mid - delta_bid, mid + delta_ask
        next_mid = process.advance(mid, move)
        if timing == "move_then_fill":
            dist_bid, dist_ask = next_mid - bid, ask - next_mid
        else:
            dist_bid, dist_ask = delta_bid, delta_ask
        p_bid = jnp.where(bid_on, fills.probability(dist_bid, dt), 0.0)
        p_ask = jnp.where(ask_on, fills.probability(dist_ask, dt), 0.0)
        u = jax.random.uniform(jax.random.fold_in(step_key, 0), (2, batch), dtype)
        bought = (u[0] < p_bid).astype(dtype)
        sold = (u[1] < p_ask).astype(dtype)
        both = bid_on & ask_on
        record = jnp.stack([
            mid[0], jnp.where(bid_on[0], bid[0], jnp.nan), jnp.where(ask_on[0], ask[0], jnp.nan), q[0],
        ])
        q_next = q + bought - sold
        carry = (
            next_mid,
            q_next,
            cash - bought * bid + sold * ask,
            n_fills + bought + sold,
            jnp.maximum(max_q, jnp.abs(q_next)),
            spread_sum + jnp.where(both, delta_bid + delta_ask, 0.0),
            spread_count + both.astype(dtype),
            zeros,
        )
        return carry, record

    carry, records = jax.lax.scan(body, carry0, (jnp.arange(num_steps), moves))
    mid, q, cash, n_fills, max_q, spread_sum, spread_count, _ = carry
    final = jnp.stack([mid[0], jnp.nan, jnp.nan, q[0]])
    return {
        "profit": cash + q * mid,
        "final_inventory": q,
        "fills": n_fills,
        "max_abs_inventory": max_q,
        "spread_sum": spread_sum,
        "spread_count": spread_count,
        "records": jnp.concatenate([records, final[None]], axis=0),
    }


def simulate_market_making(
    strategy: Strategy,
    process: MidProcess,
    fills: FillModel,
    *,
    key: PRNGKeyArray,
    spot: float,
    horizon: float,
    num_steps: int,
    num_paths: int,
    inventory_limit: int | None = None,
    dtype: str = "float32",
    batch_size: int = 4096,
    timing: Timing = "fill_then_move",
    clip_at_mid: bool = False,
    progress=None,
) -> MarketMakingResult:
    """Run ``strategy`` on ``num_paths`` paths of ``num_steps`` steps up to ``horizon``.

    Float64 needs ``jax_enable_x64`` (the job enables it for ``dtype: float64``)."""
    if num_paths < 1 or num_steps < 1 or batch_size < 1:
        raise ValueError("simulate_market_making: num_paths, num_steps and batch_size must be >= 1")
    if timing not in TIMINGS:
        raise ValueError(f"simulation.timing: must be one of {list(TIMINGS)}, got {timing!r}")
    batch = min(batch_size, num_paths)
    dt = horizon / num_steps
    limit = math.inf if inventory_limit is None else float(inventory_limit)
    args = (
        jnp.asarray(spot, dtype), jnp.asarray(horizon, dtype), jnp.asarray(dt, dtype), jnp.asarray(limit, dtype),
    )
    parts: dict[str, list[np.ndarray]] = {}
    sample = None
    num_batches = -(-num_paths // batch)
    for b in range(num_batches):
        out = _simulate_batch(strategy, process, fills, key, jnp.uint32(b), *args, num_steps, batch, dtype, timing, bool(clip_at_mid))
        out = jax.device_get(out)
        keep = min(batch, num_paths - b * batch)
        records = out.pop("records")
        if sample is None:
            sample = records
        for name, values in out.items():
            parts.setdefault(name, []).append(np.asarray(values)[:keep])
        if progress is not None:
            progress(b * batch + keep, num_paths)
    columns = {name: np.concatenate(values) for name, values in parts.items()}
    sample = np.asarray(sample, np.float64)
    sample_dict = {
        "time": np.arange(num_steps + 1) * dt,
        "mid": sample[:, 0], "bid": sample[:, 1], "ask": sample[:, 2], "inventory": sample[:, 3],
    }
    return MarketMakingResult(sample=sample_dict, **columns)
