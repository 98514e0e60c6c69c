"""Chunks in flight (``riskengine.simulate.CHUNKS_IN_FLIGHT``): the GBM price job's Monte
Carlo (4·10⁶ paths × 252 steps, float32, smoothed estimator with Greeks, the job's chunk of
65536 paths) computed one chunk at a time and two at once, in one process, interleaved,
compiled beforehand; prints each time, the ratio per round and the median ratio, and checks
that the estimates are bitwise the same.

    .venv/bin/python benchmarks/chunks_in_flight.py [--rounds 3] [--paths 4000000]

Record the output with the machine in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from riskengine import simulate
from riskengine.models import GBM
from riskengine.pricing import price_europeans


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--paths", type=int, default=4_000_000)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    options = dict(key=simulate.seed_key(1), spot=100.0, rate=0.05, dividend=0.0, strikes=[100.0],
                   maturities=[1.0], is_call=[True], steps_per_year=252, dtype="float32", chunk_paths=65536)
    model = GBM(sigma=0.2)
    price_europeans(model, num_paths=65536, **options)  # compiled here, not in the timings

    def timed(in_flight: int):
        simulate.CHUNKS_IN_FLIGHT = in_flight
        started = time.perf_counter()
        estimates = price_europeans(model, num_paths=args.paths, **options)
        return time.perf_counter() - started, estimates

    ratios = []
    for r in range(args.rounds):
        one, a = timed(1)
        two, b = timed(2)
        for field in ("price", "delta", "gamma", "vega", "stderr"):
            if not np.array_equal(getattr(a, field), getattr(b, field)):
                raise SystemExit(f"{field} differs: {getattr(a, field)} vs {getattr(b, field)}")
        ratios.append(two / one)
        print(f"round {r + 1}: one chunk at a time {one:.2f} s, two in flight {two:.2f} s, "
              f"ratio {two / one:.2f}; load average {os.getloadavg()[0]:.2f}", flush=True)
    print(f"median ratio (two in flight / one at a time): {float(np.median(ratios)):.2f}; estimates bitwise equal")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
