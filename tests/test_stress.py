"""The stress job: exact answers on small books, contributions, bad input, breaches."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.stats import binom, norm

from riskengine.cli import main

ROOT = Path(__file__).parents[1]

MARKET = {
    "asof": "2026-01-01",
    "rate": 0.0,
    "stablecoins": {"USD": 1.0, "USDT": 1.0},
    "underlyings": {
        "BTC": {
            "spot": 100000.0, "basis": 0.0, "funding_premium_8h": 0.0,
            "vol_surface": {"expiries_days": [30, 90], "strikes": [80000, 100000, 120000],
                            "vols": [[0.6, 0.6, 0.6], [0.6, 0.6, 0.6]]},
        },
        "ETH": {
            "spot": 4000.0, "basis": 0.0, "funding_premium_8h": 0.0,
            "vol_surface": {"expiries_days": [30, 90], "strikes": [3000, 4000, 5000],
                            "vols": [[0.8, 0.8, 0.8], [0.8, 0.8, 0.8]]},
        },
    },
    "correlation": {"underlyings": ["BTC", "ETH"], "matrix": [[1.0, 0.8], [0.8, 1.0]]},
}
HEADER = "id,venue,type,underlying,quantity,strike,expiry,option,entry_price,margin_mode,collateral,multiplier\n"


def write(tmp_path: Path, book: str, *, model=None, market=None, header=HEADER, **extra) -> Path:
    (tmp_path / "market.yaml").write_text(yaml.safe_dump(market or MARKET))
    (tmp_path / "book.csv").write_text(header + book)
    config = {
        "job": "stress",
        "book": str(tmp_path / "book.csv"),
        "market": str(tmp_path / "market.yaml"),
        "model": model or {"name": "gbm", "params": {"sigma": 0.6}},
        "horizons_days": [1],
        "mc": {"paths": 100_000, "seed": 5, "dtype": "float64"},
        "risk": {"var_levels": [0.99], "es_levels": [0.975]},
        "scenarios": "none",
        "history": None,
    }
    config.update(extra)
    path = tmp_path / "stress.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run(tmp_path: Path, config: Path, *flags: str) -> tuple[int, dict]:
    out = tmp_path / "out"
    code = main(["run", str(config), "--out", str(out), "--no-progress", *flags])
    summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else {}
    return code, summary


def test_var_of_a_spot_position_is_the_lognormal_quantile(tmp_path):
    """Long q BTC under GBM (zero drift): P&L = q S0 (exp(sigma sqrt(h) Z - sigma^2 h / 2) - 1)."""
    q, s0, sigma, h, n = 10.0, 100000.0, 0.6, 1 / 365, 100_000
    code, summary = run(tmp_path, write(tmp_path, "B1,binance,spot,BTC,10,,,,,cross,0,1\n"))
    assert code == 0

    def loss(z):
        return -q * s0 * math.expm1(sigma * math.sqrt(h) * z - 0.5 * sigma**2 * h)

    exact = loss(norm.ppf(0.01))
    # distribution-free 99.9% band on the empirical quantile: ranks of Binomial(n, 0.01)
    lo, hi = binom.ppf([0.0005, 0.9995], n, 0.01)
    band = (loss(norm.ppf(hi / n)), loss(norm.ppf(lo / n)))
    var = summary["var"]["1d"]["0.99"]
    assert band[0] <= var <= band[1], (var, exact, band)
    assert abs(var / exact - 1) < 0.03
    es = summary["es"]["1d"]["0.975"]
    # ES of the lognormal P&L in closed form: -q S0 (E[e^X | X <= x_a] - 1)
    a = 0.025
    za = norm.ppf(a)
    es_exact = -q * s0 * (norm.cdf(za - sigma * math.sqrt(h)) / a - 1)
    assert es >= summary["var"]["1d"].get("0.975", 0.0)
    assert abs(es / es_exact - 1) < 0.03
    assert summary["greeks"]["BTC"]["delta"] == pytest.approx(q)
    assert summary["greeks"]["BTC"]["gamma"] == pytest.approx(0.0, abs=1e-12)


BOOK = (
    "S1,binance,spot,BTC,2,,,,,cross,1000000,1\n"  # USDT collateral: no cross account is liquidated
    "LF1,binance,linear_future,BTC,3,,2026-03-27,,98000,cross,0,1\n"
    "IF1,deribit,inverse_future,BTC,-50000,,2026-03-27,,102000,cross,0,10\n"
    "LP1,binance,linear_perpetual,ETH,-40,,,,4100,cross,0,1\n"
    "IP1,deribit,inverse_perpetual,ETH,20000,,,,3900,cross,0,1\n"
    "LO1,binance,linear_option,BTC,-5,110000,2026-03-02,call,0,cross,0,1\n"
    "IO1,deribit,inverse_option,ETH,30,3500,2026-03-02,put,0,cross,1000000,1\n"
)


def test_scenario_pnl_equals_hand_revaluation(tmp_path):
    config = write(tmp_path, BOOK, scenarios=["spot_down_20", "spot_down_10+spot_up_10"], scenario_horizon_days=0)
    code, summary = run(tmp_path, config)
    assert code == 0
    pnl = summary["scenarios"]["spot_down_20"]["by_position"]
    btc, eth = 100000.0, 4000.0
    btc2, eth2 = 0.8 * btc, 0.8 * eth
    assert pnl["S1"] == pytest.approx(2 * (btc2 - btc))
    assert pnl["LF1"] == pytest.approx(3 * (btc2 - btc))  # basis 0: F = S
    # inverse future: -50000 x 10 USD x (1/entry - 1/F) coins, at spot
    coin = lambda f: -50000 * 10 * (1 / 102000 - 1 / f)  # noqa: E731
    assert pnl["IF1"] == pytest.approx(coin(btc2) * btc2 - coin(btc) * btc)
    assert pnl["LP1"] == pytest.approx(-40 * (eth2 - eth))
    inv = lambda f: 20000 * (1 / 3900 - 1 / f)  # noqa: E731
    assert pnl["IP1"] == pytest.approx(inv(eth2) * eth2 - inv(eth) * eth)

    # options: Black-76 at zero rates, flat vols, T = 60 days / 365
    t = 60 / 365

    def black(f, k, vol, call):
        d1 = (math.log(f / k) + 0.5 * vol**2 * t) / (vol * math.sqrt(t))
        d2 = d1 - vol * math.sqrt(t)
        return f * norm.cdf(d1) - k * norm.cdf(d2) if call else k * norm.cdf(-d2) - f * norm.cdf(-d1)

    assert pnl["LO1"] == pytest.approx(-5 * (black(btc2, 110000, 0.6, True) - black(btc, 110000, 0.6, True)), rel=1e-9)
    put_usd = lambda f: 30 * black(f, 3500, 0.8, False) / f * f  # coin value x spot (F = S)  # noqa: E731
    assert pnl["IO1"] == pytest.approx(put_usd(eth2) - put_usd(eth), rel=1e-9)
    assert summary["scenarios"]["spot_down_20"]["pnl"] == pytest.approx(sum(pnl.values()))
    # composed: 0.9 * 1.1 = 0.99, a 1% fall
    assert summary["scenarios"]["spot_down_10+spot_up_10"]["by_position"]["S1"] == pytest.approx(2 * (0.99 * btc - btc))


def test_funding_spike_accrues_over_the_scenario_horizon(tmp_path):
    # premium +0.3% per 8 h: rate = 0.003 + clamp(0.0001 - 0.003, -0.0005, 0.0005) = 0.0025;
    # over 1 day (3 periods) a short of 40 ETH at mark 4000 receives 3 * 0.0025 * 40 * 4000.
    config = write(tmp_path, "LP1,binance,linear_perpetual,ETH,-40,,,,4100,cross,0,1\n", scenarios=["funding_spike"],
                   scenario_horizon_days=1)
    code, summary = run(tmp_path, config)
    assert code == 0
    assert summary["scenarios"]["funding_spike"]["pnl"] == pytest.approx(3 * 0.0025 * 40 * 4000)


def test_contributions_add_up_and_es_exceeds_var(tmp_path):
    model = {"BTC": {"name": "heston", "params": {"v0": 0.36, "kappa": 2.0, "theta": 0.36, "sigma": 0.8, "rho": -0.3}},
             "ETH": {"name": "merton", "params": {"sigma": 0.7, "jump_intensity": 5.0, "jump_mean": -0.05, "jump_vol": 0.1}}}
    config = write(tmp_path, BOOK, model=model, horizons_days=[1, 5],
                   risk={"var_levels": [0.99, 0.975], "es_levels": [0.975, 0.99]}, mc={"paths": 20_000, "seed": 2})
    code, summary = run(tmp_path, config)
    assert code == 0
    for hk in ("1d", "5d"):
        for level in ("0.975", "0.99"):
            assert summary["es"][hk][level] >= summary["var"][hk][level]
        for measure, block in summary["contributions"][hk].items():
            kind, level = measure.split("_")
            total = summary[kind][hk][level]
            assert block["total"] == pytest.approx(total)
            assert sum(block["by_position"].values()) == pytest.approx(total, rel=1e-9)
            assert sum(block["by_underlying"].values()) == pytest.approx(total, rel=1e-9)
    pnl = __import__("pandas").read_parquet(tmp_path / "out" / "pnl.parquet")
    assert list(pnl.columns)[:2] == ["pnl_1d", "pnl_5d"] and len(pnl) == 20_000
    for hk in ("1d", "5d"):  # per underlying (for the allocate job): they add up to the book
        parts = [c for c in pnl.columns if c.startswith(f"pnl_{hk}_")]
        assert len(parts) == len(summary["underlyings"])
        np.testing.assert_allclose(pnl[parts].sum(axis=1), pnl[f"pnl_{hk}"], rtol=1e-9, atol=1e-6)
    assert np.all(np.isfinite(pnl.to_numpy()))


def test_liquidation_breach_and_fail_on_breach(tmp_path):
    # isolated linear long: entry 100000, collateral 10% of notional, MMR 5%:
    # liquidation at 100000 * 0.9 / 0.95 = 94736.84, 5.26% below the mark
    book = "P1,binance,linear_perpetual,BTC,1,,,,100000,isolated,10000,1,0.05\n"
    config = write(tmp_path, book, header=HEADER.rstrip() + ",mmr\n",
                   limits={"liquidation_distance_min": 0.15, "var_99_1d": 1e9})
    code, summary = run(tmp_path, config, "--fail-on-breach")
    assert code == 3
    iso = summary["isolated"][0]
    assert iso["liquidation_price"] == pytest.approx(100000 * 0.9 / 0.95)
    assert [b["limit"] for b in summary["breaches"]] == ["liquidation_distance_min"]
    assert (tmp_path / "out" / "report.html").exists()  # results are still written


BAD_BOOK = (
    "A,binance,spot,BTC,1,,,,,cross,0,1\n"
    "A,binance,spot,BTC,1,,,,,cross,0,1\n"  # duplicate id
    "B,binance,swaption,BTC,1,,,,,cross,0,1\n"  # unknown instrument
    "C,binance,linear_option,BTC,1,90000,2025-06-01,call,0,cross,0,1\n"  # expired
    "D,binance,spot,DOGE,1,,,,,cross,0,1\n"  # no market data
    "E,binance,spot,ETH,nan,,,,,cross,0,1\n"  # NaN quantity
)


def test_bad_book_lists_every_bad_row(tmp_path, capsys):
    code, _ = run(tmp_path, write(tmp_path, BAD_BOOK))
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    for fragment in ("5 bad row(s)", "row 2 (id 'A'): duplicate id", "unknown instrument type 'swaption'",
                     "expired on 2025-06-01", "no market data for underlying 'DOGE'", "quantity is nan"):
        assert fragment in err, fragment
    assert not (tmp_path / "out").exists()


def test_vol_surface_with_gaps_is_refused(tmp_path, capsys):
    market = json.loads(json.dumps(MARKET))
    market["underlyings"]["BTC"]["vol_surface"]["vols"][1][2] = None
    code, _ = run(tmp_path, write(tmp_path, "S1,binance,spot,BTC,1,,,,,cross,0,1\n", market=market))
    err = capsys.readouterr().err
    assert code == 2 and "vols[1][2] (expiry 90.0d, strike 120000.0) is None" in err
    assert not (tmp_path / "out").exists()


def test_bundled_stress_config_validates():
    from riskengine.config import load_yaml, validate
    from riskengine.jobs import stress

    config = validate(stress.Config, load_yaml(ROOT / "configs" / "stress.yaml"))
    assert config.limits["var_99_1d"] == 2.0e6


def test_a_limit_on_an_uncomputed_figure_is_refused_before_running(tmp_path, capsys):
    config = write(tmp_path, "S1,binance,spot,BTC,1,,,,,cross,0,1\n", limits={"var_99_10d": 1e6})
    code, _ = run(tmp_path, config)
    err = capsys.readouterr().err
    assert code == 2 and "limits.var_99_10d" in err and "horizons_days" in err
    assert not (tmp_path / "out").exists()


def test_book_as_yaml_equals_book_as_csv(tmp_path):
    """The book loader takes YAML (a list of positions) as well as CSV."""
    import pandas as pd

    from riskengine.book import read_book_table

    (tmp_path / "book.csv").write_text(HEADER + BOOK)
    rows = pd.read_csv(tmp_path / "book.csv").to_dict("records")
    (tmp_path / "book.yaml").write_text(yaml.safe_dump({"positions": rows}))
    a = read_book_table(tmp_path / "book.csv")
    b = read_book_table(tmp_path / "book.yaml")
    assert list(a["id"]) == list(b["id"])
    assert np.allclose(a["quantity"].astype(float), b["quantity"].astype(float))
