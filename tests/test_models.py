"""Model parameter validation, the model registry and the correlation factor.

Every error must name the offending field the way a config spells it
(``model.params.<name>``, ``model.name``, ``correlation``) and show the offending value.
"""

from __future__ import annotations

import math
import re

import jax.numpy as jnp
import numpy as np
import pytest

from riskengine.models import (
    GBM,
    MODELS,
    SVCJ,
    Bates,
    CorrelatedAssets,
    Heston,
    Merton,
    build_model,
    correlation_factor,
    parameter_names,
)

VALID = {
    "gbm": {"sigma": 0.2},
    "heston": {"v0": 0.04, "kappa": 2.0, "theta": 0.05, "sigma": 0.5, "rho": -0.7},
    "merton": {"sigma": 0.2, "jump_intensity": 1.0, "jump_mean": -0.1, "jump_vol": 0.15},
    "bates": {
        "v0": 0.04, "kappa": 2.0, "theta": 0.05, "sigma": 0.5, "rho": -0.7,
        "jump_intensity": 1.0, "jump_mean": -0.1, "jump_vol": 0.15,
    },
    "svcj": {
        "v0": 0.04, "kappa": 2.0, "theta": 0.05, "sigma": 0.5, "rho": -0.7,
        "jump_intensity": 1.0, "jump_mean": -0.1, "jump_vol": 0.15,
        "vol_jump_mean": 0.05, "jump_corr": -0.5,
    },
}
CLASSES = {"gbm": GBM, "heston": Heston, "merton": Merton, "bates": Bates, "svcj": SVCJ}


def with_(name: str, **changes) -> dict:
    return {**VALID[name], **changes}


# (model, field, bad value): one of each kind of violation, for every model that has the field.
INVALID = [
    ("gbm", "sigma", -0.1),
    ("merton", "sigma", -0.2),
    ("merton", "jump_intensity", -1.0),
    ("merton", "jump_vol", -0.05),
    *[(m, "v0", -0.01) for m in ("heston", "bates", "svcj")],
    *[(m, "kappa", 0.0) for m in ("heston", "bates", "svcj")],
    *[(m, "kappa", -1.5) for m in ("heston", "bates", "svcj")],
    *[(m, "theta", -0.04) for m in ("heston", "bates", "svcj")],
    *[(m, "sigma", 0.0) for m in ("heston", "bates", "svcj")],
    *[(m, "sigma", -0.3) for m in ("heston", "bates", "svcj")],
    *[(m, "rho", 1.5) for m in ("heston", "bates", "svcj")],
    *[(m, "rho", -1.01) for m in ("heston", "bates", "svcj")],
    ("bates", "jump_intensity", -0.5),
    ("bates", "jump_vol", -0.15),
    ("svcj", "jump_intensity", -0.5),
    ("svcj", "jump_vol", -0.15),
    ("svcj", "vol_jump_mean", -0.05),
    ("svcj", "jump_corr", 20.0),  # jump_corr * vol_jump_mean = 1.0: E[exp(J_S)] infinite
    ("svcj", "jump_corr", 50.0),  # product 2.5
]
NON_FINITE = [
    (name, field, value)
    for name in MODELS
    for field in parameter_names(name)
    for value in (math.nan, math.inf)
]


def field_message(field: str, value: float) -> str:
    """A regex matching an error that names ``model.params.<field>`` and shows ``value``."""
    return rf"model\.params\.{field}\b.*{re.escape(repr(value))}"


@pytest.mark.parametrize(("name", "field", "value"), INVALID)
def test_invalid_parameter_names_field_and_value(name, field, value):
    params = with_(name, **{field: value})
    with pytest.raises(ValueError, match=field_message(field, value)):
        CLASSES[name](**params)
    with pytest.raises(ValueError, match=field_message(field, value)):
        build_model(name, params)


@pytest.mark.parametrize(("name", "field", "value"), NON_FINITE)
def test_non_finite_parameter_rejected(name, field, value):
    params = with_(name, **{field: value})
    with pytest.raises(ValueError, match=field_message(field, value)):
        CLASSES[name](**params)
    with pytest.raises(ValueError, match=rf"model\.params\.{field}\b"):
        build_model(name, params)


def test_jax_scalar_parameters_are_validated_too():
    with pytest.raises(ValueError, match=r"model\.params\.sigma\b"):
        GBM(sigma=jnp.asarray(-0.1, jnp.float64))
    with pytest.raises(ValueError, match=r"model\.params\.rho\b"):
        Heston(**with_("heston", rho=jnp.asarray(1.2, jnp.float64)))
    with pytest.raises(ValueError, match=r"model\.params\.theta\b"):
        Heston(**with_("heston", theta=jnp.asarray(jnp.nan, jnp.float64)))


