"""ml.nlme (Lindstrom-Bates) against nlme: the shared Orange fit (logistic growth, random
asymptote) and Loblolly (asymptotic regression, random asymptote), tests/reference/nlme/.
Issue 8's targets: log-likelihood 1e-5 relative, fixed effects 1e-4, variance parameters 1e-3.
(loblolly.json also holds a REML fit, on which we are not yet within them: ML fits match
nlme -- also with two random parameters, -112.12374 against nlme's -112.12325 -- but REML
ones differ by ~1e-4 relative; see the closing note of the session that added it.)"""

from __future__ import annotations

import json

import numpy as np
import pytest

import multilevel as ml
from multilevel.errors import ArgumentError, DataError, FormulaError

from reference_data import REF, load_data

ORANGE = json.loads((REF / "nlme" / "orange_nlme_shared.json").read_text())
LOBLOLLY = json.loads((REF / "nlme" / "loblolly.json").read_text())["loblolly_asym"]


def check(fit, ref_fixef, ref_se, ref_loglik, ref_sds, ref_aic, ref_bic):
    assert fit.loglik == pytest.approx(ref_loglik, rel=1e-5)
    names = list(ref_fixef)
    assert fit.fixef[names].to_numpy() == pytest.approx(list(ref_fixef.values()), rel=1e-4)
    assert np.sqrt(np.diag(fit.vcov.loc[names, names])) == pytest.approx(
        list(ref_se.values()), rel=1e-3)
    assert fit.varcorr.sd.dropna().to_numpy() == pytest.approx(ref_sds, rel=1e-3)
    assert fit.aic == pytest.approx(ref_aic, rel=1e-5)
    assert fit.bic == pytest.approx(ref_bic, rel=1e-5)


def test_orange_logistic_growth():
    fit = ml.nlme("circumference ~ SSlogis(age, Asym, xmid, scal)", load_data("Orange"),
                  random="Asym ~ 1 | Tree", fixed="Asym + xmid + scal ~ 1",
                  start={"Asym": 192, "xmid": 728, "scal": 353})
    sds = [r["sd"] for r in ORANGE["varcomp"]]
    check(fit, ORANGE["fixef"], ORANGE["fixef_se"], ORANGE["logLik"], sds, ORANGE["AIC"],
          ORANGE["BIC"])
    modes = {r["level"]: r["condval"] for r in ORANGE["ranef"]}
    for tree, value in fit.ranef["Tree"]["Asym"].items():
        assert value == pytest.approx(modes[tree], abs=1e-2)
    per_tree = fit.coef()
    assert per_tree.loc["3", "Asym"] == pytest.approx(fit.fixef["Asym"]
                                                + fit.ranef["Tree"].loc["3", "Asym"])


def test_orange_without_start_uses_the_models_starting_values():
    fit = ml.nlme("circumference ~ SSlogis(age, Asym, xmid, scal)", load_data("Orange"),
                  random="Asym ~ 1 | Tree")
    assert fit.loglik == pytest.approx(ORANGE["logLik"], rel=1e-5)


def test_loblolly_asymptotic_regression():
    fit = ml.nlme("height ~ SSasymp(age, Asym, R0, lrc)", load_data("Loblolly"),
                  random="Asym ~ 1 | Seed", start={"Asym": 103, "R0": -8.5, "lrc": -3.3})
    check(fit, LOBLOLLY["fixef"], LOBLOLLY["se"], LOBLOLLY["logLik"], LOBLOLLY["sd"],
          LOBLOLLY["AIC"], LOBLOLLY["BIC"])


def test_bad_specifications_fail_before_fitting():
    d = load_data("Orange")
    model = "circumference ~ SSlogis(age, Asym, xmid, scal)"
    with pytest.raises(ArgumentError, match="not a parameter"):
        ml.nlme(model, d, random="K ~ 1 | Tree")
    with pytest.raises(DataError, match="not in the data"):
        ml.nlme(model, d, random="Asym ~ 1 | Plot")
    with pytest.raises(ArgumentError, match="fixed= names the model's parameters"):
        ml.nlme("circumference ~ Asym / (1 + exp((xmid - age) / scal))", d,
                random="Asym ~ 1 | Tree")
    with pytest.raises(FormulaError, match="not known"):
        ml.nlme("circumference ~ logistic(age, Asym)", d, fixed="Asym ~ 1",
                random="Asym ~ 1 | Tree", start={"Asym": 1})
    # a dotted name is an R name, never an attribute: age.__class__ is a (missing) column
    with pytest.raises(DataError, match="'age.__class__' not in the data"):
        ml.nlme("circumference ~ Asym * age.__class__", d, fixed="Asym ~ 1",
                random="Asym ~ 1 | Tree", start={"Asym": 1})
    with pytest.raises(FormulaError, match="not allowed"):
        ml.nlme("circumference ~ Asym * age[0]", d, fixed="Asym ~ 1",
                random="Asym ~ 1 | Tree", start={"Asym": 1})
    with pytest.raises(ArgumentError, match="do not appear"):
        ml.nlme(model, d, random="Asym ~ 1 | Tree", fixed="Asym + xmid + scal + K ~ 1")


