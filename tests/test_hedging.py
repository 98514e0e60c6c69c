"""Deep hedging: objectives against closed forms, gradients against finite differences,
training against Black–Scholes theory, resume against uninterrupted training."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

from hedging import (
    OCE,
    BlackScholesDelta,
    Entropic,
    EuropeanOption,
    ExpectedShortfall,
    HedgingProblem,
    MeanVariance,
    MLPPolicy,
    NoHedge,
    NoTransactionBandPolicy,
    RecurrentPolicy,
    TransactionCosts,
    WhalleyWilmott,
    evaluate,
    make_optimizer,
    terminal_pnl,
    train,
)
from hedging.train import loss_fn
from riskengine.analytic import black_scholes_price
from riskengine.models import GBM, Heston

F64 = jnp.float64
SIGMA, T, STEPS = 0.2, 20 / 250, 20


def gbm_problem(cost=0.0, *, spot=1.0, steps=STEPS, dtype=F64):
    return HedgingProblem(
        model=GBM(sigma=SIGMA), derivative=EuropeanOption(strike=spot, maturity=T), spot=spot, steps=steps,
        costs=TransactionCosts(proportional=(cost,)), dtype=dtype,
    )


def bs_call(spot, strike=None):
    strike = spot if strike is None else strike
    return float(black_scholes_price(spot=spot, strike=strike, maturity=T, rate=0.0, dividend=0.0, vol=SIGMA,
                                     is_call=True))


# --- objectives ---------------------------------------------------------------------------------


def test_entropic_is_finite_for_huge_losses():
    pnl = jnp.asarray([-1e4, 0.0], F64)
    # log((e^{1e4} + 1) / 2) = 1e4 - log 2 (to double precision)
    assert float(Entropic(1.0).loss(pnl)) == pytest.approx(1e4 - math.log(2.0), rel=1e-12)
    assert Entropic(1.0).price(np.asarray([-1e4, 0.0])) == pytest.approx(1e4 - math.log(2.0), rel=1e-12)
    g = jax.grad(Entropic(2.0).loss)(jnp.asarray([-1e4, 0.0, 5.0], F64))
    assert np.all(np.isfinite(np.asarray(g)))


def test_objectives_match_closed_forms_for_normal_pnl():
    rng = np.random.default_rng(0)
    mu, sd, n = 0.3, 1.5, 400_000
    pnl = rng.normal(mu, sd, n)
    a = 0.7
    # entropic of N(mu, sd^2): -mu + a sd^2 / 2
    e = Entropic(a)
    assert abs(e.price(pnl) - (-mu + a * sd**2 / 2)) < 4 * e.price_stderr(pnl)
    # ES_0.95 of the loss -X: -mu + sd * phi(z) / (1 - 0.95)
    es = ExpectedShortfall(level=0.95)
    exact = -mu + sd * stats.norm.pdf(stats.norm.ppf(0.95)) / 0.05
    assert abs(es.price(pnl) - exact) < 4 * es.price_stderr(pnl)
    # mean-variance
    mv = MeanVariance(risk_aversion=a)
    assert abs(mv.price(pnl) - (-mu + a * sd**2 / 2)) < 4 * mv.price_stderr(pnl)
    # the OCE family contains the entropic risk and CVaR
    assert OCE("exponential", risk_aversion=a).price(pnl) == pytest.approx(e.price(pnl), abs=1e-7)
    assert OCE("cvar", level=0.95).price(pnl) == pytest.approx(es.price(pnl), abs=1e-6)


def test_rockafellar_uryasev_threshold_learns_var_and_es():
    rng = np.random.default_rng(1)
    pnl = jnp.asarray(rng.normal(0.0, 1.0, 200_000), F64)
    objective = ExpectedShortfall(level=0.9)
    opt = make_optimizer(0.05)
    state = opt.init(eqx.filter(objective, eqx.is_inexact_array))

    @eqx.filter_jit
    def step(objective, state):
        loss, grads = eqx.filter_value_and_grad(lambda o: o.loss(pnl))(objective)
        updates, state = opt.update(grads, state)
        return eqx.apply_updates(objective, updates), state, loss

    for _ in range(600):
        objective, state, loss = step(objective, state)
    assert float(objective.threshold) == pytest.approx(stats.norm.ppf(0.9), abs=0.02)
    assert float(loss) == pytest.approx(objective.price(np.asarray(pnl)), abs=2e-3)


# --- P&L accounting -----------------------------------------------------------------------------


def test_unhedged_entropic_price_matches_quadrature():
    """rho(-payoff) = log E[exp(a payoff)] / a, by quadrature against the lognormal law."""
    a = 5.0
    problem = gbm_problem()
    pnl = evaluate({"none": NoHedge()}, problem, key=jax.random.key(3), num_paths=200_000)["none"]

    def integrand(z):
        s = math.exp(-0.5 * SIGMA**2 * T + SIGMA * math.sqrt(T) * z)
        return math.exp(a * max(s - 1.0, 0.0)) * stats.norm.pdf(z)

    exact = math.log(integrate.quad(integrand, -12, 12, limit=200)[0]) / a
    e = Entropic(a)
    assert abs(e.price(pnl) - exact) < 4 * e.price_stderr(pnl)


def test_delta_hedge_pnl_is_minus_bs_price_on_average_and_shrinks_with_steps():
    """Without costs the self-financing gains are a martingale: E[PL] = -BS price; the
    hedging error's sd falls like 1/sqrt(steps) (Boyle–Emanuel: sd ~ sqrt(pi/4n) sigma vega)."""
    sds = []
    for steps in (10, 40):
        pnl = evaluate({"d": BlackScholesDelta()}, gbm_problem(steps=steps), key=jax.random.key(4),
                       num_paths=100_000)["d"]
        se = pnl.std() / math.sqrt(pnl.size)
        assert abs(pnl.mean() + bs_call(1.0)) < 4 * se
        sds.append(pnl.std())
        vega = stats.norm.pdf(0.5 * SIGMA * math.sqrt(T)) * math.sqrt(T)
        assert pnl.std() == pytest.approx(math.sqrt(math.pi / (4 * steps)) * SIGMA * vega, rel=0.15)
    assert sds[0] / sds[1] == pytest.approx(2.0, rel=0.1)


