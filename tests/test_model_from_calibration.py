"""Fitted parameters flow from a calibrate job into the price and stress jobs (`model: {from: DIR}`)."""

from __future__ import annotations

import json

import pytest
import yaml

from riskengine.calibration import load_garch, write_calibrated_model
from riskengine.cli import main
from riskengine.config import ConfigError, validate
from riskengine.jobs import price

PARAMS = {"v0": 0.04, "kappa": 1.5, "theta": 0.05, "sigma": 0.6, "rho": -0.6}


def test_price_job_reads_calibrated_parameters(tmp_path):
    fitted = tmp_path / "calibration"
    fitted.mkdir()
    write_calibrated_model(fitted, name="heston", params=PARAMS)
    config = {
        "job": "price",
        "model": {"from": "calibration"},  # relative to the config's folder
        "market": {"spot": 100.0, "rate": 0.0},
        "instruments": [{"type": "european", "option": "call", "strike": 100.0, "maturity": 0.5}],
        "mc": {"paths": 4096, "steps_per_year": 12, "seed": 1, "dtype": "float64", "greeks": False},
    }
    path = tmp_path / "price.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == {"name": "heston", "params": PARAMS}
    row = summary["instruments"][0]
    assert abs(row["price"] - row["reference"]) < 4 * row["stderr"] + 0.01 * row["reference"]


def test_from_with_other_fields_or_missing_directory_is_refused(tmp_path):
    base = {"job": "price", "market": {"spot": 100.0},
            "instruments": [{"type": "european", "option": "call", "strike": 100.0, "maturity": 0.5}]}
    with pytest.raises(ConfigError, match=r"model.name: not allowed with model.from"):
        validate(price.Config, {**base, "model": {"from": str(tmp_path), "name": "gbm"}})
    with pytest.raises(ConfigError, match=r"model.from"):
        validate(price.Config, {**base, "model": {"from": str(tmp_path / "nowhere")}})


def test_a_garch_calibration_is_refused_where_a_continuous_model_is_needed(tmp_path):
    fitted = tmp_path / "garch"
    fitted.mkdir()
    (fitted / "params.yaml").write_text(yaml.safe_dump({"model": {
        "name": "gjr_garch", "distribution": "t", "asset": "BTC",
        "params": {"mu": 0.001, "omega": 1e-5, "alpha": 0.05, "gamma": 0.1, "beta": 0.85, "nu": 5.0},
        "standard_errors": {"mu": 0.0005}}}))
    base = {"job": "price", "market": {"spot": 100.0},
            "instruments": [{"type": "european", "option": "call", "strike": 100.0, "maturity": 0.5}]}
    with pytest.raises(ConfigError, match=r"model.from: .*gjr_garch calibration, a daily discrete-time model"):
        validate(price.Config, {**base, "model": {"from": str(fitted)}})
    garch = load_garch(fitted)
    assert garch.kind == "gjr" and garch.dist == "t" and garch.params["nu"] == 5.0
    assert garch.standard_errors == {"mu": 0.0005}
