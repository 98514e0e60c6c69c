"""Every ready config in configs/ validates and runs (with few paths, to stay fast)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from riskengine.cli import main

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))


def test_there_are_configs():
    assert len(CONFIGS) >= 2


# The full real-data exposure run (4 years, monthly retraining, ~45-90 s) runs in `make test-slow`;
# `make test` keeps the suite under 15 minutes on a machine with an empty compilation cache.
SLOW = {"exposure_real"}
# Hedge configs train for hundreds of epochs (25-90 s each on 2 cores, 4 minutes for all): `make test`
# runs each as shipped but for its first TRIMMED_EPOCHS epochs; `make test-slow` runs every epoch.
TRIMMED_EPOCHS = 4


def _job(config: Path) -> str:
    return yaml.safe_load(config.read_text())["job"]


def _run(config: Path, out: Path) -> dict:
    assert main(["run", str(config), "--out", str(out), "--paths", "2048", "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["paths"] == 2048
    assert (out / "report.html").exists()
    return summary


@pytest.mark.parametrize("config", [pytest.param(c, marks=pytest.mark.slow) if c.stem in SLOW else c for c in CONFIGS],
                         ids=[c.stem for c in CONFIGS])
def test_config_runs(config, tmp_path):
    data = yaml.safe_load(config.read_text())
    if data["job"] != "hedge":
        _run(config, tmp_path / config.stem)
        return
    # the hedge configs name no file, so a copy with fewer epochs runs from anywhere
    assert data["train"]["epochs"] > TRIMMED_EPOCHS
    data["train"]["epochs"] = TRIMMED_EPOCHS
    trimmed = tmp_path / config.name
    trimmed.write_text(yaml.safe_dump(data))
    summary = _run(trimmed, tmp_path / config.stem)
    assert len(summary["loss_history"]) == TRIMMED_EPOCHS


HEDGE_CONFIGS = [c for c in CONFIGS if _job(c) == "hedge"]


@pytest.mark.slow
@pytest.mark.parametrize("config", HEDGE_CONFIGS, ids=[c.stem for c in HEDGE_CONFIGS])
def test_hedge_config_runs_every_epoch(config, tmp_path):
    summary = _run(config, tmp_path / config.stem)
    assert len(summary["loss_history"]) == yaml.safe_load(config.read_text())["train"]["epochs"]