@pytest.mark.parametrize(
    ("name", "changes"),
    [
        ("gbm", {"sigma": 0.0}),
        ("merton", {"sigma": 0.0, "jump_intensity": 0.0, "jump_vol": 0.0, "jump_mean": 0.3}),
        ("heston", {"rho": 1.0, "v0": 0.0, "theta": 0.0}),
        ("heston", {"rho": -1.0}),
        ("bates", {"jump_intensity": 0.0, "jump_vol": 0.0}),
        ("svcj", {"jump_corr": 19.9}),  # product 0.995 < 1
        ("svcj", {"jump_corr": -40.0}),  # a negative product is always fine
        ("svcj", {"vol_jump_mean": 0.0, "jump_corr": 1e6}),
    ],
)
def test_boundary_values_are_accepted(name, changes):
    model = CLASSES[name](**with_(name, **changes))
    for field, value in changes.items():
        assert getattr(model, field) == value
    assert build_model(name, with_(name, **changes)) == model


@pytest.mark.parametrize("name", sorted(MODELS))
def test_build_model_builds_each_registered_model(name):
    model = build_model(name, VALID[name])
    assert type(model) is CLASSES[name]
    assert set(parameter_names(name)) == set(VALID[name])
    for field, value in VALID[name].items():
        assert getattr(model, field) == value


def test_build_model_integer_parameters_become_floats():
    model = build_model("heston", with_("heston", kappa=2, rho=0))
    assert model.kappa == 2.0 and isinstance(model.kappa, float)
    assert model.rho == 0.0 and isinstance(model.rho, float)


@pytest.mark.parametrize("name", ["heston", "bates", "svcj"])
def test_build_model_passes_the_scheme(name):
    assert build_model(name, VALID[name]).scheme == "qe"
    assert build_model(name, VALID[name], scheme="euler").scheme == "euler"
    with pytest.raises(ValueError, match=r"mc\.scheme.*'milstein'"):
        build_model(name, VALID[name], scheme="milstein")
    with pytest.raises(ValueError, match=r"mc\.scheme.*'milstein'"):
        CLASSES[name](**VALID[name], scheme="milstein")


def test_build_model_ignores_the_scheme_for_models_without_one():
    assert build_model("gbm", VALID["gbm"], scheme="euler") == GBM(sigma=0.2)


def test_build_model_unknown_model():
    with pytest.raises(ValueError, match=r"model\.name.*'black_karasinski'") as info:
        build_model("black_karasinski", {"sigma": 0.2})
    for name in MODELS:  # the error lists the known models
        assert name in str(info.value)


def test_build_model_unknown_parameter():
    with pytest.raises(ValueError, match=r"model\.params\.vol\b.*unknown.*'gbm'"):
        build_model("gbm", {"sigma": 0.2, "vol": 0.3})
    with pytest.raises(ValueError, match=r"model\.params\.lambda\b.*unknown.*'merton'"):
        build_model("merton", {**VALID["merton"], "lambda": 1.0})


@pytest.mark.parametrize("name", sorted(MODELS))
def test_build_model_missing_parameter(name):
    for field in VALID[name]:
        params = {k: v for k, v in VALID[name].items() if k != field}
        with pytest.raises(ValueError, match=rf"model\.params\.{field}\b.*missing"):
            build_model(name, params)


@pytest.mark.parametrize("value", ["0.2", None, True, [0.2]])
def test_build_model_non_numeric_parameter(value):
    with pytest.raises(ValueError, match=rf"model\.params\.sigma\b.*number.*{re.escape(repr(value))}"):
        build_model("gbm", {"sigma": value})


# --- correlation ---------------------------------------------------------------------------


def test_correlation_factor_of_a_positive_definite_matrix():
    corr = np.array([[1.0, 0.7, 0.2], [0.7, 1.0, -0.3], [0.2, -0.3, 1.0]])
    factor = correlation_factor(corr)
    np.testing.assert_allclose(factor @ factor.T, corr, rtol=0, atol=1e-14)


@pytest.mark.parametrize(
    "corr",
    [
        np.ones((3, 3)),  # all assets perfectly correlated: rank 1
        np.array([[1.0, -1.0], [-1.0, 1.0]]),
        np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]),
    ],
)
def test_correlation_factor_accepts_singular_psd(corr):
    factor = correlation_factor(corr)
    assert np.all(np.isfinite(factor))
    np.testing.assert_allclose(factor @ factor.T, corr, rtol=0, atol=1e-12)


def test_correlation_factor_rejects_non_symmetric():
    corr = np.array([[1.0, 0.5], [0.3, 1.0]])
    with pytest.raises(ValueError, match=r"correlation.*not symmetric.*0\.5.*0\.3"):
        correlation_factor(corr)


