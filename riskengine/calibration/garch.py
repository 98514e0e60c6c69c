"""GARCH(1,1) and GJR-GARCH(1,1) by maximum likelihood, with standard errors and a simulator.

Model for daily returns ``r_t`` (log returns by default):

    r_t = mu + eps_t,   eps_t = sigma_t z_t,
    sigma_t^2 = omega + (alpha + gamma 1{eps_{t-1} < 0}) eps_{t-1}^2 + beta sigma_{t-1}^2,

``gamma = 0`` for plain GARCH; ``z_t`` standard normal or Student-t with ``nu > 2`` degrees of
freedom scaled to unit variance. ``sigma_1^2`` is the sample variance of the returns
(backcast). Constraints: ``omega > 0``, ``alpha >= 0``, ``alpha + gamma >= 0``,
``beta >= 0`` and persistence ``alpha + gamma/2 + beta < 1`` (covariance stationarity for a
symmetric ``z``), imposed by a smooth reparametrisation (persistence and shares through
sigmoids); ``nu = 2 + softplus``.

Estimation: the mean negative log-likelihood is minimised with ``optimistix.BFGS`` (exact
gradients by forward-mode JAX AD) on returns multiplied by ``scale`` (default 100: percent
returns, so that ``omega`` is of order one), from two starts; series are padded with
zero-weight observations to a multiple of 4096 so that one compiled program serves many
lengths. ``converged``: BFGS met its criterion, or the Newton decrement ``g' H^-1 g / 2``
(log-likelihood still to gain) is below 1e-7 with a positive definite Hessian. Parameters
are reported in the returns' own units. Standard errors: the inverse of the exact Hessian
of the negative log-likelihood (JAX, forward over forward) in the natural parameters, and
the robust (QML, sandwich) version ``H^-1 (sum_t s_t s_t') H^-1``. Both assume an interior
optimum: at a constraint (persistence near 1, ``alpha`` or ``beta`` near 0; listed in
``at_bounds``) they are not meaningful.

The simulator (:func:`simulate_garch`, :meth:`GarchResult.simulate`) draws the innovations
with NumPy (``seed``) and runs the variance recursion forward.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
from jax.scipy.special import gammaln

from riskengine.errors import ConfigError
from riskengine.history import load_history

__all__ = [
    "GARCH_MODEL_NAMES",
    "GarchParams",
    "GarchResult",
    "filter_garch",
    "fit_garch",
    "garch_parameter_names",
    "load_returns",
    "simulate_garch",
]

# Model names in a calibration's params.yaml (``model.name``) and the kinds they stand for.
GARCH_MODEL_NAMES = {"garch": "garch", "gjr_garch": "gjr"}

Kind = Literal["garch", "gjr"]
Dist = Literal["normal", "t"]
TRADING_DAYS = 365  # crypto trades every day
MIN_OBSERVATIONS = 100


def gjr_variance(variance, eps, *, omega, alpha, gamma, beta):
    """One step of the GJR-GARCH(1,1) variance recursion, the one home of the formula:
    ``omega + (alpha + gamma 1{eps < 0}) eps^2 + beta variance`` (``gamma = 0``: GARCH(1,1)).
    Elementwise on floats, numpy or JAX arrays."""
    return omega + (alpha + gamma * (eps < 0)) * eps * eps + beta * variance


def garch_parameter_names(kind: Kind, dist: Dist) -> tuple[str, ...]:
    names = ("mu", "omega", "alpha") + (("gamma",) if kind == "gjr" else ()) + ("beta",)
    return names + (("nu",) if dist == "t" else ())


def _check(kind: str, dist: str) -> None:
    if kind not in ("garch", "gjr"):
        raise ConfigError(f"garch.kind: must be garch or gjr (got {kind!r})")
    if dist not in ("normal", "t"):
        raise ConfigError(f"garch.dist: must be normal or t (got {dist!r})")


def _unpack(theta, kind: str, dist: str) -> dict:
    names = garch_parameter_names(kind, dist)
    p = {n: theta[i] for i, n in enumerate(names)}
    p.setdefault("gamma", jnp.zeros_like(theta[0]))
    return p


def _variances(theta, r, backcast, kind: str, dist: str):
    """``sigma_t^2`` for t = 1..n (the first is the backcast)."""
    p = _unpack(theta, kind, dist)
    eps = r - p["mu"]

    def step(var, e):
        return gjr_variance(var, e, omega=p["omega"], alpha=p["alpha"], gamma=p["gamma"], beta=p["beta"]), var

    _, var = jax.lax.scan(step, backcast, eps)
    return var, eps


def _loglik_terms(theta, r, backcast, kind: str, dist: str):
    """Per-observation log-likelihood (natural parameters, scaled returns)."""
    var, eps = _variances(theta, r, backcast, kind, dist)
    if dist == "normal":
        return -0.5 * (jnp.log(2 * jnp.pi) + jnp.log(var) + eps * eps / var)
    nu = _unpack(theta, kind, dist)["nu"]
    const = gammaln(0.5 * (nu + 1)) - gammaln(0.5 * nu) - 0.5 * jnp.log(jnp.pi * (nu - 2))
    return const - 0.5 * jnp.log(var) - 0.5 * (nu + 1) * jnp.log1p(eps * eps / (var * (nu - 2)))


def _natural(z, kind: str, dist: str):
    """Unconstrained ``z`` -> natural parameters (see the module docstring)."""
    mu = z[0]
    omega = jax.nn.softplus(z[1])
    persistence = jax.nn.sigmoid(z[2])
    arch_share = jax.nn.sigmoid(z[3])  # (alpha + gamma/2) / persistence
    news = arch_share * persistence
    beta = persistence - news
    out = [mu, omega]
    if kind == "gjr":
        up = jax.nn.sigmoid(z[4])  # alpha / (2 alpha + gamma): positive shocks' share
        alpha = 2.0 * news * up  # impact of a positive shock
        gamma = 2.0 * news * (1.0 - up) - alpha  # negative shock: alpha + gamma
        out += [alpha, gamma, beta]
    else:
        out += [news, beta]
    if dist == "t":
        out.append(2.0 + jax.nn.softplus(z[-1]))
    return jnp.stack(out)


def _unconstrained_start(kind, dist, mu, omega, alpha, gamma, beta, nu) -> np.ndarray:
    def logit(x):
        return math.log(x / (1 - x))

    def inv_softplus(x):
        return x + math.log(-math.expm1(-x))

    news = alpha + 0.5 * gamma
    persistence = news + beta
    z = [mu, inv_softplus(omega), logit(persistence), logit(news / persistence)]
    if kind == "gjr":
        z.append(logit(alpha / (2 * news)))
    if dist == "t":
        z.append(inv_softplus(nu - 2.0))
    return np.asarray(z, np.float64)


_LENGTH_BUCKET = 4096  # series are padded (zero weight) to a multiple of this: fewer compiles


def _value_and_grad_fwd(f, x):
    """``f(x)`` and its gradient by forward mode (one pass per parameter): no reverse pass
    through the variance recursion, which keeps the compiled program small."""
    grad, value = jax.jacfwd(lambda y: (f(y),) * 2, has_aux=True)(x)
    return value, grad


@functools.partial(jax.jit, static_argnames=("kind", "dist"))
def _fit_jit(z0, r, mask, backcast, *, kind: str, dist: str):
    n = jnp.sum(mask)

    def terms(theta):
        return mask * _loglik_terms(theta, r, backcast, kind, dist)

    def mean_nll(z):
        return -jnp.sum(terms(_natural(z, kind, dist))) / n

    @jax.custom_jvp
    def objective(z):
        return mean_nll(z)

    @objective.defjvp
    def _objective_jvp(primals, tangents):
        value, grad = _value_and_grad_fwd(mean_nll, primals[0])
        return value, grad @ tangents[0]

    solver = optx.BFGS(rtol=1e-8, atol=1e-8)
    sol = optx.minimise(lambda z, _: objective(z), solver, z0, max_steps=500, throw=False)
    theta = _natural(sol.value, kind, dist)

    def total_nll(t):
        return -jnp.sum(terms(t))

    def gradient(t):
        g = _value_and_grad_fwd(total_nll, t)[1]
        return g, g

    hessian, grad = jax.jacfwd(gradient, has_aux=True)(theta)  # forward over forward
    # Newton decrement: the log-likelihood still to gain if the quadratic model holds.
    decrement = 0.5 * grad @ jnp.linalg.solve(hessian, grad)
    scores = jax.jacfwd(terms)(theta)
    var, _ = _variances(theta, r, backcast, kind, dist)
    return {
        "theta": theta,
        "nll": total_nll(theta),
        "hessian": hessian,
        "outer": scores.T @ scores,
        "variance": var,
        "successful": (sol.result == optx.RESULTS.successful)
        | ((jnp.abs(decrement) < 1e-7) & jnp.all(jnp.linalg.eigvalsh(hessian) > 0)),
        "steps": sol.stats["num_steps"],
    }


@dataclasses.dataclass
class GarchResult:
    """A fitted GARCH/GJR model, in the units of the returns given to :func:`fit_garch`."""

    kind: str
    dist: str
    params: dict[str, float]
    stderr: dict[str, float]  # inverse Hessian
    robust_stderr: dict[str, float]  # sandwich (QML)
    covariance: np.ndarray
    loglik: float
    aic: float
    bic: float
    observations: int
    converged: bool
    steps: int
    persistence: float
    at_bounds: list[str]  # constraints (nearly) binding: standard errors not meaningful there
    unconditional_vol: float  # per period (daily); NaN when persistence is (nearly) 1
    conditional_vol: np.ndarray  # sigma_t, t = 1..n
    next_variance: float  # sigma_{n+1}^2, the one-step forecast

    @property
    def annualised_vol(self) -> float:
        return self.unconditional_vol * math.sqrt(TRADING_DAYS)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind, "dist": self.dist, "params": dict(self.params),
            "stderr": dict(self.stderr), "robust_stderr": dict(self.robust_stderr),
            "loglik": self.loglik, "aic": self.aic, "bic": self.bic,
            "observations": self.observations, "converged": self.converged, "steps": self.steps,
            "persistence": self.persistence, "at_bounds": list(self.at_bounds),
            "unconditional_vol": self.unconditional_vol,
            "annualised_vol": self.annualised_vol, "next_variance": self.next_variance,
        }

    def simulate(self, *, num_steps: int, seed: int | np.random.Generator = 0,
                 num_paths: int = 1, initial_variance: float | None = None) -> np.ndarray:
        """Returns simulated forward from the end of the sample (``next_variance``)."""
        return simulate_garch(
            self.params, kind=self.kind, dist=self.dist, num_steps=num_steps, seed=seed,
            num_paths=num_paths,
            initial_variance=self.next_variance if initial_variance is None else initial_variance,
        )


def fit_garch(
    returns,
    *,
    kind: Kind = "garch",
    dist: Dist = "normal",
    scale: float = 100.0,
) -> GarchResult:
    """Maximum-likelihood GARCH(1,1) (``kind="garch"``) or GJR-GARCH(1,1) (``"gjr"``) with
    normal or Student-t innovations. ``returns``: 1-D daily returns (no NaN)."""
    _check(kind, dist)
    r = np.asarray(returns, np.float64).ravel()
    if r.size < MIN_OBSERVATIONS:
        raise ConfigError(f"garch: {r.size} returns; need at least {MIN_OBSERVATIONS}")
    bad = np.flatnonzero(~np.isfinite(r))
    if bad.size:
        raise ConfigError(f"garch: return {bad[0]} is not finite ({r[bad[0]]!r})")
    if not scale > 0:
        raise ConfigError(f"garch.scale: must be > 0 (got {scale!r})")
    moving = np.count_nonzero(r != 0.0)
    if np.std(r) * scale < 1e-8 or moving < MIN_OBSERVATIONS // 2:
        raise ConfigError(
            f"garch: the prices barely move ({moving} of {r.size} returns nonzero, std {np.std(r):.3g}); "
            "a volatility model needs moving prices"
        )
    names = garch_parameter_names(kind, dist)
    rs = r * scale
    backcast = float(np.var(rs))
    mean = float(np.mean(rs))
    starts = [
        dict(mu=mean, omega=0.05 * backcast, alpha=0.06, gamma=0.04 if kind == "gjr" else 0.0,
             beta=0.90, nu=6.0),
        dict(mu=mean, omega=0.2 * backcast, alpha=0.15, gamma=0.05 if kind == "gjr" else 0.0,
             beta=0.70, nu=4.0),
    ]
    outs = []
    pad = -r.size % _LENGTH_BUCKET
    with jax.enable_x64(True):
        rj = jnp.asarray(np.concatenate([rs, np.zeros(pad)]))
        mask = jnp.asarray(np.concatenate([np.ones(r.size), np.zeros(pad)]))
        for start in starts:
            z0 = jnp.asarray(_unconstrained_start(kind, dist, **start))
            out = jax.tree.map(np.asarray, _fit_jit(z0, rj, mask, jnp.asarray(backcast),
                                                    kind=kind, dist=dist))
            if np.isfinite(out["nll"]):
                outs.append(out)
    if not outs:
        raise ConfigError("garch: the likelihood is not finite at any start; check the returns")
    best = min(outs, key=lambda o: float(o["nll"]))
    # Converged: some start met BFGS's criterion at (numerically) the best likelihood.
    tol = 1e-9 * max(1.0, abs(float(best["nll"])))
    converged = any(bool(o["successful"]) and float(o["nll"]) <= float(best["nll"]) + tol
                    for o in outs)
    theta = best["theta"]
    units = np.asarray([1.0 / scale if n == "mu" else 1.0 / scale**2 if n == "omega" else 1.0
                        for n in names])
    try:
        cov_scaled = np.linalg.inv(best["hessian"])
    except np.linalg.LinAlgError:
        cov_scaled = np.full_like(best["hessian"], np.nan)
    robust_scaled = cov_scaled @ best["outer"] @ cov_scaled
    cov = cov_scaled * np.outer(units, units)
    robust = robust_scaled * np.outer(units, units)
    params = {n: float(v) for n, v in zip(names, theta * units, strict=True)}

    def se(c):
        d = np.diag(c)
        return {n: float(math.sqrt(v)) if v >= 0 else math.nan for n, v in zip(names, d, strict=True)}

    p = dict(params)
    gamma = p.get("gamma", 0.0)
    persistence = p["alpha"] + 0.5 * gamma + p["beta"]
    at_bounds = []
    if persistence > 1 - 1e-6:
        at_bounds.append("persistence")  # integrated GARCH: no unconditional variance
    at_bounds += [n for n in ("alpha", "beta") if p[n] < 1e-6]
    if kind == "gjr" and p["alpha"] + gamma < 1e-6:
        at_bounds.append("alpha+gamma")
    if dist == "t" and p["nu"] > 500:
        at_bounds.append("nu")  # t tends to the normal
    uncond = math.sqrt(p["omega"] / (1 - persistence)) if persistence < 1 - 1e-6 else math.nan
    var = best["variance"][: r.size] / scale**2
    eps_last = r[-1] - p["mu"]
    next_var = gjr_variance(var[-1], eps_last, omega=p["omega"], alpha=p["alpha"], gamma=gamma, beta=p["beta"])
    loglik = -float(best["nll"]) + r.size * math.log(scale)  # density of r = scale x that of r*scale
    k = len(names)
    return GarchResult(
        kind=kind, dist=dist, params=params, stderr=se(cov), robust_stderr=se(robust),
        covariance=cov, loglik=loglik, aic=2 * k - 2 * loglik,
        bic=k * math.log(r.size) - 2 * loglik, observations=int(r.size),
        converged=converged, steps=int(best["steps"]), persistence=persistence,
        at_bounds=at_bounds,
        unconditional_vol=uncond, conditional_vol=np.sqrt(var), next_variance=float(next_var),
    )


def simulate_garch(
    params: dict[str, float],
    *,
    kind: Kind = "garch",
    dist: Dist = "normal",
    num_steps: int,
    seed: int | np.random.Generator = 0,
    num_paths: int = 1,
    initial_variance: float | None = None,
) -> np.ndarray:
    """Simulate returns, shape ``(num_paths, num_steps)``, in the units of ``params``.

    ``seed``: an int or a NumPy ``Generator`` (innovations by NumPy: standard normal, or
    ``standard_t(nu) * sqrt((nu - 2) / nu)``). ``initial_variance`` is ``sigma_1^2``
    (default: the unconditional variance, which needs persistence < 1).
    """
    _check(kind, dist)
    names = garch_parameter_names(kind, dist)
    missing = [n for n in names if n not in params]
    if missing:
        raise ConfigError(f"garch.params.{missing[0]}: missing for {kind}/{dist}; expected {list(names)}")
    p = {n: float(params[n]) for n in names}
    gamma = p.get("gamma", 0.0)
    if initial_variance is None:
        persistence = p["alpha"] + 0.5 * gamma + p["beta"]
        if persistence >= 1:
            raise ConfigError("garch: persistence >= 1 has no unconditional variance; give "
                              "initial_variance")
        initial_variance = p["omega"] / (1 - persistence)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    shape = (int(num_steps), int(num_paths))
    if dist == "t":
        z = rng.standard_t(p["nu"], size=shape) * math.sqrt((p["nu"] - 2.0) / p["nu"])
    else:
        z = rng.standard_normal(size=shape)
    out = np.empty(shape)
    var = np.full(shape[1], float(initial_variance))
    for t in range(shape[0]):
        eps = np.sqrt(var) * z[t]
        out[t] = p["mu"] + eps
        var = gjr_variance(var, eps, omega=p["omega"], alpha=p["alpha"], gamma=gamma, beta=p["beta"])
    return out.T


def load_returns(path: str | Path, column: str = "BTC", *, log: bool = True) -> np.ndarray:
    """Daily returns of ``column`` from a closes file (:func:`riskengine.history.load_history`),
    e.g. ``configs/data/history.csv``; log returns unless ``log=False``."""
    closes = load_history(path, [column]).closes[column].to_numpy(np.float64)
    return np.diff(np.log(closes)) if log else closes[1:] / closes[:-1] - 1.0


@dataclasses.dataclass(frozen=True)
class GarchParams:
    """Fitted GARCH/GJR parameters as a calibrate job wrote them (see :func:`load_garch`).

    ``params`` are in the units of daily log returns; ``kind`` is ``garch`` or ``gjr``;
    ``name`` the model name of the file (``garch`` or ``gjr_garch``)."""

    name: str
    kind: str
    dist: str
    params: dict[str, float]
    standard_errors: dict[str, float]
    asset: str | None = None
    source: str | None = None

    def filter(self, returns) -> tuple[np.ndarray, float]:
        """:func:`filter_garch` of ``returns`` with these parameters."""
        return filter_garch(self.params, returns, kind=self.kind)


def filter_garch(params: dict[str, float], returns, *, kind: Kind = "garch") -> tuple[np.ndarray, float]:
    """Conditional variances ``sigma_t^2`` (t = 1..n) of ``returns`` under ``params`` and the
    one-step forecast ``sigma_{n+1}^2``, with the same backcast as :func:`fit_garch`
    (``sigma_1^2`` = the sample variance of the returns)."""
    r = np.asarray(returns, np.float64).ravel()
    gamma = float(params.get("gamma", 0.0)) if kind == "gjr" else 0.0
    mu, omega, alpha, beta = (float(params[n]) for n in ("mu", "omega", "alpha", "beta"))
    var = np.empty(r.size)
    v = float(np.var(r))
    for t, e in enumerate(r - mu):
        var[t] = v
        v = gjr_variance(v, e, omega=omega, alpha=alpha, gamma=gamma, beta=beta)
    return var, float(v)
