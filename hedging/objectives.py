"""Risk measures of the hedged P&L, minimised in training; the indifference price.

Each objective ``rho`` is a convex, cash-invariant risk measure: ``rho(X + c) = rho(X) - c``.
The seller's indifference price of the derivative (the smallest premium ``p0`` with
``rho(p0 + PL) <= 0``, ``PL`` the hedged P&L without premium) is therefore ``p0 = rho(PL)``.

``loss`` is the differentiable training form (JAX, may carry learned parameters such as the
CVaR threshold); ``price`` is the exact figure on evaluation paths (numpy, float64).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float
from scipy.special import logsumexp


class Objective(eqx.Module):
    def loss(self, pnl: Float[Array, " paths"]) -> Float[Array, ""]:
        raise NotImplementedError

    def price(self, pnl: np.ndarray) -> float:
        raise NotImplementedError

    def price_stderr(self, pnl: np.ndarray) -> float:
        """Monte Carlo standard error of :meth:`price` (delta method)."""
        raise NotImplementedError


class Entropic(Objective):
    """``rho(X) = (1/a) log E[exp(-a X)]`` (exponential utility), computed by log-sum-exp so
    that it stays finite for losses of 1e4 and more."""

    risk_aversion: float = eqx.field(static=True, default=1.0)

    def __check_init__(self):
        if not self.risk_aversion > 0:
            raise ValueError(f"objective.risk_aversion: must be > 0, got {self.risk_aversion}")

    def loss(self, pnl):
        a = self.risk_aversion
        return (jax.nn.logsumexp(-a * pnl) - math.log(pnl.shape[0])) / a

    def price(self, pnl):
        a = self.risk_aversion
        pnl = np.asarray(pnl, np.float64)
        return float((logsumexp(-a * pnl) - math.log(pnl.size)) / a)

    def price_stderr(self, pnl):
        a = self.risk_aversion
        pnl = np.asarray(pnl, np.float64)
        w = np.exp(-a * pnl - np.max(-a * pnl))
        return float(np.std(w, ddof=1) / (np.sqrt(pnl.size) * a * np.mean(w)))


class ExpectedShortfall(Objective):
    """CVaR / expected shortfall at ``level`` of the loss ``-X`` by Rockafellar–Uryasev:
    ``rho(X) = min_w  w + E[(-X - w)^+] / (1 - level)``, with the threshold ``w`` (the VaR)
    learned with the policy."""

    threshold: Float[Array, ""]
    level: float = eqx.field(static=True, default=0.99)

    def __init__(self, level: float = 0.99, threshold: float = 0.0):
        if not 0.0 < level < 1.0:
            raise ValueError(f"objective.level: must be in (0, 1), got {level}")
        self.level = level
        self.threshold = jnp.asarray(threshold, jnp.float32)

    def loss(self, pnl):
        w = self.threshold.astype(pnl.dtype)
        return w + jnp.mean(jax.nn.relu(-pnl - w)) / (1.0 - self.level)

    def price(self, pnl):
        loss = np.sort(-np.asarray(pnl, np.float64))
        n = loss.size
        # exact ES of the empirical distribution (Acerbi–Tasche), fractional atom included
        k = n * (1.0 - self.level)
        whole = int(np.floor(k))
        tail = loss[n - whole:].sum() if whole else 0.0
        if k > whole:
            tail += (k - whole) * loss[n - whole - 1]
        return float(tail / k)

    def price_stderr(self, pnl):
        loss = -np.asarray(pnl, np.float64)
        var = np.quantile(loss, self.level)
        excess = np.maximum(loss - var, 0.0) / (1.0 - self.level)
        return float(np.std(excess, ddof=1) / np.sqrt(loss.size))


class OCE(Objective):
    """Optimized certainty equivalent (Ben-Tal & Teboulle): ``rho(X) = min_w w + E[l(-X - w)]``
    with a convex loss ``l``: ``exponential`` (l(x) = (exp(a x) - 1)/a: the entropic risk),
    ``quadratic`` (l(x) = x + a x²/2 for x > -1/a: a mean–variance-like measure) or ``cvar``."""

    threshold: Float[Array, ""]
    kind: str = eqx.field(static=True, default="exponential")
    risk_aversion: float = eqx.field(static=True, default=1.0)
    level: float = eqx.field(static=True, default=0.95)

    def __init__(self, kind="exponential", *, risk_aversion=1.0, level=0.95, threshold=0.0):
        if kind not in ("exponential", "quadratic", "cvar"):
            raise ValueError(f"objective.loss: expected exponential, quadratic or cvar, got {kind!r}")
        self.kind, self.risk_aversion, self.level = kind, risk_aversion, level
        self.threshold = jnp.asarray(threshold, jnp.float32)

    def _l(self, x, xp):
        a = self.risk_aversion
        if self.kind == "exponential":
            return xp.expm1(a * x) / a
        if self.kind == "quadratic":
            x = xp.maximum(x, -1.0 / a)
            return x + 0.5 * a * x * x
        return xp.maximum(x, 0.0) / (1.0 - self.level)

    def loss(self, pnl):
        w = self.threshold.astype(pnl.dtype)
        return w + jnp.mean(self._l(-pnl - w, jnp))

    def price(self, pnl):
        from scipy.optimize import minimize_scalar

        loss = -np.asarray(pnl, np.float64)
        lo, hi = float(loss.min()), float(loss.max())
        res = minimize_scalar(lambda w: w + np.mean(self._l(loss - w, np)), bounds=(lo, hi), method="bounded",
                              options={"xatol": 1e-12 * max(1.0, hi - lo)})
        return float(res.fun)

    def price_stderr(self, pnl):
        loss = -np.asarray(pnl, np.float64)
        from scipy.optimize import minimize_scalar

        res = minimize_scalar(lambda w: w + np.mean(self._l(loss - w, np)), bounds=(loss.min(), loss.max()),
                              method="bounded")
        return float(np.std(self._l(loss - res.x, np), ddof=1) / np.sqrt(loss.size))


class MeanVariance(Objective):
    """``rho(X) = -E[X] + (lambda / 2) Var[X]``."""

    risk_aversion: float = eqx.field(static=True, default=1.0)

    def loss(self, pnl):
        return -jnp.mean(pnl) + 0.5 * self.risk_aversion * jnp.var(pnl)

    def price(self, pnl):
        pnl = np.asarray(pnl, np.float64)
        return float(-pnl.mean() + 0.5 * self.risk_aversion * pnl.var())

    def price_stderr(self, pnl):
        pnl = np.asarray(pnl, np.float64)
        c = pnl - pnl.mean()
        influence = -c + 0.5 * self.risk_aversion * (c * c - pnl.var())
        return float(np.std(influence, ddof=1) / np.sqrt(pnl.size))
