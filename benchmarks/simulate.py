"""Simulation speed: riskengine against vectorised numpy and QuantLib, in one run.

    .venv/bin/python benchmarks/simulate.py [--quick]

European call pricing by Monte Carlo, S=K=100, r=5%, T=1, 252 time steps, the same number
of paths and steps on every side and no variance reduction on any side (riskengine uses its
``plain`` estimator without Greeks). Throughput is path-steps per second. riskengine is
timed twice: steady state (compiled code reused) and end to end (first call, compilation
included). QuantLib is single-threaded C++ in float64 and slow, so it gets fewer paths; the
comparison is per path-step.

Heston: riskengine's QE scheme (with martingale correction) against QuantLib's
MCEuropeanHestonEngine, whose HestonProcess uses QuadraticExponentialMartingale by default.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
import QuantLib as ql

from riskengine import GBM, Heston, price_europeans

STEPS = 252
S0, K, R, T = 100.0, 100.0, 0.05, 1.0
SIGMA = 0.2
HESTON = dict(v0=0.04, kappa=1.5, theta=0.04, sigma=0.5, rho=-0.7)


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def ours(model, paths: int, dtype) -> tuple[float, float, float]:
    """(first-call seconds, steady seconds, price)."""

    def call(seed):
        return price_europeans(
            model, key=jax.random.key(seed), spot=S0, rate=R, dividend=0.0, strikes=[K], maturities=[T],
            is_call=[True], num_paths=paths, steps_per_year=STEPS, dtype=dtype, estimator="plain", greeks=False,
        )

    first, _ = timed(lambda: call(0))
    steady, est = timed(lambda: call(1))
    return first, steady, float(est.price[0])


def numpy_gbm(paths: int, dtype) -> tuple[float, float]:
    rng = np.random.default_rng(1)
    dt = T / STEPS
    drift = dtype((R - 0.5 * SIGMA**2) * dt)
    vol = dtype(SIGMA * np.sqrt(dt))

    def run():
        x = np.zeros(paths, dtype)
        z = np.empty(paths, dtype)
        for _ in range(STEPS):
            rng.standard_normal(out=z, dtype=dtype)
            z *= vol
            z += drift
            x += z
        return np.exp(-R * T) * np.maximum(S0 * np.exp(x) - K, 0.0).mean()

    seconds, price = timed(run)
    return seconds, float(price)


def quantlib_setup():
    today = ql.Date(2, 1, 2025)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    spot = ql.QuoteHandle(ql.SimpleQuote(S0))
    rate = ql.YieldTermStructureHandle(ql.FlatForward(today, R, dc))
    div = ql.YieldTermStructureHandle(ql.FlatForward(today, 0.0, dc))
    option = ql.VanillaOption(ql.PlainVanillaPayoff(ql.Option.Call, K), ql.EuropeanExercise(today + 365))
    return today, dc, spot, rate, div, option


def quantlib_gbm(paths: int) -> tuple[float, float]:
    today, dc, spot, rate, div, option = quantlib_setup()
    vol = ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), SIGMA, dc))
    process = ql.BlackScholesMertonProcess(spot, div, rate, vol)
    option.setPricingEngine(ql.MCEuropeanEngine(process, "pseudorandom", timeSteps=STEPS, requiredSamples=paths, seed=42))
    seconds, price = timed(option.NPV)
    return seconds, price


def quantlib_heston(paths: int) -> tuple[float, float]:
    today, dc, spot, rate, div, option = quantlib_setup()
    p = HESTON
    process = ql.HestonProcess(rate, div, spot, p["v0"], p["kappa"], p["theta"], p["sigma"], p["rho"])
    option.setPricingEngine(ql.MCEuropeanHestonEngine(process, "pseudorandom", timeSteps=STEPS, requiredSamples=paths, seed=42))
    seconds, price = timed(option.NPV)
    return seconds, price


def rate(paths: int, seconds: float) -> float:
    return paths * STEPS / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer paths")
    args = parser.parse_args()
    n = 65_536 if args.quick else 262_144
    n_ql = 4_000 if args.quick else 20_000
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores; jax {jax.__version__} ({jax.default_backend()}), "
          f"numpy {np.__version__}, QuantLib {ql.__version__}")
    print(f"European call, {STEPS} steps; riskengine and numpy {n:,} paths, QuantLib {n_ql:,} paths\n")

    rows = []
    first, steady, p32 = ours(GBM(sigma=SIGMA), n, jnp.float32)
    rows.append(("GBM", "riskengine float32 (steady)", rate(n, steady), p32))
    rows.append(("GBM", "riskengine float32 (incl. compile)", rate(n, first), p32))
    s, p = numpy_gbm(n, np.float32)
    rows.append(("GBM", "numpy float32", rate(n, s), p))
    s, p = numpy_gbm(n, np.float64)
    rows.append(("GBM", "numpy float64", rate(n, s), p))
    s, p = quantlib_gbm(n_ql)
    rows.append(("GBM", "QuantLib MCEuropeanEngine float64", rate(n_ql, s), p))

    jax.config.update("jax_enable_x64", True)
    heston = Heston(**HESTON)
    first, steady, p32 = ours(heston, n, jnp.float32)
    rows.append(("Heston", "riskengine QE float32 (steady)", rate(n, steady), p32))
    rows.append(("Heston", "riskengine QE float32 (incl. compile)", rate(n, first), p32))
    first, steady, p64 = ours(heston, n, jnp.float64)
    rows.append(("Heston", "riskengine QE float64 (steady)", rate(n, steady), p64))
    s, p = quantlib_heston(n_ql)
    rows.append(("Heston", "QuantLib MCEuropeanHestonEngine (QE) float64", rate(n_ql, s), p))

    print(f"{'model':8} {'engine':48} {'path-steps/s':>14} {'price':>9}")
    for model, name, r, price in rows:
        print(f"{model:8} {name:48} {r:14.3e} {price:9.4f}")
    by = {name: r for _, name, r, _ in rows}
    print("\nratios (same run):")
    g = by["riskengine float32 (steady)"]
    print(f"  GBM    riskengine f32 / numpy f32          {g / by['numpy float32']:6.2f}x   (target >= 1.5x)")
    print(f"  GBM    riskengine f32 / QuantLib           {g / by['QuantLib MCEuropeanEngine float64']:6.1f}x   (target >= 25x)")
    print(f"  GBM    riskengine f32 incl. compile / QuantLib {by['riskengine float32 (incl. compile)'] / by['QuantLib MCEuropeanEngine float64']:6.1f}x")
    h = by["riskengine QE float32 (steady)"]
    ql_h = by["QuantLib MCEuropeanHestonEngine (QE) float64"]
    print(f"  Heston riskengine QE f32 / QuantLib QE     {h / ql_h:6.1f}x")
    print(f"  Heston riskengine QE f64 / QuantLib QE     {by['riskengine QE float64 (steady)'] / ql_h:6.1f}x")


if __name__ == "__main__":
    main()
