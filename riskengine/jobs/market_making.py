"""The ``market_making`` job: Avellaneda–Stoikov (2008) or Guéant–Lehalle–Fernandez-Tapia
(2013) quoting on a simulated mid price, with Poisson fills of intensity ``A exp(-k delta)``
and optional inventory limits, beside symmetric quoting with the same average spread.

```yaml
job: market_making
model: {name: brownian, params: {sigma: 2.0}}   # or any riskengine model (gbm, merton, heston, bates, svcj)
market: {spot: 100.0}
strategy: {type: avellaneda_stoikov, gamma: 0.1, k: 1.5, A: 140.0}   # or glft, symmetric
simulation: {horizon: 1.0, dt: 0.005, paths: 1000, seed: 3}
```

``brownian`` is arithmetic Brownian motion in price units (``params: {sigma, increments:
binomial|gaussian}``; binomial ``±sigma sqrt(dt)`` steps by default, as in the paper). The
other models move the log-price with drift ``market.rate - market.dividend``; the ``sigma``
the quoting formulas need is then ``strategy.sigma`` or, when not given, the mid's absolute
volatility ``sd(S(T) - S(0)) / sqrt(T)`` from a pilot simulation of 4096 paths.

Strategy fields: ``type``; ``k`` and ``A`` (the fill intensity, also what the strategy
assumes); ``gamma`` (avellaneda_stoikov, glft); ``spread`` (symmetric: the total spread);
``inventory_limit`` (optional: a side that would take ``|q|`` beyond it is not quoted; the
symmetric comparison obeys the same limit); ``sigma`` (optional, see above);
``spread_time_term`` (avellaneda_stoikov only, default true: the spread includes
``gamma sigma^2 (T - t)``). Simulation fields: ``horizon``, ``dt`` (a whole number of steps
in the horizon), ``paths``, ``seed``, ``dtype`` (float32 | float64), ``fills`` (``linear``:
probability ``min(1, A exp(-k delta) dt)`` per step as in the paper, or ``poisson``:
``1 - exp(-A exp(-k delta) dt)``), ``timing`` (``fill_then_move``: fills at the quoted
distances, then the mid moves; ``move_then_fill``: the mid moves first and the standing
quotes fill by their distance from the new mid), ``clip_at_mid`` (default false: move a
quote that crosses the mid back to it), ``batch_size``.

Outputs: ``summary.json`` (the strategy's ``profit_mean``, ``profit_std``,
``final_inventory_mean``, ``final_inventory_std``, ``spread_mean`` at top level and under
``strategy``; the same for ``symmetric``), ``paths.parquet`` (profit and final inventory per
path and strategy), ``report.html``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from pydantic import Field, ValidationError, ValidationInfo, field_validator

from riskengine.budget import Estimate
from riskengine.config import (
    MarketConfig,
    ModelConfig,
    Strict,
    format_validation_error,
)
from riskengine.jobs.base import Job, JobContext, JobResult, Sampling
from riskengine.market_making import (
    GLFT,
    ArithmeticMid,
    AvellanedaStoikov,
    FillModel,
    LogModelMid,
    MarketMakingResult,
    Symmetric,
    price_volatility,
    simulate_market_making,
)
from riskengine.models import MODELS
from riskengine.models.brownian import Brownian
from riskengine.report.market_making import PAPER_COLUMNS, market_making_report
from riskengine.simulate import seed_key

STRATEGY_KEYS = ("profit_mean", "profit_std", "final_inventory_mean", "final_inventory_std", "spread_mean")
PILOT_PATHS = 4096

# Avellaneda & Stoikov (2008), "High-frequency trading in a limit order book", Quantitative
# Finance 8(3), section 4, tables 1-3: s = 100, T = 1, sigma = 2, dt = 0.005, q0 = 0,
# k = 1.5, A = 140, 1000 simulations. (strategy, spread, profit, std(profit), final q, std(final q))
PAPER_TABLE: dict[float, dict[str, tuple[float, float, float, float, float]]] = {
    0.1: {"inventory": (1.29, 62.94, 5.89, 0.10, 2.80), "symmetric": (1.29, 67.21, 13.43, -0.018, 8.66)},
    0.01: {"inventory": (1.33, 66.78, 8.76, -0.02, 4.70), "symmetric": (1.33, 67.36, 13.40, -0.31, 8.65)},
    0.5: {"inventory": (1.15, 33.92, 4.72, -0.02, 1.88), "symmetric": (1.15, 66.20, 14.53, 0.25, 9.06)},
}


class BrownianParams(Strict):
    sigma: float = Field(gt=0, allow_inf_nan=False)
    increments: Literal["binomial", "gaussian"] = "binomial"


class BrownianConfig(Strict):
    """Arithmetic Brownian motion (price units), the mid of Avellaneda & Stoikov."""

    name: Literal["brownian"]
    params: BrownianParams

    @property
    def parameter_names(self) -> list[str]:
        return ["sigma"]


def _model_config(data: Any, info: ValidationInfo) -> BrownianConfig | ModelConfig:
    """``brownian`` or any registered riskengine model, with the error naming the field."""
    if isinstance(data, BrownianConfig | ModelConfig):
        return data
    if not isinstance(data, dict):
        raise ValueError(f"model: must be a mapping {{name, params}}, got {data!r}")
    if "from" not in data:
        name = data.get("name")
        known = sorted([*MODELS, "brownian"])
        if name is None:
            raise ValueError("model.name: missing required field")
        if name not in known:
            raise ValueError(f"model.name: unknown model {name!r}; expected one of {known}")
    target = BrownianConfig if data.get("name") == "brownian" else ModelConfig
    try:
        return target.model_validate(data, context=info.context)
    except ValidationError as err:
        message = format_validation_error(err)
        raise ValueError(message if message.startswith("model.") else f"model.{message}") from None


class StrategyConfig(Strict):
    type: Literal["avellaneda_stoikov", "glft", "symmetric"]
    k: float = Field(gt=0, allow_inf_nan=False)
    A: float = Field(gt=0, allow_inf_nan=False)
    gamma: float | None = Field(default=None, gt=0, allow_inf_nan=False, validate_default=True)
    spread: float | None = Field(default=None, gt=0, allow_inf_nan=False, validate_default=True)
    sigma: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    inventory_limit: int | None = Field(default=None, ge=1)
    spread_time_term: bool | None = None

    @field_validator("gamma")
    @classmethod
    def _gamma(cls, value: float | None, info: ValidationInfo) -> float | None:
        kind = info.data.get("type")
        if kind in ("avellaneda_stoikov", "glft") and value is None:
            raise ValueError(f"required for strategy type {kind!r}")
        if kind == "symmetric" and value is not None:
            raise ValueError("not used by strategy type 'symmetric' (it quotes a fixed spread)")
        return value

    @field_validator("spread")
    @classmethod
    def _spread(cls, value: float | None, info: ValidationInfo) -> float | None:
        kind = info.data.get("type")
        if kind == "symmetric" and value is None:
            raise ValueError("required for strategy type 'symmetric' (the total quoted spread)")
        if kind in ("avellaneda_stoikov", "glft") and value is not None:
            raise ValueError(f"not used by strategy type {kind!r} (its spread follows from gamma, k and sigma)")
        return value

    @field_validator("spread_time_term")
    @classmethod
    def _time_term(cls, value: bool | None, info: ValidationInfo) -> bool | None:
        if value is not None and info.data.get("type") != "avellaneda_stoikov":
            raise ValueError("only used by strategy type 'avellaneda_stoikov'")
        return value


class SimulationConfig(Strict):
    horizon: float = Field(gt=0, allow_inf_nan=False)
    dt: float = Field(gt=0, allow_inf_nan=False)
    paths: int = Field(ge=1)
    seed: int = Field(default=0, ge=0)
    dtype: Literal["float32", "float64"] = "float32"
    fills: Literal["linear", "poisson"] = "linear"
    timing: Literal["fill_then_move", "move_then_fill"] = "fill_then_move"
    clip_at_mid: bool = False
    batch_size: int = Field(default=4096, ge=1)

    @field_validator("dt")
    @classmethod
    def _whole_steps(cls, dt: float, info: ValidationInfo) -> float:
        horizon = info.data.get("horizon")
        if horizon is None:
            return dt
        if dt > horizon:
            raise ValueError(f"must be <= simulation.horizon ({horizon:g})")
        steps = horizon / dt
        if abs(steps - round(steps)) > 1e-9 * steps:
            raise ValueError(f"simulation.horizon ({horizon:g}) must be a whole number of steps of dt")
        return dt

    @property
    def num_steps(self) -> int:
        return round(self.horizon / self.dt)


class Config(Strict):
    job: Literal["market_making"]
    model: Any
    market: MarketConfig
    strategy: StrategyConfig
    simulation: SimulationConfig

    @field_validator("model", mode="before")
    @classmethod
    def _model(cls, data: Any, info: ValidationInfo) -> BrownianConfig | ModelConfig:
        return _model_config(data, info)


class MarketMakingJob(Job):
    """A market maker's quotes, fills, inventory and profit on simulated mid paths (Avellaneda–Stoikov, GLFT, symmetric)."""

    name = "market_making"
    Config = Config
    sampling = Sampling(paths="simulation.paths", seed="simulation.seed", dtype="simulation.dtype")

    def estimate(self, config: Config, context: JobContext) -> Estimate:
        """Paths × quoting steps, for the strategy and the symmetric benchmark; memory: a few
        numbers per path, one batch's state, and the sample path kept for the report (five
        series of one value per step, per strategy, on device and copied to the host)."""
        sim = config.simulation
        steps = sim.horizon / sim.dt
        return Estimate(
            memory_bytes=sim.paths * 8.0 * 16 + min(sim.paths, sim.batch_size) * 8.0 * 64 + steps * 5 * 8.0 * 2 * 2,
            work={"quote_steps": 2.0 * sim.paths * steps},
            field="simulation.dt" if steps >= sim.paths else "simulation.paths",
            detail=f"{sim.paths:.3g} paths x {steps:.3g} steps of dt {sim.dt:g}",
        )

    def run(self, config: Config, context: JobContext) -> JobResult:
        return _run(config, progress=context.progress, base_dir=context.base_dir)


