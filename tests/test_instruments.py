"""Instrument valuation: exact answers computed independently (hand arithmetic, QuantLib)."""

from __future__ import annotations

import math

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import QuantLib as ql  # noqa: E402

from riskengine.instruments import (  # noqa: E402
    cross_account,
    cross_liquidation_move,
    equity,
    funding_periods,
    funding_rate,
    futures_pnl,
    futures_price,
    inverse_futures_pnl_coin,
    inverse_option_delta,
    inverse_option_delta_pa,
    inverse_option_price_coin,
    inverse_option_value,
    inverse_perpetual_funding_coin,
    isolated_liquidation_price,
    linear_futures_pnl,
    linear_option_delta,
    linear_option_value,
    linear_perpetual_funding,
    margin_ratio,
    margin_requirement,
    option_value,
    perpetual_funding,
    perpetual_value,
    position_notional,
    spot_pnl,
    spot_value,
    venue_sum,
)

F64 = jnp.float64


def f64(x):
    return jnp.asarray(x, F64)


def norm_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


# --------------------------------------------------------------------------------------
# Spot and futures
# --------------------------------------------------------------------------------------


def test_spot():
    assert float(spot_value(quantity=f64(2.5), spot=f64(40_000.0))) == 100_000.0
    assert float(spot_pnl(quantity=f64(-2.0), entry=f64(40_000.0), spot=f64(41_000.0))) == -2_000.0


def test_inverse_future_pnl_exact():
    # Long 10,000 contracts of 1 USD at 50,000, closed at 55,000:
    # 10,000 * (1/50,000 - 1/55,000) = 10,000 * 5,000 / (50,000 * 55,000) = 1/55 BTC.
    coin = inverse_futures_pnl_coin(
        quantity=f64(10_000.0), multiplier=f64(1.0), entry=f64(50_000.0), price=f64(55_000.0)
    )
    assert coin.dtype == F64
    assert float(coin) == pytest.approx(1.0 / 55.0, rel=1e-15)
    # In USD at the spot (= the exit price at expiry): 55,000 / 55 = 1,000 USD.
    usd = futures_pnl(
        quantity=f64(10_000.0), multiplier=f64(1.0), entry=f64(50_000.0), price=f64(55_000.0),
        spot=f64(55_000.0), inverse=True,
    )
    assert float(usd) == pytest.approx(1_000.0, rel=1e-15)
    # The short loses the same coin amount; a fall to 40,000 gains the long -1/16 BTC.
    short = inverse_futures_pnl_coin(
        quantity=f64(-10_000.0), multiplier=f64(1.0), entry=f64(50_000.0), price=f64(55_000.0)
    )
    assert float(short) == pytest.approx(-1.0 / 55.0, rel=1e-15)
    down = inverse_futures_pnl_coin(
        quantity=f64(10_000.0), multiplier=f64(1.0), entry=f64(50_000.0), price=f64(40_000.0)
    )
    assert float(down) == pytest.approx(-0.05, rel=1e-15)  # 10,000 (1/50,000 - 1/40,000)


def test_linear_future_pnl_exact():
    # Long 3 contracts of 0.1 BTC at 50,000 marked at 48,000: 3 * 0.1 * (-2,000) = -600 USD.
    pnl = linear_futures_pnl(
        quantity=f64(3.0), multiplier=f64(0.1), entry=f64(50_000.0), price=f64(48_000.0)
    )
    assert float(pnl) == pytest.approx(-600.0, rel=1e-15)
    mixed = futures_pnl(
        quantity=f64([3.0, 10_000.0]), multiplier=f64([0.1, 1.0]),
        entry=f64([50_000.0, 50_000.0]), price=f64([48_000.0, 55_000.0]),
        spot=f64([48_000.0, 55_000.0]), inverse=jnp.array([False, True]),
    )
    np.testing.assert_allclose(mixed, [-600.0, 1_000.0], rtol=1e-15)


def test_futures_price():
    price = futures_price(spot=f64(50_000.0), basis=f64(0.08), maturity=f64(0.25))
    assert float(price) == pytest.approx(50_000.0 * math.exp(0.02), rel=1e-15)
    expired = futures_price(spot=f64(50_000.0), basis=f64(0.08), maturity=f64(-0.1))
    assert float(expired) == 50_000.0


