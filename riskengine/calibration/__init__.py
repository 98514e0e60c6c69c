"""Model calibration: Heston/Bates to option surfaces, raw SVI per expiry, GARCH/GJR by
maximum likelihood.

- :mod:`riskengine.calibration.surface`: surface CSV loading, validation, model-free
  static-arbitrage checks;
- :mod:`riskengine.calibration.heston`: Heston and Bates by Levenberg–Marquardt
  (``optimistix``) on the JAX characteristic-function pricer;
- :mod:`riskengine.calibration.svi`: raw SVI per expiry, butterfly (``g(k) >= 0``) and
  calendar checks;
- :mod:`riskengine.calibration.garch`: GARCH(1,1)/GJR-GARCH, normal or Student-t, with
  standard errors, and a simulator.

The ``calibrate`` job writes ``params.yaml`` (``{model: {name, params}}``) into its output
directory; :func:`load_calibrated_model` reads it back for ``model: {from: DIR}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from riskengine.calibration.garch import GarchResult, fit_garch, load_returns, simulate_garch
from riskengine.calibration.heston import (
    DEFAULT_BOUNDS,
    MODEL_PARAMETERS,
    CalibrationResult,
    calibrate,
    calibrate_bates,
    calibrate_heston,
    model_prices,
    model_vols,
    surface_objective,
)
from riskengine.calibration.surface import (
    Surface,
    check_static_arbitrage,
    load_surface,
    static_arbitrage_violations,
)
from riskengine.calibration.svi import (
    ArbitrageWarning,
    SviFit,
    SviSlice,
    fit_svi,
    fit_svi_slice,
    svi_density_g,
    svi_total_variance,
)
from riskengine.config import ConfigError

PARAMS_FILE = "params.yaml"

__all__ = [
    "DEFAULT_BOUNDS",
    "MODEL_PARAMETERS",
    "PARAMS_FILE",
    "ArbitrageWarning",
    "CalibrationResult",
    "GarchResult",
    "Surface",
    "SviFit",
    "SviSlice",
    "calibrate",
    "calibrate_bates",
    "calibrate_heston",
    "check_static_arbitrage",
    "fit_garch",
    "fit_svi",
    "fit_svi_slice",
    "load_calibrated_model",
    "load_returns",
    "load_surface",
    "model_prices",
    "model_vols",
    "simulate_garch",
    "static_arbitrage_violations",
    "surface_objective",
    "svi_density_g",
    "svi_total_variance",
    "write_calibrated_model",
]


def write_calibrated_model(directory: str | Path, name: str, params: dict[str, float], *,
                           comment: str | None = None) -> Path:
    """Write ``DIR/params.yaml`` as ``{model: {name: NAME, params: {...}}}``."""
    path = Path(directory) / PARAMS_FILE
    header = "".join(f"# {line}\n" for line in (comment or "").splitlines())
    body = yaml.safe_dump({"model": {"name": name, "params": {k: float(v) for k, v in params.items()}}},
                          sort_keys=False)
    path.write_text(header + body)
    return path


def load_calibrated_model(directory: str | Path, *, base_dir: str | Path | None = None) -> dict[str, Any]:
    """``{"name": ..., "params": {...}}`` from a calibration output directory (or its
    ``params.yaml``), validated against the model registry.

    A relative ``directory`` is taken from the current directory, else from ``base_dir``.
    Raises :class:`ConfigError` (one line) for a missing or malformed file.
    """
    from riskengine.models import build_model

    path = Path(directory)
    if not path.is_absolute() and not path.exists() and base_dir is not None:
        path = Path(base_dir) / path
    file = path if path.suffix in (".yaml", ".yml") and not path.is_dir() else path / PARAMS_FILE
    try:
        data = yaml.safe_load(file.read_text())
    except OSError as err:
        raise ConfigError(f"model.from: cannot read {str(file)!r}: {err.strerror or err} "
                          "(run the calibrate job into that directory first)") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"model.from: {str(file)!r} is not valid YAML: {str(err).splitlines()[0]}") from None
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict) or not isinstance(model.get("name"), str) or not isinstance(
            model.get("params"), dict):
        raise ConfigError(f"model.from: {str(file)!r} must hold {{model: {{name: ..., params: {{...}}}}}}")
    try:
        build_model(model["name"], model["params"])
    except ValueError as err:
        raise ConfigError(f"model.from: {str(file)!r}: {err}") from None
    return {"name": model["name"], "params": {k: float(v) for k, v in model["params"].items()}}
