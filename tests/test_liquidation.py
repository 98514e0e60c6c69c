"""Liquidation-aware stress (issue 19): hand-computed cases against the venue table's
figures, independent roots of equity = maintenance, Deribit's funding, and the first-passage
probability of a Brownian motion with drift."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.optimize import brentq
from scipy.stats import norm

from riskengine.accounts import account_market, book_margin, build_accounts, liquidation_moves
from riskengine.book import MarketState, base_state, base_values, position_values, validate_book
from riskengine.cli import main
from riskengine.market import load_market
from riskengine.revaluation import scenario_pnl
from riskengine.scenarios import load_scenario
from riskengine.venues import load_venues

MARKET = {
    "asof": "2026-01-01",
    "rate": 0.0,
    "stablecoins": {"USD": 1.0, "USDT": 1.0},
    "underlyings": {
        "BTC": {
            "spot": 100000.0, "basis": 0.0, "funding_premium_8h": 0.0,
            "vol_surface": {"expiries_days": [30, 90], "strikes": [80000, 100000, 120000],
                            "vols": [[0.8, 0.8, 0.8], [0.8, 0.8, 0.8]]},
        },
        "ETH": {
            "spot": 4000.0, "basis": 0.0, "funding_premium_8h": 0.0,
            "vol_surface": {"expiries_days": [30, 90], "strikes": [3000, 4000, 5000],
                            "vols": [[0.8, 0.8, 0.8], [0.8, 0.8, 0.8]]},
        },
    },
    "correlation": {"underlyings": ["BTC", "ETH"], "matrix": [[1.0, 0.5], [0.5, 1.0]]},
}
HEADER = "id,venue,type,underlying,quantity,strike,expiry,option,entry_price,margin_mode,collateral,multiplier,collateral_currency\n"
VENUES = load_venues()


def _dump(venue) -> dict:  # a venue as plain YAML-able data
    return json.loads(json.dumps(venue.model_dump()))
# The bundled venue table's figures these hand computations use (riskengine/venues.yaml).
BINANCE_FEE, DERIBIT_FEE = 0.0125, 0.0075
BINANCE_BTC_TIERS = [(50_000, 0.004), (250_000, 0.005), (3_000_000, 0.01)]
DERIBIT_BTC_FIRST_TIER = 0.01
DERIBIT_ETH_HAIRCUT, BINANCE_BTC_HAIRCUT = 0.03, 0.05


def test_the_hand_computations_read_the_bundled_table():
    assert VENUES["binance"].liquidation_fee.rate == BINANCE_FEE
    assert VENUES["deribit"].liquidation_fee.rate == DERIBIT_FEE
    assert VENUES["binance"].maintenance.tiers["BTC"][:3] == BINANCE_BTC_TIERS
    assert VENUES["deribit"].maintenance.tiers["BTC"][0][1] == DERIBIT_BTC_FIRST_TIER
    assert VENUES["deribit"].haircuts.rates["ETH"] == DERIBIT_ETH_HAIRCUT
    assert VENUES["binance"].haircuts.rates["BTC"] == BINANCE_BTC_HAIRCUT
    for name, venue in VENUES.items():  # every rule cites its source
        for rule in (venue.funding, venue.maintenance, venue.liquidation_fee, venue.haircuts):
            assert rule.source.strip(), name


def _market(tmp_path: Path, **premium):
    data = json.loads(json.dumps(MARKET))
    for u, p in premium.items():
        data["underlyings"][u]["funding_premium_8h"] = p
    (tmp_path / "market.yaml").write_text(yaml.safe_dump(data))
    return load_market(tmp_path / "market.yaml")


def _book(rows: str, market):
    return validate_book(pd.read_csv(io.StringIO(HEADER + rows)), market)


def _scenario(tmp_path: Path, name: str, move: float):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "kind": "hypothetical", "description": "test", "source": "test",
                                    "shocks": {"spot": {"*": move}}}))
    return load_scenario(path)


@pytest.mark.parametrize("move", [-0.40, +0.40])
def test_isolated_positions_lose_exactly_margin_plus_fee(tmp_path, move):
    market = _market(tmp_path)
    book = _book(
        "LONG,binance,linear_perpetual,BTC,2,,,,100000,isolated,20000,1,USDT\n"  # 2 BTC long, 20,000 USDT margin
        "SHORT,deribit,inverse_perpetual,BTC,-10000,,,,100000,isolated,0.2,10,BTC\n",  # 100,000 USD short, 0.2 BTC
        market)
    value0 = base_values(book, market)
    scenario = _scenario(tmp_path, "shock", move)
    table, summary = scenario_pnl(book, market, [scenario], value0, elapsed_days=1.0, accounts=build_accounts(book))
    pnl = summary["shock"]["by_position"]
    price = 100000.0 * (1.0 + move)
    if move < 0:  # the long is liquidated; its fee on the notional at the liquidation mark
        assert pnl["LONG"] == pytest.approx(-(20000.0 + BINANCE_FEE * 2 * price), rel=1e-12)
        assert summary["shock"]["liquidated"] == [{"account": "LONG", "at": "shock"}]
    else:  # the inverse short: 0.2 BTC posted (20,000 USD today), fee on 100,000 USD
        assert pnl["SHORT"] == pytest.approx(-(0.2 * 100000.0 + DERIBIT_FEE * 100000.0), rel=1e-12)
        assert summary["shock"]["liquidated"] == [{"account": "SHORT", "at": "shock"}]
    # held to the horizon, the same positions lose more than their margin
    held = table.set_index("position_id")["held_pnl"]
    assert held["LONG" if move < 0 else "SHORT"] < -1.5 * (20000.0 if move < 0 else 20000.0)


def _binance_btc_mm(notional: float) -> float:
    lower = 0.0
    total = 0.0
    for bound, rate in BINANCE_BTC_TIERS:
        total += rate * min(max(notional - lower, 0.0), bound - lower)
        lower = bound
    return total


def test_liquidation_prices_are_roots_of_equity_equals_maintenance(tmp_path):
    market = _market(tmp_path)
    book = _book(
        # linear long, 0.15 BTC posted against 1 BTC
        "LIN,binance,linear_perpetual,BTC,1,,,,100000,isolated,0.15,1,BTC\n"
        # inverse long, 100,000 USD face, 10,000 USDT posted
        "INVL,deribit,inverse_perpetual,BTC,10000,,,,100000,isolated,10000,10,USDT\n"
        # inverse short, 100,000 USD face, 5 ETH posted
        "INVS,deribit,inverse_perpetual,BTC,-10000,,,,100000,isolated,5,10,ETH\n",
        market)
    _, isolated = book_margin(build_accounts(book), market)
    price = {row["id"]: row["liquidation_price"] for row in isolated}

    # equity (USD, haircut collateral) - maintenance, written out by hand
    def linear(p):
        return 0.15 * p * (1 - BINANCE_BTC_HAIRCUT) + (p - 100000.0) - _binance_btc_mm(p)

    def inverse_long(p):  # 10,000 USDT + 100,000 (1/E - 1/P) BTC at P; notional 100,000 USD
        return 10000.0 + 100000.0 * (1 / 100000.0 - 1 / p) * p - DERIBIT_BTC_FIRST_TIER * 100000.0

    def inverse_short(p):  # ETH fixed at 4,000
        return 5 * 4000.0 * (1 - DERIBIT_ETH_HAIRCUT) - 100000.0 * (1 / 100000.0 - 1 / p) * p - DERIBIT_BTC_FIRST_TIER * 100000.0

    assert price["LIN"] == pytest.approx(brentq(linear, 1000.0, 99999.0, xtol=1e-9), rel=1e-9)
    assert price["INVL"] == pytest.approx(brentq(inverse_long, 50000.0, 99999.0, xtol=1e-9), rel=1e-9)
    assert price["INVS"] == pytest.approx(brentq(inverse_short, 100001.0, 300000.0, xtol=1e-9), rel=1e-9)
    assert price["INVS"] == pytest.approx(118400.0, rel=1e-9)  # 100,000 + 19,400 - 1,000

    # on the joint move (BTC and ETH together) the ETH collateral gains as BTC rises
    accounts = build_accounts(book)
    down, up = liquidation_moves(accounts, spot=np.array([100000.0, 4000.0]), market=account_market(accounts, market),
                                 along="common")
    k = accounts.names.index("INVS")

    def joint(x):
        return 5 * 4000.0 * (1 + x) * (1 - DERIBIT_ETH_HAIRCUT) - 100000.0 * x - DERIBIT_BTC_FIRST_TIER * 100000.0

    assert up[k] == pytest.approx(brentq(joint, 1e-6, 5.0, xtol=1e-12), rel=1e-9)
    assert up[k] > price["INVS"] / 100000.0 - 1.0


def test_deribit_funding_over_half_a_day(tmp_path):
    # A 100,000 USD Deribit inverse perpetual, long; Binance's linear one beside it.
    rows = ("D,deribit,inverse_perpetual,BTC,10000,,,,100000,cross,0,10,BTC\n"
            "B,binance,linear_perpetual,BTC,1,,,,100000,cross,0,1,USDT\n")
    for premium, deribit_rate, binance_rate in [(0.0001, 0.0, 0.0001), (0.0030, 0.00275, 0.0025)]:
        market = _market(tmp_path, BTC=premium)
        book = _book(rows, market)
        state = base_state(book, market)
        funding = {}
        for days in (0.0, 0.5):
            moved = MarketState(spot=state.spot, vol=state.vol, basis=state.basis, premium=state.premium,
                                elapsed_days=days, rate=state.rate)
            with jax.enable_x64(True):
                funding[days] = dict(zip(book.table["id"], np.asarray(position_values(book, moved)), strict=True))
        deribit = funding[0.5]["D"] - funding[0.0]["D"]
        binance = funding[0.5]["B"] - funding[0.0]["B"]
        # Deribit: damper max(0.025%, P) + min(-0.025%, P), accrued continuously: 12 h = 1.5 x 8 h
        assert deribit == pytest.approx(-deribit_rate * 1.5 * 100000.0, abs=1e-9)
        # Binance: P + clamp(0.01% - P, +-0.05%), paid at fixed times: one payment in 12 h
        assert binance == pytest.approx(-binance_rate * 1.0 * 100000.0, abs=1e-9)


def _stress_config(tmp_path: Path, book: str, *, liquidation, paths=20000, steps_per_day=1, horizons=(10,),
                   sigma=0.8, **extra) -> Path:
    (tmp_path / "market.yaml").write_text(yaml.safe_dump(MARKET))
    (tmp_path / "book.csv").write_text(HEADER + book)
    config = {
        "job": "stress", "book": "book.csv", "market": "market.yaml",
        "model": {"name": "gbm", "params": {"sigma": sigma}}, "horizons_days": list(horizons),
        "mc": {"paths": paths, "seed": 3, "dtype": "float64", "steps_per_day": steps_per_day},
        "risk": {"var_levels": [0.99], "es_levels": [0.975]}, "scenarios": "none", "history": None,
        "liquidation": liquidation, **extra,
    }
    path = tmp_path / "stress.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _run(tmp_path: Path, config: Path) -> dict:
    out = tmp_path / "out"
    assert main(["run", str(config), "--out", str(out), "--no-progress"]) == 0
    return json.loads((out / "summary.json").read_text())


def test_crossing_probability_matches_first_passage_of_brownian_motion_with_drift(tmp_path):
    # 1 BTC long on a dated linear future (no basis, no funding): the barrier is fixed.
    book = "F,binance,linear_future,BTC,1,,2027-01-01,,100000,isolated,20000,1,USDT\n"
    sigma, days = 0.8, 10
    with_bridge = _run(tmp_path, _stress_config(tmp_path, book, liquidation={"bridge": True}))
    account = with_bridge["liquidation"]["accounts"][0]
    barrier = account["liquidation_price"]
    # independent: equity 20,000 + (P - E) = maintenance(P) under Binance's BTC tiers
    assert barrier == pytest.approx(brentq(lambda p: 20000.0 + p - 100000.0 - _binance_btc_mm(p), 1e3, 99999.0), rel=1e-9)
    t = days / 365.0
    mu, b = -0.5 * sigma**2, math.log(barrier / 100000.0)  # log-price: drift mu, barrier b < 0
    s = sigma * math.sqrt(t)
    exact = norm.cdf((b - mu * t) / s) + math.exp(2 * mu * b / sigma**2) * norm.cdf((b + mu * t) / s)
    p, se = account["probability"]["10d"], account["probability_se"]["10d"]
    assert abs(p - exact) < 3 * se, (p, exact, se)
    # Daily checks alone miss the crossings between steps: clearly fewer liquidations.
    out = tmp_path / "no_bridge"
    out.mkdir()
    discrete = _run(out, _stress_config(out, book, liquidation={"bridge": False}))
    assert discrete["liquidation"]["accounts"][0]["probability"]["10d"] < exact - 6 * se
    # the liquidated position loses its margin and the fee, nothing more
    loss = account["expected_loss_given_liquidation"]["10d"]
    assert 20000.0 < loss < 20000.0 + BINANCE_FEE * barrier * 1.2
    # VaR with liquidations is capped there; held to the horizon it is not
    assert with_bridge["var"]["10d"]["0.99"] <= 20000.0 + BINANCE_FEE * 100000.0
    assert with_bridge["held_to_horizon"]["var"]["10d"]["0.99"] > 25000.0


BAD_VENUES = {
    "missing field": ({"binance": {k: v for k, v in _dump(VENUES["binance"]).items() if k != "funding"}},
                      ["venues.binance.funding", "missing"]),
    "negative fee": ({"binance": _dump(VENUES["binance"]) | {"liquidation_fee": {"rate": -0.01, "source": "x"}}},
                     ["venues.binance.liquidation_fee.rate", "-0.01"]),
    "non-increasing tiers": (
        {"binance": _dump(VENUES["binance"]) | {"maintenance": {"source": "x", "tiers": {
            "default": [[50000, 0.01], [40000, 0.02], [math.inf, 0.05]]}}}},
        ["venues.binance.maintenance.tiers.default", "increase"]),
}


@pytest.mark.parametrize("case", sorted(BAD_VENUES))
def test_bad_venue_table_is_refused_naming_venue_and_field(tmp_path, capsys, case):
    table, expected = BAD_VENUES[case]
    (tmp_path / "venues.yaml").write_text(yaml.safe_dump(table))
    config = _stress_config(tmp_path, "F,binance,linear_future,BTC,1,,2027-01-01,,100000,isolated,20000,1,USDT\n",
                            liquidation={}, paths=1000, venues="venues.yaml")
    assert main(["run", str(config), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    for text in expected:
        assert text in err, err
    assert not (tmp_path / "out").exists()


def test_unknown_venue_in_the_book_is_refused(tmp_path, capsys):
    config = _stress_config(tmp_path, "F,kraken,linear_future,BTC,1,,2027-01-01,,100000,isolated,20000,1,USDT\n",
                            liquidation={}, paths=1000)
    assert main(["run", str(config), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "venue 'kraken'" in err and "venue table" in err, err


def test_a_cross_account_closes_at_the_shock_and_never_ends_below_minus_fees(tmp_path):
    # Binance cross account: 2 BTC long perpetual (entry = spot) and 30,000 USDT posted on a spot row.
    market = _market(tmp_path)
    book = _book("P,binance,linear_perpetual,BTC,2,,,,100000,cross,0,1,USDT\n"
                 "C,binance,spot,ETH,1,,,,,cross,30000,1,USDT\n", market)
    value0 = base_values(book, market)
    table, summary = scenario_pnl(book, market, [_scenario(tmp_path, "down30", -0.30)], value0, elapsed_days=1.0,
                                  accounts=build_accounts(book))
    pnl = summary["down30"]["by_position"]
    fee = BINANCE_FEE * 2 * 70000.0
    # equity 30,000 - 60,000 < 0 at the shock: the perpetual closes there, pays the fee, and the
    # 30,000 beyond the collateral is the insurance fund's: the account ends at -fee
    assert summary["down30"]["liquidated"] == [{"account": "binance cross", "at": "shock"}]
    assert pnl["P"] == pytest.approx(-60000.0 - fee + 30000.0, rel=1e-12)
    assert pnl["C"] == pytest.approx(-0.30 * 4000.0, rel=1e-12)  # the spot ETH moves; the USDT stays
    assert pnl["P"] + value0[list(book.table["id"]).index("C")] - 4000.0 == pytest.approx(-fee, rel=1e-12)
    held = table.set_index("position_id")["held_pnl"]
    assert held["P"] < -60000.0  # held to the horizon: the whole move, and a day of funding


def test_liquidations_along_paths_do_not_depend_on_the_chunk_size(tmp_path):
    # The bundled book's margin accounts, GBM paths, the bridge on: the same blocks give the
    # same liquidations however many are compiled together.
    from riskengine.config import ModelConfig, build_assets
    from riskengine.revaluation import PathRevaluation

    root = Path(__file__).parents[1]
    market = load_market(root / "configs" / "data" / "market.yaml")
    book = validate_book(pd.read_csv(root / "configs" / "data" / "book.csv"), market)
    names = list(book.underlyings)
    assets = build_assets(ModelConfig(name="gbm", params={"sigma": 0.9}), names, market.correlation_matrix(names))
    runs = []
    for chunk in (1024, 4096):
        with jax.enable_x64(True):  # float64: bitwise (float32 programs fuse differently per chunk size)
            sim = PathRevaluation(book, market, assets, horizons_days=[1, 5], value0=base_values(book, market),
                                  paths=4000, seed=7, chunk_paths=chunk, block_size=1024, dtype=jax.numpy.float64,
                                  accounts=build_accounts(book), bridge=True)
            pnl = sim.total_pnl()
        runs.append((pnl, sim.held_pnl, sim.liquidation_stats["count"], sim.liquidation_stats["time"]))
    (pnl_a, held_a, count_a, time_a), (pnl_b, held_b, count_b, time_b) = runs
    np.testing.assert_array_equal(count_a, count_b)  # the same accounts liquidated on the same paths,
    np.testing.assert_array_equal(time_a, time_b)  # at the same steps
    # P&L to the last bits of float64 (an in-process x64 context does not keep every program's
    # operations in the same order across chunk sizes; the same held before path-wise liquidation)
    np.testing.assert_allclose(pnl_a, pnl_b, rtol=1e-10, atol=1e-6)
    np.testing.assert_allclose(held_a, held_b, rtol=1e-10, atol=1e-6)
    assert count_a.sum() > 0  # some account is liquidated on some path
