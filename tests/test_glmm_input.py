"""Bad input to ``ml.glmer`` fails before any fitting, with a typed error from
``multilevel.errors`` that names the column (or argument) and the offending rows.

Every case builds the model with ``GeneralizedLinearMixedModel(...)``, which checks everything
and optimizes nothing: an error from the constructor is an error before fitting. Rows are
quoted by their 0-based position in the data as given.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

import multilevel as ml
from multilevel.errors import ArgumentError, DataError, MissingDataWarning
from multilevel.families import Binomial, Gaussian, NegativeBinomial, Poisson

N_GROUPS, PER_GROUP = 10, 6


def frame() -> pd.DataFrame:
    """60 rows, 10 groups, every kind of response column (seed 1)."""
    rng = np.random.default_rng(1)
    n = N_GROUPS * PER_GROUP
    df = pd.DataFrame({"g": np.repeat([f"g{i}" for i in range(N_GROUPS)], PER_GROUP),
                       "h": np.tile(["a", "b", "c"], n // 3),
                       "x": rng.normal(size=n)})
    df["count"] = rng.poisson(2, n).astype(float)
    df["trials"] = rng.integers(1, 10, n).astype(float)
    df["prop"] = rng.binomial(df["trials"].astype(int), 0.4) / df["trials"]
    df["pos"] = rng.gamma(2.0, 1.0, n)
    df["y01"] = rng.integers(0, 2, n).astype(float)
    df["succ"] = rng.integers(0, 5, n)
    df["fail"] = rng.integers(1, 6, n)
    df["f3"] = pd.Categorical(rng.choice(["lo", "mid", "hi"], n))
    df["f2"] = pd.Categorical(rng.choice(["no", "yes"], n))
    return df


def put(column: str, rows: list[int], value: Any) -> Callable[[pd.DataFrame], None]:
    def change(df: pd.DataFrame) -> None:
        if column in ("succ", "fail") and not float(value).is_integer():
            df[column] = df[column].astype(float)
        df.loc[rows, column] = value
    return change


# (id, formula, change to the data, glmer arguments, error type, fragments of the message)
DATA_ERRORS = [
    ("poisson_negative", "count ~ x + (1 | g)", put("count", [3, 7], -1.0),
     {"family": "poisson"}, ["'count'", "negative", "row 3 (-1.0), row 7 (-1.0)"]),
    ("poisson_fraction", "count ~ x + (1 | g)", put("count", [4], 1.5),
     {"family": "poisson"}, ["'count'", "non-integer", "row 4 (1.5)", "log(exposure)"]),
    ("negbin_negative", "count ~ x + (1 | g)", put("count", [5], -2.0),
     {"family": "negative_binomial"}, ["'count'", "negative binomial", "row 5 (-2.0)"]),
    ("negbin_fraction", "count ~ x + (1 | g)", put("count", [8], 0.25),
     {"family": NegativeBinomial(theta=2.0)}, ["'count'", "whole counts", "row 8 (0.25)"]),
    ("proportion_above_one", "prop ~ x + (1 | g)", put("prop", [2], 1.3),
     {"weights": "trials"}, ["'prop'", "[0, 1]", "row 2 (1.3)"]),
    ("proportion_negative", "prop ~ x + (1 | g)", put("prop", [6], -0.1),
     {"weights": "trials"}, ["'prop'", "[0, 1]", "row 6 (-0.1)"]),
    ("binary_two", "y01 ~ x + (1 | g)", put("y01", [9], 2.0), {},
     ["'y01'", "0/1", "row 9 (2.0)"]),
    ("negative_trials", "prop ~ x + (1 | g)", put("trials", [11], -3.0),
     {"weights": "trials"}, ["'trials'", "row 11 (-3.0)", "negative"]),
    ("fractional_successes", "prop ~ x + (1 | g)",
     lambda df: df.loc.__setitem__(([0, 12], ["prop", "trials"]), [0.5, 3.0]),
     {"weights": "trials"},
     ["'prop'", "whole numbers of successes", "row 0 (1.5), row 12 (1.5)"]),
    ("proportion_without_trials", "prop ~ x + (1 | g)", lambda df: None, {},
     ["'prop'", "without weights", "weights="]),
    ("factor_three_levels", "f3 ~ x + (1 | g)", lambda df: None, {},
     ["'f3'", "3 levels", "'hi'", "'lo'", "'mid'"]),
    ("text_three_levels", "h ~ x + (1 | g)", lambda df: None, {},
     ["'h'", "3 levels"]),
    ("gamma_zero", "pos ~ x + (1 | g)", put("pos", [1], 0.0), {"family": "gamma"},
     ["'pos'", "Gamma", "positive", "row 1 (0.0)"]),
    ("gamma_negative", "pos ~ x + (1 | g)", put("pos", [13], -2.0), {"family": "gamma"},
     ["'pos'", "positive", "row 13 (-2.0)"]),
    ("inverse_gaussian_zero", "pos ~ x + (1 | g)", put("pos", [14], 0.0),
     {"family": "inverse_gaussian"}, ["'pos'", "an inverse Gaussian", "row 14 (0.0)"]),
    ("gamma_constant", "pos ~ x + (1 | g)", put("pos", list(range(60)), 2.5),
     {"family": "gamma"}, ["'pos'", "2.5 in every row", "dispersion"]),
    ("cbind_negative", "cbind(succ, fail) ~ x + (1 | g)", put("succ", [6], -1), {},
     ["'succ'", "row 6 (-1.0)", "negative"]),
    ("cbind_fraction", "cbind(succ, fail) ~ x + (1 | g)", put("fail", [16], 1.5), {},
     ["'fail'", "row 16 (1.5)", "count"]),
    ("binary_all_zero", "y01 ~ x + (1 | g)", put("y01", list(range(60)), 0.0), {},
     ["'y01'", "0 (failure) in all 60 rows", "diverges"]),
    ("binary_all_one", "y01 ~ x + (1 | g)", put("y01", list(range(60)), 1.0), {},
     ["'y01'", "1 (success) in all 60 rows"]),
    ("poisson_all_zero", "count ~ x + (1 | g)", put("count", list(range(60)), 0.0),
     {"family": "poisson"}, ["'count'", "0 in all 60 rows"]),
    ("factor_response_poisson", "f2 ~ x + (1 | g)", lambda df: None, {"family": "poisson"},
     ["'f2'", "factor", "only a binomial model"]),
    ("cbind_response_poisson", "cbind(succ, fail) ~ x + (1 | g)", lambda df: None,
     {"family": "poisson"}, ["cbind", "only a binomial model", "poisson"]),
    ("infinite_count", "count ~ x + (1 | g)", put("count", [17], np.inf),
     {"family": "poisson"}, ["'count'", "infinite", "row 17"]),
]


@pytest.mark.parametrize(("formula", "change", "kwargs", "fragments"),
                         [case[1:] for case in DATA_ERRORS], ids=[c[0] for c in DATA_ERRORS])
def test_bad_data_fails_before_fitting(formula: str, change: Callable[[pd.DataFrame], None],
                                       kwargs: dict[str, Any], fragments: list[str]) -> None:
    df = frame()
    change(df)
    with pytest.raises(DataError) as info:
        ml.GeneralizedLinearMixedModel(formula, df, **kwargs)
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))
    # the one-call API raises the same error
    with pytest.raises(DataError, match="^" + re.escape(str(info.value)[:40])):
        ml.glmer(formula, df, **kwargs)


def test_rows_are_quoted_by_position_in_the_data_as_given() -> None:
    # a missing value before the bad row is dropped; the message still quotes the bad row's
    # position in the caller's frame, not in the rows kept (and not the index label)
    df = frame()
    df.index = np.arange(500, 560)
    df.loc[501, "x"] = np.nan
    df.loc[505, "count"] = -4.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingDataWarning)
        with pytest.raises(DataError, match=r"row 5 \(-4\.0\)"):
            ml.GeneralizedLinearMixedModel("count ~ x + (1 | g)", df, family="poisson")


def test_zero_trials_are_dropped_with_a_warning_not_fitted() -> None:
    # R's glm lets a proportion with no trials through (it carries no information); the rows
    # are dropped, counted and announced, as for cbind(0, 0)
    df = frame()
    df.loc[[2, 30], "trials"] = 0.0
    with pytest.warns(MissingDataWarning, match=r"2 row\(s\) with prior weight zero"):
        model = ml.GeneralizedLinearMixedModel("prop ~ x + (1 | g)", df, weights="trials")
    assert model.nobs == 58
    assert model.design.n_zero_weight == 2


def test_gaussian_identity_points_at_lmer() -> None:
    df = frame()
    for family in ("gaussian", Gaussian(), Gaussian(link="identity")):
        with pytest.raises(ArgumentError, match=r"ml\.lmer") as info:
            ml.GeneralizedLinearMixedModel("pos ~ x + (1 | g)", df, family=family)
        assert "linear mixed model" in str(info.value)


def test_gaussian_with_another_link_is_a_glmm() -> None:
    # lme4 fits gaussian(link = "log") with glmer: not the linear model, so allowed
    model = ml.GeneralizedLinearMixedModel("pos ~ x + (1 | g)", frame(),
                                           family=Gaussian(link="log"))
    assert model.family.link.name == "log"


@pytest.mark.parametrize(("formula", "terms", "columns"), [
    ("y01 ~ x + (1 | g) + (1 | h)", 2, 2),
    ("y01 ~ x + (x | g)", 1, 2),
    ("y01 ~ x + (x || g)", 2, 2),
])
def test_quadrature_needs_one_scalar_term(formula: str, terms: int, columns: int) -> None:
    with pytest.raises(ArgumentError) as info:
        ml.GeneralizedLinearMixedModel(formula, frame(), nagq=5)
    text = str(info.value)
    assert "nagq=5" in text
    assert "single scalar random-effects term" in text
    assert f"{terms} term(s) with {columns} column(s)" in text
    assert "nagq=1" in text
    # Laplace (and nAGQ = 0) take the same model
    ml.GeneralizedLinearMixedModel(formula, frame(), nagq=1)
    ml.GeneralizedLinearMixedModel(formula, frame(), nagq=0)


@pytest.mark.parametrize("nagq", [-1, 2.5, "5", True, None, 301, 10**6, np.float64(3.0)])
def test_bad_nagq(nagq: Any) -> None:
    with pytest.raises(ArgumentError, match=r"^nagq must be a whole number from 0 to 300"):
        ml.GeneralizedLinearMixedModel("y01 ~ x + (1 | g)", frame(), nagq=nagq)


def test_nagq_as_numpy_integer_is_accepted() -> None:
    model = ml.GeneralizedLinearMixedModel("y01 ~ x + (1 | g)", frame(), nagq=np.int64(7))
    assert model.nagq == 7 and isinstance(model.nagq, int)


@pytest.mark.parametrize(("family", "fragments"), [
    ("binomal", ["'binomal' is not known", "Did you mean 'binomial'"]),
    ("poison", ["'poison'", "'poisson'"]),
    (3, ["family must be a family name", "got 3"]),
    (Binomial, None),  # a class is instantiated: accepted
    (object(), ["family must be a family name"]),
])
def test_bad_family(family: Any, fragments: list[str] | None) -> None:
    if fragments is None:
        ml.GeneralizedLinearMixedModel("y01 ~ x + (1 | g)", frame(), family=family)
        return
    with pytest.raises(ArgumentError) as info:
        ml.GeneralizedLinearMixedModel("y01 ~ x + (1 | g)", frame(), family=family)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_bad_link_and_size() -> None:
    with pytest.raises(ArgumentError, match=r"poisson family does not take the 'logit' link"):
        Poisson(link="logit")
    with pytest.raises(ArgumentError, match=r"theta must be a positive"):
        NegativeBinomial(theta=-1.0)
    with pytest.raises(ArgumentError, match=r"give the size by name"):
        NegativeBinomial(2)  # type: ignore[arg-type]


@pytest.mark.parametrize("laplace", ["exact", 1, "Expected", True])
def test_bad_laplace(laplace: Any) -> None:
    with pytest.raises(ArgumentError, match=r"^laplace must be None, 'expected' or 'observed'"):
        ml.GeneralizedLinearMixedModel("y01 ~ x + (1 | g)", frame(), laplace=laplace)


def test_bad_fit_arguments() -> None:
    df = frame()
    with pytest.raises(ArgumentError, match=r"calc_derivs must be True or False"):
        ml.GeneralizedLinearMixedModel("y01 ~ x + (1 | g)", df, calc_derivs="yes")
    with pytest.raises(ArgumentError, match=r"reml=True does not apply"):
        ml.GeneralizedLinearMixedModel("y01 ~ x + (1 | g)", df).replace(reml=True)
    with pytest.raises(ml.errors.OptimizerError, match=r"start must be None or a dict"):
        ml.GeneralizedLinearMixedModel("y01 ~ x + (1 | g)", df, start=[1.0])
