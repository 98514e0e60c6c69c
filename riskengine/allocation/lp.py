"""The exact linear program of a CVaR allocation, solved by HiGHS (scipy): the reference the
JAX solver is checked against (tests, ``benchmarks/allocate_vs_highs.py``).

Rockafellar–Uryasev: ``CVaR_alpha(-R w) = min_t t + sum_i max(0, -r_i w - t) / ((1-alpha) N)``
with one auxiliary ``u_i >= max(0, -r_i w - t)`` per scenario. Variables, in order:
``w`` (n), ``t``, ``u`` (N); then, where the constraints need them, ``a`` (n, ``a >= |w|``,
gross leverage), ``b`` (n, ``b >= |w - current|``, turnover) and ``t_e, v`` (1 + N, the CVaR
at ``risk_level`` bounded by ``min(max_es, max_var)``).

Objectives: ``min_cvar`` and ``mean_cvar`` (the two that are linear programs).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
from scipy import optimize, sparse

from riskengine.allocation.problem import Constraints, Objective

__all__ = ["LPResult", "solve_lp"]


@dataclasses.dataclass
class LPResult:
    weights: np.ndarray
    objective: float  # in the units of the allocation objective (CVaR, or lambda CVaR - mean)
    status: int
    message: str
    seconds: float


def solve_lp(returns: np.ndarray, objective: Objective, constraints: Constraints, *,
             method: str = "highs") -> LPResult:
    """Solve the min-CVaR or mean-CVaR problem exactly (``scipy.optimize.linprog``)."""
    if objective.type not in ("min_cvar", "mean_cvar"):
        raise ValueError(f"the LP covers min_cvar and mean_cvar, not {objective.type!r}")
    started = time.perf_counter()
    r = np.asarray(returns, np.float64)
    n_s, n = r.shape
    c_ = constraints
    mean = r.mean(axis=0)
    blocks: dict[str, int] = {}
    size = 0

    def add(name: str, k: int) -> None:
        nonlocal size
        blocks[name] = size
        size += k

    add("w", n)
    add("t", 1)
    add("u", n_s)
    if c_.max_leverage is not None:
        add("a", n)
    if c_.max_turnover is not None:
        add("b", n)
    if c_.risk_limit is not None:
        add("te", 1)
        add("v", n_s)

    cost = np.zeros(size)
    scale = 1.0 if objective.type == "min_cvar" else objective.risk_aversion
    cost[blocks["t"]] = scale
    cost[blocks["u"]:blocks["u"] + n_s] = scale / ((1.0 - objective.alpha) * n_s)
    if objective.type == "mean_cvar":
        cost[:n] -= mean

    rows: list[sparse.spmatrix] = []
    rhs: list[np.ndarray] = []
    eye_s = sparse.identity(n_s, format="csr")

    def row_block(parts: dict[str, sparse.spmatrix], m: int) -> sparse.spmatrix:
        cols = []
        for name in blocks:
            width = {"w": n, "t": 1, "u": n_s, "a": n, "b": n, "te": 1, "v": n_s}[name]
            cols.append(parts.get(name, sparse.csr_matrix((m, width))))
        return sparse.hstack(cols, format="csr")

    neg_r = sparse.csr_matrix(-r)
    ones_s = sparse.csr_matrix(np.ones((n_s, 1)))
    # -r_i w - t - u_i <= 0
    rows.append(row_block({"w": neg_r, "t": -ones_s, "u": -eye_s}, n_s))
    rhs.append(np.zeros(n_s))
    if c_.min_return is not None:
        rows.append(row_block({"w": sparse.csr_matrix(-mean[None, :])}, 1))
        rhs.append(np.array([-c_.min_return]))
    eye_n = sparse.identity(n, format="csr")
    if c_.max_leverage is not None:
        rows.append(row_block({"w": eye_n, "a": -eye_n}, n))
        rows.append(row_block({"w": -eye_n, "a": -eye_n}, n))
        rows.append(row_block({"a": sparse.csr_matrix(np.ones((1, n)))}, 1))
        rhs += [np.zeros(n), np.zeros(n), np.array([c_.max_leverage])]
    if c_.max_turnover is not None:
        w0 = np.zeros(n) if c_.current is None else np.asarray(c_.current, np.float64)
        rows.append(row_block({"w": eye_n, "b": -eye_n}, n))
        rows.append(row_block({"w": -eye_n, "b": -eye_n}, n))
        rows.append(row_block({"b": sparse.csr_matrix(np.ones((1, n)))}, 1))
        rhs += [w0, -w0, np.array([c_.max_turnover])]
    if c_.risk_limit is not None:
        rows.append(row_block({"w": neg_r, "te": -ones_s, "v": -eye_s}, n_s))
        rhs.append(np.zeros(n_s))
        coef = np.full((1, n_s), 1.0 / ((1.0 - c_.risk_level) * n_s))
        rows.append(row_block({"te": sparse.csr_matrix([[1.0]]), "v": sparse.csr_matrix(coef)}, 1))
        rhs.append(np.array([c_.risk_limit]))
    if c_.exposures is not None:
        e = np.asarray(c_.exposures, np.float64)
        lim = np.asarray(c_.exposure_limits, np.float64)
        rows.append(row_block({"w": sparse.csr_matrix(e)}, e.shape[0]))
        rows.append(row_block({"w": sparse.csr_matrix(-e)}, e.shape[0]))
        rhs += [lim, lim]
    a_ub = sparse.vstack(rows, format="csr")
    b_ub = np.concatenate(rhs)
    a_eq = b_eq = None
    if c_.budget is not None:
        a_eq = row_block({"w": sparse.csr_matrix(np.ones((1, n)))}, 1)
        b_eq = np.array([c_.budget])

    bounds = [(None, None)] * size
    for j in range(n):
        lo, hi = float(c_.lower[j]), float(c_.upper[j])
        bounds[j] = (lo if np.isfinite(lo) else None, hi if np.isfinite(hi) else None)
    for name, width in (("u", n_s), ("v", n_s), ("a", n), ("b", n)):
        if name in blocks:
            for k in range(blocks[name], blocks[name] + width):
                bounds[k] = (0.0, None)
    res = optimize.linprog(cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=bounds,
                           method=method)
    w = res.x[:n] if res.x is not None else np.full(n, np.nan)
    return LPResult(weights=w, objective=float(res.fun) if res.fun is not None else np.nan,
                    status=int(res.status), message=str(res.message),
                    seconds=time.perf_counter() - started)
