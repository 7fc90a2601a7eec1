"""The result object's vocabulary (DESIGN.md "Result vocabulary") on the sleepstudy fits.

Reference numbers come from R (lme4 1.1-31):
- tests/reference/lme4_shared/sleepstudy_reml.json:
  ``lmer(Reaction ~ Days + (Days | Subject), data = sleepstudy)``
- tests/reference/lme4_shared/sleepstudy_ml.json: the same with ``REML = FALSE``
- tests/reference/lme4_shared/dyestuff2.json: ``lmer(Yield ~ 1 + (1 | Batch), data = Dyestuff2)``
  (singular: theta = 0)
Everything else is an identity (statistic = estimate / std_error, residuals = y - fitted, ...)
or a simulation with a stated seed.
"""

from __future__ import annotations

import dataclasses
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import multilevel as ml
from multilevel.errors import DataError, SingularFitWarning

from reference_data import load_data

REF_DIR = Path(__file__).parent / "reference" / "lme4_shared"
REML_REF = json.loads((REF_DIR / "sleepstudy_reml.json").read_text())
ML_REF = json.loads((REF_DIR / "sleepstudy_ml.json").read_text())
DYESTUFF2_REF = json.loads((REF_DIR / "dyestuff2.json").read_text())
FORMULA = REML_REF["formula"]  # Reaction ~ Days + (Days | Subject)


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return load_data("sleepstudy")


@pytest.fixture(scope="module")
def fit(data):
    return ml.lmer(FORMULA, data)


@pytest.fixture(scope="module")
def ml_fit(data):
    return ml.lmer(FORMULA, data, reml=False)


# -- fixed effects --------------------------------------------------------------------------

def test_fixef_is_a_named_series(fit):
    assert isinstance(fit.fixef, pd.Series)
    assert list(fit.fixef.index) == REML_REF["fixef_names"]
    for name in REML_REF["fixef_names"]:
        assert fit.fixef[name] == pytest.approx(REML_REF["fixef"][name], rel=1e-6)


def test_coef_table_columns_and_identities(fit):
    ct = fit.coef_table(ddf=None)
    assert isinstance(ct, pd.DataFrame)
    for col in ["estimate", "std_error", "statistic", "p_value", "ci_lower", "ci_upper"]:
        assert col in ct.columns
    assert list(ct.index) == REML_REF["fixef_names"]
    np.testing.assert_allclose(ct["statistic"], ct["estimate"] / ct["std_error"], rtol=1e-14)
    np.testing.assert_allclose(ct["estimate"], fit.fixef, rtol=0)
    np.testing.assert_allclose(ct["std_error"], np.sqrt(np.diag(fit.vcov)), rtol=1e-14)
    se_ref = [REML_REF["fixef_se"][n] for n in REML_REF["fixef_names"]]
    np.testing.assert_allclose(ct["std_error"], se_ref, rtol=1e-4)
    # ddf=None: normal reference distribution for p-values and 95% Wald intervals
    z = stats.norm.ppf(0.975)
    np.testing.assert_allclose(ct["p_value"], 2 * stats.norm.sf(np.abs(ct["statistic"])),
                               rtol=1e-12)
    np.testing.assert_allclose(ct["ci_lower"], ct["estimate"] - z * ct["std_error"], rtol=1e-12)
    np.testing.assert_allclose(ct["ci_upper"], ct["estimate"] + z * ct["std_error"], rtol=1e-12)


def test_coef_table_level(fit):
    ct = fit.coef_table(ddf=None, level=0.9)
    z = stats.norm.ppf(0.95)
    np.testing.assert_allclose(ct["ci_upper"] - ct["ci_lower"], 2 * z * ct["std_error"],
                               rtol=1e-12)


def test_vcov_symmetric_and_matches_lme4(fit):
    v = fit.vcov
    assert isinstance(v, pd.DataFrame)
    assert list(v.index) == list(v.columns) == REML_REF["fixef_names"]
    np.testing.assert_allclose(v.to_numpy(), v.to_numpy().T, rtol=1e-14, atol=0)
    np.testing.assert_allclose(v.to_numpy(), np.array(REML_REF["vcov_fixef"]), rtol=1e-3)
    assert np.all(np.linalg.eigvalsh(v.to_numpy()) > 0)


