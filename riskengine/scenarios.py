"""Named stress scenarios: the YAML files in ``scenarios/``, validated, and their composition.

See ``scenarios/README.md`` for the schema. A scenario is data; applying it to a market
snapshot and a book is the stress job's work.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from riskengine.config import ConfigError, Strict, load_yaml, validate

SCENARIO_DIR = Path(__file__).resolve().parents[1] / "scenarios"


class VolShock(Strict):
    """Implied-vol shock of one underlying: a multiplier and/or vol points by expiry."""

    scale: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    add_by_expiry_days: dict[float, float] = Field(default_factory=dict)

    @field_validator("add_by_expiry_days")
    @classmethod
    def _positive_expiries(cls, value: dict[float, float]) -> dict[float, float]:
        for days, points in value.items():
            if not 0 < days < 36500:
                raise ValueError(f"expiry days must be in (0, 36500), got {days}")
            if not abs(points) <= 5.0:
                raise ValueError(f"vol shock at {days:g} days must be within ±5 (500 vol points), got {points}")
        return dict(sorted(value.items()))


class CorrelationShock(Strict):
    all: float = Field(ge=-1, le=1)


class Shocks(Strict):
    spot: dict[str, float] = Field(default_factory=dict)
    vol: dict[str, VolShock] = Field(default_factory=dict)
    funding_premium_8h: dict[str, float] = Field(default_factory=dict)
    correlation: CorrelationShock | None = None
    venue_default: list[str] = Field(default_factory=list)
    stablecoin: dict[str, float] = Field(default_factory=dict)

    @field_validator("spot", "stablecoin")
    @classmethod
    def _relative_moves(cls, value: dict[str, float]) -> dict[str, float]:
        for name, move in value.items():
            if not -1.0 < move < 100.0:
                raise ValueError(f"relative move of {name} must be in (-1, 100) (a price cannot go below 0), got {move}")
        return value

    @field_validator("funding_premium_8h")
    @classmethod
    def _premium(cls, value: dict[str, float]) -> dict[str, float]:
        for name, premium in value.items():
            if not abs(premium) <= 0.05:
                raise ValueError(f"funding premium of {name} must be within ±0.05 per 8 h, got {premium}")
        return value


class Scenario(Strict):
    name: str
    kind: Literal["historical", "hypothetical"]
    date: dt.date | None = None
    description: str
    source: str
    shocks: Shocks

    @model_validator(mode="after")
    def _historical_has_date(self) -> Scenario:
        if self.kind == "historical" and self.date is None:
            raise ValueError("a historical scenario needs a date")
        return self

    def spot_move(self, underlying: str) -> float:
        """Relative spot move of ``underlying`` (0 if the scenario does not move it)."""
        return self.shocks.spot.get(underlying, self.shocks.spot.get("*", 0.0))

    def vol_shock(self, underlying: str) -> VolShock | None:
        return self.shocks.vol.get(underlying, self.shocks.vol.get("*"))


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    data = load_yaml(path, what="file")
    try:
        scenario = validate(Scenario, data)
    except ConfigError as err:
        raise ConfigError(f"scenario {path.name}: {err}") from None
    if scenario.name != path.stem:
        raise ConfigError(f"scenario {path.name}: name {scenario.name!r} must equal the file name {path.stem!r}")
    return scenario


def load_scenarios(selection: str | Sequence[str] = "all", *, directory: Path = SCENARIO_DIR) -> list[Scenario]:
    """``"all"`` (every file in ``directory``) or a list of names or paths; an entry
    ``"a+b"`` is the composition of scenarios ``a`` and ``b`` (see :func:`compose`)."""
    if selection == "all":
        return [load_scenario(p) for p in sorted(directory.glob("*.yaml"))]
    scenarios = []
    for item in selection:
        parts = [_find(part, directory) for part in item.split("+")]
        loaded = [load_scenario(p) for p in parts]
        scenarios.append(loaded[0] if len(loaded) == 1 else compose(loaded, name=item))
    return scenarios


def _find(item: str, directory: Path) -> Path:
    path = Path(item)
    if path.suffix != ".yaml":
        path = directory / f"{item}.yaml"
    if not path.exists():
        raise ConfigError(f"scenarios: no scenario {item!r} (looked for {path})")
    return path


def compose(scenarios: Sequence[Scenario], *, name: str | None = None) -> Scenario:
    """One scenario applying ``scenarios`` in order: relative spot and stablecoin moves
    multiply, vol scales multiply and vol additions add, funding premiums and correlation
    take the last one given, venue defaults accumulate."""
    if not scenarios:
        raise ValueError("compose: at least one scenario is needed")
    spot: dict[str, float] = {}
    stable: dict[str, float] = {}
    vol: dict[str, VolShock] = {}
    funding: dict[str, float] = {}
    correlation = None
    venues: list[str] = []

    def chain(acc: dict[str, float], moves: dict[str, float]) -> None:
        keys = set(acc) | set(moves)
        for key in keys:
            before = acc.get(key, acc.get("*", 0.0))
            after = moves.get(key, moves.get("*", 0.0))
            acc[key] = (1 + before) * (1 + after) - 1

    for s in scenarios:
        chain(spot, s.shocks.spot)
        chain(stable, s.shocks.stablecoin)
        for key in set(vol) | set(s.shocks.vol):
            a = vol.get(key, vol.get("*", VolShock()))
            b = s.shocks.vol.get(key, s.shocks.vol.get("*", VolShock()))
            days = sorted(set(a.add_by_expiry_days) | set(b.add_by_expiry_days))
            vol[key] = VolShock(
                scale=a.scale * b.scale,
                add_by_expiry_days={d: a.add_by_expiry_days.get(d, 0.0) * b.scale + b.add_by_expiry_days.get(d, 0.0) for d in days},
            )
        funding.update(s.shocks.funding_premium_8h)
        correlation = s.shocks.correlation or correlation
        venues.extend(v for v in s.shocks.venue_default if v not in venues)
    return Scenario(
        name=name or "+".join(s.name for s in scenarios),
        kind="hypothetical",
        description="Composition of: " + "; ".join(s.name for s in scenarios),
        source="composed",
        shocks=Shocks(spot=spot, vol=vol, funding_premium_8h=funding, correlation=correlation,
                      venue_default=venues, stablecoin=stable),
    )
