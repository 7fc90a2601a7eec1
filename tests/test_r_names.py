"""Names R users have (issue 6, section 5): dotted names, names in backticks with spaces or
symbols, non-ASCII letters and Python keywords work as column names everywhere in a formula
(response, fixed part, random-term left-hand side, grouping factor) and in prediction;
``((1|g))`` and ``offset(w)`` are read as lme4 reads them; the did-you-mean hint ignores case.

Reference numbers: a fit on sleepstudy with renamed columns must equal, to the last digit, the
fit of the same formula on the original names (the data are the same); sleepstudy's own
estimates are lme4's (lmer(Reaction ~ Days + (Days | Subject), sleepstudy): fixef 251.405105,
10.467286).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import multilevel as ml
from multilevel.errors import ColumnNotFoundError, FormulaError
from multilevel.formula.parser import parse_formula

BASE = "Reaction ~ Days + (Days | Subject)"


@pytest.fixture(scope="module")
def sleep() -> pd.DataFrame:
    return ml.datasets.load("sleepstudy")


@pytest.fixture(scope="module")
def base_fit(sleep):
    return ml.lmer(BASE, sleep)


RENAMINGS = [
    # (response, predictor, group) as named in the data; how each is written in the formula
    (("Reaction", "Days.n", "Subject"), ("Reaction", "Days.n", "Subject")),
    (("Reaction.ms", "Sepal.Length", "my.group"), ("Reaction.ms", "Sepal.Length", "my.group")),
    (("my y", "my var", "my group"), ("`my y`", "`my var`", "`my group`")),
    (("größe", "Zeit_Tage", "Läufer"), ("größe", "Zeit_Tage", "Läufer")),
    (("größe", "Zeit (Tage)", "Läufer-ID"), ("größe", "`Zeit (Tage)`", "`Läufer-ID`")),
    (("yield", "class", "from"), ("yield", "class", "from")),
    (("y", "x+1", "g|h"), ("y", "`x+1`", "`g|h`")),
    (("y", ".x", "g"), ("y", ".x", "g")),
]


@pytest.mark.parametrize(("names", "written"), RENAMINGS,
                         ids=[r[0][1] for r in RENAMINGS])
def test_r_names_fit_exactly_as_the_plain_names(sleep, base_fit, names, written):
    y, x, g = names
    data = sleep.rename(columns={"Reaction": y, "Days": x, "Subject": g})
    wy, wx, wg = written
    fit = ml.lmer(f"{wy} ~ {wx} + ({wx} | {wg})", data)
    assert list(fit.fixef.index) == ["(Intercept)", x]
    np.testing.assert_array_equal(fit.fixef.to_numpy(), base_fit.fixef.to_numpy())
    np.testing.assert_array_equal(fit.theta, base_fit.theta)
    assert list(fit.ranef) == [g]
    assert list(fit.ranef[g].columns) == ["(Intercept)", x]
    np.testing.assert_array_equal(fit.predict(data.head(20)), base_fit.predict(sleep.head(20)))
    table = str(fit.summary()).split("Fixed effects:")[1]
    assert x in table and f"`{x}`" not in table


def test_dotted_names_inside_expressions_print_as_r_does(sleep):
    data = sleep.rename(columns={"Days": "Days.n"})
    fit = ml.lmer("log(Reaction) ~ I(Days.n^2) + log1p(Days.n) + (1 | Subject)", data)
    assert list(fit.fixef.index) == ["(Intercept)", "I(Days.n^2)", "log1p(Days.n)"]
    same = ml.lmer("log(Reaction) ~ I(Days^2) + log1p(Days) + (1 | Subject)", sleep)
    np.testing.assert_array_equal(fit.fixef.to_numpy(), same.fixef.to_numpy())
    np.testing.assert_array_equal(fit.predict(data.head(5)), same.predict(sleep.head(5)))


def test_names_needing_backticks_keep_them_inside_expressions(sleep):
    data = sleep.rename(columns={"Days": "my days"})
    fit = ml.lmer("Reaction ~ I(`my days`^2) + (1 | Subject)", data)
    assert list(fit.fixef.index) == ["(Intercept)", "I(`my days`^2)"]  # as R prints it


def test_dotted_factor_and_ordered_factor_names(sleep):
    data = sleep.assign(**{"day.f": pd.Categorical(sleep.Days.astype(int) % 3),
                           "day.o": pd.Categorical(sleep.Days.astype(int) % 3, ordered=True)})
    fit = ml.lmer("Reaction ~ day.f + (1 | Subject)", data)
    assert list(fit.fixef.index) == ["(Intercept)", "day.f1", "day.f2"]
    ordered = ml.lmer("Reaction ~ day.o + (1 | Subject)", data)
    assert list(ordered.fixef.index) == ["(Intercept)", "day.o.L", "day.o.Q"]


def test_nested_and_crossed_grouping_factors_with_r_names(sleep):
    data = sleep.assign(**{"half.id": (sleep.Days >= 5).map({True: "late", False: "early"}),
                           "sub ject": sleep.Subject})
    fit = ml.lmer("Reaction ~ Days + (1 | `sub ject`/half.id)", data)
    assert set(fit.ranef) == {"sub ject", "half.id:sub ject"}
    same = ml.lmer("Reaction ~ Days + (1 | Subject/h)", sleep.assign(h=data["half.id"]))
    np.testing.assert_array_equal(fit.theta, same.theta)


def test_double_parentheses_are_one_random_term(sleep, base_fit):
    for formula in ["Reaction ~ Days + ((Days | Subject))",
                    "Reaction ~ Days + ( ( (Days | Subject) ) )"]:
        parsed = parse_formula(formula)
        assert parsed.random == parse_formula(BASE).random
        np.testing.assert_array_equal(ml.lmer(formula, sleep).theta, base_fit.theta)


def test_uncorrelated_terms_with_dotted_names(sleep):
    data = sleep.rename(columns={"Days": "Days.n"})
    fit = ml.lmer("Reaction ~ Days.n + (Days.n || Subject)", data)
    same = ml.lmer("Reaction ~ Days + (Days || Subject)", sleep)
    np.testing.assert_array_equal(fit.theta, same.theta)


def test_true_and_false_are_r_constants(sleep):
    fit = ml.lmer("Reaction ~ poly(Days, 2, raw = TRUE) + (1 | Subject)", sleep)
    same = ml.lmer("Reaction ~ Days + I(Days^2) + (1 | Subject)", sleep)
    np.testing.assert_allclose(fit.fixef.to_numpy(), same.fixef.to_numpy(), rtol=1e-9)
    # lme4: names "poly(Days, 2, raw = TRUE)1", "poly(Days, 2, raw = TRUE)2"
    assert list(fit.fixef.index)[1:] == ["poly(Days, 2, raw = TRUE)1",
                                         "poly(Days, 2, raw = TRUE)2"]


# ---- offset() in the formula, as lme4 reads it

@pytest.fixture(scope="module")
def with_exposure(sleep) -> pd.DataFrame:
    # seed 3: a known positive exposure per row
    return sleep.assign(expo=np.random.default_rng(3).uniform(1, 5, len(sleep)))


def test_offset_term_equals_the_offset_argument(with_exposure):
    in_formula = ml.lmer("Reaction ~ Days + offset(log(expo)) + (1 | Subject)", with_exposure)
    argument = ml.lmer("Reaction ~ Days + (1 | Subject)", with_exposure,
                       offset=np.log(with_exposure.expo.to_numpy()))
    np.testing.assert_array_equal(in_formula.fixef.to_numpy(), argument.fixef.to_numpy())
    np.testing.assert_array_equal(in_formula.theta, argument.theta)
    assert list(in_formula.fixef.index) == ["(Intercept)", "Days"]


def test_offset_term_and_argument_are_summed(with_exposure):
    both = ml.lmer("Reaction ~ Days + offset(expo) + (1 | Subject)", with_exposure,
                   offset="expo")
    doubled = ml.lmer("Reaction ~ Days + offset(2 * expo) + (1 | Subject)", with_exposure)
    np.testing.assert_array_equal(both.fixef.to_numpy(), doubled.fixef.to_numpy())


def test_offset_term_is_evaluated_again_on_newdata(with_exposure):
    fit = ml.lmer("Reaction ~ Days + offset(log(expo)) + (1 | Subject)", with_exposure)
    new = with_exposure.head(6).assign(expo=[1.0, 2.0, 4.0, 8.0, 1.0, 1.0])
    plain = fit.predict(new.assign(expo=1.0))  # log(1) = 0: no offset
    np.testing.assert_allclose(fit.predict(new) - plain, np.log(new.expo.to_numpy()),
                               rtol=1e-12, atol=1e-12)
    # the fitted rows, through the stored design and through newdata, agree
    np.testing.assert_allclose(fit.predict(), fit.predict(with_exposure), rtol=1e-12)


def test_offset_column_missing_in_newdata_names_it(with_exposure):
    fit = ml.lmer("Reaction ~ Days + offset(log(expo)) + (1 | Subject)", with_exposure)
    with pytest.raises(ml.errors.MultilevelError, match="expo"):
        fit.predict(with_exposure.drop(columns="expo").head(3))


def test_offset_of_text_is_a_data_error(with_exposure):
    data = with_exposure.assign(word="a")
    with pytest.raises(ml.errors.MultilevelError, match="word"):
        ml.lmer("Reaction ~ Days + offset(word) + (1 | Subject)", data)


# ---- did you mean

@pytest.mark.parametrize(("written", "meant"), [("days", "Days"), ("SUBJECT", "Subject"),
                                                ("reaction", "Reaction")])
def test_did_you_mean_matches_names_that_differ_only_in_case(sleep, written, meant):
    formula = BASE.replace(meant, written)
    with pytest.raises(ColumnNotFoundError, match=f"Did you mean '{meant}'"):
        ml.lmer(formula, sleep)


def test_a_name_with_a_space_must_be_in_backticks(sleep):
    with pytest.raises(FormulaError, match="backticks"):
        ml.lmer("Reaction ~ Days + (1 | my group)", sleep.rename(columns={"Subject": "my group"}))
    with pytest.raises(FormulaError, match="backtick"):
        parse_formula("y ~ `my var + (1 | g)")


def test_a_random_term_written_back_parses_to_itself():
    # what stepwise selection and other refits rely on
    parsed = parse_formula("y ~ x + (1 + x | `my group`/b.c) + (0 + x | größe)")
    for spec in parsed.random:
        again = parse_formula(f"y ~ ({spec.lhs} | {spec.group_text})").random
        assert again == (spec,)


# -- against lme4: R's own data sets with dotted names ----------------------------------------

_REF_DIR = Path(__file__).parent / "reference"
_R_NAMES = json.loads((_REF_DIR / "hardening" / "r_names.json").read_text())


def _r_named_data(case: str) -> pd.DataFrame:
    """iris (R's datasets) and lme4's Arabidopsis as tests/reference/make_hardening_refs.R
    wrote them; Arabidopsis's nutrient is a factor in the R fit."""
    if case.startswith("iris"):
        return pd.read_csv(_REF_DIR / "data" / "iris.csv")
    data = pd.read_csv(_REF_DIR / "data" / "arabidopsis.csv")
    return data.astype({"nutrient": str, "gen": str})


@pytest.mark.parametrize("case", sorted(_R_NAMES))
def test_dotted_names_fit_as_lme4_fits_them(case):
    """lme4 1.1-31 fits with R's dotted names (Sepal.Length, total.fruits) in the response, the
    fixed part, a transform and a random slope; same criterion, coefficients under R's names."""
    ref = _R_NAMES[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ml.errors.MultilevelWarning)
        fit = ml.lmer(ref["formula"], _r_named_data(case), reml=ref["reml"])
    assert fit.objective == pytest.approx(ref["objective"], rel=1e-6)
    assert fit.fixed_names == list(ref["fixef"])
    np.testing.assert_allclose(fit.beta, list(ref["fixef"].values()), rtol=1e-4)
    assert fit.sigma == pytest.approx(ref["sigma"], rel=1e-4)
    np.testing.assert_allclose(fit.theta, np.atleast_1d(ref["theta"]), rtol=1e-3, atol=1e-4)


def test_logicals_are_factors_with_levels_false_and_true_as_in_r():
    """R's model matrices treat a logical (a bool column, or I(x > 2)) as a factor with levels
    FALSE and TRUE, so lme4 names the coefficient xTRUE (MASS::bacteria's glmer:
    I(week > 2)TRUE); predictions on new data replay that coding."""
    import numpy as np
    import pandas as pd

    import multilevel as ml

    rng = np.random.default_rng(3)
    n = 240
    data = pd.DataFrame({"g": rng.integers(0, 12, n).astype(str), "w": rng.integers(0, 5, n),
                         "b": rng.random(n) < 0.5, "x": rng.standard_normal(n)})
    data["y"] = data.x + 0.5 * data.b + (data.w > 2) + rng.standard_normal(n)
    fit = ml.lmer("y ~ x + b + I(w > 2) + x:b + (1 | g)", data)
    assert list(fit.fixef.index) == ["(Intercept)", "x", "bTRUE", "I(w > 2)TRUE", "x:bTRUE"]
    assert fit.predict(data.iloc[:5]) == pytest.approx(fit.fitted()[:5])
    # the 0/1 coding is R's: TRUE is 1
    assert fit.fixef["I(w > 2)TRUE"] == pytest.approx(1.0, abs=0.3)
    # a logical response stays the 0/1 response of a binomial model
    data["c"] = rng.poisson(1.0, n)
    glmm = ml.glmer("I(c > 0) ~ x + (1 | g)", data, family="binomial")
    assert glmm.model.design.y.tolist() == (data.c > 0).astype(float).tolist()
