"""Signal models, purged cross-validation, sizing limits and performance statistics against
independent truths."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from riskengine.allocation.exposure import Limits, apply_limits, limit_targets
from riskengine.allocation.performance import deflated_sharpe, expected_max_sharpe, sharpe
from riskengine.allocation.signals import fit_ridge, purged_folds
from riskengine.allocation.synthetic import planted_signal, theoretical_sharpe


def test_purged_folds_never_train_on_the_test_block_or_its_neighbours():
    times = np.repeat(np.arange(100), 2)  # two assets per date
    seen = []
    for train, test in purged_folds(times, folds=4, purge_days=2, embargo_days=5):
        lo, hi = times[test].min(), times[test].max()
        seen.extend(np.unique(times[test]))
        t = times[train]
        assert not np.any((t >= lo - 2) & (t <= hi + 5))
        assert np.all((t < lo - 2) | (t > hi + 5))
    assert sorted(seen) == list(range(100))  # every date is tested once


def test_ridge_matches_the_augmented_least_squares_solution():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = X @ [0.5, -1.0, 0.0, 2.0] + 1.0 + rng.normal(size=300)
    alpha = 0.3
    model = fit_ridge(X, y, alpha)
    Xc, yc = X - X.mean(0), y - y.mean()
    A = np.vstack([Xc, math.sqrt(alpha * 300) * np.eye(4)])
    b = np.concatenate([yc, np.zeros(4)])
    np.testing.assert_allclose(model.coef, np.linalg.lstsq(A, b, rcond=None)[0], rtol=1e-10)
    np.testing.assert_allclose(model.contributions(X).sum(1) + model.intercept, model.predict(X), rtol=1e-12)
    flat = fit_ridge(X, y, alpha, intercept=False)  # no drift: plain ridge through the origin
    A0 = np.vstack([X, math.sqrt(alpha * 300) * np.eye(4)])
    want = np.linalg.lstsq(A0, np.concatenate([y, np.zeros(4)]), rcond=None)[0]
    np.testing.assert_allclose(flat.coef, want, rtol=1e-10)
    assert flat.intercept == 0.0


def test_limits_cap_weight_leverage_and_turnover():
    w = limit_targets(np.array([[0.9, -0.8, 0.5]]), Limits(max_leverage=1.0, max_weight=0.6))
    assert np.abs(w).max() <= 0.6 + 1e-12 and np.abs(w).sum() == pytest.approx(1.0)
    assert (limit_targets(np.array([[0.3, -0.3]]), Limits(long_only=True)) >= 0).all()
    targets = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    pos, traded = apply_limits(targets, np.zeros((3, 2)), Limits(max_turnover=0.5))
    np.testing.assert_allclose(traded, [0.5, 0.5, 0.5])
    np.testing.assert_allclose(pos[0], [0.5, 0.0])
    np.testing.assert_allclose(pos[1], [1 / 3, 1 / 3])  # trade (-1/2, 1) scaled by 0.5 / 1.5


def test_positions_drift_with_prices_between_trades():
    pos, traded = apply_limits(np.array([[0.5, 0.5], [np.nan, np.nan]]), np.array([[1.0, 0.0], [0.0, 0.0]]),
                               Limits(max_leverage=2.0))
    # after +100% on the first asset the book holds 1.0 and 0.5 of an equity of 1.5; the
    # target of day 1 is unknown (0): everything is sold
    assert traded[1] == pytest.approx(2.0 / 3.0 + 1.0 / 3.0)


def test_deflated_sharpe_is_the_probabilistic_sharpe_for_one_trial():
    rng = np.random.default_rng(1)
    r = rng.normal(0.001, 0.02, 1000)
    dsr, p = deflated_sharpe(r, trials=1)
    sr = r.mean() / r.std(ddof=1)
    g3, g4 = stats.skew(r), stats.kurtosis(r, fisher=False)
    want = stats.norm.cdf(sr * math.sqrt(999) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr * sr))
    assert dsr == pytest.approx(want, rel=1e-12) and p == pytest.approx(1 - want, rel=1e-12)
    # more trials: a higher bar; the bar is the expected maximum of N standard normals / sqrt(T)
    assert deflated_sharpe(r, trials=10)[0] < dsr
    draws = np.random.default_rng(2).standard_normal((20000, 10)).max(axis=1).mean()
    assert expected_max_sharpe(10, 1.0) == pytest.approx(draws, rel=0.03)


def test_planted_signal_has_its_theoretical_sharpe_when_held_exactly():
    """The generator's own truth: holding x_d units of risk gives the stated Sharpe."""
    closes, f = planted_signal(days=40000, ic=0.08, seed=3)
    r = np.diff(np.log(closes.to_numpy()), axis=0)  # r[t - 1] is over (t - 1, t]
    x = f["signal"].to_numpy()
    pnl = (x[:-2, None] * r[1:]).sum(axis=1)
    assert sharpe(pnl) == pytest.approx(theoretical_sharpe(ic=0.08, assets=2), abs=3 * math.sqrt(365 / 40000) * 1.1)
    assert np.corrcoef(x[:-2], r[1:, 0])[0, 1] == pytest.approx(0.08, abs=3 / math.sqrt(40000))


def test_paired_sharpe_difference():
    from riskengine.allocation.performance import sharpe_difference, stationary_bootstrap_indices

    rng = np.random.default_rng(4)
    a = rng.normal(0.0, 0.02, 800)
    boot = stationary_bootstrap_indices(800, resamples=300, block_days=10, seed=1)
    same = sharpe_difference(a, a, boot=boot)
    assert same["sharpe_difference"] == 0 and same["ci"] == [0.0, 0.0]
    # a strategy that adds 0.5% a day to the same noise is better beyond doubt
    better = sharpe_difference(a + 0.005, a, boot=boot)
    assert better["ci"][0] > 0 and better["p_value"] < 0.01


def test_risk_forecast_var_matches_the_normal_quantile():
    from riskengine.allocation.risk_forecast import RiskForecaster, simulated_normals

    rng = np.random.default_rng(7)
    window = rng.normal(0.0, 0.02, size=(730, 2))
    z = simulated_normals(assets=2, paths=20000, periods=2, seed=3)
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1) < 0.02
    f = RiskForecaster(window, z[0], kind="garch")
    vol = f.vol(window)
    np.testing.assert_allclose(vol, 0.02, rtol=0.2)  # a GARCH one-step forecast on i.i.d. data
    scen = f.scenarios(vol)
    var, es = RiskForecaster.var_es(scen, np.array([1.0, 0.0]), level=0.99)
    want = -math.expm1(-stats.norm.ppf(0.99) * vol[0])
    assert var == pytest.approx(want, rel=0.05)
    # two independent assets, half in each
    var2, _ = RiskForecaster.var_es(scen, np.array([0.5, 0.5]), level=0.99)
    want2 = -math.expm1(-stats.norm.ppf(0.99) * 0.5 * math.hypot(*vol))
    assert var2 == pytest.approx(want2, rel=0.08)
