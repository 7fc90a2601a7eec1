"""Every family of the GLMM issue in Bayesian fits.

The likelihood of each family is checked where an exact yardstick exists: the posterior mode
with flat priors (group effects integrated out by Laplace) must be glmer's maximum-likelihood
fit — Poisson and the negative binomial (size estimated). Gamma and inverse Gaussian, whose
glmer dispersion is not a maximum-likelihood estimate, are checked by recovering the parameters
that simulated the data. Nonlinear parameters that depend on covariates are checked the same
way.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import multilevel as ml

pytest.importorskip("numpyro")

SMALL = dict(chains=2, draws=400, warmup=400, progress=False, seed=2)


def _counts(seed: int, negative_binomial: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(25), 12)
    x = rng.normal(size=g.size)
    eta = 0.8 + 0.4 * x + rng.normal(0, 0.5, 25)[g]
    mu = np.exp(eta)
    y = (rng.negative_binomial(3.0, 3.0 / (3.0 + mu)) if negative_binomial
         else rng.poisson(mu))
    return pd.DataFrame({"y": y.astype(float), "x": x, "g": g.astype(str)})


def _flat(*classes: str) -> list:
    return [ml.prior("flat", class_=c) for c in ("Intercept", "sd", *classes)]


def test_poisson_mode_is_glmers_fit():
    data = _counts(1)
    mode = ml.posterior_mode("y ~ x + (1 | g)", data, family="poisson", priors=_flat())
    g = ml.glmer("y ~ x + (1 | g)", data, family="poisson")
    np.testing.assert_allclose(mode.fixef.to_numpy(), g.fixef.to_numpy(), rtol=1e-4)
    assert mode.parameters["sd_g__Intercept"] == pytest.approx(g.varcorr.sd[0], rel=1e-4)
    assert mode.log_posterior == pytest.approx(g.loglik, rel=1e-6)


def test_negative_binomial_mode_is_glmers_fit():
    data = _counts(2, negative_binomial=True)
    mode = ml.posterior_mode("y ~ x + (1 | g)", data, family="negative_binomial",
                             priors=_flat("shape"))
    g = ml.glmer("y ~ x + (1 | g)", data, family="negative_binomial")
    np.testing.assert_allclose(mode.fixef.to_numpy(), g.fixef.to_numpy(), rtol=1e-3)
    assert mode.parameters["shape"] == pytest.approx(g.family.theta, rel=1e-3)
    assert mode.log_posterior == pytest.approx(g.loglik, rel=1e-5)


@pytest.mark.parametrize("family", ["gamma", "inverse_gaussian"])
def test_positive_families_recover_the_simulating_parameters(family):
    rng = np.random.default_rng(5)
    g = np.repeat(np.arange(20), 15)
    x = rng.uniform(-1, 1, g.size)
    mu = np.exp(1.0 + 0.5 * x + rng.normal(0, 0.3, 20)[g])
    shape = 8.0
    y = rng.gamma(shape, mu / shape) if family == "gamma" else rng.wald(mu, shape)
    data = pd.DataFrame({"y": y, "x": x, "g": g.astype(str)})
    link = "log"
    fam = (ml.families.Gamma(link=link) if family == "gamma"
           else ml.families.InverseGaussian(link=link))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ml.errors.MultilevelWarning)
        fit = ml.bayes("y ~ x + (1 | g)", data, family=fam, **SMALL)
    table = fit.posterior_summary()
    for name, truth in (("b_Intercept", 1.0), ("b_x", 0.5), ("sd_g__Intercept", 0.3),
                        ("shape", shape)):
        row = table.loc[name]
        assert row["ci_lower"] < truth < row["ci_upper"], (name, row.to_dict())
    assert "shape = identity" in fit.summary()


def test_nonlinear_parameter_depending_on_a_covariate():
    rng = np.random.default_rng(11)
    trees = np.arange(12)
    treated = trees % 2 == 1
    age = np.tile([120.0, 480, 660, 1000, 1230, 1370, 1580], 12)
    tree = np.repeat(trees, 7)
    asym = 150.0 + 50.0 * treated[tree] + rng.normal(0, 15, 12)[tree]
    y = asym / (1 + np.exp((700 - age) / 350)) + rng.normal(0, 5, age.size)
    data = pd.DataFrame({"y": y, "age": age, "Tree": tree.astype(str),
                         "Treatment": np.where(treated[tree], "B", "A")})
    priors = [ml.prior("normal(150, 50)", nlpar="Asym"), ml.prior("normal(700, 200)",
                                                                   nlpar="xmid"),
              ml.prior("normal(350, 100)", nlpar="scal"),
              ml.prior("student_t(3, 0, 30)", class_="sd", nlpar="Asym")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ml.errors.MultilevelWarning)
        fit = ml.bayes_nlme("y ~ SSlogis(age, Asym, xmid, scal)", data,
                            params={"Asym": "1 + Treatment + (1 | Tree)"}, priors=priors,
                            **SMALL)
    assert list(fit.fixef.index) == ["Asym_Intercept", "Asym_TreatmentB", "xmid_Intercept",
                                     "scal_Intercept"]
    row = fit.coef_table().loc["Asym_TreatmentB"]
    assert row["ci_lower"] < 50.0 < row["ci_upper"] and row["ci_lower"] > 0
    assert "Asym ~ 1 + Treatment + (1 | Tree)" in fit.summary()


def test_brms_family_names_are_understood():
    assert ml.families.family("bernoulli").name == "binomial"
    assert ml.families.family("negbinomial").name == "negative.binomial"
    data = _counts(3)
    data["any"] = (data["y"] > 2).astype(float)
    mode = ml.posterior_mode("any ~ x + (1 | g)", data, family="bernoulli",
                             priors=_flat())
    g = ml.glmer("any ~ x + (1 | g)", data, family="binomial")
    np.testing.assert_allclose(mode.fixef.to_numpy(), g.fixef.to_numpy(), rtol=1e-3)
