"""Avellaneda & Stoikov (2008), section 4, rerun under each discretisation choice.

``python -m riskengine.market_making.paper [--paths 1000] [--seed 3]`` prints, for
gamma in {0.1, 0.01, 0.5}, the inventory strategy and symmetric quoting (same mean spread,
same mid paths and fill draws) under every combination of

* the spread with or without the ``gamma sigma^2 (T - t)`` term of the paper's formula,
* fill probabilities ``min(1, A e^{-k delta} dt)`` (linear) or ``1 - exp(-A e^{-k delta} dt)``
  (poisson),
* fills at the quoted distances before the mid moves, or after it (stale quotes),
* and, for gamma = 0.5, quotes that cross the mid moved back to it (``clip_at_mid``),

beside the paper's printed rows, as a markdown table (the one in benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import itertools

import jax
import jax.numpy as jnp

from riskengine.market_making.dynamics import ArithmeticMid
from riskengine.market_making.simulator import FillModel, simulate_market_making
from riskengine.market_making.strategies import AvellanedaStoikov, Symmetric
from riskengine.models.brownian import Brownian

# gamma -> (spread, profit, std(profit), final q, std(final q)), inventory / symmetric
PAPER = {
    0.1: ((1.29, 62.94, 5.89, 0.10, 2.80), (1.29, 67.21, 13.43, -0.018, 8.66)),
    0.01: ((1.33, 66.78, 8.76, -0.02, 4.70), (1.33, 67.36, 13.40, -0.31, 8.65)),
    0.5: ((1.15, 33.92, 4.72, -0.02, 1.88), (1.15, 66.20, 14.53, 0.25, 9.06)),
}
KEYS = ("spread_mean", "profit_mean", "profit_std", "final_inventory_mean", "final_inventory_std")


def rows(*, paths: int = 1000, seed: int = 3, dtype: str = "float64") -> list[dict]:
    f = lambda x: jnp.asarray(x, dtype)  # noqa: E731
    process = ArithmeticMid(Brownian(sigma=f(2.0)))
    common = dict(key=jax.random.key(seed), spot=100.0, horizon=1.0, num_steps=200, num_paths=paths, dtype=dtype)
    out = []
    for gamma in PAPER:
        for time_term, rule, timing in itertools.product(
            (True, False), ("linear", "poisson"), ("fill_then_move", "move_then_fill")
        ):
            fills = FillModel(A=f(140.0), k=f(1.5), rule=rule)
            strategy = AvellanedaStoikov(gamma=f(gamma), k=f(1.5), sigma=f(2.0), time_term=time_term)
            ours = simulate_market_making(strategy, process, fills, timing=timing, **common)
            sym = simulate_market_making(
                Symmetric(half_spread=f(ours.spread_mean / 2)), process, fills, timing=timing, **common
            )
            out.append({
                "gamma": gamma, "time_term": time_term, "fills": rule, "timing": timing, "clip": False,
                "strategy": ours.statistics(), "symmetric": sym.statistics(),
            })
            if gamma == 0.5 and rule == "linear" and timing == "fill_then_move":
                ours = simulate_market_making(strategy, process, fills, clip_at_mid=True, **common)
                sym = simulate_market_making(
                    Symmetric(half_spread=f(ours.spread_mean / 2)), process, fills, clip_at_mid=True, **common
                )
                out.append({
                    "gamma": gamma, "time_term": time_term, "fills": rule, "timing": timing, "clip": True,
                    "strategy": ours.statistics(), "symmetric": sym.statistics(),
                })
    return out


def markdown(results: list[dict]) -> str:
    lines = [
        "| γ | spread term | fills | timing | spread | profit | sd(profit) | mean q_T | sd(q_T) "
        "| sym. profit | sym. sd(profit) | sym. sd(q_T) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for gamma, (inv, sym) in PAPER.items():
        lines.append(
            f"| {gamma} | **paper** | | | {inv[0]:.2f} | {inv[1]:.2f} | {inv[2]:.2f} | {inv[3]:.2f} | {inv[4]:.2f} "
            f"| {sym[1]:.2f} | {sym[2]:.2f} | {sym[4]:.2f} |"
        )
        for r in results:
            if r["gamma"] != gamma:
                continue
            s, y = r["strategy"], r["symmetric"]
            lines.append(
                f"| {gamma} | {'with' if r['time_term'] else 'without'} | {r['fills']} "
                f"| {r['timing']}{', clip_at_mid' if r['clip'] else ''} "
                f"| {s['spread_mean']:.2f} | {s['profit_mean']:.2f} | {s['profit_std']:.2f} "
                f"| {s['final_inventory_mean']:.2f} | {s['final_inventory_std']:.2f} "
                f"| {y['profit_mean']:.2f} | {y['profit_std']:.2f} | {y['final_inventory_std']:.2f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args(argv)
    jax.config.update("jax_enable_x64", True)
    print(markdown(rows(paths=args.paths, seed=args.seed)))


if __name__ == "__main__":
    main()
