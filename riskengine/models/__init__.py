"""Simulator models: one per file, all with the interface of :class:`Model`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from riskengine.models.base import Model
from riskengine.models.bates import Bates
from riskengine.models.correlated import CorrelatedAssets, correlation_factor
from riskengine.models.gbm import GBM
from riskengine.models.heston import Heston
from riskengine.models.merton import Merton
from riskengine.models.svcj import SVCJ

MODELS: dict[str, type[Model]] = {
    "gbm": GBM,
    "heston": Heston,
    "merton": Merton,
    "bates": Bates,
    "svcj": SVCJ,
}


def parameter_names(name: str) -> list[str]:
    """The numeric parameters of model ``name`` (the fields a config's ``params`` holds)."""
    return [f.name for f in dataclasses.fields(MODELS[name]) if f.name != "scheme"]


def build_model(name: str, params: Mapping[str, Any], *, scheme: str | None = None) -> Model:
    """Build a model from its registry name and parameters, with field-naming errors."""
    if name not in MODELS:
        raise ValueError(f"model.name: unknown model {name!r}; expected one of {sorted(MODELS)}")
    expected = parameter_names(name)
    unknown = sorted(set(params) - set(expected))
    if unknown:
        raise ValueError(f"model.params.{unknown[0]}: unknown parameter for model '{name}'; expected {expected}")
    missing = [p for p in expected if p not in params]
    if missing:
        raise ValueError(f"model.params.{missing[0]}: missing parameter for model '{name}'; expected {expected}")
    values = {}
    for key, value in params.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"model.params.{key}: must be a number, got {value!r}")
        values[key] = float(value)
    kwargs = dict(values)
    if scheme is not None and any(f.name == "scheme" for f in dataclasses.fields(MODELS[name])):
        kwargs["scheme"] = scheme
    return MODELS[name](**kwargs)


__all__ = [
    "MODELS",
    "Bates",
    "CorrelatedAssets",
    "GBM",
    "Heston",
    "Merton",
    "Model",
    "SVCJ",
    "build_model",
    "correlation_factor",
    "parameter_names",
]