def test_futures_pnl_gradient_safe_with_zero_entry_on_linear_rows():
    # A spot holding written as a linear position with entry 0 (coin collateral).
    def total(entry):
        return futures_pnl(
            quantity=f64([2.0, -1_000.0]), multiplier=f64([1.0, 1.0]), entry=entry,
            price=f64([30_000.0, 30_000.0]), spot=f64([30_000.0, 30_000.0]),
            inverse=jnp.array([False, True]),
        ).sum()

    grad = jax.grad(total)(f64([0.0, 25_000.0]))
    assert np.all(np.isfinite(grad))
    # d/dE [q (1/E - 1/F) S] = -q S / E^2 for the inverse row; -q for the linear row.
    np.testing.assert_allclose(grad, [-2.0, 1_000.0 * 30_000.0 / 25_000.0**2], rtol=1e-14)


# --------------------------------------------------------------------------------------
# Perpetuals
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "premium, expected",
    [
        (0.0010, 0.0005),  # above the band: 0.001 + clamp(-0.0009) = 0.001 - 0.0005
        (-0.0010, -0.0005),  # below the band: -0.001 + clamp(0.0011) = -0.001 + 0.0005
        (0.0003, 0.0001),  # inside [-0.0004, 0.0006]: the interest rate
        (-0.0004, 0.0001),  # on the lower edge of the band
        (0.0000, 0.0001),
    ],
)
def test_funding_rate_clamp(premium, expected):
    assert float(funding_rate(premium=f64(premium))) == pytest.approx(expected, abs=1e-18)


def test_funding_rate_custom_interest_and_clamp():
    rate = funding_rate(premium=f64([0.01, 0.0]), interest=f64(0.0003), clamp=f64(0.00075))
    np.testing.assert_allclose(rate, [0.01 - 0.00075, 0.0003], rtol=1e-15)


def test_funding_periods():
    days = f64([1.0, 1.5, 7.0 / 3.0, 0.3, -1.0])
    np.testing.assert_array_equal(funding_periods(horizon_days=days), [3.0, 4.0, 7.0, 0.0, 0.0])
    np.testing.assert_allclose(
        funding_periods(horizon_days=days, fractional=True), [3.0, 4.5, 7.0, 0.9, 0.0],
        rtol=1e-15,
    )


def test_funding_accrual_one_day_is_three_periods():
    # Linear long 2 BTC at mark 50,000, premium 0.03% -> rate 0.01%:
    # per period the long pays 0.0001 * 2 * 50,000 = 10 USD; over one day 3 * 10 = 30 USD.
    linear = linear_perpetual_funding(
        quantity=f64(2.0), multiplier=f64(1.0), mark=f64(50_000.0), premium=f64(0.0003),
        horizon_days=f64(1.0),
    )
    assert float(linear) == pytest.approx(-30.0, rel=1e-12)
    # Inverse short 10,000 x 1 USD at mark 50,000 (0.2 BTC), premium 0.1% -> rate 0.05%:
    # the short receives 0.0005 * 0.2 = 0.0001 BTC a period, 0.0003 BTC a day.
    coin = inverse_perpetual_funding_coin(
        quantity=f64(-10_000.0), multiplier=f64(1.0), mark=f64(50_000.0), premium=f64(0.001),
        horizon_days=f64(1.0),
    )
    assert float(coin) == pytest.approx(0.0003, rel=1e-12)
    # Negative rate: longs receive.
    received = linear_perpetual_funding(
        quantity=f64(2.0), multiplier=f64(1.0), mark=f64(50_000.0), premium=f64(-0.001),
        horizon_days=f64(1.0),
    )
    assert float(received) == pytest.approx(3 * 0.0005 * 100_000.0, rel=1e-12)
    # Mixed book in USD, inverse converted at spot 50,000.
    usd = perpetual_funding(
        quantity=f64([2.0, -10_000.0]), multiplier=f64([1.0, 1.0]), mark=f64(50_000.0),
        spot=f64(50_000.0), premium=f64([0.0003, 0.001]), horizon_days=f64(1.0),
        inverse=jnp.array([False, True]),
    )
    np.testing.assert_allclose(usd, [-30.0, 15.0], rtol=1e-12)


