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

import jax.numpy as jnp
import numpy as np
import pandas as pd
from jaxtyping import Array, Float

from riskengine import risk
from riskengine.accounts import AccountMarket, Accounts, account_market, liquidation_moves
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
from riskengine.revaluation.liquidation import (
    PathLiquidation,
    liquidate_along_paths,
    liquidation_summary,
)
from riskengine.scenarios import Scenario
from riskengine.simulate import TimeGrid, block_runner, seed_key, stream_blocks, time_grid

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
                 dtype=jnp.float32, steps_per_day: int = 1, block_size: int = 1024, chunk_paths: int = 65536,
                 accounts: Accounts | None = None, bridge: bool = False):
        self.book, self.market, self.assets, self.dtype = book, market, assets, dtype
        self.horizons_days, self.paths, self.block_size = list(horizons_days), paths, block_size
        self.value0 = value0
        horizons = np.asarray(self.horizons_days, np.float64)
        self.grid = time_grid(horizons / DAYS_PER_YEAR, steps_per_year=DAYS_PER_YEAR * steps_per_day)
        self.steps_per_day = steps_per_day
        self.step_end_days = np.cumsum(self.grid.dt) * DAYS_PER_YEAR  # [steps] days since the snapshot
        self.states = [base_state(book, market, elapsed_days=float(h)) for h in horizons]
        # Path-wise liquidation: the accounts are followed at every step (all steps recorded).
        self.accounts = accounts if accounts is not None and accounts.num_members > 0 else None
        self.bridge = bool(bridge) and self.accounts is not None
        record = ("log_return", "variance") + (("cond_std",) if self.bridge else ())
        grid, self.along, self.barriers = self.grid, None, None
        if self.accounts is not None:
            grid = TimeGrid(times=np.cumsum(self.grid.dt), dt=self.grid.dt, observe=np.arange(self.grid.num_steps, dtype=np.int32))
            self.horizon_steps = [int(np.flatnonzero(self.grid.observe == self.grid.index(h / DAYS_PER_YEAR))[0])
                                  for h in horizons]
            spot0 = np.asarray([market.underlyings[u].spot for u in book.underlyings])
            self.along = liquidation_moves(self.accounts, spot=spot0, market=account_market(self.accounts, market),
                                           along="underlying")
            main = spot0[self.accounts.underlying]
            self.barriers = (main * (1.0 + self.along[0]), main * (1.0 + self.along[1]))  # spot of the main underlying
        positions, accounts_n = book.num_positions, (0 if self.accounts is None else self.accounts.num_accounts)
        self.width = positions if self.accounts is None else 2 * positions + 2 * accounts_n
        # bounded memory: about 2^24 numbers of [paths, horizons, width] per chunk
        per_chunk = max(block_size, (1 << 24) // max(self.width * len(horizons), 1))
        self.chunk_paths = min(chunk_paths, per_chunk)
        self.run = block_runner(grid, block_size=block_size, dtype=dtype, record=record)
        self.key = seed_key(seed)
        self.devices: int | None = None  # local devices the blocks are split over (None: all)
        self._block_fn = lambda block_key, args: self._position_pnl(block_key, args).transpose(1, 0, 2)
        self.collateral_units, self.collateral_underlying = coin_collateral(book)
        self.pnl_by_underlying: np.ndarray | None = None
        self.held_pnl: np.ndarray | None = None  # [paths, horizons]: positions held to the horizon
        self.liquidation_stats: dict[str, np.ndarray] | None = None

    def _split(self, values):
        """``(pnl, held, liquidated, time)`` of a block output ``[..., width]``: the P&L per
        position with liquidations, held to the horizon, and per account the liquidated flag
        and time (days); the last three None without path-wise liquidation."""
        p = self.book.num_positions
        if self.accounts is None:
            return values, None, None, None
        a = self.accounts.num_accounts
        return values[..., :p], values[..., p:2 * p], values[..., 2 * p:2 * p + a], values[..., 2 * p + a:]

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
        } | ({} if self.accounts is None else {
            "account_market": AccountMarket(*(jnp.asarray(x, dtype) for x in account_market(self.accounts, self.market))),
            "elapsed_days": jnp.asarray(self.step_end_days, dtype),
            "step_days": jnp.asarray(self.grid.dt * DAYS_PER_YEAR, dtype),
        })

    def _position_pnl(self, block_key, args):
        """[horizons, block, width]: the P&L of every position (collateral included); with
        path-wise liquidation also held to the horizon, and each account's liquidated flag
        and liquidation time (see :meth:`_split`)."""
        book, dtype = self.book, self.dtype
        obs = self.run(args["assets"], block_key, jnp.zeros(self.assets.num_assets, dtype))
        log_return, variance = obs.log_return, obs.variance
        if self.accounts is not None:  # every step recorded: the horizons' rows
            log_return, variance = log_return[np.asarray(self.horizon_steps)], variance[np.asarray(self.horizon_steps)]
            liquidation = liquidate_along_paths(
                self.accounts, spot=args["spot0"] * jnp.exp(obs.log_return), spot0=args["spot0"],
                elapsed_days=args["elapsed_days"], step_days=args["step_days"], market=args["account_market"],
                cond_std=obs.cond_std if self.bridge else None, barriers=self.barriers if self.bridge else None,
                key=block_key, dtype=dtype)
        out = []
        for j, h in enumerate(self.horizons_days):
            spot = args["spot0"] * jnp.exp(log_return[j])  # [block, U]
            adjust = jnp.stack(
                [vol_adjustment(m, variance[j][:, i], args["tau"][j]) for i, m in enumerate(args["assets"].models)],
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
            row_value = values + collateral_change + jnp.asarray(collateral_values(book, self.market), dtype)
            held = row_value - args["value0"]
            if self.accounts is None:
                out.append(held)
                continue
            out.append(self._with_liquidation(held, row_value, collateral_change, liquidation, float(h), args))
        return jnp.stack(out)

    def _with_liquidation(self, held, row_value, collateral_change, liquidation: PathLiquidation, h: float, args):
        """``[block, width]`` at horizon ``h``: the P&L with liquidations, held, flags, times."""
        a, dtype = self.accounts, self.dtype
        liquidated = liquidation.time_days <= h * (1.0 + 1e-6)  # [block, accounts]
        rows = a.member_row
        own = collateral_change + jnp.asarray(collateral_values(self.book, self.market), dtype)  # [block, P]
        closed = jnp.where(a.member_isolated, liquidation.frozen, liquidation.frozen + own[:, rows])
        member = jnp.where(liquidated[:, a.member_account], closed, row_value[:, rows])
        pnl = row_value.at[:, rows].set(member) - args["value0"]
        return jnp.concatenate([pnl, held, liquidated.astype(dtype), liquidation.time_days], axis=-1)

    def _stream_blocks(self, assets, reducer, *, name: str, progress=None):
        """Per-block reductions of the per-path, per-position P&L (see ``stream_blocks``)."""
        yield from stream_blocks(
            self._block_fn, self._args(assets), key=self.key, num_paths=self.paths, reducer=reducer,
            block_size=self.block_size, chunk_paths=self.chunk_paths, devices=self.devices,
            progress=progress, name=name,
        )

    def total_pnl(self, progress=None, assets: CorrelatedAssets | None = None) -> Float[np.ndarray, "paths horizons"]:
        """Book P&L ``[paths, horizons]`` (float64; with path-wise liquidation when the
        revaluation follows accounts): only per-path vectors are kept. With the
        revaluation's own ``assets`` (the default) it also keeps ``pnl_by_underlying``
        ``[paths, horizons, underlyings]`` (positions grouped by underlying, collateral
        included), ``held_pnl`` ``[paths, horizons]`` (every position held to the horizon)
        and ``liquidation_stats`` (sums over paths, see :meth:`_liquidation_sums`)."""

        groups = np.eye(len(self.book.underlyings))[self.book.underlying_index]  # [positions, U]

        def book_pnl(first_block, values):  # [blocks, block, horizons, width]
            pnl, held, liquidated, time = self._split(values)
            pnl = pnl.astype(np.float64)
            held_total = pnl.sum(axis=-1, keepdims=True) if held is None else held.astype(np.float64).sum(axis=-1, keepdims=True)
            per_path = np.concatenate([pnl.sum(axis=-1, keepdims=True), pnl @ groups, held_total], axis=-1)
            if held is None:
                return per_path
            return per_path, self._liquidation_sums(first_block, pnl, liquidated, time)

        parts = [v for _, v in self._stream_blocks(assets or self.assets, book_pnl, name="pnl", progress=progress)]
        if self.accounts is not None:
            sums = [p[1] for p in parts]
            parts = [p[0] for p in parts]
        pnl = np.concatenate(parts, axis=0)
        pnl = pnl.reshape(-1, *pnl.shape[-2:])[: self.paths]
        if assets is None:
            self.pnl_by_underlying = pnl[..., 1:-1]
            self.held_pnl = pnl[..., -1]
            if self.accounts is not None:
                self.liquidation_stats = {k: sum(part[k][b] for part in sums for b in range(len(part[k])))
                                          for k in sums[0]}
        return pnl[..., 0]

    def _liquidation_sums(self, first_block: int, pnl, liquidated, time) -> dict[str, np.ndarray]:
        """Per block, sums over its paths (those within ``paths``): per horizon and account
        the paths liquidated (``count``), their liquidation times (``time``) and account
        P&L (``account_pnl``); per horizon and position the P&L on paths where its account
        is liquidated (``position_pnl``, ``position_count``)."""
        a = self.accounts
        row_account = a.row_account
        inside = row_account >= 0
        blocks = pnl.shape[0]
        out = {k: np.zeros((blocks, len(self.horizons_days), n)) for k, n in
               (("count", a.num_accounts), ("time", a.num_accounts), ("account_pnl", a.num_accounts),
                ("position_pnl", self.book.num_positions), ("position_count", self.book.num_positions))}
        step_days = self.step_end_days
        out["by_step"] = np.zeros((blocks, len(step_days), a.num_accounts))  # paths liquidated by each step's end
        for b in range(blocks):
            n = min(self.block_size, self.paths - (first_block + b) * self.block_size)
            if n <= 0:
                continue
            flag = liquidated[b, :n] > 0.5  # [n, H, A]
            out["count"][b] = flag.sum(axis=0)
            out["time"][b] = np.where(flag, time[b, :n].astype(np.float64), 0.0).sum(axis=0)
            row_flag = np.where(inside, flag[..., np.maximum(row_account, 0)], False)  # [n, H, P]
            out["position_pnl"][b] = np.where(row_flag, pnl[b, :n], 0.0).sum(axis=0)
            out["position_count"][b] = row_flag.sum(axis=0)
            # an account's P&L on its liquidated paths: the sum of its rows' (a sparse sum, not a matmul)
            for j in range(len(self.horizons_days)):
                out["account_pnl"][b, j] = np.bincount(row_account[inside], weights=out["position_pnl"][b, j, inside],
                                                       minlength=a.num_accounts)
            t = time[b, :n, -1].astype(np.float64)  # [n, A], the same at every horizon
            out["by_step"][b] = (t[None] <= step_days[:, None, None] * (1.0 + 1e-6)).sum(axis=1)
        return out

    def liquidation_curve(self) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
        """``(days, {account: probability})``: each account's probability of liquidation by
        the end of every simulation step (``[steps]`` each), after :meth:`total_pnl`; None
        without path-wise liquidation."""
        if self.liquidation_stats is None:
            return None
        by_step = self.liquidation_stats["by_step"] / self.paths
        return self.step_end_days, dict(zip(self.accounts.names, by_step.T, strict=True))

    def liquidation_summary(self, *, path_wise: bool) -> dict:
        """The summary's ``liquidation`` section (after :meth:`total_pnl`; see
        :func:`riskengine.revaluation.liquidation.liquidation_summary`)."""
        spot = np.asarray([self.market.underlyings[u].spot for u in self.book.underlyings])
        return liquidation_summary(self.accounts, self.liquidation_stats, paths=self.paths, horizons_days=self.horizons_days,
                                   spot=spot, along=self.along, steps_per_day=self.steps_per_day,
                                   bridge=self.bridge, path_wise=path_wise)

    def pnl_table(self, pnl: Float[np.ndarray, "paths horizons"]) -> pd.DataFrame:
        """One row per path: the book P&L ``pnl_<h>d`` (this revaluation's :meth:`total_pnl`),
        per underlying ``pnl_<h>d_<underlying>`` (what the allocate job reads) and the book
        P&L with every position held to the horizon, ``held_pnl_<h>d``."""
        columns = {f"pnl_{h}d": pnl[:, j] for j, h in enumerate(self.horizons_days)}
        for j, h in enumerate(self.horizons_days):
            for u, name in enumerate(self.book.underlyings):
                columns[f"pnl_{h}d_{name}"] = self.pnl_by_underlying[:, j, u]
        for j, h in enumerate(self.horizons_days):
            columns[f"held_pnl_{h}d"] = self.held_pnl[:, j]
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

        def weighted(first_block, values):  # [blocks, block, horizons, width] -> [blocks, measures, P]
            values = self._split(values)[0]
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
