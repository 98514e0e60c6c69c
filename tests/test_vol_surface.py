"""Vol-surface interpolation of the market snapshot: SVI mode (fit per expiry, SVI in strike,
total variance in expiry at fixed log-forward-moneyness, differentiable in JAX, arbitrage
checks, clear errors) against independent NumPy formulas; the linear mode unchanged."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from riskengine.config import ConfigError, validate
from riskengine.market import MarketSnapshot, load_market
from riskengine.scenarios import Scenario

ROOT = Path(__file__).parents[1]
BUNDLED = ROOT / "configs" / "data" / "market.yaml"


def _svi_w(p, k):
    """Raw SVI total variance, written out here independently of riskengine."""
    return p["a"] + p["b"] * (p["rho"] * (k - p["m"]) + np.sqrt((k - p["m"]) ** 2 + p["sigma"] ** 2))


def _snapshot(vols, *, strikes=(60.0, 80.0, 90.0, 100.0, 110.0, 125.0, 160.0), expiries=(30, 90, 180),
              basis=0.05, mode="svi") -> MarketSnapshot:
    return validate(MarketSnapshot, {
        "asof": "2026-01-01", "vol_interpolation": mode,
        "underlyings": {"X": {"spot": 100.0, "basis": basis, "vol_surface": {
            "expiries_days": list(expiries), "strikes": list(strikes), "vols": [list(r) for r in vols]}}},
    })


# Quotes generated from known SVI slices (in k = log(K/F(T))), calendar-arbitrage free.
TRUE_SLICES = [
    {"a": 0.010, "b": 0.08, "rho": -0.3, "m": 0.05, "sigma": 0.15},
    {"a": 0.030, "b": 0.10, "rho": -0.3, "m": 0.05, "sigma": 0.20},
    {"a": 0.060, "b": 0.12, "rho": -0.25, "m": 0.05, "sigma": 0.25},
]


def _quotes(strikes, expiries, basis, slices):
    rows = []
    for d, p in zip(expiries, slices, strict=True):
        t = d / 365.0
        k = np.log(np.asarray(strikes) / (100.0 * math.exp(basis * t)))
        rows.append(np.sqrt(_svi_w(p, k) / t).tolist())
    return rows


@pytest.fixture(scope="module")
def bundled():
    market = load_market(BUNDLED)
    assert market.vol_interpolation == "svi"
    return market


def test_svi_reproduces_the_quotes_at_the_nodes(bundled):
    summary = bundled.vol_surface_summary()
    assert summary["interpolation"] == "svi" and summary["warnings"] == []
    for name, u in bundled.underlyings.items():
        s = u.vol_surface
        checks = summary["underlyings"][name]
        assert checks["butterfly_ok"] and checks["calendar_ok"]
        for i, days in enumerate(s.expiries_days):
            model = bundled.implied_vol(name, strike=np.asarray(s.strikes), expiry_years=days / 365.0)
            error = model - np.asarray(s.vols[i])
            rmse = float(np.sqrt(np.mean(error**2)))
            reported = checks["slices"][i]
            # the surface at an expiry node is that slice: its errors are the fit's
            assert abs(rmse - reported["rmse"]) < 1e-9
            assert np.max(np.abs(error)) <= reported["max_abs_error"] + 1e-9
            # Heston-generated quotes (rounded to 0.01 vol points): SVI within 0.3 vol points
            assert rmse < 3e-3, (name, days, rmse)


def test_svi_recovers_known_slices_and_interpolates_by_the_formula():
    strikes, expiries, basis = (60.0, 80.0, 90.0, 100.0, 110.0, 125.0, 160.0), (30, 90, 180), 0.05
    market = _snapshot(_quotes(strikes, expiries, basis, TRUE_SLICES), strikes=strikes, expiries=expiries, basis=basis)
    checks = market.vol_surface_summary()["underlyings"]["X"]
    assert checks["calendar_ok"] and checks["butterfly_ok"]
    for fitted, true in zip(checks["slices"], TRUE_SLICES, strict=True):
        assert fitted["rmse"] < 1e-8
        for key, value in true.items():
            assert abs(fitted[key] - value) < 1e-5, (key, fitted[key], value)
    # Between and beyond the nodes: SVI in k = log(K/F(t)), linear in total variance in t at
    # fixed k, flat vol outside the expiries -- computed here from the true slices.
    rng = np.random.default_rng(0)
    strike = rng.uniform(40.0, 250.0, 400)
    t = rng.uniform(5.0, 300.0, 400) / 365.0
    big_t = np.asarray(expiries) / 365.0
    k = np.log(strike / (100.0 * np.exp(basis * t)))
    w = np.stack([_svi_w(p, k) for p in TRUE_SLICES])
    expected = np.empty_like(t)
    for j in range(t.size):
        if t[j] <= big_t[0]:
            expected[j] = math.sqrt(w[0, j] / big_t[0])
        elif t[j] >= big_t[-1]:
            expected[j] = math.sqrt(w[-1, j] / big_t[-1])
        else:
            i = int(np.searchsorted(big_t, t[j])) - 1
            lam = (t[j] - big_t[i]) / (big_t[i + 1] - big_t[i])
            expected[j] = math.sqrt(((1 - lam) * w[i, j] + lam * w[i + 1, j]) / t[j])
    got = market.implied_vol("X", strike=strike, expiry_years=t)
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-6)


def test_svi_is_differentiable_in_jax_and_keeps_the_dtype():
    market = _snapshot(_quotes((60.0, 80.0, 90.0, 100.0, 110.0, 125.0, 160.0), (30, 90, 180), 0.05, TRUE_SLICES))
    surface = market.svi_surface("X")
    strike, t = 95.0, 60.0 / 365.0

    def vol(k, tau):
        return surface.implied_vol(strike=k, expiry_years=tau)

    grad_k, grad_t = jax.jit(jax.grad(vol, argnums=(0, 1)))(jnp.float64(strike), jnp.float64(t))
    h = 1e-4
    fd_k = (market.implied_vol("X", strike=strike + h, expiry_years=t) - market.implied_vol("X", strike=strike - h, expiry_years=t)) / (2 * h)
    fd_t = (market.implied_vol("X", strike=strike, expiry_years=t + 1e-6) - market.implied_vol("X", strike=strike, expiry_years=t - 1e-6)) / 2e-6
    assert abs(float(grad_k) - fd_k) < 1e-7 and abs(float(grad_t) - fd_t) < 1e-5
    assert float(vol(jnp.float64(strike), jnp.float64(t))) == pytest.approx(float(market.implied_vol("X", strike=strike, expiry_years=t)), abs=1e-14)
    out32 = vol(jnp.full(3, strike, jnp.float32), jnp.float32(t))
    assert out32.dtype == jnp.float32 and out32.shape == (3,)
    # vmapped over strikes like the book's options
    many = jax.vmap(lambda k: vol(k, jnp.float64(t)))(jnp.linspace(50.0, 200.0, 7))
    np.testing.assert_allclose(np.asarray(many), market.implied_vol("X", strike=np.linspace(50.0, 200.0, 7), expiry_years=t), atol=1e-14)


def test_svi_surface_is_sticky_strike_and_follows_vol_shocks(bundled):
    s = bundled.underlyings["BTC"].vol_surface
    strike, t = np.asarray(s.strikes), 45.0 / 365.0
    before = bundled.implied_vol("BTC", strike=strike, expiry_years=t)
    moved = bundled.shocked(Scenario.model_validate({"name": "down", "kind": "hypothetical", "description": "", "source": "test", "shocks": {"spot": {"*": -0.2}}}))
    np.testing.assert_allclose(moved.implied_vol("BTC", strike=strike, expiry_years=t), before, atol=1e-12)
    doubled = bundled.shocked(Scenario.model_validate({"name": "x2", "kind": "hypothetical", "description": "", "source": "test", "shocks": {"vol": {"*": {"scale": 2.0}}}}))
    # quotes doubled -> SVI refitted to the doubled quotes: at the nodes within the fit error
    np.testing.assert_allclose(doubled.implied_vol("BTC", strike=strike, expiry_years=30 / 365.0),
                               2.0 * np.asarray(s.vols[2]), atol=5e-3)


def test_linear_mode_is_unchanged():
    strikes, expiries = (80.0, 100.0, 120.0), (30, 90)
    vols = [[0.7, 0.6, 0.65], [0.62, 0.55, 0.58]]
    market = _snapshot(vols, strikes=strikes, expiries=expiries, mode="linear")
    default = validate(MarketSnapshot, {k: v for k, v in market.model_dump(mode="json").items() if k != "vol_interpolation"})
    assert default.vol_interpolation == "linear"
    strike = np.asarray([70.0, 85.0, 100.0, 111.0, 150.0])
    for t in (10 / 365, 30 / 365, 50 / 365, 90 / 365, 200 / 365):
        rows = np.stack([np.interp(np.log(strike), np.log(strikes), r) for r in vols])
        if t <= 30 / 365:
            expected = rows[0]
        elif t >= 90 / 365:
            expected = rows[1]
        else:
            lam = (t - 30 / 365) / (60 / 365)
            expected = np.sqrt(((1 - lam) * rows[0] ** 2 * 30 / 365 + lam * rows[1] ** 2 * 90 / 365) / t)
        np.testing.assert_allclose(default.implied_vol("X", strike=strike, expiry_years=t), expected, atol=1e-14)
    assert default.vol_surface_summary() == {"interpolation": "linear"}


def test_bad_surfaces_give_clear_errors_and_arbitrage_is_reported():
    with pytest.raises(ConfigError, match=r"underlyings.X.vol_surface: 3 strike\(s\); vol_interpolation: svi needs at least 5"):
        _snapshot([[0.7, 0.6, 0.65]], strikes=(80.0, 100.0, 120.0), expiries=(30,))
    # a zig-zag smile no SVI slice can follow
    zigzag = _snapshot([[0.9, 0.3, 0.9, 0.3, 0.9, 0.3, 0.9]], expiries=(30,))
    with pytest.raises(ConfigError, match=r"underlyings.X.vol_surface: SVI does not fit expiry 30d .*vol_interpolation: linear"):
        zigzag.implied_vol("X", strike=100.0, expiry_years=0.1)
    # total variance falling from the 90d to the 180d slice: calendar arbitrage, reported
    slices = copy.deepcopy(TRUE_SLICES)
    slices[2]["a"] = 0.005
    market = _snapshot(_quotes((60.0, 80.0, 90.0, 100.0, 110.0, 125.0, 160.0), (30, 90, 180), 0.05, slices))
    summary = market.vol_surface_summary()
    checks = summary["underlyings"]["X"]
    assert not checks["calendar_ok"] and checks["butterfly_ok"]
    assert any("X: calendar between expiries" in w for w in summary["warnings"])
