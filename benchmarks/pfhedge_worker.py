"""pfhedge side of benchmarks/hedge_vs_pfhedge.py; runs in its own environment (torch, numpy<2).

Trains pfhedge's multi-layer-perceptron example (GBM sigma 0.2, 20 steps of 1/250, ATM call,
entropic risk a = 1, features log_moneyness, expiry_time, volatility, prev_hedge; MLP 4 x 32
ReLU; Adam 1e-3) and prints one JSON line: training seconds, price on fresh paths, loss history.
"""

import argparse
import json
import time

import torch
from pfhedge.instruments import BrownianStock, EuropeanOption
from pfhedge.nn import Hedger, MultiLayerPerceptron


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cost", type=float, required=True)
    parser.add_argument("--paths", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--eval-paths", type=int, default=1_000_000, help="0: time the training only")
    parser.add_argument("--eval-batch", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--validation", action="store_true", help="pfhedge's default: a validation pass per epoch")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    derivative = EuropeanOption(BrownianStock(cost=args.cost))
    model = MultiLayerPerceptron()
    hedger = Hedger(model, ["log_moneyness", "expiry_time", "volatility", "prev_hedge"])
    started = time.perf_counter()
    history = hedger.fit(derivative, n_paths=args.paths, n_epochs=args.epochs, verbose=False,
                         validation=args.validation)
    train_seconds = time.perf_counter() - started
    # The price on fresh paths, in batches: pfhedge's price is -cash(PL), the entropic
    # certainty equivalent; over batches we pool exp(-a PL) (a = 1), which is the same figure.
    if args.eval_paths == 0:  # a timing-only repeat
        print(json.dumps({"train_seconds": train_seconds, "price": None, "price_stderr": None,
                          "torch": torch.__version__, "threads": torch.get_num_threads(), "loss_history": history}))
        return
    torch.manual_seed(args.seed + 1)
    pnls = []
    with torch.no_grad():
        remaining = args.eval_paths
        while remaining > 0:
            batch = min(args.eval_batch, remaining)
            derivative.simulate(n_paths=batch)
            pl = hedger.compute_pl(derivative).double()
            pnls.append(pl)
            remaining -= batch
    pl = torch.cat(pnls)
    price = float(torch.logsumexp(-pl, 0) - torch.log(torch.tensor(float(pl.numel()), dtype=torch.float64)))
    w = torch.exp(-pl - (-pl).max())
    stderr = float(w.std() / (w.mean() * pl.numel() ** 0.5))
    print(json.dumps({
        "train_seconds": train_seconds, "price": price, "price_stderr": stderr, "torch": torch.__version__,
        "threads": torch.get_num_threads(), "loss_history": history,
    }))


if __name__ == "__main__":
    main()