# -- variance components --------------------------------------------------------------------

def test_varcorr_layout_and_values(fit):
    vc = fit.varcorr
    assert list(vc.columns) == ["group", "term1", "term2", "variance", "sd", "corr"]
    assert list(vc["group"]) == [r["group"] for r in REML_REF["varcomp"]]
    assert vc["group"].iloc[-1] == "Residual"
    for row, r in zip(vc.itertuples(), REML_REF["varcomp"], strict=True):
        assert (row.term1 if isinstance(row.term1, str) else None) == r["term1"]
        assert (row.term2 if isinstance(row.term2, str) else None) == r["term2"]
        if r["term2"] is None:
            assert row.variance == pytest.approx(r["variance"], rel=1e-4)
            assert row.sd == pytest.approx(r["sd"], rel=1e-4)
            assert row.sd == pytest.approx(np.sqrt(row.variance), rel=1e-12)
        else:
            assert row.corr == pytest.approx(r["corr"], rel=1e-3)
            assert row.variance == pytest.approx(r["covariance"], rel=1e-3)
    assert vc["sd"].iloc[-1] == pytest.approx(fit.sigma, rel=1e-14)


def test_theta_and_theta_names(fit):
    assert fit.theta_names == REML_REF["theta_names"]
    assert isinstance(fit.theta, np.ndarray)
    ref = np.array([REML_REF["theta"][n] for n in REML_REF["theta_names"]])
    np.testing.assert_allclose(fit.theta, ref, rtol=1e-4, atol=1e-5)
    assert fit.sigma == pytest.approx(REML_REF["sigma"], rel=1e-5)


def test_statistics(fit):
    assert fit.loglik == pytest.approx(REML_REF["logLik"], rel=1e-8)
    assert fit.objective == pytest.approx(REML_REF["reml_criterion"], rel=1e-8)
    assert fit.aic == pytest.approx(REML_REF["AIC"], rel=1e-8)
    assert fit.bic == pytest.approx(REML_REF["BIC"], rel=1e-8)
    assert fit.nobs == REML_REF["nobs"]
    assert fit.df_resid == REML_REF["df_resid"]
    assert fit.ngroups == REML_REF["ngrps"]
    assert fit.converged is True
    assert fit.is_singular is False


# -- random effects -------------------------------------------------------------------------

def test_ranef_frame_per_group(fit):
    re = fit.ranef
    assert list(re) == ["Subject"]
    frame = re["Subject"]
    assert list(frame.columns) == ["(Intercept)", "Days"]
    assert frame.shape == (18, 2)
    ref = {(r["term"], r["level"]): r["condval"] for r in REML_REF["ranef"]}
    assert sorted(frame.index) == sorted({lev for _, lev in ref})
    scale = np.abs(list(ref.values())).max()
    for level, row in frame.iterrows():
        for term in frame.columns:
            assert abs(row[term] - ref[(term, level)]) <= 1e-4 * scale


def test_ranef_condvar_shape_symmetric_psd(fit):
    cv = fit.ranef_condvar["Subject"]
    assert cv.shape == (18, 2, 2)
    np.testing.assert_allclose(cv, np.swapaxes(cv, 1, 2), rtol=1e-12, atol=1e-12)
    eig = np.linalg.eigvalsh(cv)
    assert np.all(eig > -1e-10 * eig.max())
    ref = {(r["term"], r["level"]): r["condsd"] for r in REML_REF["ranef"]}
    levels = list(fit.ranef["Subject"].index)
    for i, level in enumerate(levels):
        for a, term in enumerate(["(Intercept)", "Days"]):
            assert np.sqrt(cv[i, a, a]) == pytest.approx(ref[(term, level)], rel=1e-3)


# -- fitted, residuals, predict -------------------------------------------------------------