def test_costs_are_charged_on_every_trade_including_the_first():
    problem = gbm_problem(cost=1e-2)
    paths = problem.simulate(jax.random.key(5), 64)
    pnl_cost, hedges = terminal_pnl(BlackScholesDelta(), problem, paths)
    pnl_free, _ = terminal_pnl(BlackScholesDelta(), gbm_problem(cost=0.0), paths)
    h = np.asarray(hedges[..., 0])
    s = np.asarray(paths.spot)
    trades = np.diff(h, axis=0, prepend=0.0)
    expected = 1e-2 * np.sum(np.abs(trades) * s[:-1], axis=0)
    np.testing.assert_allclose(np.asarray(pnl_free - pnl_cost), expected, rtol=1e-12)


def test_whalley_wilmott_band_matches_formula():
    problem = gbm_problem(cost=1e-3)
    paths = problem.simulate(jax.random.key(6), 256)
    _, hedges = terminal_pnl(WhalleyWilmott(cost=1e-3, risk_aversion=1.0), problem, paths)
    from hedging import MarketView

    view = MarketView.of(problem, paths)
    delta, gamma = np.asarray(view.delta()), np.asarray(view.gamma())
    width = (1.5 * 1e-3 * np.asarray(view.spot) * gamma**2) ** (1 / 3)
    h = np.asarray(hedges[..., 0])
    assert np.all(h >= delta - width - 1e-12) and np.all(h <= delta + width + 1e-12)
    prev = np.vstack([np.zeros((1, h.shape[1])), h[:-1]])
    inside = (prev >= delta - width) & (prev <= delta + width)
    np.testing.assert_array_equal(h[inside], prev[inside])  # no trade inside the band


