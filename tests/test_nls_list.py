"""ml.nls_list against nlme's nlsList on Orange (tests/reference/make_nls_list_refs.R). R's
nls stops at its default tolerance, ours converges further: estimates agree to ~1e-6."""

from __future__ import annotations

import json

import pytest

import multilevel as ml
from multilevel.errors import DataError, FormulaError

from reference_data import REF, load_data

R = json.loads((REF / "nls_list" / "orange.json").read_text())
FORMULA = "circumference ~ SSlogis(age, Asym, xmid, scal) | Tree"


@pytest.fixture(scope="module")
def fit():
    return ml.nls_list(FORMULA, load_data("Orange"))


def test_per_tree_estimates_and_pooled_sd(fit):
    assert fit.groups == R["groups"]
    for term in ("Asym", "xmid", "scal"):
        assert fit.coef[term].to_numpy() == pytest.approx(R["coef"][term], rel=1e-5)
    assert fit.rse == pytest.approx(R["rse"], rel=1e-6)


def test_intervals_are_nlmes(fit):
    ci = fit.intervals()
    for term in ("Asym", "xmid", "scal"):
        rows = ci[ci.term == term]
        assert rows.lower.to_numpy() == pytest.approx(R["lower"][term], rel=1e-5)
        assert rows.upper.to_numpy() == pytest.approx(R["upper"][term], rel=1e-5)
    own = fit._se_own
    for term in ("Asym", "xmid", "scal"):
        assert own[term].to_numpy() == pytest.approx(R["own_se"][term], rel=1e-4)


def test_parameter_labels_come_from_the_formula():
    fit = ml.nls_list("circumference ~ SSlogis(age, A, m, s) | Tree", load_data("Orange"))
    assert list(fit.coef.columns) == ["A", "m", "s"]


def test_bad_calls_are_typed_errors():
    d = load_data("Orange")
    with pytest.raises(FormulaError, match="self-starting"):
        ml.nls_list("circumference ~ Asym / (1 + exp((xmid - age) / scal)) | Tree", d)
    with pytest.raises(FormulaError, match="takes 1 covariate"):
        ml.nls_list("circumference ~ SSlogis(age, Asym, xmid) | Tree", d)
    with pytest.raises(DataError, match="not in the data"):
        ml.nls_list("circumference ~ SSlogis(days, Asym, xmid, scal) | Tree", d)
