"""Agreement with lme4 1.1-31 on every linear mixed-model reference case.

The numbers come from R: tests/reference/lme4_shared/*.json (made by the project's shared
reference set; the R call is in each file's ``call``) and tests/reference/lme4_extra/*.json
(made by tests/reference/make_lme4_refs.R). Targets: log-likelihood 1e-6 relative, fixed
effects and variance components 1e-4 relative, standard errors 1e-3 relative, conditional
modes 1e-4 relative (to the scale of the random effects).
"""

from __future__ import annotations

import warnings
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
import pytest

import multilevel as ml

from reference_data import lmm_reference_files, load_data, load_ref

FILES = {p.stem: p for p in lmm_reference_files()}
# Arguments that are not in the formula, as the R calls pass them.
EXTRA_ARGS: dict[str, dict[str, Any]] = {
    "sleepstudy_weights": {"weights": "w"},
    "sleepstudy_offset": {"offset": "2 * Days"},
}


@cache
def _fit(case: str) -> tuple[Any, dict[str, Any]]:
    ref = load_ref(FILES[case])
    data = load_data(ref["dataset"])
    kwargs = dict(EXTRA_ARGS.get(case, {}))
    if kwargs.get("offset") == "2 * Days":
        kwargs["offset"] = 2 * data["Days"].to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ml.errors.MultilevelWarning)
        fit = ml.lmer(ref["formula"], data, reml=bool(ref["reml"]), **kwargs)
    return fit, ref


CASES = sorted(FILES)
# oxboys_quadratic (three correlated terms, 6 theta) is ill-conditioned: lme4's own estimate
# stops about 1.5e-4 (relative, in the variance components) short of the optimum -- a Newton
# step from lme4's theta lowers its REML criterion by ~1e-7 -- so no optimizer can agree with it
# more closely than that. Its variance components are compared at 5e-4; the criterion itself
# still agrees to 1e-6 relative.
LOOSE_VARIANCE = {"oxboys_quadratic": 5e-4}
# Where lme4 itself warns "Model failed to converge" (its check of the gradient at its answer),
# its estimates are not the optimum: there we require a criterion at least as good as lme4's
# and compare the estimates loosely (5e-2): a small variance moves by a few percent there.
UNCONVERGED_TOL = 5e-2


def lme4_unconverged(ref: dict[str, Any]) -> bool:
    """True when lme4 warned that this fit failed its convergence check."""
    return any("failed to converge" in w for w in ref.get("fit_warnings") or [])


def tolerance(case: str, ref: dict[str, Any]) -> float:
    """Relative tolerance for variance components, conditional modes and predictions."""
    if lme4_unconverged(ref):
        return UNCONVERGED_TOL
    return LOOSE_VARIANCE.get(case, 1e-4)


def test_every_case_is_present():
    assert len(CASES) >= 20
    assert {"sleepstudy_reml", "penicillin", "pastes_nested", "machines_factor_slopes",
            "chem97_nested", "sleepstudy_weights", "sleepstudy_offset"} <= set(CASES)


@pytest.mark.parametrize("case", CASES)
def test_criterion_and_loglik(case):
    fit, ref = _fit(case)
    target = ref["reml_criterion"] if ref["reml"] else ref["deviance"]
    if lme4_unconverged(ref):
        # at least as good as lme4's answer, and close to it
        assert fit.objective <= target + 1e-9 * abs(target)
        assert fit.objective == pytest.approx(target, abs=1e-2)
        assert fit.aic - fit.objective == pytest.approx(ref["AIC"] - target)
        assert fit.bic - fit.objective == pytest.approx(ref["BIC"] - target)
    else:
        assert fit.objective == pytest.approx(target, rel=1e-6)
        assert fit.loglik == pytest.approx(ref["logLik"], rel=1e-6)
        assert fit.aic == pytest.approx(ref["AIC"], rel=1e-6)
        assert fit.bic == pytest.approx(ref["BIC"], rel=1e-6)
    assert fit.nobs == ref["nobs"]
    assert fit.df_resid == ref["df_resid"]
    assert fit.ngroups == ref["ngrps"]
    assert fit.is_singular == ref["singular"]
    if ref["reml"] and ref.get("deviance_ml_at_reml_estimates") is not None:
        rel = 1e-6 if tolerance(case, ref) == 1e-4 else 1e-5
        assert fit.deviance_ml == pytest.approx(ref["deviance_ml_at_reml_estimates"], rel=rel)