@pytest.mark.parametrize("spot", [1.0, 100.0])
def test_spot_gamma_feature_is_phi_d1_over_total_vol_for_any_unit_of_spot(spot):
    from hedging import MarketView

    problem = gbm_problem(spot=spot)
    paths = problem.simulate(jax.random.key(8), 128)
    view = MarketView.of(problem, paths)
    s, tau = np.asarray(view.spot), np.asarray(view.time_to_maturity)
    std = SIGMA * np.sqrt(tau)
    d1 = (np.log(s / spot) + 0.5 * std**2) / std
    np.testing.assert_allclose(np.asarray(view.feature("spot_gamma")), stats.norm.pdf(d1) / std, rtol=1e-12)
    assert view.stack(("spot_gamma",)).shape == s.shape + (1,)


def test_variance_swap_price_is_a_martingale_under_heston():
    model = Heston(v0=0.04, kappa=1.0, theta=0.04, sigma=2.0, rho=-0.7)
    problem = HedgingProblem(model=model, derivative=EuropeanOption(strike=100.0, maturity=30 / 365), spot=100.0,
                             steps=30, substeps=2, instruments=("underlying", "variance_swap"), dtype=F64)
    paths = problem.simulate(jax.random.key(7), 30_000)
    vs = np.asarray(paths.prices[..., 1])
    initial = vs[0, 0]
    # E[int_0^T v] = theta T + (v0 - theta)(1 - e^{-kT})/k = 0.04 T here
    assert initial == pytest.approx(0.04 * 30 / 365, rel=1e-12)
    for t in (10, 30):
        se = vs[t].std() / math.sqrt(vs.shape[1])
        # discretisation allowance: the trapezoid of the QE variance path, 1e-3 relative
        assert abs(vs[t].mean() - initial) < 4 * se + 1e-3 * initial


def test_band_network_started_at_delta_is_the_delta_hedge_and_a_crossed_band_is_a_trap():
    problem = gbm_problem(cost=1e-3)
    paths = problem.simulate(jax.random.key(30), 256)
    delta = np.asarray(terminal_pnl(BlackScholesDelta(), problem, paths)[1])
    started = NoTransactionBandPolicy(width=8, depth=2, start="delta", key=jax.random.key(31), dtype=F64)
    np.testing.assert_array_equal(np.asarray(terminal_pnl(started, problem, paths)[1]), delta)
    random = NoTransactionBandPolicy(width=8, depth=2, key=jax.random.key(31), dtype=F64)
    assert np.max(np.abs(np.asarray(terminal_pnl(random, problem, paths)[1]) - delta)) > 1e-3

    # the trap that start="delta" avoids: with the edges crossed (both widths below zero) the
    # hedge is the upper edge, so the lower width has no gradient at all
    def loss(bias):
        policy = eqx.tree_at(lambda p: p.layers[-1].bias, started, bias)
        return Entropic(1.0).loss(terminal_pnl(policy, problem, paths)[0])

    crossed, proper = jax.grad(loss)(jnp.asarray([-1.0, -1.0], F64)), jax.grad(loss)(jnp.asarray([0.05, 0.05], F64))
    assert float(crossed[0]) == 0.0 and float(crossed[1]) != 0.0
    assert np.all(np.asarray(proper) != 0.0)


