"""Device-count invariance: blocks sharded over 4 host devices (``shard_map`` over a 1-D
mesh) give bitwise the numbers of one device for the same seed.

JAX fixes the device count when it starts, so the checks run in a child process with
``XLA_FLAGS=--xla_force_host_platform_device_count=4``; the child compares runs on 4
devices against runs on 1 device of the same process (``devices=1``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import jax, numpy as np, jax.numpy as jnp
jax.config.update("jax_enable_x64", True)
from riskengine import Heston, GBM, SVCJ, CorrelatedAssets, simulate
from riskengine.pricing import price_europeans
from riskengine.simulate import block_runner, collect, monte_carlo, time_grid

assert jax.local_device_count() == 4, jax.local_devices()
key = jax.random.key(11)
paths = 7 * 1024 + 37  # a partial last block; 8 blocks on one device, padded to 8 on 4
out = {}

heston = Heston(v0=0.04, kappa=1.5, theta=0.06, sigma=0.5, rho=-0.7)
for name, model, dtype in (("heston_float64", heston, "float64"), ("gbm_float32", GBM(sigma=0.3), "float32")):
    runs = [price_europeans(model, key=key, spot=100.0, rate=0.01, dividend=0.0, strikes=[90.0, 100.0, 120.0],
                            maturities=[0.25, 0.5, 0.5], is_call=[True, False, True], num_paths=paths,
                            steps_per_year=52, dtype=dtype, greeks=False, chunk_paths=3 * 1024, devices=d)
            for d in (1, 4)]
    out[name] = [{k: np.asarray(getattr(r, k)).tolist() for k in ("price", "stderr")} for r in runs]

# per-path observations of three correlated assets (stream/collect), float64
assets = CorrelatedAssets.from_correlation(
    [GBM(sigma=0.6), Heston(v0=0.3, kappa=2.0, theta=0.3, sigma=0.8, rho=-0.3),
     SVCJ(v0=0.4, kappa=3.0, theta=0.4, sigma=1.0, rho=-0.2, jump_intensity=8.0, jump_mean=-0.04,
          jump_vol=0.08, vol_jump_mean=0.1, jump_corr=-0.5)],
    np.array([[1.0, 0.7, 0.5], [0.7, 1.0, 0.6], [0.5, 0.6, 1.0]]))
run = block_runner(time_grid([1 / 365, 10 / 365], steps_per_year=365), block_size=1024, dtype=jnp.float64,
                   record=("log_return", "variance"))
block_fn = lambda k, a: run(a, k, jnp.zeros(3, jnp.float64)).log_return.transpose(1, 0, 2)
per_device = [collect(block_fn, assets, key=key, num_paths=paths, chunk_paths=2 * 1024, devices=d) for d in (1, 4)]
out["collect_equal"] = bool(np.array_equal(per_device[0], per_device[1]))
out["collect_shape"] = list(per_device[1].shape)
out["collect_finite"] = bool(np.isfinite(per_device[1]).all())
out["collect_mean_10d"] = per_device[1][:, 1, :].mean(axis=0).tolist()
out["collect_std_10d"] = per_device[1][:, 1, :].std(axis=0).tolist()

# the sharded chunk really runs on 4 devices
chunk = simulate._collect_chunk(block_fn, 4, 4)
result = chunk(key, np.arange(4, dtype=np.uint32), assets)
out["devices_used"] = len(result.sharding.device_set)
print("RESULT" + __import__("json").dumps(out))
"""


def _child_env(devices: int) -> dict:
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={devices}").strip()
    env["JAX_PLATFORMS"] = "cpu"
    return env