def test_perpetual_value_is_pnl_plus_funding():
    # Linear long 2 BTC from 48,000 marked at 50,000 over 1.5 days (4 periods at 0.01%):
    # 2 * 2,000 - 4 * 0.0001 * 2 * 50,000 = 4,000 - 40.
    # Inverse long 10,000 x 1 USD from 50,000 marked at 55,000, spot 55,000, premium 0.1%:
    # coin = 1/55 - 4 * 0.0005 * 10,000 / 55,000; USD = coin * 55,000 = 1,000 - 20.
    value = perpetual_value(
        quantity=f64([2.0, 10_000.0]), multiplier=f64([1.0, 1.0]),
        entry=f64([48_000.0, 50_000.0]), mark=f64([50_000.0, 55_000.0]),
        spot=f64([50_000.0, 55_000.0]), premium=f64([0.0003, 0.001]),
        horizon_days=f64(1.5), inverse=jnp.array([False, True]),
    )
    np.testing.assert_allclose(value, [3_960.0, 980.0], rtol=1e-12)


# --------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------

F, K, T, R, VOL = 52_000.0, 55_000.0, 0.35, 0.04, 0.65


def ql_black(is_call: bool, strike: float, forward: float, std: float, discount: float) -> float:
    kind = ql.Option.Call if is_call else ql.Option.Put
    return ql.blackFormula(kind, strike, forward, std, discount)


@pytest.mark.parametrize("is_call", [True, False])
@pytest.mark.parametrize("strike", [40_000.0, 52_000.0, 70_000.0])
def test_linear_option_vs_quantlib(is_call, strike):
    value = linear_option_value(
        quantity=f64(-3.0), multiplier=f64(0.1), forward=f64(F), strike=f64(strike),
        maturity=f64(T), rate=f64(R), vol=f64(VOL), is_call=is_call,
    )
    expected = -3.0 * 0.1 * ql_black(is_call, strike, F, VOL * math.sqrt(T), math.exp(-R * T))
    assert value.dtype == F64
    assert float(value) == pytest.approx(expected, rel=1e-12)
    # Delta in coin: -0.3 * exp(-rT) N(+-d1) (forward delta).
    d1 = (math.log(F / strike) + 0.5 * VOL**2 * T) / (VOL * math.sqrt(T))
    unit = norm_cdf(d1) if is_call else norm_cdf(d1) - 1.0
    delta = linear_option_delta(
        quantity=f64(-3.0), multiplier=f64(0.1), forward=f64(F), strike=f64(strike),
        maturity=f64(T), rate=f64(R), vol=f64(VOL), is_call=is_call,
    )
    assert float(delta) == pytest.approx(-0.3 * math.exp(-R * T) * unit, rel=1e-12)


@pytest.mark.parametrize("is_call", [True, False])
@pytest.mark.parametrize("strike", [40_000.0, 52_000.0, 70_000.0])
def test_inverse_option_coin_value_is_undiscounted_black_over_forward(is_call, strike):
    coin = inverse_option_price_coin(
        forward=f64(F), strike=f64(strike), maturity=f64(T), vol=f64(VOL), is_call=is_call
    )
    expected = ql_black(is_call, strike, F, VOL * math.sqrt(T), 1.0) / F
    assert float(coin) == pytest.approx(expected, rel=1e-12)
    # Closed form: call N(d1) - (K/F) N(d2), put (K/F) N(-d2) - N(-d1).
    std = VOL * math.sqrt(T)
    d1 = (math.log(F / strike) + 0.5 * std**2) / std
    d2 = d1 - std
    closed = (
        norm_cdf(d1) - strike / F * norm_cdf(d2)
        if is_call
        else strike / F * norm_cdf(-d2) - norm_cdf(-d1)
    )
    assert float(coin) == pytest.approx(closed, rel=1e-12)
    # USD value: coin value times the spot, per position.
    spot = 51_500.0
    usd = inverse_option_value(
        quantity=f64(5.0), multiplier=f64(1.0), forward=f64(F), strike=f64(strike),
        maturity=f64(T), vol=f64(VOL), is_call=is_call, spot=f64(spot),
    )
    assert float(usd) == pytest.approx(5.0 * expected * spot, rel=1e-12)


def test_inverse_put_call_parity_in_coin():
    strikes = f64([30_000.0, 45_000.0, 52_000.0, 60_000.0, 90_000.0])
    common = dict(forward=f64(F), strike=strikes, maturity=f64(T), vol=f64(VOL))
    call = inverse_option_price_coin(is_call=True, **common)
    put = inverse_option_price_coin(is_call=False, **common)
    np.testing.assert_allclose(call - put, 1.0 - np.asarray(strikes) / F, rtol=0, atol=1e-14)


