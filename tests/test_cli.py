"""The command-line contract: outputs of `riskengine run`, overrides, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from riskengine.cli import main

GOOD = {
    "job": "price",
    "model": {"name": "gbm", "params": {"sigma": 0.2}},
    "market": {"spot": 100.0, "rate": 0.05, "dividend": 0.0},
    "instruments": [
        {"type": "european", "option": "call", "strike": 100.0, "maturity": 1.0},
        {"type": "european", "option": "put", "strike": 90.0, "maturity": 0.5},
    ],
    "mc": {"paths": 4096, "steps_per_year": 12, "seed": 3, "dtype": "float64"},
}


def write_config(tmp_path: Path, data) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def test_price_job_writes_summary_parquet_and_report(tmp_path):
    out = tmp_path / "out"
    assert main(["run", str(write_config(tmp_path, GOOD)), "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert isinstance(summary["seconds"], float) and summary["seconds"] > 0
    rows = summary["instruments"]
    assert [r["strike"] for r in rows] == [100.0, 90.0]  # the order of the config
    for row in rows:
        for key in ("price", "stderr", "reference", "delta", "gamma", "vega"):
            assert isinstance(row[key], float), key
    # Black–Scholes call, S=K=100, r=5%, sigma=20%, T=1: 10.4505835722 (closed form).
    assert abs(rows[0]["reference"] - 10.4505835722) < 1e-8
    assert abs(rows[0]["price"] - 10.4505835722) < 4 * rows[0]["stderr"]
    table = pd.read_parquet(out / "prices.parquet")
    assert list(table["option"]) == ["call", "put"]
    html = (out / "report.html").read_text()
    assert "<img" in html and "reference" in html
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dirs left


def test_paths_and_seed_override_the_config(tmp_path):
    out = tmp_path / "out"
    args = ["run", str(write_config(tmp_path, GOOD)), "--out", str(out), "--paths", "2048", "--seed", "11"]
    assert main(args + ["--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["paths"] == 2048 and summary["seed"] == 11


def bad(**changes):
    data = json.loads(json.dumps(GOOD))
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = data
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        if value is DELETE:
            del node[leaf]
        else:
            node[leaf] = value
    return data


DELETE = object()

BAD_INPUTS = {
    "unknown model": (bad(model__name="sabr"), ["model.name", "sabr"]),
    "unknown model field": (bad(model__params={"sigma": 0.2, "nu": 1.0}), ["model.params.nu"]),
    "unknown top-level field": (bad(montecarlo={"paths": 3}), ["montecarlo", "unknown"]),
    "negative vol": (bad(model__params={"sigma": -0.2}), ["model.params.sigma", "-0.2"]),
    "rho above one": (
        bad(model={"name": "heston", "params": {"v0": 0.04, "kappa": 1.0, "theta": 0.04, "sigma": 0.5, "rho": 1.5}}),
        ["model.params.rho", "1.5"],
    ),
    "missing model param": (
        bad(model={"name": "heston", "params": {"v0": 0.04, "kappa": 1.0, "theta": 0.04, "sigma": 0.5}}),
        ["model.params.rho", "missing"],
    ),
    "zero maturity": (bad(instruments__0__maturity=0.0), ["instruments.0.maturity", "0.0"]),
    "negative maturity": (bad(instruments__1__maturity=-1.0), ["instruments.1.maturity", "-1.0"]),
    "missing market": (bad(market=DELETE), ["market", "missing"]),
    "missing strike": (bad(instruments__0__strike=DELETE), ["instruments.0.strike", "missing"]),
    "bad option": (bad(instruments__0__option="straddle"), ["instruments.0.option", "straddle"]),
    "bad dtype": (bad(mc__dtype="float16"), ["mc.dtype", "float16"]),
    "too few paths": (bad(mc__paths=1), ["mc.paths", "1"]),
    "unknown job": (bad(job="teleport"), ["job", "teleport"]),
    "unreadable yaml": ("job: price\nmodel: {name: gbm\n", ["not valid YAML", "line"]),
    "not a mapping": ("- just\n- a list\n", ["mapping"]),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, tmp_path, capsys):
    data, expected = BAD_INPUTS[case]
    out = tmp_path / "out"
    code = main(["run", str(write_config(tmp_path, data)), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in expected:
        assert fragment in lines[0], (fragment, lines[0])
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.yaml"]


def test_missing_config_file(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: config: cannot read") and "nope.yaml" in err


def test_console_script_runs_as_a_subprocess(tmp_path):
    """The installed `riskengine` entry point (as users call it), end to end."""
    exe = Path(sys.executable).with_name("riskengine")
    out = tmp_path / "out"
    config = write_config(tmp_path, bad(mc__dtype="float32"))
    done = subprocess.run([str(exe), "run", str(config), "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "summary.json" in done.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dtype"] == "float32"
    assert abs(summary["instruments"][0]["price"] - 10.4505835722) < 4 * summary["instruments"][0]["stderr"] + 1e-3


def test_console_script_exit_code_and_message_on_bad_input(tmp_path):
    """The entry point leaves with the job's exit code and its one-line error flushed."""
    exe = Path(sys.executable).with_name("riskengine")
    done = subprocess.run([str(exe), "run", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: config: cannot read")
