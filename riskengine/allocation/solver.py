"""The JAX allocation solver: smoothed Rockafellar–Uryasev CVaR, accelerated projected
gradient, augmented Lagrangian.

CVaR of the losses ``L = -R w`` at level ``alpha`` is

    CVaR(w) = min_t  t + E[(L - t)^+] / (1 - alpha),

and ``(x)^+`` is replaced by ``mu * softplus(x / mu)`` (an upper bound within
``mu log 2``), with the temperature ``mu`` lowered geometrically round by round (relative to
the standard deviation of the returns, from 0.3 to 0.001). For the weights, ``t`` is
eliminated: a few damped Newton steps on the 1-D problem in ``t`` after every move of ``w``.
The weights move by FISTA (accelerated projected gradient, step ``1 / L`` with ``L`` the
largest eigenvalue of the Hessian in ``w``, by power iteration on Hessian-vector products at
the start of each round, plus ``rho |grad g_k|^2`` for each constraint inactive there that the
iterates have since crossed; with adaptive restart). The projection is exact onto the per-asset
box intersected with the budget hyperplane and, where given, one l1 ball: the turnover ball
``sum|w - current| <= max_turnover`` or else the gross-leverage ball ``sum|w| <= max_leverage``
(bisection on the two multipliers). The other constraints ``g_k(w) <= 0`` — minimum expected
return, CVaR at ``risk_level`` (its own auxiliary ``t``), net exposure limits, and gross
leverage when turnover holds the projection (``|x|`` smoothed) — enter through an augmented
Lagrangian, multipliers updated and penalty doubled between rounds. Everything runs in one
``jit``-compiled ``lax.scan``.

The answer is scored exactly: :func:`portfolio_risk` computes the empirical VaR and CVaR of
the final weights (no smoothing); the tests compare it with the exact linear program solved
by HiGHS (:mod:`riskengine.allocation.lp`), within 0.5%.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float
from scipy import optimize

from riskengine.allocation.problem import Constraints, Objective, check_returns
from riskengine.config import ConfigError
from riskengine.risk import tail_weights, var_and_es

__all__ = ["Allocation", "SolverSettings", "allocate", "check_feasible", "portfolio_risk",
           "risk_contributions", "project_box_budget"]

_BIG = 1e3  # |weight| bound standing in for "unbounded" inside the projection


@dataclasses.dataclass(frozen=True)
class SolverSettings:
    rounds: int = 10  # augmented-Lagrangian rounds (temperature and step change per round)
    steps: int = 150  # accelerated projected-gradient steps per round
    lipschitz_safety: float = 1.5  # step = 1 / (safety * largest Hessian eigenvalue)
    temperature: float = 0.3  # first mu, relative to the returns' standard deviation
    final_temperature: float = 1e-3
    penalty: float = 100.0  # first augmented-Lagrangian penalty (scaled units)
    penalty_growth: float = 2.0
    dtype: Any = jnp.float32


@dataclasses.dataclass
class Allocation:
    weights: np.ndarray
    names: list[str]
    objective: str
    alpha: float
    cvar: float
    var: float
    expected_return: float
    objective_value: float  # min_cvar: CVaR; mean_cvar: lambda CVaR - mean; kelly: -E log(1 + R w / f)
    contributions: np.ndarray  # Euler contributions to CVaR (sum to cvar)
    violations: dict[str, float]  # constraint -> violation (> 0 means violated), scaled to the limit's units
    seconds: float

    def to_dict(self) -> dict:
        return {
            "objective": self.objective, "alpha": self.alpha,
            "weights": {n: float(w) for n, w in zip(self.names, self.weights, strict=True)},
            "cvar": self.cvar, "var": self.var, "expected_return": self.expected_return,
            "objective_value": self.objective_value,
            "risk_contributions": {n: float(c) for n, c in zip(self.names, self.contributions, strict=True)},
            "risk_contributions_pct": {n: float(c / self.cvar) if self.cvar else None
                                       for n, c in zip(self.names, self.contributions, strict=True)},
            "constraint_violations": dict(self.violations),
            "seconds": self.seconds,
        }


# --- exact figures of a portfolio ------------------------------------------------------------

def portfolio_risk(returns: Float[ArrayLike, "scenarios assets"], weights: Float[ArrayLike, " assets"],
                   *, level: float) -> tuple[float, float]:
    """Exact empirical ``(VaR, CVaR)`` of ``returns @ weights`` (positive = loss)."""
    pnl = np.asarray(returns, np.float64) @ np.asarray(weights, np.float64)
    v, e = var_and_es(pnl, level=level)
    return float(v), float(e)


def risk_contributions(returns: Float[ArrayLike, "scenarios assets"], weights: Float[ArrayLike, " assets"],
                       *, level: float) -> np.ndarray:
    """Euler contributions ``w_j * dCVaR/dw_j = -w_j E[r_j | tail]``; they sum to the CVaR."""
    r = np.asarray(returns, np.float64)
    w = np.asarray(weights, np.float64)
    tail = tail_weights(r @ w, level=level)
    return -w * (tail @ r) / (1.0 - level)


# --- projection ------------------------------------------------------------------------------

def _bisect(fun, lo, hi, target, iters):
    """The root of the non-increasing ``fun(x) = target`` on ``[lo, hi]`` by bisection."""
    def body(_, bracket):
        a, b = bracket
        mid = 0.5 * (a + b)
        above = fun(mid) > target
        return jnp.where(above, mid, a), jnp.where(above, b, mid)

    a, b = jax.lax.fori_loop(0, iters, body, (lo, hi))
    return 0.5 * (a + b)


def project_box_budget(v: Float[Array, " assets"], lower: Float[Array, " assets"],
                       upper: Float[Array, " assets"], budget: Float[Array, ""] | None,
                       *, center: Float[Array, " assets"] | None = None,
                       radius: Float[Array, ""] | None = None) -> Array:
    """Euclidean projection of ``v`` onto ``{lower <= w <= upper, sum(w) = budget,
    sum|w - center| <= radius}`` (the budget and the l1 ball are optional).

    For multipliers ``nu`` (budget) and ``kappa >= 0`` (l1 ball) the minimiser is
    coordinate-wise ``clip(center + soft(v - nu - center, kappa), lower, upper)``; ``nu`` is
    found by bisection for each ``kappa``, ``kappa`` by bisection on the l1 constraint, and
    ``nu`` is then corrected exactly on the free coordinates. Assumes the set is not empty.
    """
    use_ball = radius is not None
    c = jnp.zeros_like(v) if center is None else center

    def w_of(nu, kappa):
        d = v - nu - c
        return jnp.clip(c + jnp.sign(d) * jnp.maximum(jnp.abs(d) - kappa, 0.0), lower, upper)

    span = jnp.max(jnp.abs(v)) + jnp.max(jnp.abs(c)) + jnp.max(jnp.where(jnp.isfinite(lower), jnp.abs(lower), 0.0))
    span = span + jnp.max(jnp.where(jnp.isfinite(upper), jnp.abs(upper), 0.0)) + 1.0

    def nu_for(kappa):
        if budget is None:
            return jnp.zeros((), v.dtype)
        return _bisect(lambda nu: jnp.sum(w_of(nu, kappa)), -2 * span - kappa, 2 * span + kappa,
                       budget, 60)

    if use_ball:
        def l1(kappa):
            return jnp.sum(jnp.abs(w_of(nu_for(kappa), kappa) - c))

        kappa = jnp.where(l1(jnp.zeros((), v.dtype)) <= radius, 0.0,
                          _bisect(l1, jnp.zeros((), v.dtype), 4 * span, radius, 40))
    else:
        kappa = jnp.zeros((), v.dtype)
    nu = nu_for(kappa)
    w = w_of(nu, kappa)
    if budget is None:
        return w
    free = (w > lower) & (w < upper) & (w != c)
    count = jnp.maximum(jnp.sum(free), 1)
    nu = nu + (jnp.sum(w) - budget) / count  # exact on the (now known) free set
    return jnp.where(free, w_of(nu, kappa), w)


# --- the smoothed problem --------------------------------------------------------------------

def _softplus_cvar(losses, t, mu, alpha):
    return t + jnp.mean(mu * jax.nn.softplus((losses - t) / mu)) / (1.0 - alpha)


def _smooth_abs(x, eps):
    return jnp.sqrt(x * x + eps * eps)


def _safe_log1p(x, floor=-0.999):
    """``log1p(x)`` continued linearly below ``floor`` (keeps Kelly finite on ruinous weights)."""
    xc = jnp.maximum(x, floor)
    return jnp.where(x > floor, jnp.log1p(xc), jnp.log1p(floor) + (x - floor) / (1.0 + floor))


def _newton_t(losses, t, mu, alpha, iters):
    """Minimise ``t + E[mu softplus((L - t)/mu)]/(1 - alpha)`` over ``t`` by damped Newton."""
    spread = jnp.std(losses) + 1e-12

    def body(_, t):
        s = jax.nn.sigmoid((losses - t) / mu)
        g = 1.0 - jnp.mean(s) / (1.0 - alpha)
        h = jnp.mean(s * (1.0 - s)) / (mu * (1.0 - alpha))
        step = g / jnp.maximum(h, 1e-12)
        return t - jnp.clip(step, -0.5 * spread, 0.5 * spread)

    return jax.lax.fori_loop(0, iters, body, t)


def _quantile(losses, alpha):
    return jnp.quantile(losses, alpha)


@functools.partial(jax.jit, static_argnames=("kind", "flags", "settings"))
def _solve(r, data, *, kind: str, flags: tuple, settings: SolverSettings):
    """``r``: returns divided by ``data['scale']``. Returns the weights."""
    has_budget, has_min_return, has_leverage, has_turnover, has_risk, n_exp = flags
    dtype = r.dtype
    alpha = data["alpha"]
    mean = jnp.mean(r, axis=0)
    lower, upper = data["lower"], data["upper"]
    budget = data["budget"] if has_budget else None
    rounds, steps = settings.rounds, settings.steps
    mus = settings.temperature * (settings.final_temperature / settings.temperature) ** (
        jnp.arange(rounds, dtype=dtype) / max(rounds - 1, 1))
    eps = 1e-3  # |x| ~ sqrt(x^2 + eps^2) in the leverage and turnover constraints
    if kind == "risk_parity":
        lower = jnp.full_like(lower, 1e-6) * data["y_scale"]
        upper = jnp.full_like(upper, _BIG) * data["y_scale"]
        budget = None

    # One l1 ball goes into the exact projection: the turnover one, else the leverage one;
    # with both, leverage goes to the augmented Lagrangian.
    ball = "turnover" if has_turnover else "leverage" if has_leverage else None
    center = data["current"] if ball == "turnover" else None
    radius = (data["max_turnover"] if ball == "turnover" else data["max_leverage"]) if ball else None
    lev_in_alm = has_leverage and ball != "leverage"

    def project(w):
        return project_box_budget(w, lower, upper, budget, center=center, radius=radius)

    def objective(w, t, mu):
        losses = -(r @ w)
        if kind == "risk_parity":  # w is y > 0 here
            f = _softplus_cvar(losses, t, mu, alpha) - jnp.sum(data["risk_budgets"] * jnp.log(w))
        elif kind == "min_cvar":
            f = _softplus_cvar(losses, t, mu, alpha)
        elif kind == "mean_cvar":
            f = data["risk_aversion"] * _softplus_cvar(losses, t, mu, alpha) - mean @ w
        else:  # kelly, in real units: E log(1 + R w / fraction)
            growth = _safe_log1p(-losses * data["scale"] / data["fraction"])
            f = -jnp.mean(growth) / data["kelly_scale"]
        return f, losses

    def constraints(w, losses, te, mu):
        g = []
        if has_min_return:
            g.append((data["min_return"] - mean @ w) / (jnp.linalg.norm(mean) + 1e-30))
        if lev_in_alm:
            g.append(jnp.sum(_smooth_abs(w, eps) - eps) - data["max_leverage"])
        if has_risk:
            g.append(_softplus_cvar(losses, te, mu, data["risk_level"]) - data["risk_limit"])
        if n_exp:
            e = data["exposures"] @ w
            g.append(e - data["exposure_limits"])
            g.append(-e - data["exposure_limits"])
        if not g:
            return jnp.zeros((0,), dtype)
        return jnp.concatenate([jnp.atleast_1d(x) for x in g])

    def lagrangian(w, aux, lam, rho, mu):
        t, te = aux
        f, losses = objective(w, t, mu)
        g = constraints(w, losses, te, mu)
        shifted = jnp.maximum(0.0, g + lam / rho)
        return f + 0.5 * rho * jnp.sum(shifted * shifted), g

    grad = jax.grad(lagrangian, has_aux=True)  # (gradient in w, constraint values)

    def refresh_aux(w, aux, mu, iters):
        losses = -(r @ w)
        t = _newton_t(losses, aux[0], mu, alpha, iters) if kind != "kelly" else aux[0]
        te = _newton_t(losses, aux[1], mu, data["risk_level"], iters) if has_risk else aux[1]
        return t, te

    def lipschitz(w, aux, lam, rho, mu):
        """Largest eigenvalue of the Hessian in w (power iteration on Hessian-vector products)."""
        def hvp(v):
            return jax.jvp(lambda x: grad(x, aux, lam, rho, mu)[0], (w,), (v,))[1]

        def body(_, v):
            hv = hvp(v)
            return hv / (jnp.linalg.norm(hv) + 1e-30)

        v = jax.lax.fori_loop(0, 12, body, jnp.ones_like(w) / jnp.sqrt(w.shape[0]))
        return jnp.abs(v @ hvp(v)) + 1e-6

    num_g = int(has_min_return) + int(lev_in_alm) + int(has_risk) + 2 * n_exp
    # The exposure rows come last, +e w - limit (n_exp) then -e w - limit (n_exp): the two rows
    # of a pair have the same curvature and (limits >= 0) are not active together.
    first_exp = num_g - 2 * n_exp
    partner = np.arange(num_g)
    partner[first_exp:] = np.concatenate([np.arange(first_exp + n_exp, num_g),
                                          np.arange(first_exp, first_exp + n_exp)])
    first_of_pair = np.arange(num_g) <= partner
    w = project(data["w0"])

    def outer(carry, mu):
        w, aux, lam, rho = carry
        losses = -(r @ w)
        aux = (_quantile(losses, alpha), _quantile(losses, data["risk_level"]))
        aux = refresh_aux(w, aux, mu, 8)
        # The power iteration sees the penalty curvature rho |grad g_k|^2 only of the
        # constraints active at w. One inactive there gains it the moment an iterate crosses
        # it (rho reaches 100 * 2^9): with the step left as it was, the iterates overshoot
        # deep into the constraint and bounce between corners of the box, and the multiplier
        # update then takes that violation for real. So the step shrinks, within the round,
        # by the curvature of each constraint the iterates have activated (the bound
        # lambda_max(A + B) <= lambda_max(A) + lambda_max(B), |grad g_k| taken at w).
        lip0 = lipschitz(w, aux, lam, rho, mu)
        _, losses = objective(w, aux[0], mu)
        start = constraints(w, losses, aux[1], mu) + lam / rho > 0
        start = start | start[partner]
        jac = jax.jacfwd(lambda x: constraints(x, -(r @ x), aux[1], mu))(w)  # (num_g, assets)
        extra = jnp.where(first_of_pair & ~start, rho * jnp.sum(jac * jac, axis=1), 0.0)

        def inner(state, _):
            w, y, theta, aux, seen = state
            aux = refresh_aux(y, aux, mu, 2)
            g, values = grad(y, aux, lam, rho, mu)
            now = values + lam / rho > 0
            now = seen | now | now[partner]
            step = 1.0 / (settings.lipschitz_safety * (lip0 + jnp.sum(jnp.where(now, extra, 0.0))))
            w_new = project(y - step * g)
            # adaptive restart (O'Donoghue & Candes): drop momentum when it points uphill,
            # and when the step has just shrunk
            restart = (jnp.vdot(g, w_new - w) > 0) | jnp.any(now & ~seen)
            theta_new = jnp.where(restart, 1.0, 0.5 * (1.0 + jnp.sqrt(1.0 + 4.0 * theta * theta)))
            beta = jnp.where(restart, 0.0, (theta - 1.0) / theta_new)
            y_new = w_new + beta * (w_new - w)
            return (w_new, y_new, theta_new, aux, now), None

        (w, _, _, aux, _), _ = jax.lax.scan(
            inner, (w, w, jnp.asarray(1.0, dtype), aux, start), None, length=steps)
        aux = refresh_aux(w, aux, mu, 4)
        f, losses = objective(w, aux[0], mu)
        g = constraints(w, losses, aux[1], mu)
        lam = jnp.maximum(0.0, lam + rho * g)
        return (w, aux, lam, rho * settings.penalty_growth), g

    init = (w, (jnp.asarray(0.0, dtype), jnp.asarray(0.0, dtype)), jnp.zeros((num_g,), dtype),
            jnp.asarray(settings.penalty, dtype))
    (w, _, lam, _), _ = jax.lax.scan(outer, init, mus)
    if kind == "risk_parity":
        w = w / jnp.sum(w) * (data["budget"] if has_budget else 1.0)
    return w


# --- feasibility -----------------------------------------------------------------------------

def check_feasible(constraints: Constraints, *, mean: np.ndarray | None = None) -> None:
    """Raise a ConfigError naming the first constraint that makes the *linear* part of the
    feasible set empty (adding them one at a time: bounds and budget, min_return, leverage,
    turnover, exposure limits). The CVaR/VaR limits are checked after the solve."""
    c = constraints
    n = c.num_assets
    lo, hi = np.asarray(c.lower, float), np.asarray(c.upper, float)
    bad = np.flatnonzero(lo > hi)
    if bad.size:
        raise ConfigError(f"constraints: infeasible: asset {bad[0]} has lower bound {lo[bad[0]]} > "
                          f"upper bound {hi[bad[0]]}")
    if c.budget is not None:
        if np.sum(lo) > c.budget + 1e-12:
            raise ConfigError(f"constraints.budget: infeasible: the lower bounds sum to "
                              f"{np.sum(lo):.6g} > budget {c.budget:g}")
        if np.sum(hi) < c.budget - 1e-12:
            raise ConfigError(f"constraints.budget: infeasible: the upper bounds (max_weight) sum "
                              f"to {np.sum(hi):.6g} < budget {c.budget:g}")
    # Variables x = [w (n), a (n) >= |w|, b (n) >= |w - current|]
    steps = []
    if c.min_return is not None and mean is not None:
        steps.append("min_return")
    if c.max_leverage is not None:
        steps.append("max_leverage")
    if c.max_turnover is not None:
        steps.append("max_turnover")
    if c.exposures is not None:
        steps.append("exposures")
    a_ub: list[np.ndarray] = []
    b_ub: list[float] = []
    zeros = np.zeros(n)
    eye = np.eye(n)
    w0 = np.zeros(n) if c.current is None else np.asarray(c.current, float)
    for name in steps:
        if name == "min_return":
            a_ub.append(np.concatenate([-mean, zeros, zeros])[None])
            b_ub.append(-c.min_return)
        elif name == "max_leverage":
            a_ub += [np.hstack([eye, -eye, 0 * eye]), np.hstack([-eye, -eye, 0 * eye]),
                     np.concatenate([zeros, np.ones(n), zeros])[None]]
            b_ub += [0.0] * (2 * n) + [c.max_leverage]
        elif name == "max_turnover":
            a_ub += [np.hstack([eye, 0 * eye, -eye]), np.hstack([-eye, 0 * eye, -eye]),
                     np.concatenate([zeros, zeros, np.ones(n)])[None]]
            b_ub += list(w0) + list(-w0) + [c.max_turnover]
        else:
            e = np.asarray(c.exposures, float)
            lim = np.asarray(c.exposure_limits, float)
            pad = np.zeros((e.shape[0], 2 * n))
            a_ub += [np.hstack([e, pad]), np.hstack([-e, pad])]
            b_ub += list(lim) + list(lim)
        a_eq = np.concatenate([np.ones(n), zeros, zeros])[None] if c.budget is not None else None
        b_eq = [c.budget] if c.budget is not None else None
        bounds = [(lo[j] if np.isfinite(lo[j]) else None, hi[j] if np.isfinite(hi[j]) else None)
                  for j in range(n)] + [(0, None)] * (2 * n)
        res = optimize.linprog(np.zeros(3 * n), A_ub=np.vstack(a_ub), b_ub=np.asarray(b_ub),
                               A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
        if res.status == 2:
            if name == "min_return":
                detail = (f"no weights within the bounds and budget reach expected return "
                          f"{c.min_return:g} (best: {_best_return(c, mean):.6g})")
            elif name == "max_leverage":
                detail = (f"gross leverage {c.max_leverage:g} is below what the bounds, budget "
                          f"and earlier constraints need")
            elif name == "max_turnover":
                detail = (f"turnover {c.max_turnover:g} from the current weights cannot reach "
                          f"the set allowed by the other constraints")
            else:
                limits = {k: float(v) for k, v in zip(c.exposure_names, c.exposure_limits, strict=False)}
                detail = f"net exposure limits {limits} cannot be met together with the other constraints"
            field = "constraints." + ({"exposures": "limits"}.get(name, name))
            raise ConfigError(f"{field}: infeasible: {detail}")


def _best_return(c: Constraints, mean: np.ndarray) -> float:
    n = c.num_assets
    bounds = [(c.lower[j] if np.isfinite(c.lower[j]) else None,
               c.upper[j] if np.isfinite(c.upper[j]) else None) for j in range(n)]
    res = optimize.linprog(-mean, A_eq=np.ones((1, n)) if c.budget is not None else None,
                           b_eq=[c.budget] if c.budget is not None else None, bounds=bounds,
                           method="highs")
    return float(-res.fun) if res.status == 0 else float("inf")


# --- the public entry point ------------------------------------------------------------------

def allocate(
    returns: Float[ArrayLike, "scenarios assets"],
    objective: Objective,
    constraints: Constraints,
    *,
    names: list[str] | None = None,
    settings: SolverSettings = SolverSettings(),
    check: bool = True,
) -> Allocation:
    """Optimal weights for ``objective`` under ``constraints`` on the scenario ``returns``."""
    started = time.perf_counter()
    r64 = check_returns(returns, names)
    n_s, n = r64.shape
    names = list(names) if names is not None else [f"asset_{j}" for j in range(n)]
    c = constraints
    if c.num_assets != n:
        raise ConfigError(f"constraints: {c.num_assets} assets in the bounds, {n} in the returns")
    mean64 = r64.mean(axis=0)
    if objective.type == "risk_parity":
        extra = [k for k, v in (("min_return", c.min_return), ("max_leverage", c.max_leverage),
                                ("max_turnover", c.max_turnover), ("max_es", c.max_es),
                                ("max_var", c.max_var), ("limits", c.exposures)) if v is not None]
        if extra:
            raise ConfigError(f"constraints.{extra[0]}: not supported with objective risk_parity "
                              f"(long-only weights in proportion to the risk budgets)")
        if np.any(np.asarray(c.lower) < 0) or np.any(np.isfinite(c.upper)):
            raise ConfigError("constraints: objective risk_parity is long-only without per-asset "
                              "bounds (set long_only: true, no min_weight/max_weight/bounds)")
    if check:
        check_feasible(c, mean=mean64)
    dtype = settings.dtype
    scale = float(np.std(r64)) or 1.0
    x64 = jnp.dtype(dtype) == jnp.float64  # float64 on request, as the calibrate job does
    with jax.enable_x64(True) if x64 else contextlib.nullcontext():
        r = jnp.asarray(r64 / scale, dtype)
        lower = np.clip(np.asarray(c.lower, np.float64), -_BIG, _BIG)
        upper = np.clip(np.asarray(c.upper, np.float64), -_BIG, _BIG)
        budget = 1.0 if c.budget is None else float(c.budget)
        w0 = np.clip(np.full(n, budget / n), lower, upper) if c.current is None else np.asarray(c.current, float)
        y_scale = 1.0
        if objective.type == "risk_parity":  # start at inverse volatility, scaled so that CVaR = 1
            y0 = 1.0 / np.maximum(np.std(r64, axis=0) / scale, 1e-12)
            y0 /= max(portfolio_risk(r64 / scale, y0, level=objective.alpha)[1], 1e-12)
            w0, y_scale = y0, float(np.mean(y0))
        exposures = np.zeros((0, n)) if c.exposures is None else np.asarray(c.exposures, np.float64)
        exp_norm = np.linalg.norm(exposures, axis=1) if exposures.size else np.zeros(0)
        exp_norm = np.where(exp_norm > 0, exp_norm, 1.0)
        budgets = (np.full(n, 1.0 / n) if objective.risk_budgets is None
                   else np.asarray(objective.risk_budgets, float) / np.sum(objective.risk_budgets))
        kelly_scale = max(float(np.mean(np.abs(r64 @ np.full(n, budget / n)))), 1e-12) / objective.fraction
        data = {
            "scale": scale, "alpha": objective.alpha, "risk_aversion": objective.risk_aversion,
            "fraction": objective.fraction, "kelly_scale": kelly_scale,
            "lower": lower, "upper": upper, "budget": budget,
            "min_return": (c.min_return or 0.0) / scale,
            "max_leverage": c.max_leverage or 0.0,
            "current": np.zeros(n) if c.current is None else np.asarray(c.current, float),
            "max_turnover": c.max_turnover or 0.0,
            "risk_level": c.risk_level, "risk_limit": (c.risk_limit or 0.0) / scale,
            "exposures": exposures / exp_norm[:, None], "exposure_limits": (
                np.zeros(0) if c.exposure_limits is None else np.asarray(c.exposure_limits, float) / exp_norm),
            "w0": w0, "y_scale": y_scale, "risk_budgets": budgets,
        }
        data = jax.tree.map(lambda x: jnp.asarray(x, dtype), data)
        flags = (c.budget is not None, c.min_return is not None, c.max_leverage is not None,
                 c.max_turnover is not None, c.risk_limit is not None, int(exposures.shape[0]))
        w = np.asarray(jax.device_get(_solve(r, data, kind=objective.type, flags=flags, settings=settings)),
                       np.float64)
    solve_end = time.perf_counter()
    var, cvar = portfolio_risk(r64, w, level=objective.alpha)
    expected = float(mean64 @ w)
    if objective.type == "min_cvar":
        value = cvar
    elif objective.type == "mean_cvar":
        value = objective.risk_aversion * cvar - expected
    elif objective.type == "kelly":
        value = -float(np.mean(np.log1p(np.maximum(r64 @ w / objective.fraction, -1 + 1e-12))))
    else:
        value = cvar
    violations = _violations(r64, w, c, mean64)
    if c.risk_limit is not None and violations["risk_limit"] > 1e-3 * c.risk_limit:
        which = "max_es" if c.max_es is not None and c.risk_limit == c.max_es else "max_var"
        raise ConfigError(f"constraints.{which}: infeasible (or too tight to reach): the lowest "
                          f"CVaR at level {c.risk_level} found under the other constraints is "
                          f"{portfolio_risk(r64, w, level=c.risk_level)[1]:.6g} > {c.risk_limit:.6g}")
    return Allocation(
        weights=w, names=names, objective=objective.type, alpha=objective.alpha, cvar=cvar,
        var=var, expected_return=expected, objective_value=value,
        contributions=risk_contributions(r64, w, level=objective.alpha), violations=violations,
        seconds=solve_end - started,
    )


def _violations(r: np.ndarray, w: np.ndarray, c: Constraints, mean: np.ndarray) -> dict[str, float]:
    out = {
        "lower": float(np.max(np.asarray(c.lower) - w, initial=0.0)),
        "upper": float(np.max(w - np.asarray(c.upper), initial=0.0)),
    }
    if c.budget is not None:
        out["budget"] = float(abs(np.sum(w) - c.budget))
    if c.min_return is not None:
        out["min_return"] = float(max(0.0, c.min_return - mean @ w))
    if c.max_leverage is not None:
        out["max_leverage"] = float(max(0.0, np.sum(np.abs(w)) - c.max_leverage))
    if c.max_turnover is not None:
        w0 = np.zeros_like(w) if c.current is None else np.asarray(c.current)
        out["max_turnover"] = float(max(0.0, np.sum(np.abs(w - w0)) - c.max_turnover))
    if c.risk_limit is not None:
        var, es = portfolio_risk(r, w, level=c.risk_level)
        out["risk_limit"] = float(max(0.0, es - c.risk_limit))
        if c.max_var is not None:
            out["max_var"] = float(max(0.0, var - c.max_var))
        if c.max_es is not None:
            out["max_es"] = float(max(0.0, es - c.max_es))
    if c.exposures is not None:
        e = np.asarray(c.exposures) @ w
        for name, val, lim in zip(c.exposure_names, e, c.exposure_limits, strict=True):
            out[f"limit_{name}"] = float(max(0.0, abs(val) - lim))
    return out
