"""Issue 18's acceptance run: Black-76, Heston and SVCJ calibrated to every Deribit snapshot in
``../shared/data/deribit/options`` (date order, warm starts, holdout 0.2), pooled test RMSE /
share inside the bid–ask, the time per snapshot and per model; and QuantLib's Heston
calibration (``HestonModel`` + ``HestonModelHelper``, Levenberg–Marquardt) on the same train
quotes, with both parameter sets scored by the same objective.

    .venv/bin/python benchmarks/deribit_history.py                 # BTC, all 236 snapshots
    .venv/bin/python benchmarks/deribit_history.py --currency ETH
    .venv/bin/python benchmarks/deribit_history.py --snapshots 10 --quantlib-every 1

QuantLib set-up per compared snapshot: evaluation date = the snapshot's date, spot = the
index, rate 0, a dividend zero curve through the expiries' forwards (so each expiry's
forward is Deribit's), one helper per train quote with its Black vol (of the coin mid, on
our exact year fraction) and ``PriceError``, weights ``1/spread_usd^2`` (so QuantLib's
objective is ours: ``sum ((P - mid)/spread)^2``), warm-started from its previous solution
(the first from the same start as ours). QuantLib's maturities are whole days from the
evaluation date (ours: expiry 08:00 UTC minus the snapshot time, years of 365.25 days), so its
fit sees slightly different maturities; both parameter sets are then scored by our objective
with the 1024-node pricer on the exact maturities. Prints a markdown table and writes
``--out`` (JSON).

After the timed run (not counted in it):

- the fitted table's prices (``OUTPUT_NODES`` = 256 nodes) against the 1024-node pricer at
  the same parameters, on every ``--check-nodes-every``-th snapshot (max abs difference);
- per snapshot, whether the SVCJ fit's quote objective (``sum ((P - mid)/spread)^2`` over the
  train quotes) is above the same snapshot's Heston fit, which it nests;
- the put–call-parity floor of the test RMSE: for every test quote whose strike and expiry
  are quoted on both sides, ``v = C_mid - P_mid - (1 - K/F)`` is the parity violation of the
  two mids (every model here prices ``C - P = 1 - K/F`` exactly). A fit that matches the
  tight side of such a pair misses the wide side by ``|v|``; the floor is the RMSE over all
  test quotes of ``v`` on the wide sides (0 elsewhere): what an arbitrage-free model fitted
  by 1/spread-weighted residuals is expected to leave at least.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from riskengine.cache import enable_compilation_cache  # noqa: E402
from riskengine.calibration.chain import (  # noqa: E402
    OUTPUT_NODES,
    SOLVER_PARAMETERS,
    LiquidityFilter,
    assign_sets,
    calibrate_snapshots,
    chain_prices,
    liquid_quotes,
)
from riskengine.calibration.surface import bs_implied_vol  # noqa: E402
from riskengine.data import list_snapshots, read_chain  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "deribit" / "options"


def quantlib_heston(train, start: dict, *, max_iterations: int = 500) -> tuple[dict, float]:
    """QuantLib's Heston calibration on ``train`` (see the module docstring)."""
    import QuantLib as ql

    stamp = train["timestamp"].iloc[0]
    today = ql.Date(stamp.day, stamp.month, stamp.year)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    index = float(train["index"].median())
    spot = ql.QuoteHandle(ql.SimpleQuote(index))
    flat = ql.YieldTermStructureHandle(ql.FlatForward(today, 0.0, dc))
    expiries = train.groupby("expiry")["forward"].first()
    dates, rates = [today], [0.0]
    for expiry, forward in expiries.items():  # noqa: B007
        d = ql.Date(expiry.day, expiry.month, expiry.year)
        t = dc.yearFraction(today, d)
        dates.append(d)
        rates.append(-math.log(forward / index) / t)
    rates[0] = rates[1]
    dividend = ql.YieldTermStructureHandle(ql.ZeroCurve(dates, rates, dc))
    k = (train["strike"] / train["forward"]).to_numpy()
    vol = bs_implied_vol(price=train["mid"].to_numpy(), spot=np.ones(len(train)), strike=k,
                         maturity=train["maturity"].to_numpy(), rate=0.0, dividend=0.0,
                         is_call=train["is_call"].to_numpy())
    vol = np.where(np.isfinite(vol), vol, train["mark_iv"].to_numpy())
    process = ql.HestonProcess(flat, dividend, spot, start["v0"], start["kappa"], start["theta"],
                               start["sigma"], start["rho"])
    model = ql.HestonModel(process)
    engine = ql.AnalyticHestonEngine(model)
    helpers, weights = [], []
    calendar = ql.NullCalendar()
    for (_, row), v in zip(train.iterrows(), vol, strict=True):
        d = ql.Date(row["expiry"].day, row["expiry"].month, row["expiry"].year)
        days = max(d - today, 1)
        helper = ql.HestonModelHelper(ql.Period(days, ql.Days), calendar, index, float(row["strike"]),
                                      ql.QuoteHandle(ql.SimpleQuote(float(v))), flat, dividend,
                                      ql.BlackCalibrationHelper.PriceError)
        helper.setPricingEngine(engine)
        helpers.append(helper)
        weights.append(1.0 / (row["spread"] * row["forward"]) ** 2)
    lm = ql.LevenbergMarquardt(1e-8, 1e-8, 1e-8)
    started = time.perf_counter()
    model.calibrate(helpers, lm, ql.EndCriteria(max_iterations, 50, 1e-8, 1e-8, 1e-8),
                    ql.NoConstraint(), weights)
    seconds = time.perf_counter() - started
    theta, kappa, sigma, rho, v0 = model.params()
    return {"v0": v0, "kappa": kappa, "theta": theta, "sigma": sigma, "rho": rho}, seconds


