"""The analytic gradient of the Laplace deviance (models/laplace_gradient.py) against central
differences of the deviance itself, on models with one, two and three grouping factors, a
correlated random slope and an offset; and the gradient-based second stage against the
derivative-free one (same optimum, far fewer evaluations)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import multilevel as ml
from multilevel.models.glmm import GLMMStages
from multilevel.models.laplace_gradient import gradient_available, laplace_gradient

from reference_data import load_data

MODELS = {
    "cbpp": ("cbind(incidence, size - incidence) ~ period + (1 | herd)", "cbpp", "binomial"),
    "slope": ("use ~ age + urban + (urban | district)", "Contraception", "binomial"),
    "crossed": ("y ~ x + (1 | a) + (1 | b)", "poisson_crossed_sim", "poisson"),
    "three": ("TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)",
              "grouseticks", "poisson"),
    "offset": ("y ~ x + offset(log(exposure)) + (1 | g)", "rates_sim", "poisson"),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_gradient_matches_central_differences(name):
    formula, data, family = MODELS[name]
    model = GLMMStages(formula, load_data(data), family=family)
    assert gradient_available(model.predictor, model.response)
    rng = np.random.default_rng(1)
    nt = model.layout.n_theta
    theta = model.layout.start() * 0.6 + 0.1 * rng.random(nt) * (model.layout.lower_bounds() == 0)
    x = np.concatenate([theta, model._beta_glm + 0.05 * rng.standard_normal(model.n_fixed)])
    modes = model._modes(x[:nt], x[nt:], None, full=False)
    grad = laplace_gradient(model.predictor, model.X, model.response, x[:nt], modes)
    h = 1e-5
    numeric = np.array([(model._criterion(x + h * e, True) - model._criterion(x - h * e, True))
                        / (2 * h) for e in np.eye(x.size)])
    assert grad == pytest.approx(numeric, rel=1e-5, abs=1e-5)


def test_gradient_not_offered_where_it_does_not_apply():
    probit = GLMMStages(MODELS["cbpp"][0], load_data("cbpp"),
                        family=ml.families.Binomial(link="probit"))
    gamma = GLMMStages("y ~ x + (1 | g)", load_data("gamma_sim"),
                       family=ml.families.Gamma(link="log"))
    for model in (probit, gamma):
        assert not gradient_available(model.predictor, model.response)


@pytest.mark.parametrize("name", ["slope", "crossed", "three"])
def test_gradient_stage_reaches_the_derivative_free_optimum(name):
    formula, data, family = MODELS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fast = ml.glmer(formula, load_data(data), family=family)
        # any optimizer setting of the user's keeps BOBYQA for the second stage
        slow = ml.glmer(formula, load_data(data), family=family,
                        optimizer_settings={"maxeval": 100_000})
    assert fast.optsum.backend == "lbfgsb-gradient" and slow.optsum.backend == "bobyqa"
    assert fast.loglik == pytest.approx(slow.loglik, rel=1e-9, abs=1e-7)
    assert fast.beta == pytest.approx(slow.beta, rel=1e-4, abs=1e-5)
    assert fast.theta == pytest.approx(slow.theta, rel=1e-3, abs=1e-4)
    se_fast, se_slow = np.sqrt(np.diag(fast.vcov)), np.sqrt(np.diag(slow.vcov))
    assert se_fast == pytest.approx(se_slow, rel=1e-3)
    assert fast.optsum.feval < slow.optsum.feval


def test_a_variance_on_its_bound_gets_the_derivative_free_stage_too():
    """A random slope with no intercept variance: L-BFGS-B can stop at a saddle on the face
    where the intercept's SD is 0 (-1232.40 here), which BOBYQA steps out of (-1232.03); the
    gradient stage then also runs BOBYQA and keeps the better optimum."""
    rng = np.random.default_rng(5)
    n = 800
    g = rng.integers(0, 40, n)
    x = rng.standard_normal(n)
    rng.random(n)  # the draws of a binary response the original example also made
    slopes = rng.standard_normal(40) * 0.4
    data = pd.DataFrame({"g": g.astype(str), "x": x,
                         "c": rng.poisson(np.exp(0.3 + 0.2 * x + slopes[g] * x))})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ml.errors.SingularFitWarning)
        fast = ml.glmer("c ~ x + (x | g)", data, family="poisson")
        slow = ml.glmer("c ~ x + (x | g)", data, family="poisson",
                        optimizer_settings={"maxeval": 100_000})
    assert fast.loglik == pytest.approx(slow.loglik, abs=1e-6)
    assert fast.loglik > -1232.1
    assert fast.converged