def test_four_devices_equal_one_device_bitwise():
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=_child_env(4),
                          cwd=ROOT, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.split("RESULT", 1)[1])
    assert out["devices_used"] == 4
    one, four = out["heston_float64"]
    assert one == four, (one, four)  # bitwise: the JSON floats round-trip exactly
    # float32 is bitwise only for the same blocks per device and chunk (here 3 on one device,
    # 1 on each of 4: XLA compiles other loops and the smoothed payoff's last bits move, as
    # they do for another chunk size on one device); within float32 rounding otherwise
    one, four = out["gbm_float32"]
    np.testing.assert_allclose(four["price"], one["price"], rtol=2e-6)
    # sanity against closed forms, independent of the comparison above: Heston prices
    # within 4 standard errors of the characteristic-function price (same discretisation
    # as the library's own tests: 52 steps a year, QE)
    from riskengine.analytic import heston_price

    ref = [float(heston_price(spot=100.0, strike=k, maturity=t, rate=0.01, dividend=0.0, v0=0.04, kappa=1.5,
                              theta=0.06, sigma=0.5, rho=-0.7, is_call=c))
           for k, t, c in ((90.0, 0.25, True), (100.0, 0.5, False), (120.0, 0.5, True))]
    one = out["heston_float64"][0]
    for price, stderr, r in zip(one["price"], one["stderr"], ref, strict=True):
        assert abs(price - r) < 4 * stderr + 0.01 * r, (price, stderr, r)
    assert out["collect_equal"] and out["collect_finite"]
    assert out["collect_shape"] == [7 * 1024 + 37, 2, 3]
    # 10-day log-returns: mean about -v/2 * t, std about sqrt(v t) (GBM exactly)
    t = 10 / 365
    assert abs(out["collect_std_10d"][0] - 0.6 * np.sqrt(t)) < 4 * 0.6 * np.sqrt(t) / np.sqrt(2 * 7000)


