"""Calibration to Deribit chains: round trip from known Heston and SVCJ parameters through a
chain written in the Deribit format, no leakage of test quotes, the liquidity filter and the
calibrate job's outputs (and its one-line errors)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from riskengine.analytic import inverse_price
from riskengine.calibration import load_calibrated_model
from riskengine.calibration.chain import (
    FITTED_COLUMNS,
    HISTORY_METRICS,
    LiquidityFilter,
    assign_sets,
    calibrate_snapshots,
    chain_bounds,
    liquid_quotes,
)
from riskengine.cli import main
from riskengine.config import ConfigError, validate
from riskengine.data import read_chain
from riskengine.jobs import calibrate as calibrate_job

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

HESTON = {"v0": 0.25, "kappa": 3.0, "theta": 0.30, "sigma": 1.5, "rho": -0.25}
SVCJ = {"v0": 0.20, "kappa": 3.0, "theta": 0.25, "sigma": 1.0, "rho": -0.3, "jump_intensity": 1.0,
        "jump_mean": -0.05, "jump_vol": 0.15, "vol_jump_mean": 0.10, "jump_corr": -0.3}
DAYS = (7, 21, 60, 120, 240)
MONEYNESS = (0.7, 0.8, 0.88, 0.94, 1.0, 1.06, 1.14, 1.25, 1.45)


def write_synthetic_chain(path: Path, model: str, params: dict, *, noise: float = 0.0,
                          seed: int = 0, stamp: str = "2026-03-02T08:00:00+00:00",
                          forward0: float = 90000.0) -> pd.DataFrame:
    """A Deribit-format chain (the exports' columns) whose mids are ``model`` coin prices, plus
    Gaussian noise of ``noise`` times the half spread; spread ``max(5e-4, 8% mid)`` coin."""
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp(stamp)
    rows = []
    for days in DAYS:
        expiry = t0 + pd.Timedelta(days=days)
        t = days / 365.25
        forward = forward0 * (1 + 0.05 * t)
        strikes = np.round(forward * np.asarray(MONEYNESS), -2)
        for k in strikes:
            kind = "call" if k >= forward else "put"
            rows.append((expiry, t, forward, k, kind))
    frame = pd.DataFrame(rows, columns=["expiry", "t", "forward", "strike", "kind"])
    price = np.asarray(inverse_price(model, {k: jnp.float64(v) for k, v in params.items()},
                                     forward=frame["forward"].to_numpy(), strike=frame["strike"].to_numpy(),
                                     maturity=frame["t"].to_numpy(), is_call=(frame["kind"] == "call").to_numpy()))
    spread = np.maximum(5e-4, 0.08 * price)
    mid = price + noise * 0.5 * spread * rng.standard_normal(price.size)
    bid, ask = mid - 0.5 * spread, mid + 0.5 * spread
    out = pd.DataFrame({
        "timestamp": stamp,
        "instrument_name": [f"BTC-{e:%d%b%y}-{k:.0f}-{c[0].upper()}".upper()
                            for e, k, c in zip(frame["expiry"], frame["strike"], frame["kind"], strict=True)],
        "underlying": frame["forward"], "underlying_name": "SYN", "option_type": frame["kind"],
        "strike": frame["strike"], "expiry_datetime": frame["expiry"].map(lambda e: e.isoformat()),
        "time_to_maturity": frame["t"], "bid_price": bid, "ask_price": ask, "mark_price": price,
        "mid_price": mid, "futures_price": frame["forward"], "futures_instrument_name": "SYN",
        "implied_volatility": 0.6, "delta": 0.0, "vega": 0.0, "open_interest": 10.0, "volume": 0.0,
        "bid_ask_spread": spread, "currency": "BTC", "index_price": forward0, "volume_usd": 0.0,
    })
    out.to_csv(path, index=False)
    return out.assign(true_price=price)


def _true_rmse(fitted: pd.DataFrame, truth: pd.DataFrame, model: str) -> float:
    merged = fitted.merge(truth[["instrument_name", "true_price"]], on="instrument_name")
    return float(np.sqrt(np.mean((merged[f"price_{model}"] - merged["true_price"]) ** 2)))


def test_heston_round_trip_with_noise(tmp_path):
    """Known Heston parameters are recovered from a noisy chain; the fitted prices are closer
    to the true prices than the noise (RMSE at or below the noise level)."""
    truth = write_synthetic_chain(tmp_path / "h.csv", "heston", HESTON, noise=0.5, seed=1)
    chain = read_chain(tmp_path / "h.csv")
    rules = LiquidityFilter(min_open_interest=0.0)
    run = calibrate_snapshots([chain], models=["heston"], rules=rules, fraction=0.2, seed=3)
    p = run.last_params["heston"]
    assert abs(p["v0"] / HESTON["v0"] - 1) < 0.05
    assert abs(p["theta"] / HESTON["theta"] - 1) < 0.10
    assert abs(p["rho"] - HESTON["rho"]) < 0.05
    assert abs(p["sigma"] / HESTON["sigma"] - 1) < 0.15
    assert abs(p["kappa"] / HESTON["kappa"] - 1) < 0.30
    noise_rms = float(np.sqrt(np.mean((truth["mid_price"] - truth["true_price"]) ** 2)))
    test = run.fitted[run.fitted["set"] == "test"]
    assert _true_rmse(run.fitted, truth, "heston") < noise_rms
    assert run.summary["heston"]["test"]["rmse"] < 1.5 * noise_rms
    liquid = run.summary["heston"]["train"]["quotes"] + len(test)
    assert run.summary["heston"]["test"]["quotes"] == len(test) == round(0.2 * liquid)
    assert run.history["converged"].all()


def test_svcj_round_trip_exact_chain(tmp_path):
    """A noiseless SVCJ chain: the fit reprices every quote to well inside its spread and
    recovers the diffusive parameters; the jump parameters, weakly identified by five
    expiries, are reported (checked only to stay in a sane range)."""
    truth = write_synthetic_chain(tmp_path / "s.csv", "svcj", SVCJ)
    chain = read_chain(tmp_path / "s.csv")
    run = calibrate_snapshots([chain], models=["heston", "svcj"],
                              rules=LiquidityFilter(min_open_interest=0.0), fraction=0.0, seed=0)
    rmse = _true_rmse(run.fitted, truth, "svcj")
    spread = (truth["ask_price"] - truth["bid_price"]).mean()
    assert rmse < 0.01 * spread, (rmse, spread)
    assert run.fitted["inside_svcj"].all()
    p = run.last_params["svcj"]
    assert abs(np.sqrt(p["v0"]) - np.sqrt(SVCJ["v0"])) < 0.03
    assert abs(p["rho"] - SVCJ["rho"]) < 0.15
    # SVCJ nests Heston: it fits at least as well as Heston on the SVCJ chain
    assert rmse <= _true_rmse(run.fitted, truth, "heston")


def test_test_quotes_never_reach_the_fit(tmp_path):
    """Changing the prices of the test quotes leaves the fitted parameters bitwise unchanged."""
    write_synthetic_chain(tmp_path / "a.csv", "heston", HESTON, noise=0.5, seed=2)
    chain = read_chain(tmp_path / "a.csv")
    rules = LiquidityFilter(min_open_interest=0.0)
    first = calibrate_snapshots([chain], models=["black", "heston"], rules=rules, fraction=0.3, seed=5)
    test_names = set(first.fitted.loc[first.fitted["set"] == "test", "instrument_name"])
    q = chain.quotes.copy()
    moved = q["instrument_name"].isin(test_names)
    q.loc[moved, "bid"] *= 1.7
    q.loc[moved, "ask"] *= 1.9
    q.loc[moved, "mid"] = 0.5 * (q["bid"] + q["ask"])
    q.loc[moved, "spread"] = q["ask"] - q["bid"]
    q.loc[moved, "mark_iv"] = 2.0
    # the moved quotes stay liquid, so the same quotes are test quotes
    assert len(liquid_quotes(q, rules)[0]) == len(liquid_quotes(chain.quotes, rules)[0])
    second = calibrate_snapshots([type(chain)(**{**chain.__dict__, "quotes": q})],
                                 models=["black", "heston"], rules=rules, fraction=0.3, seed=5)
    assert second.last_params == first.last_params
    assert not np.allclose(second.summary["heston"]["test"]["rmse"], first.summary["heston"]["test"]["rmse"])


def test_filter_and_holdout_rules():
    q = pd.DataFrame({
        "timestamp": pd.Timestamp("2026-01-01", tz="UTC"),
        "maturity": [0.001, 0.1, 0.1, 0.1, 0.1, 0.1],
        "open_interest": [5, 0.5, 5, 5, 5, 5],
        "mid": [0.01, 0.01, 0.01, 0.01, 0.01, 0.01],
        "spread": [0.001, 0.001, 0.006, 0.001, 0.001, 0.001],
        "strike": [100.0, 100, 100, 250, 40, 100],
        "forward": 100.0,
    })
    kept, dropped = liquid_quotes(q)
    assert len(kept) == 1
    assert dropped == {"short_maturity": 1, "low_open_interest": 1, "wide_spread": 1, "moneyness": 2}
    many = pd.DataFrame({"timestamp": pd.Timestamp("2026-01-01", tz="UTC"), "x": range(100)})
    sets = assign_sets(many, fraction=0.2, seed=1)
    assert (sets == "test").sum() == 20
    np.testing.assert_array_equal(sets, assign_sets(many, fraction=0.2, seed=1))
    assert not np.array_equal(sets, assign_sets(many, fraction=0.2, seed=2))
    labelled = many.assign(set=np.where(many["x"] < 10, "test", "train"))
    assert (assign_sets(labelled, fraction=0.5, seed=1) == "test").sum() == 10


def test_chain_bounds():
    """SVCJ chain fits get the wider boxes of CHAIN_BOUNDS (the BTC history presses against
    the surface defaults); a config's fit.bounds overrides them; Heston keeps the defaults."""
    svcj = chain_bounds("svcj")
    assert svcj["kappa"] == (1e-3, 60.0) and svcj["sigma"] == (1e-2, 15.0)
    assert svcj["vol_jump_mean"][1] * svcj["jump_corr"][1] < 1.0  # E[exp(J_S)] finite
    assert chain_bounds("svcj", {"sigma": (0.01, 6.0)})["sigma"] == (0.01, 6.0)
    assert chain_bounds("heston")["sigma"] == (1e-2, 6.0)


def test_calibrate_job_on_a_folder_of_chains(tmp_path):
    """Two snapshots in a folder: warm start, history, fitted table, per-model params that a
    later job loads, and the summary's dropped counts."""
    folder = tmp_path / "chains"
    folder.mkdir()
    write_synthetic_chain(folder / "20260302T080000Z.csv", "heston", HESTON, noise=0.3, seed=1)
    write_synthetic_chain(folder / "20260303T080000Z.csv", "heston", {**HESTON, "v0": 0.27},
                          noise=0.3, seed=2, stamp="2026-03-03T08:00:00+00:00")
    config_path = tmp_path / "c.yaml"
    config_path.write_text(
        f"job: calibrate\nsurface: {{deribit: {folder}, currency: BTC}}\nmodels: [black, heston]\n"
        "filter: {min_open_interest: 0}\nholdout: {fraction: 0.2, seed: 4}\ntemporal_penalty: 0.1\n")
    out = tmp_path / "out"
    assert main(["run", str(config_path), "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["surface"]["snapshots"] == 2
    assert set(summary["dropped"]) >= {"one_sided", "crossed", "expired", "short_maturity",
                                       "low_open_interest", "wide_spread", "moneyness"}
    for m in ("black", "heston"):
        for label in ("train", "test"):
            assert set(summary["fits"][m][label]) == {"rmse", "mae", "inside", "quotes"}
        assert {"seconds", "converged"} <= set(summary["fits"][m])
    fitted = pd.read_parquet(out / "fitted.parquet")
    assert list(fitted.columns) == [*FITTED_COLUMNS, "price_black", "inside_black",
                                    "price_heston", "inside_heston"]
    assert fitted["timestamp"].nunique() == 2
    history = pd.read_parquet(out / "params_history.parquet")
    assert len(history) == 4
    assert {"timestamp", "model", "v0", "kappa", "theta", "sigma", "rho", *HISTORY_METRICS} <= set(history.columns)
    loaded = load_calibrated_model(out / "heston")
    assert loaded["name"] == "heston" and set(loaded["params"]) == set(HESTON)
    assert load_calibrated_model(out / "black")["name"] == "gbm"
    assert json.loads((out / "heston" / "params.json").read_text())["model"]["params"] == loaded["params"]
    assert (out / "report.html").stat().st_size > 10_000


def test_calibrate_job_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,strike\n2026-01-01,1\n")
    with pytest.raises(ConfigError, match=r"bad.csv: missing column 'instrument_name'"):
        calibrate_job.run(validate(calibrate_job.Config, {
            "job": "calibrate", "surface": {"deribit": str(bad)}, "models": ["heston"]}), tmp_path / "o")
    with pytest.raises(ConfigError, match="models"):
        validate(calibrate_job.Config, {"job": "calibrate", "surface": {"deribit": str(bad)}})
    with pytest.raises(ConfigError, match="temporal_penalty"):
        validate(calibrate_job.Config, {"job": "calibrate", "model": {"name": "heston"},
                                        "surface": "x.csv", "market": {"spot": 1.0},
                                        "temporal_penalty": 1.0})


CONFIGS = sorted((Path(__file__).parents[1] / "configs" / "deribit").glob("*.yaml"))


# The stress job on a real chain (a full overnight run, ~60-85 s with an empty compilation
# cache) runs in `make test-slow`; the chain calibrations run in `make test`.
SLOW = {"stress_btc_eth_chain"}


@pytest.mark.skipif(not (SHARED_DATA / "deribit").is_dir(),
                    reason=f"real Deribit data not found at {SHARED_DATA} (../shared/data)")
@pytest.mark.parametrize("config", [pytest.param(c, marks=pytest.mark.slow) if c.stem in SLOW else c for c in CONFIGS],
                         ids=[c.stem for c in CONFIGS])
def test_real_data_configs_run(config, tmp_path, monkeypatch):
    monkeypatch.chdir(Path(__file__).parents[1])
    out = tmp_path / config.stem
    assert main(["run", str(config), "--out", str(out), "--paths", "2048", "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["paths"] == 2048
    assert (out / "report.html").exists()


def test_stuck_svcj_warm_fit_restarts_from_heston(tmp_path, monkeypatch):
    """A warm SVCJ fit that ends above the same snapshot's Heston fit (which SVCJ nests) is
    refitted from that Heston fit plus small jumps, and the better fit is kept. The warm fit is
    made to look stuck (objective 1e9 at its start); without the restart it would be kept."""
    from riskengine.calibration import chain as chain_module

    chains = []
    for day, v0 in ((2, 0.20), (3, 0.30)):
        path = tmp_path / f"202603{day:02d}T080000Z.csv"
        write_synthetic_chain(path, "svcj", {**SVCJ, "v0": v0}, stamp=f"2026-03-{day:02d}T08:00:00+00:00")
        chains.append(read_chain(path))
    real = chain_module.fit_quotes
    svcj_starts = []

    def fit_quotes(train, model, *, starts, **kwargs):
        fit = real(train, model, starts=starts, **kwargs)
        if model != "svcj":
            return fit
        svcj_starts.append([dict(s) for s in starts])
        if len(svcj_starts) == 2:  # the second snapshot's warm fit: stuck where it started
            return dataclasses.replace(fit, params=dict(starts[0]), objective=1e9, data_objective=1e9)
        return fit

    monkeypatch.setattr(chain_module, "fit_quotes", fit_quotes)
    run = calibrate_snapshots(chains, models=["heston", "svcj"], fraction=0.0, seed=0,
                              rules=LiquidityFilter(min_open_interest=0.0), temporal_penalty=0.1)
    second = run.history[run.history["timestamp"] == run.history["timestamp"].max()].set_index("model")
    heston = second.loc["heston", list(HESTON)].to_dict()
    assert len(svcj_starts) == 3, svcj_starts  # cold, warm (stuck), restart
    restart = svcj_starts[2][0]
    assert all(restart[k] == pytest.approx(v, rel=1e-12) for k, v in heston.items())
    assert second.loc["svcj", "objective"] < 1e9
    assert second.loc["svcj", "quote_objective"] <= second.loc["heston", "quote_objective"]


def test_unconverged_fit_is_continued_from_where_it_stopped(tmp_path, monkeypatch):
    """A fit that stops at max_steps without meeting LM's criterion is run once more from its
    own parameters (with the same anchor), and the better of the two is kept."""
    from riskengine.calibration import chain as chain_module

    chains = []
    for day in (2, 3):
        path = tmp_path / f"202603{day:02d}T080000Z.csv"
        write_synthetic_chain(path, "heston", HESTON, stamp=f"2026-03-{day:02d}T08:00:00+00:00")
        chains.append(read_chain(path))
    real = chain_module.fit_quotes
    calls = []

    def fit_quotes(train, model, *, starts, **kwargs):
        fit = real(train, model, starts=starts, **kwargs)
        calls.append({"starts": [dict(s) for s in starts], "anchor": kwargs.get("anchor"),
                      "params": dict(fit.params)})
        if len(calls) == 2:  # the second snapshot's warm fit: out of steps
            return dataclasses.replace(fit, converged=False, objective=fit.objective + 1.0)
        return fit

    monkeypatch.setattr(chain_module, "fit_quotes", fit_quotes)
    run = calibrate_snapshots(chains, models=["black"], fraction=0.0, seed=0,
                              rules=LiquidityFilter(min_open_interest=0.0), temporal_penalty=0.1)
    assert len(calls) == 3, calls  # cold, warm (unconverged), continued
    assert calls[2]["starts"] == [calls[1]["params"]]
    assert calls[2]["anchor"] is calls[1]["anchor"] is not None
    assert bool(run.history["converged"].iloc[-1])