def _run(config: Config, *, progress=None, base_dir: Path | None = None) -> JobResult:
    if config.simulation.dtype == "float64":
        with jax.enable_x64(True):
            summary, results = _simulate(config, progress)
    else:
        summary, results = _simulate(config, progress)
    strategy, symmetric = results
    table = pd.DataFrame({
        "path": np.arange(config.simulation.paths),
        "strategy_profit": strategy.profit.astype(np.float64),
        "strategy_final_inventory": strategy.final_inventory.astype(np.int64),
        "symmetric_profit": symmetric.profit.astype(np.float64),
        "symmetric_final_inventory": symmetric.final_inventory.astype(np.int64),
    })
    return JobResult(summary=summary, tables={"paths": table},
                     report=lambda summary: market_making_report(config, summary, strategy, symmetric,
                                                                 paper_table=PAPER_TABLE))


def _mid_process(config: Config):
    model = config.model
    if isinstance(model, BrownianConfig):
        return ArithmeticMid(Brownian(sigma=model.params.sigma, increments=model.params.increments))
    return LogModelMid(model.build(), drift=config.market.rate - config.market.dividend)


def _strategy_sigma(config: Config, process, key, dtype: str) -> tuple[float, str]:
    if config.strategy.sigma is not None:
        return config.strategy.sigma, "strategy.sigma"
    if isinstance(config.model, BrownianConfig):
        return config.model.params.sigma, "model.params.sigma"
    sim = config.simulation
    value = price_volatility(
        process, key=key, spot=config.market.spot, horizon=sim.horizon, num_steps=sim.num_steps,
        num_paths=PILOT_PATHS, dtype=dtype,
    )
    return value, f"pilot simulation of the mid ({PILOT_PATHS} paths)"


