"""The ``exposure`` job: planted signal recovered, no look-ahead (truncated data give bitwise the
same positions), bad input refused with one line and exit code 2."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from riskengine.allocation.synthetic import planted_signal, theoretical_sharpe
from riskengine.cli import main
from riskengine.config import validate
from riskengine.jobs import execute, exposure

IC = 0.08


def _write(tmp: Path, *, days: int, seed: int, cut: pd.Timestamp | None = None) -> dict:
    closes, factors = planted_signal(days=days, ic=IC, seed=seed)
    if cut is not None:
        closes = closes.loc[:cut]
        factors = factors[factors["date"] <= cut]
    tmp.mkdir(parents=True, exist_ok=True)
    closes.to_csv(tmp / "prices.csv")
    factors.to_csv(tmp / "factors.csv", index=False)
    return {
        "job": "exposure",
        "prices": str(tmp / "prices.csv"),
        "assets": ["AAA", "BBB"],
        "factors": [{"name": n, "path": str(tmp / "factors.csv"), "column": n, "lag_days": 1}
                    for n in ("signal", "noise_1", "noise_2", "noise_3")],
        "seed": 1,
    }


def _run(data: dict, out: Path) -> dict:
    config = validate(exposure.Config, data)
    out.mkdir(parents=True, exist_ok=True)
    return execute(exposure.ExposureJob(), config, out).summary


def test_planted_signal_is_recovered(tmp_path):
    data = _write(tmp_path, days=1830, seed=11)
    data.update({
        "models": ["ridge", "gbt"],
        "price_factors": {"momentum_days": [], "drawdown_days": 0, "vol_factor": False},  # iid noise only
        "ridge": {"intercept": False},  # the synthetic market has no drift: the correctly specified model
        "walk_forward": {"start": "2020-01-01", "window_days": 700, "retrain_every_days": 90},
        "costs": {"fee_bp": 0},
        "limits": {"max_leverage": 2.0, "max_weight": 1.0},
        "baselines": ["equal_weight"],
        "risk": {"paths": 500},
        "metrics": {"bootstrap": 400},
    })
    s = _run(data, tmp_path / "out")
    n = 2 * s["period"]["days"]
    se = 1.0 / math.sqrt(n)
    for m in ("ridge", "gbt"):
        imp = s["importance"][m]
        assert max(imp, key=imp.get) == "signal", (m, imp)
        # the planted factor's contribution has the planted IC (a positive multiple of it)
        assert abs(s["ic"][m]["signal"] - IC) < 3 * se, (m, s["ic"][m]["signal"])
        assert s["ic"][m]["forecast"] > IC - 4 * se
    assert abs(s["ic"]["univariate"]["signal"] - IC) < 3 * se
    assert all(abs(s["ic"]["univariate"][f]) < 3 * se for f in ("noise_1", "noise_2", "noise_3"))
    lo, hi = s["strategies"]["ridge"]["sharpe_ci"]
    assert lo <= theoretical_sharpe(ic=IC, assets=2) <= hi
    assert s["strategies"]["ridge"]["sharpe"] > 0


def test_truncated_data_give_bitwise_the_same_positions(tmp_path):
    """Positions up to t from data truncated after t (prices and factor files) equal the full
    run's, bitwise, for a cut inside a retrain period and one on a retrain date."""
    days = 700
    extra = {
        "models": ["ridge", "gbt", "policy"],
        "price_factors": {"momentum_days": [7, 30], "drawdown_days": 30, "vol_days": 20},
        "walk_forward": {"start": "2019-03-01", "window_days": 300, "retrain_every_days": 30,
                         "cv": {"folds": 3}},
        "policy": {"steps": 30, "hidden": 8},
        "gbt": {"grid": [[4, 20], [8, 10]]},
        "costs": {"fee_bp": 5},
        "limits": {"max_leverage": 1.0, "max_weight": 0.6, "max_turnover": 0.5, "cvar_95": 0.03},
        "risk": {"paths": 200},
        "metrics": {"bootstrap": 100},
    }
    _run(_write(tmp_path / "full", days=days, seed=5) | extra, tmp_path / "out_full")
    full = pd.read_parquet(tmp_path / "out_full" / "positions.parquet")
    start = pd.Timestamp("2019-03-01")
    for cut in (start + pd.Timedelta(days=75), start + pd.Timedelta(days=120)):
        short = _write(tmp_path / f"short{cut.date()}", days=days, seed=5, cut=cut) | extra
        _run(short, tmp_path / f"out_{cut.date()}")
        b = pd.read_parquet(tmp_path / f"out_{cut.date()}" / "positions.parquet")
        assert b["date"].max() == cut
        a = full[full["date"] <= cut].reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b, check_exact=True)
        assert not full[full["date"] > cut].empty
    for s in ("ridge", "gbt", "policy", "momentum"):  # every strategy trades
        assert full[full["strategy"] == s]["exposure"].abs().sum() > 0