@pytest.mark.parametrize("is_call", [True, False])
@pytest.mark.parametrize("strike", [40_000.0, 55_000.0, 70_000.0])
def test_inverse_option_deltas(is_call, strike):
    """Identities tested, per unit (c = coin price, F = forward):

    - delta    = d(F c)/dF          (the derivative of the USD-equivalent price F c)
    - delta_pa = delta - c = F dc/dF (the coin value's sensitivity to F, in USD terms:
      coin per USD times F USD)

    against central finite differences, and the closed forms N(d1) [- 1], +-(K/F) N(+-d2).
    """
    size = -2.0

    def coin(forward):
        return float(
            inverse_option_price_coin(
                forward=f64(forward), strike=f64(strike), maturity=f64(T), vol=f64(VOL),
                is_call=is_call,
            )
        )

    common = dict(
        quantity=f64(size), multiplier=f64(1.0), forward=f64(F), strike=f64(strike),
        maturity=f64(T), vol=f64(VOL), is_call=is_call,
    )
    delta = float(inverse_option_delta(**common))
    delta_pa = float(inverse_option_delta_pa(**common))
    h = F * 1e-5
    fd_coin = (coin(F + h) - coin(F - h)) / (2.0 * h)
    fd_usd = ((F + h) * coin(F + h) - (F - h) * coin(F - h)) / (2.0 * h)
    assert delta_pa == pytest.approx(size * F * fd_coin, rel=1e-7)
    assert delta == pytest.approx(size * fd_usd, rel=1e-7)
    assert delta - delta_pa == pytest.approx(size * coin(F), rel=1e-12)

    std = VOL * math.sqrt(T)
    d1 = (math.log(F / strike) + 0.5 * std**2) / std
    d2 = d1 - std
    if is_call:
        assert delta == pytest.approx(size * norm_cdf(d1), rel=1e-12)
        assert delta_pa == pytest.approx(size * strike / F * norm_cdf(d2), rel=1e-12)
    else:
        assert delta == pytest.approx(size * (norm_cdf(d1) - 1.0), rel=1e-12)
        assert delta_pa == pytest.approx(-size * strike / F * norm_cdf(-d2), rel=1e-12)


def test_inverse_delta_is_the_spot_delta_of_the_usd_value():
    # With F = S exp(bT): d(c_coin(F) * S)/dS = c + F dc/dF = delta.
    basis = 0.07

    def usd(s):
        forward = futures_price(spot=s, basis=f64(basis), maturity=f64(T))
        return inverse_option_value(
            quantity=f64(1.0), multiplier=f64(1.0), forward=forward, strike=f64(K),
            maturity=f64(T), vol=f64(VOL), is_call=True, spot=s,
        )

    s = f64(50_000.0)
    delta = inverse_option_delta(
        quantity=f64(1.0), multiplier=f64(1.0), forward=s * math.exp(basis * T), strike=f64(K),
        maturity=f64(T), vol=f64(VOL), is_call=True,
    )
    assert float(jax.grad(usd)(s)) == pytest.approx(float(delta), rel=1e-12)


