"""Saving a trained policy so that other jobs (allocation) and users can load it again:
``policy.json`` (how to rebuild its structure) beside ``policy.eqx`` (its weights,
equinox serialisation)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from hedging.policies import MLPPolicy, NoTransactionBandPolicy, Policy, RecurrentPolicy

_BUILDERS = {"mlp": MLPPolicy, "no_transaction_band": NoTransactionBandPolicy, "recurrent": RecurrentPolicy}


def build_policy(spec: dict[str, Any], *, key=None, backend: str = "jax") -> Policy:
    """A policy from its spec ``{type, features, width, depth, base, start, num_instruments, dtype}``;
    ``backend``: the training date loop of the perceptron policies (``jax`` or ``native``, see
    :func:`hedging.rollout.recurrent_mlp_rollout`)."""
    kind = spec["type"]
    if kind not in _BUILDERS:
        raise ValueError(f"policy.type: expected one of {sorted(_BUILDERS)}, got {kind!r}")
    key = jax.random.key(0) if key is None else key
    dtype = jnp.dtype(spec.get("dtype", "float32"))
    kwargs: dict[str, Any] = {"width": spec.get("width", 32), "key": key, "dtype": dtype}
    if kind != "recurrent":
        kwargs["depth"] = spec.get("depth", 4)
    if kind != "no_transaction_band":
        kwargs["num_instruments"] = spec.get("num_instruments", 1)
    if kind in ("mlp", "no_transaction_band"):
        kwargs["backend"] = backend
    if kind == "mlp":
        kwargs["base"] = spec.get("base", "none")
    if kind == "no_transaction_band":
        kwargs["start"] = spec.get("start", "random")
    return _BUILDERS[kind](tuple(spec["features"]), **kwargs)


def save_policy(directory: str | Path, policy: Policy, spec: dict[str, Any]) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / "policy.eqx.tmp"
    eqx.tree_serialise_leaves(tmp, policy)
    os.replace(tmp, directory / "policy.eqx")
    (directory / "policy.json").write_text(json.dumps(spec, indent=2))


def load_policy(directory: str | Path) -> Policy:
    directory = Path(directory)
    spec_file = directory / "policy.json"
    if not spec_file.exists():
        raise FileNotFoundError(f"{spec_file}: no saved policy here (run a hedge job first)")
    spec = json.loads(spec_file.read_text())
    skeleton = build_policy(spec)
    return eqx.tree_deserialise_leaves(directory / "policy.eqx", skeleton)