def _build_strategy(config: Config, sigma: float, dtype: str):
    s = config.strategy

    def arr(value):
        return jnp.asarray(value, dtype)

    if s.type == "avellaneda_stoikov":
        time_term = True if s.spread_time_term is None else s.spread_time_term
        return AvellanedaStoikov(gamma=arr(s.gamma), k=arr(s.k), sigma=arr(sigma), time_term=time_term)
    if s.type == "glft":
        return GLFT(gamma=arr(s.gamma), k=arr(s.k), A=arr(s.A), sigma=arr(sigma))
    return Symmetric(half_spread=arr(0.5 * s.spread))


def _simulate(config: Config, progress) -> tuple[dict, tuple[MarketMakingResult, MarketMakingResult]]:
    sim = config.simulation
    dtype = sim.dtype
    key_paths, key_pilot = jax.random.split(seed_key(sim.seed))
    process = _mid_process(config)
    sigma, sigma_source = _strategy_sigma(config, process, key_pilot, dtype)
    fills = FillModel(A=jnp.asarray(config.strategy.A, dtype), k=jnp.asarray(config.strategy.k, dtype), rule=sim.fills)
    common = dict(
        key=key_paths, spot=config.market.spot, horizon=sim.horizon, num_steps=sim.num_steps,
        num_paths=sim.paths, inventory_limit=config.strategy.inventory_limit, dtype=dtype,
        batch_size=sim.batch_size, timing=sim.timing, clip_at_mid=sim.clip_at_mid,
    )

    def halves(done, total):
        if progress is not None:
            progress(done // 2 + offset[0], total)

    offset = [0]
    strategy = simulate_market_making(
        _build_strategy(config, sigma, dtype), process, fills, progress=halves, **common
    )
    offset[0] = sim.paths // 2
    symmetric_spread = strategy.spread_mean
    symmetric = simulate_market_making(
        Symmetric(half_spread=jnp.asarray(0.5 * symmetric_spread, dtype)), process, fills, progress=halves, **common
    )
    strategy_stats, symmetric_stats = strategy.statistics(), symmetric.statistics()
    for name, stats in (("strategy", strategy_stats), ("symmetric", symmetric_stats)):
        for key, value in stats.items():
            if not math.isfinite(value):
                raise ValueError(f"market_making: the {name} simulation gave a non-finite {key}")
    summary = {
        "job": "market_making",
        "model": {"name": config.model.name, "params": _model_params(config)},
        "strategy_type": config.strategy.type,
        "paths": sim.paths,
        "seed": sim.seed,
        "steps": sim.num_steps,
        "dt": sim.dt,
        "horizon": sim.horizon,
        "dtype": dtype,
        "fills": sim.fills,
        "timing": sim.timing,
        "clip_at_mid": sim.clip_at_mid,
        "inventory_limit": config.strategy.inventory_limit,
        "strategy_sigma": sigma,
        "strategy_sigma_source": sigma_source,
        **{key: strategy_stats[key] for key in STRATEGY_KEYS},
        "strategy": strategy_stats,
        "symmetric": symmetric_stats,
        "paper": _paper_rows(config),
    }
    return summary, (strategy, symmetric)


def _model_params(config: Config) -> dict:
    if isinstance(config.model, BrownianConfig):
        return config.model.params.model_dump()
    return dict(config.model.params)


def _paper_rows(config: Config) -> dict | None:
    """The Avellaneda–Stoikov (2008) rows for this set-up, or None if it is not the paper's."""
    model, s, sim = config.model, config.strategy, config.simulation
    same = (
        isinstance(model, BrownianConfig) and model.params.increments == "binomial"
        and math.isclose(model.params.sigma, 2.0) and math.isclose(config.market.spot, 100.0)
        and s.type == "avellaneda_stoikov" and s.gamma in PAPER_TABLE and s.inventory_limit is None
        and math.isclose(s.k, 1.5) and math.isclose(s.A, 140.0) and s.sigma in (None, 2.0)
        and math.isclose(sim.horizon, 1.0) and math.isclose(sim.dt, 0.005)
    )
    if not same:
        return None
    rows = PAPER_TABLE[s.gamma]
    return {
        "gamma": s.gamma,
        "strategy": dict(zip(PAPER_COLUMNS, rows["inventory"], strict=True)),
        "symmetric": dict(zip(PAPER_COLUMNS, rows["symmetric"], strict=True)),
    }




