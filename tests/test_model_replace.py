"""``model.replace(...)``: the one refit path. A replaced model keeps every setting not named
(and shares what the change leaves alone), and every refit in the inference layer goes
through it, so a setting such as the optimizer, its settings or the weights is never dropped.

No number here comes from outside: each check compares two of our own fits (the replaced model
against one built from scratch with the same settings), on sleepstudy and on weights and an
offset simulated with the seeds given beside them.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import multilevel as ml
from multilevel.errors import ArgumentError, DataError, OptimizerError
from multilevel.inference.model_comparison import refit_ml
from multilevel.models.lmm import ModelStages

FORMULA = "Reaction ~ Days + (Days | Subject)"
COBYQA = {"maxfev": 4000, "final_tr_radius": 1e-9}


@pytest.fixture(scope="module")
def data():
    df = ml.datasets.load("sleepstudy").copy()
    rng = np.random.default_rng(20261107)
    df["w"] = rng.uniform(0.5, 2.0, len(df))
    df["exposure"] = rng.uniform(0.5, 1.5, len(df))
    df["x"] = rng.standard_normal(len(df))
    return df


@pytest.fixture(scope="module")
def fit(data):
    """A fit with every setting away from its default."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ml.errors.MultilevelWarning)
        return ml.lmer(FORMULA, data, weights="w", offset="exposure", optimizer="cobyqa",
                       optimizer_settings=COBYQA, calc_derivs=False, start="lme4")


@pytest.fixture(scope="module")
def fit_x(data):
    """A random-intercept fit with a level-1 regressor whose group means vary (Mundlak), with
    the optimizer away from its default."""
    return ml.lmer("Reaction ~ Days + x + (1 | Subject)", data, weights="w",
                   optimizer="cobyqa", optimizer_settings=COBYQA)


def _spy_optimize(mp: pytest.MonkeyPatch, model: ModelStages, seen: list[tuple]) -> None:
    """Record the settings of every model optimized (the public model class carries its own
    wrapped copy of ``optimize``, so both classes are patched)."""
    original = ModelStages.optimize

    def spy(self):
        seen.append(_settings(self)[:4])
        return original(self)

    for cls in {ModelStages, type(model)}:
        mp.setattr(cls, "optimize", spy)


def _settings(model: ModelStages) -> tuple:
    return (model.optimizer, model.optimizer_settings, model.calc_derivs,
            model._weights_source, model._offset_source, model.start)


def test_settings_alone_share_the_design_and_cross_products(fit):
    model = fit.model
    other = model.replace(reml=False)
    assert type(other) is type(model) and other is not model
    assert other.design is model.design and other.A is model.A
    assert not other.reml and model.reml
    assert _settings(other) == _settings(model)
    assert other.data is model.data
    theta = fit.theta
    assert other.objective(theta) == model.objective(theta, reml=False)
    # the settings are a copy: changing the new model's does not reach the old one
    other.optimizer_settings["maxfev"] = 10
    assert model.optimizer_settings == COBYQA


def test_new_response_shares_the_random_effects_blocks(fit, data):
    model = fit.model
    y = fit.simulate(1, seed=11)["sim_1"].to_numpy()
    other = model.replace(y=y)
    assert other.design.X is model.design.X
    assert all(a is b for a, b in zip(other.A.diag, model.A.diag, strict=True))
    np.testing.assert_array_equal(other.design.y, y)
    np.testing.assert_array_equal(model.design.y, data["Reaction"].to_numpy())
    assert _settings(other) == _settings(model)
    fresh = ml.LinearMixedModel(FORMULA, data.assign(Reaction=y), weights="w",
                                offset="exposure")
    assert other.objective(fit.theta) == pytest.approx(fresh.objective(fit.theta), rel=1e-12)
    alias = model.with_response(y)
    assert alias.objective(fit.theta) == other.objective(fit.theta)
    with pytest.raises(DataError, match="180 values"):
        model.replace(y=y[:10])


def test_new_formula_keeps_every_setting(fit, data):
    smaller = fit.model.replace(formula="Reaction ~ Days + (1 | Subject)")
    assert _settings(smaller) == _settings(fit.model)
    assert smaller.reml == fit.model.reml
    fresh = ml.LinearMixedModel("Reaction ~ Days + (1 | Subject)", data, weights="w",
                                offset="exposure")
    theta = np.array([0.8])
    assert smaller.objective(theta) == pytest.approx(fresh.objective(theta), rel=1e-12)


def test_new_weights_or_offset_rebuild_the_design(fit, data):
    unweighted = fit.model.replace(weights=None)
    assert unweighted.design.weights is None and unweighted._weights_source is None
    assert unweighted._offset_source == "exposure"
    fresh = ml.LinearMixedModel(FORMULA, data, offset="exposure")
    assert unweighted.objective(fit.theta) == pytest.approx(fresh.objective(fit.theta),
                                                            rel=1e-12)
    no_offset = fit.model.replace(offset=None)
    assert no_offset.design.offset is None
    np.testing.assert_array_equal(no_offset.design.weights, fit.model.design.weights)


