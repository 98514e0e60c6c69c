"""Paper reproductions of the hedge job, ours beside the published numbers.

    .venv/bin/python benchmarks/hedge_reproductions.py [--only ntb,heston,scaling] [--quick] [--out DIR]

Runs the configs through the CLI (``riskengine run``), prints a markdown table of our numbers
beside the published ones with each check's tolerance, writes ``results.json`` to ``--out``
and exits 1 when a check is outside its tolerance. Several minutes on a CPU; ``--quick``
(few paths and epochs) only shows that everything runs: its checks are not meaningful.

1. ``ntb`` — Imaki et al., "No-Transaction Band Network" (arXiv 2103.01775), European option
   of the authors' notebook (github.com/pfnet-research/NoTransactionBandNetwork, main.ipynb,
   output of its "Evaluate the best premium" cells): premiums after training, NTB
   0.022544096 and feed-forward 0.022771166 (NTB 0.9972% cheaper). ``configs/hedge_ntb_imaki.yaml``
   and the same with ``policy: mlp, base: bs_delta`` (+ prev_hedge) for the feed-forward
   network. Their feed-forward adds ``tanh(MLP)`` to the delta with a randomly initialised
   last layer; ours adds the raw MLP output and starts at zero (pure delta).
   Checks: |NTB - 0.022544096| <= 2e-4 (about 1% of the premium: training noise of one
   seed, their 28-step set-up quirks, see the config), and NTB < our feed-forward.
2. ``heston`` — Buehler, Gonon, Teichmann, Wood, "Deep Hedging" (Quantitative Finance 2019,
   arXiv 1802.03042), section 5: Heston kappa 1, theta 0.04, sigma 2, rho -0.7, v0 0.04,
   ATM call, 30 daily steps, stock + variance swap, no costs, 50% and 99% expected
   shortfall. We could not read the paper's numbers in this environment (only its abstract and
   introduction were reachable), so the checks are the qualitative claims, against
   independent references: the Heston price (Fourier, ``hedging.reference_price``) and the
   complete-market "model hedge" (``hedging/model_hedge.py``):
   (a) the deep hedge's ES50 price is no worse than the model hedge's ES50 price
       (+1% of the Heston price), and within 25% of the Heston price;
   (a') its P&L is close to the model hedge's: correlation >= 0.9;
   (b) ES99 price > ES50 price, by more than 5 standard errors.
   Prices are reported at spot 100 (the configs run at spot 1; every price scales by 100).
3. ``scaling`` — price(eps) - price(0) against the proportional cost eps on a log-log fit:
   slope 2/3 (the Whalley–Wilmott / Kallsen–Muhle-Karbe asymptotics that the issue cites).
   The paper's own set-up for it could not be read here, so the set-up is ours (see the
   comment above SCALING_COSTS: 1200 hedge dates, a = 10, eps 6.25e-6 ... 1e-4, the initial
   hedge free): check |slope - 2/3| <= 0.05 for the trained band network. With 30 daily
   dates the asymptotic regime does not exist (slopes 0.71-0.84), and with 300 dates a well
   trained band gives 0.76 (benchmarks/RESULTS.md). The network starts from the delta hedge
   (``policy.start: delta``) and trains at Adam 1e-3: from a random band, training at the
   small costs ends on the delta hedge (a crossed band, see NoTransactionBandPolicy). It sees
   ``spot_gamma`` besides the paper's features, so it can learn the band's Gamma^(2/3) shape
   (without it: 3-13% above Whalley-Wilmott and slope 0.719, session 5). Session 6's run:
   slope 0.690 +- 0.017 (pass; 0.696 with ``--train-seed 1``, which re-runs it with another
   training seed), about 50 minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PUBLISHED_NTB = 0.022544096410274505  # notebook output, "Premium ... no-transaction band network"
PUBLISHED_FFN = 0.02277116635814309  # notebook output, "Premium ... feed-forward band network"
NTB_TOLERANCE = 2e-4
HESTON_SCALE = 100.0  # the paper's spot; the configs run at spot 1
HESTON_EPOCHS = (1500, 800)  # ES50 (4,000 paths an epoch), ES99 (10,000): longer than the shipped configs

# The cost-scaling sweep: Black–Scholes market (GBM sigma 0.2, spot = strike = 1), ATM call,
# maturity 30/365, the stock only, a no-transaction band around the Black–Scholes delta,
# entropic risk a = 10. The eps^(2/3) law is a statement about the band regime: the
# Whalley–Wilmott half-width H = (3 eps S Gamma^2 / 2a)^(1/3) must be (i) wider than the move
# of the delta between two hedge dates (about 0.4 / sqrt(dates) at the money), or the hedger
# trades every date and pays costs linearly in eps, and (ii) well inside the delta's range,
# or the asymptotics do not apply. With 30 daily dates no eps satisfies both (the daily move
# 0.07 needs H >~ 0.2, already a fifth of the range): there every set-up we tried gave
# 0.71-0.84. Condition (i) is stricter than it looks: a discrete walk overshoots a band edge
# by about 0.58 of the move, so the cost term behaves like eps / (H + 0.58 move) and the local
# slope is 2 (H + 0.58 move) / (3 H + 2 * 0.58 move), and the best band is narrower than
# Whalley–Wilmott's. With 300 dates (move 0.023) the best bands (0.02 ... 0.07) gave slopes
# 0.77 ... 0.70 (0.76 overall, trained); with 1200 dates (move 0.0115) the best constant and
# Whalley–Wilmott-shaped bands give 0.69 over eps = 6.25e-6 ... 1e-4 (evaluation only). The
# set-up cost eps |delta_0| S at t_0 is linear in eps and no part of the asymptotic term, so
# the hedge starts free (hedge.charge_initial_trade: false).
SCALING_STEPS = 1200
SCALING_AVERSION = 10.0
SCALING_COSTS = (6.25e-6, 1.25e-5, 2.5e-5, 5e-5, 1e-4)
SCALING_TOLERANCE = 0.05


def merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def run_config(name: str, out: Path, tag: str, overrides: dict | None = None) -> tuple[dict, pd.DataFrame]:
    """Run ``configs/name`` with ``overrides`` merged in; the summary and the P&L table."""
    from riskengine.cli import main

    data = merge(yaml.safe_load((ROOT / "configs" / name).read_text()), overrides or {})
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{tag}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    started = time.perf_counter()
    if main(["run", str(path), "--out", str(out / tag), "--no-progress"]) != 0:
        raise SystemExit(f"{tag}: the hedge job failed")
    summary = json.loads((out / tag / "summary.json").read_text())
    summary["wall_seconds"] = time.perf_counter() - started
    print(f"  {tag}: price {summary['price']:.6g} in {summary['wall_seconds']:.0f} s", flush=True)
    return summary, pd.read_parquet(out / tag / "pnl.parquet")


def quick_overrides(quick: bool, epochs: int = 20, paths: int = 4096) -> dict:
    return {"train": {"paths": paths, "epochs": epochs}, "evaluate": {"paths": 2 * paths}} if quick else {}


def check(rows: list, name: str, ours: float, reference: str, tolerance: str, ok: bool) -> None:
    rows.append({"check": name, "ours": ours, "reference": reference, "tolerance": tolerance, "ok": bool(ok)})


# --- 1. Imaki et al. -----------------------------------------------------------------------------------------


def ntb(out: Path, quick: bool, rows: list) -> None:
    print("Imaki et al. no-transaction band network", flush=True)
    q = quick_overrides(quick)
    s_ntb, _ = run_config("hedge_ntb_imaki.yaml", out, "ntb", q)
    ffn = {"policy": {"type": "mlp", "base": "bs_delta",
                      "features": ["log_moneyness", "time_to_maturity", "volatility", "prev_hedge"]}}
    s_ffn, _ = run_config("hedge_ntb_imaki.yaml", out, "ntb_feedforward", merge(ffn, q))
    p_ntb, p_ffn = s_ntb["price"], s_ffn["price"]
    check(rows, "NTB premium (Imaki, entropic a=1)", p_ntb, f"{PUBLISHED_NTB:.9f} (published)",
          f"± {NTB_TOLERANCE:g}", abs(p_ntb - PUBLISHED_NTB) <= NTB_TOLERANCE)
    check(rows, "feed-forward premium (Imaki)", p_ffn, f"{PUBLISHED_FFN:.9f} (published)", "reported only", True)
    check(rows, "NTB cheaper than feed-forward, %", 100 * (p_ffn - p_ntb) / p_ffn,
          f"{100 * (PUBLISHED_FFN - PUBLISHED_NTB) / PUBLISHED_FFN:.4f} (published)", "> 0", p_ntb < p_ffn)
    check(rows, "NTB premium stderr", s_ntb["price_stderr"], "-", "reported only", True)
    for name in ("bs_delta", "whalley_wilmott", "no_hedge"):
        check(rows, f"{name} premium (same paths)", s_ntb["baselines"][name], "-", "reported only", True)


# --- 2. Buehler et al., Heston -------------------------------------------------------------------------------


def heston(out: Path, quick: bool, rows: list) -> None:
    print("Buehler et al. Heston, stock + variance swap, no costs", flush=True)
    q50 = quick_overrides(quick) or {"train": {"epochs": HESTON_EPOCHS[0]}}
    q99 = quick_overrides(quick) or {"train": {"epochs": HESTON_EPOCHS[1]}}
    s50, pnl50 = run_config("hedge_deep_hedging_heston_cvar50.yaml", out, "heston_cvar50", q50)
    s99, _ = run_config("hedge_deep_hedging_heston_cvar99.yaml", out, "heston_cvar99", q99)
    k = HESTON_SCALE
    ref = s50["reference_price"] * k
    deep50, model50 = s50["price"] * k, s50["baselines"]["heston_delta_vega"] * k
    deep99, model99 = s99["price"] * k, s99["baselines"]["heston_delta_vega"] * k
    mc_mean = -pnl50["no_hedge"].mean() * k
    mc_se = pnl50["no_hedge"].std(ddof=1) / math.sqrt(len(pnl50)) * k
    check(rows, "Heston price, MC mean payoff (spot 100)", mc_mean, f"{ref:.4f} (Fourier)", "± 4 stderr",
          abs(mc_mean - ref) <= 4 * mc_se)
    check(rows, "(a) deep hedge ES50 price", deep50, f"{model50:.4f} (model hedge ES50)",
          f"<= model + {0.01 * ref:.3f}", deep50 <= model50 + 0.01 * ref)
    check(rows, "(a) deep ES50 / Heston price - 1", deep50 / ref - 1, f"{ref:.4f} (Heston price)", "<= 0.25",
          abs(deep50 / ref - 1) <= 0.25)
    corr = float(np.corrcoef(pnl50["policy"], pnl50["heston_delta_vega"])[0, 1])
    check(rows, "(a') corr(deep P&L, model-hedge P&L), ES50", corr, "1", ">= 0.9", corr >= 0.9)
    for name in ("policy", "heston_delta_vega", "bs_delta", "no_hedge"):
        check(rows, f"P&L std, ES50 run: {name}", pnl50[name].std(ddof=1) * k, "-", "reported only", True)
    se = s99["price_stderr"] * k
    check(rows, "(b) deep hedge ES99 price", deep99, f"{deep50:.4f} (deep ES50)", "> ES50 + 5 stderr",
          deep99 > deep50 + 5 * se)
    check(rows, "model hedge ES99 price", model99, "-", "reported only", True)
    check(rows, "train seconds ES50 / ES99", s50["train_seconds"] + s99["train_seconds"], "-", "reported only", True)


# --- 3. cost scaling -----------------------------------------------------------------------------------------


def _paired_excess(pnl: np.ndarray, pnl0: np.ndarray, aversion: float) -> tuple[float, float]:
    """The entropic price of ``pnl`` minus that of ``pnl0`` (the same paths) and its standard
    error, by the delta method on the paired per-path influences."""
    def price_and_influence(x):
        e = np.exp(-aversion * (x - x.mean()))
        return np.log(e.mean()) / aversion - x.mean(), (e / e.mean() - 1.0) / aversion

    p, psi = price_and_influence(np.asarray(pnl, np.float64))
    p0, psi0 = price_and_influence(np.asarray(pnl0, np.float64))
    return p - p0, float(np.std(psi - psi0) / np.sqrt(len(psi)))


def _log_log_slope(eps, excess, stderr) -> tuple[float, float]:
    """Least-squares slope of log(excess) on log(eps) and its standard error, propagated from
    each point's (var(log e) ~ (se / e)^2; the points' errors are treated as independent)."""
    x, y = np.log(eps), np.log(excess)
    c = (x - x.mean()) / np.sum((x - x.mean()) ** 2)
    return float(np.sum(c * y)), float(np.sqrt(np.sum((c * np.asarray(stderr) / np.asarray(excess)) ** 2)))


def scaling(out: Path, quick: bool, rows: list, train_seed: int | None = None) -> None:
    print("price(eps) - price(0) against eps", flush=True)
    base = {
        "derivative": {"maturity": 30 / 365},
        "hedge": {"instruments": ["underlying"], "steps": SCALING_STEPS, "charge_initial_trade": False},
        "policy": {"type": "no_transaction_band", "start": "delta",
                   "features": ["log_moneyness", "time_to_maturity", "volatility", "spot_gamma"]},
        "objective": {"type": "entropic", "risk_aversion": SCALING_AVERSION},
        "train": {"paths": 10000, "epochs": 120, "learning_rate": 1e-3, "schedule": "cosine",
                  "final_learning_rate": 1e-4},
        "evaluate": {"paths": 2**20, "baselines": ["bs_delta", "whalley_wilmott"]},
    }
    base = merge(base, quick_overrides(quick))
    if train_seed is not None:
        base = merge(base, {"train": {"seed": train_seed}})
    # price(0): without costs the band network's best band is empty, i.e. the delta it is
    # built around, so price(0) is the Black–Scholes-delta hedge's price on the same paths
    # (every run evaluates on the same seed: common random numbers across eps, and the
    # standard errors below are those of the paired differences).
    _, table0 = run_config("hedge_ntb_imaki.yaml", out, "scaling_eps0",
                           merge(base, {"hedge": {"cost": 0.0}, "train": {"epochs": 1}}))
    pnl0 = table0["bs_delta"].to_numpy()
    found: dict[str, tuple[list, list]] = {"policy": ([], []), "whalley_wilmott": ([], [])}
    labels = {"policy": "trained band", "whalley_wilmott": "Whalley–Wilmott"}
    for c in SCALING_COSTS:
        _, table = run_config("hedge_ntb_imaki.yaml", out, f"scaling_eps{c:g}", merge(base, {"hedge": {"cost": c}}))
        for name, (values, errors) in found.items():
            excess, se = _paired_excess(table[name].to_numpy(), pnl0, SCALING_AVERSION)
            values.append(excess)
            errors.append(se)
            check(rows, f"scaling: price({c:g}) - price(0), {labels[name]} (± {se:.1e})", excess, "-", "reported only", True)
    for name, (values, _) in found.items():
        local = np.diff(np.log(values)) / np.diff(np.log(SCALING_COSTS))
        check(rows, f"scaling: local slopes, {labels[name]}: " + ", ".join(f"{x:.3f}" for x in local), float(local.mean()),
              "-", "reported only", True)
    slope, slope_se = _log_log_slope(SCALING_COSTS, *found["policy"])
    ww_slope, ww_se = _log_log_slope(SCALING_COSTS, *found["whalley_wilmott"])
    check(rows, f"scaling: log-log slope, Whalley–Wilmott (a = {SCALING_AVERSION:g}), ± {ww_se:.3f}", ww_slope,
          "2/3", "reported only", True)
    allowed = max(SCALING_TOLERANCE, 3 * slope_se)
    check(rows, f"scaling: log-log slope of price(eps) - price(0), trained band, ± {slope_se:.3f}", slope,
          "2/3 (asymptotics)", f"± max({SCALING_TOLERANCE}, 3 s.e.) = {allowed:.3f}", abs(slope - 2 / 3) <= allowed)


def ww_sweep(out: Path, quick: bool, rows: list) -> None:
    """Diagnostic, reported only: the log-log slope of the Whalley–Wilmott band's price excess
    (no training) in the same GBM market, for 30 and 240 hedge dates and a = 100, 1000."""
    import jax

    from hedging import (
        BlackScholesDelta,
        Entropic,
        EuropeanOption,
        HedgingProblem,
        TransactionCosts,
        WhalleyWilmott,
    )
    from hedging import evaluate as evaluate_pnl
    from riskengine.models import GBM

    print("Whalley–Wilmott price excess against eps (no training)", flush=True)
    paths = 8192 if quick else 49152
    for steps in (30, 240):
        for a in (100.0, 1000.0):
            def problem(c, steps=steps):
                return HedgingProblem(model=GBM(sigma=0.2), derivative=EuropeanOption(strike=1.0, maturity=30 / 365),
                                      spot=1.0, steps=steps, costs=TransactionCosts(proportional=(c,)))

            objective, key = Entropic(a), jax.random.key(1)
            p0 = objective.price(evaluate_pnl({"d": BlackScholesDelta()}, problem(0.0), key=key, num_paths=paths)["d"])
            excess = [objective.price(evaluate_pnl({"w": WhalleyWilmott(cost=c, risk_aversion=a)}, problem(c), key=key,
                                                   num_paths=paths)["w"]) - p0 for c in SCALING_COSTS]
            slope = float(np.polyfit(np.log(SCALING_COSTS), np.log(np.maximum(excess, 1e-12)), 1)[0])
            check(rows, f"WW sweep: slope, {steps} dates, a = {a:g}", slope, "2/3", "reported only", True)


def markdown(rows: list) -> str:
    lines = ["| check | ours | reference | tolerance | ok |", "| --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['check']} | {r['ours']:.6g} | {r['reference']} | {r['tolerance']} | "
                     f"{'yes' if r['ok'] else 'NO'} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="ntb,heston,scaling", help="comma-separated: ntb, heston, scaling, ww_sweep")
    parser.add_argument("--quick", action="store_true", help="few paths and epochs: a smoke run, not a reproduction")
    parser.add_argument("--out", default="out/hedge_reproductions")
    parser.add_argument("--train-seed", type=int, default=None,
                        help="scaling only: the networks' training seed (default: the config's, 42)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    rows: list = []
    parts = {"ntb": ntb, "heston": heston, "scaling": functools.partial(scaling, train_seed=args.train_seed),
             "ww_sweep": ww_sweep}
    started = time.perf_counter()
    for name in args.only.split(","):
        parts[name.strip()](out, args.quick, rows)
    print(markdown(rows))
    print(f"total {time.perf_counter() - started:.0f} s")
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(rows, indent=2))
    failed = [r["check"] for r in rows if not r["ok"]]
    if failed:
        print("OUTSIDE TOLERANCE:", "; ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
