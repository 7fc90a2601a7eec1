"""PSIS-LOO, WAIC and their comparison (``ml.loo``, ``ml.waic``, ``ml.compare`` of Bayesian fits).

Provenance of the numbers:

- tests/reference/loo/matrices.json: R 4.2.2, loo 2.5.1, written by
  tests/reference/loo/make_loo_refs.R — ``loo(ll, r_eff = 1)``, ``waic(ll)`` and
  ``loo_compare`` on two log-likelihood matrices (a normal model with an outlier, 2 x 500
  draws, 30 observations) that the tests rebuild exactly from the draws stored there.
- tests/reference/loo/sleepstudy_compare.json: the same script, brms 2.18 with its default
  priors, 4 chains x 1000 draws, seed 1: ``loo_compare`` of Reaction ~ Days + (Days | Subject)
  against Reaction ~ Days + (1 | Subject); cbpp_binomial.json: brms's loo and waic of
  incidence | trials(size) ~ period + (1 | herd), binomial, same settings.

Our fits are small (2 chains x 300 draws), so they are compared with brms's within Monte-Carlo
error, and with ArviZ's own loo / waic on the same draws exactly.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

import multilevel as ml
from multilevel.errors import ArgumentError, ModelComparisonError, NumericalError

az = pytest.importorskip("arviz")
pytest.importorskip("numpyro")

from multilevel.bayesian.loo import (  # noqa: E402  (after the extra's import check)
    LooResult,
    LooWarning,
    WaicResult,
    compare_loo,
    psis_loo,
    waic_of,
)

REF = Path(__file__).parent / "reference" / "loo"
MATRICES = json.loads((REF / "matrices.json").read_text())
SLEEP = json.loads((REF / "sleepstudy_compare.json").read_text())
CBPP = json.loads((REF / "cbpp_binomial.json").read_text())
SLOPE = "Reaction ~ Days + (Days | Subject)"
INTERCEPT = "Reaction ~ Days + (1 | Subject)"


# -- R's loo on fixed matrices --------------------------------------------------------------
def _idata(model: str, with_posterior: bool = False) -> object:
    """The reference log-likelihood matrix of model A or B, as (2 chains, 500 draws, 30)."""
    y = np.asarray(MATRICES["y"])
    m = MATRICES[model]
    sigma = np.asarray(m["sigma"])
    mu = np.asarray(m["mu"]) if "mu" in m else np.zeros_like(sigma)
    ll = stats.norm.logpdf(y[None, :], mu[:, None], sigma[:, None])
    shape = (MATRICES["chains"], MATRICES["draws"])
    post = {"mu": mu.reshape(shape), "sigma": sigma.reshape(shape)} if with_posterior else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return az.from_dict(posterior=post, log_likelihood={"y": ll.reshape(*shape, -1)},
                            observed_data={"y": y})


def _fake_fit(model: str, y: np.ndarray | None = None) -> SimpleNamespace:
    """A stand-in with what ``ml.loo`` and ``ml.compare`` read from a Bayesian fit."""
    yy = np.asarray(MATRICES["y"]) if y is None else y
    return SimpleNamespace(kind="bayes", posterior=_idata(model, with_posterior=True),
                           model=SimpleNamespace(nobs=yy.size, y=yy, wt=np.ones(yy.size)))


def _check_estimates(result: LooResult | WaicResult, ref: dict, names: tuple[str, str, str]):
    elpd, p, ic = names
    got = {elpd: (result.elpd, result.se), p: (result.p, result.p_se), ic: (result.ic,
                                                                            result.ic_se)}
    for name, (est, se) in got.items():
        assert est == pytest.approx(ref[name]["estimate"], rel=1e-9), name
        assert se == pytest.approx(ref[name]["se"], rel=1e-9), name


def test_psis_loo_matches_r_loo_on_the_same_matrix():
    res = psis_loo(_idata("A"), reff=1.0)
    _check_estimates(res, MATRICES["A"]["loo"], ("elpd_loo", "p_loo", "looic"))
    np.testing.assert_allclose(res.pareto_k, MATRICES["A"]["pareto_k"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(res.pointwise, MATRICES["A"]["elpd_loo_i"], rtol=1e-12)
    assert (res.n_draws, res.n_obs) == (1000, 30)
    # the outlier (last observation) is the one with k > 0.7, as loo reports
    assert res.n_bad == 1 and res.n_very_bad == 0
    assert res.bad_observations.tolist() == [29]


def test_waic_matches_r_waic_on_the_same_matrix():
    res = waic_of(_idata("A"))
    _check_estimates(res, MATRICES["A"]["waic"], ("elpd_waic", "p_waic", "waic"))
    assert res.n_bad >= 1  # the outlier's p_waic_i is above 0.4 (R warns too)


def test_compare_loo_matches_r_loo_compare():
    a, b = psis_loo(_idata("A"), reff=1.0), psis_loo(_idata("B"), reff=1.0)
    _check_estimates(b, MATRICES["B"]["loo"], ("elpd_loo", "p_loo", "looic"))
    ref = MATRICES["compare"]
    for order in (["A", "B"], ["B", "A"]):
        results = {"A": a, "B": b}
        table = compare_loo([results[k] for k in order], order)
        assert list(table.index) == ref["models"]
        np.testing.assert_allclose(table["elpd_diff"], ref["elpd_diff"], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(table["se_diff"], ref["se_diff"], rtol=1e-9, atol=1e-12)
        assert table.loc["B", "looic"] == pytest.approx(MATRICES["B"]["loo"]["looic"]["estimate"])


def test_loo_print_and_dict():
    res = psis_loo(_idata("A"), reff=1.0)
    text = str(res)
    assert text.startswith("Computed from 1000 by 30 log-likelihood matrix\n")
    lines = text.splitlines()
    elpd = next(line for line in lines if line.startswith("elpd_loo")).split()
    assert elpd == ["elpd_loo", "-59.4", "9.2"]  # R: -59.4 9.2
    assert next(line for line in lines if line.startswith("looic")).split() == [
        "looic", "118.7", "18.4"]
    assert "Pareto k diagnostic values:" in text
    counts = {line[:11].strip(): int(line.split()[-2])
              for line in lines if line.strip().startswith("(") and "%" in line}
    assert counts == {"(-Inf, 0.5]": 29, "(0.5, 0.7]": 0, "(0.7, 1]": 1, "(1, Inf)": 0}
    d = json.loads(json.dumps(res.to_dict()))
    assert d["elpd_loo"] == pytest.approx(res.elpd) and d["n_bad"] == 1
    assert len(d["pareto_k"]) == 30
    assert "<table>" in res._repr_html_()
    with pytest.raises(ValueError, match="read-only"):
        res.pareto_k[0] = 0.0  # the result is immutable, its arrays too
    w = waic_of(_idata("A"))
    assert "p_waic estimates greater than 0.4" in str(w)
    assert json.loads(json.dumps(w.to_dict()))["criterion"] == "waic"


def test_loo_warns_on_large_pareto_k_and_waic_on_large_p_waic():
    fit = _fake_fit("A")
    with pytest.warns(LooWarning, match=r"1 observations with a Pareto k above 0\.7 "
                                        r"\(observations 29.*reloo.*k-fold"):
        res = ml.loo(fit)
    assert isinstance(res, LooResult) and res.n_bad == 1
    with pytest.warns(LooWarning, match="p_waic above 0.4"):
        assert isinstance(ml.waic(fit), WaicResult)


def test_compare_refuses_mixed_kinds_and_different_data():
    lmm = ml.lmer(INTERCEPT, ml.datasets.load("sleepstudy"))
    with pytest.raises(ModelComparisonError, match="not a Bayesian fit"):
        ml.compare(_fake_fit("A"), lmm)
    with pytest.raises(ModelComparisonError, match="not a Bayesian fit"):
        ml.compare(lmm, _fake_fit("A"))
    y = np.asarray(MATRICES["y"])
    with pytest.raises(ModelComparisonError, match="different responses"):
        ml.compare(_fake_fit("A"), _fake_fit("B", y=y + 1.0))
    with pytest.raises(ModelComparisonError, match="same observations"):
        ml.compare(_fake_fit("A"), _fake_fit("B", y=y[:-1]))
    with pytest.raises(ModelComparisonError, match="PSIS-LOO"):
        ml.anova(_fake_fit("A"), _fake_fit("B"))
    with pytest.raises(ArgumentError, match="distinct"):
        ml.compare(_fake_fit("A"), _fake_fit("B"), names=["a", "a"])
    with pytest.raises(ArgumentError, match="Bayesian fit"):
        ml.loo(lmm)
    with pytest.raises(ArgumentError, match="Bayesian fit"):
        ml.waic(lmm)
    bad = _fake_fit("A")
    bad.posterior.log_likelihood["y"][0, 3, 5] = -np.inf
    with pytest.raises(NumericalError, match="not finite for observations 5 "):
        ml.loo(bad)


# -- real fits ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fits():
    data = ml.datasets.load("sleepstudy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short chains: the sampler's ESS warnings
        slope = ml.bayes(SLOPE, data, chains=2, draws=300, warmup=300, seed=1, progress=False)
        intercept = ml.bayes(INTERCEPT, data, chains=2, draws=300, warmup=300, seed=1,
                             progress=False)
    return slope, intercept


def _quiet_loo(fit):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LooWarning)
        return ml.loo(fit)


def test_loo_and_waic_are_arvizs_on_the_fit(fits):
    slope, _ = fits
    res = _quiet_loo(slope)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = az.loo(slope.posterior, pointwise=True)
        ref_w = az.waic(slope.posterior, pointwise=True)
    n = slope.nobs
    assert res.elpd == pytest.approx(ref.elpd_loo, rel=1e-12)
    assert res.p == pytest.approx(ref.p_loo, rel=1e-9)
    # loo's standard error uses the n - 1 variance, ArviZ's the n one
    assert res.se == pytest.approx(ref.se * math.sqrt(n / (n - 1)), rel=1e-9)
    np.testing.assert_allclose(res.pareto_k, ref.pareto_k.values, rtol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LooWarning)
        w = slope.waic()
    # loo's p_waic_i divides the variance by S - 1, ArviZ's by S
    s = res.n_draws
    assert w.p == pytest.approx(ref_w.p_waic * s / (s - 1), rel=1e-9)
    assert w.elpd == pytest.approx(ref_w.elpd_waic - ref_w.p_waic / (s - 1), rel=1e-12)
    assert (res.n_draws, res.n_obs) == (600, 180)


def test_loo_properties_on_the_fit(fits):
    slope, intercept = fits
    for fit in fits:
        res = _quiet_loo(fit)
        ll = np.asarray(fit.posterior.log_likelihood["y"].values).reshape(-1, fit.nobs)
        lppd = logsumexp(ll, axis=0) - math.log(ll.shape[0])
        # elpd_loo = lppd - p_loo, and leaving an observation out can only predict it worse
        assert res.elpd == pytest.approx(lppd.sum() - res.p, rel=1e-10)
        assert np.all(res.pointwise <= lppd + 1e-9)
        # p_loo is positive and below the number of parameters: fixed effects, SDs and
        # correlations, sigma, and one effect per group and term
        n_group_effects = sum(len(b.levels) * b.k for b in fit.model.blocks)
        n_params = len(fit.fixed_names) + len(fit.varcorr) + n_group_effects
        assert 0 < res.p < n_params
        # where the Pareto fit is good, plain importance sampling (weights 1 / p(y_i | theta))
        # agrees with the smoothed estimate
        good = res.pareto_k < 0.5
        raw = -(logsumexp(-ll, axis=0) - math.log(ll.shape[0]))
        np.testing.assert_allclose(res.pointwise[good], raw[good], atol=0.05)
        # WAIC and PSIS-LOO estimate the same quantity
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LooWarning)
            assert abs(ml.waic(fit).elpd - res.elpd) < 2.0


def test_compare_sleepstudy_as_brms(fits):
    slope, intercept = fits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LooWarning)
        table = ml.compare(intercept, slope, names=["intercept", "slope"])
    assert list(table.index) == ["slope", "intercept"]
    assert list(table.columns[:6]) == ["elpd_diff", "se_diff", "elpd_loo", "se_elpd_loo",
                                       "p_loo", "se_p_loo"]
    ref = SLEEP["compare"]
    assert ref["models"] == ["slope", "intercept"]
    diff, se = table.loc["intercept", ["elpd_diff", "se_diff"]]
    assert table.loc["slope", "elpd_diff"] == 0.0 and table.loc["slope", "se_diff"] == 0.0
    # the random-slope model wins clearly, as in brms
    assert diff < -1.5 * se  # brms: -23.8 with se_diff 11.8
    # brms's elpd_diff (ref["elpd_diff"][1]) within Monte-Carlo error of our short chains
    assert diff == pytest.approx(ref["elpd_diff"][1], abs=4.0)
    assert se == pytest.approx(ref["se_diff"][1], rel=0.25)
    for name in ("slope", "intercept"):
        brms = SLEEP[name]["loo"]
        assert table.loc[name, "elpd_loo"] == pytest.approx(brms["elpd_loo"]["estimate"], abs=4.0)
        assert table.loc[name, "p_loo"] == pytest.approx(brms["p_loo"]["estimate"], abs=4.0)


def test_binomial_loo_and_waic_as_brms():
    """brms's binomial log-likelihood includes log choose(size, incidence); ours must too for
    WAIC (which has no Pareto tail to make it noisy) to agree within Monte-Carlo error."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = ml.bayes("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                       ml.datasets.load("cbpp"), family="binomial", chains=2, draws=300,
                       warmup=300, seed=1, progress=False)
        w = ml.waic(fit)
        res = ml.loo(fit)
    assert w.elpd == pytest.approx(CBPP["waic"]["elpd_waic"]["estimate"], abs=1.5)  # -97.3
    assert w.p == pytest.approx(CBPP["waic"]["p_waic"]["estimate"], abs=1.5)  # 19.5
    assert w.se == pytest.approx(CBPP["waic"]["elpd_waic"]["se"], rel=0.1)
    # PSIS-LOO with several k > 0.7 (brms: 6 of 56) is noisier
    assert res.elpd == pytest.approx(CBPP["loo"]["elpd_loo"]["estimate"], abs=4.0)  # -100.0
    assert res.n_bad >= 1
