"""Inference on generalized linear mixed models: likelihood-ratio anova and compare, Wald /
profile / bootstrap intervals, bootstrap and power by simulation, latent-scale ICC and R2,
the overdispersion check, stepwise selection; and the typed refusals where a method belongs to
the linear model only.

Reference values: tests/reference/glmm_inference/refs.json, written by
tests/reference/make_glmm_inference_refs.R (R 4.2.2, lme4 1.1-31, performance 0.10.2, insight
0.19.0) on the committed data in tests/reference/data/; each case stores its R call. lme4's
default PIRLS and optimizer tolerances leave its estimates a little short of the optimum (our
log-likelihoods are higher: cbpp by 2.8e-4, grouseticks by 2e-5; see tests/reference/
glmm_tight), so quantities that move with the estimates are compared at 1e-3 relative (2e-3
for the profile bounds, whose agreement the issue puts at about 1e-3), and the standard errors,
from lme4's finite-difference Hessian of that loose deviance, at 2e-2 (as
test_glmm_reference.py).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import multilevel as ml
from multilevel.errors import ArgumentError, ModelComparisonError, NotApplicableError
from multilevel.families import Binomial, Gamma, Poisson

from reference_data import load_data

REF = json.loads((Path(__file__).parent / "reference" / "glmm_inference" / "refs.json")
                 .read_text())
CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
TICKS = "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)"
TICKS_TWO = "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)"
TICKS_ONE = "TICKS ~ YEAR + cHEIGHT + (1 | BROOD)"


def _fit(formula, dataset, family="binomial", **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ml.errors.MultilevelWarning)
        return ml.glmer(formula, load_data(dataset), family=family, **options)


@pytest.fixture(scope="module")
def cbpp():
    return _fit(CBPP, "cbpp")


@pytest.fixture(scope="module")
def cbpp_null():
    return _fit("cbind(incidence, size - incidence) ~ 1 + (1 | herd)", "cbpp")


@pytest.fixture(scope="module")
def ticks():
    # calc_derivs=False: the grouseticks fits take 2 s instead of 16 s; the likelihood tests
    # and variance components need the estimates only
    return {name: _fit(f, "grouseticks", "poisson", calc_derivs=False)
            for name, f in (("olre", TICKS), ("two", TICKS_TWO), ("one", TICKS_ONE))}


@pytest.fixture(scope="module")
def nb():
    # glmer.nb's curvature (expected information), as in test_glmm_reference.py
    return _fit("y ~ x + (1 | g)", "nb_sim", "negative_binomial", laplace="expected")


# -- likelihood-ratio tests and information criteria -------------------------------------------
def _check_lrt(table, ref):
    assert list(table["npar"]) == ref["npar"]
    for ours, theirs in zip(table["loglik"], ref["logLik"], strict=True):
        # at least lme4's likelihood, and higher by no more than its loose convergence
        assert theirs - 1e-6 * abs(theirs) <= ours <= theirs + 1e-3
    assert list(table["aic"]) == pytest.approx(ref["AIC"], abs=2e-3)
    assert list(table["bic"]) == pytest.approx(ref["BIC"], abs=2e-3)
    assert list(table["deviance"]) == pytest.approx(ref["deviance"], abs=2e-3)
    assert table["chisq"].iloc[1] == pytest.approx(ref["chisq"], abs=1e-3)
    assert table["df"].iloc[1] == ref["df"]
    assert table["p_value"].iloc[1] == pytest.approx(ref["p_value"], rel=1e-3)
    assert table.attrs["criterion"] == "ML" and table.attrs["refitted_ml"] == []


def test_anova_of_nested_fixed_effects_matches_lme4(cbpp, cbpp_null):
    table = ml.anova(cbpp, cbpp_null, names=["period", "null"])
    assert list(table.index) == ["null", "period"]  # ordered by number of parameters
    _check_lrt(table, REF["anova"]["cbpp_period"])
    # the fixed effects differ: no boundary-corrected p-value
    assert math.isnan(table["p_value_boundary"].iloc[1])


@pytest.mark.parametrize("case, small, large", [("grouseticks_olre", "two", "olre"),
                                                ("grouseticks_location", "one", "two")])
def test_anova_of_random_terms_matches_lme4(ticks, case, small, large):
    table = ml.anova(ticks[small], ticks[large])
    _check_lrt(table, REF["anova"][case])
    # one added variance: the 50:50 chi-bar-square p-value is half the chi-square(1) one
    assert table["p_value_boundary"].iloc[1] == pytest.approx(0.5 * table["p_value"].iloc[1],
                                                              rel=1e-12)


def test_compare_ranks_glmms_and_families_by_aic(cbpp, cbpp_null, nb):
    table = ml.compare(cbpp_null, cbpp, names=["null", "period"])
    assert list(table.index) == ["period", "null"]
    assert table["aic_weight"].sum() == pytest.approx(1.0)
    assert table.loc["period", "aic"] == pytest.approx(cbpp.aic, rel=1e-15)
    # Poisson against negative binomial on the same counts: complete likelihoods, one scale
    poisson = _fit("y ~ x + (1 | g)", "nb_sim", "poisson")
    ranked = ml.compare(poisson, nb, names=["poisson", "nb"])
    assert ranked.index[0] == "nb"
    assert ranked.loc["nb", "npar"] == poisson.n_params + 1


def test_anova_refuses_what_it_cannot_compare(cbpp, nb):
    lmm = ml.lmer("Reaction ~ Days + (1 | Subject)", ml.datasets.load("sleepstudy"))
    with pytest.raises(ModelComparisonError, match="not comparable"):
        ml.anova(lmm, cbpp)
    with pytest.raises(ModelComparisonError, match="not comparable"):
        ml.compare(cbpp, lmm)
    poisson = _fit("y ~ x + (1 | g)", "nb_sim", "poisson")
    with pytest.raises(ModelComparisonError, match="family or link"):
        ml.anova(poisson, nb)
    probit = _fit(CBPP, "cbpp", Binomial(link="probit"))
    with pytest.raises(ModelComparisonError, match="family or link"):
        ml.anova(cbpp, probit)
    # the same proportions out of other numbers of trials are other data
    data = load_data("cbpp")
    data["trials2"] = 2 * data["size"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ml.errors.MultilevelWarning)
        same = ml.glmer("incidence / size ~ period + (1 | herd)", data, weights="size")
        other = ml.glmer("incidence / size ~ 1 + (1 | herd)", data, weights="trials2")
    assert ml.anova(cbpp, same)["loglik"].to_numpy() == pytest.approx(cbpp.loglik, rel=1e-6)
    with pytest.raises(ModelComparisonError, match="prior weights"):
        ml.anova(same, other)


def test_single_glmm_anova_is_wald_chi_square_only(cbpp):
    with pytest.raises(NotApplicableError, match="denominator degrees of freedom"):
        ml.anova(cbpp)
    table = ml.anova(cbpp, ddf=None)
    # the joint Wald test of the three period coefficients: b' V^-1 b, 3 df
    b = cbpp.beta[1:]
    V = cbpp.vcov.to_numpy()[1:, 1:]
    chisq = float(b @ np.linalg.solve(V, b))
    assert table.loc["period", "f_value"] * 3 == pytest.approx(chisq, rel=1e-10)
    assert table.loc["period", "p_value"] == pytest.approx(stats.chi2.sf(chisq, 3), rel=1e-10)
    assert table.loc["period", "den_df"] == np.inf


# -- intervals ----------------------------------------------------------------------------------
def test_wald_intervals(cbpp):
    ci = cbpp.confint()
    ref = REF["confint"]["cbpp_logit"]["wald"]
    assert list(ci.index) == list(ref)
    assert ci.loc["sd_(Intercept)|herd"].isna().all()  # no Wald interval, as lme4's NA
    se = cbpp.coef_table()["std_error"]
    z = stats.norm.ppf(0.975)
    for name in cbpp.fixed_names:
        assert ci.loc[name, "lower"] == pytest.approx(cbpp.fixef[name] - z * se[name], rel=1e-12)
        # lme4's bounds: its standard errors agree to 2% (test_glmm_reference.py; its Hessian
        # is of a looser deviance), so its bounds to 1.96 x 2% of a standard error and a bit
        assert abs(ci.loc[name, "lower"] - ref[name]["lower"]) < 5e-2 * se[name]
        assert abs(ci.loc[name, "upper"] - ref[name]["upper"]) < 5e-2 * se[name]


@pytest.mark.parametrize("case, family", [("cbpp_logit", "binomial"),
                                          ("cbpp_probit", Binomial(link="probit"))])
def test_profile_intervals_match_lme4(case, family):
    fit = _fit(CBPP, "cbpp", family)
    ci = fit.confint(method="profile")
    ref = REF["confint"][case]["profile"]
    assert list(ci.index) == list(ref)
    for name, bounds in ref.items():
        assert ci.loc[name, "lower"] == pytest.approx(bounds["lower"], abs=2e-3), name
        assert ci.loc[name, "upper"] == pytest.approx(bounds["upper"], abs=2e-3), name
    # the shared cbpp_laplace fixture holds the same lme4 intervals
    shared = Path(__file__).parent / "reference" / "glmm_shared" / "cbpp_laplace.json"
    if case == "cbpp_logit":
        intervals = json.loads(shared.read_text())["confint"]["profile"]["intervals"]
        for name, bounds in intervals.items():
            assert ci.loc[name, "lower"] == pytest.approx(bounds["lower"], abs=2e-3), name
            assert ci.loc[name, "upper"] == pytest.approx(bounds["upper"], abs=2e-3), name


def test_zeta_profile(cbpp):
    prof = cbpp.profile(level=0.95, n=3)
    assert set(prof["parameter"]) == {"sd_(Intercept)|herd", *cbpp.fixed_names}
    z = stats.norm.ppf(0.975)
    for _, rows in prof.groupby("parameter"):
        # the ends of the 95% interval are where |zeta| = z; the middle lies between
        assert rows["zeta"].iloc[0] == pytest.approx(-z, abs=1e-4)
        assert rows["zeta"].iloc[2] == pytest.approx(z, abs=1e-4)
        assert abs(rows["zeta"].iloc[1]) < z


def test_bootstrap_of_a_glmm(cbpp):
    boot = ml.bootstrap(cbpp, n=24, seed=3, n_jobs=1, progress=False)
    assert list(boot.replicates.columns) == ["sd_(Intercept)|herd", *cbpp.fixed_names]
    assert len(boot.replicates) == 24 and boot.n_failed == 0
    assert boot.estimate["period2"] == cbpp.fixef["period2"]
    # replicates do not depend on the number of workers
    again = ml.bootstrap(cbpp, n=24, seed=3, n_jobs=2, progress=False)
    np.testing.assert_allclose(again.replicates.to_numpy(), boot.replicates.to_numpy(),
                               rtol=1e-10)
    # a simulated binomial response is refitted as counts out of the same trials
    assert (boot.replicates["sd_(Intercept)|herd"] >= 0).all()
    ci = cbpp.confint(method="boot", n=24, seed=3, n_jobs=1, progress=False)
    np.testing.assert_allclose(ci.to_numpy(), boot.intervals().to_numpy())


# -- power ----------------------------------------------------------------------------------------
def test_power_by_wald_z_and_lrt(cbpp):
    wald = ml.power(cbpp, "period4", nsim=20, seed=5, n_jobs=1, progress=False)
    assert wald.ddf is None and wald.method == "wald" and "z test" in str(wald)
    assert wald.n_failed == 0 and 0.5 < wald.power <= 1.0
    same = ml.power(cbpp, "period4", nsim=20, seed=5, n_jobs=2, progress=False)
    np.testing.assert_allclose(same.p_values, wald.p_values, rtol=1e-8)
    lrt = ml.power(cbpp, "period4", nsim=20, seed=5, n_jobs=1, progress=False, method="lrt")
    assert "likelihood-ratio" in str(lrt)
    # the same simulated responses: the two tests of one coefficient mostly agree
    agree = np.mean((lrt.p_values < 0.05) == (wald.p_values < 0.05))
    assert agree > 0.8
    # under the null (effect 0, on the link scale) the test rejects about alpha of the time
    null = ml.power(cbpp, "period4", nsim=20, effect=0.0, seed=7, n_jobs=1, progress=False)
    assert null.ci_lower <= 0.05 <= null.ci_upper


def test_power_refuses_denominator_df_for_a_glmm(cbpp):
    with pytest.raises(NotApplicableError, match="z tests"):
        ml.power(cbpp, "period2", nsim=2, ddf="satterthwaite", progress=False)


def test_extend_and_power_curve_of_a_glmm(cbpp):
    bigger = ml.inference.extend(cbpp, n_groups=30)
    assert isinstance(bigger, ml.GeneralizedLinearMixedModelResult)
    # 30 herds made by copying the 15 in turn: every row twice
    assert bigger.ngroups == {"herd": 30} and bigger.nobs == 2 * cbpp.nobs
    np.testing.assert_array_equal(bigger.beta, cbpp.beta)
    np.testing.assert_array_equal(bigger.theta, cbpp.theta)
    sims = bigger.simulate(2, seed=1)
    assert sims.shape == (bigger.nobs, 2)
    curve = ml.power_curve(cbpp, "period2", n_groups=[8, 30], nsim=12, seed=2, n_jobs=1,
                           progress=False)
    assert list(curve.index) == [8, 30]
    assert (curve["nsim"] == 12).all()


# -- variance partition on the latent scale -------------------------------------------------------
@pytest.mark.parametrize("case, family", [
    ("cbpp_logit", "binomial"), ("cbpp_probit", Binomial(link="probit")),
    ("cbpp_cloglog", Binomial(link="cloglog"))])
def test_icc_and_r2_of_binomial_links_match_performance(case, family):
    fit = _fit(CBPP, "cbpp", family)
    ref = REF["variance"][case]
    v = ml.inference.variance_decomposition(fit)
    # pi^2/3, 1, pi^2/6 (the JSON holds R's values to 15 digits)
    assert v.distribution == pytest.approx(ref["var_distribution"], rel=1e-14)
    assert v.fixed == pytest.approx(ref["var_fixed"], rel=1e-3)
    assert v.random == pytest.approx(ref["var_random"], rel=2e-3)
    icc, r2 = ml.icc(fit), ml.r2(fit)
    assert icc["adjusted"] == pytest.approx(ref["icc_adjusted"], rel=2e-3)
    assert icc["conditional"] == pytest.approx(ref["icc_unadjusted"], rel=2e-3)
    assert r2["marginal"] == pytest.approx(ref["r2_marginal"], rel=2e-3)
    assert r2["conditional"] == pytest.approx(ref["r2_conditional"], rel=2e-3)


def test_random_slope_variance_of_a_binary_glmm():
    """A random slope's variance is averaged over the rows' model-matrix values, as insight."""
    fit = _fit("use ~ age + urban + (urban | district)", "Contraception")
    ref = REF["variance"]["contraception_slope"]
    v = ml.inference.variance_decomposition(fit)
    assert v.fixed == pytest.approx(ref["var_fixed"], rel=2e-3)
    assert v.random == pytest.approx(ref["var_random"], rel=2e-3)
    assert ml.icc(fit)["adjusted"] == pytest.approx(ref["icc_adjusted"], rel=2e-3)


def test_icc_and_r2_of_a_negative_binomial_match_performance(nb):
    ref = REF["variance"]["nb_glmernb"]
    v = ml.inference.variance_decomposition(nb)
    # ln(1 + 1/mu + 1/size) at mu = exp(intercept of the null model, size held)
    mu = math.exp(ref["null_model_intercept"])
    assert v.distribution == pytest.approx(math.log1p(1 / mu + 1 / nb.nb_size), rel=1e-4)
    assert v.distribution == pytest.approx(ref["var_distribution"], rel=1e-4)
    assert v.fixed == pytest.approx(ref["var_fixed"], rel=1e-3)
    assert v.random == pytest.approx(ref["var_random"], rel=1e-3)
    assert ml.icc(nb)["adjusted"] == pytest.approx(ref["icc_adjusted"], rel=1e-3)
    assert ml.r2(nb)["marginal"] == pytest.approx(ref["r2_marginal"], rel=1e-3)
    assert ml.r2(nb)["conditional"] == pytest.approx(ref["r2_conditional"], rel=1e-3)


@pytest.mark.parametrize("case, name", [("grouseticks_olre", "olre"), ("grouseticks_two", "two")])
def test_poisson_decomposition_matches_performance(ticks, case, name):
    """The observation-level effect (INDEX, one level per row) is residual variance. R's null
    model of the olre case stops 0.0045 log-likelihood units short of its optimum (lme4's
    default tolerances; ours is the optimum), which moves its intercept by 0.012: the
    distribution variance is checked on R's own intercept, the ratios at 1e-2."""
    fit = ticks[name]
    ref = REF["variance"][case]
    v = ml.inference.variance_decomposition(fit)
    assert v.fixed == pytest.approx(ref["var_fixed"], rel=1e-3)
    assert v.random == pytest.approx(ref["var_random"], rel=1e-3)
    assert v.observation_level == pytest.approx(ref["var_dispersion"], rel=1e-3, abs=1e-12)
    assert set(v.by_group) == {"BROOD", "LOCATION"}
    poisson = Poisson()
    assert poisson.latent_variance(math.exp(ref["null_model_intercept"])) == pytest.approx(
        ref["var_distribution"], rel=1e-12)
    assert v.distribution == pytest.approx(ref["var_distribution"], rel=1.5e-2)
    assert v.residual == v.distribution + v.observation_level
    assert ml.icc(fit)["adjusted"] == pytest.approx(ref["icc_adjusted"], rel=1e-2)
    assert ml.r2(fit)["conditional"] == pytest.approx(ref["r2_conditional"], rel=1e-2)