def test_residuals_are_y_minus_fitted(fit, data):
    y = data["Reaction"].to_numpy()
    np.testing.assert_allclose(fit.residuals(), y - fit.fitted(), rtol=0, atol=1e-10)
    np.testing.assert_array_equal(fit.residuals("pearson"), fit.residuals("response"))
    np.testing.assert_allclose(fit.residuals(scaled=True), fit.residuals() / fit.sigma,
                               rtol=1e-14)


def test_fitted_matches_lme4(fit):
    ref = REML_REF["fitted"]
    np.testing.assert_allclose(fit.fitted()[:5], ref["first5"], rtol=1e-6)
    assert fit.fitted().sum() == pytest.approx(ref["sum"], rel=1e-8)


def test_unknown_residual_kind(fit):
    with pytest.raises(ml.errors.MultilevelError):
        fit.residuals("deviance-ish")


def test_predict_without_newdata_is_fitted(fit):
    np.testing.assert_allclose(fit.predict(), fit.fitted(), rtol=1e-14)


def test_predict_on_the_fitted_data_is_fitted(fit, data):
    np.testing.assert_allclose(fit.predict(data), fit.fitted(), rtol=1e-12)


def test_predict_population_level(fit, data):
    X = fit.model.design.X
    np.testing.assert_allclose(fit.predict(data, re_form="~0"), X @ fit.beta, rtol=1e-12)
    np.testing.assert_allclose(fit.predict(re_form="~0"), X @ fit.beta, rtol=1e-12)
    np.testing.assert_allclose(fit.predict(data, re_form="NA"), X @ fit.beta, rtol=1e-12)


def test_predict_new_levels(fit, data):
    new = data.iloc[:20].copy()
    new["Subject"] = new["Subject"].astype(str)
    new.loc[new.index[:10], "Subject"] = "new_subject"  # unseen in the fit
    with pytest.raises(DataError) as info:
        fit.predict(new, allow_new_levels=False)
    assert "new_subject" in str(info.value)
    assert "Subject" in str(info.value)
    pred = fit.predict(new, allow_new_levels=True)
    population = fit.predict(new, re_form="~0")
    X = fit.model.design.X[:20]
    np.testing.assert_allclose(population, X @ fit.beta, rtol=1e-12)
    np.testing.assert_allclose(pred[:10], population[:10], rtol=1e-12)
    np.testing.assert_allclose(pred[10:], fit.fitted()[10:20], rtol=1e-12)


# -- simulate -------------------------------------------------------------------------------

def test_simulate_shape_and_seed(fit):
    a = fit.simulate(nsim=3, seed=1)
    assert isinstance(a, pd.DataFrame)
    assert a.shape == (180, 3)
    b = fit.simulate(nsim=3, seed=1)
    pd.testing.assert_frame_equal(a, b)
    c = fit.simulate(nsim=3, seed=2)
    assert not np.allclose(a.to_numpy(), c.to_numpy())
    assert not np.allclose(a.iloc[:, 0], a.iloc[:, 1])


def test_simulate_mean_is_population_mean(fit):
    nsim = 2000
    start = time.perf_counter()
    sims = fit.simulate(nsim=nsim, seed=20240611).to_numpy()
    assert time.perf_counter() - start < 5.0  # generous: about 0.05 s here
    mean = fit.model.design.X @ fit.beta  # E[y] = X beta under the fitted model
    mc_se = sims.std(axis=1, ddof=1) / np.sqrt(nsim)
    assert np.all(np.abs(sims.mean(axis=1) - mean) < 5 * mc_se)
    # the marginal variance of row i is sigma^2 (1 + z_i' T T' z_i); check it too (seeded)
    T = fit.model.layout.templates(fit.theta)[0]
    Z = fit.model.blocks[0].Z
    var = fit.sigma**2 * (1 + np.einsum("nk,kl,nl->n", Z, T @ T.T, Z))
    np.testing.assert_allclose(sims.var(axis=1, ddof=1), var, rtol=0.2)


# -- presentation ---------------------------------------------------------------------------

