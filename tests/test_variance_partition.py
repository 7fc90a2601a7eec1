"""ICC, Nakagawa R^2 and the design effect against R's performance package.

Reference values: tests/reference/performance/icc_r2.json, written by
tests/reference/make_performance_refs.R (R 4.2.2, lme4 1.1-31, performance 0.10.2); each case
stores its R call. Targets: ICC and R^2 1e-5 (the issue's ICC tolerance); the variance
components, being estimates, 1e-4.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import multilevel as ml

REF = json.loads(
    (Path(__file__).parent / "reference" / "performance" / "icc_r2.json").read_text())["cases"]
MODELS = {
    "sleepstudy_slope": ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    "sleepstudy_intercept": ("sleepstudy", "Reaction ~ Days + (1 | Subject)"),
    "penicillin_crossed": ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
    "hsb_slope": ("Hsb82", "mAch ~ meanses * cses + (cses | school)"),
    "dyestuff_intercept": ("Dyestuff", "Yield ~ 1 + (1 | Batch)"),
}


@pytest.fixture(scope="module")
def fits():
    return {k: ml.lmer(f, ml.datasets.load(d)) for k, (d, f) in MODELS.items()}


@pytest.mark.parametrize("case", sorted(MODELS))
def test_icc_and_r2_match_performance(case, fits):
    ref = REF[case]
    fit = fits[case]
    icc = ml.icc(fit)
    r2 = ml.r2(fit)
    assert icc["adjusted"] == pytest.approx(ref["icc_adjusted"], rel=1e-5)
    assert icc["conditional"] == pytest.approx(ref["icc_unadjusted"], rel=1e-5)
    assert r2["marginal"] == pytest.approx(ref["r2_marginal"], rel=1e-5, abs=1e-12)
    assert r2["conditional"] == pytest.approx(ref["r2_conditional"], rel=1e-5)
    # the components themselves are variance estimates: the 1e-4 agreement target
    v = ml.inference.variance_decomposition(fit)
    assert v.fixed == pytest.approx(ref["var_fixed"], rel=1e-4, abs=1e-12)
    assert v.random == pytest.approx(ref["var_random"], rel=1e-4)
    assert v.residual == pytest.approx(ref["var_residual"], rel=1e-4)


def test_design_effect_of_a_random_intercept(fits):
    """One random intercept: 1 + (m - 1) ICC, m the mean cluster size (Dyestuff: 5 per batch)."""
    fit = fits["dyestuff_intercept"]
    deff = ml.design_effect(fit)
    assert list(deff.index) == ["Batch"]
    assert deff["Batch"] == pytest.approx(1 + (30 / 6 - 1) * ml.icc(fit)["adjusted"], rel=1e-12)


def test_design_effects_of_crossed_factors_add_up(fits):
    fit = fits["penicillin_crossed"]
    v = ml.inference.variance_decomposition(fit)
    assert set(v.by_group) == {"plate", "sample"}
    assert sum(v.by_group.values()) == pytest.approx(v.random)
    deff = ml.design_effect(fit)
    share = v.by_group["sample"] / (v.random + v.residual)
    assert deff["sample"] == pytest.approx(1 + (144 / 6 - 1) * share, rel=1e-12)
    assert np.all(deff > 1)