def test_design_effect_is_refused_for_a_glmm(cbpp):
    with pytest.raises(NotApplicableError, match="latent scale"):
        ml.design_effect(cbpp)


# -- overdispersion -------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["cbpp_logit", "grouseticks_olre", "grouseticks_two",
                                  "nb_glmernb"])
def test_overdispersion_matches_performance(case, cbpp, ticks, nb):
    fit = {"cbpp_logit": cbpp, "grouseticks_olre": ticks["olre"],
           "grouseticks_two": ticks["two"], "nb_glmernb": nb}[case]
    ref = REF["overdispersion"][case]
    out = ml.overdispersion(fit)
    assert out.df == ref["df"]
    assert out.chisq == pytest.approx(ref["chisq"], rel=2e-3)
    assert out.ratio == pytest.approx(out.chisq / out.df, rel=1e-15)
    assert out.p_value == pytest.approx(ref["p_value"], rel=2e-2, abs=1e-12)
    assert "overdispersion" in str(out)


def test_overdispersion_refusals():
    lmm = ml.lmer("Reaction ~ Days + (1 | Subject)", ml.datasets.load("sleepstudy"))
    with pytest.raises(NotApplicableError, match="residual variance is estimated"):
        ml.overdispersion(lmm)
    binary = _fit("use ~ age + urban + (1 | district)", "Contraception")
    with pytest.raises(NotApplicableError, match="binary"):
        ml.overdispersion(binary)
    gamma = _fit("y ~ x + (1 | g)", "gamma_sim", Gamma(link="log"))
    with pytest.raises(NotApplicableError, match="dispersion is estimated"):
        ml.overdispersion(gamma)
    with pytest.raises(ArgumentError, match="fitted model"):
        ml.overdispersion("fit")