def test_summary_reml(fit):
    text = fit.summary()
    assert text.startswith("Linear mixed model fit by REML")
    # R prints: REML criterion at convergence: 1743.6  (reml_criterion 1743.628...)
    assert f"REML criterion at convergence: {REML_REF['reml_criterion']:.1f}" in text
    assert "REML criterion at convergence: 1743.6" in text
    assert "Number of obs: 180, groups:  Subject, 18" in text
    assert "Fixed effects:" in text
    assert "Correlation of Fixed Effects" in text
    assert "Random effects:" in text
    assert "Scaled residuals:" in text
    assert str(fit) == text


def test_summary_ml_has_information_criteria(ml_fit):
    text = ml_fit.summary()
    assert text.startswith("Linear mixed model fit by maximum likelihood")
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if "AIC" in line)
    assert lines[header].split() == ["AIC", "BIC", "logLik", "deviance", "df.resid"]
    # R prints: 1763.9 1783.1 -876.0 1751.9 174 (sleepstudy_ml.json)
    expected = [f"{ML_REF['AIC']:.1f}", f"{ML_REF['BIC']:.1f}", f"{ML_REF['logLik']:.1f}",
                f"{ML_REF['deviance']:.1f}", str(ML_REF["df_resid"])]
    assert lines[header + 1].split() == expected
    assert "REML criterion" not in text


def test_repr_html(fit):
    html = fit._repr_html_()
    assert isinstance(html, str)
    assert "<table" in html and "</table>" in html
    assert "Subject" in html


def test_to_dict_is_json_with_the_vocabulary(fit):
    d = fit.to_dict()
    text = json.dumps(d)
    back = json.loads(text)
    for key in ["fixef", "coef_table", "vcov", "varcorr", "theta", "sigma", "loglik",
                "objective", "aic", "bic", "df_resid", "nobs", "ngroups", "is_singular",
                "converged", "optsum"]:
        assert key in back, key
    assert back["loglik"] == pytest.approx(REML_REF["logLik"], rel=1e-8)
    assert back["nobs"] == 180
    assert back["ngroups"] == {"Subject": 18}
    assert list(back["fixef"]) == REML_REF["fixef_names"]
    assert list(back["theta"]) == REML_REF["theta_names"]
    assert back["varcorr"][-1]["group"] == "Residual"


# -- immutability and the optimizer record --------------------------------------------------

