"""Power by simulation against closed-form power, and the design extension."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import multilevel as ml


def _balanced_fit(seed: int = 4) -> ml.LinearMixedModelResult:
    """20 groups x 6 rows; x = -2.5..2.5 in every group, so x varies only within groups."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(20), 6)
    x = np.tile(np.arange(6) - 2.5, 20)
    y = 0.1 * x + rng.normal(size=20)[g] + rng.normal(size=g.size)
    return ml.lmer("y ~ x + (1 | g)", pd.DataFrame({"y": y, "x": x, "g": g.astype(str)}))


def test_power_matches_the_closed_form():
    """A purely within-group covariate in a balanced random-intercept design is estimated by
    the within estimator: SE = sigma / sqrt(G * Sxx), Sxx = sum (x - mean)^2 in a group = 17.5.
    The z test then has power Phi(d - z) + Phi(-d - z), d = effect / SE; the simulation must
    agree within 3 Monte-Carlo standard errors (seed 9, 400 simulations)."""
    fit = _balanced_fit()
    effect = 0.12
    se = fit.sigma / np.sqrt(20 * 17.5)
    z = stats.norm.ppf(0.975)
    d = effect / se
    expected = stats.norm.cdf(d - z) + stats.norm.cdf(-d - z)
    r = ml.power(fit, "x", nsim=400, effect=effect, ddf=None, seed=9, progress=False)
    mc_se = np.sqrt(expected * (1 - expected) / 400)
    assert abs(r.power - expected) < 3 * mc_se
    assert r.ci_lower < r.power < r.ci_upper
    assert r.nsim == 400 and r.n_failed == 0 and not r.interrupted


def test_power_under_the_null_is_alpha():
    fit = _balanced_fit()
    r = ml.power(fit, "x", nsim=300, effect=0.0, ddf=None, seed=3, progress=False)
    assert abs(r.power - 0.05) < 3 * np.sqrt(0.05 * 0.95 / 300)


def test_satterthwaite_power_runs_and_is_reproducible():
    fit = _balanced_fit()
    a = ml.power(fit, "x", nsim=16, effect=0.3, seed=1, n_jobs=1, progress=False)
    b = ml.power(fit, "x", nsim=16, effect=0.3, seed=1, n_jobs=2, progress=False)
    np.testing.assert_array_equal(a.p_values, b.p_values)
    assert "satterthwaite" in str(a)


def test_extend_groups_copies_groups_and_keeps_parameters():
    fit = _balanced_fit()
    big = ml.inference.extend_groups(fit, 50)
    assert big.nobs == 300 and big.ngroups == {"g": 50}
    np.testing.assert_array_equal(big.theta, fit.theta)
    np.testing.assert_array_equal(big.beta, fit.beta)
    assert big.sigma == fit.sigma


def test_power_curve_increases_with_groups():
    """The within-estimator SE shrinks as 1/sqrt(G): closed-form power rises with G."""
    fit = _balanced_fit()
    curve = ml.power_curve(fit, "x", [10, 40], nsim=200, effect=0.12, ddf=None, seed=2,
                           progress=False)
    assert list(curve.index) == [10, 40]
    z = stats.norm.ppf(0.975)
    for g in (10, 40):
        d = 0.12 / (fit.sigma / np.sqrt(g * 17.5))
        expected = stats.norm.cdf(d - z) + stats.norm.cdf(-d - z)
        assert abs(curve.loc[g, "power"] - expected) < 3 * np.sqrt(expected * (1 - expected)
                                                                    / 200)


def test_bad_arguments():
    fit = _balanced_fit()
    with pytest.raises(ml.errors.MultilevelError, match="fixed effect"):
        ml.power(fit, "z", nsim=5)
    with pytest.raises(ml.errors.MultilevelError, match="alpha"):
        ml.power(fit, "x", nsim=5, alpha=1.5)
    pen = ml.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", ml.datasets.load("Penicillin"))
    with pytest.raises(ml.errors.MultilevelError, match="one grouping factor"):
        ml.inference.extend_groups(pen, 30)


def test_power_from_a_specified_model_matches_the_closed_form():
    """simr's makeLmer: parameters given, no response needed. Same closed form as above with
    the specified sigma = 1: SE = 1 / sqrt(20 * 17.5)."""
    g = np.repeat(np.arange(20), 6)
    design = pd.DataFrame({"x": np.tile(np.arange(6) - 2.5, 20), "g": g.astype(str)})
    spec = ml.inference.specify("y ~ x + (1 | g)", design, fixef={"(Intercept)": 0.0, "x": 0.12},
                                covariance={"g": 1.0}, sigma=1.0)
    assert spec.sigma == 1.0 and spec.theta == pytest.approx([1.0])
    r = ml.power(spec, "x", nsim=400, ddf=None, seed=5, progress=False)
    d = 0.12 / (1 / np.sqrt(20 * 17.5))
    z = stats.norm.ppf(0.975)
    expected = stats.norm.cdf(d - z) + stats.norm.cdf(-d - z)
    assert abs(r.power - expected) < 3 * np.sqrt(expected * (1 - expected) / 400)


def test_specify_errors():
    design = pd.DataFrame({"x": np.arange(12.0), "g": np.repeat(["a", "b", "c"], 4)})
    with pytest.raises(ml.errors.MultilevelError, match="missing"):
        ml.inference.specify("y ~ x + (1 | g)", design, {"x": 1.0}, {"g": 1.0}, 1.0)
    with pytest.raises(ml.errors.MultilevelError, match="covariance"):
        ml.inference.specify("y ~ x + (1 | g)", design, {"(Intercept)": 0, "x": 1.0}, {}, 1.0)


def test_power_curve_over_rows_per_group():
    """Rows per group: with x cycling through -2.5..2.5 the within-group Sxx grows with the
    rows taken; more rows, more power (closed form at the smallest and largest sizes)."""
    fit = _balanced_fit()
    curve = ml.power_curve(fit, "x", n_per_group=[6, 18], nsim=200, effect=0.12, ddf=None,
                           seed=4, progress=False)
    assert list(curve.index) == [6, 18]
    assert curve.loc[18, "power"] > curve.loc[6, "power"]
    z = stats.norm.ppf(0.975)
    d = 0.12 / (fit.sigma / np.sqrt(20 * 3 * 17.5))  # 18 rows = three copies of the cycle
    expected = stats.norm.cdf(d - z) + stats.norm.cdf(-d - z)
    assert abs(curve.loc[18, "power"] - expected) < 3 * np.sqrt(expected * (1 - expected) / 200)
