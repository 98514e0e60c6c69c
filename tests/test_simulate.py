"""The simulation driver: martingale property and moments of every model against closed
forms, determinism (chunk-size invariance, path prefixes), correlated assets, time grids.

Monte Carlo checks are within 4 standard errors, plus a stated allowance where a scheme is
biased. Compiled code is reused: one simulation of all six models at once (as independent
assets) serves the martingale and moment checks of each dtype.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskengine import simulate
from riskengine.models import GBM, SVCJ, Bates, CorrelatedAssets, Heston, Merton
from riskengine.pricing import price_europeans
from riskengine.simulate import block_runner, monte_carlo, simulate_paths, time_grid

RATE, DIVIDEND = 0.03, 0.01
HESTON = dict(v0=0.04, kappa=1.5, theta=0.06, sigma=0.6, rho=-0.7)  # Feller violated: QE uses both branches
JUMPS = dict(jump_intensity=1.0, jump_mean=-0.1, jump_vol=0.15)
SVCJ_JUMPS = dict(jump_intensity=1.0, jump_mean=-0.05, jump_vol=0.1, vol_jump_mean=0.05, jump_corr=-0.5)
MODELS = {
    "gbm": GBM(sigma=0.3),
    "heston_qe": Heston(**HESTON, scheme="qe"),
    "heston_euler": Heston(**HESTON, scheme="euler"),
    "merton": Merton(sigma=0.2, **JUMPS),
    "bates": Bates(**HESTON, **JUMPS),
    "svcj": SVCJ(**HESTON, **SVCJ_JUMPS),
}
NAMES = list(MODELS)
ALL_ASSETS = CorrelatedAssets.from_correlation(list(MODELS.values()))  # independent assets
MATURITY = 1.0
STEPS_PER_YEAR = 16
DT = MATURITY / STEPS_PER_YEAR
NUM_PATHS = {jnp.float64: 2**17, jnp.float32: 2**16}
# float64: all six models at once (one compilation); float32: GBM and Heston (both schemes).
ASSET_NAMES = {jnp.float64: NAMES, jnp.float32: ["gbm", "heston_qe", "heston_euler"]}


def gbm_log_mean(sigma: float, t: float) -> float:
    return (RATE - DIVIDEND - 0.5 * sigma**2) * t


def merton_log_mean(t: float) -> float:
    m = MODELS["merton"]
    k = math.expm1(m.jump_mean + 0.5 * m.jump_vol**2)
    return (RATE - DIVIDEND - m.jump_intensity * k - 0.5 * m.sigma**2) * t + m.jump_intensity * m.jump_mean * t


# Exact means of the log-return for the models whose log-return law is known in closed form
# (the centre of the variance estimate); 0 for the others, whose entry is not used.
LOG_MEAN = {"gbm": gbm_log_mean(0.3, MATURITY), "merton": merton_log_mean(MATURITY)}


@functools.cache
def moments_block_fn(dtype_name: str):
    """Per-path quantities at the maturity for all assets (one cached function per dtype,
    so that monte_carlo reuses its compiled code)."""
    run = block_runner(time_grid([MATURITY], steps_per_year=STEPS_PER_YEAR), block_size=1024, dtype=dtype_name)

    def block_fn(key, args):
        obs = run(args["assets"], key, args["drift"])
        x = obs.log_return[0]  # [paths, assets]
        return {
            "growth": jnp.exp(x - (RATE - DIVIDEND) * MATURITY),  # discounted S_T / S_0
            "log_return": x,
            "squared_deviation": (x - args["log_mean"]) ** 2,
            "variance": obs.variance[0],
        }

    return block_fn


@functools.cache
def moments(dtype) -> tuple:
    """Monte Carlo estimates for the assets ``ASSET_NAMES[dtype]`` and the dtypes of the
    per-path values the simulation produced."""
    names = ASSET_NAMES[dtype]
    block_fn = moments_block_fn(jnp.dtype(dtype).name)
    args = {
        "assets": CorrelatedAssets.from_correlation([MODELS[n] for n in names]),  # independent
        "drift": jnp.full((len(names),), RATE - DIVIDEND, dtype),
        "log_mean": jnp.asarray([LOG_MEAN.get(n, 0.0) for n in names], dtype),
    }
    est = monte_carlo(block_fn, args, key=jax.random.key(2024), num_paths=NUM_PATHS[dtype])
    values = jax.eval_shape(block_fn, jax.random.key(0), args)
    return est, {k: v.dtype for k, v in values.items()}


def estimate(dtype, quantity: str, name: str) -> tuple[float, float]:
    est, _ = moments(dtype)
    i = ASSET_NAMES[dtype].index(name)
    return est.mean[quantity][i], est.stderr[quantity][i]


@pytest.mark.parametrize("name", NAMES)
def test_martingale_float64(name):
    _, dtypes = moments(jnp.float64)
    assert set(dtypes.values()) == {jnp.dtype(jnp.float64)}
    mean, se = estimate(jnp.float64, "growth", name)
    assert 0 < se < 5e-3
    assert abs(mean - 1.0) <= 4 * se, f"{name}: E[S_T] e^-(r-q)T / S0 = {mean} +- {se}"


@pytest.mark.parametrize("name", ASSET_NAMES[jnp.float32])
def test_martingale_float32(name):
    _, dtypes = moments(jnp.float32)
    assert set(dtypes.values()) == {jnp.dtype(jnp.float32)}  # the simulation ran in float32
    mean, se = estimate(jnp.float32, "growth", name)
    assert np.isfinite(mean) and 0 < se < 5e-3
    rounding = 1e-5  # float32: 16 steps and a 1024-term pairwise sum, each ~6e-8 relative
    assert abs(mean - 1.0) <= 4 * se + rounding, f"{name}: E[S_T] e^-(r-q)T / S0 = {mean} +- {se}"


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32])
def test_gbm_log_return_moments(dtype):
    sigma = 0.3
    mean, se = estimate(dtype, "log_return", "gbm")
    assert abs(mean - gbm_log_mean(sigma, MATURITY)) <= 4 * se + 1e-6
    var, var_se = estimate(dtype, "squared_deviation", "gbm")
    assert abs(var - sigma**2 * MATURITY) <= 4 * var_se + 1e-6
    assert np.isnan(estimate(dtype, "variance", "gbm")[0])  # constant-vol assets record no variance


def test_merton_log_return_moments():
    m = MODELS["merton"]
    mean, se = estimate(jnp.float64, "log_return", "merton")
    assert abs(mean - merton_log_mean(MATURITY)) <= 4 * se
    expected = (m.sigma**2 + m.jump_intensity * (m.jump_mean**2 + m.jump_vol**2)) * MATURITY
    var, var_se = estimate(jnp.float64, "squared_deviation", "merton")
    assert abs(var - expected) <= 4 * var_se, f"Var[log S_T/S_0] = {var} +- {var_se}, expected {expected}"


@pytest.mark.parametrize("name", ["heston_qe", "bates"])
def test_qe_matches_the_mean_of_the_variance(name):
    """QE reproduces E[V_{t+dt} | V_t] exactly, hence E[V_T] = theta + (v0 - theta) e^{-kappa T}."""
    p = HESTON
    expected = p["theta"] + (p["v0"] - p["theta"]) * math.exp(-p["kappa"] * MATURITY)
    mean, se = estimate(jnp.float64, "variance", name)
    assert abs(mean - expected) <= 4 * se, f"E[V_T] = {mean} +- {se}, expected {expected}"


def test_svcj_mean_variance_with_jumps():
    """E[V_T] = theta_eff + (v0 - theta_eff) e^{-kappa T} with theta_eff = theta + lambda mu_v / kappa.

    The scheme adds the variance jumps of a step at its end instead of when they occur, so
    they mean-revert for up to one step less: that raises E[V_T] by at most lambda mu_v dt
    (the allowance; the exact excess here is 0.0012, the allowance 0.0031). With that timing
    (and QE's exact conditional mean) the recursion E[V_{k+1}] = theta + (E[V_k] - theta)
    e^{-kappa dt} + lambda dt mu_v gives E[V_T] exactly: checked within 4 SE, no allowance.
    """
    kappa, lam, mu_v = HESTON["kappa"], SVCJ_JUMPS["jump_intensity"], SVCJ_JUMPS["vol_jump_mean"]
    theta, v0 = HESTON["theta"], HESTON["v0"]
    mean, se = estimate(jnp.float64, "variance", "svcj")
    # continuous time
    theta_eff = theta + lam * mu_v / kappa
    expected = theta_eff + (v0 - theta_eff) * math.exp(-kappa * MATURITY)
    allowance = lam * mu_v * DT
    assert abs(mean - expected) <= 4 * se + allowance, f"E[V_T] = {mean} +- {se}, expected {expected}"
    # the scheme's own timing of the jumps
    decay = math.exp(-kappa * MATURITY)
    discrete = theta + (v0 - theta) * decay + lam * mu_v * DT * (1 - decay) / -math.expm1(-kappa * DT)
    assert 0 < discrete - expected <= allowance
    assert abs(mean - discrete) <= 4 * se, f"E[V_T] = {mean} +- {se}, expected {discrete} (jumps at step ends)"
    # The jumps must be there: without them E[V_T] would be the Heston value.
    heston = theta + (v0 - theta) * decay
    assert mean - heston > 4 * se + allowance


def _with_float64_array_parameters(model):
    """The same model with every numeric field a float64 JAX scalar (as a calibration or a
    config read under x64 would give)."""
    fields = {f.name: getattr(model, f.name) for f in dataclasses.fields(model)}
    return type(model)(**{k: v if isinstance(v, str) else jnp.asarray(v, jnp.float64) for k, v in fields.items()})


@pytest.mark.parametrize("name", NAMES)
def test_float32_simulation_with_float64_parameters_stays_float32(name):
    """The simulation dtype, not the parameters' dtype, sets the dtype of every observation
    (checked by tracing only: jax.eval_shape compiles nothing)."""
    model = _with_float64_array_parameters(MODELS[name])
    run = block_runner(time_grid([0.5], steps_per_year=4), block_size=64, dtype="float32")
    assets = CorrelatedAssets.from_correlation([model])
    obs = jax.eval_shape(run, assets, jax.random.key(0), jnp.zeros((1,), jnp.float32))
    for field in ("log_return", "cond_mean", "cond_std", "variance"):
        assert getattr(obs, field).dtype == jnp.float32, field


# --- determinism -----------------------------------------------------------------------------

BLOCK = 256
ODD_PATHS = 5 * BLOCK + 37  # not a multiple of the block size


def _key_block_fn(key, args):
    """Three values per path, a deterministic function of the block key and the path's
    index in the block (no random sampler: cheap to compile three times)."""
    bits = jax.random.key_data(key).astype(jnp.float64)
    index = jnp.arange(BLOCK, dtype=jnp.float64)[:, None]
    return {"z": jnp.sin(bits[0] * 1e-3 + index * bits[1] * 1e-9) * args["scale"]}


@pytest.mark.parametrize("num_paths", [ODD_PATHS, 4 * BLOCK])
def test_monte_carlo_is_chunk_size_invariant_and_masks_partial_blocks(num_paths):
    key = jax.random.key(7)
    args = {"scale": jnp.asarray([1.0, 2.0, 3.0], jnp.float64)}
    results = [
        monte_carlo(_key_block_fn, args, key=key, num_paths=num_paths, block_size=BLOCK, chunk_paths=chunk)
        for chunk in (BLOCK, 4 * BLOCK, 65536)
    ]
    for other in results[1:]:
        np.testing.assert_array_equal(other.mean["z"], results[0].mean["z"])
        np.testing.assert_array_equal(other.stderr["z"], results[0].stderr["z"])
    # Independent recomputation: block b uses fold_in(key, b); only the first num_paths count.
    num_blocks = -(-num_paths // BLOCK)
    values = np.concatenate(
        [np.asarray(_key_block_fn(jax.random.fold_in(key, b), args)["z"]) for b in range(num_blocks)]
    )[:num_paths]
    np.testing.assert_allclose(results[0].mean["z"], values.mean(axis=0), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(
        results[0].stderr["z"], values.std(axis=0, ddof=1) / math.sqrt(num_paths), rtol=1e-10
    )


def test_chunks_in_flight_are_summed_in_block_order(monkeypatch):
    """Chunks computed at once on worker threads give bitwise the result of one chunk at a
    time; under a per-thread JAX switch the workers would not see (``jax.enable_x64``), the
    chunks stay on the calling thread and follow it."""
    submitted = []

    class Counting(simulate.ThreadPoolExecutor):
        def submit(self, fn, *args, **kwargs):
            submitted.append(fn)
            return super().submit(fn, *args, **kwargs)

    monkeypatch.setattr(simulate, "ThreadPoolExecutor", Counting)
    args = {"scale": np.asarray([1.0, 2.0, 3.0])}  # host float64: float32 where x64 is off
    key = jax.random.key(5)

    def run(in_flight):
        monkeypatch.setattr(simulate, "CHUNKS_IN_FLIGHT", in_flight)
        return monte_carlo(_key_block_fn, args, key=key, num_paths=ODD_PATHS, block_size=BLOCK, chunk_paths=BLOCK)

    one, two = run(1), run(2)
    assert len(submitted) > 3  # the check of the workers' flags, then the chunks after the first
    np.testing.assert_array_equal(two.mean["z"], one.mean["z"])
    np.testing.assert_array_equal(two.stderr["z"], one.stderr["z"])
    with jax.enable_x64(False):
        submitted.clear()
        one32, two32 = run(1), run(2)
    assert len(submitted) == 1  # only the check
    np.testing.assert_array_equal(two32.mean["z"], one32.mean["z"])
    assert not np.array_equal(two32.mean["z"], two.mean["z"])  # float32 arithmetic, as the caller asked


@pytest.mark.parametrize(("model", "dtype"), [(GBM(sigma=0.3), "float32"), (Heston(**HESTON), "float64")])
def test_reduction_in_two_programs_is_bitwise_one_program(model, dtype):
    """The chunk of a price job is two programs (per-path values and squares, then their
    pairwise block sums, so that XLA does not compute each path's payoff and Greeks once
    per sum): its sums are bitwise those of the one program it replaced, written out here,
    with a partial last block, several instruments and forward-mode Greeks."""
    from riskengine.pricing import _european_block_fn, _GridKey

    maturities = [0.25, 0.5, 1.0]
    grid = time_grid(maturities, steps_per_year=8)
    block_fn = _european_block_fn(_GridKey.of(grid), tuple(grid.index(t) for t in maturities), block_size=BLOCK,
                                  dtype=dtype, estimator="smoothed", greeks=True)
    args = {"assets": simulate.as_assets(model), "spot": np.asarray(100.0, dtype),
            "drift": np.asarray([RATE - DIVIDEND], dtype), "strikes": np.asarray([90.0, 100.0, 120.0], dtype),
            "is_call": np.asarray([True, False, True]),
            "discount": np.exp(-RATE * np.asarray(maturities)).astype(dtype)}
    key, index, valid = jax.random.key(3), np.arange(4, dtype=np.uint32), np.asarray([BLOCK, BLOCK, BLOCK, 37], np.int32)

    @jax.jit
    def one_program(key, index, valid_counts, args):
        values = jax.vmap(block_fn, in_axes=(0, None))(simulate.fold_in(key, index), args)
        mask = (jnp.arange(BLOCK)[None, :] < valid_counts[:, None])[..., None]
        values = jax.tree.map(lambda v: jnp.where(mask, v, 0), values)
        return (jax.tree.map(simulate._pairwise_block_sum, values),
                jax.tree.map(lambda v: simulate._pairwise_block_sum(v * v), values))

    with jax.enable_x64(dtype == "float64"):
        two = simulate._reduction_chunk(block_fn, BLOCK, 4)(key, index, valid, args)
        one = one_program(key, index, valid, args)
    assert jax.tree.structure(two) == jax.tree.structure(one)
    for got, want in zip(jax.tree.leaves(two), jax.tree.leaves(one), strict=True):
        assert got.dtype == dtype
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


CHUNK_MODEL = Heston(**HESTON)  # spot and variance shocks, both branches of QE
CHUNK_KEY = 11
CHUNK_TIMES = [0.25, 0.5]
CHUNK_OPTIONS = dict(
    spot=100.0, rate=RATE, dividend=DIVIDEND, strikes=[90.0, 110.0], maturities=CHUNK_TIMES,
    is_call=[True, False], steps_per_year=8, dtype=jnp.float64, block_size=BLOCK,
)


@functools.cache
def chunk_prices(chunk_paths: int | None, estimator: str = "smoothed"):
    """Prices without Greeks (each chunk size is a compilation; Greeks would double its cost
    and go through the same reduction)."""
    kwargs = dict(
        CHUNK_OPTIONS, key=jax.random.key(CHUNK_KEY), num_paths=ODD_PATHS, estimator=estimator, greeks=False
    )
    if chunk_paths is not None:  # None: the default chunk size
        kwargs["chunk_paths"] = chunk_paths
    return price_europeans(CHUNK_MODEL, **kwargs)


@functools.cache
def chunk_paths_of(num_paths: int, chunk_paths: int):
    return simulate_paths(
        CHUNK_MODEL, key=jax.random.key(CHUNK_KEY), times=CHUNK_TIMES, num_paths=num_paths, steps_per_year=8,
        rate=RATE, dividend=DIVIDEND, dtype=jnp.float64, block_size=BLOCK, chunk_paths=chunk_paths,
    )


def test_price_europeans_is_chunk_size_invariant():
    runs = [chunk_prices(chunk) for chunk in (BLOCK, 4 * BLOCK, None)]
    for other in runs[1:]:
        for field in ("price", "stderr"):
            np.testing.assert_array_equal(getattr(other, field), getattr(runs[0], field), err_msg=field)
    assert np.all(np.isfinite(runs[0].price)) and np.all(runs[0].stderr > 0)


def test_simulate_paths_prefix_is_independent_of_the_path_count_and_chunks():
    small = chunk_paths_of(ODD_PATHS, BLOCK)
    large = chunk_paths_of(3 * ODD_PATHS, 65536)
    for field in ("log_return", "cond_mean", "cond_std", "variance"):
        a, b = getattr(small, field), getattr(large, field)
        assert a.shape == (len(CHUNK_TIMES), ODD_PATHS, 1) and a.dtype == np.float64
        np.testing.assert_array_equal(a, b[:, :ODD_PATHS], err_msg=field)
    assert not np.array_equal(large.log_return[:, :ODD_PATHS], large.log_return[:, ODD_PATHS : 2 * ODD_PATHS])


@pytest.mark.parametrize("estimator", ["smoothed", "plain"])
def test_price_europeans_averages_the_paths_simulate_paths_returns(estimator):
    """The pricer's paths are simulate_paths' paths (same key): recompute its estimator from
    the returned paths with an independent (scipy) Black–Scholes formula."""
    from scipy.stats import norm

    paths = chunk_paths_of(ODD_PATHS, BLOCK)
    spot, strikes, calls = 100.0, np.array([90.0, 110.0]), np.array([True, False])
    sign = np.where(calls, 1.0, -1.0)
    discount = np.exp(-RATE * np.asarray(CHUNK_TIMES))
    if estimator == "plain":
        log_spot = np.log(spot) + paths.log_return[:, :, 0].T  # [paths, instruments]
        values = discount * np.maximum(sign * (np.exp(log_spot) - strikes), 0.0)
        est = chunk_prices(None, "plain")
    else:
        mean, std = np.log(spot) + paths.cond_mean[:, :, 0].T, paths.cond_std[:, :, 0].T
        assert np.all(std >= 0) and np.mean(std > 0) > 0.9
        safe = np.where(std > 0, std, 1.0)
        d1 = (mean - np.log(strikes) + safe**2) / safe
        d2 = d1 - safe
        forward = np.exp(mean + 0.5 * safe**2)
        smooth = sign * (forward * norm.cdf(sign * d1) - strikes * norm.cdf(sign * d2))
        intrinsic = np.maximum(sign * (np.exp(mean) - strikes), 0.0)  # no spot shock left
        values = discount * np.where(std > 0, smooth, intrinsic)
        est = chunk_prices(None)
    np.testing.assert_allclose(est.price, values.mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(est.stderr, values.std(axis=0, ddof=1) / math.sqrt(ODD_PATHS), rtol=1e-8)


# --- correlated assets -------------------------------------------------------------------------

RHO_ASSETS = 0.7
# Asset 0 correlated 0.7 with each of the others, which are conditionally independent given it.
CORRELATION = np.array(
    [[1.0, 0.7, 0.7, 0.7], [0.7, 1.0, 0.49, 0.49], [0.7, 0.49, 1.0, 0.49], [0.7, 0.49, 0.49, 1.0]]
)
CORRELATED = CorrelatedAssets.from_correlation(
    [GBM(sigma=0.3), GBM(sigma=0.5), Heston(**HESTON, scheme="qe"), Heston(**HESTON, scheme="euler")],
    CORRELATION,
)
CORRELATED_PATHS = 2**17


@functools.cache
def correlated_one_step():
    """One daily step of all four assets, in float32: the increments are the log-returns."""
    return simulate_paths(
        CORRELATED, key=jax.random.key(5), times=[1 / 252], num_paths=CORRELATED_PATHS, steps_per_year=252,
        rate=RATE, dividend=DIVIDEND, dtype=jnp.float32,
    )


def corr_se(rho: float) -> float:
    """Standard error of a sample correlation of n bivariate normal pairs."""
    return (1 - rho**2) / math.sqrt(CORRELATED_PATHS)


@pytest.mark.parametrize(("i", "j"), [(0, 1), (0, 2), (0, 3), (1, 2), (2, 3)])
def test_correlated_log_return_increments(i, j):
    paths = correlated_one_step()
    for field in ("log_return", "cond_mean", "cond_std", "variance"):
        value = getattr(paths, field)
        assert value.dtype == np.float32 and value.shape == (1, CORRELATED_PATHS, 4), field
    x = paths.log_return[0].astype(np.float64)
    sample = np.corrcoef(x[:, i], x[:, j])[0, 1]
    target = CORRELATION[i, j]
    assert abs(sample - target) <= 4 * corr_se(target), f"corr({i}, {j}) = {sample}, expected {target}"


@pytest.mark.parametrize("asset", [2, 3])  # Heston QE, Heston Euler
def test_heston_spot_variance_correlation_survives_cross_asset_correlation(asset):
    """corr(dlog S, dV) over one short step is rho up to the non-Gaussian shape of the QE
    variance step (psi = sigma^2 dt / v0 ~ 0.04 here): tolerance 4 SE + 0.01. For the
    other assets' spot, corr(dlog S_0, dV) = 0.7 rho."""
    paths = correlated_one_step()
    x = paths.log_return[0].astype(np.float64)
    dv = paths.variance[0, :, asset].astype(np.float64) - HESTON["v0"]
    rho = HESTON["rho"]
    own = np.corrcoef(x[:, asset], dv)[0, 1]
    assert abs(own - rho) <= 4 * corr_se(rho) + 0.01, f"corr(dlog S, dV) = {own}, expected {rho}"
    cross = np.corrcoef(x[:, 0], dv)[0, 1]
    target = RHO_ASSETS * rho
    assert abs(cross - target) <= 4 * corr_se(target) + 0.01, f"corr(dlog S_0, dV) = {cross}, expected {target}"


def test_correlated_float32_observations_are_finite():
    paths = correlated_one_step()
    assert np.all(np.isfinite(paths.log_return)) and np.all(np.isfinite(paths.cond_std))
    assert np.all(np.isnan(paths.variance[:, :, :2]))  # constant-vol assets
    assert np.all(paths.variance[:, :, 2:] >= 0)


# --- time grid -----------------------------------------------------------------------------------


def check_grid(times, steps_per_year):
    grid = time_grid(times, steps_per_year=steps_per_year)
    expected = np.unique(np.asarray(times, np.float64))
    np.testing.assert_array_equal(grid.times, expected)
    observed = np.flatnonzero(grid.observe >= 0)
    # every observation time is reached, in order, at the end of a step, and only there
    np.testing.assert_array_equal(grid.observe[observed], np.arange(len(expected)))
    ends = np.array([math.fsum(grid.dt[: k + 1]) for k in observed])  # exactly rounded sums
    np.testing.assert_allclose(ends, expected, rtol=1e-15, atol=0)
    assert observed[-1] == grid.num_steps - 1
    assert np.all(grid.dt > 0)
    assert np.all(grid.dt <= (1.0 / steps_per_year) * (1 + 1e-9))
    # the fewest equal steps per interval
    previous, start = 0.0, 0
    for i, t in enumerate(expected):
        steps = observed[i] - start + 1
        assert steps == max(1, math.ceil((t - previous) * steps_per_year - 1e-9))
        np.testing.assert_allclose(grid.dt[start : observed[i] + 1], (t - previous) / steps, rtol=1e-15)
        previous, start = t, observed[i] + 1
    for i, t in enumerate(expected):
        assert grid.index(float(t)) == i
    return grid


def test_time_grid_lands_on_each_maturity():
    grid = check_grid([1.0, 0.25, 0.1, 1.0, 10.0 / 365], steps_per_year=12)
    assert grid.num_steps == 1 + 1 + 2 + 9  # 10 days, then 0.1, 0.25, 1.0
    grid = check_grid([1.0], steps_per_year=32)
    assert grid.num_steps == 32 and np.all(grid.dt == 1 / 32)
    check_grid([0.3, 0.7, 1.0, 10.0], steps_per_year=10)  # 0.3 * 10 = 3.0000000000000004
    check_grid([1 / 12, 1 / 4, 1 / 2], steps_per_year=252)


@settings(max_examples=200, deadline=None)
@given(
    times=st.lists(st.floats(min_value=1e-3, max_value=30.0), min_size=1, max_size=6),
    steps_per_year=st.one_of(st.integers(1, 400), st.floats(min_value=0.5, max_value=400.0)),
)
def test_time_grid_properties(times, steps_per_year):
    check_grid(times, float(steps_per_year))


def test_time_grid_errors():
    with pytest.raises(ValueError, match="at least one"):
        time_grid([], steps_per_year=12)
    with pytest.raises(ValueError, match=r"times: .*> 0"):
        time_grid([0.0, 1.0], steps_per_year=12)
    with pytest.raises(ValueError, match=r"times: .*> 0"):
        time_grid([-1.0], steps_per_year=12)
    with pytest.raises(ValueError, match=r"times: .*finite"):
        time_grid([1.0, math.nan], steps_per_year=12)
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match=r"mc\.steps_per_year"):
            time_grid([1.0], steps_per_year=bad)
    with pytest.raises(KeyError, match="0.5"):
        time_grid([1.0], steps_per_year=12).index(0.5)