@pytest.mark.parametrize("case", CASES)
def test_fixed_effects(case):
    fit, ref = _fit(case)
    assert fit.fixed_names == ref["fixef_names"]
    est = np.array([ref["fixef"][n] for n in ref["fixef_names"]])
    se = np.array([ref["fixef_se"][n] for n in ref["fixef_names"]])
    # relative 1e-4, with a floor of 1e-4 standard errors for estimates near zero
    np.testing.assert_allclose(fit.fixef.to_numpy(), est, rtol=1e-4, atol=1e-4 * se.min())
    np.testing.assert_allclose(fit.coef_table()["std_error"].to_numpy(), se, rtol=1e-3)
    vcov = np.array(ref["vcov_fixef"], dtype=float).reshape(len(se), len(se))
    np.testing.assert_allclose(fit.vcov.to_numpy(), vcov, rtol=2e-3,
                               atol=2e-3 * np.abs(vcov).max())


@pytest.mark.parametrize("case", CASES)
def test_variance_components(case):
    fit, ref = _fit(case)
    assert fit.theta_names == list(ref["theta"])
    tol = tolerance(case, ref)
    vc = fit.varcorr
    assert len(vc) == len(ref["varcomp"])
    for row, r in zip(vc.itertuples(), ref["varcomp"], strict=True):
        assert row.group == r["group"]
        assert (row.term1 if isinstance(row.term1, str) else None) == r["term1"]
        assert (row.term2 if isinstance(row.term2, str) else None) == r["term2"]
        if r["term2"] is None:
            scale = max(r["variance"], 1e-4 * ref["sigma"] ** 2)
            assert abs(row.variance - r["variance"]) <= tol * scale
            assert row.sd == pytest.approx(r["sd"], rel=tol, abs=tol * ref["sigma"])
        else:
            assert row.corr == pytest.approx(r["corr"], rel=tol, abs=tol / 5)
    assert fit.sigma == pytest.approx(ref["sigma"], rel=tol)


@pytest.mark.parametrize("case", CASES)
def test_conditional_modes(case):
    fit, ref = _fit(case)
    frame = fit.ranef_frame()
    got = {(r.group, r.term, r.level): (r.condval, r.condsd) for r in frame.itertuples()}
    assert len(got) == len(ref["ranef"])
    for group in {r["group"] for r in ref["ranef"]}:
        rows = [r for r in ref["ranef"] if r["group"] == group]
        scale = max(np.abs([r["condval"] for r in rows]).max(), 1e-8)
        for r in rows:
            val, sd = got[(r["group"], r["term"], r["level"])]
            assert abs(val - r["condval"]) <= tolerance(case, ref) * scale, r
            assert sd == pytest.approx(r["condsd"], rel=max(1e-3, tolerance(case, ref)),
                                       abs=1e-6 * ref["sigma"]), r


@pytest.mark.parametrize("case", CASES)
def test_fitted_values(case):
    fit, ref = _fit(case)
    fitted = fit.fitted()
    assert len(fitted) == ref["fitted"]["n"]
    rtol = 1e-5 if not lme4_unconverged(ref) else 1e-3
    np.testing.assert_allclose(fitted[:5], ref["fitted"]["first5"], rtol=rtol,
                               atol=rtol * np.abs(ref["fitted"]["first5"]).max())
    assert fitted.sum() == pytest.approx(ref["fitted"]["sum"], rel=rtol / 10,
                                         abs=rtol * np.abs(fitted).sum() / 10)


PREDICT_CASES = [c for c in CASES if load_ref(FILES[c]).get("predict")]


@pytest.mark.parametrize("case", PREDICT_CASES)
def test_predictions(case):
    fit, ref = _fit(case)
    pred = ref["predict"]
    data = load_data(ref["dataset"])
    rtol = 1e-5 if not lme4_unconverged(ref) else 1e-3

    def close(actual: np.ndarray, desired: list[float]) -> None:
        np.testing.assert_allclose(actual, desired, rtol=rtol,
                                   atol=rtol * np.abs(desired).max())

    rows = np.array(pred["rows"]) - 1  # R's 1-based rows
    new = data.iloc[rows].reset_index(drop=True)
    close(fit.predict(new), pred["re_form_NULL"])
    close(fit.predict(new, re_form="~0"), pred["re_form_NA"])
    if "no_newdata_first5" in pred:
        close(fit.predict()[:5], pred["no_newdata_first5"])
    if "new_levels" in pred:
        nl = pred["new_levels"]
        new = pd.DataFrame(nl["newdata_rows"])
        close(fit.predict(new, allow_new_levels=True), nl["re_form_NULL"])
        close(fit.predict(new, re_form="~0"), nl["re_form_NA"])