def test_correlation_factor_rejects_non_unit_diagonal():
    corr = np.array([[1.0, 0.5], [0.5, 2.0]])
    with pytest.raises(ValueError, match=r"correlation.*diagonal must be 1.*2\.0"):
        correlation_factor(corr)


def test_correlation_factor_rejects_non_psd_and_names_the_assets():
    corr = np.array([[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]])
    smallest = np.linalg.eigvalsh(corr).min()
    assert smallest < 0
    with pytest.raises(ValueError, match=r"correlation.*not positive semi-definite.*smallest eigenvalue -0\.8"):
        correlation_factor(corr)
    with pytest.raises(ValueError, match=r"correlation between \['BTC', 'ETH', 'SOL'\]: not positive semi"):
        correlation_factor(corr, names=["BTC", "ETH", "SOL"])


@pytest.mark.parametrize(
    ("corr", "message"),
    [
        (np.array([[1.0, 1.5], [1.5, 1.0]]), r"correlation: entries must be in \[-1, 1\].*1\.5"),
        (np.array([[1.0, np.nan], [np.nan, 1.0]]), r"correlation: contains NaN"),
        (np.ones((2, 3)), r"correlation: must be a square matrix.*\(2, 3\)"),
        (np.ones(3), r"correlation: must be a square matrix"),
    ],
)
def test_correlation_factor_rejects_malformed(corr, message):
    with pytest.raises(ValueError, match=message):
        correlation_factor(corr)


def test_correlated_assets_shape_must_match_models():
    with pytest.raises(ValueError, match=r"correlation: shape \(3, 3\) does not match .*\(2\)"):
        CorrelatedAssets.from_correlation([GBM(sigma=0.2), GBM(sigma=0.3)], np.eye(3))


def test_correlated_assets_default_is_independent():
    assets = CorrelatedAssets.from_correlation([GBM(sigma=0.2), Heston(**VALID["heston"])])
    assert assets.num_assets == 2
    np.testing.assert_array_equal(np.asarray(assets.factor), np.eye(2))


def test_shift_vol_definitions():
    """Vega's bump: sigma for constant-vol models; sqrt(v0) and sqrt(theta) for SV models."""
    eps = 0.01
    assert GBM(sigma=0.2).shift_vol(eps).sigma == pytest.approx(0.21, abs=1e-15)
    merton = Merton(**VALID["merton"]).shift_vol(eps)
    assert merton.sigma == pytest.approx(0.21, abs=1e-15)
    assert (merton.jump_intensity, merton.jump_mean, merton.jump_vol) == (1.0, -0.1, 0.15)
    for name in ("heston", "bates", "svcj"):
        model = CLASSES[name](**VALID[name], scheme="euler")
        shifted = model.shift_vol(eps)
        assert float(shifted.v0) == pytest.approx((0.2 + eps) ** 2, abs=1e-15)
        assert float(shifted.theta) == pytest.approx((math.sqrt(0.05) + eps) ** 2, abs=1e-15)
        assert shifted.scheme == "euler"
        for field in VALID[name]:
            if field not in ("v0", "theta"):
                assert getattr(shifted, field) == getattr(model, field)


def test_long_run_variance_is_where_the_simulated_variance_settles():
    """E[v_t] -> theta + lambda E[J_v] / kappa for SVCJ (the variance drifts by
    kappa (theta - v) + lambda E[J_v]), theta for Heston: the simulated mean variance after
    5 / kappa years, within 4 standard errors plus the e^{-kappa t} transient."""
    import math

    import jax

    from riskengine.models import SVCJ, Heston
    from riskengine.simulate import simulate_paths

    kappa, theta, lam, mean_jump, t = 3.0, 0.04, 2.0, 0.03, 2.0
    for model, level in [
        (Heston(v0=0.09, kappa=kappa, theta=theta, sigma=0.3, rho=-0.5), theta),
        (SVCJ(v0=0.09, kappa=kappa, theta=theta, sigma=0.3, rho=-0.5, jump_intensity=lam, jump_mean=-0.02,
              jump_vol=0.05, vol_jump_mean=mean_jump, jump_corr=0.0), theta + lam * mean_jump / kappa),
    ]:
        assert float(model.long_run_variance()) == pytest.approx(level, rel=1e-12)
        obs = simulate_paths(model, key=jax.random.key(3), times=[t], num_paths=4096, steps_per_year=50,
                             dtype=jnp.float64)
        v = np.asarray(obs.variance[0, :, 0])
        transient = abs(0.09 - level) * math.exp(-kappa * t)
        assert abs(v.mean() - level) < 4 * v.std() / math.sqrt(v.size) + transient + 1e-3 * level, (v.mean(), level)
