"""Hedging policies: learned (MLP, recurrent, no-transaction band) and the classic baselines
(no hedge, Black–Scholes delta, Whalley–Wilmott).

Every policy splits its work in two, which is what makes training fast:

- ``encode(view)``: everything that does not depend on the policy's own past positions,
  for all dates at once (``[dates, paths, ...]``: large, vectorised matrix products);
- ``decide(encoded_t, carry) -> (hedge, carry)``: the part that must run date by date,
  inside ``lax.scan`` (``carry`` holds the previous hedge, and a hidden state for the
  recurrent policy).
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from hedging.features import MARKET_FEATURES, MarketView, check_features
from hedging.rollout import recurrent_mlp_rollout

Hedge = Float[Array, "paths instruments"]


class Policy(eqx.Module):
    """The interface: ``encode`` once per batch of paths, ``decide`` once per date."""

    # Dates per iteration of the time loop in training: unrolling helps a costly ``decide``
    # (a network fed its previous output) and only lengthens compilation for a cheap one.
    unroll = 1

    def encode(self, view: MarketView) -> Any:
        raise NotImplementedError

    def init_carry(self, num_paths: int, num_instruments: int, dtype: Any) -> Any:
        """The carry before the first date; by default the previous hedge, zero."""
        return jnp.zeros((num_paths, num_instruments), dtype)

    def decide(self, encoded: Any, carry: Any) -> tuple[Hedge, Any]:
        raise NotImplementedError

    def positions(self, view: MarketView, *, unroll: int | bool) -> Float[Array, "dates paths instruments"]:
        """The positions on every date: ``encode``, then ``decide`` in a ``lax.scan``. A policy
        may override this with a faster equivalent."""
        encoded = self.encode(view)
        carry = self.init_carry(view.spot.shape[1], view.num_instruments, view.spot.dtype)

        def body(carry, enc_t):
            hedge, carry = self.decide(enc_t, carry)
            return carry, hedge

        _, hedges = jax.lax.scan(body, carry, encoded, unroll=unroll)
        return hedges


def _dense(layer: eqx.nn.Linear, x: Array) -> Array:
    """A linear layer on a batch ``[..., in]`` (one matrix product, no vmap)."""
    return x @ layer.weight.T + layer.bias


def _weight_bias_pairs(layers: tuple[eqx.nn.Linear, ...]) -> tuple[tuple[Array, Array], ...]:
    """``(W^T, b)`` per layer, the form :func:`hedging.rollout.recurrent_mlp_rollout` takes."""
    return tuple((layer.weight.T, layer.bias) for layer in layers)


def _perceptron(layers: tuple[eqx.nn.Linear, ...], x: Array) -> Array:
    """ReLU after every layer but the last, on a batch ``[..., in]``."""
    for layer in layers[:-1]:
        x = jax.nn.relu(_dense(layer, x))
    return _dense(layers[-1], x)


# --- baselines --------------------------------------------------------------------------------


class NoHedge(Policy):
    """Never trade."""

    def encode(self, view):
        return jnp.zeros(view.spot.shape + (view.num_instruments,), view.spot.dtype)

    def decide(self, encoded, carry):
        return encoded, encoded


def _underlying_only(hedge: Float[Array, "dates paths"], num_instruments: int) -> Array:
    """Hedge in the underlying only (zero in any other instrument)."""
    pad = [(0, 0)] * hedge.ndim + [(0, num_instruments - 1)]
    return jnp.pad(hedge[..., None], pad)


class BlackScholesDelta(Policy):
    """Black–Scholes delta in the underlying, with the path's current volatility (or a fixed
    ``vol``), rebalanced at every date whatever the cost."""

    vol: float | None = eqx.field(static=True, default=None)

    def encode(self, view):
        return _underlying_only(view.delta(self.vol), view.num_instruments)

    def decide(self, encoded, carry):
        return encoded, encoded


class WhalleyWilmott(Policy):
    """Whalley & Wilmott (1997): keep the position inside ``delta ± (3 c S Γ² / (2a))^(1/3)``
    and trade only to the nearest edge of the band."""

    cost: float = eqx.field(static=True)
    risk_aversion: float = eqx.field(static=True, default=1.0)
    vol: float | None = eqx.field(static=True, default=None)

    def encode(self, view):
        delta = view.delta(self.vol)
        gamma = view.gamma(self.vol)
        width = jnp.cbrt(1.5 * self.cost * view.spot * gamma**2 / self.risk_aversion)
        return delta - width, delta + width

    def decide(self, encoded, carry):
        lower, upper = encoded
        hedge = jnp.clip(carry[:, 0], lower, upper)
        hedge = _underlying_only(hedge, carry.shape[1])
        return hedge, hedge


# --- learned policies -------------------------------------------------------------------------


def _mlp_layers(key: PRNGKeyArray, sizes: list[int], dtype: Any) -> tuple[eqx.nn.Linear, ...]:
    keys = jax.random.split(key, len(sizes) - 1)
    return tuple(
        eqx.nn.Linear(i, o, key=k, dtype=dtype) for i, o, k in zip(sizes[:-1], sizes[1:], keys, strict=True)
    )


def _zero_last_layer(layers: tuple[eqx.nn.Linear, ...]) -> tuple[eqx.nn.Linear, ...]:
    """The same layers with the last one's weight and bias at zero (the network outputs 0)."""
    last = eqx.tree_at(lambda m: (m.weight, m.bias), layers[-1],
                       (jnp.zeros_like(layers[-1].weight), jnp.zeros_like(layers[-1].bias)))
    return layers[:-1] + (last,)


