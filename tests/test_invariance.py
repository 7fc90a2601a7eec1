"""Invariances a correct mixed-model fit must have, and recovery of simulated parameters.

- Permuting the rows, or relabelling the levels of a grouping factor, changes nothing.
- Rescaling a predictor by c (Days -> Days / 7, weeks) multiplies its coefficient and the SD of
  its random slope by c and leaves the correlation unchanged. The ML deviance is unchanged.
  The REML criterion is not: with X' = X D, D = diag(1, 1/7), the REML criterion contains
  log det(X' V^-1 X') = log det(X' V^-1 X) + 2 log det D, so (everything else being equal at
  the corresponding theta) REML(weeks) = REML(days) - 2 log 7, i.e. the REML log-likelihood
  rises by log 7.
- Shifting the response by a constant moves only the intercept (by that constant).

Data: the built-in sleepstudy and Penicillin (lme4's data sets). Tolerances: the criterion to
1e-8 relative. Parameters to PARAM_RTOL = 2e-5 relative: the objective is mathematically the
same function, but sums taken in another order differ in the last bits, BOBYQA's path then
drifts, and it stops once a step is below xtol_rel = 1e-4 (lme4's setting), so estimates agree
to about 1e-6 on this flat optimum, not to rounding. Rescaling changes the path more: 1e-4.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import multilevel as ml

SLEEP = "Reaction ~ Days + (Days | Subject)"
PENICILLIN = "diameter ~ 1 + (1 | plate) + (1 | sample)"
PARAM_RTOL = 2e-5


def load(name: str) -> pd.DataFrame:
    return ml.datasets.load(name)


def fit(formula: str, data: pd.DataFrame, **kwargs) -> ml.LinearMixedModelResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ml.errors.MultilevelWarning)
        return ml.lmer(formula, data, **kwargs)


def assert_same_fit(a, b, rtol: float = PARAM_RTOL, ranef_map=None) -> None:
    """Same criterion, estimates, variance components and conditional modes (matched by level,
    through ``ranef_map[group][level_in_a] -> level_in_b`` when the labels differ)."""
    assert a.objective == pytest.approx(b.objective, rel=1e-8)
    assert a.loglik == pytest.approx(b.loglik, rel=1e-8)
    assert a.fixed_names == b.fixed_names
    np.testing.assert_allclose(a.beta, b.beta, rtol=rtol)
    va, vb = a.varcorr, b.varcorr
    assert va[["group", "term1", "term2"]].equals(vb[["group", "term1", "term2"]])
    np.testing.assert_allclose(va["variance"], vb["variance"], rtol=rtol)
    np.testing.assert_allclose(va["sd"], vb["sd"], rtol=rtol)
    np.testing.assert_allclose(va["corr"], vb["corr"], rtol=rtol, atol=rtol)
    assert set(a.ranef) == set(b.ranef)
    for group, frame_a in a.ranef.items():
        frame_b = b.ranef[group]
        mapping = (ranef_map or {}).get(group, {})
        matched = frame_b.loc[[mapping.get(lev, lev) for lev in frame_a.index]]
        scale = np.abs(frame_a.to_numpy()).max()
        np.testing.assert_allclose(frame_a.to_numpy(), matched.to_numpy(),
                                   rtol=rtol, atol=rtol * scale)


@pytest.fixture(scope="module")
def sleep_fit():
    return fit(SLEEP, load("sleepstudy"))


@pytest.fixture(scope="module")
def penicillin_fit():
    return fit(PENICILLIN, load("Penicillin"))


# -- permutation ----------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [1, 2])
def test_row_permutation_sleepstudy(sleep_fit, seed):
    data = load("sleepstudy")
    perm = np.random.default_rng(seed).permutation(len(data))
    assert_same_fit(fit(SLEEP, data.iloc[perm].reset_index(drop=True)), sleep_fit)


def test_row_permutation_keeping_the_shuffled_index(sleep_fit):
    data = load("sleepstudy")
    perm = np.random.default_rng(3).permutation(len(data))
    assert_same_fit(fit(SLEEP, data.iloc[perm]), sleep_fit)


@pytest.mark.parametrize("seed", [1, 2])
def test_row_permutation_penicillin(penicillin_fit, seed):
    data = load("Penicillin")
    perm = np.random.default_rng(seed).permutation(len(data))
    assert_same_fit(fit(PENICILLIN, data.iloc[perm].reset_index(drop=True)), penicillin_fit)


def test_permuted_fitted_values_follow_the_rows(sleep_fit):
    data = load("sleepstudy")
    perm = np.random.default_rng(4).permutation(len(data))
    permuted = fit(SLEEP, data.iloc[perm].reset_index(drop=True))
    np.testing.assert_allclose(permuted.fitted(), sleep_fit.fitted()[perm], rtol=PARAM_RTOL)
    np.testing.assert_allclose(permuted.residuals(), sleep_fit.residuals()[perm],
                               rtol=PARAM_RTOL, atol=PARAM_RTOL * sleep_fit.sigma)


# -- relabelling ----------------------------------------------------------------------------

def test_prefixing_subject_labels(sleep_fit):
    data = load("sleepstudy")
    data["Subject"] = "s" + data["Subject"].astype(str)
    relabelled = fit(SLEEP, data)
    mapping = {"Subject": {f"s{lev}": lev for lev in sleep_fit.ranef["Subject"].index}}
    assert_same_fit(relabelled, sleep_fit, ranef_map=mapping)
    assert all(lev.startswith("s") for lev in relabelled.ranef["Subject"].index)


def test_relabelling_that_reorders_levels(sleep_fit):
    # new labels whose sorted order differs from the original level order
    data = load("sleepstudy")
    levels = list(data["Subject"].cat.categories)
    shuffled = np.random.default_rng(5).permutation(len(levels))
    new_label = {old: f"id{shuffled[i]:02d}" for i, old in enumerate(levels)}
    data["Subject"] = data["Subject"].astype(str).map(new_label)
    relabelled = fit(SLEEP, data)
    assert list(relabelled.ranef["Subject"].index) != [new_label[lev] for lev in levels]
    mapping = {"Subject": {new: old for old, new in new_label.items()}}
    assert_same_fit(relabelled, sleep_fit, ranef_map=mapping)


def test_relabelling_both_penicillin_factors(penicillin_fit):
    data = load("Penicillin")
    plates = list(data["plate"].cat.categories)
    samples = list(data["sample"].cat.categories)
    plate_map = {p: f"P{len(plates) - i:02d}" for i, p in enumerate(plates)}  # reversed order
    sample_map = {s: f"s_{s.lower()}" for s in samples}
    data["plate"] = data["plate"].astype(str).map(plate_map)
    data["sample"] = data["sample"].astype(str).map(sample_map)
    relabelled = fit(PENICILLIN, data)
    mapping = {"plate": {v: k for k, v in plate_map.items()},
               "sample": {v: k for k, v in sample_map.items()}}
    assert_same_fit(relabelled, penicillin_fit, ranef_map=mapping)


def test_integer_versus_string_labels(sleep_fit):
    data = load("sleepstudy")
    data["Subject"] = data["Subject"].astype(str).astype(int)
    as_int = fit(SLEEP, data)
    assert as_int.objective == pytest.approx(sleep_fit.objective, rel=1e-8)
    np.testing.assert_allclose(as_int.beta, sleep_fit.beta, rtol=PARAM_RTOL)


# -- rescaling a predictor ------------------------------------------------------------------

def weeks_data() -> pd.DataFrame:
    data = load("sleepstudy")
    data["Days"] = data["Days"] / 7.0
    return data


def test_rescaled_predictor_reml(sleep_fit):
    weeks = fit(SLEEP, weeks_data())
    # derived in the module docstring: REML criterion shifts by -2 log 7
    assert weeks.objective == pytest.approx(sleep_fit.objective - 2 * math.log(7), rel=1e-8)
    assert weeks.loglik == pytest.approx(sleep_fit.loglik + math.log(7), rel=1e-8)
    np.testing.assert_allclose(weeks.beta, sleep_fit.beta * np.array([1.0, 7.0]), rtol=1e-4)
    vw, vd = weeks.varcorr, sleep_fit.varcorr
    # rows: Subject (Intercept), Subject Days, their covariance/correlation, Residual
    np.testing.assert_allclose(vw["sd"].iloc[[0, 1, 3]],
                               vd["sd"].iloc[[0, 1, 3]] * np.array([1.0, 7.0, 1.0]), rtol=1e-4)
    assert vw["corr"].iloc[2] == pytest.approx(vd["corr"].iloc[2], rel=1e-3)
    assert vw["variance"].iloc[2] == pytest.approx(7 * vd["variance"].iloc[2], rel=1e-3)
    slope_se = weeks.coef_table()["std_error"].iloc[1]
    assert slope_se == pytest.approx(7 * sleep_fit.coef_table()["std_error"].iloc[1], rel=1e-4)
    np.testing.assert_allclose(weeks.fitted(), sleep_fit.fitted(), rtol=1e-5)


def test_rescaled_predictor_ml():
    days = fit(SLEEP, load("sleepstudy"), reml=False)
    weeks = fit(SLEEP, weeks_data(), reml=False)
    assert weeks.objective == pytest.approx(days.objective, rel=1e-8)
    assert weeks.loglik == pytest.approx(days.loglik, rel=1e-8)
    np.testing.assert_allclose(weeks.beta, days.beta * np.array([1.0, 7.0]), rtol=1e-4)
    np.testing.assert_allclose(weeks.varcorr["sd"].iloc[[0, 1, 3]],
                               days.varcorr["sd"].iloc[[0, 1, 3]] * np.array([1.0, 7.0, 1.0]),
                               rtol=1e-4)


# -- shifting the response ------------------------------------------------------------------

@pytest.mark.parametrize("shift", [1000.0, -250.0])
def test_shifted_response_moves_only_the_intercept(sleep_fit, shift):
    data = load("sleepstudy")
    data["Reaction"] = data["Reaction"] + shift
    shifted = fit(SLEEP, data)
    assert shifted.objective == pytest.approx(sleep_fit.objective, rel=1e-8)
    assert shifted.fixef["(Intercept)"] == pytest.approx(
        sleep_fit.fixef["(Intercept)"] + shift, rel=PARAM_RTOL)
    assert shifted.fixef["Days"] == pytest.approx(sleep_fit.fixef["Days"], rel=PARAM_RTOL)
    np.testing.assert_allclose(shifted.varcorr["variance"], sleep_fit.varcorr["variance"],
                               rtol=PARAM_RTOL)
    np.testing.assert_allclose(shifted.coef_table()["std_error"],
                               sleep_fit.coef_table()["std_error"], rtol=PARAM_RTOL)
    scale = np.abs(sleep_fit.ranef["Subject"].to_numpy()).max()
    np.testing.assert_allclose(shifted.ranef["Subject"].to_numpy(),
                               sleep_fit.ranef["Subject"].to_numpy(), rtol=PARAM_RTOL,
                               atol=PARAM_RTOL * scale)
    y_scale = np.abs(load("sleepstudy")["Reaction"]).max()
    np.testing.assert_allclose(shifted.fitted(), sleep_fit.fitted() + shift, rtol=0,
                               atol=PARAM_RTOL * y_scale)


def test_shifted_response_penicillin(penicillin_fit):
    data = load("Penicillin")
    data["diameter"] = data["diameter"] - 20.0
    shifted = fit(PENICILLIN, data)
    assert shifted.objective == pytest.approx(penicillin_fit.objective, rel=1e-8)
    assert shifted.beta[0] == pytest.approx(penicillin_fit.beta[0] - 20.0, rel=PARAM_RTOL)
    np.testing.assert_allclose(shifted.theta, penicillin_fit.theta, rtol=PARAM_RTOL)


# -- simulation recovery --------------------------------------------------------------------

N_GROUPS, PER_GROUP = 40, 10


def simulate_random_intercept(seed: int, beta0: float, beta1: float, sigma_b: float,
                              sigma: float) -> pd.DataFrame:
    """y = beta0 + beta1 x + b_g + e, b_g ~ N(0, sigma_b^2), e ~ N(0, sigma^2)."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(N_GROUPS), PER_GROUP)
    x = rng.uniform(-2.0, 2.0, size=g.size)
    b = rng.normal(0.0, sigma_b, size=N_GROUPS)
    y = beta0 + beta1 * x + b[g] + rng.normal(0.0, sigma, size=g.size)
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{i:02d}" for i in g]})


