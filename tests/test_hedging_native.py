"""The native CPU kernels of the recurrent perceptron's date loop (hedging/native/mlp_rollout.cc)
against an independent reference: JAX's own differentiation of the plain date loop in float64."""

from __future__ import annotations

import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hedging import Entropic, MLPPolicy, make_optimizer, native, train
from hedging.rollout import recurrent_mlp_rollout
from tests.test_hedging import gbm_problem

pytestmark = pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None,
                                reason="no C++ compiler: the plain JAX path runs (tested elsewhere)")


def test_the_kernels_build_where_there_is_a_compiler():
    native.build()  # make install builds them; a broken build fails here, loudly
    assert native.available()


def test_native_is_chosen_explicitly_and_refused_clearly_where_it_cannot_run():
    from hedging.rollout import native_problem

    assert native_problem(dtype="float32", hidden=[32, 32]) is None
    assert "float32 only" in native_problem(dtype="float64", hidden=[32])
    assert "32 wide only" in native_problem(dtype="float32", hidden=[16])
    layers = ((jnp.ones((3, 16), jnp.float32), jnp.zeros(16, jnp.float32)),
              (jnp.ones((16, 1), jnp.float32), jnp.zeros(1, jnp.float32)))
    market, base = jnp.ones((2, 4, 3), jnp.float32), jnp.zeros((2, 4, 1), jnp.float32)
    with pytest.raises(ValueError, match="train.backend: native: hidden layers 32 wide only"):
        jax.grad(lambda w: recurrent_mlp_rollout(w, market, base, feedback=False, backend="native").sum())(layers)
    # the default is plain JAX: no custom call in the training program
    hlo = jax.jit(jax.grad(lambda w: recurrent_mlp_rollout(w, market, base, feedback=False).sum())).lower(layers).as_text()
    assert "riskengine_mlp_rollout" not in hlo


def _plain_loop(layers, market, base, feedback):
    """The date loop written out with jax.lax.scan (no custom rules), for reference."""
    prev0 = jnp.zeros(market.shape[1:2] + (base.shape[-1] if feedback else 0,), market.dtype)

    def body(prev, xs):
        m, b = xs
        a = jnp.concatenate([m, prev], axis=-1)
        for w, c in layers[:-1]:
            a = jax.nn.relu(a @ w + c)
        h = a @ layers[-1][0] + layers[-1][1] + b
        return (h if feedback else prev), h

    return jax.lax.scan(body, prev0, (market, base))[1]


@pytest.mark.parametrize(("feedback", "outputs", "depth", "paths"), [
    (True, 1, 4, 203),   # the pfhedge network; 203 = 3 blocks of 64 + 11 (blocks of 8, 1)
    (False, 2, 2, 130),  # the band network's shape: two outputs, no feedback
    (True, 2, 1, 67),
])
def test_native_gradients_equal_float64_reference(feedback, outputs, depth, paths):
    dates, features = 7, 3
    keys = iter(jax.random.split(jax.random.key(5), 64))
    sizes = [features + (outputs if feedback else 0)] + [32] * depth + [outputs]
    f32 = jnp.float32
    layers = tuple((jax.random.normal(next(keys), (i, o), f32) / float(np.sqrt(i)), 0.1 * jax.random.normal(next(keys), (o,), f32))
                   for i, o in zip(sizes[:-1], sizes[1:], strict=True))
    market = jax.random.normal(next(keys), (dates, paths, features), f32)
    base = 0.3 * jax.random.normal(next(keys), (dates, paths, outputs), f32)
    cotangent = jax.random.normal(next(keys), (dates, paths, outputs), f32)

    @jax.jit
    def native_vjp(layers, market, base):
        hedges, pullback = jax.vjp(lambda *a: recurrent_mlp_rollout(*a, feedback=feedback, backend="native"),
                                   layers, market, base)
        return hedges, pullback(cotangent)

    hlo = native_vjp.lower(layers, market, base).as_text()
    assert "riskengine_mlp_rollout_forward" in hlo and "riskengine_mlp_rollout_reverse" in hlo
    hedges, grads = native_vjp(layers, market, base)
    f64 = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), (layers, market, base, cotangent))  # x64 is on in tests
    ref_hedges, pullback = jax.vjp(lambda *a: _plain_loop(*a, feedback), *f64[:3])
    ref_grads = pullback(f64[3])
    assert hedges.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(hedges, np.float64), ref_hedges, rtol=0,
                               atol=1e-5 * float(jnp.abs(ref_hedges).max()))
    for got, want in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads), strict=True):
        assert got.dtype == jnp.float32 and got.shape == want.shape
        np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want), rtol=0,
                                   atol=2e-5 * float(jnp.abs(want).max()))


def test_native_training_is_deterministic_and_matches_the_jax_path(monkeypatch):
    problem = gbm_problem(cost=1e-3, dtype=jnp.float32)
    features = ["log_moneyness", "time_to_maturity", "volatility", "prev_hedge"]
    policy = MLPPolicy(features, width=32, depth=4, key=jax.random.key(23), backend="native")
    common = dict(key=jax.random.key(24), num_paths=1000, epochs=20, optimizer=make_optimizer(1e-3))
    runs = [train(policy, Entropic(1.0), problem, **common) for _ in range(2)]
    assert runs[0].loss_history == runs[1].loss_history  # bit for bit: chunks are summed in a fixed order
    plain = train(MLPPolicy(features, width=32, depth=4, key=jax.random.key(23), backend="jax"),
                  Entropic(1.0), problem, **common)
    # the same training to float32 rounding (Adam amplifies rounding in near-zero gradient
    # components, so the weights drift apart by ~lr; the gradients themselves are checked above)
    np.testing.assert_allclose(runs[0].loss_history, plain.loss_history, rtol=1e-4)
