"""Filtered historical simulation: one-day VaR against the true conditional quantile of a
GARCH series with known parameters, the joint residual bootstrap keeps the cross-correlation,
batching by fold_in, and FHS inside the stress job reading a GARCH calibration."""

from __future__ import annotations

import json
import math
from pathlib import Path

import jax
import numpy as np
import pytest
import yaml
from scipy import stats

from riskengine import risk
from riskengine.calibration import GarchParams, load_garch
from riskengine.cli import main

ROOT = Path(__file__).parents[1]
TRUE = {"mu": 0.0005, "omega": 2e-5, "alpha": 0.05, "gamma": 0.10, "beta": 0.85, "nu": 5.0}


def _gjr_t_series(params, z):
    """GJR-GARCH returns driven by given unit-variance innovations ``z`` [days, assets], written
    out here (independently of riskengine); returns ``(returns, sigma_{n+1}^2)``."""
    p = params
    persistence = p["alpha"] + 0.5 * p["gamma"] + p["beta"]
    var = np.full(z.shape[1], p["omega"] / (1 - persistence))
    out = np.empty_like(z)
    for t in range(z.shape[0]):
        eps = np.sqrt(var) * z[t]
        out[t] = p["mu"] + eps
        var = p["omega"] + (p["alpha"] + p["gamma"] * (eps < 0)) * eps**2 + p["beta"] * var
    return out, var


def _unit_t(rng, nu, size):
    return rng.standard_t(nu, size=size) * math.sqrt((nu - 2) / nu)


def _quantile_se(p, n, density):
    return math.sqrt(p * (1 - p) / n) / density


def test_one_day_var_of_a_spot_position_is_the_true_conditional_quantile():
    rng = np.random.default_rng(11)
    n, paths, level = 2500, 40_000, 0.99
    returns, var_next = _gjr_t_series(TRUE, _unit_t(rng, TRUE["nu"], (n, 1)))
    sigma = math.sqrt(var_next[0])
    scale = math.sqrt((TRUE["nu"] - 2) / TRUE["nu"])
    q = stats.t.ppf(1 - level, TRUE["nu"]) * scale  # quantile of the unit-variance t
    true_var = -math.expm1(TRUE["mu"] + sigma * q)  # unit spot position: P&L = exp(R) - 1
    density = stats.t.pdf(q / scale, TRUE["nu"]) / scale
    # sampling error of an empirical quantile, in return units: MC paths and history days
    se_mc = sigma * _quantile_se(1 - level, paths, density)
    se_hist = sigma * _quantile_se(1 - level, n, density)

    # (1) the known parameters (as a calibration would give them): only residual-sampling and MC error
    given = GarchParams(name="gjr_garch", kind="gjr", dist="t", params=TRUE, standard_errors={})
    filtered = risk.filter_history(returns, names=["X"], given={"X": given})
    assert filtered.source == ["given"]
    np.testing.assert_allclose(filtered.next_variance, var_next, rtol=1e-6)  # the backcast is forgotten
    sims = risk.simulate_filtered_history(filtered, jax.random.key(3), horizons=[1, 10], num_paths=paths)
    assert sims.shape == (paths, 2, 1) and sims.dtype == np.float64
    fhs_var = float(risk.value_at_risk(np.expm1(np.asarray(sims[:, 0, 0])), level=level))
    assert abs(fhs_var - true_var) < 4 * math.hypot(se_mc, se_hist), (fhs_var, true_var, se_mc, se_hist)

    # (2) parameters estimated by maximum likelihood: plus an allowance of 10% of VaR for the
    # error of the estimated next-day vol (its relative standard error here is a few %)
    fitted = risk.filter_history(returns, names=["X"], kind="gjr_garch", dist="t")
    assert fitted.converged == [True] and fitted.source == ["fitted"]
    sims = risk.simulate_filtered_history(fitted, jax.random.key(3), horizons=[1], num_paths=paths)
    fhs_var = float(risk.value_at_risk(np.expm1(np.asarray(sims[:, 0, 0])), level=level))
    assert abs(fhs_var - true_var) < 4 * math.hypot(se_mc, se_hist) + 0.10 * true_var, (fhs_var, true_var)


def test_joint_residual_bootstrap_keeps_the_cross_correlation():
    rng = np.random.default_rng(5)
    n, paths, rho = 1500, 50_000, 0.7
    chol = np.linalg.cholesky(np.asarray([[1.0, rho], [rho, 1.0]]))
    z = rng.standard_normal((n, 2)) @ chol.T
    params = {k: v for k, v in TRUE.items() if k != "nu"}
    returns, _ = _gjr_t_series(params, z)
    given = GarchParams(name="gjr_garch", kind="gjr", dist="normal", params=params, standard_errors={})
    filtered = risk.filter_history(returns, names=["A", "B"], given={"A": given, "B": given})
    sample = np.corrcoef(filtered.residuals.T)[0, 1]
    assert abs(sample - np.corrcoef(z.T)[0, 1]) < 0.02  # residuals are the innovations
    sims = np.asarray(risk.simulate_filtered_history(filtered, jax.random.key(0), horizons=[1], num_paths=paths))
    simulated = np.corrcoef(sims[:, 0, :].T)[0, 1]
    # one-day returns are mu + sigma_{n+1} z*(date): their correlation is the residuals' one
    se = (1 - sample**2) / math.sqrt(paths)
    assert abs(simulated - sample) < 4 * se, (simulated, sample, se)


