"""VaR backtests against a published table and independent formulas, the history loader, and
the walk-forward backtest job against an independent replay of its baselines."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from riskengine.cli import main
from riskengine.config import ConfigError
from riskengine.history import load_history
from riskengine.risk import (
    christoffersen_coverage_test,
    christoffersen_independence_test,
    kupiec_test,
)

# Jorion, "Value at Risk" (3rd ed., 2007), Table 6-3 (after Kupiec 1995): the 95% non-rejection
# regions a < N < b for the number of exceptions N in T days at VaR confidence 1 - p.
# For p = 1%, T = 252 the table prints "N < 7": N = 0 is then also rejected by the
# likelihood ratio (5.06 > 3.84), so only the upper end is checked there.
JORION = {
    (0.01, 252): (None, 7), (0.01, 510): (1, 11), (0.01, 1000): (4, 17),
    (0.025, 252): (2, 12), (0.025, 510): (6, 21), (0.025, 1000): (15, 36),
    (0.05, 252): (6, 20), (0.05, 510): (16, 36), (0.05, 1000): (37, 65),
    (0.075, 252): (11, 28), (0.075, 510): (27, 51), (0.075, 1000): (59, 92),
    (0.10, 252): (16, 36), (0.10, 510): (38, 65), (0.10, 1000): (81, 120),
}


def _hits(count: int, days: int) -> np.ndarray:
    h = np.zeros(days, bool)
    h[np.linspace(0, days - 1, count).astype(int)] = True if count else False
    return h


@pytest.mark.parametrize("cell", list(JORION), ids=[f"p{p}-T{t}" for p, t in JORION])
def test_kupiec_matches_jorions_nonrejection_table(cell):
    p, days = cell
    low, high = JORION[cell]
    level = 1 - p

    def rejected(n):
        return kupiec_test(_hits(n, days), level=level).p_value < 0.05

    assert rejected(high) and not rejected(high - 1)
    if low is not None:
        assert rejected(low) and not rejected(low + 1)


def _christoffersen_by_hand(h: np.ndarray, level: float):
    """LR_ind and LR_cc from the transition counts, written out with scipy only."""
    prev, cur = h[:-1].astype(int), h[1:].astype(int)
    n = {(i, j): int(np.sum((prev == i) & (cur == j))) for i in (0, 1) for j in (0, 1)}
    pi0 = n[0, 1] / (n[0, 0] + n[0, 1])
    pi1 = n[1, 1] / (n[1, 0] + n[1, 1]) if n[1, 0] + n[1, 1] else 0.0
    pi = (n[0, 1] + n[1, 1]) / (len(h) - 1)

    def ll(fail, hit, q):
        return special.xlogy(fail, 1 - q) + special.xlogy(hit, q)

    lr_ind = -2 * (ll(n[0, 0] + n[1, 0], n[0, 1] + n[1, 1], pi) - ll(n[0, 0], n[0, 1], pi0) - ll(n[1, 0], n[1, 1], pi1))
    x, t, p = int(h.sum()), len(h), 1 - level
    lr_pof = -2 * (ll(t - x, x, p) - ll(t - x, x, x / t))
    return lr_ind, lr_pof + lr_ind


@pytest.mark.parametrize("seed", range(3))
def test_christoffersen_matches_an_independent_computation(seed):
    rng = np.random.default_rng(seed)
    h = rng.random(500) < 0.03
    h[100:104] = True  # a cluster, so that n11 > 0
    lr_ind, lr_cc = _christoffersen_by_hand(h, 0.99)
    ind = christoffersen_independence_test(h)
    cc = christoffersen_coverage_test(h, level=0.99)
    assert ind.statistic == pytest.approx(lr_ind, rel=1e-10)
    assert ind.p_value == pytest.approx(stats.chi2.sf(lr_ind, 1), rel=1e-10)
    assert cc.statistic == pytest.approx(lr_cc, rel=1e-10)
    assert cc.p_value == pytest.approx(stats.chi2.sf(lr_cc, 2), rel=1e-10)


def test_christoffersen_rejects_clustered_and_keeps_spread_exceedances():
    spread = _hits(10, 1000)
    clustered = np.zeros(1000, bool)
    clustered[500:510] = True  # the same 10 hits, on consecutive days
    assert christoffersen_independence_test(spread).p_value > 0.5
    assert christoffersen_independence_test(clustered).p_value < 1e-6
    assert kupiec_test(spread, level=0.99).statistic == kupiec_test(clustered, level=0.99).statistic


# --- history loader ---------------------------------------------------------------------------

def test_history_formats(tmp_path):
    dates = pd.date_range("2021-01-01", periods=5, freq="D")
    btc = [100.0, 101, 99, 102, 103]
    eth = [10.0, 10.5, 10.2, 9.9, 10.1]
    pd.DataFrame({"date": dates, "BTC": btc, "ETH": eth}).to_csv(tmp_path / "wide.csv", index=False)
    long = pd.DataFrame({"Date": list(dates) * 2, "symbol": ["BTC"] * 5 + ["ETH"] * 5,
                         "open": 1.0, "high": 1.0, "low": 1.0, "close": btc + eth, "volume": 5.0})
    long.sample(frac=1.0, random_state=0).to_parquet(tmp_path / "long.parquet")
    pd.DataFrame({"timestamp": dates, "open": btc, "high": btc, "low": btc, "close": btc,
                  "volume": 1.0}).to_csv(tmp_path / "ohlcv.csv", index=False)
    for name in ("wide.csv", "long.parquet"):
        h = load_history(tmp_path / name, ["BTC", "ETH"])
        np.testing.assert_array_equal(h.closes["BTC"], btc)
        np.testing.assert_array_equal(h.closes["ETH"], eth)
        assert list(h.closes.index) == list(dates)
    h = load_history(tmp_path / "ohlcv.csv", ["BTC"])
    np.testing.assert_allclose(h.log_returns["BTC"], np.diff(np.log(btc)))


def test_bundled_history_loads():
    h = load_history("configs/data/history.csv", ["BTC", "ETH"])
    assert h.closes.index[0] == pd.Timestamp("2017-08-18") and h.closes.index[-1] == pd.Timestamp("2020-12-08")
    assert h.closes.index.is_monotonic_increasing and len(h.closes) > 1200


@pytest.mark.parametrize("edit, message", [
    (lambda f: f.assign(BTC=f["BTC"].where(f.index != 2, 0.0)), r"close of BTC on 2021-01-03 is not positive"),
    (lambda f: pd.concat([f, f.iloc[[1]]]), r"more than one row for 2021-01-02"),
    (lambda f: f.drop(columns=["ETH"]), r"no column 'ETH'"),
])
def test_history_errors(tmp_path, edit, message):
    frame = pd.DataFrame({"date": pd.date_range("2021-01-01", periods=5), "BTC": 1.0 + np.arange(5),
                          "ETH": 2.0 + np.arange(5)})
    edit(frame).to_csv(tmp_path / "h.csv", index=False)
    with pytest.raises(ConfigError, match=message):
        load_history(tmp_path / "h.csv", ["BTC", "ETH"])


# --- the job ----------------------------------------------------------------------------------

VOLS = np.array([0.03, 0.05])  # daily


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    """A backtest on two independent GBMs with constant daily vols 3% and 5%."""
    tmp = tmp_path_factory.mktemp("bt")
    rng = np.random.default_rng(42)
    days = 700
    logret = rng.standard_normal((days, 2)) * VOLS - 0.5 * VOLS**2
    closes = 100 * np.exp(np.vstack([np.zeros(2), np.cumsum(logret, axis=0)]))
    frame = pd.DataFrame({"date": pd.date_range("2019-01-01", periods=days + 1), "AAA": closes[:, 0],
                          "BBB": closes[:, 1]})
    frame.to_csv(tmp / "prices.csv", index=False)
    (tmp / "bt.yaml").write_text(
        "job: backtest\nhistory: prices.csv\nassets: [AAA, BBB]\nwindow_days: 200\nrebalance_days: 10\n"
        "forecast: {method: rolling}\nsimulate: {paths: 4096, seed: 5}\n"
        "objective: {type: min_cvar, alpha: 0.95}\nconstraints: {long_only: true, budget: 1.0, max_weight: 0.9}\n"
        "costs: {proportional: 0.002}\nvar_level: 0.99\n")
    out = tmp / "out"
    assert main(["run", str(tmp / "bt.yaml"), "--out", str(out), "--no-progress"]) == 0
    return frame, json.loads((out / "summary.json").read_text()), pd.read_parquet(out / "equity.parquet"), \
        pd.read_parquet(out / "weights.parquet")


def test_equal_weight_baseline_matches_an_independent_replay(synthetic_run):
    frame, summary, equity, _ = synthetic_run
    prices = frame.set_index("date")[["AAA", "BBB"]]
    simple = prices.pct_change().iloc[1:]
    test_days = simple.iloc[200:]  # realised days: after the 200-return window
    assert len(test_days) == len(equity) == summary["period"]["days"]
    value, holdings, eq = 1.0, np.zeros(2), []
    for i, (_, r) in enumerate(test_days.iterrows()):
        if i % 10 == 0:  # trade to 50/50 at the previous close, paying 0.2% of the notional
            target = np.array([0.5, 0.5]) * value
            value -= 0.002 * np.abs(target - holdings).sum()
            holdings = np.array([0.5, 0.5]) * value
        holdings = holdings * (1 + r.to_numpy())
        value = holdings.sum()
        eq.append(value)
    np.testing.assert_allclose(equity["equal_weight_equity"], eq, rtol=1e-9)
    assert summary["strategies"]["equal_weight"]["final_equity"] == pytest.approx(eq[-1], rel=1e-9)
    dd = 1 - np.array([1.0] + eq) / np.maximum.accumulate([1.0] + eq)
    assert summary["strategies"]["equal_weight"]["max_drawdown"] == pytest.approx(dd.max(), rel=1e-9)


def test_inverse_vol_weights_and_var_forecast(synthetic_run):
    frame, summary, equity, weights = synthetic_run
    logret = np.diff(np.log(frame[["AAA", "BBB"]].to_numpy()), axis=0)
    first = weights.iloc[0]
    vol = logret[:200].std(axis=0, ddof=1)  # the window before the first decision
    np.testing.assert_allclose([first["forecast_vol_AAA"], first["forecast_vol_BBB"]], vol, rtol=1e-9)
    inv = (1 / vol) / (1 / vol).sum()
    np.testing.assert_allclose([first["inverse_vol_AAA"], first["inverse_vol_BBB"]], inv, rtol=1e-9)
    # the VaR forecast on a rebalance day (weights at target) against the normal closed form:
    # independent normals, so sigma_p^2 = sum w^2 sigma^2 (sample correlation ~ 0 allowed for)
    corr = np.corrcoef(logret[:200], rowvar=False)[0, 1]
    w = np.array([0.5, 0.5])
    sigma_p = math.sqrt(w[0] ** 2 * vol[0] ** 2 + w[1] ** 2 * vol[1] ** 2 + 2 * corr * w.prod() * vol.prod())
    normal_var = -math.expm1(-stats.norm.ppf(0.99) * sigma_p)
    # 4096 paths: the 1% quantile has a relative standard error ~ 2.5%; 4 s.e. = 10%
    assert equity["equal_weight_var"].iloc[0] == pytest.approx(normal_var, rel=0.10)
    # the strategy's weights obey the bounds and budget; min-CVaR tilts to the calmer asset
    sw = weights[["strategy_AAA", "strategy_BBB"]].to_numpy()
    assert np.all(sw >= -1e-7) and np.all(sw <= 0.9 + 1e-7) and np.allclose(sw.sum(axis=1), 1.0, atol=1e-6)
    assert sw[:, 0].mean() > 0.6


def test_exceedances_and_tests_are_consistent_with_the_table(synthetic_run):
    _, summary, equity, _ = synthetic_run
    for s in ("strategy", "equal_weight", "inverse_vol"):
        hits = (equity[f"{s}_return"] < -equity[f"{s}_var"]).to_numpy()
        assert np.array_equal(hits, equity[f"{s}_exceedance"].to_numpy())
        v = summary["strategies"][s]["var"]
        assert v["exceedances"] == hits.sum()
        x, t = int(hits.sum()), len(hits)
        lr = -2 * (special.xlogy(t - x, 0.99) + special.xlogy(x, 0.01)) + 2 * (
            special.xlogy(t - x, 1 - x / t) + special.xlogy(x, x / t))
        assert v["kupiec"]["statistic"] == pytest.approx(lr, rel=1e-9, abs=1e-12)
    # The forecast is right up to estimation error (constant-vol GBM, rolling normal): its
    # exceedances of the equal-weight book are close to those of the true VaR on the same days
    # (this sample happens to be rough: the true VaR is exceeded 14 times in 500 days).
    frame = synthetic_run[0]
    simple = frame[["AAA", "BBB"]].pct_change().to_numpy()[201:]
    true_var = -math.expm1(-stats.norm.ppf(0.99) * 0.5 * math.sqrt((VOLS**2).sum()))
    true_hits = int((simple.mean(axis=1) < -true_var).sum())
    assert abs(summary["strategies"]["equal_weight"]["var"]["exceedances"] - true_hits) <= 5


def test_garch_backtest_on_bundled_history(tmp_path):
    cfg = tmp_path / "bt.yaml"
    cfg.write_text(
        "job: backtest\nhistory: " + str(__import__("pathlib").Path("configs/data/history.csv").resolve())
        + "\nassets: [BTC, ETH]\nwindow_days: 150\nrebalance_days: 30\nend: 2018-06-30\n"
        "forecast: {method: garch, dist: t}\nsimulate: {paths: 1024, seed: 1}\n"
        "constraints: {long_only: true, budget: 1.0, max_weight: 0.7}\nvar_level: 0.95\n")
    out = tmp_path / "out"
    assert main(["run", str(cfg), "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["period"]["last"] == "2018-06-30" and summary["rebalances"] >= 5
    equity = pd.read_parquet(out / "equity.parquet")
    assert equity[["strategy_weight_BTC", "strategy_weight_ETH"]].to_numpy().max() <= 0.7 + 0.05  # drift
    assert (equity["strategy_var"] > 0).all()


def test_bad_backtest_config_is_one_line(tmp_path, capsys):
    cfg = tmp_path / "bt.yaml"
    cfg.write_text("job: backtest\nhistory: " + str(__import__("pathlib").Path("configs/data/history.csv").resolve())
                   + "\nassets: [BTC, DOGE]\n")
    assert main(["run", str(cfg), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: history: no column 'DOGE'") and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_calibrated_garch_parameters_are_used(synthetic_run, tmp_path):
    """``model: {from: {ASSET: DIR}}``: parameters with alpha = beta = 0 make the forecast
    volatility exactly sqrt(omega), so the inverse-vol weights are known in closed form."""
    frame = synthetic_run[0]
    frame.to_csv(tmp_path / "prices.csv", index=False)
    for asset, vol in zip(("AAA", "BBB"), VOLS, strict=True):
        (tmp_path / asset).mkdir()
        (tmp_path / asset / "params.yaml").write_text(
            f"model: {{name: garch, distribution: normal, asset: {asset}, "
            f"params: {{mu: 0.0, omega: {float(vol)**2!r}, alpha: 0.0, beta: 0.0}}}}\n")
    (tmp_path / "bt.yaml").write_text(
        "job: backtest\nhistory: prices.csv\nassets: [AAA, BBB]\nwindow_days: 200\nrebalance_days: 50\n"
        "forecast: {method: garch}\nmodel: {from: {AAA: AAA, BBB: BBB}}\nsimulate: {paths: 1024, seed: 5}\n"
        "end: 2020-01-31\n")
    out = tmp_path / "out"
    assert main(["run", str(tmp_path / "bt.yaml"), "--out", str(out), "--no-progress"]) == 0
    weights = pd.read_parquet(out / "weights.parquet")
    np.testing.assert_allclose(weights[["forecast_vol_AAA", "forecast_vol_BBB"]], np.tile(VOLS, (len(weights), 1)),
                               rtol=1e-12)
    np.testing.assert_allclose(weights["inverse_vol_AAA"], 0.05 / 0.08, rtol=1e-12)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["calibrated_model"]["AAA"]["params"]["omega"] == pytest.approx(0.03**2)


def test_infeasible_allocation_names_the_rebalance_date(tmp_path, capsys):
    cfg = tmp_path / "bt.yaml"
    cfg.write_text("job: backtest\nhistory: " + str(__import__("pathlib").Path("configs/data/history.csv").resolve())
                   + "\nassets: [BTC, ETH]\nwindow_days: 150\nforecast: {method: rolling}\nsimulate: {paths: 512}\n"
                   "constraints: {long_only: true, budget: 1.0, min_return: 0.05}\n")
    assert main(["run", str(cfg), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: constraints.min_return: at the rebalance of 2018-01-15: infeasible")
