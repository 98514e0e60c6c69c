"""riskengine.programs: compiled programs kept between runs, loaded without tracing."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from riskengine import cache, programs
from riskengine.models import Heston
from riskengine.simulate import as_assets

ARGS = (jnp.arange(6.0).reshape(2, 3), as_assets(Heston(v0=0.04, kappa=2.0, theta=0.05, sigma=0.5, rho=-0.6)))


def _counting():
    """A function of an array and a model (an equinox tree with a static field), and how
    many times it was traced."""
    traced = []

    def fn(x, assets):
        traced.append(1)
        model = assets.models[0]
        return {"a": jnp.sin(x) * model.v0 + jnp.exp(model.rho * x), "b": jnp.sum(x * x) * model.kappa}

    return fn, traced


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "_programs", tmp_path)
    return tmp_path


def _same(a, b):
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in
               zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def test_plain_jit_without_the_cache(monkeypatch):
    monkeypatch.setattr(cache, "_programs", None)
    fn, _ = _counting()
    assert _same(programs.persistent_jit(fn, key="k")(*ARGS), jax.jit(fn)(*ARGS))


def test_stored_then_loaded_without_tracing_bitwise(folder):
    fn, traced = _counting()
    first = programs.persistent_jit(fn, key=("test", 1))(*ARGS)
    assert len(list(folder.glob(f"*{programs.SUFFIX}"))) == 1
    assert _same(first, jax.jit(fn)(*ARGS))
    traced.clear()
    again = programs.persistent_jit(fn, key=("test", 1))(*ARGS)  # a new process's view: nothing in memory
    assert traced == []
    assert _same(first, again)


def test_key_and_shapes_make_new_entries(folder):
    fn, _ = _counting()
    programs.persistent_jit(fn, key="one")(*ARGS)
    programs.persistent_jit(fn, key="two")(*ARGS)
    programs.persistent_jit(fn, key="one")(jnp.ones((3, 3)), ARGS[1])
    assert len(list(folder.glob(f"*{programs.SUFFIX}"))) == 3


def test_unreadable_entry_is_compiled_again(folder):
    fn, traced = _counting()
    expected = programs.persistent_jit(fn, key="k")(*ARGS)
    (path,) = folder.glob(f"*{programs.SUFFIX}")
    path.write_bytes(b"truncated")
    traced.clear()
    assert _same(programs.persistent_jit(fn, key="k")(*ARGS), expected)
    assert traced  # compiled again
    assert path.stat().st_size > 100  # and stored again


def test_entry_that_loads_but_cannot_run_is_compiled_again(folder, monkeypatch):
    fn, _ = _counting()
    expected = programs.persistent_jit(fn, key="k")(*ARGS)

    def broken(*leaves):
        raise jax.errors.JaxRuntimeError("NOT_FOUND: Function multiply_add_fusion not found (type id: 1)")

    monkeypatch.setattr(programs, "_load", lambda path: broken)
    assert _same(programs.persistent_jit(fn, key="k")(*ARGS), expected)