@pytest.mark.parametrize("start,message", [
    ({"Asym": 1, "xmid": 1, "scal": 1}, "does not depend on some of Asym, xmid, scal"),
    ({"Asym": 1e6, "xmid": -5000, "scal": 0.001}, "does not depend on xmid, scal"),
    ({"Asym": 192, "xmid": 728, "scal": 0}, "derivative with respect to xmid, scal cannot"),
])
def test_hopeless_starting_values_name_the_parameters_and_suggest_nls_list(start, message):
    with pytest.raises(ml.errors.NumericalError, match=message) as info:
        ml.nlme("circumference ~ SSlogis(age, Asym, xmid, scal)", load_data("Orange"),
                random="Asym ~ 1 | Tree", start=start)
    assert "ml.nls_list" in str(info.value)


def test_specification_errors_before_fitting():
    d = load_data("Orange")
    model = "circumference ~ SSlogis(age, Asym, xmid, scal)"
    with pytest.raises(ArgumentError, match="grouping factor"):
        ml.nlme(model, d, random=ml.PdDiag("Asym ~ 1"))
    with pytest.raises(ArgumentError, match="groups="):
        ml.PdDiag("Asym ~ 1 | Tree")
    with pytest.raises(DataError, match="'Nope' not in the data"):
        ml.nlme(model, d, random="Asym ~ 1 | Tree", weights=ml.VarIdent(form="~ 1 | Nope"))
    with pytest.raises(ArgumentError, match="start needs a value for scal"):
        ml.nlme("circumference ~ Asym / (1 + exp((xmid - age) / scal))", d,
                fixed="Asym + xmid + scal ~ 1", random="Asym ~ 1 | Tree",
                start={"Asym": 192, "xmid": 728})
    with pytest.raises(ArgumentError, match="needs 3 finite values"):
        ml.nlme(model, d, random="Asym ~ 1 | Tree", start=[192, 728])


def test_r_names_with_dots_in_the_model_and_the_grouping():
    """R's dotted names (age.days, tree.id, A.sym) are names, as in R, in the model, fixed,
    random and predict."""
    d = load_data("Orange")
    base = ml.nlme("circumference ~ SSlogis(age, Asym, xmid, scal)", d, random="Asym ~ 1 | Tree")
    dotted = d.rename(columns={"Tree": "tree.id", "age": "age.days"})
    fit = ml.nlme("circumference ~ SSlogis(age.days, A.sym, xmid, scal)", dotted,
                  random="A.sym ~ 1 | tree.id")
    assert fit.loglik == pytest.approx(base.loglik, rel=1e-12)
    assert list(fit.fixef.index) == ["A.sym", "xmid", "scal"]
    assert fit.predict(dotted.head(3)).to_numpy() == pytest.approx(
        base.predict(d.head(3)).to_numpy())
    with pytest.raises(FormulaError, match="'age.days.real' is not known"):
        ml.nlme("circumference ~ A.sym * age.days.real()", dotted, fixed="A.sym ~ 1",
                random="A.sym ~ 1 | tree.id", start={"A.sym": 1})
    with pytest.raises(FormulaError, match="'age.days\\[0\\]' is not allowed"):
        ml.nlme("circumference ~ A.sym * age.days[0]", dotted, fixed="A.sym ~ 1",
                random="A.sym ~ 1 | tree.id", start={"A.sym": 1})


def test_integer_grouping_columns_are_ordered_as_r_orders_them():
    """R's factor() orders integer codes numerically (1, 2, 3, 10, 20), not as text."""
    d = load_data("Orange")
    codes = {"1": 2, "2": 10, "3": 3, "4": 1, "5": 20}
    d = d.assign(Tree=d["Tree"].astype(str).map(codes).astype(int))
    expected = ["1", "2", "3", "10", "20"]
    fit = ml.nlme("circumference ~ SSlogis(age, Asym, xmid, scal)", d, random="Asym ~ 1 | Tree")
    assert list(fit.ranef["Tree"].index) == expected
    assert list(fit.coef().index) == expected
    per_group = ml.nls_list("circumference ~ SSlogis(age, Asym, xmid, scal) | Tree", d)
    assert per_group.groups == expected
    # predictions find each row's group by its label
    assert fit.predict(d, level=1).to_numpy() == pytest.approx(fit.fitted(level=1).to_numpy())