def test_options_at_expiry_are_intrinsic_with_finite_gradients():
    forward = f64([60_000.0, 40_000.0, 60_000.0, 40_000.0, 50_000.0])
    strike = f64(50_000.0)
    maturity = f64([0.0, 0.0, -0.02, -0.02, 0.0])
    is_call = jnp.array([True, True, False, False, True])
    vol = f64(0.7)

    inverse = inverse_option_price_coin(
        forward=forward, strike=strike, maturity=maturity, vol=vol, is_call=is_call
    )
    np.testing.assert_allclose(inverse, [10_000 / 60_000, 0.0, 0.0, 10_000 / 40_000, 0.0])
    linear = linear_option_value(
        quantity=f64(1.0), multiplier=f64(1.0), forward=forward, strike=strike,
        maturity=maturity, rate=f64(0.05), vol=vol, is_call=is_call,
    )
    np.testing.assert_allclose(linear, [10_000.0, 0.0, 0.0, 10_000.0, 0.0])

    def total(forward, maturity, vol, rate):
        book = option_value(
            quantity=f64([1.0, -2.0, 3.0, 1.0, 1.0]), multiplier=f64(1.0), forward=forward,
            strike=strike, maturity=maturity, rate=rate, vol=vol, is_call=is_call,
            spot=forward, inverse=jnp.array([True, False, True, False, True]),
        )
        deltas = inverse_option_delta(
            quantity=f64(1.0), multiplier=f64(1.0), forward=forward, strike=strike,
            maturity=maturity, vol=vol, is_call=is_call,
        )
        return book.sum() + deltas.sum()

    grads = jax.grad(total, argnums=(0, 1, 2, 3))(forward, maturity, vol, f64(0.05))
    for g in grads:
        assert np.all(np.isfinite(np.asarray(g)))
    # Second derivatives (gamma) through the forward-mode delta stay finite too.
    gamma = jax.grad(
        lambda f: inverse_option_delta(
            quantity=f64(1.0), multiplier=f64(1.0), forward=f, strike=strike,
            maturity=maturity, vol=vol, is_call=is_call,
        ).sum()
    )(forward)
    assert np.all(np.isfinite(np.asarray(gamma)))
    # In-the-money expired inverse call: delta_pa = K/F, delta = 1.
    expired = dict(
        quantity=f64(1.0), multiplier=f64(1.0), forward=f64(60_000.0), strike=strike,
        maturity=f64(0.0), vol=vol, is_call=True,
    )
    assert float(inverse_option_delta(**expired)) == pytest.approx(1.0, rel=1e-15)
    assert float(inverse_option_delta_pa(**expired)) == pytest.approx(5.0 / 6.0, rel=1e-15)


# --------------------------------------------------------------------------------------
# Vectorisation over [paths, positions]
# --------------------------------------------------------------------------------------


def test_vectorised_over_paths_and_positions():
    rng = np.random.default_rng(7)
    paths, positions = 6, 4
    quantity = f64([1.0, -2.0, 10_000.0, -5.0])
    multiplier = f64([1.0, 0.1, 1.0, 1.0])
    strike = f64([45_000.0, 50_000.0, 55_000.0, 60_000.0])
    is_call = jnp.array([True, False, True, False])
    inverse = jnp.array([False, False, True, True])
    maturity_now = f64([0.1, 0.25, 0.5, 0.02])
    spot = f64(50_000.0 * np.exp(0.3 * rng.standard_normal((paths, positions))))
    elapsed = f64(rng.uniform(0.0, 0.1, size=(paths, 1)))  # some paths past the 0.02 expiry
    maturity = maturity_now - elapsed
    forward = futures_price(spot=spot, basis=f64(0.05), maturity=maturity)

    def book(spot, forward, maturity):
        return option_value(
            quantity=quantity, multiplier=multiplier, forward=forward, strike=strike,
            maturity=maturity, rate=f64(0.03), vol=f64(0.6), is_call=is_call, spot=spot,
            inverse=inverse,
        )

    values = jax.jit(book)(spot, forward, maturity)
    assert values.shape == (paths, positions) and values.dtype == F64

    @jax.jit
    def one(q, m, f, k, t, c, s, inv):  # a single scalar position on a single path
        return option_value(
            quantity=q, multiplier=m, forward=f, strike=k, maturity=t, rate=0.03, vol=0.6,
            is_call=c, spot=s, inverse=inv,
        )

    for p in range(paths):
        for i in range(positions):
            scalar = one(
                quantity[i], multiplier[i], forward[p, i], strike[i], maturity[p, i],
                is_call[i], spot[p, i], inverse[i],
            )
            assert scalar.shape == ()
            assert float(values[p, i]) == pytest.approx(float(scalar), rel=1e-13)
    # vmap over paths gives the same, and pathwise AD deltas have the book's shape.
    np.testing.assert_allclose(jax.vmap(book)(spot, forward, maturity), values, rtol=1e-14)
    deltas = jax.grad(lambda s: book(s, forward, maturity).sum())(spot)
    assert deltas.shape == (paths, positions) and np.all(np.isfinite(deltas))

    perp = perpetual_value(
        quantity=quantity, multiplier=multiplier, entry=f64(50_000.0), mark=spot, spot=spot,
        premium=f64(rng.normal(0.0, 0.001, size=(paths, 1))), horizon_days=f64(2.0),
        inverse=inverse,
    )
    fut = futures_pnl(
        quantity=quantity, multiplier=multiplier, entry=f64(50_000.0), price=forward,
        spot=spot, inverse=inverse,
    )
    assert perp.shape == fut.shape == (paths, positions)


