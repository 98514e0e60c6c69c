"""The book revalued on simulated paths at each risk horizon: per-path P&L (book and per
underlying), Euler contributions of every position to VaR and ES, and VaR under a shocked
correlation.

Paths are simulated with zero drift (risk horizons are days); options are revalued
sticky-strike on the shocked forward, with the implied vol moved on each path by the
model's change in instantaneous vol (see :func:`vol_adjustment`). Only per-path vectors are
kept: the per-position P&L is reduced block by block (:func:`riskengine.simulate.stream_blocks`:
split over local devices and ``jax.distributed`` processes, saved for ``--resume``).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jaxtyping import Array, Float

from riskengine import risk
from riskengine.book import (
    Book,
    MarketState,
    base_state,
    coin_collateral,
    collateral_values,
    position_values,
)
from riskengine.market import DAYS_PER_YEAR, MarketSnapshot
from riskengine.models import CorrelatedAssets
from riskengine.scenarios import Scenario
from riskengine.simulate import block_runner, stream_blocks, time_grid

__all__ = ["PathRevaluation", "kernel_weights", "vol_adjustment"]


def vol_adjustment(model, variance: Float[Array, " paths"], tau: Float[Array, " positions"]) -> Float[Array, "paths positions"]:
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


def kernel_weights(pnl: Float[np.ndarray, " paths"], at: float) -> Float[np.ndarray, " paths"]:
    """Gaussian kernel weights around the P&L ``at`` (the VaR scenario; Silverman bandwidth,
    :func:`riskengine.risk.default_bandwidth`), summing to 1."""
    bandwidth = risk.default_bandwidth(pnl)
    k = np.exp(-0.5 * ((pnl - at) / bandwidth) ** 2)
    return k / k.sum()


class PathRevaluation:
    """The book revalued on simulated paths at each horizon (days).

    ``assets``: the correlated models of the book's underlyings (in ``book.underlyings``
    order); ``value0``: every position's value today (collateral included, USD); ``dtype``
    the simulation's float type; ``paths`` and ``seed`` the sample; ``steps_per_day``,
    ``block_size`` and ``chunk_paths`` the time grid and how the paths are cut. Set
    ``devices`` to split the blocks over that many local devices (None: all)."""

    def __init__(self, book: Book, market: MarketSnapshot, assets: CorrelatedAssets, *,
                 horizons_days: Sequence[int], value0: Float[np.ndarray, " positions"], paths: int, seed: int,
                 dtype=jnp.float32, steps_per_day: int = 1, block_size: int = 1024, chunk_paths: int = 65536):
        self.book, self.market, self.assets, self.dtype = book, market, assets, dtype
        self.horizons_days, self.paths, self.block_size = list(horizons_days), paths, block_size
        self.value0 = value0
        horizons = np.asarray(self.horizons_days, np.float64)
        self.grid = time_grid(horizons / DAYS_PER_YEAR, steps_per_year=DAYS_PER_YEAR * steps_per_day)
        self.states = [base_state(book, market, elapsed_days=float(h)) for h in horizons]
        # bounded memory: about 2^24 numbers of [paths, horizons, positions] per chunk
        per_chunk = max(block_size, (1 << 24) // max(book.num_positions * len(horizons), 1))
        self.chunk_paths = min(chunk_paths, per_chunk)
        self.run = block_runner(self.grid, block_size=block_size, dtype=dtype, record=("log_return", "variance"))
        self.key = jax.random.key(seed)
        self.devices: int | None = None  # local devices the blocks are split over (None: all)
        self._block_fn = lambda block_key, args: self._position_pnl(block_key, args).transpose(1, 0, 2)
        self.collateral_units, self.collateral_underlying = coin_collateral(book)
        self.pnl_by_underlying: np.ndarray | None = None

    def _args(self, assets):
        dtype = self.dtype
        uidx = self.book.underlying_index
        tau = [jnp.asarray(self.book.column("expiry_years") - h / DAYS_PER_YEAR, dtype) for h in self.horizons_days]
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
        for j, h in enumerate(self.horizons_days):
            spot = args["spot0"] * jnp.exp(obs.log_return[j])  # [block, U]
            adjust = jnp.stack(
                [vol_adjustment(m, obs.variance[j][:, i], args["tau"][j]) for i, m in enumerate(args["assets"].models)],
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

    def _stream_blocks(self, assets, reducer, *, name: str, progress=None):
        """Per-block reductions of the per-path, per-position P&L (see ``stream_blocks``)."""
        yield from stream_blocks(
            self._block_fn, self._args(assets), key=self.key, num_paths=self.paths, reducer=reducer,
            block_size=self.block_size, chunk_paths=self.chunk_paths, devices=self.devices,
            progress=progress, name=name,
        )

    def total_pnl(self, progress=None, assets: CorrelatedAssets | None = None) -> Float[np.ndarray, "paths horizons"]:
        """Book P&L ``[paths, horizons]`` (float64): only this per-path vector is kept. With
        the revaluation's own ``assets`` (the default) the P&L per underlying is kept too, as
        ``pnl_by_underlying`` ``[paths, horizons, underlyings]`` (positions grouped by
        underlying, collateral included)."""

        groups = np.eye(len(self.book.underlyings))[self.book.underlying_index]  # [positions, U]

        def book_pnl(first_block, values):  # [blocks, block, horizons, P] -> [blocks, block, horizons, 1 + U]
            values = values.astype(np.float64)
            return np.concatenate([values.sum(axis=-1, keepdims=True), values @ groups], axis=-1)

        parts = [v for _, v in self._stream_blocks(assets or self.assets, book_pnl, name="pnl", progress=progress)]
        pnl = np.concatenate(parts, axis=0)
        pnl = pnl.reshape(-1, *pnl.shape[-2:])[: self.paths]
        if assets is None:
            self.pnl_by_underlying = pnl[..., 1:]
        return pnl[..., 0]

    def pnl_table(self, pnl: Float[np.ndarray, "paths horizons"]) -> pd.DataFrame:
        """One row per path: the book P&L ``pnl_<h>d`` (this revaluation's :meth:`total_pnl`)
        and per underlying ``pnl_<h>d_<underlying>`` (what the allocate job reads)."""
        columns = {f"pnl_{h}d": pnl[:, j] for j, h in enumerate(self.horizons_days)}
        for j, h in enumerate(self.horizons_days):
            for u, name in enumerate(self.book.underlyings):
                columns[f"pnl_{h}d_{name}"] = self.pnl_by_underlying[:, j, u]
        return pd.DataFrame(columns)

    def contributions(self, pnl: Float[np.ndarray, "paths horizons"], *, var_levels: Sequence[float],
                      es_levels: Sequence[float]) -> dict:
        """Euler contributions of every position to each ES and VaR of ``pnl`` (this
        revaluation's :meth:`total_pnl`), summing to the totals: ``{"<h>d": {"es_<level>" |
        "var_<level>": {"total", "by_position", "by_underlying"}}}``.

        A second pass over the same paths: ``sum_p w[p] * pnl[p, position]`` with the tail
        weights of ES (the same atoms as the total) or kernel weights around the VaR
        scenario, accumulated block by block in path order."""
        weights, labels = [], []
        for j, h in enumerate(self.horizons_days):
            for a in es_levels:
                weights.append(risk.tail_weights(pnl[:, j], level=a) / (1.0 - a))
                labels.append((f"{h}d", f"es_{risk.level_key(a)}", j, float(risk.expected_shortfall(pnl[:, j], level=a))))
            for a in var_levels:
                v = float(risk.value_at_risk(pnl[:, j], level=a))
                weights.append(kernel_weights(pnl[:, j], -v))
                labels.append((f"{h}d", f"var_{risk.level_key(a)}", j, v))
        w = np.stack(weights, axis=-1)  # [paths, measures]
        horizon_of = np.asarray([lab[2] for lab in labels])
        sums = np.zeros((len(labels), self.book.num_positions))
        block, paths = self.block_size, self.paths

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

    def stressed_var(self, scenario: Scenario, *, levels: Sequence[float]) -> dict[str, dict[str, float]]:
        """Monte Carlo VaR ``{"<h>d": {level: VaR}}`` with the scenario's correlation shock
        (the same paths' shocks, the same code)."""
        shocked = self.market.shocked(scenario)
        names = list(self.book.underlyings)
        assets = CorrelatedAssets.from_correlation(self.assets.models, shocked.correlation_matrix(names), names=names)
        pnl = self.total_pnl(assets=assets)
        return {f"{h}d": risk.var_and_es_by_level(pnl[:, j], var_levels=levels)["var"]
                for j, h in enumerate(self.horizons_days)}