def _cli(tmp_path: Path, data: dict) -> tuple[int, str]:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    return main(["run", str(path), "--out", str(tmp_path / "out"), "--no-progress"]), ""


@pytest.mark.parametrize("change, field", [
    ("nodate", "factors.0.path"),
    ("dupdate", "factors.0.path"),
    ("lag", "factors.0.lag_days"),
    ("window", "walk_forward.window_days"),
    ("model", "models"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, change, field):
    data = _write(tmp_path, days=400, seed=2)
    data.update({"models": ["ridge"], "walk_forward": {"start": "2018-10-01", "window_days": 200}})
    if change == "nodate":
        (tmp_path / "nodate.csv").write_text("value\n1\n2\n")
        data["factors"][0]["path"] = str(tmp_path / "nodate.csv")
        data["factors"][0]["column"] = "value"
    elif change == "dupdate":
        (tmp_path / "dup.csv").write_text("date,signal\n2018-01-01,1\n2018-01-02,2\n2018-01-02,3\n")
        data["factors"][0]["path"] = str(tmp_path / "dup.csv")
    elif change == "lag":
        data["factors"][0]["lag_days"] = -1
    elif change == "window":
        data["walk_forward"]["window_days"] = 400
    elif change == "model":
        data["models"] = ["ridge", "xgboost"]
    code, _ = _cli(tmp_path, data)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith(f"error: {field}:"), err
    assert "\n" not in err
    assert not (tmp_path / "out").exists()


def test_cli_writes_the_contract(tmp_path):
    data = _write(tmp_path, days=500, seed=4)
    data.update({"models": ["ridge"], "walk_forward": {"start": "2018-12-01", "window_days": 300,
                                                      "retrain_every_days": 60},
                 "metrics": {"bootstrap": 100}})
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["run", str(path), "--out", str(tmp_path / "o"), "--paths", "256", "--no-progress"]) == 0
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["paths"] == 256
    keys = {"annual_return", "annual_vol", "sharpe", "sharpe_ci", "sortino", "max_drawdown", "cvar_95",
            "turnover", "costs", "deflated_sharpe", "deflated_sharpe_p"}
    for name in ("ridge", "buy_and_hold", "vol_target", "equal_weight", "momentum"):
        assert keys <= set(s["strategies"][name])
    assert set(s["ic"]["ridge"]) >= {"signal", "noise_1"} and "signal" in s["importance"]["ridge"]
    assert {"99", "975"} <= set(s["var_backtest"]["ridge"])
    pos = pd.read_parquet(tmp_path / "o" / "positions.parquet")
    assert list(pos.columns) == ["date", "strategy", "asset", "exposure"]
    assert (tmp_path / "o" / "pnl.parquet").exists() and (tmp_path / "o" / "report.html").exists()
    # buy and hold trades once; equal weight holds 1/2 of each asset
    eq = pos[pos["strategy"] == "equal_weight"]
    np.testing.assert_allclose(eq["exposure"], 0.5)
    assert s["strategies"]["buy_and_hold"]["turnover"] * s["period"]["days"] / 365 == pytest.approx(1.0)


def test_missing_inputs_are_skipped_only_when_asked(tmp_path, capsys):
    data = _write(tmp_path, days=400, seed=2)
    data.update({"models": ["ridge"], "walk_forward": {"start": "2018-10-01", "window_days": 200}})
    data["factors"][0]["path"] = str(tmp_path / "absent.csv")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["run", str(path), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    assert capsys.readouterr().err.startswith("error: factors.0.path: file not found")
    path.write_text(yaml.safe_dump(data | {"if_missing": "skip"}))
    assert main(["run", str(path), "--out", str(tmp_path / "o"), "--paths", "300", "--no-progress"]) == 0
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["skipped"].startswith("factors.0.path:") and s["paths"] == 300