# derandomize: the drawn examples are a fixed function of the test (reproducible, no flakes);
# every draw is also a stated numpy seed passed to default_rng.
@settings(max_examples=10, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1),
       beta0=st.floats(-10.0, 10.0), beta1=st.floats(-3.0, 3.0),
       sigma_b=st.floats(1.0, 3.0), sigma=st.floats(0.5, 2.0))
def test_random_intercept_recovery(seed, beta0, beta1, sigma_b, sigma):
    data = simulate_random_intercept(seed, beta0, beta1, sigma_b, sigma)
    result = fit("y ~ x + (1 | g)", data)
    assert result.converged
    table = result.coef_table()
    truth = np.array([beta0, beta1])
    z = np.abs(table["estimate"].to_numpy() - truth) / table["std_error"].to_numpy()
    assert np.all(z < 4), (z, table)
    vc = result.varcorr
    var_b = float(vc.loc[vc["group"] == "g", "variance"].iloc[0])
    var_e = float(vc.loc[vc["group"] == "Residual", "variance"].iloc[0])
    assert sigma_b**2 / 2 < var_b < 2 * sigma_b**2
    assert sigma**2 / 2 < var_e < 2 * sigma**2
    assert result.sigma == pytest.approx(math.sqrt(var_e), rel=1e-12)
    assert result.nobs == N_GROUPS * PER_GROUP
    assert result.ngroups == {"g": N_GROUPS}


def test_recovery_with_many_groups_is_tight():
    # one larger draw (seed 2024): 400 groups x 10; estimates within 4 standard errors and the
    # variance components within 25% (the SE of var_b is about sqrt(2/399) ~ 7%)
    rng = np.random.default_rng(2024)
    beta0, beta1, sigma_b, sigma = 3.0, -1.5, 2.0, 1.0
    g = np.repeat(np.arange(400), 10)
    x = rng.normal(size=g.size)
    y = beta0 + beta1 * x + rng.normal(0, sigma_b, 400)[g] + rng.normal(0, sigma, g.size)
    result = fit("y ~ x + (1 | g)", pd.DataFrame({"y": y, "x": x, "g": g}))
    table = result.coef_table()
    z = np.abs(table["estimate"].to_numpy() - [beta0, beta1]) / table["std_error"].to_numpy()
    assert np.all(z < 4)
    assert result.varcorr["sd"].iloc[0] == pytest.approx(sigma_b, rel=0.25)
    assert result.sigma == pytest.approx(sigma, rel=0.1)
