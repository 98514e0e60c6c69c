"""Tests of the closed-form and Fourier pricers in ``riskengine.analytic``.

References: the vendored ``tests/data/pricing.json`` (QuantLib 1.44, see its README), and
QuantLib called here (``AnalyticEuropeanEngine``, ``AnalyticHestonEngine``, ``BatesEngine``;
Merton through ``BatesEngine`` with constant variance, see ``test_merton_vs_quantlib``).
Everything runs in float64 with the dtype pinned on the inputs and checked on the outputs.

Speed: XLA compilation dominates (a Fourier pricer takes ~2 s to compile, microseconds to
run), so the tests call each pricer with as few distinct input shapes as possible:
mostly one option at a time (``scalar_grid``), plus one broadcast grid.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import QuantLib as ql

from riskengine.analytic import (
    bates_cf,
    bates_price,
    black76_price,
    black_scholes_greeks,
    black_scholes_price,
    heston_cf,
    heston_price,
    implied_vol,
    merton_price,
    svcj_cf,
    svcj_price,
)

# Module-level, before any array exists (conftest.py does the same for the whole session).
jax.config.update("jax_enable_x64", True)

F64 = np.float64
REPO_ROOT = Path(__file__).resolve().parents[1]
VENDORED_REFERENCE = REPO_ROOT / "tests" / "data" / "pricing.json"
SHARED_REFERENCE = REPO_ROOT.parent / "shared" / "reference" / "pricing.json"
REFERENCE_CASES = json.loads(VENDORED_REFERENCE.read_text())["cases"]

PRICE_RTOL = 1e-6
# Absolute floor for the Fourier-pricer comparisons: options worth less than ~1e-4 (30-day,
# 40% out of the money) are known to either engine only to the double-precision rounding
# of the integral, ~1e-12 * spot, so they are compared in absolute terms.
PRICE_ATOL = 1e-12 * 100.0

# Parameter sets for the QuantLib comparisons (Heston fields; Lewis 2000, Fang & Oosterlee
# 2008, and a crypto-like set with high variance, vol-of-vol above 1 and positive rho).
HESTON_SETS = {
    "lewis": {"v0": 0.04, "kappa": 4.0, "theta": 0.25, "sigma": 1.0, "rho": -0.5},
    "fang_oosterlee": {"v0": 0.0175, "kappa": 1.5768, "theta": 0.0398, "sigma": 0.5751,
                       "rho": -0.5711},
    "crypto": {"v0": 0.36, "kappa": 2.0, "theta": 0.45, "sigma": 1.3, "rho": 0.25},
}
JUMP_SETS = {
    "crash": {"jump_intensity": 0.5, "jump_mean": -0.1, "jump_vol": 0.15},
    "frequent": {"jump_intensity": 4.0, "jump_mean": 0.02, "jump_vol": 0.08},
}
CF_POINTS = [0.0, -1.0j, 0.7, 3.0, 12.0, 0.7 - 0.5j, 5.0 - 0.5j]
SVCJ_JUMPS = {"jump_intensity": 1.5, "jump_mean": -0.05, "jump_vol": 0.1,
              "vol_jump_mean": 0.08, "jump_corr": -0.5}
MARKET = {"spot": 100.0, "rate": 0.03, "dividend": 0.01}
STRIKES = np.array([70.0, 90.0, 100.0, 110.0, 140.0], dtype=F64)
DAYS = np.array([30, 182, 365, 3650])  # QuantLib maturities: Actual/365F year fractions
MATURITIES = DAYS.astype(F64) / 365.0


def f64(**kwargs):
    """The keyword arguments as float64 arrays (``is_call`` as bool)."""
    return {k: np.asarray(v, bool if k == "is_call" else F64) for k, v in kwargs.items()}


def assert_f64(x):
    assert x.dtype == jnp.float64
    return np.asarray(x)


# --------------------------------------------------------------------------------------
# QuantLib references
# --------------------------------------------------------------------------------------


def _ql_market(spot, rate, dividend):
    today = ql.Date(15, ql.January, 2024)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    risk_free = ql.YieldTermStructureHandle(ql.FlatForward(today, rate, dc))
    dividends = ql.YieldTermStructureHandle(ql.FlatForward(today, dividend, dc))
    return today, dc, ql.QuoteHandle(ql.SimpleQuote(spot)), risk_free, dividends


def _ql_option(today, strike, days, is_call):
    payoff = ql.PlainVanillaPayoff(ql.Option.Call if is_call else ql.Option.Put, float(strike))
    return ql.VanillaOption(payoff, ql.EuropeanExercise(today + int(days)))


def ql_grid(make_engine, market, *, days=DAYS, strikes=STRIKES):
    """QuantLib NPVs on a [call/put, maturity, strike] grid."""
    today, dc, spot, risk_free, dividends = _ql_market(**market)
    engine = make_engine(today, dc, spot, risk_free, dividends)
    out = np.empty((2, len(days), len(strikes)))
    for i, is_call in enumerate((True, False)):
        for j, n_days in enumerate(days):
            for k, strike in enumerate(strikes):
                option = _ql_option(today, strike, n_days, is_call)
                option.setPricingEngine(engine)
                out[i, j, k] = option.NPV()
    return out


def ql_heston_engine(params, jumps=None):
    def make(today, dc, spot, risk_free, dividends):
        p = params
        if jumps is None:
            process = ql.HestonProcess(risk_free, dividends, spot, p["v0"], p["kappa"],
                                       p["theta"], p["sigma"], p["rho"])
            # Adaptive Gauss–Lobatto to relative tolerance 1e-12 (as in pricing.json).
            return ql.AnalyticHestonEngine(ql.HestonModel(process), 1e-12, 1_000_000)
        process = ql.BatesProcess(risk_free, dividends, spot, p["v0"], p["kappa"], p["theta"],
                                  p["sigma"], p["rho"], jumps["jump_intensity"],
                                  jumps["jump_mean"], jumps["jump_vol"])
        return ql.BatesEngine(ql.BatesModel(process), 1e-12, 1_000_000)

    return make


# Grid shapes for our pricers: [call/put, maturity, strike] by broadcasting.
GRID = {
    "strike": STRIKES[None, None, :],
    "maturity": MATURITIES[None, :, None],
    "is_call": np.array([True, False])[:, None, None],
}


def scalar_grid(price_fn, **kwargs):
    """``price_fn`` on the [call/put, maturity, strike] grid, one option per call.

    Every call then has the same scalar float64 inputs, so a pricer compiles once for all
    the tests that use it (compilation, not pricing, is what takes time here).
    """
    kw = f64(**kwargs)
    out = np.empty((2, len(MATURITIES), len(STRIKES)))
    for i, is_call in enumerate((True, False)):
        for j, maturity in enumerate(MATURITIES):
            for k, strike in enumerate(STRIKES):
                option = f64(strike=strike, maturity=maturity, is_call=is_call)
                out[i, j, k] = assert_f64(price_fn(**kw, **option))
    return out


def assert_close(actual, expected, rtol=PRICE_RTOL, atol=0.0):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


# --------------------------------------------------------------------------------------
# The reference file
# --------------------------------------------------------------------------------------


def test_vendored_reference_is_identical():
    if not SHARED_REFERENCE.exists():
        pytest.skip(f"{SHARED_REFERENCE} not present")
    assert VENDORED_REFERENCE.read_bytes() == SHARED_REFERENCE.read_bytes()


def _decimals(value: float) -> int:
    text = repr(float(value))
    return len(text.split(".")[1]) if "." in text and "e" not in text else 0


@pytest.mark.parametrize("case", REFERENCE_CASES, ids=[c["name"] for c in REFERENCE_CASES])
def test_reference_prices(case):
    name = case["model"]["name"]
    params = f64(**case["model"]["params"])
    for option in case["options"]:
        # One option at a time: every call has the same (scalar) shapes, so each pricer
        # compiles once for all the cases.
        inputs = f64(strike=option["strike"], maturity=option["maturity"],
                     is_call=option["option"] == "call", **case["market"])
        if name == "gbm":
            price = black_scholes_price(vol=params["sigma"], **inputs)
            greeks = black_scholes_greeks(vol=params["sigma"], **inputs)
            for greek in ("delta", "gamma", "vega"):
                listed = option[greek]
                got = float(assert_f64(greeks[greek]))
                tol = 0.5 * 10.0 ** -_decimals(listed) * (1 + 1e-9)
                assert abs(got - listed) <= tol, (greek, got, listed)
        elif name == "heston":
            price = heston_price(**inputs, **params)
        elif name == "bates":
            price = bates_price(**inputs, **params)
        else:
            pytest.fail(f"unknown model {name}")
        assert_close(assert_f64(price), option["price"])


# --------------------------------------------------------------------------------------
# Black–Scholes against QuantLib
# --------------------------------------------------------------------------------------


def test_black_scholes_price_and_greeks_vs_quantlib():
    vol = 0.35
    today, dc, spot, risk_free, dividends = _ql_market(**MARKET)
    vol_ts = ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(),
                                                                vol, dc))
    process = ql.BlackScholesMertonProcess(spot, dividends, risk_free, vol_ts)
    engine = ql.AnalyticEuropeanEngine(process)
    names = ("price", "delta", "gamma", "vega", "theta", "rho")
    expected = {n: np.empty((2, len(DAYS), len(STRIKES))) for n in names}
    for i, is_call in enumerate((True, False)):
        for j, n_days in enumerate(DAYS):
            for k, strike in enumerate(STRIKES):
                option = _ql_option(today, strike, n_days, is_call)
                option.setPricingEngine(engine)
                values = (option.NPV(), option.delta(), option.gamma(), option.vega(),
                          option.theta(), option.rho())
                for n, v in zip(names, values, strict=True):
                    expected[n][i, j, k] = v
    inputs = f64(vol=vol, **MARKET, **GRID)
    assert_close(assert_f64(black_scholes_price(**inputs)), expected["price"], rtol=1e-12,
                 atol=1e-12)
    greeks = black_scholes_greeks(**inputs)
    for n in names[1:]:
        assert_close(assert_f64(greeks[n]), expected[n], rtol=1e-10, atol=1e-12)


def test_black_scholes_greeks_match_autodiff():
    kw = f64(spot=105.0, strike=95.0, maturity=0.7, rate=0.04, dividend=0.015, vol=0.3)
    args = ("spot", "vol", "rate", "maturity")

    def price(spot, vol, rate, maturity, is_call):
        return black_scholes_price(**{**kw, "spot": spot, "vol": vol, "rate": rate,
                                      "maturity": maturity}, is_call=is_call)

    @jax.jit
    def autodiff(is_call):
        first = jax.grad(price, argnums=(0, 1, 2, 3))(*(kw[a] for a in args), is_call)
        gamma = jax.grad(jax.grad(price))(*(kw[a] for a in args), is_call)
        return first, gamma

    for is_call in (True, False):
        (delta, vega, rho, d_maturity), gamma = autodiff(np.asarray(is_call))
        greeks = black_scholes_greeks(**kw, is_call=np.asarray(is_call))
        for name, ad in (("delta", delta), ("gamma", gamma), ("vega", vega), ("rho", rho),
                         ("theta", -d_maturity)):
            assert_close(greeks[name], ad, rtol=1e-12)


def test_black76_is_black_scholes_on_the_forward():
    kw = f64(**GRID, rate=MARKET["rate"])
    forward = f64(forward=100.0 * np.exp(0.02 * GRID["maturity"]))["forward"]
    b76 = black76_price(forward=forward, vol=F64(0.35), **kw)
    bs = black_scholes_price(**f64(vol=0.35, **MARKET, **GRID))
    assert_close(assert_f64(b76), bs, rtol=1e-13)
    # Zero volatility gives the discounted intrinsic value, with finite gradients.
    zero = black76_price(forward=forward, vol=F64(0.0), **kw)
    sign = np.where(GRID["is_call"], 1.0, -1.0)
    intrinsic = np.maximum(sign * (forward - GRID["strike"]), 0.0)
    assert_close(zero, np.exp(-0.03 * GRID["maturity"]) * intrinsic, rtol=1e-14)
    grad = jax.grad(lambda v: black76_price(forward=F64(110.0), strike=F64(100.0),
                                            maturity=F64(1.0), rate=F64(0.05), vol=v,
                                            is_call=True))(F64(0.0))
    assert np.isfinite(grad)


# --------------------------------------------------------------------------------------
# Implied volatility
# --------------------------------------------------------------------------------------


def test_implied_vol_round_trip():
    grid = f64(**MARKET, **GRID)
    forward = 100.0 * np.exp(0.02 * MATURITIES[:, None])
    intrinsic = np.maximum(np.where(GRID["is_call"], 1, -1) * (forward - STRIKES), 0)
    solved = 0
    for vol in (0.02, 0.1, 0.3, 0.8, 1.5, 3.0):
        price = assert_f64(black_scholes_price(vol=F64(vol), **grid))
        # Keep the prices with enough time value to pin the vol down in float64.
        time_value = price / np.exp(-0.03 * MATURITIES[:, None]) - intrinsic
        identifiable = time_value > 1e-9 * forward
        implied = assert_f64(implied_vol(price=price, **grid))
        assert_close(implied[identifiable], vol, rtol=1e-8)
        solved += identifiable.sum()
        # Repricing is exact wherever the price is identifiable.
        repriced = black_scholes_price(vol=implied, **grid)
        assert_close(np.asarray(repriced)[identifiable], price[identifiable], rtol=1e-12,
                     atol=1e-12)
    assert solved > 0.75 * 6 * price.size


def test_implied_vol_bounds_and_derivative():
    kw = f64(spot=100.0, strike=110.0, maturity=1.0, rate=0.02, dividend=0.0)
    # Below intrinsic (put) or above the spot (call): no implied vol.
    bad = implied_vol(price=F64(200.0), is_call=True, **kw)
    below = implied_vol(price=F64(1.0), is_call=False, **kw)
    assert np.isnan(bad) and np.isnan(below)
    # d vol / d price = 1 / vega (implicit differentiation through the solver).
    price = black_scholes_price(vol=F64(0.4), is_call=True, **kw)
    dvol = jax.grad(lambda p: implied_vol(price=p, is_call=True, **kw))(price)
    vega = black_scholes_greeks(vol=F64(0.4), is_call=True, **kw)["vega"]
    assert_close(dvol, 1.0 / vega, rtol=1e-8)


# --------------------------------------------------------------------------------------
# Heston, Bates, SVCJ, Merton against QuantLib
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(HESTON_SETS))
def test_heston_vs_quantlib(name):
    params = HESTON_SETS[name]
    expected = ql_grid(ql_heston_engine(params), MARKET)
    price = scalar_grid(heston_price, **MARKET, **params)
    assert_close(price, expected, atol=PRICE_ATOL)


@pytest.mark.parametrize("jumps", list(JUMP_SETS))
@pytest.mark.parametrize("name", ["fang_oosterlee", "crypto"])
def test_bates_vs_quantlib(name, jumps):
    params, jump_params = HESTON_SETS[name], JUMP_SETS[jumps]
    expected = ql_grid(ql_heston_engine(params, jump_params), MARKET)
    price = scalar_grid(bates_price, **MARKET, **params, **jump_params)
    assert_close(price, expected, atol=PRICE_ATOL)


def test_merton_vs_quantlib():
    # QuantLib's Python bindings do not export JumpDiffusionEngine (the Merton series
    # engine), so the reference is QuantLib's BatesEngine with a constant variance:
    # v0 = theta = sigma^2, rho = 0 and vol-of-vol 1e-5, which is Merton's model up to
    # O(1e-10) relative (the variance moves by O(1e-5) and rho = 0 makes the price's
    # sensitivity to vol-of-vol second order).
    sigma, jumps = 0.25, {"jump_intensity": 0.8, "jump_mean": -0.15, "jump_vol": 0.2}
    constant_variance = {"v0": sigma**2, "kappa": 1.0, "theta": sigma**2, "sigma": 1e-5,
                         "rho": 0.0}
    expected = ql_grid(ql_heston_engine(constant_variance, jumps), MARKET)
    price = merton_price(**f64(**MARKET, **GRID, sigma=sigma, **jumps))
    assert_close(assert_f64(price), expected, atol=PRICE_ATOL)


def test_merton_without_jumps_is_black_scholes():
    kw = f64(**MARKET, **GRID)
    merton = merton_price(**f64(sigma=0.3, jump_intensity=0.0, jump_mean=-0.2, jump_vol=0.1),
                          **kw)
    bs = black_scholes_price(vol=F64(0.3), **kw)
    assert_close(assert_f64(merton), bs, rtol=1e-12)


# --------------------------------------------------------------------------------------
# SVCJ
# --------------------------------------------------------------------------------------


def _svcj_riccati_cf(u, *, maturity, rate, dividend, v0, kappa, theta, sigma, rho,
                     jump_intensity, jump_mean, jump_vol, vol_jump_mean, jump_corr,
                     steps=2000):
    """The SVCJ characteristic function by RK4 on its Riccati ODEs (numpy, complex)."""
    iu = 1j * np.asarray(u, complex)
    lam, mu_v = jump_intensity, vol_jump_mean
    compensator = np.exp(jump_mean + 0.5 * jump_vol**2) / (1 - jump_corr * mu_v) - 1

    def rhs(a, b):
        jump = (np.exp(iu * jump_mean + 0.5 * iu**2 * jump_vol**2)
                / (1 - mu_v * (iu * jump_corr + b)))
        da = iu * (rate - dividend - lam * compensator) + kappa * theta * b + lam * (jump - 1)
        db = 0.5 * sigma**2 * b**2 - (kappa - rho * sigma * iu) * b + 0.5 * (iu**2 - iu)
        return da, db

    a = np.zeros_like(iu)
    b = np.zeros_like(iu)
    h = maturity / steps
    for _ in range(steps):
        k1 = rhs(a, b)
        k2 = rhs(a + 0.5 * h * k1[0], b + 0.5 * h * k1[1])
        k3 = rhs(a + 0.5 * h * k2[0], b + 0.5 * h * k2[1])
        k4 = rhs(a + h * k3[0], b + h * k3[1])
        a = a + h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
        b = b + h / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
    return np.exp(a + b * v0)


def test_svcj_cf_solves_its_riccati_equations():
    # The closed form (DPS 2000) against a direct numerical solution of the affine ODEs,
    # at real u and on Lewis' contour u - i/2, with correlated jumps in both factors.
    params = {"maturity": 2.0, "rate": 0.03, "dividend": 0.01, **HESTON_SETS["fang_oosterlee"],
              **SVCJ_JUMPS}
    u = np.array(CF_POINTS)
    closed = np.asarray(svcj_cf(u=u, **f64(**params)))
    assert_close(closed, _svcj_riccati_cf(u, **params), rtol=1e-10, atol=1e-12)


def test_svcj_reduces_to_bates():
    params = {**MARKET, **HESTON_SETS["fang_oosterlee"], **JUMP_SETS["crash"]}
    bates = scalar_grid(bates_price, **params)
    exact = scalar_grid(svcj_price, **params, vol_jump_mean=0.0, jump_corr=0.0)
    assert_close(exact, bates, rtol=1e-12, atol=1e-12)
    # Continuity as vol_jump_mean -> 0 (the limit is not a special case in the formula).
    near = scalar_grid(svcj_price, **params, vol_jump_mean=1e-9, jump_corr=0.3)
    assert_close(near, bates, rtol=1e-7, atol=1e-12)


# --------------------------------------------------------------------------------------
# Properties shared by the characteristic-function pricers
# --------------------------------------------------------------------------------------

CF_MODELS = {
    "heston": (heston_cf, heston_price, HESTON_SETS["lewis"]),
    "bates": (bates_cf, bates_price, {**HESTON_SETS["lewis"], **JUMP_SETS["crash"]}),
    "svcj": (svcj_cf, svcj_price, {**HESTON_SETS["fang_oosterlee"], **SVCJ_JUMPS}),
}


@pytest.mark.parametrize("model", list(CF_MODELS))
def test_cf_normalisation_and_martingale(model):
    cf, _, params = CF_MODELS[model]
    u = np.array(CF_POINTS)  # the first two are 0 and -i
    # The last variant has rho * sigma > kappa, where the little-trap formula's beta + d
    # vanishes at u = -i (a removable 0/0 that the implementation guards).
    variants = [(t, params) for t in (0.25, 3.0, 10.0)]
    variants.append((2.0, {**params, "kappa": 0.4, "sigma": 0.8, "rho": 0.5}))
    for maturity, p in variants:
        values = np.asarray(cf(u=u, **f64(maturity=maturity, rate=0.03, dividend=0.01, **p)))
        assert values.dtype == np.complex128
        assert values[0] == pytest.approx(1.0, abs=1e-14)
        # E[S_T / S_0] = cf(-i) = e^{(r - q) T}
        assert values[1] == pytest.approx(np.exp(0.02 * maturity), rel=1e-12)
        assert np.all(np.abs(values[2:5]) <= 1.0 + 1e-12)  # real u: |cf| <= 1


@pytest.mark.parametrize("model", list(CF_MODELS))
def test_put_call_parity(model):
    _, price_fn, params = CF_MODELS[model]
    call, put = scalar_grid(price_fn, **MARKET, **params)  # first axis: call, put
    t = MATURITIES[:, None]
    parity = 100.0 * np.exp(-0.01 * t) - STRIKES * np.exp(-0.03 * t)
    assert_close(call - put, parity, rtol=0, atol=1e-10)


def test_heston_broadcasts():
    params = HESTON_SETS["crypto"]
    grid = assert_f64(heston_price(**f64(**MARKET, **GRID, **params)))
    assert grid.shape == (2, len(DAYS), len(STRIKES))
    assert_close(grid, scalar_grid(heston_price, **MARKET, **params), rtol=1e-12)


def test_heston_autodiff_greeks_match_finite_differences():
    params = f64(**HESTON_SETS["lewis"])

    def price(spot, v0, strike, maturity):
        return heston_price(spot=spot, strike=strike, maturity=maturity, rate=F64(0.03),
                            dividend=F64(0.01), is_call=np.asarray(True),
                            **{**params, "v0": v0})

    autodiff = jax.jit(jax.grad(price, argnums=(0, 1)))  # reverse mode, one compilation
    spot, v0 = F64(100.0), params["v0"]
    for strike, maturity in ((90.0, 0.5), (100.0, 1.0), (115.0, 3.0)):
        k, t = F64(strike), F64(maturity)
        delta, dv0 = autodiff(spot, v0, k, t)

        def p(s, v, k=k, t=t):
            return float(price(F64(s), F64(v), k, t))

        h_s, h_v = 1e-3, 1e-6
        assert_close(delta, (p(spot + h_s, v0) - p(spot - h_s, v0)) / (2 * h_s), rtol=1e-7)
        assert_close(dv0, (p(spot, v0 + h_v) - p(spot, v0 - h_v)) / (2 * h_v), rtol=1e-6)
