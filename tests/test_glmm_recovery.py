"""Simulation recovery for every GLMM family: draw responses from known parameters (fixed
seeds, the family's own ``simulate``), fit, and find the parameters again.

Each case is fitted on four seeds. Per fit: converged, every fixed effect within 4 standard
errors of the truth, the random-effect SD, dispersion and negative binomial size within wide
bounds. Pooled over the seeds (what catches a bias or standard errors that are too small): the
mean z statistic within 2 (four standard errors of a mean of four), the mean squared z below
3.5 (the 0.999 quantile of chi^2 / df for 8 degrees of freedom is 3.27), the mean SD within
20% of the truth, the dispersion within 10% and the size within 25%.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pytest

import multilevel as ml
from multilevel.families import (
    Binomial,
    Family,
    Gamma,
    InverseGaussian,
    NegativeBinomial,
    Poisson,
)

SEEDS = (1, 2, 3, 4)


@dataclass(frozen=True)
class Case:
    """One simulation design: y | b from ``family`` with eta = b0 + b1 x + offset + u_g,
    u_g ~ N(0, sd^2)."""

    family: Family
    beta: tuple[float, float]
    sd: float
    groups: int = 40
    per_group: int = 15
    dispersion: float | None = None
    trials: int | None = None  # binomial: 1..trials per row, as weights
    exposure: bool = False  # Poisson: offset log(exposure), exposure ~ U(0.5, 3)
    fit_family: Any = None  # what glmer is given (default: family)
    fit: dict[str, Any] = field(default_factory=dict)
    formula: str = "y ~ x + (1 | g)"


CASES = {
    "binomial_0_1": Case(Binomial(), (-0.5, 1.0), 0.8, per_group=25),
    "binomial_trials": Case(Binomial(), (-0.3, 0.7), 0.6, per_group=10, trials=10,
                            fit={"weights": "n"}),
    "binomial_cbind": Case(Binomial(link="probit"), (-0.2, 0.4), 0.5, per_group=10,
                           trials=10, formula="cbind(s, n - s) ~ x + (1 | g)"),
    "poisson_offset": Case(Poisson(), (0.5, 0.3), 0.5, exposure=True,
                           fit={"offset": "log_exposure"}),
    "gamma": Case(Gamma(link="log"), (1.0, 0.5), 0.4, dispersion=0.25),
    "inverse_gaussian": Case(InverseGaussian(link="log"), (1.0, 0.3), 0.3, dispersion=0.05),
    "negative_binomial": Case(NegativeBinomial(theta=3.0), (1.0, 0.5), 0.5,
                              fit_family="negative_binomial"),
}


def simulate(case: Case, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = case.groups * case.per_group
    g = np.repeat(np.arange(case.groups), case.per_group)
    x = rng.normal(size=n)
    u = rng.normal(0.0, case.sd, case.groups)
    eta = case.beta[0] + case.beta[1] * x + u[g]
    df = pd.DataFrame({"g": [f"G{i:03d}" for i in g], "x": x})
    if case.exposure:
        df["log_exposure"] = np.log(rng.uniform(0.5, 3.0, n))
        eta = eta + df["log_exposure"].to_numpy()
    trials = None if case.trials is None else rng.integers(1, case.trials + 1, n).astype(float)
    y = case.family.simulate(case.family.link.inverse(eta), trials, case.dispersion, rng)
    df["y"] = y
    if trials is not None:
        df["n"] = trials
        df["s"] = np.round(y * trials)
    return df


def fit(case: Case, seed: int) -> ml.GeneralizedLinearMixedModelResult:
    fam = case.family if case.fit_family is None else case.fit_family
    with warnings.catch_warnings():
        warnings.simplefilter("error", ml.errors.ConvergenceWarning)
        return ml.glmer(case.formula, simulate(case, seed), family=fam, **case.fit)


@pytest.mark.parametrize("name", list(CASES))
def test_recovery(name: str) -> None:
    case = CASES[name]
    fits = [fit(case, seed) for seed in SEEDS]
    z = np.array([(f.beta - np.array(case.beta)) / f.coef_table()["std_error"].to_numpy()
                  for f in fits])
    sds = np.array([float(f.varcorr["sd"].iloc[0]) for f in fits])
    for f, zf, sd in zip(fits, z, sds, strict=True):
        assert f.converged, f.optsum.messages
        assert np.all(np.abs(zf) < 4), zf
        assert sd == pytest.approx(case.sd, rel=0.5)
        assert f.fixed_names == ["(Intercept)", "x"]
    assert np.all(np.abs(z.mean(axis=0)) < 2), z
    assert float(np.mean(z ** 2)) < 3.5, z
    assert sds.mean() == pytest.approx(case.sd, rel=0.2)
    if case.dispersion is not None:
        phi = np.array([f.dispersion for f in fits])
        assert np.all(np.abs(phi / case.dispersion - 1) < 0.25), phi
        assert phi.mean() == pytest.approx(case.dispersion, rel=0.1)
        assert fits[0].sigma == pytest.approx(np.sqrt(phi[0]))
    else:
        assert all(f.dispersion == 1.0 for f in fits)
    if isinstance(case.family, NegativeBinomial):
        size = np.array([f.nb_size for f in fits], dtype=float)
        assert np.all(np.abs(size / 3.0 - 1) < 0.5), size
        assert size.mean() == pytest.approx(3.0, rel=0.25)


def test_proportions_with_weights_and_cbind_are_one_fit() -> None:
    # the same binomial data given two ways (R's two ways) is the same model
    case = CASES["binomial_trials"]
    df = simulate(case, SEEDS[0])
    a = ml.glmer("y ~ x + (1 | g)", df, weights="n")
    b = ml.glmer("cbind(s, n - s) ~ x + (1 | g)", df)
    assert a.loglik == pytest.approx(b.loglik, rel=1e-12)
    np.testing.assert_allclose(a.beta, b.beta, rtol=1e-9)
    np.testing.assert_allclose(a.theta, b.theta, rtol=1e-9)
    np.testing.assert_allclose(a.vcov.to_numpy(), b.vcov.to_numpy(), rtol=1e-6)


def test_recovery_of_a_correlated_random_slope() -> None:
    # binary responses, (1 + x | g): SDs 0.8 and 0.5, correlation 0.3; 60 groups of 20
    sd0, sd1, rho, beta = 0.8, 0.5, 0.3, np.array([-0.4, 0.8])
    cov = np.array([[sd0 ** 2, rho * sd0 * sd1], [rho * sd0 * sd1, sd1 ** 2]])
    estimates = []
    for seed in (5, 6):
        rng = np.random.default_rng(seed)
        groups, per = 60, 20
        g = np.repeat(np.arange(groups), per)
        x = rng.normal(size=groups * per)
        b = rng.multivariate_normal(np.zeros(2), cov, groups)
        eta = beta[0] + b[g, 0] + (beta[1] + b[g, 1]) * x
        y = rng.binomial(1, 1 / (1 + np.exp(-eta))).astype(float)
        df = pd.DataFrame({"g": [f"G{i}" for i in g], "x": x, "y": y})
        f = ml.glmer("y ~ x + (1 + x | g)", df)
        assert f.converged, f.optsum.messages
        ct = f.coef_table()
        assert np.all(np.abs((ct["estimate"] - beta) / ct["std_error"]) < 4)
        vc = f.varcorr
        sd = vc[vc["term2"].isna() & (vc["group"] == "g")]["sd"].to_numpy()
        corr = float(vc[vc["term2"].notna() & (vc["group"] == "g")]["corr"].iloc[0])
        estimates.append([*sd, corr])
    sd0_hat, sd1_hat, corr_hat = np.mean(estimates, axis=0)
    assert sd0_hat == pytest.approx(sd0, rel=0.25)
    assert sd1_hat == pytest.approx(sd1, rel=0.4)
    assert abs(corr_hat - rho) < 0.45