class MLPPolicy(Policy):
    """A multi-layer perceptron ``features -> hedge`` (Buehler et al. 2019; pfhedge's
    ``MultiLayerPerceptron``: ``depth`` hidden layers of ``width`` ReLU units).

    With ``base="bs_delta"`` the network learns a correction added to the Black–Scholes
    delta (its last layer starts at zero, so training starts from delta hedging)."""

    layers: tuple[eqx.nn.Linear, ...]
    features: tuple[str, ...] = eqx.field(static=True)
    base: str = eqx.field(static=True, default="none")
    backend: str = eqx.field(static=True, default="jax")  # training's date loop: jax | native
    unroll = True

    def __init__(self, features, *, num_instruments=1, width=32, depth=4, base="none", key, dtype=jnp.float32,
                 backend="jax"):
        features = tuple(features)
        check_features(features)
        if base not in ("none", "bs_delta"):
            raise ValueError(f"policy.base: expected 'none' or 'bs_delta', got {base!r}")
        n_in = sum(num_instruments if f == "prev_hedge" else 1 for f in features)
        layers = _mlp_layers(key, [n_in] + [width] * depth + [num_instruments], dtype)
        self.layers = _zero_last_layer(layers) if base != "none" else layers
        self.features = features
        self.base = base
        self.backend = backend

    def _columns(self, num_instruments):
        """Column indices of the market features and of prev_hedge in the first layer."""
        market, prev, col = [], [], 0
        for f in self.features:
            width = num_instruments if f == "prev_hedge" else 1
            (prev if f == "prev_hedge" else market).extend(range(col, col + width))
            col += width
        return market, prev

    def encode(self, view):
        market_cols, prev_cols = self._columns(view.num_instruments)
        names = tuple(f for f in self.features if f in MARKET_FEATURES)
        first = self.layers[0]
        # The first layer's market part for every date in one product: [dates, paths, width].
        pre = first.bias
        if names:
            pre = view.stack(names) @ first.weight[:, np.asarray(market_cols)].T + first.bias
        pre = jnp.broadcast_to(pre, view.spot.shape + (first.out_features,))
        base = self._base(view)
        if not prev_cols:  # nothing depends on past positions: the whole network at once
            hedge = self._rest(pre)
            return hedge if base is None else hedge + base
        return pre, base

    def _base(self, view):
        """What the network's output is added to: Black–Scholes delta in the underlying, or None."""
        return _underlying_only(view.delta(), view.num_instruments) if self.base == "bs_delta" else None

    def _rest(self, pre):
        """The network after the first layer's pre-activation."""
        return _perceptron(self.layers[1:], jax.nn.relu(pre))

    def decide(self, encoded, carry):
        _, prev_cols = self._columns(carry.shape[1])
        if not prev_cols:
            return encoded, encoded
        pre, base = encoded
        prev_weight = self.layers[0].weight[:, np.asarray(prev_cols)]
        hedge = self._rest(pre + carry @ prev_weight.T)
        if base is not None:
            hedge = hedge + base
        return hedge, hedge

    def positions(self, view, *, unroll):
        """With ``prev_hedge`` among the features, the date loop with a hand-written reverse
        pass (:mod:`hedging.rollout`): the same function and gradients as ``encode``/``decide``
        in a scan, with fewer and larger kernels."""
        market_cols, prev_cols = self._columns(view.num_instruments)
        if not prev_cols:
            return super().positions(view, unroll=unroll)
        names = tuple(f for f in self.features if f in MARKET_FEATURES)
        market = view.stack(names) if names else jnp.zeros(view.spot.shape + (0,), view.spot.dtype)
        columns = np.asarray(market_cols + prev_cols)
        first = eqx.tree_at(lambda layer: layer.weight, self.layers[0], self.layers[0].weight[:, columns])
        layers = _weight_bias_pairs((first,) + self.layers[1:])
        base = self._base(view)
        if base is None:
            base = jnp.zeros(view.spot.shape + (view.num_instruments,), view.spot.dtype)
        return recurrent_mlp_rollout(layers, market, base, unroll=unroll, backend=self.backend)


