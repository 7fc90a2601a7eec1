"""ml.predictions against R (tests/reference/make_predictions_refs.R): lmer sleepstudy and its
ggpredict, glmer cbpp on the response scale, lme and gls on Orthodont, nlme Orange by the delta
method with SSlogis's analytic gradient; a Bayesian fit's posterior summaries of its draws.
Tolerances: estimates 1e-6 relative, standard errors 1e-4 relative (nlme: its fit agrees with
nlme's to 1e-4 in the fixed effects and 1e-3 in their SEs, and the predictions inherit that)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import multilevel as ml
from multilevel.errors import (
    ArgumentError,
    ColumnNotFoundError,
    DataError,
    MultilevelError,
    NotApplicableError,
)

from reference_data import REF, load_data

R = json.loads((REF / "predictions" / "predictions.json").read_text())["cases"]


def frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows).astype({k: float for k, v in rows[0].items()
                                      if isinstance(v, int | float)})


def check(result: pd.DataFrame, ref: dict, est_rel: float = 1e-6, se_rel: float = 1e-4):
    assert result["estimate"].to_numpy() == pytest.approx(ref["estimate"], rel=est_rel)
    assert result["std_error"].to_numpy() == pytest.approx(ref["std_error"], rel=se_rel)
    assert result["conf_low"].to_numpy() == pytest.approx(ref["conf_low"], rel=se_rel)
    assert result["conf_high"].to_numpy() == pytest.approx(ref["conf_high"], rel=se_rel)


@pytest.fixture(scope="module")
def sleep_fit():
    return ml.lmer("Reaction ~ Days + (Days | Subject)", load_data("sleepstudy"))


def test_lmer_population_matches_r_and_ggpredict(sleep_fit):
    ref = R["lmer_sleepstudy"]
    nd = frame(ref["newdata"])
    out = ml.predictions(sleep_fit, nd)
    assert list(out.columns) == ["Days", "estimate", "std_error", "conf_low", "conf_high"]
    assert out["Days"].tolist() == nd["Days"].tolist()
    check(out, ref["population"])
    # ggpredict's own columns: with its t critical value on n - (every parameter) df
    gg = ref["ggpredict"]
    tout = ml.predictions(sleep_fit, nd, df=ref["ggpredict_df"])
    assert tout["estimate"].to_numpy() == pytest.approx(gg["predicted"], rel=1e-6)
    assert tout["std_error"].to_numpy() == pytest.approx(gg["std_error"], rel=1e-4)
    assert tout["conf_low"].to_numpy() == pytest.approx(gg["conf_low"], rel=1e-4)
    assert tout["conf_high"].to_numpy() == pytest.approx(gg["conf_high"], rel=1e-4)


def test_lmer_conditional_predictions(sleep_fit):
    ref = R["lmer_sleepstudy"]
    nd = frame(ref["conditional_newdata"])
    out = ml.predictions(sleep_fit, nd, re_form=None)
    check(out, ref["conditional"])
    assert out["estimate"].to_numpy() == pytest.approx(sleep_fit.predict(nd), rel=1e-12)


def test_level_and_link_scale_of_a_linear_model(sleep_fit):
    nd = pd.DataFrame({"Days": [0.0, 5.0]})
    wide = ml.predictions(sleep_fit, nd, level=0.99)
    base = ml.predictions(sleep_fit, nd)
    assert (wide["conf_high"] - wide["conf_low"]).to_numpy() == pytest.approx(
        (base["conf_high"] - base["conf_low"]).to_numpy() * 2.5758293 / 1.9599640, rel=1e-6)
    link = ml.predictions(sleep_fit, nd, scale="link")
    assert link["estimate"].to_numpy() == pytest.approx(base["estimate"].to_numpy())


def test_glmer_response_scale_matches_ggpredict():
    ref = R["glmer_cbpp"]
    fit = ml.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                   load_data("cbpp"), family="binomial")
    nd = pd.DataFrame(ref["newdata"])
    out = ml.predictions(fit, nd)
    check(out, ref["population"])
    gg = ref["ggpredict"]
    assert out["estimate"].to_numpy() == pytest.approx(gg["predicted"], rel=1e-6)
    assert out["std_error"].to_numpy() == pytest.approx(gg["std_error"], rel=1e-4)
    assert out["conf_low"].to_numpy() == pytest.approx(gg["conf_low"], rel=1e-4)
    assert out["conf_high"].to_numpy() == pytest.approx(gg["conf_high"], rel=1e-4)
    link = ml.predictions(fit, nd, scale="link")
    assert link["estimate"].to_numpy() == pytest.approx(ref["population"]["eta"], rel=1e-6)
    # the response-scale interval is the link-scale one mapped through the inverse logit
    expit = 1 / (1 + np.exp(-link["conf_low"].to_numpy()))
    assert out["conf_low"].to_numpy() == pytest.approx(expit, rel=1e-12)


@pytest.fixture(scope="module")
def orthodont_fits():
    d = load_data("Orthodont")
    lme = ml.lme("distance ~ age * Sex", d, random="~ 1 | Subject")
    gls = ml.gls("distance ~ age * Sex", d, correlation=ml.CorCompSymm(form="~ 1 | Subject"))
    return lme, gls


def test_lme_matches_r_and_ggpredict(orthodont_fits):
    ref = R["lme_orthodont"]
    nd = frame(ref["newdata"])
    out = ml.predictions(orthodont_fits[0], nd)
    check(out, ref["population"])
    gg = ref["ggpredict"]
    # ggpredict orders by age, then Sex (Male first as in the grid)
    order = np.lexsort((nd["Sex"] != "Male", nd["age"]))
    assert out["estimate"].to_numpy()[order] == pytest.approx(gg["predicted"], rel=1e-6)
    assert out["conf_low"].to_numpy()[order] == pytest.approx(gg["conf_low"], rel=1e-4)


def test_gls_matches_r(orthodont_fits):
    ref = R["gls_orthodont"]
    out = ml.predictions(orthodont_fits[1], frame(ref["newdata"]))
    check(out, ref["population"])


@pytest.fixture(scope="module")
def orange_fit():
    return ml.nlme("circumference ~ SSlogis(age, Asym, xmid, scal)", load_data("Orange"),
                   random="Asym ~ 1 | Tree", fixed="Asym + xmid + scal ~ 1",
                   start={"Asym": 192, "xmid": 728, "scal": 353})


def _sslogis_gradient(age: np.ndarray, asym: float, xmid: float, scal: float) -> np.ndarray:
    """d/d(Asym, xmid, scal) of Asym / (1 + exp((xmid - age) / scal)), by hand."""
    e = np.exp((xmid - age) / scal)
    f = 1 / (1 + e)
    return np.column_stack([f, -asym * f**2 * e / scal,
                            asym * f**2 * e * (xmid - age) / scal**2])


def test_nlme_delta_method_matches_r(orange_fit):
    ref = R["nlme_orange"]
    out = ml.predictions(orange_fit, frame(ref["newdata"]))
    check(out, ref["population"], est_rel=1e-4, se_rel=1e-3)


def test_nlme_numerical_gradient_equals_the_analytic_one(orange_fit):
    age = np.array([118.0, 484.0, 1004.0, 1582.0])
    out = ml.predictions(orange_fit, pd.DataFrame({"age": age}))
    b = orange_fit.fixef
    G = _sslogis_gradient(age, b["Asym"], b["xmid"], b["scal"])
    V = orange_fit.vcov.loc[["Asym", "xmid", "scal"], ["Asym", "xmid", "scal"]].to_numpy()
    assert out["std_error"].to_numpy() == pytest.approx(
        np.sqrt(np.einsum("ij,jk,ik->i", G, V, G)), rel=1e-6)
    # conditional on a tree: its own curve, the same fixed-effects delta method
    tree = pd.DataFrame({"age": age, "Tree": ["3"] * 4})
    cond = ml.predictions(orange_fit, tree, re_form=None)
    assert cond["estimate"].to_numpy() == pytest.approx(
        orange_fit.predict(tree, level=1).to_numpy(), rel=1e-12)


def test_bad_input_raises_typed_errors(sleep_fit, orange_fit):
    nd = pd.DataFrame({"Days": [1.0]})
    with pytest.raises(DataError, match="Days"):
        ml.predictions(sleep_fit, pd.DataFrame({"Dayz": [1.0]}))
    with pytest.raises(ColumnNotFoundError, match="Subject"):
        ml.predictions(sleep_fit, nd, re_form=None)
    with pytest.raises(ArgumentError, match="level"):
        ml.predictions(sleep_fit, nd, level=95)
    with pytest.raises(ArgumentError, match="scale"):
        ml.predictions(sleep_fit, nd, scale="probability")
    with pytest.raises(ArgumentError, match="df"):
        ml.predictions(sleep_fit, nd, df=-1)
    with pytest.raises(ArgumentError, match="newdata"):
        ml.predictions(sleep_fit, None)
    with pytest.raises(ArgumentError, match="estimate"):
        ml.predictions(sleep_fit, nd.assign(estimate=1.0))
    with pytest.raises(DataError, match="no rows"):
        ml.predictions(sleep_fit, nd.iloc[:0])
    with pytest.raises(ArgumentError, match="re_form"):
        ml.predictions(orange_fit, pd.DataFrame({"age": [100.0]}), re_form="~(1 | Tree)")
    with pytest.raises(DataError, match="age"):
        ml.predictions(orange_fit, pd.DataFrame({"agex": [100.0]}))
    with pytest.raises(NotApplicableError, match="LmListResult"):
        ml.predictions(ml.lm_list("Reaction ~ Days | Subject", load_data("sleepstudy")), nd)
    with pytest.raises(MultilevelError):
        ml.predictions("not a fit", nd)
