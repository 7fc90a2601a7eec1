"""The O(N) moments fit of crossed random intercepts (``ml.lmer_moments``): Gao–Owen moment
equations checked against brute-force sums over pairs, backfitting GLS against the dense GLS
formula, and the whole fit against the exact REML fit (``ml.lmer``) on simulated data."""

from __future__ import annotations

import json
from itertools import product

import numpy as np
import pandas as pd
import pytest

import multilevel as ml
from multilevel.errors import ArgumentError, NotApplicableError
from multilevel.models.backfitting import backfit, gls_by_backfitting, ridge_lambdas
from multilevel.models.moments import CrossedFactors, moment_equations

FORMULA = "y ~ x + w + (1 | user) + (1 | item)"
TRUTH = {"(Intercept)": 1.0, "x": 0.5, "w": 0.3}


def simulate(n: int, users: int, items: int, seed: int, s_user: float = 1.0,
             s_item: float = 0.5, s_resid: float = 1.0) -> pd.DataFrame:
    """y = 1 + 0.5 x + 0.3 w + a_user + b_item + e; x varies by row, w by item only (a
    between-item covariate, whose naive OLS standard error is far too small)."""
    rng = np.random.default_rng(seed)
    user = rng.integers(0, users, n)
    item = rng.integers(0, items, n)
    x = rng.standard_normal(n)
    w = rng.standard_normal(items)[item]
    y = (1 + 0.5 * x + 0.3 * w + s_user * rng.standard_normal(users)[user]
         + s_item * rng.standard_normal(items)[item] + s_resid * rng.standard_normal(n))
    return pd.DataFrame({"y": y, "x": x, "w": w, "user": user, "item": item})


# -- the moment equations ------------------------------------------------------------------------
def test_moment_equations_match_brute_force_pair_sums() -> None:
    rng = np.random.default_rng(3)
    n = 60
    codes = [rng.integers(0, 7, n), rng.integers(0, 5, n), rng.integers(0, 3, n)]
    factors = CrossedFactors.from_codes(["a", "b", "c"], codes)
    r = rng.standard_normal(n)
    stat, coef = moment_equations(r, factors)
    k_count = 3
    want_stat = np.zeros(k_count + 1)
    want_coef = np.zeros((k_count + 1, k_count + 1))
    for s, t in product(range(n), range(n)):
        same = [codes[k][s] == codes[k][t] for k in range(k_count)]
        # which statistics count the pair (s, t): each factor whose level they share, and U_e
        for row in [*(k for k in range(k_count) if same[k]), k_count]:
            want_stat[row] += 0.5 * (r[s] - r[t]) ** 2
            # E (r_s - r_t)^2 / 2 = s_e^2 [s != t] + sum_m s_m^2 [levels of m differ]
            want_coef[row, k_count] += s != t
            for m in range(k_count):
                want_coef[row, m] += not same[m]
    np.testing.assert_allclose(stat, want_stat, rtol=1e-10)
    np.testing.assert_allclose(coef, want_coef, rtol=1e-12)


# -- backfitting GLS against the dense formula ---------------------------------------------------
def test_backfitting_gls_equals_dense_gls() -> None:
    df = simulate(400, 30, 12, seed=5)
    X = np.column_stack([np.ones(len(df)), df["x"], df["w"]])
    y = df["y"].to_numpy()
    factors = CrossedFactors.from_codes(["user", "item"], [df["user"], df["item"]])
    s2, s2e = np.array([0.9, 0.3]), 1.1
    fit = gls_by_backfitting(X, y, factors, s2, s2e, tol=1e-12)
    Z = [np.eye(30)[df["user"]], np.eye(12)[df["item"]]]
    V = s2e * np.eye(len(df)) + s2[0] * Z[0] @ Z[0].T + s2[1] * Z[1] @ Z[1].T
    Vi = np.linalg.inv(V)
    vcov = np.linalg.inv(X.T @ Vi @ X)
    np.testing.assert_allclose(fit.beta, vcov @ X.T @ Vi @ y, rtol=1e-8)
    np.testing.assert_allclose(fit.vcov, vcov, rtol=1e-8)
    assert fit.converged and fit.sweeps < 60
    # the effects are the ridge solution (Z'Z + diag(lambda)) u = Z'r
    lam = ridge_lambdas(s2, s2e)
    bf = backfit(y, factors, lam, tol=1e-12)
    Zall = np.hstack(Z)
    penalty = np.diag(np.r_[np.full(30, lam[0]), np.full(12, lam[1])])
    u = np.linalg.solve(Zall.T @ Zall + penalty, Zall.T @ y)
    np.testing.assert_allclose(np.r_[bf.effects[0], bf.effects[1]], u, atol=1e-8)


