"""Risk limits of a stress run and their breaches.

A limit is named ``var_<level>_<h>d`` or ``es_<level>_<h>d`` (the digits after ``0.`` of
the confidence level and the horizon in days: ``var_99_1d`` is the one-day 99% VaR,
``es_975_10d`` the ten-day 97.5% ES; a breach is a figure above the limit) or
``liquidation_distance_min`` (a breach is a cross account's common liquidation move, or an
isolated position's distance to its liquidation price, closer than the limit).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from riskengine.risk import level_key

__all__ = ["LIQUIDATION_DISTANCE", "breaches", "check_limit", "parse_limit"]

LIQUIDATION_DISTANCE = "liquidation_distance_min"
_PATTERN = re.compile(r"^(var|es)_(\d+)_(\d+)d$")


def parse_limit(name: str) -> tuple[Literal["var", "es"], float, int]:
    """``(measure, level, days)`` of a VaR or ES limit's name, e.g. ``var_99_1d -> ("var",
    0.99, 1)``; a ValueError for any other name."""
    match = _PATTERN.match(name)
    if not match:
        raise ValueError(f"limits.{name}: unknown limit; expected var_<level>_<h>d, es_<level>_<h>d or {LIQUIDATION_DISTANCE}")
    measure, digits, days = match.groups()
    return measure, float("0." + digits), int(days)  # type: ignore[return-value]


def check_limit(name: str, *, var_levels: Sequence[float], es_levels: Sequence[float],
                horizons_days: Sequence[int]) -> None:
    """A ValueError unless ``name`` is a limit on a figure that is computed (a VaR or ES at
    one of the levels over one of the horizons) or ``liquidation_distance_min``."""
    if name == LIQUIDATION_DISTANCE:
        return
    measure, level, days = parse_limit(name)
    if level not in (var_levels if measure == "var" else es_levels) or days not in horizons_days:
        raise ValueError(f"limits.{name}: no {measure} at level {level:g} over {days}d is computed; "
                         f"add it to risk.{measure}_levels and horizons_days")


def breaches(limits: dict[str, float], summary: dict) -> list[dict]:
    """The breached limits, each ``{"limit", "where", "value", "threshold"}``: VaR and ES
    from ``summary["var"|"es"][<h>d][<level>]`` ("where": ``book``), liquidation distances
    from ``summary["margin"]`` (per venue) and ``summary["isolated"]`` (per position)."""
    found = []
    for key, limit in limits.items():
        if key == LIQUIDATION_DISTANCE:
            for venue, acc in summary["margin"].items():
                closest = min(abs(acc["liquidation_move_down"]), abs(acc["liquidation_move_up"]))
                if closest < limit:
                    found.append({"limit": key, "where": venue, "value": closest, "threshold": limit})
            for pos in summary["isolated"]:
                if abs(pos["distance"]) < limit:
                    found.append({"limit": key, "where": pos["id"], "value": abs(pos["distance"]), "threshold": limit})
            continue
        measure, level, days = parse_limit(key)
        figures = summary[measure].get(f"{days}d", {})
        if figures[level_key(level)] > limit:
            found.append({"limit": key, "where": "book", "value": figures[level_key(level)], "threshold": limit})
    return found
