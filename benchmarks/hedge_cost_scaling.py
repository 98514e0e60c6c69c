"""Price excess over the frictionless delta hedge against the proportional cost eps, for a
trained no-transaction band network and the Whalley–Wilmott band, on common random numbers:
the log–log slope the continuous-time asymptotics put at 2/3.

    .venv/bin/python benchmarks/hedge_cost_scaling.py STEPS RISK_AVERSION EPOCHS EPS1,EPS2,... [free-initial]
    e.g. benchmarks/hedge_cost_scaling.py 30 1 100 1e-4,2e-4,4e-4,8e-4,1.6e-3,3.2e-3

``free-initial``: setting up the hedge at t_0 costs nothing (``charge_initial_trade=False``),
so that the excess is the rebalancing cost and risk alone, the term the asymptotics describe
(the set-up cost eps |h_0| S_0 is linear in eps). EPOCHS 0: Whalley–Wilmott only.

GBM sigma 0.2, ATM call on unit spot, maturity 30/365, entropic risk with the given aversion,
price(0) = the Black–Scholes delta hedge without costs; 131,072 evaluation paths.
"""

from __future__ import annotations

import sys
import time

import jax
import numpy as np

from hedging import (
    BlackScholesDelta,
    Entropic,
    EuropeanOption,
    HedgingProblem,
    NoTransactionBandPolicy,
    TransactionCosts,
    WhalleyWilmott,
    evaluate,
    make_optimizer,
    train,
)
from riskengine.models import GBM

PATHS = 131_072


def main(argv: list[str]) -> int:
    steps, aversion, epochs = int(argv[0]), float(argv[1]), int(argv[2])
    eps_grid = [float(x) for x in argv[3].split(",")]
    charge_initial = not (len(argv) > 4 and argv[4] == "free-initial")

    def problem(cost):
        return HedgingProblem(model=GBM(sigma=0.2), derivative=EuropeanOption(strike=1.0, maturity=30 / 365),
                              spot=1.0, steps=steps,
                              costs=TransactionCosts(proportional=(cost,), charge_initial_trade=charge_initial))

    objective = Entropic(aversion)
    key = jax.random.key(5)
    p0 = objective.price(evaluate({"d": BlackScholesDelta()}, problem(0.0), key=key, num_paths=PATHS)["d"])
    started = time.perf_counter()
    excess: dict[str, list[float]] = {"ntb": [], "whalley_wilmott": []} if epochs else {"whalley_wilmott": []}
    for cost in eps_grid:
        ww = WhalleyWilmott(cost=cost, risk_aversion=aversion)
        if not epochs:
            pnl = evaluate({"whalley_wilmott": ww}, problem(cost), key=key, num_paths=PATHS)
            excess["whalley_wilmott"].append(objective.price(pnl["whalley_wilmott"]) - p0)
            continue
        result = train(NoTransactionBandPolicy(key=jax.random.key(0)), objective, problem(cost),
                       key=jax.random.key(1), num_paths=10_000, epochs=epochs, optimizer=make_optimizer(3e-3),
                       epochs_per_call=20)
        pnl = evaluate({"ntb": result.policy, "whalley_wilmott": ww},
                       problem(cost), key=key, num_paths=PATHS)
        for name in excess:
            excess[name].append(objective.price(pnl[name]) - p0)
    x = np.log(eps_grid)
    for name, values in excess.items():
        y = np.log(values)
        print(f"{name:16s} steps {steps} a {aversion:g}: excess {np.round(values, 7).tolist()} "
              f"slope {np.polyfit(x, y, 1)[0]:.3f}, local {np.round(np.diff(y) / np.diff(x), 2).tolist()}")
    print(f"seconds {time.perf_counter() - started:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