def test_stress_pnl_and_contributions_on_four_devices_equal_one_device(tmp_path):
    """The stress job's Monte Carlo (SVCJ on the bundled book: simulation and full
    revaluation on each path, float64), per-path P&L and Euler contributions, on 4 devices
    and on 1 device of the same 4-device process."""
    mc = json.dumps({"paths": 3000, "seed": 5, "dtype": "float64", "chunk_paths": 1024})
    for devices in (1, 4):
        done = subprocess.run(
            [sys.executable, str(ROOT / "tests" / "scale_child.py"), str(tmp_path / f"d{devices}.npz"), mc,
             "--devices", str(devices)], capture_output=True, text=True, env=_child_env(4), cwd=ROOT, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
    one, four = np.load(tmp_path / "d1.npz"), np.load(tmp_path / "d4.npz")
    assert one["pnl"].shape == (3000, 2) and np.isfinite(one["pnl"]).all() and one["pnl"].std() > 0
    assert np.array_equal(one["pnl"], four["pnl"])
    assert np.array_equal(one["contributions"], four["contributions"])


HEDGE_CHILD = r"""
import jax, numpy as np, jax.numpy as jnp, equinox as eqx, jax.flatten_util
jax.config.update("jax_enable_x64", True)
from hedging import (BlackScholesDelta, EuropeanOption, HedgingProblem, MLPPolicy, TransactionCosts,
                     WhalleyWilmott, evaluate)
from hedging.evaluate import EVAL_BLOCK
from riskengine.models import GBM

assert jax.local_device_count() == 2, jax.local_devices()
problem = HedgingProblem(model=GBM(sigma=0.2), derivative=EuropeanOption(strike=1.0, maturity=0.08), spot=1.0,
                         steps=10, costs=TransactionCosts(proportional=(1e-3,)), dtype=jnp.float64)
strategies = {"mlp": MLPPolicy(["log_moneyness", "time_to_maturity", "prev_hedge"], width=8, depth=2,
                               key=jax.random.key(1), dtype=jnp.float64),
              "delta": BlackScholesDelta(), "ww": WhalleyWilmott(cost=1e-3)}
paths = 3 * EVAL_BLOCK + 123  # odd: the second device gets a padded block
runs = [evaluate(strategies, problem, key=jax.random.key(2), num_paths=paths, devices=d) for d in (1, 2)]
out = {"equal": {n: bool(np.array_equal(runs[0][n], runs[1][n])) for n in strategies},
       "max_diff": max(float(np.abs(runs[0][n] - runs[1][n]).max()) for n in strategies),
       "shape": list(runs[1]["mlp"].shape), "finite": bool(all(np.isfinite(runs[1][n]).all() for n in strategies)),
       "delta_mean": float(runs[1]["delta"].mean()), "delta_std": float(runs[1]["delta"].std())}

# data-parallel training: each epoch's paths split over 2 devices
import importlib
from hedging import Entropic, make_optimizer, train
train_module = importlib.import_module("hedging.train")
trained = [train(strategies["mlp"], Entropic(1.0), problem, key=jax.random.key(3), num_paths=4096, epochs=8,
                 optimizer=make_optimizer(1e-2), epochs_per_call=4, devices=d) for d in (1, 2)]
flat = [jax.flatten_util.ravel_pytree(eqx.filter(r.policy, eqx.is_array))[0] for r in trained]
out["train_max_rel_diff"] = float(jnp.max(jnp.abs(flat[0] - flat[1])) / jnp.max(jnp.abs(flat[0])))
out["train_moved"] = float(jnp.max(jnp.abs(flat[0] - jax.flatten_util.ravel_pytree(
    eqx.filter(strategies["mlp"], eqx.is_array))[0])))
out["loss_diff"] = float(np.max(np.abs(np.subtract(trained[0].loss_history, trained[1].loss_history))))
trainable, static = eqx.partition((strategies["mlp"], Entropic(1.0)), eqx.is_inexact_array)
opt = make_optimizer(1e-2)
fn = train_module._epochs_fn(problem, static, opt, 4096, 2, train_module.local_mesh(2))
hlo = fn.lower(trainable, opt.init(trainable), jax.random.key(3), jnp.uint32(0), jnp.int32(2)).compile().as_text()
out["all_reduce"] = "all-reduce" in hlo
print("RESULT" + __import__("json").dumps(out))
"""


def test_hedge_evaluation_and_training_on_two_devices_equal_one_device():
    """Data-parallel training (each epoch's paths split over 2 devices, gradients summed by
    XLA's partitioner) equals training on 1 device to rounding (float64), and the hedge job's evaluation (policies and baselines on the same streamed paths, float64):
    blocks split over 2 devices give the P&L of 1 device, bitwise for the network and the
    delta hedge; the Whalley–Wilmott band's cube root may move in the last bit (XLA
    vectorises the partitioned program's loops differently)."""
    done = subprocess.run([sys.executable, "-c", HEDGE_CHILD], capture_output=True, text=True, env=_child_env(2),
                          cwd=ROOT, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.split("RESULT", 1)[1])
    assert out["equal"]["mlp"] and out["equal"]["delta"], out
    assert out["max_diff"] <= 1e-15 and out["finite"] and out["shape"] == [3 * 16384 + 123]
    assert out["all_reduce"]  # the paths really are split: the gradient needs a cross-device sum
    assert out["train_moved"] > 1e-3  # training did something ...
    assert out["train_max_rel_diff"] < 1e-10 and out["loss_diff"] < 1e-12  # ... the same on 2 devices
    # independent sanity: the delta hedge's P&L averages minus the BS price minus its costs
    # (costs are about 1e-3 x sum |trades| ~ 1e-3 here), within 4 standard errors
    from riskengine.analytic import black_scholes_price

    bs = float(black_scholes_price(spot=1.0, strike=1.0, maturity=0.08, vol=0.2, rate=0.0, dividend=0.0,
                                   is_call=True))
    se = out["delta_std"] / np.sqrt(out["shape"][0])
    assert -bs - 3e-3 - 4 * se < out["delta_mean"] < -bs + 4 * se
