"""Bad input fails early with a typed error from ``multilevel.errors`` that names the column,
term or row; missing values are dropped listwise and reported; aliased fixed-effects columns
are dropped with a warning, as lme4 does.

Data: the built-in sleepstudy (lme4::sleepstudy, 180 rows, 18 subjects) with deliberate
damage. Every expected value is either an exact identity (the same fit on the same rows) or a
count fixed by the construction (5 rows set to NaN -> 175 used).
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest

import multilevel as ml
from fit_helpers import assert_same_fit, quiet_fit
from multilevel.errors import (
    ColumnNotFoundError,
    DataError,
    FormulaError,
    IdentifiabilityError,
    MissingDataWarning,
    MultilevelError,
    OptimizerError,
    RankDeficiencyWarning,
)

FORMULA = "Reaction ~ Days + (Days | Subject)"
NA_ROWS = [0, 17, 42, 99, 179]  # 5 rows of sleepstudy, chosen by hand


@pytest.fixture
def sleep() -> pd.DataFrame:
    return ml.datasets.load("sleepstudy")


# -- unknown columns and formula errors -----------------------------------------------------

def test_unknown_column_in_random_term_suggests_close_match(sleep):
    with pytest.raises(ColumnNotFoundError) as info:
        ml.lmer("Reaction ~ Days + (Days | Subjct)", sleep)
    msg = str(info.value)
    assert info.value.column == "Subjct"
    assert "'Subjct'" in msg
    assert "Did you mean 'Subject'" in msg


def test_unknown_column_in_fixed_part(sleep):
    with pytest.raises(ColumnNotFoundError) as info:
        ml.lmer("Reaction ~ Dayz + (1 | Subject)", sleep)
    assert "'Dayz'" in str(info.value)
    assert "'Days'" in str(info.value)


def test_unknown_response_column(sleep):
    with pytest.raises(ColumnNotFoundError) as info:
        ml.lmer("Reactoin ~ Days + (1 | Subject)", sleep)
    assert "'Reactoin'" in str(info.value)
    assert "'Reaction'" in str(info.value)


@pytest.mark.parametrize(("formula", "typo", "meant"), [
    ("Reaction ~ I(Dayz^2) + (1 | Subject)", "Dayz", "Days"),
    ("Reaction ~ poly(Dayz, 2) + (1 | Subject)", "Dayz", "Days"),
    ("Reaction ~ C(Subjct) + (1 | Subject)", "Subjct", "Subject"),
    ("Reaction ~ Days + (Dayz | Subject)", "Dayz", "Days"),
    ("Reaction ~ Days + (1 | Subject:Dayz)", "Dayz", "Days"),
    ("Reaction ~ Days + (1 | Subjct/Days)", "Subjct", "Subject"),
    ("log(Reactn) ~ Days + (1 | Subject)", "Reactn", "Reaction"),
])
def test_unknown_column_anywhere_in_the_formula(sleep, formula, typo, meant):
    with pytest.raises(ColumnNotFoundError) as info:
        ml.lmer(formula, sleep)
    assert info.value.column == typo
    assert f"Did you mean '{meant}'" in str(info.value)


def test_unknown_column_is_a_key_error_and_a_multilevel_error(sleep):
    with pytest.raises(KeyError):
        ml.lmer("Reaction ~ nothing_like_it + (1 | Subject)", sleep)
    with pytest.raises(MultilevelError):
        ml.lmer("Reaction ~ nothing_like_it + (1 | Subject)", sleep)


def test_unknown_weights_column(sleep):
    with pytest.raises(ColumnNotFoundError) as info:
        ml.lmer(FORMULA, sleep, weights="wt")
    assert "'wt'" in str(info.value)


def test_formula_syntax_error(sleep):
    with pytest.raises(FormulaError) as info:
        ml.lmer("Reaction ~ Days + (Days | Subject", sleep)
    assert info.value.position is not None


def test_formula_without_random_term(sleep):
    with pytest.raises(FormulaError):
        ml.lmer("Reaction ~ Days", sleep)


# -- wrong types and values -----------------------------------------------------------------

def test_string_response_is_a_data_error(sleep):
    sleep["label"] = "r" + sleep["Reaction"].round().astype(int).astype(str)
    with pytest.raises(DataError) as info:
        ml.lmer("label ~ Days + (1 | Subject)", sleep)
    assert "'label'" in str(info.value)
    assert "numeric" in str(info.value)


def test_boolean_response_is_a_data_error(sleep):
    sleep["slow"] = sleep["Reaction"] > 300
    with pytest.raises(DataError) as info:
        ml.lmer("slow ~ Days + (1 | Subject)", sleep)
    assert "'slow'" in str(info.value)


def test_grouping_factor_with_one_level(sleep):
    sleep["site"] = "only"
    with pytest.raises(IdentifiabilityError) as info:
        ml.lmer("Reaction ~ Days + (1 | site)", sleep)
    assert "'site'" in str(info.value)
    assert "1 level" in str(info.value)


def test_grouping_factor_with_one_level_after_dropping_missing(sleep):
    # two sites, but every row of site "b" has a missing response
    sleep["site"] = np.where(np.arange(len(sleep)) < 90, "a", "b")
    sleep.loc[90:, "Reaction"] = np.nan
    with pytest.raises(IdentifiabilityError) as info:
        quiet_fit("Reaction ~ Days + (1 | site)", sleep)
    assert "'site'" in str(info.value)


def test_grouping_factor_with_a_level_per_observation(sleep):
    sleep["obs"] = np.arange(len(sleep))
    with pytest.raises(IdentifiabilityError) as info:
        ml.lmer("Reaction ~ Days + (1 | obs)", sleep)
    assert "'obs'" in str(info.value)
    assert "180" in str(info.value)


def test_infinite_value_names_column_and_row(sleep):
    sleep.loc[37, "Days"] = np.inf
    with pytest.raises(DataError) as info:
        ml.lmer(FORMULA, sleep)
    msg = str(info.value)
    assert "'Days'" in msg
    assert re.search(r"\brow 37\b", msg), msg


def test_negative_infinite_response_names_column_and_row(sleep):
    sleep.loc[5, "Reaction"] = -np.inf
    with pytest.raises(DataError) as info:
        ml.lmer(FORMULA, sleep)
    assert "'Reaction'" in str(info.value)
    assert re.search(r"\brow 5\b", str(info.value))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_transformed_response_that_becomes_infinite(sleep):
    # log(0) = -inf: the data hold no Inf, but the response does; fitting it gives NaN
    # estimates, so it must fail before fitting like Inf in the data (DESIGN.md "Bad input")
    sleep.loc[3, "Reaction"] = 0.0
    with pytest.raises(DataError) as info:
        quiet_fit("log(Reaction) ~ Days + (1 | Subject)", sleep)
    assert "log(Reaction)" in str(info.value)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_transformed_predictor_that_becomes_infinite(sleep):
    sleep.loc[3, "Days"] = -1.0
    with pytest.raises(DataError) as info:
        quiet_fit("Reaction ~ log(Days + 1) + (1 | Subject)", sleep)
    assert "log(Days + 1)" in str(info.value)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_transformed_response_that_becomes_nan(sleep):
    # log(-5) is NaN. R's model.frame evaluates the transform, then na.omit drops the row;
    # a typed error would also do. An untyped numpy error is neither.
    sleep.loc[3, "Reaction"] = -5.0
    try:
        fit = quiet_fit("log(Reaction) ~ Days + (1 | Subject)", sleep)
    except MultilevelError:
        return
    assert fit.nobs == 179
    assert fit.n_dropped == 1
    assert np.isfinite(fit.loglik)


def test_infinite_value_in_unused_column_is_fine(sleep):
    sleep["unused"] = np.inf
    fit = ml.lmer(FORMULA, sleep)
    assert fit.nobs == 180


def test_no_rows_left_after_missing_values(sleep):
    sleep["Reaction"] = np.nan
    with pytest.raises(DataError) as info:
        quiet_fit(FORMULA, sleep)
    assert "no rows" in str(info.value)
    assert "Reaction" in str(info.value)


def test_negative_weights(sleep):
    w = np.ones(len(sleep))
    w[11] = -0.5
    with pytest.raises(DataError) as info:
        ml.lmer(FORMULA, sleep, weights=w)
    assert "weights" in str(info.value)
    assert re.search(r"\brow 11\b", str(info.value))


def test_weights_of_wrong_length(sleep):
    with pytest.raises(DataError) as info:
        ml.lmer(FORMULA, sleep, weights=np.ones(10))
    assert "weights" in str(info.value)


def test_unknown_optimizer(sleep):
    with pytest.raises(OptimizerError) as info:
        ml.lmer(FORMULA, sleep, optimizer="newton-raphson-deluxe")
    assert "newton-raphson-deluxe" in str(info.value)
    assert "bobyqa" in str(info.value)


def test_start_of_wrong_length(sleep):
    with pytest.raises(OptimizerError):
        ml.lmer(FORMULA, sleep, start=[1.0, 0.0])


def test_data_of_unsupported_type():
    with pytest.raises(DataError):
        ml.lmer(FORMULA, [[1, 2, 3]])


# -- missing values -------------------------------------------------------------------------

def test_missing_values_dropped_listwise(sleep):
    damaged = sleep.copy()
    damaged.loc[NA_ROWS, "Reaction"] = np.nan
    with pytest.warns(MissingDataWarning, match="5 row"):
        fit = ml.lmer(FORMULA, damaged)
    assert fit.nobs == 175
    assert fit.n_dropped == 5
    assert "5 observations deleted due to missingness" in fit.summary()
    np.testing.assert_array_equal(fit.model.design.row_index,
                                  np.setdiff1d(np.arange(180), NA_ROWS))
    complete = ml.lmer(FORMULA, sleep.drop(index=NA_ROWS).reset_index(drop=True))
    assert complete.n_dropped == 0
    assert_same_fit(fit, complete)
    for level, row in complete.ranef["Subject"].iterrows():
        np.testing.assert_allclose(fit.ranef["Subject"].loc[level], row, rtol=1e-10)


def test_missing_values_in_predictor_and_factor(sleep):
    damaged = sleep.copy()
    damaged.loc[[3, 4], "Days"] = np.nan
    damaged["Subject"] = damaged["Subject"].astype(object)
    damaged.loc[[60], "Subject"] = None
    with pytest.warns(MissingDataWarning):
        fit = ml.lmer(FORMULA, damaged)
    assert fit.nobs == 177
    assert fit.n_dropped == 3


def test_missing_value_in_unused_column_keeps_row(sleep):
    sleep["note"] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error", MissingDataWarning)
        fit = ml.lmer(FORMULA, sleep)
    assert fit.nobs == 180
    assert fit.n_dropped == 0


# -- rank deficiency ------------------------------------------------------------------------

def test_aliased_column_is_dropped_with_warning(sleep):
    aliased = sleep.copy()
    aliased["x2"] = 2 * aliased["Days"]
    with pytest.warns(RankDeficiencyWarning, match="x2"):
        fit = ml.lmer("Reaction ~ Days + x2 + (Days | Subject)", aliased)
    assert fit.fixed_names == ["(Intercept)", "Days"]
    assert fit.model.design.dropped_fixed == ("x2",)
    assert "x2" in fit.summary()
    assert_same_fit(fit, ml.lmer(FORMULA, sleep))


def test_constant_column_aliased_with_intercept(sleep):
    sleep["const"] = 3.0
    with pytest.warns(RankDeficiencyWarning, match="const"):
        fit = ml.lmer("Reaction ~ Days + const + (Days | Subject)", sleep)
    assert fit.fixed_names == ["(Intercept)", "Days"]


# -- polars ---------------------------------------------------------------------------------

def test_polars_frame_gives_the_same_fit(sleep):
    import polars as pl  # the dev extra installs polars and pyarrow; no skipping
    from_pandas = pl.from_pandas(sleep)
    assert type(from_pandas).__module__.startswith("polars")
    fit_pl = ml.lmer(FORMULA, from_pandas)
    fit_pd = ml.lmer(FORMULA, sleep)
    assert_same_fit(fit_pl, fit_pd)
    a = fit_pl.ranef["Subject"]
    b = fit_pd.ranef["Subject"].loc[a.index]
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-10)


def test_polars_frame_with_string_group(sleep):
    import polars as pl  # the dev extra installs polars and pyarrow; no skipping
    frame = pl.DataFrame({"Reaction": sleep["Reaction"].to_numpy(),
                          "Days": sleep["Days"].to_numpy(),
                          "Subject": sleep["Subject"].astype(str).to_list()})
    fit_pl = ml.lmer(FORMULA, frame)
    fit_pd = ml.lmer(FORMULA, sleep)
    assert fit_pl.objective == pytest.approx(fit_pd.objective, rel=1e-10)
    np.testing.assert_allclose(fit_pl.beta, fit_pd.beta, rtol=1e-10)
    assert sorted(fit_pl.ranef["Subject"].index) == sorted(fit_pd.ranef["Subject"].index)


def test_model_too_large_for_dense_blocks_is_refused(monkeypatch):
    """Two crossed factors with very many levels each would need a huge dense block; the
    model must be refused with a typed error naming the factor, before any fitting."""
    import multilevel.models.memory as memory

    # the fit needs about 43 KiB (sample: 6 x 6 doubles per dense block, plus the rows)
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: 100)
    df = ml.datasets.load("Penicillin")
    with pytest.raises(ml.errors.ModelTooLargeError, match="sample"):
        ml.LinearMixedModel("diameter ~ 1 + (1 | plate) + (1 | sample)", df)


@pytest.mark.parametrize("formula", [
    "Reaction ~ Days + Reaction + (1 | Subject)",
    "log(Reaction) ~ Days + log(Reaction) + (1 | Subject)",
    "I(2 * Reaction) ~ Reaction + (Days | Subject)",
])
def test_a_response_reproduced_by_the_fixed_effects_is_a_data_error(sleep, formula):
    """The response (or a transform of it) also a predictor leaves no residual: refused
    before fitting instead of a fit of zero variance (found by the public-API fuzzer)."""
    with pytest.raises(DataError, match="reproduce the response .* exactly"):
        ml.lmer(formula, sleep)


def test_a_call_that_does_not_match_the_signature_is_an_argument_error():
    """lme4's spelling REML= (ours is reml=) and a misspelt method keyword name the argument
    and the one meant, as an ArgumentError rather than an internal error."""
    sleep = ml.datasets.load("sleepstudy")
    with pytest.raises(ml.errors.ArgumentError, match=r"no argument 'REML'; did you mean 'reml'"):
        ml.lmer("Reaction ~ Days + (1 | Subject)", sleep, REML=False)
    with pytest.raises(ml.errors.ArgumentError, match="missing a required argument: 'data'"):
        ml.lmer("Reaction ~ Days + (1 | Subject)")
    fit = ml.lmer("Reaction ~ Days + (1 | Subject)", sleep)
    with pytest.raises(ml.errors.ArgumentError,
                       match=r"did you mean 'ddf'\? Its arguments are: ddf"):
        fit.coef_table(dd="kenward-roger")
