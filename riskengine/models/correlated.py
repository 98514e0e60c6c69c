"""Several assets simulated together, their spot shocks correlated by a matrix.

The correlation is that of the assets' spot Brownian motions. For a stochastic-volatility
asset i with spot/variance correlation rho_i, its variance shock is
rho_i W_i + sqrt(1 - rho_i^2) P_i with P independent of everything else, so both the
cross-asset and the spot/variance correlations hold exactly in the continuous-time limit.
"""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import numpy as np
from jaxtyping import Array, Float

from riskengine.models.base import Model


def repaired_correlation(correlation) -> np.ndarray:
    """A sample correlation matrix made a valid one: symmetrised, clipped to [-1, 1], unit
    diagonal, and (when not positive semi-definite) its negative eigenvalues raised to 1e-10
    and the diagonal renormalised to one."""
    corr = np.asarray(correlation, np.float64)
    corr = np.clip((corr + corr.T) / 2, -1.0, 1.0)
    np.fill_diagonal(corr, 1.0)
    vals, vecs = np.linalg.eigh(corr)
    if vals.min() < 1e-10:
        corr = (vecs * np.clip(vals, 1e-10, None)) @ vecs.T
        d = np.sqrt(np.diag(corr))
        corr = corr / np.outer(d, d)
    return corr


def correlation_factor(correlation, *, names: Sequence[str] | None = None, tol: float = 1e-10) -> np.ndarray:
    """A matrix L with L @ L.T == correlation, after checking it is a valid correlation.

    Positive semi-definite matrices are accepted (e.g. correlations stressed to 1): L then
    comes from the eigen-decomposition instead of Cholesky.
    """
    corr = np.asarray(correlation, dtype=np.float64)
    n = corr.shape[0] if corr.ndim == 2 else -1
    if corr.ndim != 2 or corr.shape != (n, n):
        raise ValueError(f"correlation: must be a square matrix, got shape {corr.shape}")
    if not np.all(np.isfinite(corr)):
        raise ValueError("correlation: contains NaN or infinite entries")
    if not np.allclose(corr, corr.T, atol=1e-12):
        i, j = np.unravel_index(np.argmax(np.abs(corr - corr.T)), corr.shape)
        raise ValueError(f"correlation: not symmetric, [{i}][{j}]={corr[i, j]} but [{j}][{i}]={corr[j, i]}")
    if not np.allclose(np.diag(corr), 1.0, atol=1e-12):
        raise ValueError(f"correlation: diagonal must be 1, got {np.diag(corr).tolist()}")
    if np.any(np.abs(corr) > 1.0 + 1e-12):
        i, j = np.unravel_index(np.argmax(np.abs(corr)), corr.shape)
        raise ValueError(f"correlation: entries must be in [-1, 1], got [{i}][{j}]={corr[i, j]}")
    eigenvalues, eigenvectors = np.linalg.eigh(corr)
    if eigenvalues.min() < -tol:
        label = f" between {list(names)}" if names is not None else ""
        raise ValueError(
            f"correlation{label}: not positive semi-definite (smallest eigenvalue {eigenvalues.min():.3g})"
        )
    try:
        return np.linalg.cholesky(corr)
    except np.linalg.LinAlgError:
        return eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))


class CorrelatedAssets(eqx.Module):
    """A tuple of single-asset models and the factor of their spot-shock correlation."""

    models: tuple[Model, ...]
    factor: Float[Array, "assets assets"]

    @classmethod
    def from_correlation(cls, models: Sequence[Model], correlation=None, *, names=None) -> CorrelatedAssets:
        models = tuple(models)
        if correlation is None:
            correlation = np.eye(len(models))
        factor = correlation_factor(correlation, names=names)
        if factor.shape[0] != len(models):
            raise ValueError(
                f"correlation: shape {factor.shape} does not match the number of assets ({len(models)})"
            )
        return cls(models=models, factor=factor)

    @classmethod
    def single(cls, model: Model) -> CorrelatedAssets:
        return cls(models=(model,), factor=np.ones((1, 1)))

    @property
    def num_assets(self) -> int:
        return len(self.models)

    def shift_vol(self, eps) -> CorrelatedAssets:
        return CorrelatedAssets(models=tuple(m.shift_vol(eps) for m in self.models), factor=self.factor)
