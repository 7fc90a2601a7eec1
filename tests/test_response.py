"""The Gaussian response's criterion (models/response.py): the one place the deviance is
written. The profiled criterion is the explicit one at sigma^2 = r^2 / m, and the explicit one
is minimized there; the model's objective is this criterion (sleepstudy: lme4's REML criterion
1743.628271959952 = -2 x its logLik -871.814135979976, tests/reference)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import multilevel as ml
from multilevel.linalg.blocked_cholesky import profiled_terms
from multilevel.models.response import GaussianResponse

# arbitrary positive factor numbers and sizes: identities, not fitted values
TERMS = (12.5, 3.25, 480.0)


@pytest.mark.parametrize("reml", [False, True])
def test_profiled_criterion_is_the_explicit_one_at_the_profiled_sigma(reml):
    resp = GaussianResponse(nobs=60, n_fixed=3, log_det_w=-1.5)
    m = 57 if reml else 60
    sigma_hat = math.sqrt(TERMS[2] / m)
    profiled = resp.criterion(*TERMS, reml=reml)
    assert profiled == pytest.approx(resp.criterion(*TERMS, reml=reml, sigma=sigma_hat),
                                     rel=1e-14)
    for s in (0.5 * sigma_hat, 0.9 * sigma_hat, 1.1 * sigma_hat, 2 * sigma_hat):
        assert resp.criterion(*TERMS, reml=reml, sigma=s) > profiled


def test_no_residual_or_no_degrees_of_freedom_is_infinite():
    assert GaussianResponse(10, 2, 0.0).criterion(1.0, 1.0, 0.0, reml=False) == math.inf
    assert GaussianResponse(2, 2, 0.0).criterion(1.0, 1.0, 5.0, reml=True) == math.inf


def test_the_model_objective_is_the_response_criterion():
    fit = ml.lmer("Reaction ~ Days + (Days | Subject)", ml.datasets.load("sleepstudy"))
    model = fit.model
    terms = profiled_terms(model.A, model.layout.templates(fit.theta))
    assert model.response.criterion(*terms, reml=True) == fit.objective
    assert fit.objective == pytest.approx(1743.628271959952, rel=1e-12)
    ml_value = model.objective(fit.theta, reml=False)
    assert ml_value == model.response.criterion(*terms, reml=False)
    assert np.isfinite(ml_value)
