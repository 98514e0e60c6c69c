"""The ``stress`` job: the overnight run. Revalue the book on simulated paths and on named
scenarios; report VaR/ES (Monte Carlo with confidence intervals, historical, delta-normal,
Cornish–Fisher), Euler contributions, AD Greeks, margin and liquidation, limit breaches.

```yaml
job: stress
book: configs/data/book.csv
market: configs/data/market.yaml
model: {name: svcj, params: {...}}     # shared, or {BTC: {name: ..., params: ...}, ...}
horizons_days: [1, 10]
mc: {paths: 200000, seed: 1}
risk: {var_levels: [0.99, 0.975], es_levels: [0.975]}
scenarios: all                          # or a list of names / files in scenarios/
history: configs/data/history.csv       # daily closes: historical and filtered historical VaR
fhs: {model: gjr_garch, distribution: t, paths: 10000, seed: 1}   # optional from: {BTC: CALIBRATION_DIR}; null: off
limits: {var_99_1d: 2.0e6, liquidation_distance_min: 0.15}
```

Paths are simulated with zero drift (risk horizons are days); options are revalued
sticky-strike on the shocked forward, with the implied vol moved on each path by the
model's change in instantaneous vol (see :func:`_vol_adjustment`).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Literal

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter
from pydantic import Field, field_validator, model_validator

from riskengine.budget import Estimate
from riskengine import risk
from riskengine.book import (
    Book,
    MarketState,
    base_state,
    coin_collateral,
    collateral_values,
    load_book,
    read_book_table,
    position_values,
)
from riskengine.config import ConfigError, ModelConfig, Strict
from riskengine.instruments import (
    cross_liquidation_move,
    isolated_liquidation_price,
    position_notional,
)
from riskengine.market import DAYS_PER_YEAR, MarketSnapshot, load_market
from riskengine.models import CorrelatedAssets
from riskengine.report import Report, write_json, write_parquet
from riskengine.scenarios import Scenario, load_scenarios
from riskengine.simulate import block_runner, stream, stream_blocks, time_grid

LIMIT_PATTERN = re.compile(r"^(var|es)_(\d+)_(\d+)d$")


class StressMc(Strict):
    paths: int = Field(default=200_000, ge=2)
    seed: int = Field(default=0, ge=0)
    dtype: Literal["float32", "float64"] = "float32"
    scheme: Literal["qe", "euler"] = "qe"
    steps_per_day: int = Field(default=1, ge=1)
    block_size: int = Field(default=1024, ge=1)
    chunk_paths: int = Field(default=65536, ge=1)


class RiskConfig(Strict):
    var_levels: list[float] = Field(default_factory=lambda: [0.99, 0.975], min_length=1)
    es_levels: list[float] = Field(default_factory=lambda: [0.975], min_length=1)
    confidence: float = Field(default=0.95, gt=0, lt=1)

    @field_validator("var_levels", "es_levels")
    @classmethod
    def _levels(cls, levels: list[float]) -> list[float]:
        for level in levels:
            if not 0.5 <= level < 1:
                raise ValueError(f"levels must be in [0.5, 1), got {level}")
        return levels


class FhsConfig(Strict):
    """Filtered historical simulation on ``history`` (see :mod:`riskengine.risk.filtered_historical`):
    a GARCH filter per underlying, fitted, or read per underlying from a calibrate job's
    output directory (``from: {BTC: DIR}``)."""

    model: Literal["garch", "gjr_garch"] = "gjr_garch"
    distribution: Literal["normal", "t"] = "t"
    paths: int = Field(default=10_000, ge=100)
    seed: int = Field(default=0, ge=0)
    from_: dict[str, str] = Field(default_factory=dict, alias="from")


class Config(Strict):
    job: Literal["stress"]
    book: str
    market: str
    model: ModelConfig | dict[str, ModelConfig]
    horizons_days: list[int] = Field(default_factory=lambda: [1, 10], min_length=1)
    mc: StressMc = StressMc()
    risk: RiskConfig = RiskConfig()
    scenarios: Literal["all", "none"] | list[str] = "all"
    scenario_horizon_days: float = Field(default=1.0, ge=0)
    history: str | None = "configs/data/history.csv"
    fhs: FhsConfig | None = FhsConfig()  # null: no filtered historical simulation
    limits: dict[str, float] = Field(default_factory=dict)

    @field_validator("horizons_days")
    @classmethod
    def _horizons(cls, horizons: list[int]) -> list[int]:
        if any(h < 1 for h in horizons):
            raise ValueError(f"horizons must be >= 1 day, got {horizons}")
        return sorted(set(horizons))

    @model_validator(mode="after")
    def _limits(self) -> Config:
        for key in self.limits:
            if key == "liquidation_distance_min":
                continue
            match = LIMIT_PATTERN.match(key)
            if not match:
                raise ValueError(
                    f"limits.{key}: unknown limit; expected var_<level>_<h>d, es_<level>_<h>d or liquidation_distance_min"
                )
            measure, digits, days = match.groups()
            levels = self.risk.var_levels if measure == "var" else self.risk.es_levels
            if _limit_level(digits) not in levels or int(days) not in self.horizons_days:
                raise ValueError(
                    f"limits.{key}: no {measure} at level {_limit_level(digits):g} over {days}d is computed; "
                    f"add it to risk.{measure}_levels and horizons_days"
                )
        return self


def _resolve(path: str, base_dir: Path | None) -> Path:
    p = Path(path)
    if p.is_absolute() or p.exists() or base_dir is None:
        return p
    return base_dir / p


def _level_key(level: float) -> str:
    return f"{level:g}"


def _limit_level(digits: str) -> float:
    return float("0." + digits)


def estimate(config: Config, *, base_dir: Path | None = None) -> Estimate:
    """Paths × steps × underlyings simulated, paths × horizons × positions revalued (twice:
    P&L, then contributions); every path's P&L per horizon and underlying is kept."""
    table = read_book_table(_resolve(config.book, base_dir))
    positions = len(table)
    underlyings = table["underlying"].nunique() if "underlying" in table else 1
    paths, horizons = float(config.mc.paths), len(config.horizons_days)
    steps = max(config.horizons_days) * config.mc.steps_per_day
    labels = horizons * (len(config.risk.var_levels) + len(config.risk.es_levels))
    return Estimate(
        memory_bytes=paths * 8.0 * (2 * horizons * (1 + underlyings) + labels + 2),
        work={"path_steps": paths * steps * underlyings, "revaluations": 2 * paths * horizons * positions},
        field="mc.paths",
        detail=f"{paths:.3g} paths x {steps} steps x {underlyings} underlyings, {positions} positions",
    )

