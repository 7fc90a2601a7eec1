"""ml.lm_list against nlme's lmList on Orthodont (tests/reference/make_lm_list_refs.R)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import multilevel as ml
from multilevel.errors import ArgumentError, FormulaError

from reference_data import REF, load_data

R = json.loads((REF / "lm_list" / "orthodont.json").read_text())


@pytest.fixture(scope="module")
def fit():
    return ml.lm_list("distance ~ age | Subject", load_data("Orthodont"))


def test_coefficients_per_group_in_level_order(fit):
    assert fit.groups == R["groups"]
    for term in ("(Intercept)", "age"):
        assert fit.coef[term].to_numpy() == pytest.approx(R["coef"][term], rel=1e-10)


def test_pooled_standard_errors_tests_and_intervals(fit):
    assert fit.rse == pytest.approx(R["rse"], rel=1e-10)
    assert fit.df_resid == R["df_pooled"]
    table = fit.coef_table()
    ci = fit.intervals()
    for term in ("(Intercept)", "age"):
        rows = table[table.term == term]
        assert rows.std_error.to_numpy() == pytest.approx(R["se"][term], rel=1e-9)
        assert rows.statistic.to_numpy() == pytest.approx(R["t_value"][term], rel=1e-9)
        assert rows.p_value.to_numpy() == pytest.approx(R["p_value"][term], rel=1e-7)
        sel = ci[ci.term == term]
        assert sel.lower.to_numpy() == pytest.approx(R["lower"][term], rel=1e-9)
        assert sel.upper.to_numpy() == pytest.approx(R["upper"][term], rel=1e-9)


def test_unpooled_fits_use_each_groups_residuals():
    d = load_data("Orthodont")
    fit = ml.lm_list("distance ~ age | Subject", d, pool=False)
    first = d[d.Subject == "M16"]
    X = np.column_stack([np.ones(len(first)), first.age])
    beta, rss, *_ = np.linalg.lstsq(X, first.distance, rcond=None)
    sd = np.sqrt(rss[0] / (len(first) - 2))
    se = sd * np.sqrt(np.diag(np.linalg.inv(X.T @ X)))
    row = fit.coef_table().iloc[:2]
    assert row.std_error.to_numpy() == pytest.approx(se, rel=1e-10)
    assert (row.df == 2).all()


def test_a_group_that_cannot_determine_a_coefficient_gets_nan():
    d = load_data("Orthodont").copy()
    d.loc[d.Subject == "M16", "age"] = 10.0  # constant within M16: its slope is not defined
    fit = ml.lm_list("distance ~ age | Subject", d)
    assert np.isnan(fit.coef.loc["M16", "age"])
    assert fit.coef.loc["M16", "(Intercept)"] == pytest.approx(d.loc[d.Subject == "M16",
                                                                      "distance"].mean())


def test_bad_calls_are_typed_errors():
    d = load_data("Orthodont")
    with pytest.raises(FormulaError, match="predictors \\| group"):
        ml.lm_list("distance ~ age", d)
    with pytest.raises(ArgumentError):
        ml.lm_list("distance ~ age | Subject", d, pool="yes")
    with pytest.raises(ArgumentError):
        ml.lm_list("distance ~ age | Subject", d).intervals(level=1.5)