# -- against the exact REML fit ------------------------------------------------------------------
@pytest.fixture(scope="module")
def small() -> tuple[pd.DataFrame, object, object]:
    df = simulate(20_000, 500, 100, seed=1)
    return df, ml.lmer_moments(FORMULA, df), ml.lmer(FORMULA, df)


def test_agrees_with_reml_on_a_small_crossed_design(small) -> None:
    df, mom, reml = small
    ct_m, ct_r = mom.coef_table(), reml.coef_table()
    # fixed effects well within one standard error of each other (measured: < 0.01 SE)
    diff = np.abs(ct_m["estimate"] - ct_r["estimate"]) / ct_r["std_error"]
    assert (diff < 0.1).all(), diff
    # their standard errors within 2 % (measured: 0.3 %)
    np.testing.assert_allclose(ct_m["std_error"], ct_r["std_error"], rtol=0.02)
    # variance components within 10 % (measured: 0.1 %, 1.1 %, 0.5 %)
    np.testing.assert_allclose(mom.varcorr["variance"], reml.varcorr["variance"], rtol=0.10)
    assert mom.nobs == reml.nobs == 20_000
    assert mom.ngroups == {"user": 500, "item": 100}


def test_naive_ols_standard_errors_are_far_off(small) -> None:
    df, mom, reml = small
    ols_se = np.sqrt(np.diag(mom.ols_vcov))
    se = mom.coef_table()["std_error"].to_numpy()
    # the between-item covariate w and the intercept: OLS ~ 5x too small (measured 4.7x, 6.3x)
    assert se[2] / ols_se[2] > 3 and se[0] / ols_se[0] > 3
    np.testing.assert_allclose(se[2], reml.coef_table()["std_error"].iloc[2], rtol=0.02)


def test_common_vocabulary(small) -> None:
    df, mom, _ = small
    assert list(mom.fixef.index) == ["(Intercept)", "x", "w"]
    assert mom.vcov.shape == (3, 3)
    ct = mom.coef_table()
    assert np.isinf(ct["df"]).all()
    np.testing.assert_allclose(ct["statistic"], ct["estimate"] / ct["std_error"])
    assert list(mom.varcorr["group"]) == ["user", "item", "Residual"]
    assert mom.sigma == pytest.approx(np.sqrt(mom.varcorr["variance"].iloc[2]))
    assert set(mom.ranef) == {"user", "item"} and mom.ranef["user"].shape == (500, 1)
    text = str(mom.summary())
    assert "method of moments" in text and "backfitting" in text and "z value" in text
    d = mom.to_dict()
    json.dumps(d)
    assert d["method"] == "moments" and d["fixef"]["x"] == pytest.approx(mom.fixef["x"])
    tidy = mom.tidy(effects=["fixed", "ran_pars"])
    assert list(tidy["term"]) == ["(Intercept)", "x", "w", "sd__(Intercept)",
                                  "sd__(Intercept)", "sd__Observation"]
    ci = mom.confint()
    assert (ci["lower"] < mom.fixef).all() and (mom.fixef < ci["upper"]).all()
    assert len(mom.model_frame()) == len(df)
    assert "method of moments" in mom._repr_html_() and "nobs=20000" in repr(mom)


@pytest.mark.parametrize("what", ["loglik", "aic", "bic", "deviance"])
def test_no_likelihood_properties(small, what: str) -> None:
    with pytest.raises(NotApplicableError, match="likelihood.*ml.lmer"):
        getattr(small[1], what)


def test_no_likelihood_methods(small) -> None:
    mom = small[1]
    with pytest.raises(NotApplicableError, match="anova"):
        mom.anova()
    with pytest.raises(NotApplicableError, match="profile"):
        mom.profile()
    with pytest.raises(NotApplicableError, match="profile"):
        mom.confint(method="profile")
    with pytest.raises(NotApplicableError, match="profile"):
        mom.tidy(conf_method="profile")
    with pytest.raises(NotApplicableError, match="likelihood"):
        ml.anova(mom, mom)


def test_saving_is_refused_typed(small, tmp_path) -> None:
    with pytest.raises(ml.errors.SavedFitError, match="MomentsResult"):
        small[1].save(tmp_path / "fit.zip")