# --- gradients ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["mlp", "recurrent", "ntb"])
def test_gradients_match_finite_differences(kind):
    problem = gbm_problem(cost=1e-3)
    key = jax.random.key(8)
    if kind == "mlp":
        policy = MLPPolicy(["log_moneyness", "time_to_maturity", "volatility", "prev_hedge"], key=key, dtype=F64)
    elif kind == "recurrent":
        policy = RecurrentPolicy(["log_moneyness", "time_to_maturity"], width=8, key=key, dtype=F64)
    else:
        policy = NoTransactionBandPolicy(width=8, depth=2, key=key, dtype=F64)
    objective = Entropic(3.0)
    trainable, static = eqx.partition((policy, objective), eqx.is_inexact_array)

    @jax.jit
    def f(t):
        return loss_fn(t, static, problem, jax.random.key(9), 512)

    grads = jax.jit(jax.grad(f))(trainable)
    flat, unravel = jax.flatten_util.ravel_pytree(trainable)
    g = jax.flatten_util.ravel_pytree(grads)[0]
    rng = np.random.default_rng(0)
    for _ in range(3):
        direction = jnp.asarray(rng.normal(size=flat.shape), F64)
        direction = direction / jnp.linalg.norm(direction)
        eps = 1e-5
        fd = (f(unravel(flat + eps * direction)) - f(unravel(flat - eps * direction))) / (2 * eps)
        assert float(g @ direction) == pytest.approx(float(fd), rel=1e-5, abs=1e-10)


@pytest.mark.parametrize("base, instruments, features", [
    ("none", 1, ["log_moneyness", "time_to_maturity", "volatility", "prev_hedge"]),
    ("bs_delta", 2, ["prev_hedge", "log_moneyness"]),
    ("none", 1, ["prev_hedge"]),
])
def test_recurrent_mlp_rollout_equals_the_scan_of_decide(base, instruments, features):
    """The hand-written reverse pass (hedging.rollout) against JAX's differentiation of the
    plain encode/decide scan: positions and every cotangent (weights, biases, market inputs),
    float64, to rounding."""
    from hedging import MarketView, Policy

    model = Heston(v0=0.04, kappa=1.0, theta=0.04, sigma=0.5, rho=-0.7) if instruments == 2 else GBM(sigma=0.2)
    problem = HedgingProblem(model=model, derivative=EuropeanOption(strike=1.0, maturity=0.08), spot=1.0, steps=7,
                             instruments=("underlying", "variance_swap")[:instruments], dtype=F64)
    paths = problem.simulate(jax.random.key(20), 300)
    view = MarketView.of(problem, paths)
    policy = MLPPolicy(features, num_instruments=instruments, width=8, depth=3, base=base, key=jax.random.key(21),
                       dtype=F64)
    if base != "none":  # give the zero-initialised last layer some weight
        policy = eqx.tree_at(lambda p: p.layers[-1].weight, policy, 0.3 * jnp.ones_like(policy.layers[-1].weight))
    weights = jax.random.normal(jax.random.key(22), (7, 300, instruments), F64)

    def scalar(fn):
        def f(policy, spot):
            v = eqx.tree_at(lambda v: v.spot, view, spot)
            return jnp.sum(weights * jnp.sin(3.0 * fn(policy, v)))
        return f

    fast = scalar(lambda p, v: p.positions(v, unroll=1))
    plain = scalar(lambda p, v: Policy.positions(p, v, unroll=1))
    np.testing.assert_allclose(fast(policy, view.spot), plain(policy, view.spot), rtol=1e-13)
    g_fast = jax.grad(fast, argnums=(0, 1))(policy, view.spot)
    g_plain = jax.grad(plain, argnums=(0, 1))(policy, view.spot)
    for a, b in zip(jax.tree.leaves(g_fast), jax.tree.leaves(g_plain), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-13)


def test_per_date_network_equals_one_product_over_all_dates():
    """``recurrent_mlp_rollout(feedback=False)`` (the band network's forward, date by date with
    the hand-written reverse pass) against the plain perceptron on all dates at once, values
    and gradients, float64."""
    from hedging.policies import _perceptron
    from hedging.rollout import recurrent_mlp_rollout

    policy = NoTransactionBandPolicy(width=8, depth=3, key=jax.random.key(23), dtype=F64)
    market = jax.random.normal(jax.random.key(24), (6, 200, 3), F64)
    weights = jax.random.normal(jax.random.key(25), (6, 200, 2), F64)

    def fast(layers):
        pairs = tuple((layer.weight.T, layer.bias) for layer in layers)
        return jnp.sum(weights * jnp.tanh(recurrent_mlp_rollout(pairs, market, jnp.zeros_like(weights), feedback=False)))

    def plain(layers):
        return jnp.sum(weights * jnp.tanh(_perceptron(layers, market)))

    np.testing.assert_allclose(fast(policy.layers), plain(policy.layers), rtol=1e-13)
    for a, b in zip(jax.tree.leaves(jax.grad(fast)(policy.layers)), jax.tree.leaves(jax.grad(plain)(policy.layers)),
                    strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-13)


