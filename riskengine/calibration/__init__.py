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
directory; :func:`load_calibrated_model` reads it back for ``model: {from: DIR}``. A GARCH
calibration (``name: garch`` or ``gjr_garch``, with ``distribution``, ``asset`` and
``standard_errors`` beside ``params``) is a daily discrete-time model: :func:`load_garch` reads
it (for filtered historical simulation and backtests); :func:`load_calibrated_model` refuses it
with a clear error, as no continuous-time simulator takes it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from riskengine.calibration.garch import (
    GARCH_MODEL_NAMES,
    GarchParams,
    GarchResult,
    filter_garch,
    fit_garch,
    garch_parameter_names,
    load_returns,
    simulate_garch,
)
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
from riskengine.errors import ConfigError
from riskengine.models import build_model
from riskengine.paths import resolve_path

PARAMS_FILE = "params.yaml"

__all__ = [
    "DEFAULT_BOUNDS",
    "GARCH_MODEL_NAMES",
    "MODEL_PARAMETERS",
    "PARAMS_FILE",
    "ArbitrageWarning",
    "CalibrationResult",
    "GarchParams",
    "GarchResult",
    "Surface",
    "SviFit",
    "SviSlice",
    "calibrate",
    "calibrate_bates",
    "calibrate_heston",
    "check_static_arbitrage",
    "filter_garch",
    "fit_garch",
    "fit_svi",
    "fit_svi_slice",
    "load_calibrated_model",
    "load_garch",
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
    "write_garch_model",
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


def write_garch_model(directory: str | Path, result: GarchResult, *, asset: str | None = None,
                      comment: str | None = None) -> Path:
    """Write ``DIR/params.yaml`` for a GARCH/GJR fit: ``{model: {name, distribution, asset,
    params, standard_errors, robust_standard_errors, log_likelihood, observations,
    converged}}`` (parameters in the units of daily log returns)."""
    name = {v: k for k, v in GARCH_MODEL_NAMES.items()}[result.kind]
    path = Path(directory) / PARAMS_FILE
    header = "".join(f"# {line}\n" for line in (comment or "").splitlines())
    model = {
        "name": name, "distribution": result.dist, "asset": asset,
        "params": {k: float(v) for k, v in result.params.items()},
        "standard_errors": {k: float(v) for k, v in result.stderr.items()},
        "robust_standard_errors": {k: float(v) for k, v in result.robust_stderr.items()},
        "log_likelihood": float(result.loglik), "observations": int(result.observations),
        "converged": bool(result.converged),
    }
    path.write_text(header + yaml.safe_dump({"model": model}, sort_keys=False))
    return path


def _read_params_file(directory: str | Path, base_dir: str | Path | None, where: str = "model.from") -> tuple[Path, dict]:
    path = resolve_path(directory, base_dir)
    file = path if path.suffix in (".yaml", ".yml") and not path.is_dir() else path / PARAMS_FILE
    try:
        data = yaml.safe_load(file.read_text())
    except OSError as err:
        raise ConfigError(f"{where}: cannot read {str(file)!r}: {err.strerror or err} "
                          "(run the calibrate job into that directory first)") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{where}: {str(file)!r} is not valid YAML: {str(err).splitlines()[0]}") from None
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict) or not isinstance(model.get("name"), str) or not isinstance(
            model.get("params"), dict):
        raise ConfigError(f"{where}: {str(file)!r} must hold {{model: {{name: ..., params: {{...}}}}}}")
    return file, model


def load_garch(directory: str | Path, *, base_dir: str | Path | None = None) -> GarchParams:
    """The GARCH/GJR parameters a ``calibrate`` job (``model: {name: garch | gjr_garch}``)
    wrote to ``directory`` (or its ``params.yaml``). Raises :class:`ConfigError` (one line)
    for a missing file, a non-GARCH calibration or missing parameters."""
    file, model = _read_params_file(directory, base_dir, "garch from")
    name = model["name"]
    if name not in GARCH_MODEL_NAMES:
        raise ConfigError(f"garch from: {str(file)!r} holds a {name!r} calibration; expected one of "
                          f"{sorted(GARCH_MODEL_NAMES)} (a calibrate job with model: {{name: garch}})")
    kind = GARCH_MODEL_NAMES[name]
    dist = model.get("distribution", "t" if "nu" in model["params"] else "normal")
    if dist not in ("normal", "t"):
        raise ConfigError(f"garch from: {str(file)!r}: distribution must be normal or t (got {dist!r})")
    names = garch_parameter_names(kind, dist)
    params = {}
    for n in names:
        value = model["params"].get(n)
        if isinstance(value, str):  # YAML 1.1 reads 1e-5 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ConfigError(f"garch from: {str(file)!r}: params.{n} missing or not a number (got {value!r}) "
                              f"for {name}/{dist}; expected {list(names)}")
        params[n] = float(value)
    if not (params["omega"] > 0 and params["alpha"] >= 0 and params["beta"] >= 0
            and params["alpha"] + params.get("gamma", 0.0) >= 0):
        raise ConfigError(f"garch from: {str(file)!r}: need omega > 0, alpha >= 0, beta >= 0, alpha + gamma >= 0")
    if dist == "t" and not params["nu"] > 2:
        raise ConfigError(f"garch from: {str(file)!r}: params.nu must be > 2 (got {params['nu']})")
    errors = model.get("standard_errors") or {}
    return GarchParams(name=name, kind=kind, dist=dist, params=params,
                       standard_errors={k: float(v) for k, v in errors.items()},
                       asset=model.get("asset"), source=str(file))


def load_calibrated_model(directory: str | Path, *, base_dir: str | Path | None = None) -> dict[str, Any]:
    """``{"name": ..., "params": {...}}`` from a calibration output directory (or its
    ``params.yaml``), validated against the model registry.

    A relative ``directory`` is taken from the current directory, else from ``base_dir``.
    Raises :class:`ConfigError` (one line) for a missing or malformed file.
    """
    file, model = _read_params_file(directory, base_dir)
    if model["name"] in GARCH_MODEL_NAMES:
        raise ConfigError(
            f"model.from: {str(file)!r} holds a {model['name']} calibration, a daily discrete-time "
            "model that this job cannot simulate; use a heston/bates calibration here, and the GARCH "
            "one in the stress job's fhs.from or the backtest job")
    try:
        build_model(model["name"], model["params"])
    except ValueError as err:
        raise ConfigError(f"model.from: {str(file)!r}: {err}") from None
    return {"name": model["name"], "params": {k: float(v) for k, v in model["params"].items()}}
