"""Scaling benchmark: path-steps per second against the number of paths (10^3 .. 10^7) for
GBM, Heston (QE) and SVCJ, float32 and float64, on 1 and on 4 host devices (or whatever
accelerators JAX finds).

    .venv/bin/python benchmarks/scaling.py [--devices 1,4] [--sizes 1e3,1e4,1e5,1e6,1e7]
        [--steps 16] [--models gbm,heston,svcj] [--dtypes float32,float64]

Each device count runs in its own child process (``XLA_FLAGS=
--xla_force_host_platform_device_count=N`` on CPU: JAX fixes the device count when it
starts). The work is ``price_europeans(estimator="plain", greeks=False)`` of one call
over ``steps`` daily steps (the simulation driver with a per-block reduction, split over
the devices). For each size the compiled-code caches are cleared, then the same call is
timed twice: the first call (trace + compile + run: the *end-to-end* figure) and the
second (the *steady* figure); compile time is their difference.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MODELS = {
    "gbm": ("gbm", {"sigma": 0.6}),
    "heston": ("heston", {"v0": 0.36, "kappa": 3.0, "theta": 0.36, "sigma": 1.0, "rho": -0.3}),
    "svcj": ("svcj", {"v0": 0.36, "kappa": 3.0, "theta": 0.36, "sigma": 1.0, "rho": -0.2, "jump_intensity": 6.0,
                      "jump_mean": -0.03, "jump_vol": 0.06, "vol_jump_mean": 0.08, "jump_corr": -0.5}),
}


def child(args) -> None:
    import jax

    jax.config.update("jax_enable_x64", True)
    from riskengine import build_model, pricing, simulate

    devices = jax.local_device_count()
    print(json.dumps({"kind": "machine", "devices": devices, "platform": jax.devices()[0].platform,
                      "device_kind": jax.devices()[0].device_kind}), flush=True)
    for name in args.models.split(","):
        kind, params = MODELS[name]
        model = build_model(kind, params)
        for dtype in args.dtypes.split(","):
            previous = None
            for size in [int(float(s)) for s in args.sizes.split(",")]:
                if previous is not None and previous[1] * size / previous[0] > args.max_seconds:
                    print(json.dumps({"kind": "skip", "model": name, "dtype": dtype, "paths": size, "devices": devices,
                                      "estimate_s": previous[1] * size / previous[0]}), flush=True)
                    continue
                simulate._reduction_chunk.cache_clear()
                pricing._european_block_fn.cache_clear()
                jax.clear_caches()
                times = []
                for _ in range(2):
                    started = time.perf_counter()
                    est = pricing.price_europeans(
                        model, key=jax.random.key(1), spot=100.0, rate=0.0, dividend=0.0, strikes=[100.0],
                        maturities=[args.steps / 365], is_call=[True], num_paths=size, steps_per_year=365,
                        dtype=dtype, estimator="plain", greeks=False,
                    )
                    float(est.price[0])
                    times.append(time.perf_counter() - started)
                previous = (size, times[1])
                path_steps = size * args.steps
                print(json.dumps({"kind": "row", "model": name, "dtype": dtype, "paths": size, "devices": devices,
                                  "first_s": times[0], "steady_s": times[1], "compile_s": times[0] - times[1],
                                  "steady_rate": path_steps / times[1], "end_to_end_rate": path_steps / times[0],
                                  "price": float(est.price[0])}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", default="1,4")
    parser.add_argument("--sizes", default="1e3,1e4,1e5,1e6,1e7")
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--models", default="gbm,heston,svcj")
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--max-seconds", type=float, default=60.0,
                        help="skip a size whose steady call is estimated (from the previous size) to take longer")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    rows, machines, skipped = [], {}, []
    for devices in [int(d) for d in args.devices.split(",")]:
        env = dict(os.environ)
        if env.get("JAX_PLATFORMS", "cpu") == "cpu":
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={devices}").strip()
        command = [sys.executable, __file__, "--child", "--sizes", args.sizes, "--steps", str(args.steps),
                   "--max-seconds", str(args.max_seconds),
                   "--models", args.models, "--dtypes", args.dtypes]
        with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT) as proc:
            for line in proc.stdout:
                record = json.loads(line)
                if record["kind"] == "machine":
                    machines[devices] = record
                    continue
                if record["kind"] == "skip":
                    skipped.append(record)
                    continue
                rows.append(record)
                print(f"  {record['model']:6s} {record['dtype']} {record['paths']:>9,} paths, {devices} device(s): "
                      f"steady {record['steady_rate'] / 1e6:8.1f} M path-steps/s, compile {record['compile_s']:.2f} s",
                      file=sys.stderr, flush=True)
        if proc.returncode != 0:
            sys.exit(f"child with {devices} device(s) failed")
    print(f"command: python benchmarks/scaling.py --devices {args.devices} --sizes {args.sizes} --steps {args.steps}")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
    print(f"machine: {_cpu_name()}; {os.cpu_count()} logical CPUs; "
          f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          + "; ".join(f"{d} device(s): {m['platform']} {m['device_kind']}" for d, m in machines.items()))
    sizes = sorted({r["paths"] for r in rows})
    device_counts = sorted({r["devices"] for r in rows})
    print()
    print("Steady path-steps/s (millions), by paths; columns: devices")
    header = "| model | dtype | paths | " + " | ".join(f"{d} dev steady" for d in device_counts) + " | " + \
        " | ".join(f"{d} dev end-to-end" for d in device_counts) + " | " + " | ".join(f"{d} dev compile s" for d in device_counts) + " |"
    print(header)
    print("|" + "---|" * (3 + 3 * len(device_counts)))
    for model in args.models.split(","):
        for dtype in args.dtypes.split(","):
            for size in sizes:
                cells = {r["devices"]: r for r in rows if r["model"] == model and r["dtype"] == dtype and r["paths"] == size}
                steady = " | ".join(f"{cells[d]['steady_rate'] / 1e6:.1f}" if d in cells else "" for d in device_counts)
                e2e = " | ".join(f"{cells[d]['end_to_end_rate'] / 1e6:.1f}" if d in cells else "" for d in device_counts)
                comp = " | ".join(f"{cells[d]['compile_s']:.2f}" if d in cells else "" for d in device_counts)
                print(f"| {model} | {dtype} | {size:,} | {steady} | {e2e} | {comp} |")
    for r in skipped:
        print(f"skipped: {r['model']} {r['dtype']} {r['paths']:,} paths on {r['devices']} device(s) "
              f"(estimated {r['estimate_s']:.0f} s per call > --max-seconds {args.max_seconds:g})")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    main()
