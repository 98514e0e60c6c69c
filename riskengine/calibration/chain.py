"""Calibration of Black-76, Heston, Bates and SVCJ to Deribit option chains, in coin.

Quotes (from :func:`riskengine.data.read_chain`) are inverse options: the coin price of a
quote is the model price with spot 1, strike ``K/F`` (``F`` the expiry's forward), rate and
dividend 0 (:func:`riskengine.analytic.inverse_price`). The fit is the Levenberg–Marquardt
solve of :mod:`riskengine.calibration.heston` (same transforms, bounds, exact forward-mode
Jacobian, one AOT-compiled program) on those normalised quotes.

Pipeline per snapshot:

1. **Liquidity filter** (:class:`LiquidityFilter`; defaults: time to expiry >= 1/365 year,
   open interest >= 1, relative spread ``(ask - bid)/mid <= 0.5``, ``0.5 <= K/F <= 2``; both
   sides quoted is the reader's rule). Each dropped quote is counted under the first rule it
   fails.
2. **Holdout** (:func:`assign_sets`): a ``set`` column (``train``/``test``) in the input, or
   ``round(fraction * n)`` test quotes drawn with ``numpy.random.default_rng([seed, t])``,
   ``t`` the snapshot's Unix second (the same split whatever else is in the folder). Test
   quotes are never given to the fit: the solver's data and starting points are built from
   train quotes only.
3. **Fit** (:func:`fit_quotes`): residuals ``(P_model - mid) / spread`` in coin
   (``objective="price"``), or ``(vol_model - vol_mid) / spread_vol`` with ``spread_vol`` the
   spread divided by the vega at the mid (``objective="vol"``), plus, when ``temporal_penalty
   = lambda > 0`` and a previous fit exists, the rows ``sqrt(lambda) (z - z_prev)`` on the
   unconstrained parameters ``z`` (the bounded transforms of ``heston``): the objective is
   ``sum_i r_i^2 + lambda |z - z_prev|^2``. Train sets are padded with zero-weight rows to a
   multiple of ``PAD`` quotes, so snapshots of similar size share one compiled solve.

Black-76 is one volatility per snapshot (all expiries). Bates/SVCJ starts include the Heston
fit of the same snapshot with small jumps added, when Heston was fitted first.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from riskengine.analytic import inverse_price
from riskengine.analytic.fourier import DEFAULT_NODES
from riskengine.calibration.heston import (
    SOLVER_PARAMETERS,
    _compiled_solve,
    _Data,
    _kind,
    _resolve_bounds,
    _Static,
    _to_unconstrained,
)
from riskengine.calibration.surface import bs_implied_vol, bs_vega
from riskengine.config import ConfigError

__all__ = [
    "CHAIN_BOUNDS",
    "CHAIN_MODELS",
    "PAD",
    "ChainFit",
    "ChainRun",
    "FITTED_COLUMNS",
    "HISTORY_METRICS",
    "OUTPUT_NODES",
    "LiquidityFilter",
    "assign_sets",
    "calibrate_snapshots",
    "chain_bounds",
    "chain_prices",
    "fit_quotes",
    "fit_summary",
    "liquid_quotes",
    "starting_points",
]

CHAIN_MODELS = ("black", "heston", "bates", "svcj")
PAD = 64
DEFAULT_CHAIN_NODES = 32
# Nodes of the prices written to the outputs (fitted table, RMSE, inside share): 256 agree
# with the 1024-node default to 3e-15 coin at the fitted parameters of the 236-snapshot
# BTC history (every 10th snapshot, benchmarks/deribit_history.py) at a quarter of the time.
OUTPUT_NODES = 256
# Chain fits' bounds where they differ from heston.DEFAULT_BOUNDS (a config's fit.bounds
# still overrides them). SVCJ on the BTC history presses against the surface defaults
# (kappa 25, sigma 6, vol_jump_mean 0.9): wider boxes lower its train objective over the 236
# snapshots by 17% (benchmarks/RESULTS.md, session 9). jump_corr <= 0.3 keeps
# jump_corr * vol_jump_mean < 1 (E[exp(J_S)] finite).
CHAIN_BOUNDS: dict[str, dict[str, tuple[float, float | None]]] = {
    "svcj": {"kappa": (1e-3, 60.0), "sigma": (1e-2, 15.0), "vol_jump_mean": (1e-4, 3.0),
             "jump_corr": (-1.0, 0.3)},
}


def chain_bounds(model: str, bounds: Mapping[str, Sequence[float | None]] | None = None
                 ) -> dict[str, tuple[float, float | None]]:
    """The box of each parameter in a chain fit: ``bounds`` (a config's ``fit.bounds``), else
    ``CHAIN_BOUNDS``, else ``heston.DEFAULT_BOUNDS``."""
    return _resolve_bounds(model, {**CHAIN_BOUNDS.get(model, {}), **(bounds or {})})


@dataclasses.dataclass(frozen=True)
class LiquidityFilter:
    """Which quotes a chain fit uses (both sides quoted is the reader's rule)."""

    min_maturity: float = 1.0 / 365.0  # years
    min_open_interest: float = 1.0
    max_relative_spread: float = 0.5  # (ask - bid) / mid
    min_moneyness: float = 0.5  # K / F
    max_moneyness: float = 2.0


def liquid_quotes(quotes: pd.DataFrame, rules: LiquidityFilter = LiquidityFilter()
                  ) -> tuple[pd.DataFrame, dict[str, int]]:
    """The quotes passing ``rules`` and the number dropped by each rule (the first failed)."""
    moneyness = (quotes["strike"] / quotes["forward"]).to_numpy()
    checks = {
        "short_maturity": quotes["maturity"].to_numpy() < rules.min_maturity,
        "low_open_interest": ~(quotes["open_interest"].to_numpy() >= rules.min_open_interest),
        "wide_spread": (quotes["spread"] / quotes["mid"]).to_numpy() > rules.max_relative_spread,
        "moneyness": (moneyness < rules.min_moneyness) | (moneyness > rules.max_moneyness),
    }
    gone = np.zeros(len(quotes), bool)
    counts = {}
    for name, fails in checks.items():
        counts[name] = int(np.sum(fails & ~gone))
        gone |= fails
    return quotes[~gone].reset_index(drop=True), counts


def assign_sets(quotes: pd.DataFrame, *, fraction: float, seed: int) -> np.ndarray:
    """``"train"``/``"test"`` per quote: the input's ``set`` column if there is one, else
    ``round(fraction * n)`` test quotes drawn with ``default_rng([seed, unix second])``."""
    if "set" in quotes.columns:
        return quotes["set"].to_numpy(dtype=object)
    n = len(quotes)
    labels = np.full(n, "train", dtype=object)
    if n == 0 or fraction <= 0:
        return labels
    stamp = int(pd.Timestamp(quotes["timestamp"].iloc[0]).timestamp())
    rng = np.random.default_rng([int(seed), stamp])
    labels[rng.permutation(n)[: int(round(fraction * n))]] = "test"
    return labels


def chain_prices(quotes: pd.DataFrame, model: str, params: Mapping[str, float], *,
                 num_nodes: int = DEFAULT_NODES) -> np.ndarray:
    """Coin prices of ``quotes`` under ``model`` (float64)."""
    n = len(quotes)
    size = PAD * max(math.ceil(n / PAD), 1)  # few distinct shapes: few compilations
    with jax.enable_x64(True):
        price = inverse_price(
            model, {k: jnp.float64(v) for k, v in params.items()},
            forward=_padded(quotes["forward"].to_numpy(np.float64), size, 1.0),
            strike=_padded(quotes["strike"].to_numpy(np.float64), size, 1.0),
            maturity=_padded(quotes["maturity"].to_numpy(np.float64), size, 0.1),
            is_call=_padded(quotes["is_call"].to_numpy(bool), size, True), num_nodes=num_nodes)
        return np.asarray(price, np.float64)[:n]


def _atm_vols(quotes: pd.DataFrame) -> tuple[float, float]:
    """Mark IV nearest the money on the first and the last expiry."""
    k = np.abs(np.log(quotes["strike"] / quotes["forward"]))
    by_expiry = quotes.assign(k=k).sort_values(["maturity", "k"])
    first = by_expiry.groupby("maturity", sort=True)["mark_iv"].first()
    vols = first.to_numpy()
    vols = vols[np.isfinite(vols) & (vols > 0)]
    if vols.size == 0:
        return 0.6, 0.6
    return float(vols[0]), float(vols[-1])


_HESTON_GRID = ((2.0, 2.0, -0.1), (5.0, 3.0, 0.1), (1.0, 1.5, -0.4))
_JUMPS = {"bates": {"jump_intensity": 0.5, "jump_mean": -0.05, "jump_vol": 0.15},
          "svcj": {"jump_intensity": 0.5, "jump_mean": -0.05, "jump_vol": 0.15,
                   "vol_jump_mean": 0.05, "jump_corr": -0.2}}


def starting_points(model: str, train: pd.DataFrame, *, starts: int = 3,
                    heston: Mapping[str, float] | None = None) -> list[dict[str, float]]:
    """Cold starts from the train quotes' at-the-money mark IVs (and from ``heston``, a Heston
    fit of the same quotes, plus small jumps, for Bates and SVCJ)."""
    short, long = _atm_vols(train)
    if model == "black":
        return [{"sigma": 0.5 * (short + long)}]
    points = []
    if heston is not None and model in _JUMPS:
        points.append({**heston, **_JUMPS[model]})
    for kappa, ratio, rho in _HESTON_GRID[: max(starts - len(points), 0)]:
        p = {"v0": short**2, "kappa": kappa, "theta": long**2, "sigma": ratio * long, "rho": rho}
        if model in _JUMPS:
            p.update(_JUMPS[model])
        points.append(p)
    return points


@dataclasses.dataclass
class ChainFit:
    """One model fitted to one snapshot's train quotes."""

    model: str
    params: dict[str, float]
    converged: bool
    objective: float  # sum of squared residuals (penalty rows included)
    data_objective: float  # the quote rows only: sum ((P - mid) / spread)^2
    steps: int
    seconds: float  # the solve(s), compilation excluded
    compile_seconds: float
    starts: int
    z: np.ndarray  # unconstrained parameters (the temporal penalty's anchor for the next fit)


def _padded(values: np.ndarray, size: int, fill: float) -> np.ndarray:
    out = np.full(size, fill, dtype=values.dtype)
    out[: values.size] = values
    return out


def _interior(value: float, lower: float, upper: float | None) -> float:
    if upper is None:
        return max(value, lower + max(abs(lower) * 0.02, 1e-3))
    gap = (upper - lower) * 0.02
    return min(max(value, lower + gap), upper - gap)


def fit_quotes(
    train: pd.DataFrame,
    model: Literal["black", "heston", "bates", "svcj"],
    *,
    starts: Sequence[Mapping[str, float]],
    objective: Literal["price", "vol"] = "price",
    anchor: np.ndarray | None = None,
    temporal_penalty: float = 0.0,
    bounds: Mapping[str, Sequence[float | None]] | None = None,
    num_nodes: int = DEFAULT_CHAIN_NODES,
    max_steps: int = 100,
    rtol: float = 1e-4,
    atol: float = 1e-4,
) -> ChainFit:
    """Fit ``model`` to the ``train`` quotes from each of ``starts``; the best objective wins.

    ``anchor``: the previous fit's unconstrained parameters, penalised with weight
    ``temporal_penalty`` (ignored when None or 0). ``rtol``/``atol``: LM's stopping rule on
    the relative/absolute change of the parameters and of the objective (1e-4: the coin
    RMSE moves by less than 1e-6 of itself when tightened to 1e-6 on the real chains, at
    a third of the steps).
    """
    if model not in CHAIN_MODELS:
        raise ConfigError(f"models: {model!r} is not one of {list(CHAIN_MODELS)}")
    names = SOLVER_PARAMETERS[model]
    if len(train) < len(names):
        raise ConfigError(f"{len(train)} train quote(s) for the {len(names)} parameters of "
                          f"{model}; need at least {len(names)} (loosen the filter?)")
    bounds = chain_bounds(model, bounds)
    kinds = tuple(_kind(*bounds[n]) for n in names)
    lower = np.asarray([bounds[n][0] for n in names], np.float64)
    upper = np.asarray([np.inf if bounds[n][1] is None else bounds[n][1] for n in names])

    n = len(train)
    size = PAD * math.ceil(n / PAD)
    moneyness = (train["strike"] / train["forward"]).to_numpy(np.float64)
    maturity = train["maturity"].to_numpy(np.float64)
    is_call = train["is_call"].to_numpy(bool)
    mid = train["mid"].to_numpy(np.float64)
    spread = train["spread"].to_numpy(np.float64)
    ones = np.ones(n)
    vol = bs_implied_vol(price=mid, spot=ones, strike=moneyness, maturity=maturity, rate=0.0,
                         dividend=0.0, is_call=is_call)
    vol = np.where(np.isfinite(vol), vol, train["mark_iv"].to_numpy(np.float64))
    vega = bs_vega(spot=ones, strike=moneyness, maturity=maturity, rate=0.0, dividend=0.0, vol=vol)
    vega = np.maximum(vega, 1e-12)
    weight = 1.0 / spread if objective == "price" else vega / spread
    penalty = float(temporal_penalty) if anchor is not None else 0.0

    started = time.perf_counter()
    with jax.enable_x64(True):
        f = functools.partial(jnp.asarray, dtype=jnp.float64)
        data = _Data(
            spot=f(np.ones(size)), rate=f(np.zeros(size)), dividend=f(np.zeros(size)),
            maturity=f(_padded(maturity, size, 0.1)), strike=f(_padded(moneyness, size, 1.0)),
            is_call=jnp.asarray(_padded(is_call, size, True)),
            market_vol=f(_padded(vol, size, 0.5)), market_price=f(_padded(mid, size, 0.05)),
            market_vega=f(_padded(vega, size, 0.1)), weight=f(_padded(weight, size, 0.0)),
            lower=f(lower), upper=f(upper), feller_weight=f(0.0),
            vol_objective=jnp.asarray(objective == "vol"),
            anchor=f(anchor if anchor is not None else np.zeros(len(names))),
            anchor_weight=f(math.sqrt(max(penalty, 0.0))),
        )
        static = _Static(model, num_nodes, kinds, max_steps, rtol, atol,
                         price_only=objective == "price")
        zs = []
        for point in starts:
            p = np.asarray([_interior(float(point[k]), *bounds[k]) for k in names])
            zs.append(_to_unconstrained(p, lower, upper, kinds))
        compiled, compile_seconds = _compiled_solve(static, jnp.asarray(zs[0]), data)
        solve_started = time.perf_counter()
        outs = []
        for z0 in zs:
            out = jax.tree.map(np.asarray, compiled(jnp.asarray(z0), data))
            out["objective"] = float(np.sum(out["residuals"] ** 2))
            outs.append(out)
        seconds = time.perf_counter() - solve_started
    finite = [o for o in outs if math.isfinite(o["objective"])]
    if not finite:
        raise ConfigError(f"every start of the {model} fit gave a non-finite objective")
    best = min(finite, key=lambda o: o["objective"])
    del started
    return ChainFit(
        model=model, params={k: float(v) for k, v in zip(names, best["params"], strict=True)},
        converged=bool(best["successful"]) and bool(np.all(np.isfinite(best["residuals"]))),
        objective=best["objective"], data_objective=float(np.sum(best["residuals"][:n] ** 2)),
        steps=int(best["steps"]), seconds=seconds,
        compile_seconds=compile_seconds, starts=len(zs), z=np.asarray(best["z"]),
    )


def fit_summary(frame: pd.DataFrame, model: str) -> dict[str, Any]:
    """RMSE/MAE in coin, share inside the bid–ask and count of ``frame``'s quotes."""
    error = frame[f"price_{model}"].to_numpy() - frame["mid"].to_numpy()
    n = int(error.size)
    if n == 0:
        return {"rmse": None, "mae": None, "inside": None, "quotes": 0}
    return {"rmse": float(np.sqrt(np.mean(error**2))), "mae": float(np.mean(np.abs(error))),
            "inside": float(np.mean(frame[f"inside_{model}"].to_numpy())), "quotes": n}


@dataclasses.dataclass
class ChainRun:
    """Every snapshot's fits: the per-quote table, the parameter history and the pooled
    summary (see :func:`calibrate_snapshots`)."""

    fitted: pd.DataFrame
    history: pd.DataFrame
    summary: dict[str, dict[str, Any]]  # model -> {"train": ..., "test": ..., "seconds", ...}
    snapshots: list[dict[str, Any]]  # per file: timestamp, rows, dropped, quotes
    last_params: dict[str, dict[str, float]]
    compile_seconds: float


FITTED_COLUMNS = ("timestamp", "instrument_name", "currency", "expiry", "strike", "option",
                  "forward", "set", "bid", "ask", "mid")
HISTORY_METRICS = ("rmse_train", "rmse_test", "mae_train", "mae_test", "inside_train",
                   "inside_test", "quotes_train", "quotes_test", "seconds", "converged")


def _snapshot_quotes(chain, rules: LiquidityFilter, fraction: float, seed: int):
    quotes, filtered = liquid_quotes(chain.quotes, rules)
    quotes = quotes.assign(set=assign_sets(quotes, fraction=fraction, seed=seed))
    dropped = {**chain.dropped, **filtered}
    return quotes, dropped


def calibrate_snapshots(
    chains: Sequence[Any],
    *,
    models: Sequence[str],
    rules: LiquidityFilter = LiquidityFilter(),
    fraction: float = 0.2,
    seed: int = 0,
    temporal_penalty: float = 0.0,
    objective: Literal["price", "vol"] = "price",
    starts: int = 3,
    bounds: Mapping[str, Mapping[str, Sequence[float | None]]] | None = None,
    num_nodes: int = DEFAULT_CHAIN_NODES,
    max_steps: int = 100,
    progress=None,
) -> ChainRun:
    """Fit ``models`` to each chain in order (``chains``: :class:`~riskengine.data.Chain`
    objects, or a callable per item returning one, e.g. a lazy reader).

    The first snapshot gets cold starts (:func:`starting_points`); each later one starts from
    the previous snapshot's fit of the same model (warm start) and, with
    ``temporal_penalty > 0``, is penalised for moving away from it. A Bates/SVCJ warm fit
    whose quote objective is above that snapshot's Heston fit (which it nests) is refitted
    from the Heston parameters plus small jumps, and the better of the two kept. A warm start whose
    objective is not finite falls back to the cold starts. A fit that stops at ``max_steps``
    without meeting LM's criterion is continued once from where it stopped (same anchor), and
    the better of the two kept. Test quotes are priced with the
    fitted parameters and never enter the fit. ``progress(done, total)`` is called after each
    fit. Model prices in the outputs use ``OUTPUT_NODES`` (256) quadrature nodes.
    """
    models = list(models)
    for m in models:
        if m not in CHAIN_MODELS:
            raise ConfigError(f"models: {m!r} is not one of {list(CHAIN_MODELS)}")
    order = sorted(models, key=lambda m: m != "heston")  # Heston first: it seeds Bates/SVCJ
    bounds = dict(bounds or {})
    total = len(chains) * len(models)
    done = 0
    previous: dict[str, ChainFit] = {}
    frames, rows, snapshots = [], [], []
    compile_seconds = 0.0
    for item in chains:
        chain = item() if callable(item) else item
        quotes, dropped = _snapshot_quotes(chain, rules, fraction, seed)
        train_mask = (quotes["set"] == "train").to_numpy()
        train = quotes[train_mask]
        snapshots.append({"source": chain.source, "timestamp": str(chain.timestamp),
                          "rows": chain.rows, "dropped": dropped,
                          "set_column": "set" in chain.quotes.columns,
                          "quotes_train": int(train_mask.sum()),
                          "quotes_test": int((~train_mask).sum())})
        table = quotes[list(FITTED_COLUMNS)].copy()
        heston_params = heston_fit = None
        for m in order:
            kwargs = dict(objective=objective, bounds=bounds.get(m), num_nodes=num_nodes,
                          max_steps=max_steps)
            fit = None
            anchored = {}
            if m in previous:
                anchored = dict(anchor=previous[m].z, temporal_penalty=temporal_penalty)
                fit = fit_quotes(train, m, starts=[previous[m].params], **anchored, **kwargs)
                if not math.isfinite(fit.objective):
                    fit, anchored = None, {}
            if (fit is not None and heston_fit is not None and m in _JUMPS
                    and fit.data_objective > heston_fit.data_objective):
                # The jump model nests Heston: fitting worse than this snapshot's Heston means
                # the warm start is stuck; restart from the Heston fit plus small jumps.
                again = fit_quotes(train, m, starts=starting_points(m, train, starts=1,
                                                                    heston=heston_fit.params),
                                   anchor=previous[m].z, temporal_penalty=temporal_penalty,
                                   **kwargs)
                again.seconds += fit.seconds
                fit = again if again.objective < fit.objective else dataclasses.replace(
                    fit, seconds=again.seconds)
            if fit is None:
                fit = fit_quotes(train, m, starts=starting_points(m, train, starts=starts,
                                                                  heston=heston_params),
                                 **kwargs)
            if not fit.converged and math.isfinite(fit.objective):
                # LM ran out of steps still moving (a narrow valley, parameters near a
                # bound): continue once from where it stopped, with fresh damping.
                more = fit_quotes(train, m, starts=[fit.params], **anchored, **kwargs)
                more.seconds += fit.seconds
                more.compile_seconds += fit.compile_seconds
                fit = more if more.objective < fit.objective else dataclasses.replace(
                    fit, seconds=more.seconds, compile_seconds=more.compile_seconds)
            compile_seconds += fit.compile_seconds
            previous[m] = fit
            if m == "heston":
                heston_params, heston_fit = fit.params, fit
            price = chain_prices(quotes, m, fit.params, num_nodes=OUTPUT_NODES)
            table[f"price_{m}"] = price
            table[f"inside_{m}"] = (price >= quotes["bid"].to_numpy()) & (
                price <= quotes["ask"].to_numpy())
            row = {"timestamp": chain.timestamp, "model": m, **fit.params}
            for label in ("train", "test"):
                stats = fit_summary(table[table["set"] == label], m)
                row.update({f"rmse_{label}": stats["rmse"], f"mae_{label}": stats["mae"],
                            f"inside_{label}": stats["inside"], f"quotes_{label}": stats["quotes"]})
            row.update(seconds=fit.seconds, converged=fit.converged, steps=fit.steps,
                       objective=fit.objective, quote_objective=fit.data_objective)
            rows.append(row)
            done += 1
            if progress is not None:
                progress(done, total)
        frames.append(table[[*FITTED_COLUMNS, *(c for m in models for c in (f"price_{m}", f"inside_{m}"))]])
    fitted = pd.concat(frames, ignore_index=True)
    history = pd.DataFrame(rows)
    param_columns = [p for m in CHAIN_MODELS if m in models for p in SOLVER_PARAMETERS[m]]
    param_columns = list(dict.fromkeys(param_columns))
    history = history[["timestamp", "model", *param_columns, *HISTORY_METRICS, "steps", "objective",
                       "quote_objective"]]
    summary = {}
    for m in models:
        mine = history[history["model"] == m]
        summary[m] = {
            label: fit_summary(fitted[fitted["set"] == label], m) for label in ("train", "test")}
        summary[m].update(seconds=float(mine["seconds"].sum()),
                          converged=int(mine["converged"].sum()), fits=len(mine),
                          seconds_per_snapshot=float(mine["seconds"].mean()))
    last = {m: previous[m].params for m in models}
    return ChainRun(fitted=fitted, history=history, summary=summary, snapshots=snapshots,
                    last_params=last, compile_seconds=compile_seconds)
