"""Profile-likelihood intervals against lme4's confint(method = "profile").

Reference: the shared sleepstudy_reml fit (tests/reference/lme4_shared/sleepstudy_reml.json,
field confint.profile; lme4 1.1-31, R call in ``call``). lme4 profiles REML fits on the ML
deviance of the ML refit, as we do. Target: each bound within 5e-3 of the interval's width.
"""

from __future__ import annotations

import numpy as np
import pytest

import multilevel as ml

from reference_data import REF, load_ref


@pytest.fixture(scope="module")
def profile_ci():
    fit = ml.lmer("Reaction ~ Days + (Days | Subject)", ml.datasets.load("sleepstudy"))
    return fit.confint(method="profile")


def test_profile_intervals_match_lme4(profile_ci):
    ref = load_ref(REF / "lme4_shared" / "sleepstudy_reml.json")["confint"]["profile"]
    assert list(profile_ci.index) == list(ref["intervals"])
    for name, bounds in ref["intervals"].items():
        width = bounds["upper"] - bounds["lower"]
        assert abs(profile_ci.loc[name, "lower"] - bounds["lower"]) <= 5e-3 * width, name
        assert abs(profile_ci.loc[name, "upper"] - bounds["upper"]) <= 5e-3 * width, name


def test_profile_is_wider_than_wald_for_the_intercept(profile_ci):
    """A sanity check of direction: for sleepstudy lme4's profile interval of the intercept
    (237.68, 265.13) contains its Wald interval (238.03, 264.78)."""
    fit = ml.lmer("Reaction ~ Days + (Days | Subject)", ml.datasets.load("sleepstudy"))
    wald = fit.confint()
    assert profile_ci.loc["(Intercept)", "lower"] < wald.loc["(Intercept)", "lower"]
    assert profile_ci.loc["(Intercept)", "upper"] > wald.loc["(Intercept)", "upper"]


def test_a_zero_variance_gets_a_zero_lower_bound():
    """Dyestuff2's batch SD is estimated as 0: its profile lower bound is the bound itself."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ml.errors.SingularFitWarning)
        fit = ml.lmer("Yield ~ 1 + (1 | Batch)", ml.datasets.load("Dyestuff2"))
    ci = fit.confint(method="profile")
    assert ci.loc["sd_(Intercept)|Batch", "lower"] == 0.0
    assert ci.loc["sd_(Intercept)|Batch", "upper"] > 0.0
    assert ci.loc["sigma", "lower"] < fit.sigma < ci.loc["sigma", "upper"]


def test_zeta_profiles_cross_zero_at_the_estimate_and_z_at_the_bounds():
    from scipy import stats

    fit = ml.lmer("Yield ~ 1 + (1 | Batch)", ml.datasets.load("Dyestuff"), reml=False)
    prof = fit.profile(level=0.95, n=5)
    assert set(prof["parameter"]) == {"sd_(Intercept)|Batch", "sigma", "(Intercept)"}
    z = stats.norm.ppf(0.975)
    for _, grp in prof.groupby("parameter"):
        zeta = grp["zeta"].to_numpy()
        assert np.all(np.diff(zeta) > 0)  # increasing in the parameter
        assert zeta[-1] == pytest.approx(z, abs=1e-4)
        if grp["value"].iloc[0] > 0:  # a bound not at the boundary of the parameter space
            assert zeta[0] == pytest.approx(-z, abs=1e-4)


def test_profile_intervals_of_a_weighted_fit_with_an_offset_contain_the_estimates():
    """Weights and an offset drawn from default_rng(20261107) (uniform(0.5, 2) and
    uniform(0.5, 1.5)) on sleepstudy: the warm-started profile once left BOBYQA in another
    basin, 14 deviance units above the optimum at the estimate itself, and the bracket search
    failed. Every interval must contain its ML estimate and be finite."""
    import warnings

    import pandas as pd

    sleep = ml.datasets.load("sleepstudy")
    rng = np.random.default_rng(20261107)
    w = rng.uniform(0.5, 2.0, len(sleep))
    o = rng.uniform(0.5, 1.5, len(sleep))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ml.errors.ConvergenceWarning)
        fit = ml.lmer("Reaction ~ Days + (Days | Subject)", sleep, weights=w, offset=o)
        ci = fit.confint(method="profile")
    ml_fit = ml.lmer("Reaction ~ Days + (Days | Subject)", sleep, weights=w, offset=o,
                     reml=False)
    est = pd.concat([ml_fit.sdcor, ml_fit.fixef])
    assert np.isfinite(ci.to_numpy()).all()
    assert ((ci["lower"] < est[ci.index]) & (est[ci.index] < ci["upper"])).all(), ci
