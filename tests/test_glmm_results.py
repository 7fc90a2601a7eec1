"""The GLMM result vocabulary against lme4 (tests/reference/glmm_tight, lme4 solved tightly):
fitted values on both scales, the four residual kinds, predictions on new data with and without
random effects, and the parts of the result that have no R counterpart (simulate, to_dict,
the summary's layout, typed refusals)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

import multilevel as ml
from multilevel.errors import ArgumentError, NotApplicableError

from reference_data import REF, load_data, load_ref

CASES = {
    "cbpp_laplace": ("binomial", {}),
    "rates_offset_poisson": ("poisson", {}),
    "contraception_slope": ("binomial", {}),
    "nb2_glmernb": ("negative_binomial", {"laplace": "expected"}),
}


@pytest.fixture(scope="module", params=list(CASES))
def case(request: pytest.FixtureRequest):
    ref = load_ref(REF / "glmm_tight" / f"{request.param}.json")
    data = load_data(ref["data_file"].split("/")[-1].removesuffix(".csv"))
    family, options = CASES[request.param]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = ml.glmer(ref["formula"], data, family=family, **options)
    return ref, data, fit


def _summary(values: np.ndarray) -> dict[str, float]:
    return {"sum": float(values.sum()), "sum_sq": float((values ** 2).sum()),
            "last": float(values[-1])}


def _close(values: np.ndarray, ref: dict, rel: float = 1e-3) -> None:
    """Per-row values to ``rel`` (the estimates agree to ~1e-4 relative, contraception_slope's
    -- an ill-conditioned fit lme4 warns about -- to ~1e-3); the sum of residuals cancels, so
    it is compared on the scale of their root sum of squares."""
    ours = _summary(values)
    spread = float(np.sqrt(ref["sum_sq"] * ref["n"]))
    assert ours["sum"] == pytest.approx(ref["sum"], abs=rel * spread)
    assert ours["sum_sq"] == pytest.approx(ref["sum_sq"], rel=rel)
    assert ours["last"] == pytest.approx(ref["last"], rel=rel, abs=1e-6)
    assert values[:5] == pytest.approx(ref["first5"], rel=rel, abs=1e-6)


def test_fitted_on_both_scales(case):
    ref, _, fit = case
    _close(fit.fitted(), ref["fitted"])
    _close(fit.fitted(type="link"), ref["fitted_link"])


@pytest.mark.parametrize("kind", ["deviance", "pearson", "response", "working"])
def test_residual_kinds(case, kind):
    ref, _, fit = case
    _close(fit.residuals(kind), ref["residuals"][kind])


def test_predict_new_data_with_and_without_random_effects(case):
    ref, data, fit = case
    new = data.iloc[:5]
    pred = ref["predict"]
    assert fit.predict(new) == pytest.approx(pred["link_re_form_NULL"], rel=1e-3, abs=1e-6)
    assert fit.predict(new, re_form="NA") == pytest.approx(pred["link_re_form_NA"], rel=1e-3,
                                                           abs=1e-6)
    assert fit.predict(new, type="response") == pytest.approx(
        pred["response_re_form_NULL"], rel=1e-3, abs=1e-8)
    assert fit.predict(new, type="response", re_form="~0") == pytest.approx(
        pred["response_re_form_NA"], rel=1e-3, abs=1e-8)


def test_information_criteria_count_only_estimated_parameters(case):
    ref, _, fit = case
    assert fit.aic == pytest.approx(ref["AIC"], rel=1e-6)
    assert fit.bic == pytest.approx(ref["BIC"], rel=1e-6)
    assert fit.df_resid == ref["df_resid"]
    assert fit.nobs == ref["nobs"]


def test_varcorr_has_no_residual_row_without_a_dispersion():
    ref = load_ref(REF / "glmm_tight" / "cbpp_laplace.json")
    fit = ml.glmer(ref["formula"], load_data("cbpp"), family="binomial")
    assert "Residual" not in set(fit.varcorr.group)
    assert "sigma" not in fit.sdcor.index
    assert fit.n_params == 5  # 4 fixed effects and one SD: no dispersion
    gamma = ml.glmer("y ~ x + (1 | g)", load_data("gamma_sim"),
                     family=ml.families.Gamma(link="log"))
    assert list(gamma.varcorr.group)[-1] == "Residual"
    assert gamma.varcorr.sd.iloc[-1] == pytest.approx(gamma.sigma)
    assert gamma.n_params == 4


def test_summary_is_glmers_layout():
    fit = ml.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                   load_data("cbpp"), family="binomial")
    lines = fit.summary().splitlines()
    assert lines[0] == ("Generalized linear mixed model fit by maximum likelihood (Laplace "
                        "Approximation) ['glmerMod']")
    assert lines[1] == " Family: binomial  ( logit )"
    assert lines[4].split() == ["AIC", "BIC", "logLik", "deviance", "df.resid"]
    # lme4 with its PIRLS solved tightly prints 194.1 204.2 -92.0 184.1 51
    assert lines[5].split() == ["194.1", "204.2", "-92.0", "184.1", "51"]
    text = "\n".join(lines)
    assert " herd   (Intercept) 0.4125   0.6423  " in text
    assert "Residual" not in text
    assert "Estimate Std. Error z value Pr(>|z|)" in text
    agq = ml.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                   load_data("cbpp"), family="binomial", nagq=9)
    assert "(Adaptive Gauss-Hermite Quadrature, nAGQ = 9)" in agq.summary().splitlines()[0]


def test_to_dict_is_strict_json():
    fit = ml.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                   load_data("cbpp"), family="binomial")
    out = json.loads(json.dumps(fit.to_dict(), allow_nan=False))
    assert out["family"] == "binomial" and out["link"] == "logit" and out["nagq"] == 1
    assert out["loglik"] == pytest.approx(fit.loglik)
    assert out["dispersion"] is None
    assert out["coef_table"]["period2"]["df"] is None  # z tests: infinite df
    assert out["vcov_method"] == "hessian"


def test_simulate_draws_from_the_family():
    fit = ml.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                   load_data("cbpp"), family="binomial")
    sims = fit.simulate(nsim=200, seed=1)
    assert sims.shape == (56, 200)
    trials = fit.model.design.weights
    successes = sims.to_numpy() * trials[:, None]
    assert np.allclose(successes, np.round(successes))  # proportions of whole trials
    assert np.all((sims.to_numpy() >= 0) & (sims.to_numpy() <= 1))
    # the mean proportion over simulations is near the marginal mean of the fit's data
    assert sims.to_numpy().mean() == pytest.approx(
        np.average(fit.model.design.y, weights=trials), abs=0.03)
    assert fit.simulate(3, seed=7).equals(fit.simulate(3, seed=7))


def test_inapplicable_requests_raise_typed_errors():
    fit = ml.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                   load_data("cbpp"), family="binomial")
    with pytest.raises(NotApplicableError, match="z tests"):
        fit.coef_table(ddf="satterthwaite")
    with pytest.raises(ArgumentError):
        fit.residuals("partial")
    with pytest.raises(ArgumentError):
        fit.fitted(type="probability")
    with pytest.raises(ArgumentError):
        fit.predict(pd.DataFrame({"period": ["1"], "herd": ["1"]}), type="odds")


def test_report_methods_refuse_a_ddf_with_the_reason():
    fit = ml.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                   load_data("cbpp"), family="binomial")
    for method in (fit.summary, fit.to_dict):
        with pytest.raises(NotApplicableError, match="z tests"):
            method(ddf="satterthwaite")
    assert fit.summary(ddf=None) == fit.summary()


def test_gamma_with_its_default_inverse_link_fits():
    fit = ml.glmer("y ~ x + (1 | g)", load_data("gamma_sim"), family="gamma")
    assert fit.converged and fit.family.link.name == "inverse"
    assert fit.dispersion > 0 and np.isfinite(fit.loglik)
