"""End to end, start-up and compilation included (issue 17, item 7), in one run:

1. ``riskengine run`` of ``configs/price_heston.yaml --paths 16384`` and of
   ``configs/stress.yaml`` with an empty compilation cache (a cold first run) and again
   (the second run loads the compiled programs from ``$RISKENGINE_CACHE/jax``): the
   wall-clock time of each, in fresh processes, and the ratio;
2. a GBM price job, 4·10⁶ paths × 252 steps, float32, the default estimator with Greeks,
   through ``riskengine run`` (a fresh process: imports, tracing, compilation — warm cache
   and cold — simulation and writing the outputs) against vectorised numpy pricing the same
   call on the same grid (benchmarks/simulate.py's contender) and QuantLib's
   ``MCEuropeanEngine`` (run on fewer paths and scaled linearly to 4·10⁶: it is ~100x
   slower per path-step).

    .venv/bin/python benchmarks/startup.py [--quick] [--startup-only] [--repeat N]

``--startup-only`` skips the GBM comparison; ``--repeat N`` measures each first/second
pair N times (each with its own empty cache) and prints the median beside every pair; for
the GBM comparison each of the N rounds runs riskengine cold, warm, then numpy, and the
medians of the per-round ratios are printed.

Prints every time and the ratios; record them with the machine in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import simulate as contenders  # noqa: E402  (benchmarks/simulate.py: numpy and QuantLib)


def timed_run(config: Path, *args: str, cache: Path) -> float:
    out = Path(tempfile.mkdtemp(prefix="startup-")) / "out"
    env = {**os.environ, "RISKENGINE_CACHE": str(cache)}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "riskengine.cli", "run", str(config), "--out", str(out),
                           "--no-progress", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{config.name} failed: {done.stderr[-500:]}")
    return seconds


def cold_and_warm(config: Path, *args: str) -> tuple[float, float]:
    cache = Path(tempfile.mkdtemp(prefix="riskengine-cache-"))
    native = Path.home() / ".cache" / "riskengine" / "native"  # built kernels are not part of this
    if native.exists():
        (cache / "native").symlink_to(native)
    return timed_run(config, *args, cache=cache), timed_run(config, *args, cache=cache)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the GBM job with 4e5 paths instead of 4e6")
    parser.add_argument("--startup-only", action="store_true", help="only the first/second-run pairs")
    parser.add_argument("--gbm-only", action="store_true", help="only the GBM comparison with numpy and QuantLib")
    parser.add_argument("--repeat", type=int, default=1, help="pairs per config (median printed)")
    parser.add_argument("--config", action="append", choices=("price_heston", "stress"),
                        help="only these configs' pairs (default both)")
    args = parser.parse_args()
    print(time.strftime("date: %Y-%m-%d %H:%M:%S %Z"))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}")

    print("\n== first (cold compilation cache) and second run, wall clock ==")
    pairs = {"price_heston": ("--paths", "16384"), "stress": ()}
    for name in [] if args.gbm_only else (args.config or pairs):
        config, extra = ROOT / "configs" / f"{name}.yaml", pairs[name]
        ratios = []
        for _ in range(args.repeat):
            cold, warm = cold_and_warm(config, *extra)
            ratios.append(cold / warm)
            print(f"{config.name} {' '.join(extra)}: first {cold:.2f} s, second {warm:.2f} s, "
                  f"speed-up {cold / warm:.2f}x (target >= 3x), load average {os.getloadavg()[0]:.2f}",
                  flush=True)
        if args.repeat > 1:
            print(f"{config.name}: median speed-up {float(np.median(ratios)):.2f}x over {args.repeat} pairs")
    if args.startup_only:
        return 0

    paths = 400_000 if args.quick else 4_000_000
    steps = contenders.STEPS
    print(f"\n== GBM call, {paths:.0e} paths x {steps} steps, float32, end to end ==")
    job = {"job": "price", "model": {"name": "gbm", "params": {"sigma": contenders.GBM_SIGMA}},
           "market": {"spot": contenders.SPOT, "rate": contenders.RATE, "dividend": contenders.DIVIDEND},
           "instruments": [{"type": "european", "option": "call", "strike": contenders.STRIKE,
                            "maturity": contenders.MATURITY}],
           "mc": {"paths": paths, "steps_per_year": steps / contenders.MATURITY, "seed": 1, "dtype": "float32"}}
    config = Path(tempfile.mkdtemp(prefix="startup-")) / "gbm.yaml"
    config.write_text(yaml.safe_dump(job))
    ql_paths = max(paths // 100, 10_000)
    started = time.perf_counter()
    contenders.quantlib_call(contenders.quantlib_gbm_engine, ql_paths)()
    ql_seconds = (time.perf_counter() - started) * paths / ql_paths
    print(f"QuantLib MCEuropeanEngine: {ql_seconds:.1f} s (measured on {ql_paths:.0e} paths, scaled)", flush=True)
    rows = []
    for _ in range(args.repeat):  # each round: a cold and a warm riskengine run, then numpy
        cold, warm = cold_and_warm(config)
        started = time.perf_counter()
        price, stderr = contenders.numpy_gbm_call(np.float32, paths, np.random.PCG64)()
        numpy_seconds = time.perf_counter() - started
        rows.append((cold, warm, numpy_seconds))
        print(f"riskengine run (with Greeks): first {cold:.2f} s, second {warm:.2f} s; "
              f"numpy (price only, PCG64, float32): {numpy_seconds:.2f} s (price {price:.4f} ± {stderr:.4f}); "
              f"first {cold / numpy_seconds:.2f}, second {warm / numpy_seconds:.2f} of numpy's time; "
              f"load average {os.getloadavg()[0]:.2f}", flush=True)
    cold, warm, numpy_seconds = (float(np.median(column)) for column in zip(*rows, strict=True))
    first_ratios = [c / n for c, _, n in rows]
    second_ratios = [w / n for _, w, n in rows]
    for label, ours, ratios in (("first run", cold, first_ratios), ("second run", warm, second_ratios)):
        print(f"{label}: median {float(np.median(ratios)):.2f} of numpy's time over {len(rows)} round(s) "
              f"(target <= 1/1.3 = 0.77), {ours / ql_seconds:.3f} of QuantLib's (target <= 0.05)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
