"""Slow checks of the exposure job (results in benchmarks/RESULTS.md).

    .venv/bin/python benchmarks/exposure_checks.py noise [--seeds 20]
    .venv/bin/python benchmarks/exposure_checks.py planted [--seeds 10]
    .venv/bin/python benchmarks/exposure_checks.py real

``noise``: planted-signal markets with information coefficient 0 (every factor is noise):
the deflated Sharpe of each model must not be significant (p > 0.05) in at least 90% of
the seeds. ``planted``: IC 0.08 (with ``--no-price-factors``: the four file factors only); how often the planted factor has the highest importance,
the out-of-sample IC of its contribution, and how often the theoretical Sharpe lies in the
ridge strategy's bootstrap interval. ``real``: the real-data config
(configs/exposure_real.yaml, reading ../shared/data), timed end to end through the CLI.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _synthetic(tmp: Path, *, ic: float, seed: int, days: int, price_factors: bool = True,
               intercept: bool = True) -> dict:
    from riskengine.allocation.synthetic import planted_signal

    closes, factors = planted_signal(days=days, ic=ic, seed=seed)
    closes.to_csv(tmp / "prices.csv")
    factors.to_csv(tmp / "factors.csv", index=False)
    return {
        "job": "exposure", "prices": str(tmp / "prices.csv"), "assets": ["AAA", "BBB"],
        "factors": [{"name": n, "path": str(tmp / "factors.csv"), "column": n, "lag_days": 1}
                    for n in ("signal", "noise_1", "noise_2", "noise_3")],
        "price_factors": ({"momentum_days": [7, 30], "drawdown_days": 60, "vol_days": 30} if price_factors
                          else {"momentum_days": [], "drawdown_days": 0, "vol_factor": False}),
        "models": ["ridge", "gbt", "policy"],
        "walk_forward": {"start": "2020-01-01", "window_days": 700, "retrain_every_days": 60},
        "policy": {"steps": 150},
        "ridge": {"intercept": intercept},
        "costs": {"fee_bp": 0},
        "limits": {"max_leverage": 2.0, "max_weight": 1.0},
        "baselines": ["equal_weight"],
        "risk": {"paths": 200},
        "metrics": {"bootstrap": 500},
        "seed": seed,
    }


def _run(data: dict, out: Path) -> dict:
    from riskengine.config import validate
    from riskengine.jobs import execute, exposure

    out.mkdir(parents=True, exist_ok=True)
    return execute(exposure.ExposureJob(), validate(exposure.Config, data), out).summary


def noise(seeds: int) -> None:
    ps = {m: [] for m in ("ridge", "gbt", "policy")}
    t0 = time.perf_counter()
    for seed in range(seeds):
        with tempfile.TemporaryDirectory() as tmp:
            s = _run(_synthetic(Path(tmp), ic=0.0, seed=1000 + seed, days=1830), Path(tmp) / "out")
        for m in ps:
            ps[m].append(s["strategies"][m]["deflated_sharpe_p"])
        print(f"seed {1000 + seed}: " + ", ".join(f"{m} p={ps[m][-1]:.3f}" for m in ps), flush=True)
    print(f"{seeds} seeds in {time.perf_counter() - t0:.0f} s")
    for m, p in ps.items():
        frac = float(np.mean(np.asarray(p) > 0.05))
        print(f"{m}: p > 0.05 in {frac:.0%} of seeds ({'pass' if frac >= 0.9 else 'FAIL'}); min p {min(p):.3f}")


def planted(seeds: int, *, price_factors: bool, intercept: bool = True) -> None:
    from riskengine.allocation.synthetic import theoretical_sharpe

    rows = []
    t0 = time.perf_counter()
    truth = theoretical_sharpe(ic=0.08, assets=2)
    for seed in range(seeds):
        with tempfile.TemporaryDirectory() as tmp:
            s = _run(_synthetic(Path(tmp), ic=0.08, seed=2000 + seed, days=1830, price_factors=price_factors,
                                intercept=intercept),
                     Path(tmp) / "out")
        row = {}
        for m in ("ridge", "gbt", "policy"):
            imp = s["importance"][m]
            row[m] = (max(imp, key=imp.get) == "signal", s["ic"][m]["signal"], s["ic"][m]["forecast"])
        lo, hi = s["strategies"]["ridge"]["sharpe_ci"]
        row["covered"] = lo <= truth <= hi
        row["sharpe"] = s["strategies"]["ridge"]["sharpe"]
        rows.append(row)
        print(f"seed {2000 + seed}: " + ", ".join(f"{m} top={row[m][0]} ic={row[m][1]:.3f}" for m in ("ridge", "gbt", "policy"))
              + f", ridge Sharpe {row['sharpe']:.2f} CI [{lo:.2f}, {hi:.2f}] covers {truth:.2f}: {row['covered']}",
              flush=True)
    n = 2 * s["period"]["days"]
    print(f"{seeds} seeds in {time.perf_counter() - t0:.0f} s; IC sampling s.e. 1/sqrt({n}) = {1 / math.sqrt(n):.3f}")
    for m in ("ridge", "gbt", "policy"):
        tops = np.mean([r[m][0] for r in rows])
        ics = np.array([r[m][1] for r in rows])
        fcs = np.array([r[m][2] for r in rows])
        print(f"{m}: planted factor most important in {tops:.0%}; IC of its contribution {ics.mean():.3f} "
              f"+- {ics.std(ddof=1):.3f} (truth 0.08); IC of the forecast {fcs.mean():.3f} +- {fcs.std(ddof=1):.3f}")
    print(f"theoretical Sharpe {truth:.2f} inside the ridge strategy's 95% interval in "
          f"{np.mean([r['covered'] for r in rows]):.0%} of seeds; mean Sharpe {np.mean([r['sharpe'] for r in rows]):.2f}")


def real() -> None:
    from riskengine.cli import main

    data = ROOT.parent / "shared" / "data"
    if not data.exists():
        sys.exit(f"real data not found at {data}")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        code = main(["run", str(ROOT / "configs" / "exposure_real.yaml"), "--out", f"{tmp}/out", "--no-progress"])
        wall = time.perf_counter() - t0
        s = json.loads((Path(tmp) / "out" / "summary.json").read_text())
    print(f"exit {code}; wall {wall:.1f} s (CLI, imports included); job {s['seconds']:.1f} s; timings {s['timings']}")
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    print(f"period {s['period']}")
    print("| strategy | ann. return | ann. vol | Sharpe [95% CI] | Sortino | max DD | CVaR 95% (1d) | turnover/yr | costs | funding | DSR p |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for k, v in s["strategies"].items():
        print(f"| {k} | {v['annual_return']:.1%} | {v['annual_vol']:.1%} | {v['sharpe']:.2f} "
              f"[{v['sharpe_ci'][0]:.2f}, {v['sharpe_ci'][1]:.2f}] | {v['sortino']:.2f} | {v['max_drawdown']:.1%} | "
              f"{v['cvar_95']:.2%} | {v['turnover']:.1f} | {v['costs']:.1%} | {v['funding_paid']:.1%} | "
              f"{v['deflated_sharpe_p']:.3f} |")
    for m, v in s["significance"].items():
        print(f"{m}: {v['statement']}")
        for o, t in v["against"].items():
            print(f"    vs {o}: {t}")
    for m in s["models"]:
        top = sorted(s["importance"][m].items(), key=lambda x: -x[1])[:3]
        print(f"{m}: forecast IC {s['ic'][m]['forecast']:.4f}; top importance "
              + ", ".join(f"{f} {v:.2f}" for f, v in top))
    print("univariate IC: " + ", ".join(f"{f} {v:.3f}" for f, v in s["ic"]["univariate"].items()))
    for st, by in s["var_backtest"].items():
        print(f"VaR {st}: " + "; ".join(
            f"{v['level']}: {v['exceedances']}/{v['expected_exceedances']:.1f}, Kupiec p {v['kupiec']['p_value']:.3f}, "
            f"cc p {v['christoffersen_coverage']['p_value']:.3f}" for v in by.values()))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("check", choices=["noise", "planted", "real"])
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--no-price-factors", action="store_true",
                        help="planted: only the four file factors (no momentum, drawdown, realised vol)")
    parser.add_argument("--no-intercept", action="store_true", help="planted: ridge without intercept")
    args = parser.parse_args()
    if args.check == "noise":
        noise(args.seeds or 20)
    elif args.check == "planted":
        planted(args.seeds or 10, price_factors=not args.no_price_factors, intercept=not args.no_intercept)
    else:
        real()