# --------------------------------------------------------------------------------------
# Margin
# --------------------------------------------------------------------------------------

E, IMR, MMR = 50_000.0, 0.1, 0.005


@pytest.mark.parametrize(
    "is_long, inverse, expected",
    [
        (True, False, E * (1 - IMR) / (1 - MMR)),  # 45,226.13...
        (False, False, E * (1 + IMR) / (1 + MMR)),  # 54,726.37...
        (True, True, E * (1 + MMR) / (1 + IMR)),  # 45,681.81...
        (False, True, E * (1 - MMR) / (1 - IMR)),  # 55,277.77...
    ],
)
def test_isolated_liquidation_prices(is_long, inverse, expected):
    price = isolated_liquidation_price(
        entry=f64(E), imr=f64(IMR), mmr=f64(MMR), is_long=is_long, inverse=inverse
    )
    assert float(price) == pytest.approx(expected, rel=1e-15)

    # Direct check: at that mark, equity = collateral + P&L equals the maintenance margin.
    quantity = (1.0 if is_long else -1.0) * (50_000.0 if inverse else 2.0)
    spot = price  # converts coin to USD; cancels out of the condition
    if inverse:
        collateral = IMR * abs(quantity) / E * spot  # IMR N / E coins, in USD
    else:
        collateral = IMR * abs(quantity) * E
    pnl = futures_pnl(
        quantity=f64(quantity), multiplier=f64(1.0), entry=f64(E), price=price, spot=spot,
        inverse=inverse,
    )
    maintenance = margin_requirement(
        notional=position_notional(
            quantity=f64(quantity), multiplier=f64(1.0), mark=price, spot=spot, inverse=inverse
        ),
        rate=f64(MMR),
    )
    eq = equity(collateral=collateral, pnl=pnl)
    assert float(eq) == pytest.approx(float(maintenance), rel=1e-12)
    assert float(margin_ratio(maintenance_margin=maintenance, equity=eq)) == pytest.approx(
        1.0, rel=1e-12
    )


def test_isolated_liquidation_edge_cases():
    price = isolated_liquidation_price(
        entry=f64(E), imr=f64([1.0, 1.0]), mmr=f64(MMR), is_long=jnp.array([False, True]),
        inverse=jnp.array([True, False]),
    )
    assert np.isinf(price[0]) and price[0] > 0  # 1x inverse short: never liquidated
    assert float(price[1]) == 0.0  # 1x linear long
    grad = jax.grad(
        lambda e: isolated_liquidation_price(
            entry=e, imr=f64(1.0), mmr=f64(MMR), is_long=False, inverse=True
        )
    )(f64(E))
    assert float(grad) == 0.0


def test_margin_ratio():
    ratio = margin_ratio(maintenance_margin=f64([100.0, 100.0, 100.0]), equity=f64([400.0, 0.0, -5.0]))
    np.testing.assert_array_equal(ratio, [0.25, np.inf, np.inf])


def test_venue_sum():
    values = f64([[1.0, 2.0, 3.0, 4.0], [10.0, 20.0, 30.0, 40.0]])
    np.testing.assert_array_equal(
        venue_sum(values, venue=jnp.array([0, 2, 0, 2]), num_venues=3),
        [[4.0, 0.0, 6.0], [40.0, 0.0, 60.0]],
    )


# The two-position account, hand-solved: long 2 BTC linear (mark 50,000, MMR 1%), short
# 10 ETH linear (mark 3,000, MMR 2%), 20,000 USD collateral. Under a common move x:
#   equity(x) = 20,000 + 2 * 50,000 x - 10 * 3,000 x = 20,000 + 70,000 x
#   MM(x)     = (0.01 * 100,000 + 0.02 * 30,000)(1 + x) = 1,600 (1 + x)
#   equity = MM  <=>  68,400 x = -18,400  <=>  x = -18,400 / 68,400 = -0.26900584...
TWO = dict(
    quantity=f64([2.0, -10.0]), multiplier=f64([1.0, 1.0]), entry=f64([50_000.0, 3_000.0]),
    mark=f64([50_000.0, 3_000.0]), spot=f64([50_000.0, 3_000.0]), mmr=f64([0.01, 0.02]),
    inverse=jnp.array([False, False]),
)
TWO_MOVE = -18_400.0 / 68_400.0


