"""A differentiable exposure policy: an equinox network maps an asset's factors to a signed
fraction of its risk budget, and is trained by gradient descent through the training
window's P&L, with trading costs, funding and the leverage cap inside the graph, under a
risk-aware objective from :mod:`hedging.objectives` (entropic risk or CVaR).

For date ``t`` and asset ``a``: ``s = tanh(net(x_{t,a}))`` in ``[-1, 1]``, the exposure is
``w = s * budget_{t,a}`` (``budget``: the volatility-targeted size cap of the asset, see
:mod:`riskengine.allocation.exposure`), scaled down to ``max_leverage`` gross, and the day's
P&L is ``sum_a w_{t,a} (r_{t+1,a} - funding_{t+1,a}) - cost * sum_a |w_{t,a} - w_{t-1,a}|``.
The objective is ``rho(P&L)`` over the window's days (one "path" per day), plus
``weight_decay * ||params||^2``; optax Adam, full batch, ``lax.scan`` over the steps inside
one ``jit`` (one compilation per job: windows have a fixed length, missing data is masked).
"""

from __future__ import annotations

from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, PRNGKeyArray


class ExposurePolicy(eqx.Module):
    net: eqx.nn.MLP

    def __init__(self, factors: int, *, hidden: int, depth: int, key: PRNGKeyArray):
        self.net = eqx.nn.MLP(factors, "scalar", hidden, depth, activation=jax.nn.tanh, key=key)
        # start flat: the last layer's weights small, so training begins near zero exposure
        last = self.net.layers[-1]
        self.net = eqx.tree_at(lambda n: n.layers[-1].weight, self.net, last.weight * 0.01)

    def __call__(self, x: Float[Array, " factors"]) -> Float[Array, ""]:
        return jnp.tanh(self.net(x))

    def scores(self, X: Float[Array, "... factors"]) -> Float[Array, "..."]:
        flat = X.reshape(-1, X.shape[-1])
        return jax.vmap(self)(flat).reshape(X.shape[:-1])

    def contributions(self, X: Float[Array, "n factors"]) -> Float[Array, "n factors"]:
        """Gradient times input: the first-order share of each factor in the score."""
        return jax.vmap(jax.grad(self))(X) * X


@dataclass(frozen=True)
class PolicySettings:
    hidden: int = 16
    depth: int = 1
    steps: int = 300
    learning_rate: float = 0.01
    weight_decay: float = 1e-3
    objective: str = "entropic"  # or "cvar"
    risk_aversion: float = 2.0
    level: float = 0.95


def _objective(settings: PolicySettings):
    from hedging.objectives import Entropic, ExpectedShortfall

    if settings.objective == "entropic":
        return Entropic(risk_aversion=settings.risk_aversion)
    if settings.objective == "cvar":
        return ExpectedShortfall(level=settings.level)
    raise ValueError(f"policy.objective: unknown {settings.objective!r}; expected entropic or cvar")


def window_pnl(policy: ExposurePolicy, X, ret, budget, funding, mask, *, cost: float,
               max_leverage: float) -> Float[Array, " dates"]:
    """Daily P&L of the policy over a window (arrays ``[dates, assets(, factors)]``)."""
    w = policy.scores(X) * budget * mask
    gross = jnp.sum(jnp.abs(w), axis=1, keepdims=True)
    w = w * jnp.minimum(1.0, max_leverage / jnp.maximum(gross, 1e-12))
    prev = jnp.concatenate([w[:1], w[:-1]], axis=0)
    return jnp.sum(w * (ret - funding), axis=1) - cost * jnp.sum(jnp.abs(w - prev), axis=1)


@eqx.filter_jit
def _train(policy, objective, X, ret, budget, funding, mask, cost, max_leverage, *, steps: int,
           learning_rate: float, weight_decay: float):
    params = (policy, objective)
    trainable = eqx.filter(params, eqx.is_inexact_array)
    opt = optax.adam(learning_rate)
    state = opt.init(trainable)

    def loss_fn(tr):
        pol, obj = eqx.combine(tr, eqx.filter(params, eqx.is_inexact_array, inverse=True))
        pnl = window_pnl(pol, X, ret, budget, funding, mask, cost=cost, max_leverage=max_leverage)
        leaves = jax.tree_util.tree_leaves(eqx.filter(pol, eqx.is_inexact_array))
        l2 = sum(jnp.sum(leaf * leaf) for leaf in leaves)
        return obj.loss(pnl) + weight_decay * l2

    def step(carry, _):
        tr, st = carry
        loss, grads = eqx.filter_value_and_grad(loss_fn)(tr)
        updates, st = opt.update(grads, st, tr)
        return (eqx.apply_updates(tr, updates), st), loss

    (trainable, _), losses = jax.lax.scan(step, (trainable, state), None, length=steps)
    policy, objective = eqx.combine(trainable, eqx.filter(params, eqx.is_inexact_array, inverse=True))
    return policy, losses


def train_policy(X: Float[np.ndarray, "dates assets factors"], ret: Float[np.ndarray, "dates assets"],
                 budget: Float[np.ndarray, "dates assets"], funding: Float[np.ndarray, "dates assets"],
                 *, cost: float, max_leverage: float, key: PRNGKeyArray,
                 settings: PolicySettings = PolicySettings()) -> tuple[ExposurePolicy, np.ndarray]:
    """Train a fresh policy on one window. Entries where ``ret``, ``budget`` or ``funding`` is
    not finite are masked out (no position, no P&L). Returns the policy and the loss path."""
    mask = np.isfinite(ret) & np.isfinite(budget) & np.isfinite(funding)
    f32 = jnp.float32
    args = [jnp.asarray(np.where(mask[..., None], X, 0.0), f32)] + [
        jnp.asarray(np.where(mask, a, 0.0), f32) for a in (ret, budget, funding)]
    policy = ExposurePolicy(X.shape[-1], hidden=settings.hidden, depth=settings.depth, key=key)
    trained, losses = _train(policy, _objective(settings), *args, jnp.asarray(mask, f32),
                             jnp.asarray(cost, f32), jnp.asarray(max_leverage, f32),
                             steps=settings.steps, learning_rate=settings.learning_rate,
                             weight_decay=settings.weight_decay)
    return trained, np.asarray(losses)
