"""glmer against lme4 and glmmTMB reference fits (tests/reference/glmm, made by
tests/reference/make_glmm_refs.R; the data sets are in tests/reference/data).

Issue 7's agreement targets: the log-likelihood within 1e-6 relative or higher than lme4's
(lme4's default PIRLS tolerance leaves its Laplace deviance up to ~1e-3 above the tightly
solved one, so our optimum is often better: each such case is named below), fixed effects
within 1e-2 of their standard error, random-effect SDs within 1e-3 relative, conditional modes
within 1e-3. glmmTMB solves the inner problem tightly, so against it the log-likelihood and the
standard errors agree to 1e-6 and 1e-3 relative.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

import multilevel as ml
from multilevel.families import Binomial, Gamma

from reference_data import REF, load_data, load_ref


@dataclass(frozen=True)
class Case:
    id: str
    family: Any
    options: dict[str, Any] = field(default_factory=dict)
    # lme4's default tolerance leaves its deviance above ours (our log-likelihood is higher):
    # the largest gap seen, for the "or better" part of the target
    better_by_at_most: float = 0.0
    # glmmTMB and tight cases: standard errors within 1e-3 relative
    exact_se: bool = False


CASES = [
    Case("cbpp_prop_weights", "binomial", {"weights": "size"}, better_by_at_most=1e-3),
    Case("cbpp_nagq0", "binomial", {"nagq": 0}, better_by_at_most=1e-4),
    Case("cbpp_probit", Binomial(link="probit"), better_by_at_most=1e-4),
    Case("cbpp_cloglog", Binomial(link="cloglog"), better_by_at_most=1e-4),
    Case("rates_offset_poisson", "poisson", better_by_at_most=1e-3),
    Case("contraception_intercept", "binomial", better_by_at_most=1e-4),
    Case("contraception_rev_levels", "binomial", better_by_at_most=1e-4),
    Case("contraception_slope", "binomial", better_by_at_most=1e-3),
    Case("grouseticks_poisson", "poisson", better_by_at_most=1e-4),
    Case("verbagg", "binomial", better_by_at_most=1e-3),
    Case("gamma_log_glmmtmb", Gamma(link="log"), exact_se=True),
    Case("nb2_glmmtmb", "negative_binomial", exact_se=True),
    Case("nb2_glmernb", "negative_binomial", {"laplace": "expected"}, better_by_at_most=1e-4),
]


def _data(ref: dict[str, Any]):
    name = ref["data_file"].split("/")[-1].removesuffix(".csv")
    return load_data(name)


@pytest.fixture(scope="module", params=CASES, ids=lambda c: c.id)
def fitted(request: pytest.FixtureRequest):
    case: Case = request.param
    ref = load_ref(REF / "glmm" / f"{case.id}.json")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none of these fits may warn
        fit = ml.glmer(ref["formula"], _data(ref), family=case.family, **case.options)
    return case, ref, fit


def test_loglik(fitted):
    case, ref, fit = fitted
    gap = fit.loglik - ref["logLik"]
    assert gap >= -1e-6 * abs(ref["logLik"])
    assert gap <= max(case.better_by_at_most, 1e-6 * abs(ref["logLik"]))


def test_fixed_effects_within_a_hundredth_of_their_se(fitted):
    _, ref, fit = fitted
    est = fit.fixef[list(ref["fixef"])].to_numpy()
    se = np.array(list(ref["fixef_se"].values()))
    assert np.max(np.abs(est - np.array(list(ref["fixef"].values()))) / se) < 1e-2


def test_standard_errors(fitted):
    case, ref, fit = fitted
    se = np.sqrt(np.diag(fit.vcov.loc[list(ref["fixef"]), list(ref["fixef"])]))
    rel = np.max(np.abs(se / np.array(list(ref["fixef_se"].values())) - 1))
    # lme4's Hessian is taken on its loosely solved deviance (see the tight references)
    assert rel < (1e-3 if case.exact_se else 2e-2)


def test_random_effect_sds_and_correlations(fitted):
    _, ref, fit = fitted
    vc = fit.varcorr
    for row in ref["varcomp"]:
        if row["group"] == "Residual":
            continue
        group = row["group"]
        if row["term2"] is None:
            ours = vc[(vc.group == group) & (vc.term1 == row["term1"]) & vc.term2.isna()]
            assert ours["sd"].iloc[0] == pytest.approx(row["sd"], rel=1e-3)
        else:
            ours = vc[(vc.group == group) & (vc.term1 == row["term1"])
                      & (vc.term2 == row["term2"])]
            assert ours["corr"].iloc[0] == pytest.approx(row["corr"], abs=1e-3)


def test_conditional_modes(fitted):
    _, ref, fit = fitted
    frame = fit.ranef_frame()
    ours = {(r.group, r.term, r.level): r.condval for r in frame.itertuples()}
    worst = max(abs(ours[(r["group"], r["term"], str(r["level"]))] - r["condval"])
                for r in ref["ranef"])
    assert worst < 1e-3


def test_family_parameters(fitted):
    case, ref, fit = fitted
    if ref.get("nb_size") is not None:
        assert fit.nb_size == pytest.approx(ref["nb_size"], rel=1e-3)
    if case.id == "gamma_log_glmmtmb":  # glmmTMB's sigma: sqrt of the dispersion
        assert fit.sigma == pytest.approx(ref["sigma"], rel=1e-3)
        assert fit.n_params == 4 and fit.aic == pytest.approx(ref["AIC"], rel=1e-6)


def test_agq_loglik_includes_the_saturated_term():
    """lme4's nAGQ = 5 logLik leaves out the saturated-model term; ours includes it (the
    reference records both, and the exact marginal likelihood by numerical integration)."""
    ref = load_ref(REF / "glmm" / "cbpp_nagq5.json")
    fit = ml.glmer(ref["formula"], _data(ref), family="binomial", nagq=5)
    assert ref["logLik_omits_saturated_term"]
    assert fit.loglik == pytest.approx(ref["logLik_complete"], rel=1e-6)
    assert fit.loglik == pytest.approx(
        ref["marginal_quadrature"]["logLik_marginal_quadrature"], abs=2e-3)
    assert fit.theta[0] == pytest.approx(ref["theta"]["herd.(Intercept)"], rel=1e-4)


# -- against lme4 with its PIRLS solved tightly (glmerControl(tolPwrss = 1e-12);
#    tests/reference/make_glmm_tight_refs.R): the same criterion as ours, so the targets are
#    the strict ones for every number, standard errors included (1e-3 relative).
TIGHT = [
    Case("cbpp_laplace", "binomial"),
    Case("cbpp_agq25", "binomial", {"nagq": 25}),
    Case("cbpp_nagq0", "binomial", {"nagq": 0}),
    Case("cbpp_nagq5", "binomial", {"nagq": 5}),
    Case("cbpp_prop_weights", "binomial", {"weights": "size"}),
    Case("cbpp_probit", Binomial(link="probit")),
    Case("cbpp_cloglog", Binomial(link="cloglog")),
    Case("grouseticks_poisson", "poisson"),
    Case("rates_offset_poisson", "poisson"),
    Case("contraception_slope", "binomial"),
    Case("contraception_intercept", "binomial"),
    Case("verbagg_bobyqa", "binomial"),
    Case("nb2_glmernb", "negative_binomial", {"laplace": "expected"}),
    Case("poisson_crossed", "poisson"),
]


# Standard errors: 1e-3 relative, except where lme4's own Hessian is off. Its finite
# differences (step 1e-4) see its deviance with the conditional modes not re-solved (see
# tests/reference/check_lme4_hessian_smoothness.R: along x in poisson_crossed lme4's second
# difference is 11096 at step 1e-2, as ours at every step, but 11141 at 1e-4), so its SEs come
# out smaller by up to the amounts below; glmer.nb's size comes from its own 1-D search
# (tolerance 5e-5), which its SEs carry.
SE_ALLOWANCE = {"poisson_crossed": 3e-3, "contraception_slope": 4e-3,
                "grouseticks_poisson": 2e-2, "nb2_glmernb": 3e-3}


@pytest.fixture(scope="module", params=TIGHT, ids=lambda c: c.id)
def tight(request: pytest.FixtureRequest):
    case: Case = request.param
    ref = load_ref(REF / "glmm_tight" / f"{case.id}.json")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = ml.glmer(ref["formula"], _data(ref), family=case.family, **case.options)
    return case, ref, fit


def test_tight_loglik_is_lme4s(tight):
    """The complete log-likelihood (for nAGQ > 1 lme4's plus its saturated-model term)."""
    _, ref, fit = tight
    assert fit.loglik == pytest.approx(ref["logLik_complete"], rel=1e-6, abs=1e-6)


def test_tight_estimates_and_standard_errors(tight):
    case, ref, fit = tight
    names = list(ref["fixef"])
    ref_fe = np.array(list(ref["fixef"].values()))
    ref_se = np.array(list(ref["fixef_se"].values()))
    assert np.max(np.abs(fit.fixef[names].to_numpy() - ref_fe) / ref_se) < 1e-2
    se = np.sqrt(np.diag(fit.vcov.loc[names, names]))
    assert np.max(np.abs(se / ref_se - 1)) < SE_ALLOWANCE.get(case.id, 1e-3)
    sds = [r["sd"] for r in ref["varcomp"] if r["term2"] is None and r["group"] != "Residual"]
    ours = fit.varcorr.loc[fit.varcorr.term2.isna(), "sd"].to_numpy()
    assert sorted(ours) == pytest.approx(sorted(sds), rel=1e-3)


def test_tight_conditional_modes_and_sds(tight):
    _, ref, fit = tight
    frame = fit.ranef_frame()
    ours = {(r.group, r.term, r.level): (r.condval, r.condsd) for r in frame.itertuples()}
    for r in ref["ranef"]:
        val, sd = ours[(r["group"], r["term"], str(r["level"]))]
        assert val == pytest.approx(r["condval"], abs=1e-3)
        assert sd == pytest.approx(r["condsd"], rel=1e-2)


# -- four classic GLMM data sets against lme4 with its PIRLS solved tightly
#    (tests/reference/make_glmm_extra_refs.R -> tests/reference/glmm_extra). lme4 converges on
#    bacteria and epil; on salamanders it stops a little short (max|grad| 0.0046 warning) and on
#    guimmun far short (max|grad| 0.29: it does not converge).
@dataclass(frozen=True)
class Extra:
    id: str
    family: str
    # the log-likelihood: within 1e-6 relative of lme4's, or higher by `higher_by` (lo, hi)
    higher_by: tuple[float, float] | None = None
    lme4_converged: bool = True
    se_rel: float | None = 1e-3  # None: lme4's SEs are taken at its unconverged point


EXTRA = [
    # measured: ours - lme4 = +3.0e-9 (-96.13068682)
    Extra("bacteria", "binomial"),
    # measured: +1.3e-8 (-665.47442608)
    Extra("epil", "poisson"),
    # measured: ours higher by 3.05e-5 (-955.12487764 vs -955.12490814): lme4 stops short; its
    # Hessian-based SEs, taken there, differ from ours by up to 2.4e-3 relative
    Extra("salamanders", "poisson", higher_by=(1e-5, 1e-4), se_rel=5e-3),
    # measured: ours higher by 0.0524 (-1355.70089620 vs -1355.75325570): lme4 did not converge,
    # so its estimates (up to 0.2 SE away from ours) and SEs are not a target
    Extra("guimmun", "binomial", higher_by=(0.05, 0.1), lme4_converged=False, se_rel=None),
]


@pytest.fixture(scope="module", params=EXTRA, ids=lambda c: c.id)
def extra(request: pytest.FixtureRequest):
    case: Extra = request.param
    ref = load_ref(REF / "glmm_extra" / f"{case.id}.json")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = ml.glmer(ref["formula"], _data(ref), family=case.family)
    return case, ref, fit


def test_extra_coefficient_names_are_lme4s(extra):
    _, ref, fit = extra
    assert list(fit.fixef.index) == list(ref["fixef"])


def test_extra_loglik(extra):
    case, ref, fit = extra
    gap = fit.loglik - ref["logLik"]
    if case.higher_by is None:
        assert abs(gap) <= 1e-6 * abs(ref["logLik"])
    else:
        assert case.higher_by[0] <= gap <= case.higher_by[1]
    if not case.lme4_converged:
        assert ref["fit_warnings"]  # lme4's own non-convergence warning, recorded
        assert fit.converged


@pytest.mark.parametrize("case", [c for c in EXTRA if c.lme4_converged], ids=lambda c: c.id)
def test_extra_estimates_standard_errors_and_sds(case: Extra):
    """Where lme4 converged (guimmun's estimates are no target: lme4 stopped short)."""
    ref = load_ref(REF / "glmm_extra" / f"{case.id}.json")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = ml.glmer(ref["formula"], _data(ref), family=case.family)
    names = list(ref["fixef"])
    ref_fe = np.array(list(ref["fixef"].values()))
    ref_se = np.array(list(ref["fixef_se"].values()))
    assert np.max(np.abs(fit.fixef[names].to_numpy() - ref_fe) / ref_se) < 1e-2
    if case.se_rel is not None:
        se = np.sqrt(np.diag(fit.vcov.loc[names, names]))
        assert np.max(np.abs(se / ref_se - 1)) < case.se_rel
    sds = [r["sd"] for r in ref["varcomp"] if r["term2"] is None]
    ours = fit.varcorr.loc[fit.varcorr.term2.isna(), "sd"].to_numpy()
    assert sorted(ours) == pytest.approx(sorted(sds), rel=1e-3)
    frame = fit.ranef_frame()
    modes = {(r.group, r.term, r.level): r.condval for r in frame.itertuples()}
    worst = max(abs(modes[(r["group"], r["term"], str(r["level"]))] - r["condval"])
                for r in ref["ranef"])
    assert worst < 1e-3  # measured: at most 4e-5
