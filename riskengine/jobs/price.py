"""The ``price`` job: European options under any model, by Monte Carlo with AD Greeks,
beside analytic references.

```yaml
job: price
model: {name: heston, params: {v0: 0.04, kappa: 4.0, theta: 0.25, sigma: 1.0, rho: -0.5}}
market: {spot: 100.0, rate: 0.01, dividend: 0.02}
instruments:
  - {type: european, option: call, strike: 100.0, maturity: 1.0}
mc: {paths: 1000000, steps_per_year: 252, seed: 7, dtype: float64, scheme: qe}
```
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Literal

import jax
import numpy as np
from pydantic import Field

from riskengine.budget import Estimate
from riskengine.config import EuropeanConfig, MarketConfig, McConfig, ModelConfig, Strict
from riskengine.jobs.base import Job, JobContext, JobResult, Sampling
from riskengine.pricing import price_europeans
from riskengine.references import has_analytic_price, price_and_greeks_program
from riskengine.report import Report
from riskengine.simulate import CHUNKS_IN_FLIGHT, seed_key

if TYPE_CHECKING:
    import pandas as pd


class Config(Strict):
    job: Literal["price"]
    model: ModelConfig
    market: MarketConfig
    instruments: list[EuropeanConfig] = Field(min_length=1)
    mc: McConfig = McConfig()


class PriceJob(Job):
    """European options by Monte Carlo (with AD Greeks), beside their closed forms."""

    name = "price"
    Config = Config
    sampling = Sampling(paths="mc.paths", seed="mc.seed", dtype="mc.dtype")

    def estimate(self, config: Config, context: JobContext) -> Estimate:
        """Paths × time steps (to the longest maturity) of work; memory bounded by the chunks
        in flight."""
        steps = max(1.0, max(i.maturity for i in config.instruments) * config.mc.steps_per_year)
        passes = 4 if config.mc.greeks else 1
        chunk = min(config.mc.paths, config.mc.chunk_paths)
        return Estimate(
            memory_bytes=CHUNKS_IN_FLIGHT * chunk * len(config.instruments) * 8.0 * 16,
            work={"path_steps": float(config.mc.paths) * steps * passes},
            field="mc.paths" if config.mc.paths * 1.0 >= steps else "mc.steps_per_year",
            detail=f"{config.mc.paths:.3g} paths x {steps:.3g} steps",
        )

    def run(self, config: Config, context: JobContext) -> JobResult:
        return _run(config, progress=context.progress)


def _run(config: Config, *, progress=None) -> JobResult:
    started = time.perf_counter()
    model = config.model.build(scheme=config.mc.scheme)
    market = config.market
    instruments = config.instruments
    # The analytic references are traced and compiled (a first run) on a thread while the
    # Monte Carlo chunk is: XLA releases the GIL, and the two programs share nothing.
    with ThreadPoolExecutor(1, thread_name_prefix="riskengine-references") as pool:
        pending = pool.submit(_references, model, market, instruments)
        estimates = _monte_carlo(config, model, progress=progress)
        mc_seconds = time.perf_counter() - started
        references = pending.result()
    rows = []
    for i, inst in enumerate(instruments):
        ref = references[i]
        rows.append({
            "type": inst.type, "option": inst.option, "strike": inst.strike, "maturity": inst.maturity,
            "price": float(estimates.price[i]), "stderr": float(estimates.stderr[i]),
            "reference": ref["price"],
            "delta": float(estimates.delta[i]), "gamma": float(estimates.gamma[i]),
            "vega": float(estimates.vega[i]),
            "delta_stderr": float(estimates.delta_stderr[i]),
            "gamma_stderr": float(estimates.gamma_stderr[i]),
            "vega_stderr": float(estimates.vega_stderr[i]),
            "reference_delta": ref["delta"], "reference_gamma": ref["gamma"], "reference_vega": ref["vega"],
        })
    summary = {
        "job": "price",
        "model": {"name": config.model.name, "params": config.model.params},
        "paths": config.mc.paths,
        "seed": config.mc.seed,
        "dtype": config.mc.dtype,
        "scheme": config.mc.scheme,
        "estimator": config.mc.estimator,
        "instruments": rows,
        "mc_seconds": mc_seconds,
    }
    import pandas as pd  # here: the CLI imports it on a thread while the simulation runs

    table = pd.DataFrame(rows)
    return JobResult(summary=summary, tables={"prices": table},
                     report=lambda summary: _report(config, table, summary))


def _monte_carlo(config: Config, model, *, progress=None):
    market, instruments = config.market, config.instruments
    return price_europeans(
        model,
        key=seed_key(config.mc.seed),
        spot=market.spot,
        rate=market.rate,
        dividend=market.dividend,
        strikes=[i.strike for i in instruments],
        maturities=[i.maturity for i in instruments],
        is_call=[i.is_call for i in instruments],
        num_paths=config.mc.paths,
        steps_per_year=config.mc.steps_per_year,
        dtype=config.mc.dtype,
        estimator=config.mc.estimator,
        greeks=config.mc.greeks,
        block_size=config.mc.block_size,
        chunk_paths=config.mc.chunk_paths,
        progress=progress,
    )


def _references(model, market, instruments) -> list[dict]:
    """Analytic price and Greeks per instrument (None where the model has no closed form)."""
    if not has_analytic_price(model):
        return [dict.fromkeys(("price", "delta", "gamma", "vega")) for _ in instruments]
    with jax.enable_x64(True):
        values = price_and_greeks_program(
            model,
            np.float64(market.spot),
            np.asarray([i.strike for i in instruments], np.float64),
            np.asarray([i.maturity for i in instruments], np.float64),
            np.float64(market.rate),
            np.float64(market.dividend),
            np.asarray([i.is_call for i in instruments]),
        )
        values = {k: np.asarray(v, np.float64) for k, v in values.items()}
    return [{k: float(values[k][i]) for k in values} for i in range(len(instruments))]


def _report(config: Config, table: pd.DataFrame, summary: dict) -> Report:
    report = Report(f"Price job — {config.model.name}")
    report.facts({
        "model": config.model.name,
        "paths": f"{config.mc.paths:,}",
        "dtype": config.mc.dtype,
        "steps per year": f"{config.mc.steps_per_year:g}",
        "seconds": f"{summary['seconds']:.2f}",
    })
    report.paragraph(
        f"Model parameters: {config.model.params}. Market: spot {config.market.spot}, rate "
        f"{config.market.rate}, dividend {config.market.dividend}. Estimator: {config.mc.estimator}; "
        f"scheme: {config.mc.scheme}.",
    )
    shown = table.copy()
    has_ref = shown["reference"].notna()
    shown["z"] = (shown["price"] - shown["reference"]) / shown["stderr"]
    report.heading("Monte Carlo against analytic references")
    report.table(
        shown[["option", "strike", "maturity", "price", "stderr", "reference", "z",
               "delta", "reference_delta", "gamma", "reference_gamma", "vega", "reference_vega"]],
        highlight=has_ref & (shown["z"].abs() > 4),
    )
    report.paragraph(
        "z = (MC - reference) / stderr; rows with |z| > 4 are highlighted. Greeks are derivatives by "
        "automatic differentiation through the simulation; vega is per 1.00 of a parallel shift in "
        "volatility (sqrt(v0) and sqrt(theta) together for stochastic-volatility models).",
        note=True,
    )
    from matplotlib.figure import Figure  # here, not at the top: only the report draws

    fig = Figure(figsize=(11, 4))
    axes = fig.subplots(1, 2)
    for option, marker in (("call", "o"), ("put", "s")):
        part = shown[shown["option"] == option]
        if part.empty:
            continue
        label = [f"K={k:g},T={t:g}" for k, t in zip(part["strike"], part["maturity"], strict=True)]
        x = np.arange(len(part))
        axes[0].errorbar(x, part["price"], yerr=3 * part["stderr"], fmt=marker, capsize=4, label=f"MC {option} ±3 s.e.")
        if part["reference"].notna().any():
            axes[0].plot(x, part["reference"], "x", color="k", markersize=9, label=f"reference {option}")
        axes[0].set_xticks(x, label, rotation=30, ha="right")
        axes[1].errorbar(x, part["delta"], yerr=3 * part["delta_stderr"], fmt=marker, capsize=4, label=f"MC delta {option}")
        if part["reference_delta"].notna().any():
            axes[1].plot(x, part["reference_delta"], "x", color="k", markersize=9, label="reference delta")
        axes[1].set_xticks(x, label, rotation=30, ha="right")
    axes[0].set_title("Price")
    axes[1].set_title("Delta")
    report.figure(fig, alt="Monte Carlo prices and deltas against analytic references", legend_and_grid=True)
    return report
