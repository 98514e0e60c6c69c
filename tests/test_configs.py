"""Every ready config in configs/ validates and runs (with few paths, to stay fast)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from riskengine.cli import main

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))


def test_there_are_configs():
    assert len(CONFIGS) >= 2


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_config_runs(config, tmp_path):
    out = tmp_path / config.stem
    assert main(["run", str(config), "--out", str(out), "--paths", "2048", "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["paths"] == 2048
    assert (out / "report.html").exists()