# -- stepwise selection ---------------------------------------------------------------------------
def test_step_reduces_random_then_fixed_terms_by_lrt(ticks):
    result = ml.step(ticks["two"])
    random = result.random
    # LOCATION's variance: chi-square 2.199 on 1 df, p = 0.138 > 0.1 (lme4's anova, R above)
    ref = REF["anova"]["grouseticks_location"]
    row = random[random["term"] == "(1 | LOCATION)"].iloc[0]
    assert row["chisq"] == pytest.approx(ref["chisq"], abs=1e-3)
    assert row["p_value"] == pytest.approx(ref["p_value"], rel=1e-3)
    assert bool(row["eliminated"])
    assert list(result.fixed.columns) == ["step", "term", "npar", "loglik", "chisq", "df",
                                          "p_value", "eliminated"]
    # YEAR and cHEIGHT are both strongly supported: nothing fixed goes
    assert not result.fixed["eliminated"].any()
    assert result.formula == "TICKS ~ 1 + YEAR + cHEIGHT + (1 | BROOD)"
    assert isinstance(result.model, ml.GeneralizedLinearMixedModelResult)
    assert result.model.loglik == pytest.approx(ticks["one"].loglik, rel=1e-6)
    # each fixed test is the LRT of the fit without that term
    year = result.fixed[result.fixed["term"] == "YEAR"].iloc[0]
    assert year["df"] == 2


