"""Process-count invariance: two processes on 127.0.0.1 joined by ``jax.distributed``
(CPU collectives through gloo) give bitwise the results of one process, and only
process 0 writes outputs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    env = dict(os.environ)
    env["JAX_PLATFORMS"] = "cpu"
    env.pop("XLA_FLAGS", None)
    return env


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "riskengine.cli", "run", *args, "--no-progress"]


def _run_two(command: list[str]) -> None:
    """Run ``command + --coordinator ... --process-id i`` as two processes on 127.0.0.1."""
    port = _free_port()
    procs = [
        subprocess.Popen(
            [*command, "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=ROOT,
        )
        for i in range(2)
    ]
    outputs = []
    for p in procs:
        try:
            outputs.append(p.communicate(timeout=900))
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
    for i, (p, (_, stderr)) in enumerate(zip(procs, outputs, strict=True)):
        assert p.returncode == 0, f"process {i}: {stderr[-3000:]}"


def _run_one(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]


def test_two_processes_equal_one_process_stress(tmp_path):
    """The stress job's Monte Carlo (full revaluation of the bundled book, float64; GBM per
    underlying, cheap to compile: tests/test_devices.py runs SVCJ): per-path P&L and Euler
    contributions. 5 chunks of 1024 paths (the last one partial): process 1 idles in the
    last round."""
    mc = json.dumps({"paths": 4500, "seed": 3, "dtype": "float64", "chunk_paths": 1024})
    model = json.dumps({"name": "gbm", "params": {"sigma": 0.7}})
    child = [sys.executable, str(ROOT / "tests" / "scale_child.py")]
    _run_two([*child, str(tmp_path / "two.npz"), mc, "--model", model])
    _run_one([*child, str(tmp_path / "one.npz"), mc, "--model", model])
    one, two = np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")
    assert one["pnl"].shape == (4500, 2) and np.isfinite(one["pnl"]).all() and one["pnl"].std() > 0
    assert np.array_equal(one["pnl"], two["pnl"])
    assert np.array_equal(one["contributions"], two["contributions"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.npz", "two.npz"]  # process 1 wrote nothing


def test_two_processes_equal_one_process_price(tmp_path):
    """The price job (``monte_carlo``): GBM prices equal bitwise, and agree with
    Black-Scholes within 4 standard errors (an independent check of the gathered sums)."""
    from scipy.stats import norm

    config = yaml.safe_load((ROOT / "configs" / "price_gbm.yaml").read_text())
    config["mc"] = {**config.get("mc", {}), "paths": 20000, "seed": 9, "dtype": "float64", "chunk_paths": 4096,
                    "greeks": False}
    path = tmp_path / "price.yaml"
    path.write_text(yaml.safe_dump(config))
    _run_two(_cli(str(path), "--out", str(tmp_path / "two")))
    _run_one(_cli(str(path), "--out", str(tmp_path / "one")))
    # only process 0 wrote an output; both processes removed their checkpoints
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "price.yaml", "two"]
    r1 = json.loads((tmp_path / "one" / "summary.json").read_text())["instruments"]
    r2 = json.loads((tmp_path / "two" / "summary.json").read_text())["instruments"]
    assert [(r["price"], r["stderr"]) for r in r1] == [(r["price"], r["stderr"]) for r in r2]
    sigma = float(config["model"]["params"]["sigma"])
    m = config["market"]
    for r in r1:
        s, k, t = m["spot"], r["strike"], r["maturity"]
        q = m.get("dividend", 0.0)
        d1 = (np.log(s / k) + (m["rate"] - q + 0.5 * sigma**2) * t) / (sigma * np.sqrt(t))
        d2 = d1 - sigma * np.sqrt(t)
        call = s * np.exp(-q * t) * norm.cdf(d1) - k * np.exp(-m["rate"] * t) * norm.cdf(d2)
        ref = call if r["option"] == "call" else call - s * np.exp(-q * t) + k * np.exp(-m["rate"] * t)
        assert abs(r["price"] - ref) < 4 * r["stderr"], (r, ref)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--coordinator", "127.0.0.1:1234", "--num-processes", "2"], "give all three or none"),
        (["--coordinator", "127.0.0.1:1234", "--num-processes", "2", "--process-id", "2"], "--process-id: must be in [0, 2)"),
        (["--coordinator", "localhost", "--num-processes", "2", "--process-id", "0"], "--coordinator: expected HOST:PORT"),
    ],
)
def test_bad_process_arguments_exit_2(tmp_path, capsys, args, message):
    from riskengine.cli import main

    out = tmp_path / "out"
    code = main(["run", str(ROOT / "configs" / "price_gbm.yaml"), "--out", str(out), "--no-progress", *args])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1
    assert not out.exists() and not (tmp_path / "out.checkpoint").exists()