def objective(quotes, model: str, params: dict) -> float:
    price = chain_prices(quotes, model, params)
    return float(np.sum(((price - quotes["mid"].to_numpy()) / quotes["spread"].to_numpy()) ** 2))


def parity_floor(quotes, chain_quotes) -> tuple[float, int, int]:
    """Sum of squared parity violations on the wide side of the test quotes of one snapshot
    (see the module docstring), the number of test quotes, and how many miss by > 0.01 coin."""
    pairs = chain_quotes.pivot_table(index=["expiry", "strike"], columns="option",
                                     values=["mid", "spread", "forward"], aggfunc="first").dropna()
    if pairs.empty or "call" not in pairs["mid"] or "put" not in pairs["mid"]:
        return 0.0, int((quotes["set"] == "test").sum()), 0
    strike = pairs.index.get_level_values("strike").to_numpy()
    gap = (pairs[("mid", "call")] - pairs[("mid", "put")]
           - (1.0 - strike / pairs[("forward", "call")])).rename("gap")
    sides = pairs[[("spread", "call"), ("spread", "put")]].droplevel(0, axis=1)
    table = sides.assign(gap=gap).reset_index()
    test = quotes[quotes["set"] == "test"].merge(table, on=["expiry", "strike"], how="left")
    call = (test["option"] == "call").to_numpy()
    own = np.where(call, test["call"], test["put"])
    other = np.where(call, test["put"], test["call"])
    miss = np.nan_to_num(np.where(own > other, test["gap"].to_numpy(), 0.0))
    return float(np.sum(miss**2)), len(test), int(np.sum(np.abs(miss) > 0.01))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--currency", default="BTC")
    parser.add_argument("--snapshots", type=int, default=0, help="first N snapshots (0: all)")
    parser.add_argument("--every", type=int, default=1, help="every k-th snapshot (1: all)")
    parser.add_argument("--models", default="black,heston,svcj")
    parser.add_argument("--temporal-penalty", type=float, default=0.0)
    parser.add_argument("--max-steps", type=int, default=100)
    parser.add_argument("--quantlib-every", type=int, default=1,
                        help="compare with QuantLib on every k-th snapshot (0: never)")
    parser.add_argument("--check-nodes-every", type=int, default=10,
                        help="after the run, compare the output prices with 1024 nodes on every "
                             "k-th snapshot (0: never)")
    parser.add_argument("--compilation-cache", action="store_true",
                        help="use riskengine's persistent compilation cache (as `riskengine run` "
                             "does); default: off, so the time includes every compilation")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.compilation_cache:
        enable_compilation_cache()
    if not DATA.is_dir():
        sys.exit(f"real Deribit data not found at {DATA} (../shared/data)")
    files = list_snapshots(DATA)
    if args.snapshots:
        files = files[: args.snapshots]
    files = files[:: args.every]
    models = args.models.split(",")
    chains = [lambda f=f: read_chain(f, currency=args.currency) for f in files]
    last = [0.0]

    def progress(done, total):
        if done % (10 * len(models)) == 0 or done == total:
            print(f"  {done}/{total} fits, {time.perf_counter() - started:.0f} s", flush=True)
        last[0] = time.perf_counter()

    started = time.perf_counter()
    cpu_started = time.process_time()
    load_before = os.getloadavg()
    run = calibrate_snapshots(chains, models=models, fraction=0.2, seed=0,
                              temporal_penalty=args.temporal_penalty, max_steps=args.max_steps,
                              progress=progress)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    load_after = os.getloadavg()
    record = {
        "currency": args.currency, "snapshots": len(files), "every": args.every, "models": models,
        "temporal_penalty": args.temporal_penalty, "max_steps": args.max_steps,
        "wall_seconds": wall, "cpu_seconds": cpu, "compile_seconds": run.compile_seconds,
        "load_average_before_after": [load_before, load_after],
        "compilation_cache": args.compilation_cache,
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, "
                   f"{os.cpu_count()} CPUs",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "summary": run.summary,
    }
    h = run.history
    if args.out:
        h.to_csv(args.out.with_suffix(".history.csv"), index=False)
    for m in models:
        mine = h[h["model"] == m]
        record["summary"][m]["seconds_per_snapshot_median"] = float(mine["seconds"].median())
        record["summary"][m]["steps_median"] = float(mine["steps"].median())

    # Untimed checks: output quadrature, SVCJ against the Heston it nests, the parity floor
    if {"heston", "svcj"} <= set(models):
        obj = h.pivot_table(index="timestamp", columns="model", values="quote_objective")
        worse = obj[obj["svcj"] > obj["heston"] * (1 + 1e-9)]
        record["svcj_worse_than_heston"] = {
            "snapshots": int(len(worse)), "of": int(len(obj)),
            "largest_excess": float((worse["svcj"] / worse["heston"] - 1).max()) if len(worse) else 0.0}
    floor_sse, floor_n, floor_big, node_diff = 0.0, 0, 0, 0.0
    for i, load in enumerate(chains):
        chain = load()
        quotes, _ = liquid_quotes(chain.quotes, LiquidityFilter())
        quotes = quotes.assign(set=assign_sets(quotes, fraction=0.2, seed=0))
        sse, n, big = parity_floor(quotes, chain.quotes)
        floor_sse, floor_n, floor_big = floor_sse + sse, floor_n + n, floor_big + big
        if args.check_nodes_every and i % args.check_nodes_every == 0:
            for m in models:
                row = h[h["model"] == m].iloc[i]
                params = {k: float(row[k]) for k in SOLVER_PARAMETERS[m]}
                fine = chain_prices(quotes, m, params)
                node_diff = max(node_diff, float(np.max(np.abs(
                    chain_prices(quotes, m, params, num_nodes=OUTPUT_NODES) - fine))))
    record["parity_floor"] = {"rmse": math.sqrt(floor_sse / max(floor_n, 1)), "test_quotes": floor_n,
                              "quotes_off_by_more_than_0.01": floor_big}
    record["output_nodes_max_abs_diff_vs_1024"] = node_diff if args.check_nodes_every else None

    # QuantLib's Heston on the same train quotes
    if args.quantlib_every and "heston" in models:
        rows = []
        ours = h[h["model"] == "heston"].reset_index(drop=True)
        ql_start = None
        for i in range(0, len(files), args.quantlib_every):
            chain = chains[i]()
            quotes, _ = liquid_quotes(chain.quotes, LiquidityFilter())
            quotes = quotes.assign(set=assign_sets(quotes, fraction=0.2, seed=0))
            train = quotes[quotes["set"] == "train"]
            params = {k: float(ours.loc[i, k]) for k in ("v0", "kappa", "theta", "sigma", "rho")}
            start = ql_start or params
            try:
                ql_params, ql_seconds = quantlib_heston(train, start)
            except RuntimeError as err:
                rows.append({"snapshot": i, "error": str(err).splitlines()[0]})
                continue
            ql_start = ql_params
            rows.append({"snapshot": i, "ours_seconds": float(ours.loc[i, "seconds"]),
                         "quantlib_seconds": ql_seconds,
                         "ours_objective": objective(train, "heston", params),
                         "quantlib_objective": objective(train, "heston", ql_params)})
        ok = [r for r in rows if "error" not in r]
        record["quantlib"] = {
            "snapshots": len(rows), "failed": len(rows) - len(ok),
            "ours_seconds": float(sum(r["ours_seconds"] for r in ok)),
            "quantlib_seconds": float(sum(r["quantlib_seconds"] for r in ok)),
            "ours_objective_median": float(np.median([r["ours_objective"] for r in ok])),
            "quantlib_objective_median": float(np.median([r["quantlib_objective"] for r in ok])),
            "ours_better_or_equal": int(sum(r["ours_objective"] <= r["quantlib_objective"] * (1 + 1e-6) for r in ok)),
            "rows": rows,
        }

    print(f"\n{args.currency}: {len(files)} snapshots, {wall:.0f} s wall, {cpu:.0f} s CPU "
          f"({run.compile_seconds:.0f} s compiling); load average {load_before[0]:.1f} -> "
          f"{load_after[0]:.1f} on {os.cpu_count()} CPUs\n")
    print("| model | test RMSE (coin) | test MAE | test inside | test quotes | train RMSE | s/snapshot (mean) | converged |")
    print("|---|---|---|---|---|---|---|---|")
    for m in models:
        s = record["summary"][m]
        print(f"| {m} | {s['test']['rmse']:.5f} | {s['test']['mae']:.5f} | {s['test']['inside']:.1%} | "
              f"{s['test']['quotes']} | {s['train']['rmse']:.5f} | {s['seconds_per_snapshot']:.2f} | "
              f"{s['converged']}/{s['fits']} |")
    floor = record["parity_floor"]
    print(f"\nput-call parity floor of the pooled test RMSE: {floor['rmse']:.5f} coin "
          f"({floor['quotes_off_by_more_than_0.01']} of {floor['test_quotes']} test quotes are "
          f"the wide side of a pair whose mids miss parity by > 0.01 coin)")
    if "svcj_worse_than_heston" in record:
        w = record["svcj_worse_than_heston"]
        print(f"SVCJ quote objective above the same snapshot's Heston: {w['snapshots']} of {w['of']} "
              f"snapshots (largest excess {w['largest_excess']:.2%})")
    if record["output_nodes_max_abs_diff_vs_1024"] is not None:
        print(f"output prices ({OUTPUT_NODES} nodes) vs 1024 nodes, every {args.check_nodes_every}th "
              f"snapshot: max abs difference {record['output_nodes_max_abs_diff_vs_1024']:.1e} coin")
    if "quantlib" in record:
        q = record["quantlib"]
        print(f"\nQuantLib Heston on {q['snapshots']} snapshots ({q['failed']} failed): "
              f"{q['quantlib_seconds']:.1f} s vs ours {q['ours_seconds']:.1f} s "
              f"(ratio {q['quantlib_seconds'] / max(q['ours_seconds'], 1e-9):.2f}); median objective "
              f"ours {q['ours_objective_median']:.1f}, QuantLib {q['quantlib_objective_median']:.1f}; "
              f"ours <= QuantLib on {q['ours_better_or_equal']}")
    if args.out:
        args.out.write_text(json.dumps(record, indent=1, default=str))


if __name__ == "__main__":
    main()
