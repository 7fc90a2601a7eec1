"""The response forms of a binomial GLMM, read by ``build_design(..., glm=True)`` as lme4's
``glmer`` (through R's ``binomial()$initialize``) reads them: ``cbind(successes, failures)``,
a logical column, a two-level factor; and what a linear mixed model says to each of them.

Provenance of the numbers: the cbpp data (lme4::cbpp, 56 rows, tests/reference/data/cbpp.csv,
read with herd and period as factors in R's level order) and small simulated frames whose seeds
are given where they are built. R's rules are the expected values: for
``glm(cbind(s, f) ~ ...)`` the response is ``s / (s + f)`` and the prior weights are
``s + f`` (times the user's weights); a logical response is 1 for TRUE; a factor response is 0
for its first level and 1 for any other (R's ``y != levels(y)[1]``), with the levels of
``factor()``: sorted distinct values, or the categories of a factor. Each expected value is
computed here from the data columns themselves.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from multilevel.data.design import build_design
from multilevel.errors import DataError, FormulaError, MissingDataWarning
from multilevel.formula.parser import parse_formula

from reference_data import load_data

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


@pytest.fixture(scope="module")
def cbpp() -> pd.DataFrame:
    return load_data("cbpp")


@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    # seed 5: 8 groups of 5 rows, a predictor x, counts s of n trials, a binary outcome b
    rng = np.random.default_rng(5)
    n = 40
    trials = rng.integers(1, 10, n)
    successes = rng.binomial(trials, 0.4)
    outcome = rng.random(n) < 0.5
    return pd.DataFrame({"g": np.repeat([f"g{i}" for i in range(8)], 5),
                         "x": rng.normal(size=n), "s": successes.astype(float),
                         "n": trials.astype(float), "b": outcome})


def _design(formula: str, data: pd.DataFrame, **kwargs: object):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingDataWarning)
        return build_design(formula, data, glm=True, **kwargs)


# ---- cbind(successes, failures)

def test_cbind_gives_proportions_with_the_trials_as_weights(cbpp):
    design = _design(CBPP, cbpp)
    assert design.response_name == "cbind(incidence, size - incidence)"
    assert design.nobs == 56
    np.testing.assert_array_equal(design.y, cbpp.incidence / cbpp["size"])
    np.testing.assert_array_equal(design.weights, cbpp["size"])
    assert design.fixed_names == ("(Intercept)", "period2", "period3", "period4")
    assert design.terms[0].factor.n_levels == 15
    assert design.response_levels is None
    assert design.n_zero_weight == 0


def test_cbind_is_the_proportion_form_with_weights(cbpp):
    # R: glmer(cbind(incidence, size - incidence) ~ ...) and glmer(incidence/size ~ ...,
    # weights = size) are the same model (tests/reference/glmm, cbpp_prop_weights)
    counts = _design(CBPP, cbpp)
    proportions = _design("incidence/size ~ period + (1 | herd)", cbpp, weights="size")
    np.testing.assert_array_equal(counts.y, proportions.y)
    np.testing.assert_array_equal(counts.weights, proportions.weights)
    np.testing.assert_array_equal(counts.X, proportions.X)


def test_cbind_arguments_may_be_columns_or_expressions(small):
    design = _design("cbind(s, n - s) ~ x + (1 | g)", small)
    np.testing.assert_array_equal(design.y, small.s / small.n)
    np.testing.assert_array_equal(design.weights, small.n)
    # trials: 2s + (n - s) + n = s + 2n
    summed = _design("cbind(2 * s, (n - s) + n) ~ x + (1 | g)", small)
    np.testing.assert_array_equal(summed.y, 2 * small.s / (small.s + 2 * small.n))
    np.testing.assert_array_equal(summed.weights, small.s + 2 * small.n)
    named = small.rename(columns={"s": "n.success"})
    dotted = _design("cbind(n.success, n - n.success) ~ x + (1 | g)", named)
    assert dotted.response_name == "cbind(n.success, n - n.success)"
    np.testing.assert_array_equal(dotted.y, small.s / small.n)


def test_zero_trial_rows_are_dropped_and_counted(cbpp):
    data = cbpp.copy()
    empty = np.flatnonzero((data.herd == "1").to_numpy())  # all four rows of herd 1
    data.loc[empty, ["incidence", "size"]] = 0.0
    with pytest.warns(MissingDataWarning, match="4 row.s. with prior weight zero"):
        design = build_design(CBPP, data, glm=True)
    kept = np.setdiff1d(np.arange(56), empty)
    assert design.nobs == 52
    assert design.n_zero_weight == 4
    assert design.n_dropped == 0
    np.testing.assert_array_equal(design.row_index, kept)
    np.testing.assert_array_equal(design.y, (cbpp.incidence / cbpp["size"]).to_numpy()[kept])
    np.testing.assert_array_equal(design.weights, cbpp["size"].to_numpy()[kept])
    assert design.terms[0].factor.n_levels == 14  # herd 1 has no row left, as in lme4


def test_only_zero_trials_leaves_no_rows(small):
    data = small.assign(s=0.0, n=0.0)
    with pytest.raises(DataError, match="no trials"):
        build_design("cbind(s, n - s) ~ x + (1 | g)", data, glm=True)


def test_user_weights_multiply_the_trials(small):
    w = np.linspace(0.5, 2.0, len(small))
    design = _design("cbind(s, n - s) ~ x + (1 | g)", small, weights=w)
    np.testing.assert_allclose(design.weights, w * small.n, rtol=1e-15)
    np.testing.assert_array_equal(design.y, small.s / small.n)


def test_zero_weights_and_zero_trials_are_counted_together(small):
    w = np.ones(len(small))
    w[[0, 1]] = 0.0
    data = small.copy()
    data.loc[[5, 6, 7], ["s", "n"]] = 0.0
    design = _design("cbind(s, n - s) ~ x + (1 | g)", data, weights=w)
    assert design.n_zero_weight == 5
    assert design.nobs == len(small) - 5
    assert not np.isin([0, 1, 5, 6, 7], design.row_index).any()


def test_a_missing_count_drops_the_row_as_missing(small):
    data = small.copy()
    data.loc[3, "n"] = np.nan
    design = _design("cbind(s, n - s) ~ x + (1 | g)", data)
    assert design.n_dropped == 1
    assert 3 not in design.row_index
    assert design.nobs == len(small) - 1


def test_a_negative_count_is_refused_with_its_rows(cbpp):
    data = cbpp.copy()
    data.loc[[5, 9], "incidence"] = data.loc[[5, 9], "size"] + 2  # more cases than animals
    with pytest.raises(DataError) as info:
        build_design(CBPP, data, glm=True)
    message = str(info.value)
    assert "'size - incidence'" in message
    assert "row 5 (-2.0), row 9 (-2.0)" in message
    assert "negative" in message


def test_a_non_integer_count_is_refused_with_its_rows(cbpp):
    data = cbpp.copy()
    data.loc[0, "incidence"] = np.nan  # dropped as missing: rows keep their numbers in the data
    data.loc[7, "incidence"] = 2.5
    with pytest.raises(DataError) as info:
        _design(CBPP, data)
    message = str(info.value)
    assert "'incidence'" in message
    assert "number of successes" in message
    assert "row 7 (2.5) is not" in message
    assert "whole number" in message


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
def test_a_non_finite_count_is_refused_with_its_rows(cbpp):
    zero = np.flatnonzero(cbpp.incidence.to_numpy() == 0)
    with pytest.raises(DataError) as info:
        build_design("cbind(log(incidence), size) ~ period + (1 | herd)", cbpp, glm=True)
    message = str(info.value)
    assert "'log(incidence)'" in message
    assert f"row {zero[0]} (-inf)" in message
    assert "finite" in message


@pytest.mark.parametrize("formula", ["cbind(s) ~ x + (1 | g)", "cbind(s, n, x) ~ x + (1 | g)",
                                     "cbind(s, ) ~ x + (1 | g)"])
def test_cbind_takes_exactly_two_arguments(small, formula):
    with pytest.raises(FormulaError, match="exactly two arguments"):
        build_design(formula, small, glm=True)


def test_cbind_in_a_linear_mixed_model_is_a_formula_error(small):
    with pytest.raises(FormulaError, match="binomial") as info:
        build_design("cbind(s, n - s) ~ x + (1 | g)", small)
    assert "ml.glmer" in str(info.value)


def test_cbind_outside_the_response_is_refused_by_name(small):
    with pytest.raises(FormulaError, match="cbind") as info:
        build_design("s ~ cbind(s, n) + (1 | g)", small, glm=True)
    assert "whole response of a binomial model" in str(info.value)
    with pytest.raises(FormulaError, match="cbind"):
        parse_formula("cbind(s, n) / 2 ~ x + (1 | g)")


@pytest.mark.parametrize("counts", [
    "__import__('os').system('touch {f}'), n",
    "s, open('{f}', 'w')",
    "s, n.__class__",
    "s, exec(\"open('{f}', 'w')\")",
    "(lambda: open('{f}', 'w'))(), n",
    "s, I(n[0])",
])
def test_code_inside_cbind_is_refused_and_never_run(small, tmp_path, counts):
    target = tmp_path / "created"
    formula = f"cbind({counts.replace('{f}', str(target))}) ~ x + (1 | g)"
    with pytest.raises(FormulaError, match="not allowed"):
        build_design(formula, small, glm=True)
    assert not target.exists()


def test_a_hand_built_cbind_is_checked_against_the_allow_list(small):
    # a ParsedFormula may be built by hand: the design checks the counts again
    parsed = parse_formula("cbind(s, n - s) ~ x + (1 | g)")
    forged = type(parsed)(text=parsed.text, response=parsed.response, fixed=parsed.fixed,
                          random=parsed.random, counts=("s", "__import__('os').getcwd()"))
    with pytest.raises(FormulaError, match="__import__"):
        build_design(forged, small, glm=True)


# ---- logical and two-level responses

@pytest.mark.parametrize("dtype", ["bool", "boolean"])
def test_a_logical_response_is_one_for_true(small, dtype):
    data = small.assign(b=small.b.astype(dtype))
    design = _design("b ~ x + (1 | g)", data)
    np.testing.assert_array_equal(design.y, small.b.to_numpy().astype(float))
    assert design.y.sum() == small.b.sum()
    assert design.response_levels is None
    assert design.weights is None


def test_a_two_level_text_response_has_the_second_sorted_level_as_success(small):
    # R: factor(c("yes", "no")) has levels "no", "yes"; glm's y is 1 for "yes"
    text = np.where(small.b, "yes", "no")
    for column in (text.astype(object), pd.array(text, dtype="string")):
        design = _design("outcome ~ x + (1 | g)", small.assign(outcome=column))
        assert design.response_levels == ("no", "yes")
        np.testing.assert_array_equal(design.y, (text == "yes").astype(float))


def test_a_categorical_response_keeps_its_category_order(small):
    # categories ("yes", "no"): "yes" is the first level, so failure, and y is 1 for "no"
    text = np.where(small.b, "yes", "no")
    data = small.assign(outcome=pd.Categorical(text, categories=["yes", "no"]))
    design = _design("outcome ~ x + (1 | g)", data)
    assert design.response_levels == ("yes", "no")
    np.testing.assert_array_equal(design.y, (text == "no").astype(float))


def test_unused_categories_of_the_response_do_not_count(small):
    # lme4's model frame drops unused levels: categories a, b, c with c never used is a
    # two-level response
    text = np.where(small.b, "b", "a")
    data = small.assign(outcome=pd.Categorical(text, categories=["a", "b", "c"]))
    design = _design("outcome ~ x + (1 | g)", data)
    assert design.response_levels == ("a", "b")
    np.testing.assert_array_equal(design.y, (text == "b").astype(float))


def test_a_three_level_response_is_refused(small):
    levels = np.array(["low", "mid", "high"])[np.arange(len(small)) % 3]
    with pytest.raises(DataError) as info:
        build_design("grade ~ x + (1 | g)", small.assign(grade=levels), glm=True)
    message = str(info.value)
    assert "'grade'" in message
    assert "3 levels" in message
    assert "'high', 'low', 'mid'" in message
    assert "exactly two" in message


def test_a_one_level_response_is_refused(small):
    data = small.assign(grade=pd.Categorical(["pass"] * len(small)))
    with pytest.raises(DataError, match=r"1 level in the rows used \('pass'\).*exactly two"):
        build_design("grade ~ x + (1 | g)", data, glm=True)


def test_a_numeric_response_passes_as_it_is(small):
    design = _design("s ~ x + (1 | g)", small)
    np.testing.assert_array_equal(design.y, small.s)
    assert design.response_levels is None
    assert design.weights is None


# ---- what a linear mixed model says

@pytest.mark.parametrize("column", ["b", "outcome"])
def test_a_linear_model_points_a_binary_response_to_glmer(small, column):
    data = small.assign(outcome=np.where(small.b, "yes", "no"))
    with pytest.raises(DataError, match="must be numeric") as info:
        build_design(f"{column} ~ x + (1 | g)", data)
    assert 'ml.glmer(..., family="binomial")' in str(info.value)


def test_arithmetic_on_the_response_is_computed_as_in_r(small):
    # R evaluates the left-hand side as an expression: n - s is the difference (formulaic
    # would read it as "the term n without the term s")
    design = build_design("n - s ~ x + (1 | g)", small)
    np.testing.assert_array_equal(design.y, small.n - small.s)
    assert design.response_name == "n - s"
    design = build_design("(n - s) ~ x + (1 | g)", small)
    np.testing.assert_array_equal(design.y, small.n - small.s)
    design = build_design("n^2 ~ x + (1 | g)", small)
    np.testing.assert_array_equal(design.y, small.n ** 2)