def test_result_is_immutable(fit):
    with pytest.raises(dataclasses.FrozenInstanceError):
        fit.theta = np.zeros(3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fit.sigma = 1.0


def test_optsum(fit):
    opt = fit.optsum
    assert opt.backend == "bobyqa"
    assert opt.feval > 0
    assert opt.feval == len(opt.fitlog)
    np.testing.assert_array_equal(opt.final, fit.theta)
    assert opt.fmin == pytest.approx(REML_REF["reml_criterion"], rel=1e-8)
    assert opt.converged
    json.dumps(opt.to_dict())


def test_bobyqa_evaluation_count_matches_lme4(fit):
    # DESIGN.md: "sleepstudy: 43 evaluations, the same count and theta as lme4";
    # sleepstudy_reml.json convergence.feval = 43 (nloptwrap BOBYQA)
    assert fit.optsum.feval == REML_REF["convergence"]["feval"]


# -- the modular stages ---------------------------------------------------------------------

def test_objective_at_reference_theta(data):
    model = ml.LinearMixedModel(FORMULA, data)
    theta = np.array([REML_REF["theta"][n] for n in REML_REF["theta_names"]])
    assert model.objective(theta) == pytest.approx(REML_REF["reml_criterion"], rel=1e-8)
    assert model.objective(theta, reml=False) == pytest.approx(
        REML_REF["deviance_ml_at_reml_estimates"], rel=1e-8)


def test_ml_objective_at_ml_reference_theta(data):
    model = ml.LinearMixedModel(FORMULA, data, reml=False)
    theta = np.array([ML_REF["theta"][n] for n in ML_REF["theta_names"]])
    assert model.objective(theta) == pytest.approx(ML_REF["deviance"], rel=1e-8)


def test_refit_equals_fresh_fit(fit, data):
    model = ml.LinearMixedModel(FORMULA, data)
    new_y = fit.simulate(nsim=1, seed=7)["sim_1"].to_numpy()
    refitted = model.refit(new_y)
    fresh_data = data.copy()
    fresh_data["Reaction"] = new_y
    fresh = ml.lmer(FORMULA, fresh_data)
    assert refitted.objective == pytest.approx(fresh.objective, rel=1e-8)
    np.testing.assert_allclose(refitted.beta, fresh.beta, rtol=1e-8)
    np.testing.assert_allclose(refitted.theta, fresh.theta, rtol=1e-8, atol=1e-10)
    assert refitted.sigma == pytest.approx(fresh.sigma, rel=1e-8)
    np.testing.assert_allclose(refitted.fitted(), fresh.fitted(), rtol=1e-8)
    # the original model is untouched
    np.testing.assert_array_equal(model.design.y, data["Reaction"].to_numpy())


def test_with_response_shares_the_design(data):
    model = ml.LinearMixedModel(FORMULA, data)
    y = data["Reaction"].to_numpy() * 2.0
    other = model.with_response(y)
    assert other is not model
    assert other.design.X is model.design.X
    np.testing.assert_array_equal(other.design.y, y)
    np.testing.assert_array_equal(model.design.y, data["Reaction"].to_numpy())
    with pytest.raises(DataError):
        model.with_response(y[:10])


@pytest.mark.parametrize("optimizer", ["cobyqa", "lbfgsb"])
def test_other_optimizers_reach_the_same_criterion(fit, data, optimizer):
    other = ml.lmer(FORMULA, data, optimizer=optimizer)
    assert other.optsum.backend == optimizer
    assert other.objective == pytest.approx(fit.objective, rel=1e-6)
    assert other.objective == pytest.approx(REML_REF["reml_criterion"], rel=1e-6)


# -- singular fit ---------------------------------------------------------------------------

def test_singular_fit_is_flagged():
    with pytest.warns(SingularFitWarning):
        fit = ml.lmer(DYESTUFF2_REF["formula"], load_data("Dyestuff2"))
    assert DYESTUFF2_REF["singular"] is True
    assert fit.is_singular is True
    assert fit.theta == pytest.approx([0.0], abs=1e-8)
    assert fit.objective == pytest.approx(DYESTUFF2_REF["reml_criterion"], rel=1e-8)
    assert "boundary (singular) fit" in fit.summary()
    assert fit.to_dict()["is_singular"] is True


def test_regular_fit_issues_no_warning(data):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ml.errors.MultilevelWarning)
        fit = ml.lmer(FORMULA, data)
    assert "boundary" not in fit.summary()


def test_convergence_check_flags_a_stopped_optimizer():
    """Stopping BOBYQA after a few evaluations leaves a large gradient: the derivative check
    must say so (lme4's checkConv message), flag the fit and warn, never stay silent."""
    df = ml.datasets.load("sleepstudy")
    with pytest.warns(ml.errors.ConvergenceWarning):
        fit = ml.lmer("Reaction ~ Days + (Days | Subject)", df,
                      optimizer_settings={"maxeval": 8}, calc_derivs=True)
    assert not fit.converged
    assert any("max|grad|" in m or "did not converge" in m for m in fit.optsum.messages)
    assert fit.optsum.gradient is not None and fit.optsum.gradient.shape == (3,)


def test_derivatives_match_a_quadratic():
    from multilevel.optim.convergence import deriv12

    A = np.array([[3.0, 1.0, 0.5], [1.0, 2.0, 0.2], [0.5, 0.2, 1.0]])
    b = np.array([1.0, -2.0, 0.5])

    def f(x):
        return 0.5 * x @ A @ x + b @ x

    x = np.array([0.3, 0.1, -0.2])
    d = deriv12(f, x, f(x))
    np.testing.assert_allclose(d.hessian, A, atol=1e-6)
    np.testing.assert_allclose(d.gradient, A @ x + b, atol=1e-9)


def test_to_dict_is_json_for_a_scalar_model():
    """Random-intercept models start from ANOVA estimates with array-valued optimizer
    settings; the JSON export must still serialize."""
    fit = ml.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", ml.datasets.load("Penicillin"))
    out = json.loads(json.dumps(fit.to_dict()))
    assert len(out["optsum"]["settings"]["initial_step"]) == 2