class NoTransactionBandPolicy(Policy):
    """The no-transaction band network (Imaki, Imajo, Ito, Minami, Nakagawa 2021): an MLP of
    the market features gives a band ``[delta - leaky_relu(w0), delta + leaky_relu(w1)]``
    around the Black–Scholes delta; the hedge moves to the band only when it is outside.

    The band does not depend on past positions, so the network runs once for all dates and
    only a clip remains in the time loop.

    ``start="random"`` (the paper's) initialises every layer at random, so training starts
    from a random band. ``start="delta"`` sets the last layer to zero: training starts from
    a band of zero width, the delta hedge, and the costs widen it. Use it when the costs are
    small: a random band starts far from the best one, and on the way Adam's steps can push
    the widths below zero until the band's edges cross; a crossed band is a trap (the hedge
    sits on the upper edge, the lower width gets no gradient and the risk pulls the upper
    width back to zero), so training ends on the delta hedge (benchmarks/RESULTS.md, the
    cost-scaling reproduction)."""

    layers: tuple[eqx.nn.Linear, ...]
    features: tuple[str, ...] = eqx.field(static=True)
    backend: str = eqx.field(static=True, default="jax")  # training's date loop: jax | native

    def __init__(self, features=("log_moneyness", "time_to_maturity", "volatility"), *, width=32, depth=4,
                 start="random", key, dtype=jnp.float32, backend="jax"):
        features = tuple(f for f in features if f != "prev_hedge")
        check_features(features)
        if start not in ("random", "delta"):
            raise ValueError(f"policy.start: expected 'random' or 'delta', got {start!r}")
        layers = _mlp_layers(key, [len(features)] + [width] * depth + [2], dtype)
        self.layers = _zero_last_layer(layers) if start == "delta" else layers
        self.features = features
        self.backend = backend

    def encode(self, view):
        if view.num_instruments != 1:
            raise ValueError("policy.type: the no-transaction band network hedges with the underlying only")
        market = view.stack(self.features)
        layers = _weight_bias_pairs(self.layers)
        zero = jnp.zeros(market.shape[:-1] + (2,), market.dtype)
        width = jax.nn.leaky_relu(recurrent_mlp_rollout(layers, market, zero, unroll=1, feedback=False,
                                                        backend=self.backend))
        delta = view.delta()
        return delta - width[..., 0], delta + width[..., 1]

    def decide(self, encoded, carry):
        lower, upper = encoded
        hedge = jnp.clip(carry[:, 0], lower, upper)[:, None]
        return hedge, hedge


class RecurrentPolicy(Policy):
    """A GRU over dates: input = market features and previous hedge, hidden state carried,
    a linear read-out gives the hedge (path-dependent strategies)."""

    cell: eqx.nn.GRUCell
    readout: eqx.nn.Linear
    features: tuple[str, ...] = eqx.field(static=True)

    def __init__(self, features, *, num_instruments=1, width=32, key, dtype=jnp.float32):
        features = tuple(f for f in features if f != "prev_hedge")
        check_features(features)
        k1, k2 = jax.random.split(key)
        self.cell = eqx.nn.GRUCell(len(features) + num_instruments, width, key=k1, dtype=dtype)
        self.readout = eqx.nn.Linear(width, num_instruments, key=k2, dtype=dtype)
        self.features = features

    def encode(self, view):
        return view.stack(self.features)

    def init_carry(self, num_paths, num_instruments, dtype):
        return jnp.zeros((num_paths, num_instruments), dtype), jnp.zeros((num_paths, self.cell.hidden_size), dtype)

    def decide(self, encoded, carry):
        prev, hidden = carry
        x = jnp.concatenate([encoded, prev], axis=-1)
        hidden = jax.vmap(self.cell)(x, hidden)
        hedge = _dense(self.readout, hidden)
        return hedge, (hedge, hidden)


def hedge_positions(
    policy: Policy, view: MarketView, *, unroll: int | bool | None = None
) -> Float[Array, "dates paths instruments"]:
    """The policy's positions on every trading date (a loop over dates; ``unroll`` defaults
    to the policy's)."""
    return policy.positions(view, unroll=policy.unroll if unroll is None else unroll)

