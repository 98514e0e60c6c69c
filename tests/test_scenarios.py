"""The bundled scenario files validate, and composition follows its stated rules."""

from __future__ import annotations

import pytest

from riskengine.config import ConfigError
from riskengine.scenarios import SCENARIO_DIR, compose, load_scenario, load_scenarios


def test_every_bundled_scenario_loads():
    scenarios = load_scenarios("all")
    names = {s.name for s in scenarios}
    # The episodes the stress job must cover, and the hypothetical families.
    for required in ("covid_crash_2020", "china_mining_ban_2021", "luna_collapse_2022", "ftx_collapse_2022",
                     "yen_carry_unwind_2024", "vol_x2", "correlations_to_one", "funding_spike",
                     "venue_default", "stablecoin_depeg", "spot_down_20", "spot_up_20"):
        assert required in names
    for s in scenarios:
        assert s.description.strip() and s.source.strip()


def test_march_2020_figures():
    s = load_scenario(SCENARIO_DIR / "covid_crash_2020.yaml")
    assert s.spot_move("BTC") == -0.388 and s.spot_move("ETH") == -0.433
    # one-month ATM IV about 184% from a pre-crash level near 60%: +1.24 vol points at 30 days
    assert s.vol_shock("BTC").add_by_expiry_days[30] == pytest.approx(1.24)


def test_composition_multiplies_moves_and_accumulates_defaults():
    down = load_scenario(SCENARIO_DIR / "spot_down_20.yaml")
    up = load_scenario(SCENARIO_DIR / "spot_up_10.yaml")
    default = load_scenario(SCENARIO_DIR / "venue_default.yaml")
    doubled = load_scenario(SCENARIO_DIR / "vol_x2.yaml")
    both = compose([down, up, default, doubled])
    # 0.8 * 1.1 * 0.85 - 1
    assert both.spot_move("BTC") == pytest.approx(0.8 * 1.1 * 0.85 - 1)
    assert both.shocks.venue_default == ["binance"]
    assert both.vol_shock("ETH").scale == 2.0


def test_vol_addition_then_scale_composes_as_affine_maps():
    crash = load_scenario(SCENARIO_DIR / "covid_crash_2020.yaml")
    doubled = load_scenario(SCENARIO_DIR / "vol_x2.yaml")
    shock = compose([crash, doubled]).vol_shock("BTC")
    # (v + 1.24) * 2 = 2 v + 2.48
    assert shock.scale == 2.0 and shock.add_by_expiry_days[30] == pytest.approx(2.48)


def test_bad_scenario_names_the_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nkind: hypothetical\ndescription: x\nsource: y\nshocks: {spot: {BTC: -1.5}}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: shocks.spot.*-1.5"):
        load_scenario(path)
    with pytest.raises(ConfigError, match="no scenario 'nope'"):
        load_scenarios(["nope"])
