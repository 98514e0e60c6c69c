"""Simulation throughput: riskengine against vectorised numpy and QuantLib, in one run.

    .venv/bin/python benchmarks/simulate.py           # `make bench`: a few minutes
    .venv/bin/python benchmarks/simulate.py --quick   # well under a minute

Throughput is in path-steps per second (paths x time steps / seconds). Every contender
prices the same European call by plain Monte Carlo on the same time grid, without variance
reduction:

- GBM: riskengine (``price_europeans(estimator="plain", greeks=False)``, float32 and
  float64), numpy (``Generator.standard_normal`` per step, in place, float32 and float64;
  the default PCG64 generator and the faster SFC64), QuantLib ``MCEuropeanEngine``
  (pseudorandom, float64).
- Heston: riskengine's QE scheme (float32 and float64) against QuantLib's
  ``MCEuropeanHestonEngine`` (pseudorandom), whose ``HestonProcess`` discretisation is
  ``QuadraticExponentialMartingale`` by default: Andersen's QE with the martingale
  correction, psi_c = 1.5, like riskengine's.

QuantLib runs fewer paths (it is ~100x slower); the comparison is per path-step. The timed
runs of all contenders are interleaved and each reports its best run, which damps the
effect of other load on the machine. riskengine's "steady" rate excludes compilation; its
"first call" is the end-to-end time of the first call in the process (trace, compile, run).

XLA's CPU runtime can run independent kernels of a step concurrently, so riskengine may use
more than one core (numpy and QuantLib use one): "per CPU-second" divides by the process's
CPU time instead of the wall-clock time, a per-core comparison.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import QuantLib as ql
from scipy.stats import norm

from riskengine import GBM, Heston, price_europeans

SPOT, STRIKE, MATURITY, RATE, DIVIDEND = 100.0, 100.0, 1.0, 0.01, 0.02
STEPS = 252  # daily steps over one year, on every side
GBM_SIGMA = 0.2
HESTON = dict(v0=0.04, kappa=4.0, theta=0.25, sigma=1.0, rho=-0.5)
HESTON_REFERENCE = 16.070154917  # analytic price of the call (Lewis 2000 parameters)
NUMPY_CHUNK = 16384  # paths per numpy pass: the working set stays in cache (fastest measured)

SIZES = {  # paths per contender: (default, --quick); riskengine float64 runs half as many
    "ours_gbm": (1 << 20, 1 << 18),
    "numpy_gbm": (1 << 18, 1 << 16),
    "quantlib_gbm": (20_000, 4_000),
    "ours_heston": (1 << 18, 1 << 16),
    "quantlib_heston": (10_000, 2_000),
}
REPEATS = (5, 2)  # timed rounds: (default, --quick); each contender reports its best round


@dataclass
class Result:
    name: str
    paths: int
    first: float = math.nan  # seconds, first call (riskengine: includes compilation)
    wall: float = math.inf  # best wall-clock seconds of the timed runs
    cpu: float = math.inf  # process CPU seconds of that best run
    price: float = math.nan
    stderr: float = math.nan

    @property
    def path_steps(self) -> int:
        return self.paths * STEPS

    @property
    def rate(self) -> float:
        return self.path_steps / self.wall

    @property
    def cpu_rate(self) -> float:
        return self.path_steps / self.cpu

    @property
    def first_rate(self) -> float:
        return self.path_steps / self.first


# --- contenders ------------------------------------------------------------------------------


def riskengine_call(model, dtype, paths: int) -> Callable[[], tuple[float, float]]:
    def run():
        est = price_europeans(
            model, key=jax.random.key(2024), spot=SPOT, rate=RATE, dividend=DIVIDEND, strikes=[STRIKE],
            maturities=[MATURITY], is_call=[True], num_paths=paths, steps_per_year=STEPS / MATURITY,
            dtype=dtype, estimator="plain", greeks=False,
        )
        return float(est.price[0]), float(est.stderr[0])

    return run


def numpy_gbm_call(dtype, paths: int, bit_generator) -> Callable[[], tuple[float, float]]:
    """Vectorised numpy: per pass of NUMPY_CHUNK paths and per step, one in-place normal
    draw and one in-place add. The step's drift and scale are constant, so they are applied
    once at the end (log S_T = n mean + std sum Z): the least work per step numpy can do."""
    dt = MATURITY / STEPS
    mean, std = (RATE - DIVIDEND - 0.5 * GBM_SIGMA**2) * dt, GBM_SIGMA * math.sqrt(dt)

    def run():
        rng = np.random.Generator(bit_generator(12345))
        total = total_sq = 0.0
        z = np.empty(NUMPY_CHUNK, dtype)
        x = np.empty(NUMPY_CHUNK, dtype)
        for start in range(0, paths, NUMPY_CHUNK):
            m = min(NUMPY_CHUNK, paths - start)
            xs, zs = x[:m], z[:m]
            xs.fill(0)
            for _ in range(STEPS):
                rng.standard_normal(m, dtype=dtype, out=zs)
                xs += zs
            payoff = np.maximum(SPOT * np.exp(STEPS * mean + std * xs.astype(np.float64)) - STRIKE, 0.0)
            total += payoff.sum()
            total_sq += (payoff * payoff).sum()
        discount = math.exp(-RATE * MATURITY)
        mean_payoff = total / paths
        variance = max(total_sq / paths - mean_payoff**2, 0.0) * paths / (paths - 1)
        return discount * mean_payoff, discount * math.sqrt(variance / paths)

    return run


def quantlib_call(engine_for: Callable, paths: int) -> Callable[[], tuple[float, float]]:
    today = ql.Date(2, 1, 2024)
    ql.Settings.instance().evaluationDate = today
    day_count = ql.Actual365Fixed()  # 365 days = 1.0 year
    maturity = today + ql.Period(365, ql.Days)
    rate = ql.YieldTermStructureHandle(ql.FlatForward(today, RATE, day_count))
    dividend = ql.YieldTermStructureHandle(ql.FlatForward(today, DIVIDEND, day_count))
    spot = ql.QuoteHandle(ql.SimpleQuote(SPOT))
    option = ql.VanillaOption(ql.PlainVanillaPayoff(ql.Option.Call, STRIKE), ql.EuropeanExercise(maturity))
    engine = engine_for(today, day_count, spot, rate, dividend, paths)

    def run():
        option.setPricingEngine(engine)  # a fresh engine run: no cached result
        return option.NPV(), option.errorEstimate()

    return run


def quantlib_gbm_engine(today, day_count, spot, rate, dividend, paths):
    vol = ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), GBM_SIGMA, day_count))
    process = ql.BlackScholesMertonProcess(spot, dividend, rate, vol)
    return ql.MCEuropeanEngine(process, "pseudorandom", timeSteps=STEPS, requiredSamples=paths, seed=42)


def quantlib_heston_engine(today, day_count, spot, rate, dividend, paths):
    p = HESTON
    process = ql.HestonProcess(rate, dividend, spot, p["v0"], p["kappa"], p["theta"], p["sigma"], p["rho"])
    return ql.MCEuropeanHestonEngine(process, "pseudorandom", timeSteps=STEPS, requiredSamples=paths, seed=42)


def black_scholes_call() -> float:
    vol_t = GBM_SIGMA * math.sqrt(MATURITY)
    d1 = (math.log(SPOT / STRIKE) + (RATE - DIVIDEND) * MATURITY) / vol_t + 0.5 * vol_t
    return SPOT * math.exp(-DIVIDEND * MATURITY) * norm.cdf(d1) - STRIKE * math.exp(-RATE * MATURITY) * norm.cdf(
        d1 - vol_t
    )


# --- timing ------------------------------------------------------------------------------------


def timed(fn: Callable[[], tuple[float, float]]) -> tuple[float, float, tuple[float, float]]:
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, value


def run_all(contenders: dict[str, tuple[Callable, int]], repeats: int) -> dict[str, Result]:
    """A first call of each contender, then ``repeats`` rounds of timed runs, interleaved."""
    results = {}
    for name, (fn, paths) in contenders.items():
        first, _, (price, stderr) = timed(fn)
        results[name] = Result(name, paths, first=first, price=price, stderr=stderr)
        print(f"  first call  {name:38s} {first:7.2f} s", flush=True)
    for _ in range(repeats):
        for name, (fn, _) in contenders.items():
            wall, cpu, _ = timed(fn)
            r = results[name]
            if wall < r.wall:
                r.wall, r.cpu = wall, cpu
    return results


# --- report ------------------------------------------------------------------------------------


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
        model = next(line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name"))
        cpu_flags = next(line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags"))
        flags = " ".join(f for f in ("avx2", "fma", "avx512f") if f in cpu_flags)
    except (OSError, StopIteration):
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return (
        f"machine: {model} ({flags}); {os.cpu_count()} logical CPUs, {usable} usable; load average {load}\n"
        f"python {platform.python_version()}, jax {jax.__version__}, numpy {np.__version__}, "
        f"QuantLib {ql.__version__}; JAX devices: {jax.devices()}"
    )


def table(results: list[Result], reference: float) -> None:
    print(
        f"  {'contender':38s} {'paths':>9s} {'path-steps/s':>13s} {'per CPU-s':>11s} "
        f"{'first call':>11s} {'price':>9s} {'stderr':>7s} {'z':>6s}"
    )
    for r in results:
        first = f"{r.first:9.2f} s" if "riskengine" in r.name else ""
        z = (r.price - reference) / r.stderr
        print(
            f"  {r.name:38s} {r.paths:9d} {r.rate / 1e6:11.1f} M {r.cpu_rate / 1e6:9.1f} M "
            f"{first:>11s} {r.price:9.4f} {r.stderr:7.4f} {z:+6.2f}"
        )


def ratio_line(label: str, ours: Result, other: Result, target: float | None = None) -> str:
    ratio = ours.rate / other.rate
    text = f"  {label:66s} {ratio:6.2f}x  (per CPU-second {ours.cpu_rate / other.cpu_rate:.2f}x"
    text += f", first call incl. compilation {ours.first_rate / other.rate:.2f}x)"
    if target is not None:
        text += f"  target >= {target:g}x: {'PASS' if ratio >= target else 'FAIL'}"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, two timed rounds (~30 s)")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds per contender (default 5, quick 2)")
    args = parser.parse_args(argv)
    size = {k: v[1] if args.quick else v[0] for k, v in SIZES.items()}
    repeats = args.repeats or REPEATS[args.quick]

    print(f"command: {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    print(time.strftime("date: %Y-%m-%d %H:%M:%S %Z"))
    print(machine())
    print(f"European call S={SPOT} K={STRIKE} T={MATURITY} r={RATE} q={DIVIDEND}, {STEPS} steps, plain MC")
    print(f"QuantLib HestonProcess discretisation: {ql.HestonProcess.__init__.__doc__.split('d=')[-1].split(')')[0]}")
    jax.devices()  # start the backend outside the timings

    print("\nGBM (sigma = 0.2)")
    heston = Heston(**HESTON, scheme="qe")
    gbm = {
        "riskengine float32": (riskengine_call(GBM(sigma=GBM_SIGMA), jnp.float32, size["ours_gbm"]), size["ours_gbm"]),
        "numpy float32 (default_rng: PCG64)": (
            numpy_gbm_call(np.float32, size["numpy_gbm"], np.random.PCG64), size["numpy_gbm"]),
        "numpy float64 (default_rng: PCG64)": (
            numpy_gbm_call(np.float64, size["numpy_gbm"], np.random.PCG64), size["numpy_gbm"]),
        "numpy float32 (SFC64)": (numpy_gbm_call(np.float32, size["numpy_gbm"], np.random.SFC64), size["numpy_gbm"]),
        "numpy float64 (SFC64)": (numpy_gbm_call(np.float64, size["numpy_gbm"], np.random.SFC64), size["numpy_gbm"]),
        "QuantLib MCEuropeanEngine float64": (
            quantlib_call(quantlib_gbm_engine, size["quantlib_gbm"]), size["quantlib_gbm"]),
    }
    gbm_results = run_all(gbm, repeats)
    with jax.enable_x64(True):
        gbm64 = {"riskengine float64": (riskengine_call(GBM(sigma=GBM_SIGMA), jnp.float64, size["ours_gbm"] // 2),
                                        size["ours_gbm"] // 2)}
        gbm_results.update(run_all(gbm64, repeats))
    print()
    table(list(gbm_results.values()), black_scholes_call())

    print("\nHeston QE (v0=0.04 kappa=4 theta=0.25 sigma=1 rho=-0.5)")
    heston_results = run_all(
        {
            "riskengine float32": (riskengine_call(heston, jnp.float32, size["ours_heston"]), size["ours_heston"]),
            "QuantLib MCEuropeanHestonEngine QE-M": (
                quantlib_call(quantlib_heston_engine, size["quantlib_heston"]), size["quantlib_heston"]),
        },
        repeats,
    )
    with jax.enable_x64(True):
        heston_results.update(run_all(
            {"riskengine float64": (riskengine_call(heston, jnp.float64, size["ours_heston"] // 2),
                                    size["ours_heston"] // 2)},
            repeats,
        ))
    print()
    table(list(heston_results.values()), HESTON_REFERENCE)

    g, h = gbm_results, heston_results
    fastest_numpy = max((r for k, r in g.items() if k.startswith("numpy")), key=lambda r: r.rate)
    print("\nRatios (riskengine steady state / other; z: (price - exact) / stderr)")
    print(ratio_line("GBM riskengine float32 / numpy float32 (default_rng)", g["riskengine float32"],
                     g["numpy float32 (default_rng: PCG64)"], 1.5))
    print(ratio_line(f"GBM riskengine float32 / fastest numpy ({fastest_numpy.name})", g["riskengine float32"],
                     fastest_numpy))
    print(ratio_line("GBM riskengine float64 / numpy float64 (default_rng)", g["riskengine float64"],
                     g["numpy float64 (default_rng: PCG64)"]))
    print(ratio_line("GBM riskengine float32 / QuantLib MCEuropeanEngine", g["riskengine float32"],
                     g["QuantLib MCEuropeanEngine float64"], 25))
    print(ratio_line("GBM riskengine float64 / QuantLib MCEuropeanEngine", g["riskengine float64"],
                     g["QuantLib MCEuropeanEngine float64"]))
    print(ratio_line("Heston QE riskengine float32 / QuantLib MCEuropeanHestonEngine", h["riskengine float32"],
                     h["QuantLib MCEuropeanHestonEngine QE-M"]))
    print(ratio_line("Heston QE riskengine float64 / QuantLib MCEuropeanHestonEngine", h["riskengine float64"],
                     h["QuantLib MCEuropeanHestonEngine QE-M"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
