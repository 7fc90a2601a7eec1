"""Bayesian fits: the posterior mode against the ML fits, the result vocabulary, predictions
with new levels, reproducibility, diagnostics and typed errors (small, fast fits)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

import multilevel as ml
from multilevel.errors import ArgumentError, ColumnNotFoundError, DataError, FormulaError

pytest.importorskip("numpyro")

SMALL = dict(chains=2, draws=300, warmup=300, progress=False)
FLAT = [ml.prior("flat", class_=c) for c in ("Intercept", "sd", "sigma")]


@pytest.fixture(scope="module")
def sleep():
    return ml.datasets.load("sleepstudy")


@pytest.fixture(scope="module")
def fit(sleep):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ml.errors.MultilevelWarning)
        return ml.bayes("Reaction ~ Days + (Days | Subject)", sleep, seed=3, **SMALL)


def test_posterior_mode_with_flat_priors_is_the_ml_fit(sleep):
    mode = ml.posterior_mode("Reaction ~ Days + (Days | Subject)", sleep, priors=FLAT)
    ml_fit = ml.lmer("Reaction ~ Days + (Days | Subject)", sleep, reml=False)
    assert mode.converged
    np.testing.assert_allclose(mode.fixef.to_numpy(), ml_fit.fixef.to_numpy(), rtol=1e-5)
    vc = ml_fit.varcorr
    p = mode.parameters
    np.testing.assert_allclose(
        [p["sd_Subject__Intercept"], p["sd_Subject__Days"], p["sigma"]],
        [vc.sd[0], vc.sd[1], vc.sd[3]], rtol=1e-4)
    assert p["cor_Subject__Intercept__Days"] == pytest.approx(vc["corr"][2], abs=1e-4)
    # Gaussian: the Laplace integral is exact, so the mode's density is the likelihood
    assert mode.log_posterior == pytest.approx(ml_fit.loglik, rel=1e-8)


def test_posterior_mode_of_a_binomial_glmm_is_glmers_laplace_fit():
    cbpp = ml.datasets.load("cbpp")
    formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    mode = ml.posterior_mode(formula, cbpp, family="binomial",
                             priors=[ml.prior("flat", class_=c) for c in ("Intercept", "sd")])
    g = ml.glmer(formula, cbpp, family="binomial")
    np.testing.assert_allclose(mode.fixef.to_numpy(), g.fixef.to_numpy(), rtol=1e-4)
    assert mode.parameters["sd_herd__Intercept"] == pytest.approx(g.varcorr.sd[0], rel=1e-4)
    assert mode.log_posterior == pytest.approx(g.loglik, rel=1e-6)


def test_proper_priors_pull_the_mode_towards_them(sleep):
    tight = [*FLAT[:1], ml.prior("normal(0, 0.5)", class_="b", coef="Days"), *FLAT[1:]]
    mode = ml.posterior_mode("Reaction ~ Days + (Days | Subject)", sleep, priors=tight)
    assert 0.0 < mode.fixef["Days"] < 2.0  # the ML estimate is 10.5


def test_result_vocabulary(fit, sleep):
    assert list(fit.fixef.index) == ["(Intercept)", "Days"]
    table = fit.coef_table()
    assert list(table.columns) == ["estimate", "std_error", "ci_lower", "ci_upper", "rhat",
                                   "ess_bulk", "ess_tail"]
    assert (table.ci_lower < table.estimate).all() and (table.estimate < table.ci_upper).all()
    d = fit.draws("b_Days").ravel()
    assert table.loc["Days", "estimate"] == pytest.approx(d.mean())
    assert table.loc["Days", "std_error"] == pytest.approx(d.std(ddof=1))
    assert table.loc["Days", "ci_upper"] == pytest.approx(np.quantile(d, 0.975))
    vc = fit.varcorr
    assert list(vc.group) == ["Subject", "Subject", "Subject", "Residual"]
    assert vc.sd[3] == pytest.approx(fit.sigma)
    assert -1 < vc["corr"][2] < 1
    re = fit.ranef["Subject"]
    assert re.shape == (18, 2) and list(re.columns) == ["Intercept", "Days"]
    # partial pooling: the group effects average close to zero
    assert abs(re["Days"].mean()) < 1.0
    assert fit.vcov.shape == (2, 2)
    assert fit.nobs == 180 and fit.ngroups == {"Subject": 18}
    assert fit.ndraws == 600
    post = fit.posterior
    for group in ("posterior", "sample_stats", "log_likelihood", "observed_data"):
        assert hasattr(post, group)
    assert post.log_likelihood["y"].shape == (2, 300, 180)


def test_fitted_values_track_the_data(fit, sleep):
    fitted = fit.fitted()
    assert fitted.shape == (180,)
    r = np.corrcoef(fitted, sleep.Reaction)[0, 1]
    assert r > 0.85
    assert np.allclose(fit.residuals(), sleep.Reaction.to_numpy() - fitted)


def test_predict_new_levels_draws_from_the_population(fit, sleep):
    new = pd.DataFrame({"Days": [0.0, 9.0, 0.0], "Subject": ["308", "308", "new"]})
    with pytest.raises(DataError, match="allow_new_levels"):
        fit.predict(new)
    draws = fit.predict(new, allow_new_levels=True, summary=False)
    assert draws.shape == (600, 3)
    population = fit.predict(new, re_form="NA", summary=False)
    # a known subject's prediction follows its own effects; a new one has the population
    # mean with the between-subject spread added
    assert abs(draws[:, 2].mean() - population[:, 2].mean()) < 10
    assert draws[:, 2].std() > 2 * population[:, 2].std()
    own = fit.predict(new.iloc[:2])
    assert own[1] - own[0] == pytest.approx(
        9 * (fit.fixef["Days"] + fit.ranef["Subject"].loc["308", "Days"]), rel=0.02)


def test_posterior_predictive_has_the_datas_spread(fit, sleep):
    yrep = fit.posterior_predictive(ndraws=100, seed=2)
    assert yrep.shape == (100, 180)
    assert np.std(yrep) == pytest.approx(np.std(sleep.Reaction), rel=0.2)


def test_same_seed_same_draws(sleep):
    small = dict(chains=2, draws=50, warmup=50, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ml.errors.MultilevelWarning)
        a = ml.bayes("Reaction ~ Days + (1 | Subject)", sleep, seed=7, **small)
        b = ml.bayes("Reaction ~ Days + (1 | Subject)", sleep, seed=7, **small)
        c = ml.bayes("Reaction ~ Days + (1 | Subject)", sleep, seed=8, **small)
    assert np.array_equal(a.draws("b_Days"), b.draws("b_Days"))
    assert not np.array_equal(a.draws("b_Days"), c.draws("b_Days"))


def test_summary_is_brms_layout(fit):
    text = fit.summary()
    for line in ("Family: gaussian", "Links: mu = identity; sigma = identity",
                 "Formula: Reaction ~ Days + (Days | Subject)", "Number of observations: 180",
                 "Draws: 2 chains, each with iter = 600; warmup = 300; thin = 1;",
                 "total post-warmup draws = 600", "Group-Level Effects:",
                 "~Subject (Number of levels: 18)", "sd(Intercept)", "cor(Intercept,Days)",
                 "Population-Level Effects:", "Family Specific Parameters:", "sigma"):
        assert line in text, line
    assert "Estimate Est.Error l-95% CI u-95% CI Rhat Bulk_ESS Tail_ESS" in text
    assert "<table" in fit._repr_html_()
    json.dumps(fit.to_dict())


def test_prior_summary_lists_every_prior(fit):
    ps = fit.prior_summary()
    assert list(ps["class"]) == ["Intercept", "b", "sd", "sd", "cor", "sigma"]
    assert ps.loc[ps["class"] == "Intercept", "prior"].item() == "student_t(3, 288.7, 59.3)"


def test_diagnostics_warn_on_too_short_chains(sleep):
    with pytest.warns(ml.errors.MultilevelWarning, match="effective sample size"):
        short = ml.bayes("Reaction ~ Days + (Days | Subject)", sleep, chains=2, draws=20,
                         warmup=30, seed=1, progress=False)
    assert short.diagnostics.messages
    assert "Warning:" in short.summary()


def test_typed_errors(sleep):
    with pytest.raises(ArgumentError, match="sd parameters are"):
        ml.bayes("Reaction ~ Days + (Days | Subject)", sleep,
                 priors=[ml.prior("normal(0, 1)", class_="sd", coef="Dayz", group="Subject")],
                 **SMALL)
    with pytest.raises(ArgumentError, match="chains"):
        ml.bayes("Reaction ~ Days + (1 | Subject)", sleep, chains=0)
    with pytest.raises(ArgumentError, match="target_accept"):
        ml.bayes("Reaction ~ Days + (1 | Subject)", sleep, target_accept=1.5)
    with pytest.raises(ArgumentError, match="priors must be"):
        ml.bayes("Reaction ~ Days + (1 | Subject)", sleep, priors="normal(0, 1)")
    with pytest.raises(ColumnNotFoundError):
        ml.bayes("Reaction ~ Dayz + (1 | Subject)", sleep, **SMALL)
    with pytest.raises(FormulaError):
        ml.bayes_nlme("circumference ~ Asym / (1 + exp((xmid - age) / scal))",
                      ml.datasets.load("Orange"), params={"Asym": "1 + (1 | Tree)"}, **SMALL)


def test_missing_extra_names_the_install(monkeypatch):
    import builtins

    from multilevel import bayesian as bayes_package
    real = builtins.__import__

    def no_numpyro(name, *args, **kwargs):
        if name == "numpyro":
            raise ImportError("no numpyro")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_numpyro)
    with pytest.raises(ml.errors.MissingExtraError, match=r"pip install \"multilevel\[bayes\]\""):
        bayes_package.require()


def test_self_starting_model_parameters_default_to_population_values():
    orange = ml.datasets.load("Orange")
    priors = [ml.prior("normal(200, 50)", nlpar="Asym"),
              ml.prior("normal(700, 200)", nlpar="xmid"),
              ml.prior("normal(350, 100)", nlpar="scal"),
              ml.prior("student_t(3, 0, 40)", class_="sd", nlpar="Asym")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ml.errors.MultilevelWarning)
        fit = ml.bayes_nlme("circumference ~ SSlogis(age, Asym, xmid, scal)", orange,
                            params={"Asym": "1 + (1 | Tree)"}, priors=priors, **SMALL)
    assert list(fit.fixef.index) == ["Asym_Intercept", "xmid_Intercept", "scal_Intercept"]
    # nlme's ML estimates: Asym 191.0, xmid 722.6, scal 344.2
    np.testing.assert_allclose(fit.fixef.to_numpy(), [191.0, 722.6, 344.2], rtol=0.05)
    assert list(fit.ranef["Tree"].columns) == ["Asym_Intercept"]
    growth = fit.predict(pd.DataFrame({"age": [118.0, 1582.0], "Tree": ["1", "9"]}),
                         allow_new_levels=True)
    assert growth[0] < 60 and growth[1] > 150


def test_uncorrelated_terms_share_the_group_effects_variable(sleep):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ml.errors.MultilevelWarning)
        fit = ml.bayes("Reaction ~ Days + (Days || Subject)", sleep, **SMALL)
    post = fit.posterior.posterior
    assert post["r_Subject"].shape[2:] == (18, 2)
    assert "cor_Subject__Intercept__Days" not in post
    assert list(fit.ranef["Subject"].columns) == ["Intercept", "Days"]
    assert "sd(Days)" in fit.summary() and "cor(" not in fit.summary()
    with pytest.raises(FormulaError, match="both have 'Intercept'"):
        ml.bayes("Reaction ~ Days + (Days | Subject) + (1 | Subject)", sleep, **SMALL)


def test_progress_bar_and_ctrl_c_keep_the_draws_so_far(sleep, monkeypatch, capsys):
    from multilevel.bayesian import sampler
    real = sampler._ahead_of_time
    calls = {"n": 0}

    def interrupted_after_five_chunks(*args, **kwargs):
        run = real(*args, **kwargs)

        def chunk(state, data):
            calls["n"] += 1
            if calls["n"] > 5:  # 3 warmup chunks of 100, then 2 of draws
                raise KeyboardInterrupt
            return run(state, data)
        return chunk

    monkeypatch.setattr(sampler, "_ahead_of_time", interrupted_after_five_chunks)
    with pytest.warns(ml.errors.MultilevelWarning, match="interrupted"):
        fit = ml.bayes("Reaction ~ Days + (1 | Subject)", sleep, chains=2, draws=300,
                       warmup=300, seed=1, progress=True)
    assert fit.draws("b_Days").shape == (2, 200)
    assert fit.interrupted and "interrupted" in fit.summary()
    err = capsys.readouterr().err
    assert "warmup" in err and "sampling" in err


def test_nested_groups_are_named_as_brms_names_them():
    pastes = ml.datasets.load("Pastes")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ml.errors.MultilevelWarning)
        fit = ml.bayes("strength ~ 1 + (1 | batch/cask)", pastes, chains=2, draws=100,
                       warmup=100, progress=False)
    # lme4 calls the inner group cask:batch with levels a:A; brms batch:cask with A_a
    assert "sd_batch:cask__Intercept" in fit.posterior.posterior
    assert "A_a" in fit.ranef["batch:cask"].index
    text = fit.summary()
    assert text.index("~batch (Number of levels: 10)") < text.index(
        "~batch:cask (Number of levels: 30)")
    new = pastes.head(2).assign(cask="z")
    assert np.isfinite(fit.predict(new, allow_new_levels=True)).all()


def test_brms_trials_response_is_the_cbind_response():
    from multilevel.bayesian.fit import response_family
    from multilevel.bayesian.model_spec import brms_response, linear_model

    binomial = response_family("binomial")
    assert brms_response("incidence | trials(size) ~ period + (1 | herd)", binomial) == \
        "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    cbpp = ml.datasets.load("cbpp")
    a = linear_model("incidence | trials(size) ~ period + (1 | herd)", cbpp, binomial)
    b = linear_model("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, binomial)
    assert np.array_equal(a.y, b.y) and np.array_equal(a.wt, b.wt)
    with pytest.raises(FormulaError, match="binomial"):
        brms_response("incidence | trials(size) ~ period + (1 | herd)",
                      response_family("poisson"))
