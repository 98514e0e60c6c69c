"""Deribit chain reader (both layouts, drop counts, one-line errors) and the inverse-option
pricer (coin prices) against closed forms and QuantLib."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import QuantLib as ql
from scipy.stats import norm

from riskengine.analytic import inverse_price
from riskengine.config import ConfigError
from riskengine.data import DERIBIT_COLUMNS, list_snapshots, read_chain

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
OPTIONS = SHARED_DATA / "deribit" / "options"
needs_data = pytest.mark.skipif(
    not OPTIONS.is_dir(), reason=f"real Deribit data not found at {OPTIONS} (../shared/data)")

HEADER = ("timestamp,instrument_name,underlying,underlying_name,option_type,strike,expiry_datetime,"
          "time_to_maturity,bid_price,ask_price,mark_price,mid_price,futures_price,"
          "futures_instrument_name,implied_volatility,delta,vega,open_interest,volume,"
          "bid_ask_spread,currency,index_price,volume_usd")
TS = "2026-01-10T08:00:00+00:00"


def _row(name, kind, strike, expiry, bid, ask, *, currency="BTC", forward=90000.0, oi=5.0):
    return (f"{TS},{name},{forward},X,{kind},{strike},{expiry},0.1,{bid},{ask},0.01,0.01,"
            f"{forward},X,0.5,0.1,10,{oi},0,0.001,{currency},89900.0,0")


ROWS = [
    _row("BTC-30JAN26-90000-C", "call", 90000, "2026-01-30T08:00:00+00:00", 0.030, 0.032),
    _row("BTC-30JAN26-80000-P", "put", 80000, "2026-01-30T08:00:00+00:00", 0.005, 0.006),
    _row("BTC-30JAN26-120000-C", "call", 120000, "2026-01-30T08:00:00+00:00", "", 0.001),  # no bid
    _row("BTC-30JAN26-60000-P", "put", 60000, "2026-01-30T08:00:00+00:00", 0.0002, ""),  # no ask
    _row("BTC-30JAN26-95000-C", "call", 95000, "2026-01-30T08:00:00+00:00", 0.02, 0.019),  # crossed
    _row("BTC-9JAN26-90000-C", "call", 90000, "2026-01-09T08:00:00+00:00", 0.01, 0.02),  # expired
    _row("ETH-30JAN26-3000-C", "call", 3000, "2026-01-30T08:00:00+00:00", 0.05, 0.06,
         currency="ETH", forward=3100.0),
]


def _write(path: Path, rows=ROWS, header=HEADER, *, compress=False) -> Path:
    text = "\n".join([header, *rows]) + "\n"
    if compress:
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


# ------------------------------------------------------------------------------------------
# Reader
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
def test_reader_types_and_drop_counts(tmp_path, compress):
    path = _write(tmp_path / ("chain.csv.gz" if compress else "chain.csv"), compress=compress)
    chain = read_chain(path, currency="btc")
    q = chain.quotes
    assert chain.rows == 6 and len(chain) == 2
    assert chain.dropped == {"one_sided": 2, "crossed": 1, "expired": 1, "no_forward": 0, "duplicate": 0}
    assert list(q["instrument_name"]) == ["BTC-30JAN26-80000-P", "BTC-30JAN26-90000-C"]
    np.testing.assert_allclose(q["mid"], [0.0055, 0.031])
    np.testing.assert_allclose(q["spread"], [0.001, 0.002])
    np.testing.assert_allclose(q["mid_usd"], q["mid"] * 90000.0)
    assert list(q["is_call"]) == [False, True]
    # 20 days from 2026-01-10 08:00 to 2026-01-30 08:00 (Actual/365.25, as the exports)
    np.testing.assert_allclose(q["maturity"], 20 / 365.25)
    assert str(q["expiry"].dt.tz) == "UTC"
    eth = read_chain(path, currency="ETH")
    assert len(eth) == 1 and eth.quotes["forward"].iloc[0] == 3100.0


def test_reader_errors_are_one_line(tmp_path):
    header = HEADER.replace("futures_price", "fwd")
    path = _write(tmp_path / "bad.csv", header=header)
    with pytest.raises(ConfigError, match=r"bad.csv: missing column 'futures_price'") as err:
        read_chain(path)
    assert "\n" not in str(err.value)
    garbage = tmp_path / "garbage.csv.gz"
    garbage.write_bytes(b"not gzip at all")
    with pytest.raises(ConfigError, match=r"garbage.csv.gz: cannot read") as err:
        read_chain(garbage)
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="no such file"):
        read_chain(tmp_path / "missing.csv")
    rows = [ROWS[0].replace(",90000,2026", ",abc,2026")]
    with pytest.raises(ConfigError, match=r"column 'strike' row 2: not a number"):
        read_chain(_write(tmp_path / "strike.csv", rows))
    with pytest.raises(ConfigError, match=r"no SOL quotes"):
        read_chain(_write(tmp_path / "ok.csv"), currency="SOL")


def test_reader_keeps_a_set_column(tmp_path):
    header = HEADER + ",set"
    rows = [ROWS[0] + ",train", ROWS[1] + ",test"]
    chain = read_chain(_write(tmp_path / "s.csv", rows, header))
    assert list(chain.quotes["set"]) == ["test", "train"]  # sorted by expiry, strike
    with pytest.raises(ConfigError, match="column 'set'"):
        read_chain(_write(tmp_path / "t.csv", [ROWS[0] + ",validation"], header))


def test_reader_2021_layout(tmp_path):
    header = ("underlying_price,underlying_index,timestamp,open_interest,mark_price,mark_iv,"
              "instrument_name,index_price,best_bid_price,best_ask_price")
    rows = ["48000.0,SYN.BTC-26MAR21,1613068625200,2.0,0.05,80.0,BTC-26MAR21-50000-C,47795.2,0.048,0.052",
            "48000.0,SYN.BTC-26MAR21,1613068625266,2.0,0.05,80.0,BTC-26MAR21-50000-C,47795.2,0.049,0.051",
            "48000.0,SYN.BTC-26MAR21,1613068625266,2.0,0.05,80.0,BTC-26MAR21-40000-P,47795.2,0.0,0.02",
            "46000.0,SYN.BTC-5MAR21,1613068625266,2.0,0.05,80.0,BTC-5MAR21-40000-P,47795.2,0.01,0.012"]
    chain = read_chain(_write(tmp_path / "old.csv", rows, header))
    q = chain.quotes
    assert chain.dropped["one_sided"] == 1 and chain.dropped["duplicate"] == 1 and len(q) == 2
    assert q["bid"].iloc[1] == 0.049  # the later capture
    assert list(q["instrument_name"]) == ["BTC-5MAR21-40000-P", "BTC-26MAR21-50000-C"]
    assert q["expiry"].iloc[0] == pd.Timestamp("2021-03-05 08:00", tz="UTC")
    np.testing.assert_allclose(q["mark_iv"], 0.8)
    np.testing.assert_allclose(q["forward"], [46000.0, 48000.0])
    stamp = pd.Timestamp(1613068625266, unit="ms", tz="UTC")
    np.testing.assert_allclose(
        q["maturity"].iloc[0], (pd.Timestamp("2021-03-05 08:00", tz="UTC") - stamp).total_seconds() / (365.25 * 86400))


@needs_data
def test_reader_on_the_real_snapshots():
    files = list_snapshots(OPTIONS)
    assert len(files) == 236
    for currency in ("BTC", "ETH"):
        chain = read_chain(files[0], currency=currency)
        raw = pd.read_csv(files[0])
        raw = raw[raw["currency"] == currency]
        assert chain.rows == len(raw)
        assert len(chain) + sum(chain.dropped.values()) == len(raw)
        q = chain.quotes
        assert (q["ask"] > q["bid"]).all() and (q["maturity"] > 0).all()
        # the file's own time to maturity agrees with ours to a second
        merged = q.merge(raw[["instrument_name", "time_to_maturity"]], on="instrument_name")
        np.testing.assert_allclose(merged["maturity"], merged["time_to_maturity"], atol=1 / (365.25 * 86400))
    old = read_chain(SHARED_DATA / "deribit_2021" / "btc_option_data.csv", currency="BTC")
    assert len(old) == 135 and old.dropped["duplicate"] == 135 and old.timestamp.year == 2021


def test_real_layout_columns_are_the_documented_ones():
    assert set(DERIBIT_COLUMNS) <= set(HEADER.split(","))


# ------------------------------------------------------------------------------------------
# Inverse pricer
# ------------------------------------------------------------------------------------------


def _black_coin(forward, strike, t, vol, is_call):
    """Independent closed form of the coin price: N(d1) - (K/F) N(d2) (call)."""
    d1 = (math.log(forward / strike) + 0.5 * vol * vol * t) / (vol * math.sqrt(t))
    d2 = d1 - vol * math.sqrt(t)
    if is_call:
        return norm.cdf(d1) - strike / forward * norm.cdf(d2)
    return strike / forward * norm.cdf(-d2) - norm.cdf(-d1)


def test_inverse_black_closed_form_and_gradient():
    forward = np.array([90000.0, 90000.0, 3100.0, 95000.0])
    strike = np.array([80000.0, 120000.0, 3000.0, 95000.0])
    t = np.array([0.05, 0.5, 1.0, 0.2])
    is_call = np.array([False, True, True, False])
    got = inverse_price("black", {"sigma": jnp.float64(0.55)}, forward=forward, strike=strike,
                        maturity=t, is_call=is_call)
    assert got.dtype == jnp.float64
    want = [_black_coin(f, k, tt, 0.55, c) for f, k, tt, c in zip(forward, strike, t, is_call, strict=True)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # vega in coin: d/dsigma = sqrt(T) phi(d1) (same for calls and puts)
    grad = jax.grad(lambda s: inverse_price("black", {"sigma": s}, forward=forward, strike=strike,
                                            maturity=t, is_call=is_call).sum())(jnp.float64(0.55))
    d1 = (np.log(forward / strike) + 0.5 * 0.55**2 * t) / (0.55 * np.sqrt(t))
    np.testing.assert_allclose(grad, np.sum(np.sqrt(t) * norm.pdf(d1)), rtol=1e-10)


def _ql_usd(model, p, forward, strike, days, is_call):
    today = ql.Date(10, ql.January, 2026)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    flat = ql.YieldTermStructureHandle(ql.FlatForward(today, 0.0, dc))
    spot = ql.QuoteHandle(ql.SimpleQuote(forward))
    if model == "heston":
        process = ql.HestonProcess(flat, flat, spot, p["v0"], p["kappa"], p["theta"], p["sigma"], p["rho"])
        engine = ql.AnalyticHestonEngine(ql.HestonModel(process), 1e-12, 1_000_000)
    else:
        process = ql.BatesProcess(flat, flat, spot, p["v0"], p["kappa"], p["theta"], p["sigma"],
                                  p["rho"], p["jump_intensity"], p["jump_mean"], p["jump_vol"])
        engine = ql.BatesEngine(ql.BatesModel(process), 1e-12, 1_000_000)
    payoff = ql.PlainVanillaPayoff(ql.Option.Call if is_call else ql.Option.Put, float(strike))
    option = ql.VanillaOption(payoff, ql.EuropeanExercise(today + int(days)))
    option.setPricingEngine(engine)
    return option.NPV()


HESTON = {"v0": 0.3, "kappa": 2.0, "theta": 0.35, "sigma": 1.2, "rho": -0.2}
BATES = {**HESTON, "jump_intensity": 1.5, "jump_mean": -0.08, "jump_vol": 0.2}


@pytest.mark.parametrize("model", ["heston", "bates", "svcj"])
def test_inverse_fourier_models_match_quantlib(model):
    """Coin price = QuantLib's USD price on the forward (rate 0) / forward. SVCJ with
    ``vol_jump_mean`` -> 0 and ``jump_corr = 0`` is Bates (no other SVCJ reference in QuantLib)."""
    forward, days = 92617.64, np.array([7, 30, 90, 365])
    strike = np.array([70000.0, 90000.0, 110000.0, 150000.0])
    is_call = strike >= forward
    if model == "heston":
        params, ref_model, ref_params = HESTON, "heston", HESTON
    elif model == "bates":
        params, ref_model, ref_params = BATES, "bates", BATES
    else:
        params = {**BATES, "vol_jump_mean": 1e-12, "jump_corr": 0.0}
        ref_model, ref_params = "bates", BATES
    t = np.repeat(days / 365.0, strike.size)
    k = np.tile(strike, days.size)
    c = np.tile(is_call, days.size)
    got = np.asarray(inverse_price(model, {n: jnp.float64(v) for n, v in params.items()},
                                   forward=forward, strike=k, maturity=t, is_call=c))
    want = np.array([_ql_usd(ref_model, ref_params, forward, kk, d, cc) / forward
                     for kk, d, cc in zip(k, np.repeat(days, strike.size), c, strict=True)])
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-10)


def test_inverse_svcj_is_differentiable_and_vectorised():
    params = {**BATES, "vol_jump_mean": 0.1, "jump_corr": -0.5}
    forward = np.array([90000.0, 91000.0, 95000.0])
    strike = np.array([85000.0, 100000.0, 120000.0])
    t = np.array([0.02, 0.25, 1.0])
    is_call = np.array([False, True, True])

    def total(p):
        return inverse_price("svcj", p, forward=forward, strike=strike, maturity=t, is_call=is_call,
                             num_nodes=256).sum()

    p = {n: jnp.float64(v) for n, v in params.items()}
    grad = jax.grad(total)(p)
    for name in ("v0", "sigma", "vol_jump_mean", "jump_corr"):
        h = 1e-6
        up = total({**p, name: p[name] + h})
        down = total({**p, name: p[name] - h})
        np.testing.assert_allclose(grad[name], (up - down) / (2 * h), rtol=1e-5, atol=1e-9)
    # one call over all quotes equals quote-by-quote calls
    each = [float(inverse_price("svcj", p, forward=f, strike=k, maturity=tt, is_call=c, num_nodes=256))
            for f, k, tt, c in zip(forward, strike, t, is_call, strict=True)]
    np.testing.assert_allclose(
        inverse_price("svcj", p, forward=forward, strike=strike, maturity=t, is_call=is_call,
                      num_nodes=256), each, rtol=1e-12)
    with pytest.raises(ValueError, match="jump_corr"):
        inverse_price("svcj", BATES, forward=forward, strike=strike, maturity=t, is_call=is_call)


# ------------------------------------------------------------------------------------------
# Market snapshot from a chain
# ------------------------------------------------------------------------------------------


@needs_data
def test_market_from_a_real_chain():
    from riskengine.config import validate
    from riskengine.data import market_from_chain
    from riskengine.market import MarketSnapshot

    path = list_snapshots(OPTIONS)[60]
    market = validate(MarketSnapshot, market_from_chain(path, vol_interpolation="linear"))
    for currency in ("BTC", "ETH"):
        chain = read_chain(path, currency=currency)
        u = market.underlyings[currency]
        assert u.spot == pytest.approx(chain.index)
        # the one basis reproduces every expiry's forward to within 1%
        fwd = chain.quotes.groupby("maturity")["forward"].first()
        np.testing.assert_allclose(market.forward(currency, expiry_years=fwd.index.to_numpy() * 365.25 / 365),
                                   fwd.to_numpy(), rtol=0.01)
        # at a quoted out-of-the-money strike of a listed expiry the surface gives its mark IV
        q = chain.quotes
        q = q[(q["maturity"] > 30 / 365) & (q["option"] == "put") & (q["strike"] < 0.9 * q["forward"])]
        row = q.iloc[len(q) // 2]
        vol = market.implied_vol(currency, strike=row["strike"], expiry_years=row["maturity"] * 365.25 / 365)
        assert abs(float(vol) - row["mark_iv"]) < 0.02


def test_market_from_chain_needs_strikes(tmp_path):
    from riskengine.data import market_from_chain

    with pytest.raises(ConfigError, match="no BTC expiry with 5 or more strikes"):
        market_from_chain(_write(tmp_path / "c.csv"), currencies=("BTC",), min_days=1.0)