# -- what belongs to the linear model only --------------------------------------------------------
def test_linear_model_methods_raise_not_applicable(cbpp):
    L = np.eye(len(cbpp.beta))[1:2]
    for method in (ml.inference.satterthwaite_df, ml.inference.kenward_roger_df,
                   ml.inference.between_within_df):
        with pytest.raises(NotApplicableError, match="linear mixed model"):
            method(cbpp, L)
    with pytest.raises(NotApplicableError, match="z tests"):
        ml.inference.contrast_test(cbpp, L)
    with pytest.raises(NotApplicableError, match="z tests"):
        cbpp.coef_table(ddf="kenward-roger")
    with pytest.raises(NotApplicableError, match="mundlak"):
        ml.hausman(cbpp)
    # a single coefficient's Wald chi-square is its z statistic squared
    test = ml.inference.contrast_test(cbpp, L, ddf=None)
    z = cbpp.coef_table().loc["period2", "statistic"]
    assert test["f_value"] == pytest.approx(z**2, rel=1e-10)
    assert test["p_value"] == pytest.approx(cbpp.coef_table().loc["period2", "p_value"],
                                            rel=1e-8)
    with pytest.raises(ArgumentError, match="method must be one of"):
        cbpp.confint(method="kenward-roger")


def test_mundlak_test_of_a_glmm():
    """The group means enter the linear predictor; the LRT is of the two ML fits."""
    fit = _fit("use ~ age + urban + (1 | district)", "Contraception")
    test = ml.mundlak(fit, by="district")
    assert test.df == 2 and test.statistic > 0
    assert test.p_value == pytest.approx(stats.chi2.sf(test.statistic, 2), rel=1e-12)
