"""Fast checks of the pieces behind benchmarks/hedge_reproductions.py: the Heston model hedge
(hedging/model_hedge.py) and the reproduction configs. The reproductions themselves are the
benchmark (several minutes)."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import yaml
from jax.scipy.stats import norm

from hedging import BlackScholesDelta, EuropeanOption, HedgingProblem, terminal_pnl
from hedging.model_hedge import HestonDeltaVega
from riskengine.analytic import heston_price
from riskengine.models import GBM, Heston

CONFIGS = Path(__file__).parents[1] / "configs"
PAPER = {"v0": 0.04, "kappa": 1.0, "theta": 0.04, "sigma": 2.0, "rho": -0.7}  # Buehler et al. 2019, section 5


def test_model_hedge_is_the_derivative_of_the_heston_price():
    """C_S and C_v against central finite differences of the Fourier price (float64)."""
    policy = HestonDeltaVega.of(Heston(**PAPER))
    points = [(1.0, 0.04, 30 / 365), (0.95, 0.01, 10 / 365), (1.08, 0.2, 5 / 365), (1.0, 0.04, 1 / 365)]
    with jax.enable_x64(True):
        spot, var, tau = (jnp.asarray(c, jnp.float64) for c in zip(*points, strict=True))
        delta, dc_dv = policy.sensitivities(spot, var, tau, strike=1.0, is_call=True)

        def price(s, v, t):
            p = {k: v_ for k, v_ in PAPER.items() if k != "v0"}
            return float(heston_price(spot=s, strike=1.0, maturity=t, rate=0.0, dividend=0.0, v0=v, is_call=True,
                                      num_nodes=policy.num_nodes, **p))

        for i, (s, v, t) in enumerate(points):
            hs, hv = 1e-5, 1e-6
            fd_s = (price(s + hs, v, t) - price(s - hs, v, t)) / (2 * hs)
            fd_v = (price(s, v + hv, t) - price(s, v - hv, t)) / (2 * hv)
            assert float(delta[i]) == pytest.approx(fd_s, rel=1e-5, abs=1e-8)
            assert float(dc_dv[i]) == pytest.approx(fd_v, rel=1e-4, abs=1e-8)


def test_model_hedge_tends_to_black_scholes_without_vol_of_vol():
    """As the vol-of-vol goes to 0 the Heston price is Black–Scholes with total variance
    theta tau + (v - theta) w(tau), w = (1 - e^{-kappa tau}) / kappa, so the hedge tends to the
    Black–Scholes delta and C_v / w to the Black–Scholes derivative in total variance,
    S phi(d1) / (2 sqrt(total variance)): closed forms independent of the Fourier pricer."""
    kappa, theta = 1.0, 0.04
    policy = HestonDeltaVega.of(Heston(v0=0.04, kappa=kappa, theta=theta, sigma=1e-4, rho=-0.7))
    spot = np.array([0.9, 1.0, 1.1, 1.0])
    var = np.array([0.04, 0.09, 0.02, 0.01])
    tau = np.array([30, 20, 10, 5]) / 365
    with jax.enable_x64(True):
        delta, dc_dv = policy.sensitivities(jnp.asarray(spot), jnp.asarray(var), jnp.asarray(tau), strike=1.0,
                                            is_call=True)
        w = -np.expm1(-kappa * tau) / kappa
        total = theta * tau + (var - theta) * w
        d1 = (np.log(spot) + 0.5 * total) / np.sqrt(total)
        bs_delta = np.asarray(norm.cdf(d1))
        bs_dvar = spot * np.asarray(norm.pdf(d1)) / (2 * np.sqrt(total))
        np.testing.assert_allclose(np.asarray(delta), bs_delta, rtol=2e-3, atol=1e-4)
        np.testing.assert_allclose(np.asarray(dc_dv) / w, bs_dvar, rtol=2e-3)


def test_model_hedge_removes_most_of_the_risk():
    """Paper's Heston market, 30 daily hedges: with the variance swap the complete-market
    hedge leaves a much smaller P&L spread than Black–Scholes delta or than its own delta
    leg alone (discrete hedging error only)."""
    model = Heston(**PAPER)
    option = EuropeanOption(strike=1.0, maturity=30 / 365)
    problem = HedgingProblem(model=model, derivative=option, spot=1.0, steps=30,
                             instruments=("underlying", "variance_swap"))
    paths = problem.simulate(jax.random.key(3), 2048)
    pnl_model, hedges = terminal_pnl(HestonDeltaVega.of(model), problem, paths)
    pnl_delta, _ = terminal_pnl(BlackScholesDelta(), problem, paths)
    stock = paths.prices[..., 0]
    pnl_stock_leg = jnp.sum(hedges[..., 0] * (stock[1:] - stock[:-1]), axis=0) - paths.payoff
    assert hedges.shape[-1] == 2
    assert float(jnp.std(pnl_model)) < 0.4 * float(jnp.std(pnl_delta))
    assert float(jnp.std(pnl_model)) < 0.4 * float(jnp.std(pnl_stock_leg))
    assert 0.3 < float(jnp.mean(hedges[0, :, 0])) < 0.8  # a call's delta at the money
    assert float(jnp.mean(hedges[0, :, 1])) > 0  # long variance swaps: a short call is short variance


def test_model_hedge_needs_heston():
    with pytest.raises(ValueError, match="heston"):
        HestonDeltaVega.of(GBM(sigma=0.2))


@pytest.mark.parametrize("name", ["hedge_deep_hedging_heston_cvar50", "hedge_deep_hedging_heston_cvar99",
                                  "hedge_ntb_imaki"])
def test_reproduction_configs_validate(name):
    from riskengine.jobs.hedge import Config, build_baselines

    config = Config.model_validate(yaml.safe_load((CONFIGS / f"{name}.yaml").read_text()))
    baselines = build_baselines(config)
    if "heston" in name:
        assert config.model.params == PAPER
        assert config.hedge.instruments == ["underlying", "variance_swap"] and config.hedge.steps == 30
        assert config.derivative.maturity == pytest.approx(30 / 365)
        assert isinstance(baselines["heston_delta_vega"], HestonDeltaVega)
    else:
        assert config.hedge.cost == 1e-3 and config.objective.risk_aversion == 1.0
        assert config.derivative.maturity == pytest.approx(config.hedge.steps / 365)


@pytest.mark.parametrize("exponent, passes", [(2 / 3, True), (0.63, True), (0.6, False), (0.72, False)])
def test_cost_scaling_check_finds_the_exponent_of_a_known_sweep(monkeypatch, exponent, passes):
    """The scaling part of the benchmark on a stub that validates each config it would run and
    returns P&Ls whose entropic excess over price(0) is exactly 1e-2 eps^exponent (a constant
    shift of every path: the entropic price is cash-invariant): the reported slope is the
    exponent and the 2/3 +- 0.05 check passes or fails with it."""
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "benchmarks"))
    import hedge_reproductions as hr

    from riskengine.jobs.hedge import Config

    base_pnl = np.random.default_rng(0).normal(0.0, 0.01, 4096)
    seen = []

    def run_config(name, out, tag, overrides=None):
        data = hr.merge(yaml.safe_load((CONFIGS / name).read_text()), overrides or {})
        config = Config.model_validate(data)
        seen.append(config)
        shift = 1e-2 * config.hedge.cost**exponent
        return {}, pd.DataFrame({"bs_delta": base_pnl - shift, "policy": base_pnl - shift,
                                 "whalley_wilmott": base_pnl - 2 * shift})

    monkeypatch.setattr(hr, "run_config", run_config)
    rows = []
    hr.scaling(Path("unused"), False, rows, train_seed=7)
    slope = rows[-1]
    assert "trained band" in slope["check"] and slope["ok"] is passes
    assert slope["ours"] == pytest.approx(exponent, abs=1e-9)
    assert [c.hedge.cost for c in seen] == [0.0, *hr.SCALING_COSTS]
    assert all(c.hedge.steps == hr.SCALING_STEPS and c.train.seed == 7 for c in seen)
    assert "spot_gamma" in seen[-1].policy.features and seen[-1].policy.start == "delta"
