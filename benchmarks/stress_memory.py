"""Peak memory of the stress job on a large book (issue acceptance: a book of 10,000
positions with 10^5 paths over 10 daily steps stays under 4 GB peak RSS), and of a long
run (scaling issue: 10^7 paths x 365 daily steps under 4 GB).

    .venv/bin/python benchmarks/stress_memory.py [--positions 10000] [--paths 100000]
    .venv/bin/python benchmarks/stress_memory.py --long   # 10^7 paths, 365 days, bundled book, GBM

``--long`` runs the bundled desk book (29 positions, BTC/ETH/SOL) over one 365-day
horizon at one step a day, with GBM per underlying (cheap on CPU; the memory is
dominated by the per-path P&L and its tail weights, not by the model), no scenarios.
Memory stays bounded because the simulation streams chunk by chunk and keeps only the
per-path book P&L (float64, 8 bytes x paths x horizons) for quantiles.

Builds a synthetic book (spot, futures, perpetuals, linear and inverse options across BTC,
ETH and SOL on two venues) against the bundled market snapshot, runs the stress job in a
child process and prints its peak resident set size (ru_maxrss of the child).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]


def synthetic_book(n: int, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    spots = {"BTC": 95000.0, "ETH": 3400.0, "SOL": 220.0}
    expiries = ["2026-12-25", "2027-01-29", "2027-03-26", "2027-06-25"]
    lines = ["id,venue,type,underlying,quantity,strike,expiry,option,entry_price,margin_mode,collateral,multiplier"]
    kinds = ["spot", "linear_future", "inverse_future", "linear_perpetual", "inverse_perpetual", "linear_option", "inverse_option"]
    for i in range(n):
        kind = kinds[i % len(kinds)]
        u = list(spots)[rng.integers(3)]
        s = spots[u]
        q = float(np.round(rng.normal(0, 5), 3)) or 1.0
        venue = "deribit" if kind.startswith("inverse") else "binance"
        expiry = strike = option = ""
        entry = round(s * (1 + rng.normal(0, 0.05)), 2)
        if "future" in kind or "option" in kind:
            expiry = expiries[rng.integers(len(expiries))]
        if "option" in kind:
            strike = round(s * rng.uniform(0.7, 1.4), 0)
            option = "call" if rng.random() < 0.5 else "put"
        mult = 10 if kind.startswith("inverse") and "option" not in kind else 1
        mode, collateral = "cross", 0.0
        if ("future" in kind or "perpetual" in kind) and i % 3 == 0:  # a third of them isolated
            mode = "isolated"
            notional = abs(q) * mult * (entry if kind.startswith("linear") else 1.0)
            collateral = round(notional * rng.uniform(0.05, 0.5), 2)  # 2x to 20x leverage, USDT
        elif kind == "spot":  # cross collateral at the venue
            collateral = round(abs(q) * s * 0.5, 2)
        lines.append(f"P{i},{venue},{kind},{u},{q},{strike},{expiry},{option},{entry},{mode},{collateral},{mult}")
    return "\n".join(lines) + "\n"


CHILD = """
import json, resource, sys
from riskengine.cli import main
code = main(["run", sys.argv[1], "--out", sys.argv[2], "--no-progress"])
print(json.dumps({"code": code, "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2}))
"""


def run_once(config: dict, tmp: Path, name: str) -> tuple[dict, float, float]:
    """Run the stress job in a child process: (summary, peak RSS GiB, wall seconds)."""
    (tmp / f"{name}.yaml").write_text(yaml.safe_dump(config))
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, str(tmp / f"{name}.yaml"), str(tmp / name)],
                          capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"stress job failed: {done.stderr.strip()[-2000:]}")
    peak = json.loads(done.stdout.strip().splitlines()[-1])["peak_gib"]
    return json.loads((tmp / name / "summary.json").read_text()), peak, seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--positions", type=int, default=10_000)
    parser.add_argument("--paths", type=int, default=100_000)
    parser.add_argument("--long", action="store_true", help="10^7 paths x 365 daily steps on the bundled book (GBM)")
    parser.add_argument("--liquidation", choices=["path_wise", "held", "both"], default="path_wise",
                        help="accounts followed along the paths (the default), held to the horizon, or both in "
                             "this run (the cost of path-wise liquidation)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        config = yaml.safe_load((ROOT / "configs" / "stress.yaml").read_text())
        config.update(market=str(ROOT / "configs" / "data" / "market.yaml"),
                      history=str(ROOT / "configs" / "data" / "history.csv"), horizons_days=[10], scenarios="all", limits={})
        config["mc"] = {"paths": args.paths, "seed": 1}
        if args.long:
            paths = args.paths if args.paths != 100_000 else 10_000_000
            config.update(book=str(ROOT / "configs" / "data" / "book.csv"), horizons_days=[365], scenarios="none",
                          model={u: {"name": "gbm", "params": {"sigma": s}}
                                 for u, s in (("BTC", 0.55), ("ETH", 0.65), ("SOL", 0.8))})
            config["mc"] = {"paths": paths, "seed": 1}
            label = f"bundled book (29 positions), GBM, paths={paths} horizon=365d steps=365"
        else:
            (tmp / "book.csv").write_text(synthetic_book(args.positions))
            config["book"] = str(tmp / "book.csv")
            label = f"positions={args.positions} paths={args.paths} horizon=10d steps=10"
        modes = ["held", "path_wise"] if args.liquidation == "both" else [args.liquidation]
        results = {}
        for mode in modes:
            config["liquidation"] = {"path_wise": mode == "path_wise", "bridge": True}
            summary, peak_gb, seconds = run_once(config, tmp, mode)
            results[mode] = (peak_gb, seconds, summary)
            what = (f"{len(summary['liquidation']['accounts'])} margin accounts followed along the paths"
                    if mode == "path_wise" else "every position held to the horizon")
            print(f"{label} [{what}]: peak RSS {peak_gb:.2f} GiB, {seconds:.0f} s")
            print("  seconds by phase: " + ", ".join(f"{k} {v:.1f}" for k, v in summary["seconds_by_phase"].items()))
            first = next(iter(summary["var"]))
            print(f"  VaR {first}: {summary['var'][first]}, ES {first}: {summary['es'][first]}")
    if len(results) == 2:
        (m0, s0, a), (m1, s1, b) = results["held"], results["path_wise"]
        print(f"path-wise liquidation / held to horizon: wall {s1 / s0:.2f}x, simulation phase "
              f"{b['seconds_by_phase']['simulation'] / a['seconds_by_phase']['simulation']:.2f}x, "
              f"contributions {b['seconds_by_phase']['contributions'] / a['seconds_by_phase']['contributions']:.2f}x, "
              f"peak RSS {m1 / m0:.2f}x")
    if max(m for m, _, _ in results.values()) >= 4.0:
        sys.exit("peak memory over 4 GiB")


if __name__ == "__main__":
    main()