def run(config: Config, out: Path, *, progress=None, base_dir: Path | None = None) -> dict:
    started = time.perf_counter()
    market = load_market(_resolve(config.market, base_dir))
    book = load_book(_resolve(config.book, base_dir), market)
    scenarios = [] if config.scenarios == "none" else load_scenarios(config.scenarios)
    assets = _assets(config, book, market)
    dtype = jnp.float64 if config.mc.dtype == "float64" else jnp.float32

    base = base_state(book, market)
    with jax.enable_x64(True):
        value0 = np.asarray(position_values(book, base, dtype=jnp.float64)) + collateral_values(book, market)
    phases: dict[str, float] = {}
    clock = [time.perf_counter()]

    def lap(name: str) -> None:
        now = time.perf_counter()
        phases[name] = now - clock[0]
        clock[0] = now

    summary: dict = {
        "job": "stress",
        "asof": str(market.asof),
        "paths": config.mc.paths,
        "seed": config.mc.seed,
        "horizons_days": config.horizons_days,
        "positions": book.num_positions,
        "underlyings": list(book.underlyings),
        "base_value": float(value0.sum()),
    }

    # --- Monte Carlo: per-path P&L, then Euler contributions in a second pass -----------------
    simulation = _Simulation(config, book, market, assets, dtype, value0)
    pnl = simulation.total_pnl(progress)  # [paths, horizons]
    lap("simulation")
    var, es, var_ci, es_ci, moments = {}, {}, {}, {}, {}
    for j, h in enumerate(config.horizons_days):
        hk = f"{h}d"
        var[hk] = {_level_key(a): float(risk.value_at_risk(pnl[:, j], level=a)) for a in config.risk.var_levels}
        es[hk] = {_level_key(a): float(risk.expected_shortfall(pnl[:, j], level=a)) for a in config.risk.es_levels}
        var_ci[hk] = {_level_key(a): _interval(risk.var_interval(pnl[:, j], level=a, confidence=config.risk.confidence))
                      for a in config.risk.var_levels}
        es_ci[hk] = {_level_key(a): _interval(risk.es_interval(pnl[:, j], level=a, confidence=config.risk.confidence))
                     for a in config.risk.es_levels}
        moments[hk] = risk.pnl_moments(pnl[:, j])
    summary.update(var=var, es=es, var_ci=var_ci, es_ci=es_ci)
    summary["contributions"] = simulation.contributions(pnl, config.risk)
    lap("contributions")

    # --- other VaR methods ------------------------------------------------------------------
    greeks = _greeks(book, market)
    summary["greeks"] = greeks
    lap("greeks")
    summary["methods"] = _other_methods(config, book, market, greeks, moments, base_dir)
    summary["vol_surface"] = market.vol_surface_summary()
    summary["filtered_historical"] = _filtered_historical(config, book, market, base_dir)
    lap("other_methods")

    # --- scenarios ----------------------------------------------------------------------------
    scenario_table, scenario_summary = _scenarios(book, market, scenarios, value0, elapsed_days=config.scenario_horizon_days)
    summary["scenarios"] = scenario_summary
    lap("scenarios")
    stressed = [s for s in scenarios if s.shocks.correlation is not None]
    summary["stressed_var"] = {
        s.name: simulation.stressed_var(s, config.risk.var_levels, config.horizons_days[0]) for s in stressed
    }

    lap("stressed_var")
    # --- margin and liquidation ----------------------------------------------------------------
    summary["margin"], summary["isolated"] = _margin(book, market)

    # --- limits -------------------------------------------------------------------------------
    summary["limits"] = dict(config.limits)
    summary["breaches"] = _breaches(config.limits, summary)
    lap("margin_and_limits")
    summary["seconds_by_phase"] = phases
    summary["seconds"] = time.perf_counter() - started

    write_json(out / "summary.json", summary)
    columns = {f"pnl_{h}d": pnl[:, j] for j, h in enumerate(config.horizons_days)}
    for j, h in enumerate(config.horizons_days):  # per underlying: what the allocate job reads
        for u, name in enumerate(book.underlyings):
            columns[f"pnl_{h}d_{name}"] = simulation.pnl_by_underlying[:, j, u]
    write_parquet(out / "pnl.parquet", pd.DataFrame(columns))
    write_parquet(out / "scenarios.parquet", scenario_table)
    _report(config, summary, pnl, scenario_table).write(out / "report.html")
    return summary


def exit_code(summary: dict) -> int:
    """Nonzero when a limit is breached (used with ``--fail-on-breach``)."""
    return 3 if summary.get("breaches") else 0


# --------------------------------------------------------------------------------------------
# Monte Carlo
# --------------------------------------------------------------------------------------------


