"""Every ready config in configs/ validates and runs (with few paths, to stay fast)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from riskengine.cli import main

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))


def test_there_are_configs():
    assert len(CONFIGS) >= 2


# The full real-data exposure run (4 years, monthly retraining, ~45-90 s) runs in `make test-slow`;
# `make test` keeps the suite under 15 minutes on a machine with an empty compilation cache.
SLOW = {"exposure_real"}


@pytest.mark.parametrize("config", [pytest.param(c, marks=pytest.mark.slow) if c.stem in SLOW else c for c in CONFIGS],
                         ids=[c.stem for c in CONFIGS])
def test_config_runs(config, tmp_path):
    out = tmp_path / config.stem
    assert main(["run", str(config), "--out", str(out), "--paths", "2048", "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["paths"] == 2048
    assert (out / "report.html").exists()