def test_paths_are_keyed_by_batch():
    rng = np.random.default_rng(0)
    returns, _ = _gjr_t_series(TRUE, _unit_t(rng, TRUE["nu"], (300, 2)))
    given = GarchParams(name="gjr_garch", kind="gjr", dist="t", params=TRUE, standard_errors={})
    filtered = risk.filter_history(returns, names=["A", "B"], given={"A": given, "B": given})
    key = jax.random.key(9)
    small = np.asarray(risk.simulate_filtered_history(filtered, key, horizons=[1, 5], num_paths=3000, batch_size=1024))
    large = np.asarray(risk.simulate_filtered_history(filtered, key, horizons=[1, 5], num_paths=5000, batch_size=1024))
    np.testing.assert_array_equal(small, large[:3000])
    # horizons nest: the 1-day return is the first day of the 5-day path
    assert np.all(np.isfinite(large)) and large[:, 1].std() > 1.5 * large[:, 0].std()
    with pytest.raises(ValueError, match="horizons"):
        risk.simulate_filtered_history(filtered, key, horizons=[0], num_paths=10)


def test_fhs_in_the_stress_job_reads_a_garch_calibration(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    calibration = tmp_path / "garch_btc"
    assert main(["run", str(ROOT / "configs" / "calibrate_garch.yaml"), "--out", str(calibration), "--no-progress"]) == 0
    fitted = load_garch(calibration)
    cal_summary = json.loads((calibration / "summary.json").read_text())
    assert fitted.name == "gjr_garch" and fitted.dist == "t" and fitted.asset == "BTC"
    assert fitted.params == cal_summary["params"] and fitted.standard_errors == cal_summary["standard_errors"]

    (tmp_path / "book.csv").write_text(
        "id,venue,type,underlying,quantity,strike,expiry,option,entry_price,margin_mode,collateral,multiplier\n"
        "B1,binance,spot,BTC,2,,,,,cross,0,1\n"
        "E1,binance,spot,ETH,-10,,,,,cross,0,1\n")
    config = {
        "job": "stress", "book": str(tmp_path / "book.csv"), "market": "configs/data/market.yaml",
        "model": {"name": "gbm", "params": {"sigma": 0.6}}, "horizons_days": [1, 5],
        "mc": {"paths": 2048, "seed": 1, "dtype": "float64"}, "scenarios": "none",
        "risk": {"var_levels": [0.99], "es_levels": [0.975]},
        "history": "configs/data/history.csv",
        "fhs": {"paths": 20_000, "seed": 2, "from": {"BTC": str(calibration)}},
    }
    path = tmp_path / "stress.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    fhs = summary["filtered_historical"]
    assert fhs["paths"] == 20_000 and fhs["model"] == "gjr_garch"
    btc, eth = fhs["underlyings"]["BTC"], fhs["underlyings"]["ETH"]
    assert btc["source"].endswith("params.yaml") and btc["params"]["beta"] == fitted.params["beta"]
    assert eth["source"] == "fitted" and eth["converged"]
    # the standardised residuals have (about) unit variance
    assert 0.8 < btc["residual_std"] < 1.2 and 0.8 < eth["residual_std"] < 1.2
    for hk in ("1d", "5d"):
        assert fhs[hk]["es"]["0.975"] > 0 and fhs[hk]["var"]["0.99"] > 0
    # the 1-day FHS VaR of this small book, against the delta-normal scale from the
    # next-day vols: the same order of magnitude (fat tails, correlation between them)
    value = 2 * 95000.0 * btc["next_day_vol"] + 10 * 3400.0 * eth["next_day_vol"]
    assert 0.2 * value < fhs["1d"]["var"]["0.99"] < 3.0 * value
    assert summary["vol_surface"]["interpolation"] == "svi"
    assert set(summary["vol_surface"]["underlyings"]) == {"BTC", "ETH", "SOL"}
    assert "filtered historical" in (out / "report.html").read_text()

    # a FHS from: of an underlying not in the book, or of a missing directory, is refused in one line, exit 2
    for given, message in (({"DOGE": str(calibration)}, "fhs.from.DOGE: not an underlying of the book"),
                           ({"BTC": str(tmp_path / "nowhere")}, "fhs.from.BTC: garch from: cannot read")):
        config["fhs"]["from"] = given
        path.write_text(yaml.safe_dump(config))
        assert main(["run", str(path), "--out", str(tmp_path / "bad"), "--no-progress"]) == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "bad").exists()
