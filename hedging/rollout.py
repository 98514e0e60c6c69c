"""The date loop of a perceptron fed its own previous output, with a hand-written reverse pass.

A policy ``h_t = MLP(x_t, h_{t-1}) + base_t`` must run date by date. Differentiating its
``lax.scan`` automatically works, but XLA then reduces every bias gradient over the batch in
a tree of small kernels and stacks the first layer's gradients across dates; on a CPU, with
32-wide layers, that bookkeeping costs about as much as the matrix products themselves.
Here every layer carries its bias as the last row of an augmented weight ``[W; b]`` and every
activation an extra column of ones, so one matrix product per layer and date gives the weight
*and* bias gradients, and the reverse pass is exactly: three kinds of products (activations
forward, input gradients backward, weight gradients), ReLU masks, nothing else.

The result is the same function with the same gradients as differentiating the scan
(tests compare both in float64).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float

Weights = tuple[Float[Array, "inputs_plus_1 outputs"], ...]


def _with_ones(x: Array) -> Array:
    return jnp.concatenate([x, jnp.ones(x.shape[:-1] + (1,), x.dtype)], axis=-1)


def _date(weights: Weights, market_t: Array, prev: Array, base_t: Array) -> tuple[Array, list[Array]]:
    """One date: the hedge and the augmented inputs of every layer (kept for the reverse pass)."""
    a = _with_ones(jnp.concatenate([market_t, prev], axis=-1))
    inputs = [a]
    for w in weights[:-1]:
        a = _with_ones(jax.nn.relu(a @ w))
        inputs.append(a)
    return a @ weights[-1] + base_t, inputs


def _scan_forward(weights, market, base, unroll, keep):
    prev = jnp.zeros(market.shape[1:2] + base.shape[-1:], market.dtype)

    def body(prev, xs):
        market_t, base_t = xs
        hedge, inputs = _date(weights, market_t, prev, base_t)
        return hedge, (hedge, inputs) if keep else hedge

    _, out = lax.scan(body, prev, (market, base), unroll=unroll)
    return out


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _rollout(weights, market, base, unroll):
    return _scan_forward(weights, market, base, unroll, keep=False)


def _rollout_fwd(weights, market, base, unroll):
    hedges, inputs = _scan_forward(weights, market, base, unroll, keep=True)
    return hedges, (weights, inputs)


def _rollout_bwd(unroll, residuals, cotangent):
    weights, inputs = residuals
    num_market = inputs[0].shape[-1] - 1 - weights[-1].shape[1]

    def body(d_prev, xs):
        ct_t, inputs_t = xs
        d_hedge = ct_t + d_prev  # dL/dh_t: its own cotangent and what h_t did as the next date's input
        d = d_hedge
        grads = [inputs_t[-1].T @ d]
        for layer in range(len(weights) - 1, 0, -1):
            d = jnp.where(inputs_t[layer][..., :-1] > 0, d @ weights[layer][:-1].T, 0.0)
            grads.append(inputs_t[layer - 1].T @ d)
        d_input = d @ weights[0][:-1].T  # [paths, market + instruments]
        return d_input[:, num_market:], (tuple(grads[::-1]), d_input[:, :num_market], d_hedge)

    d_last = jnp.zeros(cotangent.shape[1:], cotangent.dtype)
    _, (grads, d_market, d_base) = lax.scan(body, d_last, (cotangent, inputs), reverse=True, unroll=unroll)
    return tuple(g.sum(axis=0) for g in grads), d_market, d_base


_rollout.defvjp(_rollout_fwd, _rollout_bwd)


def recurrent_mlp_rollout(
    weights: Weights,
    market: Float[Array, "dates paths market"],
    base: Float[Array, "dates paths instruments"],
    *,
    unroll: int | bool = 1,
) -> Float[Array, "dates paths instruments"]:
    """``h_t = relu-MLP([market_t, h_{t-1}]) + base_t`` for every date, ``h_{-1} = 0``.

    ``weights[l]`` is layer ``l``'s ``[W^T; b]`` (inputs + 1 rows); the first layer's inputs
    are the market columns, then the previous hedge (one column per instrument)."""
    num_instruments = weights[-1].shape[1]
    if weights[0].shape[0] != market.shape[-1] + num_instruments + 1:
        raise ValueError(
            f"recurrent_mlp_rollout: the first layer takes {weights[0].shape[0] - 1} inputs, but there are "
            f"{market.shape[-1]} market features and {num_instruments} instruments"
        )
    return _rollout(tuple(weights), market, base, unroll)