# --- training -----------------------------------------------------------------------------------


def test_without_costs_the_learned_hedge_approaches_bs_delta_and_price():
    """Without costs the market is complete up to discrete rebalancing: the learned hedge
    should be close to BS delta, and its price between the BS price (a lower bound: the
    entropic risk is at least the risk-neutral mean) and the delta hedge's price plus a
    training allowance of 25% of the delta hedge's risk premium."""
    import optax

    spot = 100.0
    problem = gbm_problem(spot=spot, steps=10, dtype=jnp.float32)
    objective = Entropic(0.5)
    policy = MLPPolicy(["log_moneyness", "time_to_maturity", "volatility"], width=32, depth=2,
                       key=jax.random.key(10))
    epochs = 800
    result = train(policy, objective, problem, key=jax.random.key(11), num_paths=2048, epochs=epochs,
                   optimizer=make_optimizer(optax.cosine_decay_schedule(1e-2, epochs, alpha=0.05)),
                   epochs_per_call=100)
    pnl = evaluate({"policy": result.policy, "delta": BlackScholesDelta()}, problem, key=jax.random.key(12),
                   num_paths=100_000)
    price, delta_price, bs = objective.price(pnl["policy"]), objective.price(pnl["delta"]), bs_call(spot)
    se = objective.price_stderr(pnl["policy"])
    assert bs - 4 * se < price < delta_price + 0.25 * (delta_price - bs) + 4 * se
    # the hedge ratio near the money, where it matters
    from hedging import sample_hedges

    sample = sample_hedges(result.policy, problem, key=jax.random.key(13), num_paths=4000)
    near = np.abs(sample["log_moneyness"]) < 0.05
    assert np.mean(np.abs(sample["hedge"][near] - sample["bs_delta"][near])) < 0.05


def test_with_costs_trained_price_beats_bs_delta():
    problem = gbm_problem(cost=2e-3, dtype=jnp.float32)
    objective = Entropic(1.0)
    policy = NoTransactionBandPolicy(width=16, depth=2, key=jax.random.key(14))
    result = train(policy, objective, problem, key=jax.random.key(15), num_paths=4096, epochs=200,
                   optimizer=make_optimizer(3e-3), epochs_per_call=50)
    pnl = evaluate({"policy": result.policy, "delta": BlackScholesDelta(), "ww": WhalleyWilmott(cost=2e-3)},
                   problem, key=jax.random.key(16), num_paths=100_000)
    price, delta_price = objective.price(pnl["policy"]), objective.price(pnl["delta"])
    se = math.hypot(objective.price_stderr(pnl["policy"]), objective.price_stderr(pnl["delta"]))
    assert price < delta_price - 2 * se