def test_cross_liquidation_move_two_positions_hand_solved():
    moves = cross_liquidation_move(collateral=f64(20_000.0), **TWO)
    assert float(moves.down) == pytest.approx(TWO_MOVE, rel=1e-12)
    assert np.isposinf(float(moves.up))  # net long: no liquidation on the way up
    account = cross_account(move=moves.down, collateral=f64(20_000.0), **TWO)
    assert float(account.equity) == pytest.approx(float(account.maintenance), rel=1e-10)
    now = cross_account(collateral=f64(20_000.0), **TWO)
    assert float(now.equity) == 20_000.0 and float(now.maintenance) == pytest.approx(1_600.0)

    # Implicit-function gradient: x = (1,600 - C) / 68,400  =>  dx/dC = -1 / 68,400.
    grad = jax.grad(lambda c: cross_liquidation_move(collateral=c, **TWO).down)(f64(20_000.0))
    assert float(grad) == pytest.approx(-1.0 / 68_400.0, rel=1e-9)
    # Already under water: move 0.
    broke = cross_liquidation_move(collateral=f64(1_000.0), **TWO)
    assert float(broke.down) == 0.0 and float(broke.up) == 0.0


def test_cross_liquidation_moves_per_venue_and_path():
    """Venue 0: the hand-solved account; venue 1: isolated-style single positions whose
    liquidation moves follow from the isolated formulas (coin collateral as a spot holding).

    Venue 1 holds an inverse short of 50,000 x 1 USD at 50,000 with IMR * N / E = 0.1 BTC
    of collateral (a linear position with entry 0 and MMR 0): up move (1 - MMR)/(1 - IMR) - 1.
    Venue 2 holds a linear long of 2 BTC at 50,000 with IMR * Q * E USD: down move
    (1 - IMR)/(1 - MMR) - 1. Each path scales all marks (moves are relative, so the answers
    do not depend on the path's level except for the entry-vs-mark P&L of venue 0).
    """
    quantity = f64([2.0, -10.0, -50_000.0, IMR * 50_000.0 / E, 2.0])
    multiplier = f64(1.0)
    entry = f64([50_000.0, 3_000.0, E, 0.0, E])
    mark0 = f64([50_000.0, 3_000.0, E, E, E])
    mmr = f64([0.01, 0.02, MMR, 0.0, MMR])
    inverse = jnp.array([False, False, True, False, False])
    venue = jnp.array([0, 0, 1, 1, 2])
    collateral = f64([20_000.0, 0.0, IMR * 2.0 * E])
    levels = f64([[1.0], [1.0], [1.0]])  # three identical paths: shape [paths, positions]
    mark = levels * mark0
    moves = jax.jit(
        lambda m: cross_liquidation_move(
            collateral=collateral, quantity=quantity, multiplier=multiplier, entry=entry,
            mark=m, spot=m, mmr=mmr, inverse=inverse, venue=venue, num_venues=3,
        )
    )(mark)
    assert moves.down.shape == moves.up.shape == (3, 3)
    np.testing.assert_allclose(moves.down[:, 0], TWO_MOVE, rtol=1e-12)
    np.testing.assert_allclose(moves.up[:, 1], (1 - MMR) / (1 - IMR) - 1.0, rtol=1e-12)
    np.testing.assert_allclose(moves.down[:, 2], (1 - IMR) / (1 - MMR) - 1.0, rtol=1e-12)
    assert np.all(np.isposinf(moves.up[:, 0])) and np.all(np.isposinf(moves.up[:, 2]))
    # Venue 1 on the way down: USD equity 0.1 * 50,000 (1+x) - 50,000 x = 5,000 - 45,000 x
    # grows as x falls, and stays above its 250 USD maintenance margin: no liquidation.
    assert np.all(np.isneginf(moves.down[:, 1]))
    # Liquidation marks agree with the isolated formulas.
    short_liq = isolated_liquidation_price(
        entry=f64(E), imr=f64(IMR), mmr=f64(MMR), is_long=False, inverse=True
    )
    assert float(E * (1 + moves.up[0, 1])) == pytest.approx(float(short_liq), rel=1e-12)
