"""The market_making job against Avellaneda & Stoikov (2008), closed forms for symmetric
quoting, and the exact finite-inventory solution of Guéant, Lehalle & Fernandez-Tapia (2013)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.linalg import eigh

from riskengine.analytic.characteristic import heston_cf
from riskengine.cli import main
from riskengine.config import validate
from riskengine.jobs import JOBS, execute
from riskengine.jobs import market_making as job
from riskengine.market_making import (
    ArithmeticMid,
    AvellanedaStoikov,
    FillModel,
    LogModelMid,
    Symmetric,
    glft_offsets,
    price_volatility,
    simulate_market_making,
)
from riskengine.models import GBM, Heston, Merton
from riskengine.models.brownian import Brownian

DTYPE = "float64"
CONFIGS = Path(__file__).resolve().parents[1] / "configs"

# Avellaneda & Stoikov (2008), Quantitative Finance 8(3), section 4, tables 1-3
# (s = 100, T = 1, sigma = 2, dt = 0.005, k = 1.5, A = 140, 1000 simulations):
# gamma -> inventory strategy (spread, profit, std(profit), std(final q)) and the
# symmetric strategy's (spread, profit, std(profit), std(final q)).
PAPER = {
    0.1: {"inventory": (1.29, 62.94, 5.89, 2.80), "symmetric": (1.29, 67.21, 13.43, 8.66)},
    0.01: {"inventory": (1.33, 66.78, 8.76, 4.70), "symmetric": (1.33, 67.36, 13.40, 8.65)},
    0.5: {"inventory": (1.15, 33.92, 4.72, 1.88), "symmetric": (1.15, 66.20, 14.53, 9.06)},
}


def paper_config(gamma: float, **strategy) -> dict:
    return {
        "job": "market_making",
        "model": {"name": "brownian", "params": {"sigma": 2.0}},
        "market": {"spot": 100.0},
        "strategy": {"type": "avellaneda_stoikov", "gamma": gamma, "k": 1.5, "A": 140.0, **strategy},
        "simulation": {"horizon": 1.0, "dt": 0.005, "paths": 1000, "seed": 3, "dtype": DTYPE},
    }


def run_job(data: dict, out) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    return execute(job.MarketMakingJob(), validate(job.Config, data), out).summary


def f64(x):
    return jnp.asarray(x, DTYPE)


# --- the paper's table -------------------------------------------------------------------


def test_avellaneda_stoikov_table(tmp_path):
    """For every gamma the inventory strategy has lower profit and final-inventory sds than
    symmetric quoting with the same mean spread; the gamma = 0.1 and 0.01 rows match the
    paper within 5% on profit and 20% on the sds."""
    for gamma, row in PAPER.items():
        s = run_job(paper_config(gamma), tmp_path / f"g{gamma}")
        assert s["dtype"] == DTYPE and s["paths"] == 1000 and s["steps"] == 200
        ours, sym = s["strategy"], s["symmetric"]
        assert ours["profit_std"] < sym["profit_std"], gamma
        assert ours["final_inventory_std"] < sym["final_inventory_std"], gamma
        assert sym["spread_mean"] == pytest.approx(ours["spread_mean"], rel=1e-12)
        # the AS spread with its gamma sigma^2 (T - t) term, averaged over the 200 quoting times
        mean_tau = np.mean(1.0 - 0.005 * np.arange(200))
        expected_spread = 2 / gamma * math.log(1 + gamma / 1.5) + gamma * 4.0 * mean_tau
        assert ours["spread_mean"] == pytest.approx(expected_spread, rel=1e-9)
        if gamma == 0.5:
            continue  # the printed row does not follow from the formulas (see RESULTS.md)
        _, profit, profit_sd, q_sd = row["inventory"]
        assert ours["profit_mean"] == pytest.approx(profit, rel=0.05), gamma
        assert ours["profit_std"] == pytest.approx(profit_sd, rel=0.20), gamma
        assert ours["final_inventory_std"] == pytest.approx(q_sd, rel=0.20), gamma
        _, profit, profit_sd, q_sd = row["symmetric"]
        assert sym["profit_mean"] == pytest.approx(profit, rel=0.05), gamma
        assert sym["profit_std"] == pytest.approx(profit_sd, rel=0.20), gamma
        assert sym["final_inventory_std"] == pytest.approx(q_sd, rel=0.20), gamma


def test_paper_spreads_without_time_term(tmp_path):
    """With spread_time_term: false the mean spread is the paper's printed one,
    (2/gamma) ln(1 + gamma/k), and the gamma = 0.1 / 0.01 rows still match."""
    for gamma, row in PAPER.items():
        s = run_job(paper_config(gamma, spread_time_term=False), tmp_path / f"g{gamma}")
        assert round(s["spread_mean"], 2) == row["inventory"][0]
        assert s["profit_std"] < s["symmetric"]["profit_std"]
        assert s["final_inventory_std"] < s["symmetric"]["final_inventory_std"]
        if gamma != 0.5:
            _, profit, profit_sd, q_sd = row["inventory"]
            assert s["profit_mean"] == pytest.approx(profit, rel=0.05)
            assert s["profit_std"] == pytest.approx(profit_sd, rel=0.20)
            assert s["final_inventory_std"] == pytest.approx(q_sd, rel=0.20)


# --- symmetric quoting: closed forms ----------------------------------------------------


def symmetric_moments(*, half: float, A: float, k: float, sigma: float, dt: float, steps: int, rule: str):
    """Exact moments of symmetric quoting at half-spread ``half`` on a driftless mid with
    variance sigma^2 dt per step, independent of the fills: each side fills with probability
    p per step, profit = half * (fills) + sum_i q_(i+1) dS_i."""
    rate_dt = A * math.exp(-k * half) * dt
    p = min(rate_dt, 1.0) if rule == "linear" else -math.expm1(-rate_dt)
    v = 2 * p * (1 - p)  # variance of one step's inventory change
    mean = 2 * half * p * steps
    var = half**2 * steps * v + sigma**2 * dt * v * steps * (steps + 1) / 2
    return mean, math.sqrt(var), math.sqrt(steps * v)


def sd_stderr(x: np.ndarray) -> float:
    """Standard error of the sample sd, sd * sqrt((kurtosis - 1) / (4 n))."""
    centred = x - x.mean()
    kurt = np.mean(centred**4) / np.mean(centred**2) ** 2
    return float(x.std() * math.sqrt((kurt - 1) / (4 * x.size)))


@pytest.mark.parametrize(("rule", "increments"), [("linear", "binomial"), ("poisson", "gaussian")])
def test_symmetric_quoting_closed_form(rule, increments):
    half, A, k, sigma, steps, n = 0.7, 140.0, 1.5, 2.0, 200, 4000
    dt = 1.0 / steps
    result = simulate_market_making(
        Symmetric(half_spread=f64(half)),
        ArithmeticMid(Brownian(sigma=f64(sigma), increments=increments)),
        FillModel(A=f64(A), k=f64(k), rule=rule),
        key=jax.random.key(11), spot=100.0, horizon=1.0, num_steps=steps, num_paths=n, dtype=DTYPE,
        batch_size=1024,
    )
    mean, sd, q_sd = symmetric_moments(half=half, A=A, k=k, sigma=sigma, dt=dt, steps=steps, rule=rule)
    assert abs(result.profit.mean() - mean) < 4 * sd / math.sqrt(n)
    assert abs(result.profit.std() - sd) < 4 * sd_stderr(result.profit)
    assert abs(result.final_inventory.mean()) < 4 * q_sd / math.sqrt(n)
    assert abs(result.final_inventory.std() - q_sd) < 4 * sd_stderr(result.final_inventory)
    assert result.spread_mean == pytest.approx(2 * half, rel=1e-12)
    assert np.all(result.final_inventory == np.round(result.final_inventory))


def test_move_then_fill_adverse_selection_closed_form():
    """timing: move_then_fill. With the mid moving e = +-sigma sqrt(dt) before the standing
    quotes fill, a buy marks at delta + e and a sale at delta - e, each filled with
    p(x) = A exp(-k x) dt: E[profit] = N [(d + e) p(d + e) + (d - e) p(d - e)] and the
    inventory steps have variance p1(1 - p1) + p2(1 - p2) + (p1 - p2)^2."""
    half, A, k, sigma, steps, n = 0.7, 140.0, 1.5, 2.0, 200, 4000
    dt = 1.0 / steps
    result = simulate_market_making(
        Symmetric(half_spread=f64(half)), ArithmeticMid(Brownian(sigma=f64(sigma))), FillModel(A=f64(A), k=f64(k)),
        key=jax.random.key(13), spot=100.0, horizon=1.0, num_steps=steps, num_paths=n, dtype=DTYPE,
        timing="move_then_fill",
    )
    e = sigma * math.sqrt(dt)
    p1, p2 = A * math.exp(-k * (half + e)) * dt, A * math.exp(-k * (half - e)) * dt
    mean = steps * ((half + e) * p1 + (half - e) * p2)
    q_sd = math.sqrt(steps * (p1 * (1 - p1) + p2 * (1 - p2) + (p1 - p2) ** 2))
    assert mean < 2 * half * A * math.exp(-k * half) * dt * steps  # adverse selection costs
    assert abs(result.profit.mean() - mean) < 4 * result.profit.std() / math.sqrt(n)
    assert abs(result.final_inventory.std() - q_sd) < 4 * sd_stderr(result.final_inventory)


def test_clip_at_mid_keeps_quotes_on_their_side():
    """At gamma = 0.5 the AS skew 2 q (T - t) exceeds the half-spread 0.575 once |q| >= 1
    early on, so the ask goes below the mid (or the bid above it) unless clip_at_mid."""
    strategy = AvellanedaStoikov(gamma=f64(0.5), k=f64(1.5), sigma=f64(2.0), time_term=False)
    kwargs = dict(key=jax.random.key(7), spot=100.0, horizon=1.0, num_steps=200, num_paths=64, dtype=DTYPE)
    mid, fills = ArithmeticMid(Brownian(sigma=f64(2.0))), FillModel(A=f64(140.0), k=f64(1.5))
    for clip in (False, True):
        sample = simulate_market_making(strategy, mid, fills, clip_at_mid=clip, **kwargs).sample
        bid, ask, m = sample["bid"][:-1], sample["ask"][:-1], sample["mid"][:-1]
        crossed = np.any(ask < m - 1e-12) or np.any(bid > m + 1e-12)
        assert crossed != clip


def test_symmetric_mean_profit_on_a_jump_mid():
    """On any martingale mid independent of the fills, E[profit] = 2 half p N: here Merton
    jumps through the generic riskengine model step."""
    half, A, k, steps, n = 0.7, 140.0, 1.5, 100, 4000
    dt = 1.0 / steps
    model = Merton(sigma=0.3, jump_intensity=10.0, jump_mean=-0.05, jump_vol=0.1)
    result = simulate_market_making(
        Symmetric(half_spread=f64(half)), LogModelMid(model), FillModel(A=f64(A), k=f64(k)),
        key=jax.random.key(5), spot=100.0, horizon=1.0, num_steps=steps, num_paths=n, dtype=DTYPE,
    )
    p = A * math.exp(-k * half) * dt
    mean = 2 * half * p * steps
    assert abs(result.profit.mean() - mean) < 4 * result.profit.std() / math.sqrt(n)


# --- the mid process ----------------------------------------------------------------------


def test_binomial_increments_are_plus_minus_sigma_sqrt_dt():
    dt = 0.005
    x = np.asarray(Brownian(sigma=2.0).increment(jax.random.key(0), (20000,), dt=f64(dt), dtype=DTYPE))
    assert np.allclose(np.abs(x), 2.0 * math.sqrt(dt), rtol=0, atol=1e-14)
    assert abs(np.mean(x > 0) - 0.5) < 4 * 0.5 / math.sqrt(x.size)


@pytest.mark.parametrize(
    ("model", "variance"),
    [
        (GBM(sigma=0.2), 100.0**2 * math.expm1(0.2**2)),
        # Merton, zero drift: E[S_T^2] / S_0^2 = exp(sigma^2 - 2 lam kbar + lam (E e^{2J} - 1))
        (
            Merton(sigma=0.2, jump_intensity=3.0, jump_mean=-0.1, jump_vol=0.15),
            100.0**2 * math.expm1(
                0.2**2 - 2 * 3.0 * math.expm1(-0.1 + 0.5 * 0.15**2) + 3.0 * math.expm1(-0.2 + 2 * 0.15**2)
            ),
        ),
        # Heston, zero drift: E[S_T^2] / S_0^2 = E[exp(2 log(S_T/S_0))] = cf(u = -2i), the
        # closed-form characteristic function (riskengine.analytic.characteristic)
        (
            Heston(v0=0.04, kappa=2.0, theta=0.04, sigma=0.5, rho=-0.5),
            100.0**2 * (float(np.real(heston_cf(u=-2j, maturity=1.0, rate=0.0, dividend=0.0, v0=0.04, kappa=2.0,
                                                theta=0.04, sigma=0.5, rho=-0.5))) - 1.0),
        ),
    ],
    ids=["gbm", "merton", "heston"],
)
def test_pilot_price_volatility_of_log_models(model, variance):
    """The quoting sigma of a log model is sd(S_T - S_0) / sqrt(T), checked against the
    closed-form variance of S_T (exact log-step, so no discretisation allowance)."""
    n = 20000
    value = price_volatility(
        LogModelMid(model), key=jax.random.key(2), spot=100.0, horizon=1.0, num_steps=50, num_paths=n, dtype=DTYPE
    )
    # se of the sd for these mildly fat-tailed laws: sd * sqrt((kurt - 1) / 4n), kurt < 12 here
    assert value == pytest.approx(math.sqrt(variance), rel=4 * math.sqrt(11 / (4 * n)))


# --- GLFT ---------------------------------------------------------------------------------


def glft_exact(*, gamma, sigma, k, A, Q, tau):
    """Exact optimal quotes of GLFT (2013, theorem 1) at time-to-horizon tau with inventory
    limit Q: v = exp(-M tau) 1, M = alpha q^2 on the diagonal, -eta off it;
    delta_bid(q) = ln(v_q / v_{q+1}) / k + ln(1 + gamma/k) / gamma (and ask with q - 1)."""
    q = np.arange(-Q, Q + 1)
    alpha = 0.5 * k * gamma * sigma**2
    eta = A * (1 + gamma / k) ** (-(1 + k / gamma))
    M = np.diag(alpha * q**2.0) - eta * (np.eye(q.size, k=1) + np.eye(q.size, k=-1))
    w, U = eigh(M)
    v = U @ (np.exp(-(w - w.min()) * tau) * (U.T @ np.ones(q.size)))  # scaled: ratios only
    base = math.log1p(gamma / k) / gamma
    bid = {int(qq): math.log(v[i] / v[i + 1]) / k + base for i, qq in enumerate(q[:-1])}
    ask = {int(qq): math.log(v[i] / v[i - 1]) / k + base for i, qq in enumerate(q) if i > 0}
    return bid, ask


@pytest.mark.parametrize(
    "params",
    [
        {"gamma": 0.1, "sigma": 2.0, "k": 1.5, "A": 140.0, "Q": 50, "tau": 1.0},  # Avellaneda–Stoikov market
        {"gamma": 0.01, "sigma": 0.3, "k": 0.3, "A": 0.9, "Q": 30, "tau": 600.0},  # GLFT's own example scale
    ],
)
def test_glft_closed_form_against_exact_solution(params):
    bid, ask = glft_exact(**params)
    q = np.arange(-3, 4)
    approx_bid, approx_ask = glft_offsets(
        f64(q), gamma=params["gamma"], sigma=params["sigma"], k=params["k"], A=params["A"]
    )
    for i, qq in enumerate(q):
        assert float(approx_bid[i]) == pytest.approx(bid[int(qq)], rel=0.01)
        assert float(approx_ask[i]) == pytest.approx(ask[int(qq)], rel=0.01)


def test_glft_inventory_limit(tmp_path):
    data = yaml.safe_load((CONFIGS / "market_making_glft.yaml").read_text())
    data["strategy"]["inventory_limit"] = 3
    data["simulation"].update(paths=500, dtype=DTYPE)
    s = run_job(data, tmp_path / "glft")
    table = pd.read_parquet(tmp_path / "glft" / "paths.parquet")
    # the limit binds for both strategies and is never breached
    assert s["strategy"]["max_abs_inventory"] == 3 and s["symmetric"]["max_abs_inventory"] == 3
    assert table["strategy_final_inventory"].abs().max() <= 3
    assert table["symmetric_final_inventory"].abs().max() <= 3
    assert s["final_inventory_std"] < s["symmetric"]["final_inventory_std"]
    # without both sides quoted the spread is not counted, so GLFT's spread is its formula's
    c = math.sqrt(4.0 * 0.1 / (2 * 1.5 * 140.0) * (1 + 0.1 / 1.5) ** (1 + 1.5 / 0.1))
    assert s["spread_mean"] == pytest.approx(2 / 0.1 * math.log1p(0.1 / 1.5) + c, rel=1e-9)


# --- the job contract -----------------------------------------------------------------------


def test_job_outputs_and_keys(tmp_path):
    out = tmp_path / "mm"
    config = str(CONFIGS / "market_making.yaml")
    assert isinstance(JOBS["market_making"], job.MarketMakingJob)
    assert main(["run", config, "--out", str(out), "--paths", "300", "--seed", "4", "--no-progress"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["paths"] == 300 and s["seed"] == 4
    for key in job.STRATEGY_KEYS:
        assert s[key] == s["strategy"][key]
        assert math.isfinite(s["symmetric"][key])
    table = pd.read_parquet(out / "paths.parquet")
    assert len(table) == 300
    assert table["strategy_profit"].mean() == pytest.approx(s["profit_mean"], rel=1e-9)
    assert table["symmetric_final_inventory"].std() == pytest.approx(s["symmetric"]["final_inventory_std"], rel=1e-9)
    assert "Avellaneda" in (out / "report.html").read_text()


def test_paths_do_not_depend_on_the_path_count():
    """Batch b draws from fold_in(key, b): the first batch is the same whatever the total."""
    kwargs = dict(key=jax.random.key(1), spot=100.0, horizon=1.0, num_steps=200, dtype=DTYPE, batch_size=128)
    args = (Symmetric(half_spread=f64(0.6)), ArithmeticMid(Brownian(sigma=f64(2.0))), FillModel(A=f64(140.0), k=f64(1.5)))
    small = simulate_market_making(*args, num_paths=128, **kwargs)
    large = simulate_market_making(*args, num_paths=300, **kwargs)
    assert np.array_equal(small.profit, large.profit[:128])
    assert np.array_equal(small.final_inventory, large.final_inventory[:128])
    assert large.profit.size == 300 and np.unique(small.profit).size > 10
    assert not np.array_equal(large.profit[128:256], small.profit)


SV_JUMP_MODELS = {
    "bates": {"v0": 0.0004, "kappa": 2.0, "theta": 0.0004, "sigma": 0.02, "rho": -0.5,
              "jump_intensity": 5.0, "jump_mean": -0.002, "jump_vol": 0.004},
    "svcj": {"v0": 0.0004, "kappa": 2.0, "theta": 0.0004, "sigma": 0.02, "rho": -0.5, "jump_intensity": 5.0,
             "jump_mean": -0.002, "jump_vol": 0.004, "vol_jump_mean": 0.0001, "jump_corr": -0.3},
}


@pytest.mark.slow  # ~30 s on the shared 2-core box: compiling the QE variance scheme twice
@pytest.mark.parametrize("model", sorted(SV_JUMP_MODELS))
def test_stochastic_vol_jump_mid_runs(model, tmp_path):
    """Bates / SVCJ (stochastic variance and jumps) as the mid, through the generic model
    step; the quoting sigma comes from the pilot simulation (~ spot * 2% vol, as in the paper)."""
    data = paper_config(0.1)
    data["model"] = {"name": model, "params": SV_JUMP_MODELS[model]}
    data["simulation"]["paths"] = 256
    s = run_job(data, tmp_path / model)
    assert s["strategy_sigma_source"].startswith("pilot")
    assert 1.5 < s["strategy_sigma"] < 3.5
    assert all(math.isfinite(s[key]) for key in job.STRATEGY_KEYS)
    assert s["symmetric"]["fills_mean"] > 50
    assert s["profit_std"] < s["symmetric"]["profit_std"]
    assert s["final_inventory_std"] < s["symmetric"]["final_inventory_std"]


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("strategy", "gamma", float("nan")), "error: strategy.gamma: Input should be a finite number"),
        (("strategy", "gamma", 0.0), "error: strategy.gamma: Input should be greater than 0"),
        (("strategy", "k", -1.5), "error: strategy.k: Input should be greater than 0"),
        (("strategy", "A", float("inf")), "error: strategy.A: Input should be a finite number"),
        (("strategy", "spread", 1.0), "error: strategy.spread: not used by strategy type 'avellaneda_stoikov'"),
        (("strategy", "type", "glft2"), "error: strategy.type: Input should be"),
        (("simulation", "dt", 2.0), "error: simulation.dt: must be <= simulation.horizon (1)"),
        (("simulation", "dt", 0.003), "error: simulation.dt: simulation.horizon (1) must be a whole number"),
        (("simulation", "horizon", float("nan")), "error: simulation.horizon: Input should be a finite number"),
        (("simulation", "paths", 0), "error: simulation.paths: Input should be greater than or equal to 1"),
        (("market", "spot", -1.0), "error: market.spot: Input should be greater than 0"),
        (("model", "params", {"sigma": float("nan")}), "error: model.params.sigma: Input should be a finite number"),
        (("model", "params", {"sigma": -2.0}), "error: model.params.sigma: Input should be greater than 0"),
        (("model", "params", {"sigma": 2.0, "increments": "coin"}), "error: model.params.increments: Input should be"),
        (("model", "name", "abm"), "error: model.name: unknown model 'abm'"),
    ],
)
def test_bad_input_gives_one_line_error(edit, message, tmp_path, capsys):
    section, field, value = edit
    data = paper_config(0.1)
    data[section][field] = value
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message), err
    assert err.count("\n") == 1
    assert not out.exists()


def test_glft_needs_gamma_and_symmetric_needs_spread(tmp_path, capsys):
    for strategy, message in (
        ({"type": "glft", "k": 1.5, "A": 140.0}, "error: strategy.gamma: required for strategy type 'glft'"),
        ({"type": "symmetric", "k": 1.5, "A": 140.0}, "error: strategy.spread: required for strategy type 'symmetric'"),
        ({"type": "glft", "gamma": 0.1, "k": 1.5, "A": 140.0, "spread_time_term": False},
         "error: strategy.spread_time_term: only used by strategy type 'avellaneda_stoikov'"),
    ):
        data = paper_config(0.1)
        data["strategy"] = strategy
        path = tmp_path / "bad.yaml"
        path.write_text(yaml.safe_dump(data))
        assert main(["run", str(path), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
        assert capsys.readouterr().err.startswith(message)
