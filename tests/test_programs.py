"""riskengine.programs: compiled programs kept between runs, loaded without tracing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

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


def test_same_call_in_one_process_reuses_the_program_without_hashing(folder, monkeypatch):
    fn, traced = _counting()
    program = programs.persistent_jit(fn, key="k")
    first = program(*ARGS)
    hashed = []
    monkeypatch.setattr(programs, "_fingerprint", lambda *a: hashed.append(1) or "x")
    assert _same(program(*ARGS), first)
    assert hashed == [] and len(traced) == 1
    program(jnp.ones((3, 3)), ARGS[1])  # a new shape: a new program, looked up by its name
    assert hashed == [1]


def test_compilation_cache_flags_do_not_change_the_program(folder):
    """``_compile`` switches JAX's cache threshold for a moment, globally: another thread
    that looks up its program then must find the same one (it once compiled it again)."""
    fn, traced = _counting()
    programs.persistent_jit(fn, key="k")(*ARGS)
    before = jax.config.jax_persistent_cache_min_compile_time_secs
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float("inf"))
    try:
        programs.persistent_jit(fn, key="k")(*ARGS)  # nothing in memory: found by its name
    finally:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", before)
    assert len(traced) == 1
    assert len(list(folder.glob(f"*{programs.SUFFIX}"))) == 1


def test_threads_asking_at_once_compile_once(folder):
    fn, traced = _counting()
    program = programs.persistent_jit(fn, key="k")
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: program(*ARGS), range(4)))
    assert len(traced) == 1
    assert all(_same(r, results[0]) for r in results)


def test_two_programs_compiling_at_once_put_the_cache_threshold_back(folder, monkeypatch):
    """A price job compiles its references on a thread beside its chunk. Each compilation
    switches JAX's (global) cache threshold off and back: the second to start once saved
    the first's infinity and, finishing last, left JAX's cache off for the whole process."""
    import threading
    import time

    entered, lock = [], threading.Lock()
    both_in = threading.Barrier(2)
    compile_ = jax.stages.Lowered.compile

    def compile_in_step(self, *args, **kwargs):
        with lock:
            entered.append(threading.get_ident())
        both_in.wait(timeout=60)  # both threads inside their switched window
        if entered[-1] == threading.get_ident():
            time.sleep(0.3)  # the second in finishes last
        return compile_(self, *args, **kwargs)

    monkeypatch.setattr(jax.stages.Lowered, "compile", compile_in_step)
    before = jax.config.jax_persistent_cache_min_compile_time_secs
    first, second = programs.persistent_jit(_counting()[0], key="one"), programs.persistent_jit(jnp.cos, key="two")
    with ThreadPoolExecutor(2) as pool:
        done = [pool.submit(first, *ARGS), pool.submit(second, ARGS[0])]
        for future in done:
            future.result()
    assert len(entered) == 2
    assert jax.config.jax_persistent_cache_min_compile_time_secs == before


def test_analytic_references_as_one_kept_program(folder):
    """The price job's references compiled whole (and loaded again) agree with the eager
    forward-mode Greeks to 1e-12 relative, in float64."""
    from riskengine.references import analytic_price_and_greeks, price_and_greeks_program

    model = Heston(v0=0.04, kappa=4.0, theta=0.25, sigma=1.0, rho=-0.5)
    strike, maturity, is_call = np.array([100.0, 90.0]), np.array([1.0, 0.5]), np.array([True, False])
    with jax.enable_x64(True):
        eager = analytic_price_and_greeks(model, spot=100.0, strike=strike, maturity=maturity, rate=0.01,
                                          dividend=0.02, is_call=is_call)
        args = (model, np.float64(100.0), strike, maturity, np.float64(0.01), np.float64(0.02), is_call)
        stored = price_and_greeks_program(*args)
        loaded = programs.persistent_jit(price_and_greeks_program.__wrapped__,
                                         key="references.analytic_price_and_greeks")(*args)
    assert len(list(folder.glob(f"*{programs.SUFFIX}"))) == 1
    for name in ("price", "delta", "gamma", "vega"):
        assert np.asarray(stored[name]).dtype == np.float64
        np.testing.assert_allclose(stored[name], eager[name], rtol=1e-12, atol=0)
        assert np.array_equal(loaded[name], stored[name])