@pytest.mark.parametrize("formula", [
    "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)",
    # two terms with an intercept on one factor: the block has "(Intercept)" twice
    "Reaction ~ Days + (1 | Subject) + (1 + Days | Subject)",
])
def test_predict_on_the_fitted_rows_equals_fitted_for_terms_sharing_a_factor(formula):
    """Terms on the same grouping factor are one block; newdata prediction must pick each
    term's modes by position in the block (found by the public-API fuzzer)."""
    import warnings

    sleep = ml.datasets.load("sleepstudy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ml.errors.MultilevelWarning)
        fit = ml.lmer(formula, sleep)
    np.testing.assert_allclose(fit.predict(sleep), fit.fitted(), rtol=1e-12, atol=1e-9)


def test_model_matrix_replays_the_encoding_on_new_data_for_every_linear_kind():
    """model_matrix(newdata) times the fixed effects is the population prediction, and a
    factor level is encoded with the fit's contrasts (lmer, glmer, lme, gls)."""
    orth = ml.datasets.load("Orthodont")
    new = orth.iloc[[0, 1, 70, 71]].reset_index(drop=True)
    lmer = ml.lmer("distance ~ age * Sex + (1 | Subject)", orth)
    X = lmer.model_matrix(new)
    assert list(X.columns) == lmer.fixed_names
    assert np.allclose(X.to_numpy() @ lmer.fixef.to_numpy(), lmer.predict(new, re_form="NA"))
    assert X["SexFemale"].tolist() == [0.0, 0.0, 1.0, 1.0]
    assert np.array_equal(lmer.model_matrix().to_numpy(), lmer.model.design.X)
    lme = ml.lme("distance ~ age * Sex", orth, random="~ 1 | Subject")
    assert np.allclose(lme.model_matrix(new).to_numpy() @ lme.fixef.to_numpy(),
                       lme.predict(new, level=0))
    gls = ml.gls("distance ~ age * Sex", orth)
    assert np.allclose(gls.model_matrix(new).to_numpy() @ gls.fixef.to_numpy(), gls.predict(new))
    cbpp = ml.datasets.load("cbpp")
    glmer = ml.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp,
                     family="binomial")
    Xg = glmer.model_matrix(cbpp.head(4))
    assert np.allclose(Xg.to_numpy() @ glmer.fixef.to_numpy(),
                       glmer.predict(cbpp.head(4), re_form="NA", type="link"))
    with pytest.raises(ml.errors.DataError, match="age"):
        lmer.model_matrix(new.drop(columns="age"))


@pytest.mark.filterwarnings("ignore::multilevel.errors.MissingDataWarning")
def test_model_frame_is_the_rows_used_for_every_kind():
    """model_frame() drops the rows with missing values as the fit did, keeps the data's
    other columns, and lines up with fitted() (lmer, lme, gls, nlme)."""
    orth = ml.datasets.load("Orthodont").copy()
    orth["note"] = "x"
    orth.loc[[3, 50], "age"] = np.nan
    expected = orth.drop(index=[3, 50]).reset_index(drop=True)
    fits = [ml.lmer("distance ~ age + (1 | Subject)", orth),
            ml.lme("distance ~ age", orth, random="~ 1 | Subject"),
            ml.gls("distance ~ age", orth)]
    for fit in fits:
        frame = fit.model_frame()
        assert len(frame) == fit.nobs == 106
        pd.testing.assert_frame_equal(frame[expected.columns], expected, check_dtype=False)
        assert np.allclose(frame["distance"].to_numpy() - fit.fitted(), fit.residuals())
    orange = ml.datasets.load("Orange")
    nl = ml.nlme("circumference ~ SSlogis(age, Asym, xmid, scal)", orange,
                 fixed="Asym + xmid + scal ~ 1", random="Asym ~ 1 | Tree",
                 start=[192.7, 728.8, 353.5])
    assert np.allclose(nl.model_frame()["circumference"].to_numpy() - nl.fitted(),
                       nl.residuals())
