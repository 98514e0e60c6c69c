"""Child process of the scaling tests (not collected by pytest): the Monte Carlo part of
the stress job (per-path P&L, then Euler contributions) on the bundled book, optionally
in a ``jax.distributed`` run, with a checkpoint, on a chosen number of local devices.

    python tests/scale_child.py OUT.npz '{"paths": 3000, ...}' [--coordinator H:P --num-processes N
        --process-id I] [--checkpoint DIR [--resume]] [--devices D]

Writes (process 0 only) ``OUT.npz`` with ``pnl`` and ``contributions`` (measures x positions).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("mc")
    parser.add_argument("--model", default=None, help="JSON model spec replacing the config's")
    parser.add_argument("--coordinator")
    parser.add_argument("--num-processes", type=int)
    parser.add_argument("--process-id", type=int)
    parser.add_argument("--checkpoint")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--devices", type=int)
    args = parser.parse_args()

    from riskengine import distributed

    if args.coordinator:
        distributed.initialize(coordinator=args.coordinator, num_processes=args.num_processes,
                               process_id=args.process_id)
    import jax
    import jax.numpy as jnp
    import numpy as np
    import yaml

    jax.config.update("jax_enable_x64", True)
    from riskengine.cache import enable_compilation_cache

    enable_compilation_cache()  # the same program in every child of a test: compiled once
    from riskengine import checkpoint
    from riskengine.book import base_values, load_book
    from riskengine.config import build_assets, validate
    from riskengine.jobs import stress
    from riskengine.market import load_market
    from riskengine.revaluation import PathRevaluation

    data = yaml.safe_load((ROOT / "configs" / "stress.yaml").read_text())
    data.update(book=str(ROOT / "configs" / "data" / "book.csv"), market=str(ROOT / "configs" / "data" / "market.yaml"),
                history=None, scenarios="none", limits={}, mc=json.loads(args.mc))
    if args.model:
        data["model"] = json.loads(args.model)
    config = validate(stress.Config, data, context={"base_dir": ROOT})
    market = load_market(Path(config.market))
    book = load_book(Path(config.book), market)
    names = list(book.underlyings)
    assets = build_assets(config.model, names, market.correlation_matrix(names), scheme=config.mc.scheme)
    dtype = jnp.float64 if config.mc.dtype == "float64" else jnp.float32
    mc = config.mc
    sim = PathRevaluation(book, market, assets, horizons_days=config.horizons_days, value0=base_values(book, market),
                          paths=mc.paths, seed=mc.seed, dtype=dtype, steps_per_day=mc.steps_per_day,
                          block_size=mc.block_size, chunk_paths=mc.chunk_paths)
    sim.devices = args.devices
    saved = None
    if args.checkpoint:
        saved = checkpoint.Checkpoint(args.checkpoint, fingerprint=args.mc + str(args.model), resume=args.resume)
    with checkpoint.active(saved):
        pnl = sim.total_pnl()
        contributions = sim.contributions(pnl, var_levels=config.risk.var_levels, es_levels=config.risk.es_levels)
    rows = [list(m["by_position"].values()) for h in contributions.values() for m in h.values()]
    if jax.process_index() == 0:
        np.savez(args.out, pnl=pnl, contributions=np.asarray(rows))


if __name__ == "__main__":
    main()