def _assets(config: Config, book: Book, market: MarketSnapshot) -> CorrelatedAssets:
    names = list(book.underlyings)
    if isinstance(config.model, ModelConfig):
        specs = dict.fromkeys(names, config.model)
    else:
        missing = [u for u in names if u not in config.model]
        if missing:
            raise ConfigError(f"model: no model for underlying(s) {missing}; give one per underlying or a shared one")
        specs = {u: config.model[u] for u in names}
    models = [specs[u].build(scheme=config.mc.scheme) for u in names]
    try:
        return CorrelatedAssets.from_correlation(models, market.correlation_matrix(names), names=names)
    except ValueError as err:
        raise ConfigError(f"market.{err}") from None


def _vol_adjustment(model, variance, tau):
    """Change of an option's implied vol on a path: the model's change in instantaneous vol,
    sqrt(V_h) - sqrt(v0), damped over the option's remaining life by mean reversion,
    (1 - exp(-kappa tau)) / (kappa tau) (Heston's sensitivity of expected average variance to
    the current variance). Zero for constant-vol models."""
    if not model.has_stochastic_vol:
        return jnp.zeros(variance.shape + tau.shape, variance.dtype)
    kappa = jnp.asarray(model.kappa, variance.dtype)
    ktau = kappa * jnp.maximum(tau, 1e-6)
    damping = -jnp.expm1(-ktau) / ktau
    return (jnp.sqrt(jnp.maximum(variance, 0.0)) - jnp.sqrt(jnp.asarray(model.v0, variance.dtype)))[..., None] * damping