def test_start_values_are_kept_only_for_the_same_layout(data):
    theta0 = [1.0, 0.1, 0.2]
    model = ml.LinearMixedModel(FORMULA, data, start=theta0)
    np.testing.assert_array_equal(model.replace(reml=False).start, theta0)
    np.testing.assert_array_equal(model.replace(formula=FORMULA + " + x").start, theta0)
    assert model.replace(formula="Reaction ~ Days + (1 | Subject)").start is None
    named = ml.LinearMixedModel(FORMULA, data, start="lme4")
    assert named.replace(formula="Reaction ~ Days + (1 | Subject)").start == "lme4"
    with pytest.raises(OptimizerError, match="3 values"):
        model.replace(start=[1.0])


def test_bad_combinations_are_refused(fit):
    with pytest.raises(ArgumentError, match="design= or formula="):
        fit.model.replace(design=fit.model.design, formula=FORMULA)
    dataless = fit.model.replace(design=fit.model.design, data=None)
    assert dataless.data is None
    with pytest.raises(ArgumentError, match="keeps no data"):
        dataless.replace(weights=None)
    # settings are checked before any work on the data
    with pytest.raises(OptimizerError, match="maxfev"):
        fit.model.replace(optimizer="bobyqa")
    assert fit.model.replace(optimizer="bobyqa", optimizer_settings=None).optimizer_settings \
        == {}


def test_anova_ml_refit_keeps_every_setting(fit):
    """The ML refit used to drop the data, the weights source and the start."""
    refitted = refit_ml(fit)
    assert not refitted.reml
    assert _settings(refitted.model) == _settings(fit.model)
    assert refitted.model.data is fit.model.data
    assert refitted.model.A is fit.model.A
    table = ml.anova(refitted, fit.model.replace(formula=FORMULA + " + x").fit())
    assert table.attrs["refitted_ml"] == ["m2"]


def test_step_refits_keep_the_optimizer_settings(fit):
    """lmerTest's step used to refit with the optimizer only (its settings, calc_derivs and the
    start were dropped)."""
    seen: list[tuple] = []
    with pytest.MonkeyPatch.context() as mp:
        _spy_optimize(mp, fit.model, seen)
        result = ml.step(fit, reduce_fixed=False)
    assert seen and all(s == _settings(fit.model)[:4] for s in seen)
    assert _settings(result.model.model) == _settings(fit.model)


@pytest.mark.parametrize("procedure", ["mundlak", "bootstrap", "profile"])
def test_every_refit_keeps_the_optimizer(fit_x, procedure):
    """Mundlak's augmented fit and the profile's fixed-effect refits used to run bobyqa with
    its default settings whatever the fit used; the bootstrap refits keep them too."""
    seen: list[tuple] = []
    with pytest.MonkeyPatch.context() as mp:
        _spy_optimize(mp, fit_x.model, seen)
        if procedure == "mundlak":
            ml.mundlak(fit_x)
        elif procedure == "bootstrap":
            ml.bootstrap(fit_x, n=3, seed=1, n_jobs=1, progress=False)
        else:
            fit_x.confint(method="profile")
    assert seen
    assert all((s[0], s[1], s[3]) == ("cobyqa", COBYQA, "w") for s in seen)
    # the ML refits check convergence as the fit did; the simulated refits and the profile's
    # fixed-effect refits (only their optimum is needed) skip the check
    derivs = [s[2] for s in seen]
    if procedure == "mundlak":
        assert all(derivs)
    elif procedure == "bootstrap":
        assert not any(derivs)
    else:
        assert derivs[0] and not any(derivs[1:])


def test_mundlak_matches_the_model_with_the_means_fitted_from_scratch(data):
    """The augmented fit through replace() is the fit of the formula with the group mean."""
    frame = data.assign(Days_mean=data.groupby("Subject", observed=True)["x"].transform("mean"))
    formula = "Reaction ~ x + (1 | Subject)"
    fit = ml.lmer(formula, frame, reml=False, weights="w")
    test = ml.mundlak(fit)
    big = ml.lmer("Reaction ~ x + Days_mean + (1 | Subject)", frame, reml=False, weights="w")
    assert test.statistic == pytest.approx(2 * (big.loglik - fit.loglik), rel=1e-6, abs=1e-8)


def test_power_extend_keeps_the_optimizer(fit):
    """simr's extend used to give a model with bobyqa's defaults and the weights source
    dropped; the extended design keeps no data (its rows are copies)."""
    big = ml.inference.extend_groups(fit, 30)
    assert big.model.optimizer == "cobyqa" and big.model.optimizer_settings == COBYQA
    assert big.model.data is None
    assert big.ngroups["Subject"] == 30
