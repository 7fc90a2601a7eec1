"""multilevel.emmeans / multilevel.slopes against R's emmeans 1.8.4 (with lme4, lmerTest,
pbkrtest, nlme): tests/reference/make_emmeans_refs.R wrote tests/reference/emmeans/emmeans.json.

Each reference case is an emmeans summary with ``infer = c(TRUE, TRUE)`` (the R call is the
case's entry in the script) and the linear functions (``@linfct``) behind it. Tolerances (issue
10): estimates 1e-6 relative, standard errors and interval ends 1e-5, df and p values 1e-4.
For the GLMMs our fit and lme4's differ in the fourth digit (a different optimum / covariance
of glmer itself, not of the marginal means); there the marginal-means arithmetic is checked on
lme4's own coefficients and covariance (plugged into our basis), and our whole pipeline against
emmeans at the fits' agreement.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import multilevel as ml
from multilevel.errors import (
    ArgumentError,
    InternalError,
    MultilevelError,
    NotApplicableError,
)
from multilevel.inference.marginal_means import means_on_basis
from multilevel.inference.reference_grid import model_basis

REF = json.loads((Path(__file__).parent / "reference" / "emmeans" / "emmeans.json")
                 .read_text())
CASES = REF["cases"]
MODELS = REF["models"]
TOL = {"estimate": 1e-6, "std_error": 1e-5, "conf_low": 1e-5, "conf_high": 1e-5, "df": 1e-4,
       "statistic": 1e-5, "p_value": 1e-4}


def check(result: object, case: str, tol: dict[str, float] | None = None,
          skip: tuple[str, ...] = ()) -> None:
    """``result`` (MarginalMeans or MarginalContrasts) equals the R case row by row (but the
    columns in ``skip``)."""
    tol = TOL if tol is None else tol
    ref = pd.DataFrame(CASES[case]["table"])
    ours = result.frame  # type: ignore[attr-defined]
    assert len(ours) == len(ref), case
    for col in ref.columns:
        if col in skip:
            continue
        if col in tol:
            want = ref[col].to_numpy(dtype=float)
            got = ours[col].to_numpy(dtype=float)
            want = np.where(np.isnan(want), np.inf, want)  # R's NA df: asymptotic
            # an interval end near 0 is held to its interval's scale (R's qtukey solves to
            # ~1e-5 only), not to its own size
            atol = (tol[col] * ref["std_error"].to_numpy(dtype=float)
                    if col.startswith("conf") else 0.0)
            with np.errstate(invalid="ignore"):  # inf - inf where both df are infinite
                same = (got == want) | (np.abs(got - want) <= atol + tol[col] * np.abs(want))
            assert same.all(), f"{case}: {col}: ours {got[~same]}, emmeans {want[~same]}"
        elif col == "null":
            np.testing.assert_allclose(ours[col].to_numpy(dtype=float), ref[col].to_numpy())
        else:  # labels: the grid's levels, or the contrasts' names
            got = [f"{x:g}" if isinstance(x, float) else str(x) for x in ours[col]]
            want = [f"{x:g}" if isinstance(x, float) else str(x) for x in ref[col]]
            assert got == want, f"{case}: {col}"
    L = np.asarray(CASES[case]["L"], dtype=float)
    np.testing.assert_allclose(result.L, L, atol=1e-9, err_msg=f"{case}: L")  # type: ignore


@pytest.fixture(scope="module")
def orthodont() -> pd.DataFrame:
    return ml.datasets.load("Orthodont")


@pytest.fixture(scope="module")
def ortho(orthodont: pd.DataFrame) -> ml.LinearMixedModelResult:
    return ml.lmer("distance ~ age * Sex + (1 | Subject)", orthodont)


@pytest.fixture(scope="module")
def machines_data() -> pd.DataFrame:
    return ml.datasets.load("Machines")


@pytest.fixture(scope="module")
def machines(machines_data: pd.DataFrame) -> ml.LinearMixedModelResult:
    return ml.lmer("score ~ Machine + (1 | Worker) + (1 | Worker:Machine)", machines_data)


@pytest.fixture(scope="module")
def machines_kr(machines: ml.LinearMixedModelResult) -> ml.MarginalMeans:
    return ml.emmeans(machines, "Machine", ddf="kenward-roger")


@pytest.fixture(scope="module")
def cbpp() -> pd.DataFrame:
    return ml.datasets.load("cbpp")


@pytest.fixture(scope="module")
def cbpp_fit(cbpp: pd.DataFrame) -> ml.GeneralizedLinearMixedModelResult:
    return ml.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp,
                    family="binomial")


def with_r_estimates(fit: object, model: str) -> object:
    """The fit's basis with lme4's coefficients and covariance."""
    basis = model_basis(fit)
    beta = np.array(list(MODELS[model]["fixef"].values()))
    return replace(basis, beta=beta, vcov=np.asarray(MODELS[model]["vcov"], dtype=float))


# -- (a) factor x covariate lmer --------------------------------------------------------------
def test_orthodont_means_satterthwaite(ortho: ml.LinearMixedModelResult) -> None:
    means = ml.emmeans(ortho, "Sex")
    check(means, "ortho_sex")
    check(means.contrast("pairwise"), "ortho_sex_pairs")


def test_orthodont_means_at_covariate_values(ortho: ml.LinearMixedModelResult) -> None:
    check(ml.emmeans(ortho, "Sex", at={"age": [8, 14]}), "ortho_sex_at")
    by_age = ml.emmeans(ortho, "~ Sex | age", at={"age": [8, 14]})
    check(by_age, "ortho_sex_by_age")
    check(by_age.contrast("revpairwise"), "ortho_sex_revpairs_by_age")
    # the same, written with by= and with the method in the formula
    formula = ml.emmeans(ortho, "revpairwise ~ Sex", by="age", at={"age": [8, 14]})
    assert formula.contrasts is not None
    check(formula.contrasts, "ortho_sex_revpairs_by_age")


def test_grand_mean(ortho: ml.LinearMixedModelResult) -> None:
    check(ml.emmeans(ortho, "~ 1"), "ortho_grand", skip=("1",))  # R labels it "overall"


def test_orthodont_kenward_roger(ortho: ml.LinearMixedModelResult) -> None:
    check(ml.emmeans(ortho, "Sex", ddf="kenward-roger"), "ortho_sex_kr")


def test_orthodont_slopes(ortho: ml.LinearMixedModelResult) -> None:
    trends = ml.slopes(ortho, "age", by="Sex")
    assert trends.estimate_name == "age.trend"
    check(trends, "ortho_trend")
    check(trends.contrast("pairwise"), "ortho_trend_pairs")
    # exactly the coefficients for a term linear in age: b_age and b_age + b_age:SexFemale
    b = ortho.fixef
    np.testing.assert_allclose(trends.frame["estimate"],
                               [b["age"], b["age"] + b["age:SexFemale"]], rtol=1e-9)


# -- (b) GLMM on the response scale -----------------------------------------------------------
def test_cbpp_response_scale_arithmetic(cbpp_fit: object) -> None:
    basis = with_r_estimates(cbpp_fit, "cbpp")
    check(means_on_basis(basis, "period"), "cbpp_link")
    response = means_on_basis(basis, "period", type="response")
    assert response.estimate_name == "prob"
    check(response, "cbpp_response")
    check(response.contrast("pairwise"), "cbpp_odds_ratios")
    check(response.contrast("pairwise", adjust="holm"), "cbpp_odds_ratios_holm")
    check(means_on_basis(basis, "period").contrast(), "cbpp_link_pairs")


def test_cbpp_poisson_rate_ratios(cbpp: pd.DataFrame) -> None:
    fit = ml.glmer("incidence ~ period + (1 | herd)", cbpp, family="poisson")
    basis = with_r_estimates(fit, "cbpp_poisson")
    rates = means_on_basis(basis, "period", type="response")
    assert rates.estimate_name == "rate"
    check(rates, "cbpp_poisson_response")
    check(rates.contrast("trt.vs.ctrl"), "cbpp_poisson_ratios")  # dunnettx


def test_cbpp_whole_pipeline_at_the_fits_agreement(cbpp_fit: object) -> None:
    # glmer's own estimates agree with lme4's to ~5e-4 and its standard errors to ~2 %; the
    # p values of |z| > 6 follow those differences many times over, so are left out here
    loose = {"estimate": 2e-3, "std_error": 3e-2, "conf_low": 3e-2, "conf_high": 3e-2,
             "df": 1e-4, "statistic": 3e-2}
    response = ml.emmeans(cbpp_fit, "period", type="response")
    check(response, "cbpp_response", loose, skip=("p_value",))
    check(response.contrast(), "cbpp_odds_ratios", loose, skip=("p_value",))
    assert "Intervals are back-transformed from the logit scale" in str(response)


# -- (c) Kenward-Roger df and the multiplicity adjustments -------------------------------------
def test_machines_kenward_roger_and_adjustments(machines: ml.LinearMixedModelResult,
                                                machines_kr: ml.MarginalMeans) -> None:
    check(machines_kr, "machines_kr")
    check(machines_kr.contrast("pairwise"), "machines_kr_tukey")
    for adjust in ("holm", "bonferroni", "sidak", "none"):
        check(machines_kr.contrast("pairwise", adjust=adjust), f"machines_kr_{adjust}")
    check(machines_kr.contrast("trt.vs.ctrl"), "machines_kr_trt")
    check(machines_kr.contrast("consec", adjust="holm"), "machines_kr_consec_holm")
    formula = ml.emmeans(machines, "consec ~ Machine", ddf="kenward-roger", adjust="holm")
    assert formula.contrasts is not None
    check(formula.contrasts, "machines_kr_consec_holm")
    custom = machines_kr.contrast({"A_vs_BC": [1, -0.5, -0.5], "B_vs_C": [0, 1, -1]})
    check(custom, "machines_kr_custom")
    assert custom.adjust == "none"


def test_machines_satterthwaite(machines: ml.LinearMixedModelResult) -> None:
    means = ml.emmeans(machines, "Machine")
    check(means, "machines_sat")
    check(means.contrast(), "machines_sat_tukey")


# -- (d) nested random effects (lme, containment df), gls, unbalanced averaging ---------------
def test_machines_lme_nested_containment(machines_data: pd.DataFrame) -> None:
    fit = ml.lme("score ~ Machine", machines_data, random="~ 1 | Worker/Machine")
    means = ml.emmeans(fit, "Machine")
    check(means, "machines_lme")
    check(means.contrast(), "machines_lme_tukey")


def test_lme_ml_and_gls(orthodont: pd.DataFrame) -> None:
    fit = ml.lme("distance ~ age * Sex", orthodont, random="~ 1 | Subject", method="ML")
    check(ml.emmeans(fit, "Sex"), "ortho_lme_ml")  # containment df differ by row: 26, 25
    check(ml.emmeans(ml.gls("distance ~ age * Sex", orthodont), "Sex"), "ortho_gls")


def test_lme_and_gls_with_structures(orthodont: pd.DataFrame) -> None:
    fit = ml.lme("distance ~ age * Sex", orthodont, random="~ 1 | Subject",
                 correlation=ml.CorAR1())
    check(ml.emmeans(fit, "Sex"), "ortho_lme_ar1")
    by_age = ml.emmeans(fit, "Sex", by="age", at={"age": [8, 14]})
    check(by_age.contrast("pairwise"), "ortho_lme_ar1_pairs")
    gls = ml.gls("distance ~ age * Sex", orthodont, weights=ml.VarIdent(form="~ 1 | Sex"))
    # emmeans's default here would be its Satterthwaite approximation: df.error is asked for
    check(ml.emmeans(gls, "Sex"), "ortho_gls_varident")


def test_exam_averaging_weights_and_kr() -> None:
    fit = ml.lmer("normexam ~ standLRT + sex + vr + (1 | school)", ml.datasets.load("Exam"))
    check(ml.emmeans(fit, "vr"), "exam_vr")
    check(ml.emmeans(fit, "vr", ddf="kenward-roger"), "exam_vr_kr")
    check(ml.emmeans(fit, "sex", by="vr"), "exam_sex_by_vr")
    check(ml.emmeans(fit, "vr", weights="proportional"), "exam_vr_proportional")
    check(ml.emmeans(fit, "vr").contrast(adjust="bonferroni"), "exam_vr_pairs")
    check(ml.slopes(fit, "standLRT", by="sex"), "exam_trend")


def test_exam_weights_over_empty_cells() -> None:
    # sex x schgend has empty cells (no girls in boys' schools), so each weighting differs
    fit = ml.lmer("normexam ~ standLRT + sex + vr + schgend + (1 | school)",
                  ml.datasets.load("Exam"))
    for weights in ("equal", "proportional", "outer", "cells", "flat"):
        check(ml.emmeans(fit, "vr", weights=weights), f"exam2_{weights}")
    assert "averaged over the levels of: sex, schgend" in str(ml.emmeans(fit, "vr"))


def test_slope_of_a_quadratic_is_emtrends_forward_difference(
        orthodont: pd.DataFrame) -> None:
    fit = ml.lmer("distance ~ Sex * age + I(age^2) + (1 | Subject)", orthodont)
    check(ml.slopes(fit, "age", by="Sex"), "ortho_quad_trend")
    at = ml.slopes(fit, "age", by=["Sex", "age"], at={"age": [8, 14]})
    check(at, "ortho_quad_trend_at")


# -- Bayesian fits: summaries over the posterior draws -----------------------------------------
def test_hpd_interval_is_codas() -> None:
    from scipy import stats

    from multilevel.inference.marginal_means import hpd_interval

    x = stats.chi2.ppf(np.arange(1, 1001) / 1001, 3)  # REF["hpd"]["x"]
    np.random.default_rng(1).shuffle(x)
    for level in (0.9, 0.5):
        np.testing.assert_allclose(hpd_interval(x, level), REF["hpd"][f"level_{level}"],
                                   rtol=1e-12)


@pytest.mark.slow
def test_bayes_means_are_posterior_summaries_of_l_beta(
        orthodont: pd.DataFrame, ortho: ml.LinearMixedModelResult) -> None:
    from multilevel.inference.marginal_means import hpd_interval

    fit = ml.bayes("distance ~ age * Sex + (1 | Subject)", orthodont, chains=2, draws=200,
                   warmup=200, seed=1, progress=False)
    means = ml.emmeans(fit, "Sex")
    freq = ml.emmeans(ortho, "Sex")
    np.testing.assert_allclose(means.L, freq.L, atol=1e-12)  # the same grid
    B = np.stack([fit.draws(v).reshape(-1) for _, v in fit.model.fixed_variables()], axis=1)
    D = B @ means.L.T
    np.testing.assert_allclose(means.frame["estimate"], np.median(D, axis=0), rtol=1e-12)
    np.testing.assert_allclose(means.frame["conf_low"], [hpd_interval(d, 0.95)[0]
                                                         for d in D.T], rtol=1e-12)
    # with flat-ish default priors the posterior sits on the REML estimates
    gap = np.abs(means.frame["estimate"] - freq.frame["estimate"])
    assert (gap < 0.5 * freq.frame["std_error"]).all()
    pairs = means.contrast()
    assert pairs.adjust == "none" and "p_value" not in pairs.frame
    np.testing.assert_allclose(pairs.frame["estimate"], np.median(D[:, 0] - D[:, 1]),
                               rtol=1e-12)
    trends = ml.slopes(fit, "age", by="Sex")
    assert (np.abs(trends.frame["estimate"] - ml.slopes(ortho, "age", by="Sex")
                   .frame["estimate"]) < 0.05).all()


# -- the surface ----------------------------------------------------------------------------
def test_interaction_note_as_emmeans(ortho: ml.LinearMixedModelResult,
                                     machines_kr: ml.MarginalMeans) -> None:
    note = "NOTE: Results may be misleading due to involvement in interactions"
    assert note in ml.emmeans(ortho, "Sex").notes  # age:Sex holds Sex and age
    assert note not in ml.emmeans(ortho, "Sex", by="age", at={"age": [8, 14]}).notes
    assert note not in machines_kr.notes
    assert note not in ml.slopes(ortho, "age", by="Sex").notes


def test_printing_and_frame(machines_kr: ml.MarginalMeans) -> None:
    text = str(machines_kr.contrast())
    assert "P value adjustment: tukey method for comparing a family of 3 estimates" in text
    assert "A - B" in text
    assert "<table" in machines_kr._repr_html_()
    assert list(machines_kr["Machine"]) == ["A", "B", "C"]
    assert len(machines_kr) == 3


def test_tukey_on_non_pairwise_becomes_sidak(machines_kr: ml.MarginalMeans) -> None:
    out = machines_kr.contrast("trt.vs.ctrl", adjust="tukey")
    assert out.adjust == "sidak"
    assert any("Sidak" in n for n in out.notes)


def test_bad_input_is_named(ortho: ml.LinearMixedModelResult,
                            machines_kr: ml.MarginalMeans) -> None:
    with pytest.raises(ArgumentError, match="'Age'"):
        ml.emmeans(ortho, "Age")
    with pytest.raises(ArgumentError, match="'age', a numeric covariate"):
        ml.emmeans(ortho, "age")
    with pytest.raises(ArgumentError, match="'age', a numeric covariate"):
        ml.emmeans(ortho, "Sex", by="age")
    with pytest.raises(ArgumentError, match="adjust"):
        machines_kr.contrast(adjust="mvt")
    with pytest.raises(ArgumentError, match="'Worker'"):
        machines_kr.contrast(by="Worker")
    with pytest.raises(ArgumentError, match="needs one per mean"):
        machines_kr.contrast({"x": [1, -1]})
    with pytest.raises(ArgumentError, match="var 'Sex' is a factor"):
        ml.slopes(ortho, "Sex")
    with pytest.raises(ArgumentError, match="not a level of factor 'Sex'"):
        ml.emmeans(ortho, "Sex", at={"Sex": ["Other"]})
    with pytest.raises(ArgumentError, match="type"):
        ml.emmeans(ortho, "Sex", type="odds")
    with pytest.raises(NotApplicableError, match="kenward-roger"):
        ml.emmeans(ml.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                            ml.datasets.load("cbpp"), family="binomial"),
                   "period", ddf="kenward-roger")
    with pytest.raises(MultilevelError):
        ml.emmeans("not a fit", "Sex")
    with pytest.raises(ArgumentError, match="'Subject'"):
        ml.emmeans(ortho, "Sex", at={"Subject": ["M01"]})
    with pytest.raises(ArgumentError, match="weights"):
        ml.emmeans(ortho, "Sex", weights="balanced")
    with pytest.raises(ArgumentError, match="method"):
        machines_kr.contrast("eff")
    with pytest.raises(ArgumentError, match="no contrast method"):
        ml.emmeans(ortho, "Sex", adjust="holm")
    with pytest.raises(MultilevelError, match="'estimat'"):
        machines_kr["estimat"]


JUNK = [None, 1, 1.5, True, "", " ", "~", "|", "Sex|", "pairwise ~", "x ~ Sex", ["Sex", 1],
        {"a": 1}, b"Sex", float("nan"), [], {}, "~ Sex | Sex"]


@pytest.mark.parametrize("argument", ["specs", "by", "at", "ddf", "type", "level", "weights",
                                      "adjust"])
def test_junk_arguments_raise_typed_errors(ortho: ml.LinearMixedModelResult,
                                           argument: str) -> None:
    for value in JUNK:
        kwargs: dict[str, object] = {"specs": "Sex", argument: value}
        try:
            ml.emmeans(ortho, **kwargs)
        except MultilevelError as exc:
            assert not isinstance(exc, InternalError), (argument, value, exc)
    for value in [*JUNK, {"age": [np.nan]}, {"age": "x"}, {"Sex": []}]:
        try:
            ml.slopes(ortho, "age", **{argument if argument in ("by", "at") else "by": value})
        except MultilevelError as exc:
            assert not isinstance(exc, InternalError), (argument, value, exc)


@pytest.mark.parametrize("argument", ["method", "adjust", "by", "level"])
def test_junk_contrast_arguments_raise_typed_errors(machines_kr: ml.MarginalMeans,
                                                    argument: str) -> None:
    for value in [*JUNK, "Machine Machine", {"x": [1, "a", 2]}, {"x": [[1, 2, 3]]}]:
        try:
            machines_kr.contrast(**{argument: value})
        except MultilevelError as exc:
            assert not isinstance(exc, InternalError), (argument, value, exc)


def test_repeated_names_and_values_count_once(ortho: ml.LinearMixedModelResult) -> None:
    assert len(ml.emmeans(ortho, "Sex Sex")) == 2
    assert len(ml.emmeans(ortho, "Sex", by="age", at={"age": [8, 8, 14]})) == 4


def test_offset_models_are_refused(cbpp: pd.DataFrame) -> None:
    fit = ml.glmer("incidence ~ period + offset(log(size)) + (1 | herd)", cbpp,
                   family="poisson")
    with pytest.raises(NotApplicableError, match="offset"):
        ml.emmeans(fit, "period")