def test_resume_from_checkpoint_equals_uninterrupted_training(tmp_path):
    problem = gbm_problem(cost=1e-3, dtype=jnp.float32)
    objective = ExpectedShortfall(level=0.9)
    policy = MLPPolicy(["log_moneyness", "time_to_maturity", "prev_hedge"], width=8, depth=2, key=jax.random.key(17))
    common = dict(key=jax.random.key(18), num_paths=256, epochs=40, epochs_per_call=10)
    full = train(policy, objective, problem, optimizer=make_optimizer(1e-2), **common)
    first = train(policy, objective, problem, optimizer=make_optimizer(1e-2), checkpoint_dir=tmp_path,
                  stop_after=20, **common)
    assert first.epochs == 20
    resumed = train(policy, objective, problem, optimizer=make_optimizer(1e-2), checkpoint_dir=tmp_path,
                    resume=True, **common)
    assert resumed.epochs == 40
    assert resumed.loss_history == full.loss_history
    for a, b in zip(jax.tree.leaves(eqx.filter((resumed.policy, resumed.objective), eqx.is_array)),
                    jax.tree.leaves(eqx.filter((full.policy, full.objective), eqx.is_array)), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_epochs_per_call_does_not_change_training():
    """7 epochs as 3 + 3 + 1 (the short last call reuses the compiled loop) or as one call of
    7: the same losses and weights, bit for bit (each epoch's paths are keyed by its number)."""
    problem = gbm_problem(cost=1e-3, dtype=jnp.float32)
    policy = MLPPolicy(["log_moneyness", "time_to_maturity", "prev_hedge"], width=8, depth=2, key=jax.random.key(21))
    runs = [train(policy, Entropic(1.0), problem, key=jax.random.key(22), num_paths=256, epochs=7,
                  optimizer=make_optimizer(1e-2), epochs_per_call=k) for k in (3, 7)]
    assert len(runs[0].loss_history) == 7 and runs[0].loss_history == runs[1].loss_history
    assert runs[0].compile_seconds > 0.0
    for a, b in zip(jax.tree.leaves(eqx.filter(runs[0].policy, eqx.is_array)),
                    jax.tree.leaves(eqx.filter(runs[1].policy, eqx.is_array)), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_early_stopping_stops():
    problem = gbm_problem(dtype=jnp.float32)
    policy = MLPPolicy(["log_moneyness"], width=4, depth=1, key=jax.random.key(19))
    result = train(policy, Entropic(1.0), problem, key=jax.random.key(20), num_paths=64, epochs=10_000,
                   optimizer=make_optimizer(1e-9), epochs_per_call=10, patience=30, min_delta=1.0)
    assert result.stopped_early and result.epochs <= 40


# --- the hedge job ------------------------------------------------------------------------------

JOB = {
    "job": "hedge",
    "model": {"name": "gbm", "params": {"sigma": 0.2}},
    "market": {"spot": 1.0, "rate": 0.0},
    "derivative": {"type": "european", "option": "call", "strike": 1.0, "maturity": 0.08},
    "hedge": {"instruments": ["underlying"], "steps": 10, "cost": 1e-3},
    "policy": {"type": "mlp", "features": ["log_moneyness", "time_to_maturity", "prev_hedge"], "width": 8,
               "depth": 2},
    "objective": {"type": "entropic", "risk_aversion": 1.0},
    "train": {"paths": 512, "epochs": 6, "learning_rate": 1e-3, "seed": 1, "epochs_per_call": 3},
    "evaluate": {"paths": 4096, "seed": 2, "baselines": ["no_hedge", "bs_delta", "whalley_wilmott"]},
}


def _write(tmp_path, data):
    import yaml

    path = tmp_path / "hedge.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_hedge_job_outputs_and_saved_policy(tmp_path):
    import json

    import pandas as pd

    from hedging import MarketView, load_policy
    from riskengine.cli import main

    out = tmp_path / "out"
    assert main(["run", str(_write(tmp_path, JOB)), "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    for key in ("price", "baselines", "train_seconds", "loss_history"):
        assert key in summary
    assert set(summary["baselines"]) == {"no_hedge", "bs_delta", "whalley_wilmott"}
    assert len(summary["loss_history"]) == 6
    assert summary["reference_price"] == pytest.approx(bs_call(1.0), rel=1e-10)
    pnl = pd.read_parquet(out / "pnl.parquet")
    assert list(pnl.columns) == ["policy", "no_hedge", "bs_delta", "whalley_wilmott"] and len(pnl) == 4096
    assert summary["price"] == pytest.approx(Entropic(1.0).price(pnl["policy"].to_numpy()), rel=1e-12)
    assert "<img" in (out / "report.html").read_text()
    # the saved policy is the trained one: same hedges on the same paths
    policy = load_policy(out)
    problem = gbm_problem(cost=1e-3, steps=10, dtype=jnp.float32)
    paths = problem.simulate(jax.random.key(0), 64)
    from hedging.policies import hedge_positions

    h = np.asarray(hedge_positions(policy, MarketView.of(problem, paths)))
    assert h.shape == (10, 64, 1) and np.all(np.isfinite(h))
    # --paths caps the training batch; --seed moves both seeds
    out2 = tmp_path / "out2"
    assert main(["run", str(_write(tmp_path, JOB)), "--out", str(out2), "--paths", "256", "--seed", "5",
                 "--no-progress"]) == 0
    assert len(pd.read_parquet(out2 / "pnl.parquet")) == 256
    # the allocate job reads the hedge run: weights across the strategies
    alloc = {"job": "allocate", "returns": {"from": str(out)}, "objective": {"type": "min_cvar", "alpha": 0.9},
             "constraints": {"long_only": True, "budget": 1.0}}
    import yaml

    (tmp_path / "alloc.yaml").write_text(yaml.safe_dump(alloc))
    assert main(["run", str(tmp_path / "alloc.yaml"), "--out", str(tmp_path / "alloc"), "--no-progress"]) == 0
    weights = json.loads((tmp_path / "alloc" / "summary.json").read_text())["weights"]
    assert set(weights) == {"policy", "no_hedge", "bs_delta", "whalley_wilmott"}
    assert sum(weights.values()) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"hedge": {"instruments": ["underlying", "variance_swap"]}}, "hedge.instruments"),
        ({"policy": {"type": "mlp", "features": ["log_moneyness", "gamma"]}}, "policy.features"),
        ({"hedge": {"cost": -1e-3}}, "hedge.cost"),
        ({"market": {"spot": 1.0, "dividend": 0.02}}, "market.dividend"),
        ({"objective": {"type": "expected_shortfall", "level": 1.5}}, "objective.level"),
        ({"train": {"paths": 512, "epochs": 0}}, "train.epochs"),
        ({"derivative": {"type": "european", "option": "call", "strike": -1.0, "maturity": 0.08}}, "derivative.strike"),
        ({"policy": {"type": "mlp", "start": "delta"}}, "policy.start"),
    ],
)
def test_hedge_job_rejects_bad_input(tmp_path, capsys, patch, message):
    from riskengine.cli import main

    out = tmp_path / "out"
    code = main(["run", str(_write(tmp_path, {**JOB, **patch})), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_hedge_job_killed_and_resumed_equals_uninterrupted(tmp_path):
    """`riskengine run --resume` after a kill mid-training gives the uninterrupted result."""
    import json
    import subprocess
    import sys
    import time

    from riskengine.cli import main

    config = {**JOB, "train": {"paths": 2048, "epochs": 3000, "learning_rate": 1e-3, "seed": 3,
                               "epochs_per_call": 20},
              "evaluate": {"paths": 4096, "seed": 4, "baselines": []}}
    path = _write(tmp_path, config)
    assert main(["run", str(path), "--out", str(tmp_path / "full"), "--no-progress"]) == 0
    part = tmp_path / "part"
    saved = tmp_path / "part.checkpoint" / "hedge-train" / "checkpoint.eqx"
    proc = subprocess.Popen([sys.executable, "-m", "riskengine.cli", "run", str(path), "--out", str(part),
                             "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not saved.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    with open(saved, "rb") as f:
        done = json.loads(f.readline())["done"]
    assert 0 < done < 3000 and not part.exists()  # killed mid-training, nothing written
    assert main(["run", str(path), "--out", str(part), "--no-progress", "--resume"]) == 0
    full = json.loads((tmp_path / "full" / "summary.json").read_text())
    resumed = json.loads((part / "summary.json").read_text())
    assert resumed["loss_history"] == full["loss_history"] and resumed["price"] == full["price"]