def test_three_crossed_factors_and_a_zero_component() -> None:
    rng = np.random.default_rng(11)
    df = simulate(8000, 200, 60, seed=11)
    site = rng.integers(0, 40, len(df))
    df["site"] = site
    df["y"] += 0.7 * rng.standard_normal(40)[site]
    formula = "y ~ x + (1 | user) + (1 | item) + (1 | site)"
    mom, reml = ml.lmer_moments(formula, df), ml.lmer(formula, df)
    np.testing.assert_allclose(mom.fixef, reml.fixef, atol=0.2 * reml.coef_table()["std_error"]
                               .max())
    vc_m = mom.varcorr.set_index("group")["variance"]
    vc_r = reml.varcorr.set_index("group")["variance"]
    np.testing.assert_allclose(vc_m[vc_r.index], vc_r, rtol=0.2)
    # a factor with no variance: its moment estimate is negative or tiny, the fit goes on
    df["noise"] = rng.integers(0, 50, len(df))
    fit = ml.lmer_moments("y ~ x + (1 | user) + (1 | item) + (1 | noise)", df)
    assert fit.varcorr.set_index("group").loc["noise", "variance"] < 0.01
    np.testing.assert_allclose(fit.fixef["x"], mom.fixef["x"], rtol=1e-2)


def test_random_slopes_are_refused_naming_the_term() -> None:
    df = simulate(500, 20, 10, seed=2)
    with pytest.raises(NotApplicableError, match=r"\(.*x.*\| user\).*ml\.lmer"):
        ml.lmer_moments("y ~ x + (x | user) + (1 | item)", df)


@pytest.mark.parametrize("kwargs", [{"rounds": 0}, {"tol": 2.0}, {"max_sweeps": "many"},
                                    {"rounds": True}])
def test_bad_arguments(kwargs: dict) -> None:
    df = simulate(500, 20, 10, seed=2)
    with pytest.raises(ArgumentError):
        ml.lmer_moments(FORMULA, df, **kwargs)


def test_offset_is_subtracted() -> None:
    df = simulate(2000, 50, 20, seed=4)
    df["off"] = 2.0 * df["x"]
    a = ml.lmer_moments(FORMULA, df, offset="off")
    b = ml.lmer_moments(FORMULA, df.assign(y=df["y"] - df["off"]))
    np.testing.assert_allclose(a.fixef, b.fixef, rtol=1e-10)


# -- slow: 1 M rows, and coverage across seeds ---------------------------------------------------
@pytest.mark.slow
def test_one_million_rows_against_reml() -> None:
    df = simulate(1_000_000, 50_000, 2_000, seed=7)
    mom, reml = ml.lmer_moments(FORMULA, df), ml.lmer(FORMULA, df)
    ct_m, ct_r = mom.coef_table(), reml.coef_table()
    assert ((ct_m["estimate"] - ct_r["estimate"]).abs() < 0.5 * ct_r["std_error"]).all()
    np.testing.assert_allclose(ct_m["std_error"], ct_r["std_error"], rtol=0.05)
    np.testing.assert_allclose(mom.varcorr["variance"], reml.varcorr["variance"], rtol=0.10)
    for name, value in TRUTH.items():
        assert abs(ct_m.loc[name, "estimate"] - value) < 4 * ct_m.loc[name, "std_error"]


@pytest.mark.slow
def test_coverage_across_seeds() -> None:
    cover = {"moments": 0, "reml": 0}
    total = 0
    rel_err = {"moments": [], "reml": []}
    truth_vc = np.array([1.0, 0.25, 1.0])
    for seed in range(20):
        df = simulate(20_000, 500, 100, seed=100 + seed)
        fits = {"moments": ml.lmer_moments(FORMULA, df), "reml": ml.lmer(FORMULA, df)}
        for name, fit in fits.items():
            ct = fit.coef_table()
            est, se = ct["estimate"], ct["std_error"]
            truth = pd.Series(TRUTH)[ct.index]
            cover[name] += int(((est - 1.96 * se <= truth) & (truth <= est + 1.96 * se)).sum())
            rel_err[name].append(fit.varcorr["variance"].to_numpy() / truth_vc - 1)
        total += 3
    for name in cover:
        assert 0.85 <= cover[name] / total <= 1.0, (name, cover[name], total)
        # variance components: no bias beyond the sampling error (100 items: item SE ~ 15 %)
        mean_err = np.mean(rel_err[name], axis=0)
        assert (np.abs(mean_err) < 0.08).all(), (name, mean_err)


def test_a_binary_response_is_fitted_linear_with_a_warning_that_says_so() -> None:
    """The logistic extension is not implemented: a 0/1 response is a linear probability
    model, and the warning names the response and points to glmer."""
    df = simulate(3000, 60, 30, seed=5)
    df["hit"] = (df["y"] > df["y"].median()).astype(float)
    with pytest.warns(ml.errors.MultilevelWarning, match=r"response hit .*glmer"):
        fit = ml.lmer_moments("hit ~ 1 + x + (1 | user) + (1 | item)", df)
    assert 0.3 < fit.fixef["(Intercept)"] < 0.7   # a proportion, on the response scale
