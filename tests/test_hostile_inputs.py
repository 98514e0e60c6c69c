"""Hostile but realistic input (issue 16): every case gets exit 2 and one line naming the
field (or file) and the value, and nothing is written. Small inputs: the matrix runs in
well under a minute."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

from riskengine.cli import main

MARKET = {
    "asof": "2026-01-01",
    "stablecoins": {"USD": 1.0, "USDT": 1.0},
    "underlyings": {"BTC": {"spot": 100000.0, "vol_surface": {
        "expiries_days": [30, 90], "strikes": [80000, 100000, 120000], "vols": [[0.6] * 3, [0.6] * 3]}}},
}
HEADER = "id,venue,type,underlying,quantity,strike,expiry,option,entry_price,margin_mode,collateral,multiplier,mmr,collateral_currency\n"
ROW = "P1,binance,linear_perpetual,BTC,1,,,,100000,isolated,20000,1,0.005,USDT\n"
STRESS = {"job": "stress", "book": "book.csv", "market": "market.yaml", "model": {"name": "gbm", "params": {"sigma": 0.6}},
          "horizons_days": [1], "mc": {"paths": 1024, "seed": 1}, "scenarios": "none", "history": None, "fhs": None}
PRICE = {"job": "price", "model": {"name": "gbm", "params": {"sigma": 0.2}}, "market": {"spot": 100.0},
         "instruments": [{"type": "european", "option": "call", "strike": 100.0, "maturity": 1.0}],
         "mc": {"paths": 256, "steps_per_year": 12, "greeks": False}}
HEDGE = {"job": "hedge", "model": {"name": "gbm", "params": {"sigma": 0.2}}, "market": {"spot": 1.0},
         "derivative": {"type": "european", "option": "call", "strike": 1.0, "maturity": 0.08},
         "hedge": {"steps": 4}, "policy": {"type": "mlp", "width": 8, "depth": 2},
         "train": {"paths": 256, "epochs": 3, "epochs_per_call": 1}, "evaluate": {"paths": 256, "baselines": ["no_hedge"]}}
MM = {"job": "market_making", "model": {"name": "brownian", "params": {"sigma": 2.0}}, "market": {"spot": 100.0},
      "strategy": {"type": "avellaneda_stoikov", "gamma": 0.1, "k": 1.5, "A": 140.0},
      "simulation": {"horizon": 1.0, "dt": 0.005, "paths": 100}}


def changed(base: dict, **changes) -> dict:
    data = copy.deepcopy(base)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = data
        for p in parents:
            node = node[p]
        node[leaf] = value
    return data


def constant_history(tmp: Path) -> None:
    dates = np.datetime64("2020-01-01") + np.arange(400)
    (tmp / "flat.csv").write_text("date,BTC\n" + "".join(f"{d},100.0\n" for d in dates))


def billion_laughs() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "job: price\n" + "\n".join(lines) + "\nmodel: *i\n"


# case: (config (dict, or text of the config file), files {name: text or bytes}, extra args, fragments of the one line)
CASES = {
    "book multiplier -10": (STRESS, {"book.csv": HEADER + ROW.replace(",1,0.005,", ",-10,0.005,")}, [],
                            ["book", "row 1", "multiplier must be > 0", "-10"]),
    "book mmr -0.05": (STRESS, {"book.csv": HEADER + ROW.replace(",0.005,", ",-0.05,")}, [], ["mmr", "-0.05"]),
    "stablecoin priced at -1": (STRESS, {"market.yaml": yaml.safe_dump(changed(MARKET, stablecoins__USDT=-1.0))}, [],
                                ["stablecoins.USDT", "-1"]),
    "duplicated yaml key": ("job: price\nmc: {paths: 64}\nmc: {paths: 128}\n", {}, [],
                            ["duplicate key 'mc'", "line 3", "first at line 2"]),
    "empty book": (STRESS, {"book.csv": ""}, [], ["book book.csv", "empty"]),
    "book with a header and no rows": (STRESS, {"book.csv": HEADER}, [], ["book book.csv", "no positions"]),
    "binary book": (STRESS, {"book.csv": b"\x00\x01\x02PK\x03\x04" * 20}, [], ["book", "binary"]),
    "latin-1 book": (STRESS, {"book.csv": (HEADER + ROW.replace("P1", "Pé")).encode("latin-1")}, [], ["book", "not UTF-8"]),
    "binary config": (b"\x7fELF\x02\x01\x01\x00" * 8, {}, [], ["config", "binary"]),
    "latin-1 config": ("job: price  # réglé\n".encode("latin-1"), {}, [], ["config", "not UTF-8"]),
    "garch on constant prices": ({"job": "calibrate", "model": {"name": "gjr_garch"}, "returns": "flat.csv", "asset": "BTC"},
                                 {}, [], ["garch", "barely move"]),
    "baseline that does not fit the model": (changed(HEDGE, evaluate__baselines=["heston_delta_vega"]), {}, [],
                                             ["evaluate.baselines", "heston_delta_vega", "gbm"]),
    "training that diverges": (changed(HEDGE, train__learning_rate=1e12), {}, [],
                               ["train", "diverged", "train.learning_rate"]),
    "steps_per_year 1e12": (changed(PRICE, mc__steps_per_year=1e12), {}, [], ["mc.steps_per_year", "--max-hours"]),
    "stress --paths 1e12": (STRESS, {}, ["--paths", "1e12"], ["mc.paths", "memory", "TB"]),
    "market making dt 1e-9": (changed(MM, simulation__dt=1e-9), {}, [], ["simulation.dt", "memory", "1e+09 steps"]),
    "a 1 MB value": (changed(PRICE, model__name="x" * 1_000_000), {}, [], ["model.name", "chars]"]),
    "billion laughs": (billion_laughs(), {}, [], ["config", "expands to more than", "aliases"]),
    "unknown command-line value": (PRICE, {}, ["--paths", "many"], ["--paths", "many"]),
    # boundaries: the first value outside each range
    "book multiplier 0": (STRESS, {"book.csv": HEADER + ROW.replace(",1,0.005,", ",0,0.005,")}, [],
                          ["multiplier must be > 0", "0.0"]),
    "book mmr above 1": (STRESS, {"book.csv": HEADER + ROW.replace(",0.005,", ",1.5,")}, [], ["mmr", "(0, 1]"]),
    "stablecoin priced at 0": (STRESS, {"market.yaml": yaml.safe_dump(changed(MARKET, stablecoins__USDT=0.0))}, [],
                               ["stablecoins.USDT", "greater than 0"]),
    "rate of 600%": (changed(PRICE, market__rate=6.0), {}, [], ["market.rate", "6.0"]),
    "paths 1": (changed(PRICE, mc__paths=1), {}, [], ["mc.paths", "1"]),
    "block size not a power of two": (changed(STRESS, mc__block_size=1000), {}, [], ["mc.block_size", "power of two"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_input_is_one_line_exit_2_and_writes_nothing(case, tmp_path, capsys, monkeypatch):
    config, files, args, fragments = CASES[case]
    monkeypatch.chdir(tmp_path)
    defaults = {"book.csv": HEADER + ROW, "market.yaml": yaml.safe_dump(MARKET)}
    for name, text in {**defaults, **files}.items():
        (tmp_path / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    constant_history(tmp_path)
    body = yaml.safe_dump(config) if isinstance(config, dict) else config
    (tmp_path / "job.yaml").write_bytes(body if isinstance(body, bytes) else body.encode())
    before = sorted(p.name for p in tmp_path.iterdir())
    try:
        code = main(["run", "job.yaml", "--out", "out/deep", "--no-progress", *args])
    except SystemExit as exit_:  # command-line errors leave through argparse
        code = exit_.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, (code, err)
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert len(err[0]) <= 320, len(err[0])
    for fragment in fragments:
        assert fragment in err[0], (fragment, err[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no out/, no checkpoint, no temp


def test_a_large_run_that_fits_prints_its_estimate_and_a_small_one_does_not():
    from riskengine.budget import Estimate, check

    big = Estimate(memory_bytes=3e9, work={"path_steps": 5e10}, field="mc.paths", detail="1e+08 paths x 500 steps")
    line = check(big, max_hours=24, memory=64e9, speed=1.0)
    assert line.startswith("estimate: about 17 min and 3 GB of memory") and "1e+08 paths" in line
    assert check(Estimate(memory_bytes=1e6, work={"path_steps": 1e6}, field="mc.paths", detail="small"),
                 max_hours=24, memory=64e9, speed=1.0) is None
    with pytest.raises(Exception, match="over --max-hours 0.1"):
        check(big, max_hours=0.1, memory=64e9, speed=1.0)
