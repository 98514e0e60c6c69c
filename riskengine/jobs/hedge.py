"""The ``hedge`` job: train a hedging policy by gradient descent through the simulated P&L
(deep hedging) and compare it with classic hedges on fresh paths.

```yaml
job: hedge
model: {name: gbm, params: {sigma: 0.2}}
market: {spot: 1.0, rate: 0.0}
derivative: {type: european, option: call, strike: 1.0, maturity: 0.08}
hedge: {instruments: [underlying], steps: 20, cost: 1.0e-4}
policy: {type: mlp, features: [log_moneyness, time_to_maturity, volatility, prev_hedge], width: 32, depth: 4}
objective: {type: entropic, risk_aversion: 1.0}
train: {paths: 10000, epochs: 200, learning_rate: 1.0e-3, seed: 42}
evaluate: {paths: 1000000, seed: 43, baselines: [no_hedge, bs_delta, whalley_wilmott]}
```

``--paths N`` sets ``evaluate.paths`` to N and caps ``train.paths`` at N; ``--seed S`` sets
``train.seed`` to S and ``evaluate.seed`` to S + 1.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
from pydantic import Field, field_validator, model_validator

from hedging import (
    OCE,
    BlackScholesDelta,
    Entropic,
    EuropeanOption,
    ExpectedShortfall,
    HedgingProblem,
    MeanVariance,
    NoHedge,
    TransactionCosts,
    WhalleyWilmott,
    build_policy,
    evaluate,
    make_optimizer,
    reference_price,
    sample_hedges,
    save_policy,
    train,
)
from hedging.features import check_features
from hedging.model_hedge import HestonDeltaVega
from hedging.rollout import native_problem
from hedging.train import epoch_progress_bar
from riskengine import checkpoint
from riskengine.budget import Estimate
from riskengine.config import MarketConfig, ModelConfig, Strict
from riskengine.errors import ConfigError
from riskengine.jobs.base import Job, JobContext, JobResult, Sampling
from riskengine.report.hedge import hedge_report
from riskengine.simulate import seed_key

BASELINES = ("no_hedge", "bs_delta", "whalley_wilmott")
DEFAULT_FEATURES = ["log_moneyness", "time_to_maturity", "volatility", "prev_hedge"]


class DerivativeConfig(Strict):
    type: Literal["european"]
    option: Literal["call", "put"] = "call"
    strike: float = Field(gt=0, allow_inf_nan=False)
    maturity: float = Field(gt=0, allow_inf_nan=False)


class HedgeConfig(Strict):
    instruments: list[Literal["underlying", "variance_swap"]] = Field(default_factory=lambda: ["underlying"])
    steps: int = Field(default=20, ge=1)
    substeps: int = Field(default=1, ge=1)  # simulation steps per hedge date
    cost: float | list[float] = 0.0  # proportional, per instrument (one number: the same for all)
    fixed_cost: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    charge_initial_trade: bool = True  # false: setting up the hedge at t_0 is free

    @field_validator("instruments")
    @classmethod
    def _instruments(cls, value):
        if not value or value[0] != "underlying" or len(set(value)) != len(value):
            raise ValueError(f"must list 'underlying' first, without repeats, got {value}")
        return value

    @model_validator(mode="after")
    def _costs(self):
        costs = self.cost if isinstance(self.cost, list) else [self.cost]
        if isinstance(self.cost, list) and len(costs) != len(self.instruments):
            raise ValueError(f"hedge.cost: one cost per instrument ({len(self.instruments)}), got {self.cost}")
        if not all(np.isfinite(c) and c >= 0 for c in costs):
            raise ValueError(f"hedge.cost: must be finite and >= 0, got {self.cost}")
        return self

    def proportional(self) -> tuple[float, ...]:
        if isinstance(self.cost, list):
            return tuple(float(c) for c in self.cost)
        return (float(self.cost),) * len(self.instruments)


class PolicyConfig(Strict):
    type: Literal["mlp", "recurrent", "no_transaction_band"] = "mlp"
    features: list[str] = Field(default_factory=lambda: list(DEFAULT_FEATURES))
    width: int = Field(default=32, ge=1)
    depth: int = Field(default=4, ge=1)
    base: Literal["none", "bs_delta"] = "none"
    start: Literal["random", "delta"] = "random"  # no_transaction_band: "delta" starts from a zero-width band

    @field_validator("features")
    @classmethod
    def _features(cls, value):

        check_features(tuple(value))
        if not value:
            raise ValueError("at least one feature is needed")
        return value


class ObjectiveConfig(Strict):
    type: Literal["entropic", "expected_shortfall", "oce", "mean_variance"] = "entropic"
    risk_aversion: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    level: float = Field(default=0.99, gt=0, lt=1)
    loss: Literal["exponential", "quadratic", "cvar"] = "exponential"  # for oce


class TrainConfig(Strict):
    paths: int = Field(default=10_000, ge=2)
    epochs: int = Field(default=200, ge=1)
    learning_rate: float = Field(default=1e-3, gt=0, allow_inf_nan=False)
    schedule: Literal["constant", "cosine", "exponential"] = "constant"
    final_learning_rate: float | None = Field(default=None, gt=0)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    clip: float | None = Field(default=None, gt=0)
    seed: int = Field(default=0, ge=0)
    dtype: Literal["float32", "float64"] = "float32"
    epochs_per_call: int = Field(default=50, ge=1)
    devices: int = Field(default=1, ge=1)  # local devices each epoch's paths are split over
    patience: int | None = Field(default=None, ge=1)  # early stopping, in epochs
    min_delta: float = Field(default=0.0, ge=0)
    checkpoint: str | None = None  # directory; with resume: true, training continues from it
    resume: bool = False
    # the perceptron's date loop in training: plain JAX anywhere, or the native CPU kernels
    # (hedging/native; float32, width 32, built by `make install`)
    backend: Literal["jax", "native"] = "jax"


class EvaluateConfig(Strict):
    paths: int = Field(default=1_000_000, ge=2)
    seed: int = Field(default=1, ge=0)
    baselines: list[Literal["no_hedge", "bs_delta", "whalley_wilmott", "heston_delta_vega"]] = Field(
        default_factory=lambda: list(BASELINES))


class Config(Strict):
    job: Literal["hedge"]
    model: ModelConfig
    market: MarketConfig
    derivative: DerivativeConfig
    hedge: HedgeConfig = HedgeConfig()
    policy: PolicyConfig = PolicyConfig()
    objective: ObjectiveConfig = ObjectiveConfig()
    train: TrainConfig = TrainConfig()
    evaluate: EvaluateConfig = EvaluateConfig()

    @model_validator(mode="after")
    def _consistent(self):
        if self.market.dividend != 0.0:
            raise ValueError(f"market.dividend: the hedge job supports no dividend yield, got {self.market.dividend}")
        if "variance_swap" in self.hedge.instruments and not self.model.build().has_stochastic_vol:
            raise ValueError(
                f"hedge.instruments: a variance swap needs a stochastic-volatility model, got model {self.model.name!r}"
            )
        if "heston_delta_vega" in self.evaluate.baselines and self.model.name != "heston":
            raise ValueError(
                f"evaluate.baselines: heston_delta_vega needs model heston, got model {self.model.name!r}")
        if self.train.backend == "native":
            if self.policy.type not in ("mlp", "no_transaction_band"):
                raise ValueError(f"train.backend: native runs the mlp and no_transaction_band policies, "
                                 f"got policy.type {self.policy.type!r}")
            if self.train.dtype != "float32" or self.policy.width != 32:
                raise ValueError(f"train.backend: native needs train.dtype float32 and policy.width 32, got "
                                 f"{self.train.dtype} and {self.policy.width}")
        if self.policy.type == "no_transaction_band" and len(self.hedge.instruments) != 1:
            raise ValueError("policy.type: no_transaction_band hedges with the underlying only")
        if self.policy.start != "random" and self.policy.type != "no_transaction_band":
            raise ValueError(
                f"policy.start: {self.policy.start!r} is for policy.type no_transaction_band, got {self.policy.type!r}"
                " (an mlp with base: bs_delta starts from the delta hedge already)"
            )
        return self


class HedgeJob(Job):
    """Deep hedging: train a policy through the simulated P&L, compare it with classic hedges on fresh paths."""
    name = "hedge"
    Config = Config
    sampling = Sampling(dtype="train.dtype")

    def apply_overrides(self, data: dict[str, Any], *, paths: int | None, seed: int | None) -> dict[str, Any]:
        return _apply_overrides(data, paths=paths, seed=seed)

    def estimate(self, config: Config, context: JobContext) -> Estimate:
        return _estimate(config, context.base_dir)

    def run(self, config: Config, context: JobContext) -> JobResult:
        return _run(config, progress=context.progress, base_dir=context.base_dir)


def _apply_overrides(data: dict[str, Any], *, paths: int | None, seed: int | None) -> dict[str, Any]:
    data = dict(data)
    train = dict(data.get("train") or {})
    evaluate = dict(data.get("evaluate") or {})
    if paths is not None:
        evaluate["paths"] = paths
        train["paths"] = min(int(train.get("paths", TrainConfig().paths)), paths)
    if seed is not None:
        train["seed"] = seed
        evaluate["seed"] = seed + 1
    data["train"], data["evaluate"] = train, evaluate
    return data


# --- building the pieces from the config -------------------------------------------------------


def build_problem(config: Config):

    d = config.derivative
    return HedgingProblem(
        model=config.model.build(),
        derivative=EuropeanOption(strike=d.strike, maturity=d.maturity, is_call=d.option == "call"),
        spot=config.market.spot,
        rate=config.market.rate,
        steps=config.hedge.steps,
        substeps=config.hedge.substeps,
        instruments=tuple(config.hedge.instruments),
        costs=TransactionCosts(proportional=config.hedge.proportional(), fixed=config.hedge.fixed_cost,
                               charge_initial_trade=config.hedge.charge_initial_trade),
        dtype=jnp.dtype(config.train.dtype),
    )


def policy_spec(config: Config) -> dict[str, Any]:
    p = config.policy
    return {
        "type": p.type, "features": list(p.features), "width": p.width, "depth": p.depth, "base": p.base,
        "start": p.start, "num_instruments": len(config.hedge.instruments), "dtype": config.train.dtype,
    }


def build_objective(config: Config):

    o = config.objective
    if o.type == "entropic":
        return Entropic(risk_aversion=o.risk_aversion)
    if o.type == "expected_shortfall":
        return ExpectedShortfall(level=o.level)
    if o.type == "oce":
        return OCE(o.loss, risk_aversion=o.risk_aversion, level=o.level)
    return MeanVariance(risk_aversion=o.risk_aversion)


def build_optimizer(config: Config):

    t = config.train
    lr: Any = t.learning_rate
    end = t.final_learning_rate if t.final_learning_rate is not None else t.learning_rate / 10
    if t.schedule == "cosine":
        lr = optax.cosine_decay_schedule(t.learning_rate, t.epochs, alpha=end / t.learning_rate)
    elif t.schedule == "exponential":
        lr = optax.exponential_decay(t.learning_rate, t.epochs, end / t.learning_rate)
    return make_optimizer(lr, name=t.optimizer, clip=t.clip)


def build_baselines(config: Config) -> dict[str, Any]:

    aversion = config.objective.risk_aversion
    made = {
        "no_hedge": lambda: NoHedge(),
        "bs_delta": lambda: BlackScholesDelta(),
        "whalley_wilmott": lambda: WhalleyWilmott(cost=config.hedge.proportional()[0], risk_aversion=aversion),
        "heston_delta_vega": lambda: HestonDeltaVega.of(config.model.build()),  # hedging/model_hedge.py
    }
    return {name: made[name]() for name in config.evaluate.baselines}


# --- the job ----------------------------------------------------------------------------------


def _estimate(config: Config, base_dir: Path | None) -> Estimate:
    """Training: paths × hedge dates × epochs, forward and backward, with every date's
    activations held; evaluation: paths × simulation steps per strategy, and one P&L per
    path and strategy kept."""
    dates = config.hedge.steps
    width = config.policy.width * config.policy.depth
    strategies = 1 + 3  # the trained policy and the classic baselines
    train = float(config.train.paths) * dates * config.train.epochs
    evaluate = float(config.evaluate.paths) * dates * config.hedge.substeps * strategies
    return Estimate(
        memory_bytes=config.train.paths * dates * (width + 16) * 4.0 * 4 + config.evaluate.paths * strategies * 8.0 * 3,
        work={"train_path_dates": train, "path_steps": evaluate},
        field="train.epochs" if train > 10 * evaluate else "evaluate.paths",
        detail=f"training {config.train.paths:.3g} paths x {dates} dates x {config.train.epochs} epochs, "
               f"evaluation {config.evaluate.paths:.3g} paths",
    )

def _run(config: Config, *, progress=None, base_dir: Path | None = None) -> JobResult:

    x64 = config.train.dtype == "float64"
    with jax.enable_x64(x64):
        problem = build_problem(config)
        objective = build_objective(config)
        spec = policy_spec(config)
        key = seed_key(config.train.seed)
        if config.train.backend == "native":

            problem_ = native_problem(dtype="float32", hidden=[config.policy.width])
            if problem_ is not None:
                raise ConfigError(f"train.backend: native: {problem_}")
        policy = build_policy(spec, key=jax.random.fold_in(key, 1_000_000), backend=config.train.backend)
        baselines = build_baselines(config)  # before training: a baseline that does not fit fails now
        checkpoint, resume = _checkpoint(config, base_dir)
        bar = epoch_progress_bar(config.train.epochs) if progress is not None else None
        try:
            result = train(
                policy, objective, problem, key=key, num_paths=config.train.paths, epochs=config.train.epochs,
                optimizer=build_optimizer(config), epochs_per_call=config.train.epochs_per_call,
                checkpoint_dir=checkpoint, resume=resume, patience=config.train.patience,
                min_delta=config.train.min_delta, progress=bar, devices=config.train.devices,
            )
        except FloatingPointError as err:  # no collapsed policy reported as a price
            raise ConfigError(f"{err}: training diverged; lower train.learning_rate (now {config.train.learning_rate:g}) "
                              "or add train.clip") from None
        strategies = {"policy": result.policy, **baselines}
        eval_started = time.perf_counter()
        pnl = evaluate(strategies, problem, key=seed_key(config.evaluate.seed),
                       num_paths=config.evaluate.paths, progress=progress)
        eval_seconds = time.perf_counter() - eval_started
        sample = sample_hedges(result.policy, problem, key=seed_key(config.evaluate.seed + 7))
        reference = reference_price(problem)

    price = {name: objective.price(values) for name, values in pnl.items()}
    stderr = {name: objective.price_stderr(values) for name, values in pnl.items()}
    summary = {
        "job": "hedge",
        "price": price["policy"],
        "price_stderr": stderr["policy"],
        "baselines": {name: price[name] for name in config.evaluate.baselines},
        "baseline_stderrs": {name: stderr[name] for name in config.evaluate.baselines},
        "reference_price": reference,
        "train_seconds": result.seconds,
        "compile_seconds": result.compile_seconds,
        "epochs": result.epochs,
        "stopped_early": result.stopped_early,
        "loss_history": result.loss_history,
        "evaluate_seconds": eval_seconds,
        "paths": config.evaluate.paths,
        "train_paths": config.train.paths,
        "pnl_mean": {name: float(np.mean(v)) for name, v in pnl.items()},
        "pnl_std": {name: float(np.std(v, ddof=1)) for name, v in pnl.items()},
        "objective": config.objective.model_dump(),
        "policy": spec,
        "model": {"name": config.model.name, "params": config.model.params},
        "cost": list(config.hedge.proportional()),
    }
    table = pd.DataFrame(pnl)
    return JobResult(summary=summary, tables={"pnl": table},
                     writers=[lambda out: save_policy(out, result.policy, spec)],
                     report=lambda summary: hedge_report(config, summary, table, sample))


def _checkpoint(config: Config, base_dir: Path | None) -> tuple[Path | None, bool]:
    """Where training checkpoints go: ``train.checkpoint`` if set, else the CLI's run
    checkpoint folder (``<out>.checkpoint/``; ``riskengine run --resume`` continues there)."""
    if config.train.checkpoint:
        folder = Path(config.train.checkpoint)
        if not folder.is_absolute() and base_dir is not None:
            folder = Path(base_dir) / folder
        return folder, config.train.resume

    run = checkpoint.current()
    if run is None:
        return None, False
    # A run started without --resume wiped its folder, so anything there is this run's own.
    return run.ensure() / "hedge-train", True


