"""riskengine.risk against closed forms, hand computations and properties.

Conventions under test: P&L = gains (negative = loss); VaR and ES positive = losses;
VaR = -p(ceil(n (1 - level))); ES = Acerbi–Tasche with the fractional atom.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, optimize, stats

from riskengine.risk import (
    christoffersen_coverage_test,
    christoffersen_independence_test,
    cornish_fisher_es,
    cornish_fisher_var,
    cornish_fisher_z,
    delta_normal_es,
    delta_normal_var,
    es_contributions,
    es_interval,
    es_standard_error,
    exceedances,
    expected_shortfall,
    group_contributions,
    historical_es,
    historical_pnl,
    historical_var,
    kupiec_test,
    normal_es,
    normal_var,
    order_statistic_ranks,
    overlapping_returns,
    pnl_moments,
    tail_weights,
    transition_counts,
    value_at_risk,
    var_and_es,
    var_contributions,
    var_interval,
)

# ---------------------------------------------------------------------------------------------
# measures: the quantile convention on tiny samples


SAMPLE = np.array([3.0, -10.0, 0.0, -8.0, 5.0, -1.0, 1.0, 2.0, -5.0, 4.0])  # n = 10, unsorted


@pytest.mark.parametrize(
    ("level", "var", "es"),
    [
        # n beta = 2: the two worst, -10 and -8, with full weight
        (0.8, 8.0, (10.0 + 8.0) / 2),
        # n beta = 1.5: k = 2, -10 with weight 1/10, the atom -8 with weight 0.15 - 0.1
        (0.85, 8.0, (0.1 * 10.0 + 0.05 * 8.0) / 0.15),
        # n beta = 1 (1 - 0.9 rounds to 0.09999999999999998): only the worst
        (0.9, 10.0, 10.0),
        # n beta = 0.5 < 1: k = 1, the worst path carries the whole tail
        (0.95, 10.0, 10.0),
    ],
)
def test_var_es_hand_values(level, var, es):
    assert value_at_risk(SAMPLE, level=level) == pytest.approx(var, abs=1e-12)
    assert expected_shortfall(SAMPLE, level=level) == pytest.approx(es, abs=1e-12)


def test_rank_is_robust_to_rounding_of_one_minus_level():
    # 100 * (1 - 0.99) = 1.0000000000000009: the rank must be 1, not 2
    pnl = -np.arange(100.0)  # worst = -99, next = -98
    assert value_at_risk(pnl, level=0.99) == 99.0
    assert expected_shortfall(pnl, level=0.99) == pytest.approx(99.0, abs=1e-9)
    assert value_at_risk(pnl, level=0.98) == 98.0  # 100 * 0.02 = 2
    assert expected_shortfall(pnl, level=0.98) == pytest.approx(98.5, abs=1e-9)


def test_ties_share_the_atom_and_tail_weights_sum_to_beta():
    pnl = np.array([-2.0, -1.0, -1.0, -1.0, 0.0])
    tail = tail_weights(pnl, level=0.5)  # beta = 0.5: -2 (0.2) + 0.3 shared by the three -1s
    np.testing.assert_allclose(tail, [0.2, 0.1, 0.1, 0.1, 0.0], atol=1e-15)
    assert expected_shortfall(pnl, level=0.5) == pytest.approx((0.2 * 2 + 0.3 * 1) / 0.5)


def test_weights_equal_repeated_paths_and_batches_reduce_last_axis():
    rng = np.random.default_rng(3)
    values = rng.normal(size=40)
    counts = rng.integers(1, 5, size=40)
    repeated = np.repeat(values, counts)
    for level in (0.9, 0.95, 0.975):
        got = var_and_es(values, level=level, weights=counts)
        want = var_and_es(repeated, level=level)
        np.testing.assert_allclose(got, want, rtol=1e-12)
    batch = rng.normal(size=(4, 301))
    var, es = var_and_es(batch, level=0.97)
    assert var.shape == es.shape == (4,)
    for row in range(4):
        assert var[row] == value_at_risk(batch[row], level=0.97)
        assert es[row] == pytest.approx(expected_shortfall(batch[row], level=0.97), rel=1e-14)


def test_jax_arrays_are_accepted():
    import jax.numpy as jnp

    pnl = np.random.default_rng(1).normal(size=(2, 1000))
    np.testing.assert_allclose(
        var_and_es(jnp.asarray(pnl), level=0.99), var_and_es(pnl, level=0.99), rtol=1e-6
    )


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="level"):
        value_at_risk(SAMPLE, level=1.0)
    with pytest.raises(ValueError, match="pnl"):
        value_at_risk([1.0, np.nan], level=0.9)
    with pytest.raises(ValueError, match="weights"):
        expected_shortfall(SAMPLE, level=0.9, weights=-np.ones(10))


@settings(max_examples=200, deadline=None)
@given(
    pnl=st.lists(
        st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=1, max_size=60
    ),
    level=st.floats(min_value=0.5, max_value=0.999),
    weighted=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_es_is_at_least_var(pnl, level, weighted, seed):
    x = np.asarray(pnl)
    weights = np.random.default_rng(seed).uniform(0.0, 1.0, x.size) + 1e-3 if weighted else None
    var, es = var_and_es(x, level=level, weights=weights)
    scale = 1.0 + np.abs(x).max()
    assert es >= var - 1e-12 * scale
    assert es <= -x.min() + 1e-12 * scale  # ES never beyond the worst loss
    tail = tail_weights(x, level=level, weights=weights)
    assert tail.sum() == pytest.approx(1.0 - level, rel=1e-9)
    assert -(tail @ x) / (1.0 - level) == pytest.approx(es, rel=1e-9, abs=1e-9 * scale)


# ---------------------------------------------------------------------------------------------
# Monte Carlo accuracy against closed forms, with the package's own confidence intervals


def test_lognormal_var_and_es_match_closed_form():
    # a long spot position under GBM over the horizon: P&L = S0 (exp(X) - 1), X ~ N(mu, s^2)
    s0, mu, sigma, level = 100.0, 0.0005, 0.04, 0.99
    x = np.random.default_rng(11).normal(mu, sigma, 1_000_000)
    pnl = s0 * np.expm1(x)
    z_beta = stats.norm.ppf(1.0 - level)
    exact_var = -s0 * math.expm1(mu + sigma * z_beta)  # P&L is increasing in X
    # E[S0 (e^X - 1); X <= mu + sigma z_beta] / beta
    tail_mean = s0 * (
        math.exp(mu + 0.5 * sigma**2) * stats.norm.cdf(z_beta - sigma) / (1 - level) - 1
    )
    exact_es = -tail_mean
    var_ci = var_interval(pnl, level=level, confidence=0.999)
    assert var_ci.lower <= exact_var <= var_ci.upper
    assert var_ci.upper - var_ci.lower < 0.02 * exact_var  # and the interval is informative
    es_ci = es_interval(pnl, level=level, confidence=0.999)
    assert es_ci.lower <= exact_es <= es_ci.upper
    assert es_ci.estimate == expected_shortfall(pnl, level=level)


def test_normal_es_matches_closed_form_and_se_is_the_standard_formula():
    mu, sigma, level = 0.1, 2.0, 0.975
    pnl = np.random.default_rng(5).normal(mu, sigma, 1_000_000)
    z = stats.norm.ppf(level)
    exact_es = stats.norm.pdf(z) / (1 - level) * sigma - mu
    var, es = var_and_es(pnl, level=level)
    se = es_standard_error(pnl, level=level)
    assert abs(es - exact_es) < 4.0 * se
    # se^2 = [Var(L | L >= VaR) + level (ES - VaR)^2] / (n beta), tail taken directly here
    beta, n = 1 - level, pnl.size
    losses = np.sort(-pnl)[::-1][: int(round(n * beta))]  # n beta is an integer here
    manual = (losses.var() + level * (es - var) ** 2) / (n * beta)
    assert se**2 == pytest.approx(manual, rel=1e-9)
    # and the asymptotic variance of a normal ES, sigma^2 [Var(Y|Y>z) + level (ES_z - z)^2]
    # / (n beta) with Y standard normal, is matched to Monte Carlo accuracy
    es_z = stats.norm.pdf(z) / beta
    tail_var = 1 + z * es_z - es_z**2
    assert se == pytest.approx(
        sigma * math.sqrt((tail_var + level * (es_z - z) ** 2) / (n * beta)), rel=0.05
    )


def test_importance_weights_recover_the_normal_tail():
    # draw from N(-2, 1) and weight by the likelihood ratio phi(x) / phi(x + 2)
    level, shift = 0.99, -2.0
    x = np.random.default_rng(8).normal(shift, 1.0, 200_000)
    weights = np.exp(-shift * x + 0.5 * shift**2)
    z = stats.norm.ppf(level)
    var, es = var_and_es(x, level=level, weights=weights)
    assert var == pytest.approx(z, abs=0.01)
    ci = es_interval(x, level=level, weights=weights, confidence=0.999)
    assert ci.lower <= stats.norm.pdf(z) / (1 - level) <= ci.upper
    assert ci.upper - ci.lower < 0.03


def test_order_statistic_interval_has_its_binomial_coverage():
    # n = 100, beta = 0.05, a = 0.025: B(0) = 0.95^100 = 0.0059 <= a < B(1) = 0.0371, so
    # r = 1; s - 1 = the smallest j with P(N > j) <= a, which is 10
    r, s, coverage = order_statistic_ranks(100, level=0.95, confidence=0.95)
    assert (r, s) == (1, 11)
    law = stats.binom(100, 0.05)
    assert coverage == pytest.approx(law.cdf(10) - law.cdf(0)) and coverage >= 0.95
    # too few paths for the confidence: the VaR interval is unbounded above
    ci = var_interval(np.arange(10.0), level=0.95, confidence=0.95)
    assert ci.upper == np.inf and np.isfinite(ci.lower)
    # empirical coverage over 4000 replications of 200 normal draws
    level, confidence = 0.95, 0.9
    draws = np.random.default_rng(2).normal(size=(4000, 200))
    ci = var_interval(draws, level=level, confidence=confidence)
    true_var = stats.norm.ppf(level)
    hit = np.mean((ci.lower <= true_var) & (true_var <= ci.upper))
    _, _, coverage = order_statistic_ranks(200, level=level, confidence=confidence)
    assert coverage >= confidence
    assert abs(hit - coverage) < 4.0 * math.sqrt(coverage * (1 - coverage) / 4000)


def test_es_interval_coverage():
    level = 0.95
    draws = np.random.default_rng(4).normal(size=(1000, 4000))
    ci = es_interval(draws, level=level, confidence=0.9)
    true_es = stats.norm.pdf(stats.norm.ppf(level)) / (1 - level)
    hit = np.mean((ci.lower <= true_es) & (true_es <= ci.upper))
    assert abs(hit - 0.9) < 0.04  # asymptotic: ~0.9 at n = 4000 (binomial sd ~0.01)


# ---------------------------------------------------------------------------------------------
# parametric


def test_delta_normal_two_assets_by_hand():
    # 1,000,000 long asset 1 (2% vol), 500,000 short asset 2 (3% vol), correlation 0.3
    delta = np.array([1_000_000.0, -500_000.0])
    vols, rho = np.array([0.02, 0.03]), 0.3
    cov = np.array(
        [[vols[0] ** 2, rho * vols[0] * vols[1]], [rho * vols[0] * vols[1], vols[1] ** 2]]
    )
    # sigma_P^2 = (1e6 * 0.02)^2 + (5e5 * 0.03)^2 + 2 * 1e6 * (-5e5) * 0.3 * 0.02 * 0.03
    #           = 4.0e8 + 2.25e8 - 1.8e8 = 4.45e8, sigma_P = 21095.023109728987
    # VaR_99 = 2.3263478740408408 * 21095.0231 = 49074.36216
    # ES_99  = 21095.0231 * phi(2.32635) / 0.01 = 21095.0231 * 2.665214220345808 = 56222.75557
    assert delta_normal_var(delta=delta, covariance=cov, level=0.99) == pytest.approx(
        49074.36216416, rel=1e-10
    )
    assert delta_normal_es(delta=delta, covariance=cov, level=0.99) == pytest.approx(
        56222.75557057, rel=1e-10
    )
    # a mean return shifts both by -delta . m
    m = np.array([0.001, -0.002])  # delta . m = 1000 + 1000
    got = delta_normal_var(delta=delta, covariance=cov, level=0.99, mean=m)
    assert got == pytest.approx(49074.36216416 - 2000.0, rel=1e-10)
    assert normal_var(mean=-5.0, std=2.0, level=0.99) == pytest.approx(
        5.0 + 2.0 * 2.3263478740408408
    )


def test_cornish_fisher_of_a_quadratic_pnl():
    # P&L = delta X + Gamma X^2 / 2 with X ~ N(0, sigma^2), i.e. a Z + b Z^2, Z ~ N(0, 1),
    # with a = delta sigma and b = Gamma sigma^2 / 2. Short gamma: delta = 5, Gamma = -12.5,
    # sigma = 0.2 give a = 1, b = -0.25. The cumulant generating function of a Z + b Z^2 is
    # -log(1 - 2bt)/2 + a^2 t^2 / (2 (1 - 2bt)), so
    #   k1 = b,  k2 = a^2 + 2b^2,  k3 = 6a^2 b + 8b^3,  k4 = 48a^2 b^2 + 48b^4.
    delta, gamma, sigma = 5.0, -12.5, 0.2
    a, b = delta * sigma, 0.5 * gamma * sigma**2
    k1, k2, k3, k4 = b, a**2 + 2 * b**2, 6 * a**2 * b + 8 * b**3, 48 * a**2 * b**2 + 48 * b**4
    np.testing.assert_allclose([k1, k2, k3, k4], [-0.25, 1.125, -1.625, 3.1875], rtol=1e-14)
    mean, std = k1, math.sqrt(k2)  # std = 1.0606601717798212
    skew = k3 / k2**1.5  # -1.625 / 1.125^1.5 = -1.3618352822852025
    kurt = k4 / k2**2  # 3.1875 / 1.265625 = 68/27 = 2.5185185185185186
    # the moments are right: compare with a large sample of the quadratic
    z = np.random.default_rng(6).standard_normal(2_000_000)
    sample = pnl_moments(delta * sigma * z + 0.5 * gamma * (sigma * z) ** 2)
    assert np.all(np.abs(np.subtract(sample, [mean, std, skew, kurt])) < [4e-3, 4e-3, 0.03, 0.1])

    # By hand at level 0.99: x = Phi^{-1}(0.01) = -2.3263478740408408,
    #   x^2 - 1 = 4.411894431054339, x^3 - 3x = -5.610905482094206, 2x^3 - 5x = -13.548158838229252
    #   (x^2 - 1) s / 6      = 4.411894431054339 * -1.3618352822852025 / 6 = -1.0013789163212332
    #   (x^3 - 3x) k / 24    = -5.610905482094206 * (68/27) / 24          = -0.5887987234296389
    #   -(2x^3 - 5x) s^2 / 36 = 13.548158838229252 * (1352/729) / 36     = +0.6979542276057744
    #   z_cf = -2.3263478740408408 - 1.0013789163212332 - 0.5887987234296389 + 0.6979542276057744
    #        = -3.2185712861859384
    #   VaR = -(mean + std z_cf) = 0.25 + 1.0606601717798212 * 3.2185712861859384 = 3.6638103732915774
    x = -2.3263478740408408
    by_formula = (
        x + (x**2 - 1) * skew / 6 + (x**3 - 3 * x) * kurt / 24 - (2 * x**3 - 5 * x) * skew**2 / 36
    )
    assert by_formula == pytest.approx(-3.2185712861859384, abs=1e-12)
    assert cornish_fisher_z(z=x, skewness=skew, excess_kurtosis=kurt) == pytest.approx(
        by_formula, abs=1e-12
    )
    got = cornish_fisher_var(mean=mean, std=std, skewness=skew, excess_kurtosis=kurt, level=0.99)
    assert got == pytest.approx(3.6638103732915774, abs=1e-9)
    assert got == pytest.approx(-(mean + std * by_formula), abs=1e-12)

    # the exact 1% quantile q of a Z + b Z^2 (b < 0): P(P&L <= q) = Phi(z_lo) + 1 - Phi(z_hi)
    # with z_lo, z_hi the roots of b z^2 + a z - q; CF is within 1% of it here
    def tail_prob(q):
        disc = math.sqrt(a**2 + 4 * b * q)
        roots = sorted([(-a + disc) / (2 * b), (-a - disc) / (2 * b)])
        return stats.norm.cdf(roots[0]) + stats.norm.sf(roots[1]) - 0.01

    exact_var = -optimize.brentq(tail_prob, -20.0, -0.5)
    assert exact_var == pytest.approx(got, rel=0.01)  # exact 3.6849..., CF 3.6638


def test_cornish_fisher_es_integrates_the_edgeworth_density():
    s, k, level = -0.6, 1.5, 0.99
    g = cornish_fisher_z(z=stats.norm.ppf(1 - level), skewness=s, excess_kurtosis=k)

    def edgeworth(x):  # phi(x) [1 + s/6 He3 + k/24 He4 + s^2/72 He6]
        he3, he4 = x**3 - 3 * x, x**4 - 6 * x**2 + 3
        he6 = x**6 - 15 * x**4 + 45 * x**2 - 15
        return stats.norm.pdf(x) * (1 + s / 6 * he3 + k / 24 * he4 + s**2 / 72 * he6)

    tail, _ = integrate.quad(lambda x: x * edgeworth(x), -np.inf, g)
    mean, std = 0.3, 2.0
    expected = -(mean + std * tail / (1 - level))
    got = cornish_fisher_es(mean=mean, std=std, skewness=s, excess_kurtosis=k, level=level)
    assert got == pytest.approx(expected, rel=1e-8)
    assert got > cornish_fisher_var(mean=mean, std=std, skewness=s, excess_kurtosis=k, level=level)
    # no skew or excess kurtosis: the normal formulas
    for f, g_ in ((cornish_fisher_var, normal_var), (cornish_fisher_es, normal_es)):
        assert f(
            mean=mean, std=std, skewness=0.0, excess_kurtosis=0.0, level=level
        ) == pytest.approx(g_(mean=mean, std=std, level=level), rel=1e-14)


# ---------------------------------------------------------------------------------------------
# historical


RETURNS = np.array(
    [
        [0.01, -0.02],
        [-0.03, 0.01],
        [0.02, 0.00],
        [-0.01, -0.04],
        [0.00, 0.03],
    ]
)
EXPOSURES = np.array([100.0, 50.0])


def test_historical_one_day_by_hand():
    # daily P&L = 100 r1 + 50 r2: 0, -2.5, 2, -3, 1.5  -> sorted -3, -2.5, 0, 1.5, 2
    np.testing.assert_allclose(
        historical_pnl(RETURNS, exposures=EXPOSURES), [0.0, -2.5, 2.0, -3.0, 1.5]
    )
    assert historical_var(RETURNS, exposures=EXPOSURES, level=0.8) == pytest.approx(
        3.0
    )  # n beta = 1
    # n beta = 1.5: VaR = 2.5, ES = (0.2 * 3 + 0.1 * 2.5) / 0.3
    assert historical_var(RETURNS, exposures=EXPOSURES, level=0.7) == pytest.approx(2.5)
    assert historical_es(RETURNS, exposures=EXPOSURES, level=0.7) == pytest.approx(0.85 / 0.3)


def test_historical_two_day_overlapping_by_hand():
    # windows (days 0-1, 1-2, 2-3, 3-4), compounded:
    #   asset 1: 1.01*0.97-1 = -0.0203, 0.97*1.02-1 = -0.0106, 1.02*0.99-1 = 0.0098, 0.99*1.00-1 = -0.01
    #   asset 2: 0.98*1.01-1 = -0.0102, 1.01*1.00-1 = 0.01,    1.00*0.96-1 = -0.04,  0.96*1.03-1 = -0.0112
    #   P&L:     -2.03-0.51 = -2.54,    -1.06+0.5 = -0.56,     0.98-2 = -1.02,       -1-0.56 = -1.56
    np.testing.assert_allclose(
        overlapping_returns(RETURNS, horizon=2),
        [[-0.0203, -0.0102], [-0.0106, 0.01], [0.0098, -0.04], [-0.01, -0.0112]],
        atol=1e-15,
    )
    pnl = historical_pnl(RETURNS, exposures=EXPOSURES, horizon=2)
    np.testing.assert_allclose(pnl, [-2.54, -0.56, -1.02, -1.56], atol=1e-12)
    assert historical_var(RETURNS, exposures=EXPOSURES, level=0.75, horizon=2) == pytest.approx(
        2.54
    )
    # beta = 0.4, n beta = 1.6: VaR = 1.56, ES = (0.25 * 2.54 + 0.15 * 1.56) / 0.4 = 2.1725
    assert historical_var(RETURNS, exposures=EXPOSURES, level=0.6, horizon=2) == pytest.approx(1.56)
    assert historical_es(RETURNS, exposures=EXPOSURES, level=0.6, horizon=2) == pytest.approx(
        2.1725
    )
    # the sqrt(h) alternative: one-day VaR 3 times sqrt(2)
    got = historical_var(RETURNS, exposures=EXPOSURES, level=0.8, horizon=2, scaling="sqrt")
    assert got == pytest.approx(3.0 * math.sqrt(2.0))
    # a batch of portfolios gives one VaR each
    batch = historical_var(
        RETURNS, exposures=np.stack([EXPOSURES, -EXPOSURES]), level=0.75, horizon=2
    )
    np.testing.assert_allclose(batch, [2.54, -0.56])  # the short book's worst window gains 0.56
    with pytest.raises(ValueError, match="horizon"):
        historical_var(RETURNS, exposures=EXPOSURES, level=0.8, horizon=6)


# ---------------------------------------------------------------------------------------------
# contributions


def test_es_contributions_by_hand():
    pnl = np.array([[-3.0, -1.0], [1.0, -4.0], [2.0, 1.0], [0.0, 0.5], [-1.0, 2.0]])
    # totals -4, -3, 3, 0.5, 1; level 0.7: beta = 0.3, n beta = 1.5 -> path 0 with weight 0.2,
    # path 1 (the VaR scenario, VaR = 3) with the atom 0.1; ES = (0.2*4 + 0.1*3)/0.3 = 11/3
    #   position 0: -(0.2 * -3 + 0.1 * 1) / 0.3 = 5/3
    #   position 1: -(0.2 * -1 + 0.1 * -4) / 0.3 = 2
    contributions = es_contributions(pnl, level=0.7)
    np.testing.assert_allclose(contributions, [5.0 / 3.0, 2.0], atol=1e-12)
    assert expected_shortfall(pnl.sum(axis=1), level=0.7) == pytest.approx(11.0 / 3.0, abs=1e-12)
    assert contributions.sum() == pytest.approx(11.0 / 3.0, abs=1e-12)


def test_contributions_sum_exactly_and_match_the_gaussian_euler_allocation():
    # P&L = r * delta with r ~ N(0, Sigma): Euler VaR_i = z delta_i (Sigma delta)_i / sigma_P
    # and ES_i = delta_i (Sigma delta)_i / sigma_P * phi(z) / beta
    level = 0.99
    delta = np.array([3.0, -1.0, 2.0])
    corr = np.array([[1.0, 0.4, 0.2], [0.4, 1.0, -0.3], [0.2, -0.3, 1.0]])
    vols = np.array([1.0, 2.0, 0.5])
    cov = corr * np.outer(vols, vols)
    rng = np.random.default_rng(9)
    pnl = (rng.standard_normal((1_000_000, 3)) @ np.linalg.cholesky(cov).T) * delta
    total = pnl.sum(axis=1)
    es_c = es_contributions(pnl, level=level)
    var_c = var_contributions(pnl, level=level)
    assert abs(es_c.sum() - expected_shortfall(total, level=level)) < 1e-10
    assert abs(var_c.sum() - value_at_risk(total, level=level)) < 1e-10
    sigma_p = math.sqrt(delta @ cov @ delta)
    marginal = delta * (cov @ delta) / sigma_p
    z = stats.norm.ppf(level)
    np.testing.assert_allclose(
        es_c, marginal * stats.norm.pdf(z) / (1 - level), atol=0.03 * sigma_p
    )
    np.testing.assert_allclose(var_c, marginal * z, atol=0.03 * sigma_p)


def test_group_contributions_by_underlying():
    grouped = group_contributions(
        np.array([1.0, 2.0, 3.5, -0.5]), labels=["BTC", "ETH", "BTC", "SOL"]
    )
    assert list(grouped) == ["BTC", "ETH", "SOL"]
    assert grouped == {"BTC": 4.5, "ETH": 2.0, "SOL": -0.5}
    with pytest.raises(ValueError, match="labels"):
        group_contributions(np.ones(3), labels=["BTC"])


# ---------------------------------------------------------------------------------------------
# backtests


HITS = np.array([0, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0], dtype=bool)


def test_kupiec_and_christoffersen_by_hand():
    # T = 20 days at level 0.95 (p = 0.05), x = 4 hits, pi = 4/20 = 0.2
    # LR_pof = -2 [16 ln 0.95 + 4 ln 0.05] + 2 [16 ln 0.8 + 4 ln 0.2]
    ln = math.log
    lr_pof = -2 * (16 * ln(0.95) + 4 * ln(0.05)) + 2 * (16 * ln(0.8) + 4 * ln(0.2))
    assert lr_pof == pytest.approx(5.591146667306031, abs=1e-12)
    # 19 day pairs: 0->0 at (0,1) (3,4) (4,5) (5,6) (9..15: 6 pairs) (17,18) (18,19) = 12,
    # 0->1 at (1,2) (6,7) (15,16) = 3, 1->0 at (2,3) (8,9) (16,17) = 3, 1->1 at (7,8) = 1
    n00, n01, n10, n11 = 12, 3, 3, 1
    assert transition_counts(HITS) == (n00, n01, n10, n11)
    pi0, pi1, pi = n01 / (n00 + n01), n11 / (n10 + n11), (n01 + n11) / 19  # 0.2, 0.25, 4/19
    # LR_ind = -2 [15 ln(15/19) + 4 ln(4/19)] + 2 [12 ln 0.8 + 3 ln 0.2 + 3 ln 0.75 + ln 0.25]
    lr_ind = -2 * ((n00 + n10) * ln(1 - pi) + (n01 + n11) * ln(pi)) + 2 * (
        n00 * ln(1 - pi0) + n01 * ln(pi0) + n10 * ln(1 - pi1) + n11 * ln(pi1)
    )
    assert lr_ind == pytest.approx(0.04606642320321086, abs=1e-12)

    pof = kupiec_test(HITS, level=0.95)
    assert pof.statistic == pytest.approx(lr_pof, abs=1e-12)
    assert pof.p_value == pytest.approx(stats.chi2.sf(lr_pof, 1)) and pof.dof == 1
    assert pof.p_value < 0.05  # 4 hits in 20 days rejects a 95% VaR at 5%
    ind = christoffersen_independence_test(HITS)
    assert ind.statistic == pytest.approx(lr_ind, abs=1e-12)
    assert ind.p_value == pytest.approx(stats.chi2.sf(lr_ind, 1))
    cc = christoffersen_coverage_test(HITS, level=0.95)
    assert cc.statistic == pytest.approx(5.637213090509242, abs=1e-12) and cc.dof == 2
    assert cc.p_value == pytest.approx(stats.chi2.sf(lr_pof + lr_ind, 2))


def test_backtest_edge_cases_and_exceedances():
    none = np.zeros(250, dtype=bool)
    # no hits: pi = 0, LR_pof = -2 * 250 ln(0.99); independence is trivially accepted
    assert kupiec_test(none, level=0.99).statistic == pytest.approx(-2 * 250 * math.log(0.99))
    assert christoffersen_independence_test(none).statistic == 0.0
    last = none.copy()
    last[-1] = True  # the only hit is the last day: no 1->x pair
    assert transition_counts(last) == (248, 1, 0, 0)
    assert np.isfinite(christoffersen_independence_test(last).statistic)
    hits = exceedances(pnl=np.array([-1.0, -3.0, 2.0, -2.0]), var=np.array([2.0, 2.0, 2.0, 2.0]))
    np.testing.assert_array_equal(
        hits, [False, True, False, False]
    )  # a loss equal to VaR is no hit