class _Simulation:
    """The book revalued on simulated paths at each horizon."""

    def __init__(self, config: Config, book: Book, market: MarketSnapshot, assets, dtype, value0):
        self.config, self.book, self.market, self.assets, self.dtype = config, book, market, assets, dtype
        self.value0 = value0
        horizons = np.asarray(config.horizons_days, np.float64)
        self.grid = time_grid(horizons / DAYS_PER_YEAR, steps_per_year=DAYS_PER_YEAR * config.mc.steps_per_day)
        self.states = [base_state(book, market, elapsed_days=float(h)) for h in horizons]
        # bounded memory: about 2^24 numbers of [paths, horizons, positions] per chunk
        per_chunk = max(config.mc.block_size, (1 << 24) // max(book.num_positions * len(horizons), 1))
        self.chunk_paths = min(config.mc.chunk_paths, per_chunk)
        self.run = block_runner(self.grid, block_size=config.mc.block_size, dtype=dtype, record=("log_return", "variance"))
        self.key = jax.random.key(config.mc.seed)
        self.devices: int | None = None  # local devices the blocks are split over (None: all)
        self._block_fn = lambda block_key, args: self._position_pnl(block_key, args).transpose(1, 0, 2)
        self.collateral_units, self.collateral_underlying = coin_collateral(book)

    def _args(self, assets):
        dtype = self.dtype
        uidx = self.book.underlying_index
        tau = [jnp.asarray(self.book.column("expiry_years") - h / DAYS_PER_YEAR, dtype) for h in self.config.horizons_days]
        return {
            "assets": assets,
            "spot0": jnp.asarray(self.states[0].spot, dtype),
            "vol": jnp.asarray(np.stack([s.vol for s in self.states]), dtype),
            "tau": jnp.stack([jnp.nan_to_num(t, nan=1.0) for t in tau]),
            "value0": jnp.asarray(self.value0, dtype),
            "uidx": jnp.asarray(uidx),
            "collateral_units": jnp.asarray(self.collateral_units, dtype),
            "collateral_uidx": jnp.asarray(self.collateral_underlying),
        }

    def _position_pnl(self, block_key, args):
        """[horizons, block, positions] P&L of every position (collateral included)."""
        book, dtype = self.book, self.dtype
        obs = self.run(args["assets"], block_key, jnp.zeros(self.assets.num_assets, dtype))
        out = []
        for j, h in enumerate(self.config.horizons_days):
            spot = args["spot0"] * jnp.exp(obs.log_return[j])  # [block, U]
            adjust = jnp.stack(
                [_vol_adjustment(m, obs.variance[j][:, i], args["tau"][j]) for i, m in enumerate(args["assets"].models)],
                axis=-1,
            )  # [block, positions, U]
            vol_shift = jnp.take_along_axis(adjust, args["uidx"][None, :, None], axis=-1)[..., 0]
            vol = jnp.maximum(args["vol"][j] + vol_shift, 0.01)
            state = MarketState(
                spot=spot, vol=vol, basis=self.states[j].basis, premium=self.states[j].premium,
                elapsed_days=float(h), rate=self.states[j].rate,
            )
            values = position_values(book, state, dtype=dtype)
            collateral_change = args["collateral_units"] * (spot[:, args["collateral_uidx"]] - args["spot0"][args["collateral_uidx"]])
            out.append(values + collateral_change + jnp.asarray(collateral_values(book, self.market), dtype) - args["value0"])
        return jnp.stack(out)

    def _stream(self, assets, progress=None):
        """Chunks of per-path, per-position P&L ``[paths, horizons, positions]`` (float64)."""
        for first, values in stream(
            self._block_fn, self._args(assets), key=self.key, num_paths=self.config.mc.paths,
            block_size=self.config.mc.block_size, chunk_paths=self.chunk_paths, progress=progress,
        ):
            yield first, values.astype(np.float64)

    def _stream_blocks(self, assets, reducer, *, name: str, progress=None):
        """Per-block reductions of the per-path, per-position P&L (see ``stream_blocks``):
        split over local devices and ``jax.distributed`` processes, saved for ``--resume``."""
        yield from stream_blocks(
            self._block_fn, self._args(assets), key=self.key, num_paths=self.config.mc.paths, reducer=reducer,
            block_size=self.config.mc.block_size, chunk_paths=self.chunk_paths, devices=self.devices,
            progress=progress, name=name,
        )

    def total_pnl(self, progress=None, assets=None) -> np.ndarray:
        """Book P&L ``[paths, horizons]`` (float64): only this per-path vector is kept."""

        groups = np.eye(len(self.book.underlyings))[self.book.underlying_index]  # [positions, U]

        def book_pnl(first_block, values):  # [blocks, block, horizons, P] -> [blocks, block, horizons, 1 + U]
            values = values.astype(np.float64)
            return np.concatenate([values.sum(axis=-1, keepdims=True), values @ groups], axis=-1)

        parts = [v for _, v in self._stream_blocks(assets or self.assets, book_pnl, name="pnl", progress=progress)]
        pnl = np.concatenate(parts, axis=0)
        pnl = pnl.reshape(-1, *pnl.shape[-2:])[: self.config.mc.paths]
        if assets is None:
            # per underlying [paths, horizons, U] (positions grouped by underlying, collateral included)
            self.pnl_by_underlying = pnl[..., 1:]
        return pnl[..., 0]

    def contributions(self, pnl: np.ndarray, risk_config: RiskConfig) -> dict:
        """Euler contributions of every position to each ES and VaR, summing to the totals.

        A second pass over the same paths: ``sum_p w[p] * pnl[p, position]`` with the tail
        weights of ES (the same atoms as the total) or kernel weights around the VaR
        scenario, accumulated block by block in path order."""
        weights, labels = [], []
        for j, h in enumerate(self.config.horizons_days):
            for a in risk_config.es_levels:
                weights.append(risk.tail_weights(pnl[:, j], level=a) / (1.0 - a))
                labels.append((f"{h}d", f"es_{_level_key(a)}", j, float(risk.expected_shortfall(pnl[:, j], level=a))))
            for a in risk_config.var_levels:
                v = float(risk.value_at_risk(pnl[:, j], level=a))
                weights.append(_kernel_weights(pnl[:, j], -v))
                labels.append((f"{h}d", f"var_{_level_key(a)}", j, v))
        w = np.stack(weights, axis=-1)  # [paths, measures]
        horizon_of = np.asarray([lab[2] for lab in labels])
        sums = np.zeros((len(labels), self.book.num_positions))
        block, paths = self.config.mc.block_size, self.config.mc.paths

        def weighted(first_block, values):  # [blocks, block, horizons, P] -> [blocks, measures, P]
            out = np.zeros((len(values), len(labels), self.book.num_positions))
            for b in range(len(values)):
                start = (first_block + b) * block
                n = min(block, paths - start)
                if n > 0:
                    chunk = values[b, :n].astype(np.float64)[:, horizon_of, :]  # [paths, measures, P]
                    out[b] = np.einsum("pm,pmk->mk", w[start:start + n], chunk)
            return out

        for _, per_block in self._stream_blocks(self.assets, weighted, name="contributions"):
            for b in range(len(per_block)):  # block by block, in path order
                sums += per_block[b]
        ids = list(self.book.table["id"])
        under = list(self.book.table["underlying"])
        result: dict = {}
        for m, (hk, measure, _, total) in enumerate(labels):
            raw = -sums[m]
            # VaR: a kernel estimate, rescaled to sum to VaR. ES: the same tail weights as the
            # total; the rescaling only removes float rounding of the per-position sums.
            raw = raw * (total / raw.sum()) if raw.sum() != 0 else raw
            result.setdefault(hk, {})[measure] = {
                "total": total,
                "by_position": dict(zip(ids, raw.tolist(), strict=True)),
                "by_underlying": risk.group_contributions(raw, labels=under),
            }
        return result

    def stressed_var(self, scenario: Scenario, levels, horizon: int) -> dict:
        """MC VaR with the scenario's correlation shock (same paths' shocks, same code)."""
        shocked = self.market.shocked(scenario)
        names = list(self.book.underlyings)
        assets = CorrelatedAssets.from_correlation(self.assets.models, shocked.correlation_matrix(names), names=names)
        pnl = self.total_pnl(assets=assets)
        return {
            f"{h}d": {_level_key(a): float(risk.value_at_risk(pnl[:, j], level=a)) for a in levels}
            for j, h in enumerate(self.config.horizons_days)
        }


def _kernel_weights(pnl: np.ndarray, at: float) -> np.ndarray:
    """Gaussian kernel weights around the VaR scenario (Silverman bandwidth), summing to 1."""
    bandwidth = risk.default_bandwidth(pnl) if hasattr(risk, "default_bandwidth") else 1.06 * pnl.std() * len(pnl) ** -0.2
    k = np.exp(-0.5 * ((pnl - at) / bandwidth) ** 2)
    return k / k.sum()


def _interval(iv) -> dict:
    return {"lower": float(iv.lower), "upper": float(iv.upper), "confidence": float(iv.confidence)}


# --------------------------------------------------------------------------------------------
# Greeks, other methods, scenarios, margin, limits
# --------------------------------------------------------------------------------------------


def _book_value_fn(book: Book, market: MarketSnapshot):
    base = base_state(book, market)
    collateral = collateral_values(book, market)
    units, cu = coin_collateral(book)
    uidx = book.underlying_index

    def value(spot, vol_shift, elapsed_days):
        state = MarketState(
            spot=spot, vol=jnp.asarray(base.vol) + vol_shift[uidx], basis=base.basis, premium=base.premium,
            elapsed_days=elapsed_days, rate=base.rate,
        )
        values = position_values(book, state, dtype=jnp.float64)
        return values.sum() + (collateral + units * (spot[cu] - jnp.asarray(base.spot)[cu])).sum()

    return value, base


def _greeks(book: Book, market: MarketSnapshot) -> dict:
    """Book delta, gamma (per underlying, USD per 1 USD of spot), vega (per 1.00 vol),
    theta (per day) by automatic differentiation of the full revaluation."""
    with jax.enable_x64(True):
        value, base = _book_value_fn(book, market)
        spot = jnp.asarray(base.spot, jnp.float64)
        zero = jnp.zeros_like(spot)
        @jax.jit
        def derivatives(spot, shift, t):
            first = jax.grad(value, argnums=(0, 1, 2))(spot, shift, t)
            return first, jnp.diag(jax.hessian(value, argnums=0)(spot, shift, t))

        (delta, vega, theta), gamma = derivatives(spot, zero, jnp.float64(0.0))
        # theta is the same for every underlying: report it per underlying by position attribution
        per_underlying_theta = _theta_by_underlying(book, market)
    return {
        u: {
            "delta": float(delta[i]),
            "delta_usd": float(delta[i] * spot[i]),
            "gamma": float(gamma[i]),
            "vega": float(vega[i]),
            "theta": per_underlying_theta[u],
        }
        for i, u in enumerate(book.underlyings)
    } | {"book_theta": float(theta)}


def _theta_by_underlying(book: Book, market: MarketSnapshot) -> dict:
    base = base_state(book, market)

    def values(elapsed):
        state = MarketState(spot=base.spot, vol=base.vol, basis=base.basis, premium=base.premium,
                            elapsed_days=elapsed, rate=base.rate)
        return position_values(book, state, dtype=jnp.float64)

    with jax.enable_x64(True):
        per_position = np.asarray(jax.jit(jax.jacfwd(values))(jnp.float64(0.0)))
    return risk.group_contributions(per_position, labels=list(book.table["underlying"])) | {
        u: 0.0 for u in book.underlyings if u not in set(book.table["underlying"])
    }


def _other_methods(config: Config, book: Book, market: MarketSnapshot, greeks: dict, moments: dict, base_dir) -> dict:
    names = list(book.underlyings)
    exposures = np.asarray([greeks[u]["delta_usd"] for u in names])
    atm = np.asarray([
        float(market.implied_vol(u, strike=market.underlyings[u].spot, expiry_years=30 / DAYS_PER_YEAR)) for u in names
    ])
    corr = market.correlation_matrix(names)
    history = _load_history(config, names, base_dir)
    out: dict = {}
    for h in config.horizons_days:
        hk = f"{h}d"
        cov = np.outer(atm, atm) * corr * (h / DAYS_PER_YEAR)
        m = moments[hk]
        entry: dict = {
            "delta_normal": {
                "var": {_level_key(a): float(risk.delta_normal_var(delta=exposures, covariance=cov, level=a)) for a in config.risk.var_levels},
                "es": {_level_key(a): float(risk.delta_normal_es(delta=exposures, covariance=cov, level=a)) for a in config.risk.es_levels},
            },
            "cornish_fisher": {
                "var": {_level_key(a): float(risk.cornish_fisher_var(mean=m.mean, std=m.std, skewness=m.skewness,
                                                                     excess_kurtosis=m.excess_kurtosis, level=a))
                        for a in config.risk.var_levels},
                "moments": {"mean": float(m.mean), "std": float(m.std), "skewness": float(m.skewness),
                            "excess_kurtosis": float(m.excess_kurtosis)},
            },
        }
        if history is not None:
            pnl = _historical_pnl(book, market, history, horizon=h)
            entry["historical"] = {
                "var": {_level_key(a): float(risk.value_at_risk(pnl, level=a)) for a in config.risk.var_levels},
                "es": {_level_key(a): float(risk.expected_shortfall(pnl, level=a)) for a in config.risk.es_levels},
                "days": int(len(pnl)),
            }
        out[hk] = entry
    return out


def _load_history(config: Config, names: list[str], base_dir) -> pd.DataFrame | None:
    """Daily simple returns per underlying; an underlying without history takes a stated
    proxy column (``proxies`` in the file's header comment is not parsed: ETH for others)."""
    if config.history is None:
        return None
    path = _resolve(config.history, base_dir)
    try:
        prices = pd.read_csv(path, comment="#", parse_dates=["date"]).set_index("date").sort_index()
    except (OSError, ValueError, KeyError) as err:
        raise ConfigError(f"history: cannot read {str(path)!r}: {err}") from None
    returns = prices.pct_change().dropna(how="all")
    out = {}
    for u in names:
        column = u if u in returns.columns else ("ETH" if "ETH" in returns.columns else returns.columns[0])
        out[u] = returns[column]
    return pd.DataFrame(out).dropna()


def _historical_pnl(book: Book, market: MarketSnapshot, history: pd.DataFrame, *, horizon: int) -> np.ndarray:
    """Full revaluation of the book under each overlapping historical h-day return."""
    returns = risk.overlapping_returns(history.to_numpy(), horizon=horizon)
    value, base = _book_value_fn(book, market)
    with jax.enable_x64(True):
        spot = jnp.asarray(base.spot) * (1.0 + jnp.asarray(returns))
        shocked = jax.jit(jax.vmap(lambda s: value(s, jnp.zeros(len(base.spot)), 0.0)))(spot)
        v0 = value(jnp.asarray(base.spot), jnp.zeros(len(base.spot)), 0.0)
    return np.asarray(shocked - v0)


def _filtered_historical(config: Config, book: Book, market: MarketSnapshot, base_dir) -> dict | None:
    """Filtered historical simulation: GARCH-filtered residual dates bootstrapped jointly,
    variance recursion forward from the last filtered variance, the book fully revalued as
    in :func:`_historical_pnl` (spots moved, vols and time unchanged)."""
    if config.fhs is None or config.history is None:
        return None
    from riskengine.calibration import load_garch

    fhs, names = config.fhs, list(book.underlyings)
    unknown = sorted(set(fhs.from_) - set(names))
    if unknown:
        raise ConfigError(f"fhs.from.{unknown[0]}: not an underlying of the book {names}")
    given = {}
    for u, directory in fhs.from_.items():
        try:
            given[u] = load_garch(directory, base_dir=base_dir)
        except ConfigError as err:
            raise ConfigError(f"fhs.from.{u}: {err}") from None
    history = _load_history(config, names, base_dir)
    with jax.enable_x64(True):
        filtered = risk.filter_history(np.log1p(history.to_numpy()), names=names, kind=fhs.model,
                                       dist=fhs.distribution, given=given)
        log_returns = risk.simulate_filtered_history(filtered, jax.random.key(fhs.seed), horizons=config.horizons_days,
                                                     num_paths=fhs.paths)  # [paths, horizons, U]
        value, base = _book_value_fn(book, market)
        zero = jnp.zeros(len(base.spot))
        spot0 = jnp.asarray(base.spot)
        spots = jnp.concatenate([(spot0 * jnp.exp(log_returns)).reshape(-1, len(base.spot)), spot0[None]])
        # the base value in the same compiled call (last row): no eager revaluation; chunks of
        # about 2^22 position values each (lax.map runs them in turn), so memory stays bounded
        chunk = max(1, min(len(spots), (1 << 22) // max(book.num_positions, 1)))
        pad = -len(spots) % chunk
        padded = jnp.concatenate([spots, jnp.broadcast_to(spot0, (pad, len(base.spot)))]).reshape(-1, chunk, len(base.spot))
        values = np.asarray(jax.jit(lambda x: jax.lax.map(jax.vmap(lambda s: value(s, zero, 0.0)), x))(padded)).ravel()
        values = values[: len(spots)]
        pnl = (values[:-1] - values[-1]).reshape(log_returns.shape[:2])  # [paths, horizons]
    out: dict = {"model": fhs.model, "distribution": fhs.distribution, "paths": fhs.paths, "seed": fhs.seed,
                 "days": int(len(history)), "underlyings": filtered.to_dict()}
    for j, h in enumerate(config.horizons_days):
        out[f"{h}d"] = {
            "var": {_level_key(a): float(risk.value_at_risk(pnl[:, j], level=a)) for a in config.risk.var_levels},
            "es": {_level_key(a): float(risk.expected_shortfall(pnl[:, j], level=a)) for a in config.risk.es_levels},
        }
    return out


def _scenarios(book: Book, market: MarketSnapshot, scenarios: list[Scenario], value0: np.ndarray, *, elapsed_days: float):
    """Full revaluation under each scenario (all scenarios in one call): the shocks hit at
    once and the book is revalued ``elapsed_days`` later (funding accrues at the shocked
    premium, options lose that much time); 0 means an instantaneous shock."""
    ids = list(book.table["id"])
    venues = book.table["venue"].to_numpy()
    table = pd.DataFrame(columns=["scenario", "position_id", "base_value", "scenario_value", "pnl"])
    if not scenarios:
        return table, {}
    shocked = [market.shocked(s) for s in scenarios]
    states = [base_state(book, m, elapsed_days=elapsed_days) for m in shocked]
    base = states[0]

    @jax.jit
    def revalue(spot, vol, premium):
        state = MarketState(spot=spot, vol=vol, basis=base.basis, premium=premium, elapsed_days=elapsed_days, rate=base.rate)
        return position_values(book, state, dtype=jnp.float64)

    with jax.enable_x64(True):
        values = np.asarray(jax.vmap(revalue)(
            jnp.asarray(np.stack([st.spot for st in states])),
            jnp.asarray(np.stack([st.vol for st in states])),
            jnp.asarray(np.stack([st.premium for st in states])),
        ))
    rows, summary = [], {}
    for s, m, v in zip(scenarios, shocked, values, strict=True):
        v = v + collateral_values(book, m)
        v = np.where(np.isin(venues, s.shocks.venue_default), 0.0, v)  # lost with the venue
        pnl = v - value0
        rows.extend(
            {"scenario": s.name, "position_id": pid, "base_value": float(b), "scenario_value": float(x), "pnl": float(p)}
            for pid, b, x, p in zip(ids, value0, v, pnl, strict=True)
        )
        summary[s.name] = {
            "kind": s.kind,
            "description": s.description.strip(),
            "pnl": float(pnl.sum()),
            "by_position": dict(zip(ids, pnl.tolist(), strict=True)),
            "by_underlying": risk.group_contributions(pnl, labels=list(book.table["underlying"])),
        }
    return pd.DataFrame(rows, columns=table.columns), summary


def _margin(book: Book, market: MarketSnapshot):
    """Per-venue cross-margin accounts (futures, perpetuals and collateral; options are not
    margined here) and isolated positions' liquidation prices."""
    t = book.table
    derivative = t["type"].str.contains("future|perpetual").to_numpy()
    inverse = t["type"].str.startswith("inverse").to_numpy()
    cross = (t["margin_mode"] == "cross").to_numpy()
    spot = np.asarray([market.underlyings[u].spot for u in t["underlying"]])
    basis = np.asarray([market.underlyings[u].basis for u in t["underlying"]])
    tau = np.nan_to_num(t["expiry_years"].to_numpy(), nan=0.0)
    mark = spot * np.exp(basis * tau)
    stable = np.asarray([market.stablecoins.get(c, 0.0) for c in t["collateral_currency"]])
    coin = np.asarray([c in market.underlyings for c in t["collateral_currency"]])
    coin_spot = np.asarray([market.underlyings[c].spot if c in market.underlyings else 0.0 for c in t["collateral_currency"]])
    margin = {}
    for venue in book.venues:
        at = (t["venue"] == venue).to_numpy() & cross
        rows = at & derivative
        # coin collateral enters as a linear long position with entry 0 and no margin
        coin_rows = at & coin & (t["collateral"].to_numpy() > 0)
        quantity = np.concatenate([t["quantity"].to_numpy()[rows], t["collateral"].to_numpy()[coin_rows]])
        multiplier = np.concatenate([t["multiplier"].to_numpy()[rows], np.ones(coin_rows.sum())])
        entry = np.concatenate([t["entry_price"].to_numpy()[rows], np.zeros(coin_rows.sum())])
        marks = np.concatenate([mark[rows], coin_spot[coin_rows]])
        spots = np.concatenate([spot[rows], coin_spot[coin_rows]])
        mmr = np.concatenate([t["mmr"].to_numpy()[rows], np.zeros(coin_rows.sum())])
        inv = np.concatenate([inverse[rows], np.zeros(coin_rows.sum(), bool)])
        usd_collateral = float((t["collateral"].to_numpy() * stable)[at & ~coin].sum())
        if not rows.any() and not coin_rows.any() and usd_collateral == 0.0:
            continue  # no cross-margined account at this venue
        with jax.enable_x64(True):
            from riskengine.instruments import cross_account

            account = cross_account(collateral=usd_collateral, quantity=quantity, multiplier=multiplier, entry=entry,
                                    mark=marks, spot=spots, mmr=mmr, inverse=inv)
            move = _jit_liquidation_move(collateral=usd_collateral, quantity=quantity, multiplier=multiplier,
                                          entry=entry, mark=marks, spot=spots, mmr=mmr, inverse=inv)
        equity, maintenance = float(account.equity), float(account.maintenance)
        margin[venue] = {
            "equity": equity,
            "maintenance_margin": maintenance,
            "margin_ratio": maintenance / equity if equity > 0 else float("inf"),
            "liquidation_move_down": float(move.down),
            "liquidation_move_up": float(move.up),
        }
    isolated = []
    iso = (t["margin_mode"] == "isolated").to_numpy() & derivative
    for i in np.flatnonzero(iso):
        q, m, e = t["quantity"].iat[i], t["multiplier"].iat[i], t["entry_price"].iat[i]
        notional_entry = abs(q) * m * e if not inverse[i] else abs(q) * m / e  # USD or coin
        posted = t["collateral"].iat[i] * (stable[i] if not coin[i] else 1.0)
        if inverse[i] and not coin[i]:
            posted = posted / e  # USD collateral against a coin notional
        if not inverse[i] and coin[i]:
            posted = posted * coin_spot[i]
        imr = posted / notional_entry
        with jax.enable_x64(True):
            price = float(isolated_liquidation_price(entry=e, imr=imr, mmr=t["mmr"].iat[i], is_long=q > 0, inverse=inverse[i]))
        isolated.append({
            "id": t["id"].iat[i], "venue": t["venue"].iat[i], "underlying": t["underlying"].iat[i],
            "liquidation_price": price, "mark": float(mark[i]), "distance": price / mark[i] - 1.0,
            "notional_usd": float(position_notional(quantity=q, multiplier=m, mark=mark[i], spot=spot[i], inverse=inverse[i])),
        })
    return margin, isolated


_jit_liquidation_move = jax.jit(cross_liquidation_move)


def _breaches(limits: dict[str, float], summary: dict) -> list[dict]:
    breaches = []
    for key, limit in limits.items():
        if key == "liquidation_distance_min":
            for venue, acc in summary["margin"].items():
                closest = min(abs(acc["liquidation_move_down"]), abs(acc["liquidation_move_up"]))
                if closest < limit:
                    breaches.append({"limit": key, "where": venue, "value": closest, "threshold": limit})
            for pos in summary["isolated"]:
                if abs(pos["distance"]) < limit:
                    breaches.append({"limit": key, "where": pos["id"], "value": abs(pos["distance"]), "threshold": limit})
            continue
        measure, digits, days = LIMIT_PATTERN.match(key).groups()
        level, hk = _level_key(_limit_level(digits)), f"{days}d"
        figures = summary[measure].get(hk, {})
        if figures[level] > limit:
            breaches.append({"limit": key, "where": "book", "value": figures[level], "threshold": limit})
    return breaches


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def _money(x: float) -> str:
    return f"{x:,.0f}"


def _report(config: Config, summary: dict, pnl: np.ndarray, scenario_table: pd.DataFrame) -> Report:
    report = Report(f"Overnight stress — book as of {summary['asof']}")
    first = f"{config.horizons_days[0]}d"
    facts = {"positions": str(summary["positions"]), "paths": f"{summary['paths']:,}",
             "book value (USD)": _money(summary["base_value"])}
    for level, v in summary["var"][first].items():
        facts[f"VaR {level} {first}"] = _money(v)
    for level, v in summary["es"][first].items():
        facts[f"ES {level} {first}"] = _money(v)
    facts["limit breaches"] = str(len(summary["breaches"]))
    report.facts(facts)

    report.heading("Limit breaches")
    if summary["breaches"]:
        report.table(pd.DataFrame(summary["breaches"]), highlight=pd.Series([True] * len(summary["breaches"])))
    else:
        report.paragraph("No limit is breached.")

    report.heading("Simulated P&L distribution")
    fig, axes = plt.subplots(1, len(config.horizons_days), figsize=(5.5 * len(config.horizons_days), 3.8), squeeze=False)
    for j, h in enumerate(config.horizons_days):
        ax = axes[0, j]
        ax.hist(pnl[:, j], bins=120, color="#4c72b0", alpha=0.8)
        for level, v in summary["var"][f"{h}d"].items():
            ax.axvline(-v, color="#dd8452", ls="--", label=f"VaR {level}: {_money(v)}")
        for level, v in summary["es"][f"{h}d"].items():
            ax.axvline(-v, color="#c44e52", ls="-", label=f"ES {level}: {_money(v)}")
        ax.set_title(f"P&L over {h} day(s), USD")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1e3:,.0f}k"))
        ax.legend(fontsize=8)
    report.figure(fig, alt="P&L histograms with VaR and ES")
    rows = []
    for hk in summary["var"]:
        for level, v in summary["var"][hk].items():
            ci = summary["var_ci"][hk][level]
            rows.append({"horizon": hk, "measure": f"VaR {level}", "Monte Carlo": v, "CI low": ci["lower"], "CI high": ci["upper"],
                         "historical": summary["methods"][hk].get("historical", {}).get("var", {}).get(level, float("nan")),
                         "filtered historical": (summary.get("filtered_historical") or {}).get(hk, {}).get("var", {}).get(level, float("nan")),
                         "delta-normal": summary["methods"][hk]["delta_normal"]["var"][level],
                         "Cornish–Fisher": summary["methods"][hk]["cornish_fisher"]["var"][level]})
        for level, v in summary["es"][hk].items():
            ci = summary["es_ci"][hk][level]
            rows.append({"horizon": hk, "measure": f"ES {level}", "Monte Carlo": v, "CI low": ci["lower"], "CI high": ci["upper"],
                         "historical": summary["methods"][hk].get("historical", {}).get("es", {}).get(level, float("nan")),
                         "filtered historical": (summary.get("filtered_historical") or {}).get(hk, {}).get("es", {}).get(level, float("nan")),
                         "delta-normal": summary["methods"][hk]["delta_normal"]["es"][level],
                         "Cornish–Fisher": float("nan")})
    report.table(pd.DataFrame(rows), float_format="{:,.0f}")
    report.paragraph(f"Monte Carlo intervals at {config.risk.confidence:.0%} confidence (order statistics for VaR, "
                     "asymptotic normal for ES). Losses are positive.", note=True)
    if summary.get("filtered_historical"):
        fhs = summary["filtered_historical"]
        report.paragraph(f"Filtered historical simulation: {fhs['model']} ({fhs['distribution']}) per underlying on "
                         f"{fhs['days']} days of history, residual dates bootstrapped jointly, {fhs['paths']:,} paths; "
                         "spots moved, implied vols and time held as in the historical method.", note=True)

    report.heading("Where the risk comes from (Euler contributions)")
    contrib = summary["contributions"][first]
    measure = next(k for k in contrib if k.startswith("es")) if any(k.startswith("es") for k in contrib) else next(iter(contrib))
    by_u = contrib[measure]["by_underlying"]
    by_p = pd.Series(contrib[measure]["by_position"]).sort_values(key=np.abs, ascending=False).head(15)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    axes[0].bar(list(by_u), list(by_u.values()), color="#55a868")
    axes[0].set_title(f"{measure} {first} by underlying (USD)")
    axes[1].barh(by_p.index[::-1], by_p.values[::-1], color="#8172b3")
    axes[1].set_title(f"{measure} {first}: largest position contributions")
    report.figure(fig, alt="Contributions to expected shortfall")
    report.paragraph("A position's P&L includes the collateral posted on its row (coin collateral moves with "
                     "its coin).", note=True)

    report.heading("Greeks (automatic differentiation of the full revaluation)")
    greek_rows = [{"underlying": u, **g} for u, g in summary["greeks"].items() if isinstance(g, dict)]
    report.table(pd.DataFrame(greek_rows), float_format="{:,.2f}")
    report.paragraph("delta in coins (delta_usd in USD per 100% move), gamma per USD of spot, vega per 1.00 of "
                     "implied vol, theta in USD per day.", note=True)

    if summary["scenarios"]:
        report.heading("Stress scenarios")
        sc = pd.DataFrame([{"scenario": k, "kind": v["kind"], "P&L (USD)": v["pnl"]} for k, v in summary["scenarios"].items()])
        sc = sc.sort_values("P&L (USD)")
        fig, ax = plt.subplots(figsize=(10, 0.35 * len(sc) + 1))
        ax.barh(sc["scenario"], sc["P&L (USD)"], color=np.where(sc["P&L (USD)"] < 0, "#c44e52", "#55a868"))
        ax.set_title("Scenario P&L (USD)")
        report.figure(fig, alt="Scenario P&L")
        report.table(sc, float_format="{:,.0f}")
        if summary["stressed_var"]:
            report.paragraph(f"Stressed VaR with shocked correlations: {summary['stressed_var']}")

    report.heading("Margin and liquidation")
    margin = pd.DataFrame([{"venue": k, **v} for k, v in summary["margin"].items()])
    report.table(margin, float_format="{:,.3f}")
    if summary["isolated"]:
        report.table(pd.DataFrame(summary["isolated"]), float_format="{:,.3f}")
    report.paragraph("liquidation_move_down/up: the common relative move of the venue's underlyings at which the "
                     "cross account's equity falls to its maintenance margin (futures, perpetuals and collateral).",
                     note=True)
    return report
