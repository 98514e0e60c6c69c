"""Shared test set-up: float64 enabled (every test still pins the dtype it checks) and the
published reference prices."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import pytest

jax.config.update("jax_enable_x64", True)

REPO_ROOT = Path(__file__).resolve().parent.parent
REFERENCE_PATHS = (
    REPO_ROOT / "tests" / "data" / "pricing.json",
    REPO_ROOT.parent / "shared" / "reference" / "pricing.json",
)


def load_reference_cases() -> dict[str, dict]:
    """The cases of ``pricing.json`` by name (vendored copy first, else the shared one)."""
    for path in REFERENCE_PATHS:
        if path.exists():
            with path.open() as f:
                return {case["name"]: case for case in json.load(f)["cases"]}
    raise FileNotFoundError(f"pricing.json not found at any of {[str(p) for p in REFERENCE_PATHS]}")


@pytest.fixture(scope="session")
def reference_cases() -> dict[str, dict]:
    return load_reference_cases()
