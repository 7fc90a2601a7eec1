"""Likelihood-ratio tests and information-criterion rankings against lme4's anova().

Reference tables: tests/reference/lme4_anova/anova.json, written by
tests/reference/make_lme4_anova_refs.R (R 4.2.2, lme4 1.1-31); each case stores its R calls.
Targets: chi-square 1e-5 relative, log-likelihood / AIC / BIC 1e-6, p-values 1e-2 relative.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import multilevel as ml
from multilevel.errors import ModelComparisonError, MultilevelError

REF = json.loads((Path(__file__).parent / "reference" / "lme4_anova" / "anova.json").read_text())
FORMULAS = {
    "sleepstudy_random_slope": ("sleepstudy", ["Reaction ~ Days + (1 | Subject)",
                                               "Reaction ~ Days + (Days | Subject)"], True),
    "sleepstudy_fixed_days": ("sleepstudy", ["Reaction ~ 1 + (Days | Subject)",
                                             "Reaction ~ Days + (Days | Subject)"], True),
    "sleepstudy_three": ("sleepstudy", ["Reaction ~ 1 + (1 | Subject)",
                                        "Reaction ~ Days + (1 | Subject)",
                                        "Reaction ~ Days + (Days | Subject)"], True),
    "penicillin_sample": ("Penicillin", ["diameter ~ 1 + (1 | plate)",
                                         "diameter ~ 1 + (1 | plate) + (1 | sample)"], False),
}


def _fits(case: str) -> list[ml.LinearMixedModelResult]:
    dataset, formulas, reml = FORMULAS[case]
    df = ml.datasets.load(dataset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ml.errors.MultilevelWarning)
        return [ml.lmer(f, df, reml=reml) for f in formulas]


@pytest.mark.parametrize("case", sorted(FORMULAS))
def test_anova_matches_lme4(case):
    ref = REF["cases"][case]["table"]
    table = ml.anova(*_fits(case))
    assert list(table["npar"]) == ref["npar"]
    for ours, theirs in (("aic", "AIC"), ("bic", "BIC"), ("loglik", "logLik"),
                         ("deviance", "deviance")):
        np.testing.assert_allclose(table[ours], ref[theirs], rtol=1e-6)
    np.testing.assert_allclose(table["chisq"].iloc[1:], ref["Chisq"][1:], rtol=1e-5)
    np.testing.assert_array_equal(table["df"].iloc[1:], ref["Df"][1:])
    np.testing.assert_allclose(table["p_value"].iloc[1:], ref["Pr..Chisq."][1:], rtol=1e-2)
    assert np.isnan(table["chisq"].iloc[0])


def test_reml_fits_are_refitted_and_reported():
    table = ml.anova(*_fits("sleepstudy_random_slope"), names=["m0", "m1"])
    assert table.attrs["refitted_ml"] == ["m0", "m1"]
    assert table.attrs["criterion"] == "ML"
    assert list(table.index) == ["m0", "m1"]


def test_boundary_p_value_is_the_chi_bar_square_mixture():
    """Adding a random slope with its covariance (2 parameters) tests a variance on its
    boundary: p = 0.5 P(chi2_2 > x) + 0.5 P(chi2_1 > x); adding one variance:
    0.5 P(chi2_1 > x) (Stram & Lee 1994)."""
    t = ml.anova(*_fits("sleepstudy_random_slope"))
    x = t["chisq"].iloc[1]
    expected = 0.5 * stats.chi2.sf(x, 2) + 0.5 * stats.chi2.sf(x, 1)
    assert t["p_value_boundary"].iloc[1] == pytest.approx(expected, rel=1e-12)
    t = ml.anova(*_fits("penicillin_sample"))
    x = t["chisq"].iloc[1]
    assert t["p_value_boundary"].iloc[1] == pytest.approx(0.5 * stats.chi2.sf(x, 1),
                                                          rel=1e-12)
    # a fixed-effect test has no boundary problem
    t = ml.anova(*_fits("sleepstudy_fixed_days"))
    assert np.isnan(t["p_value_boundary"].iloc[1])


def test_models_are_ordered_by_parameters():
    fits = _fits("sleepstudy_three")
    table = ml.anova(fits[2], fits[0], fits[1], names=["big", "small", "mid"])
    assert list(table.index) == ["small", "mid", "big"]


def test_compare_ranks_by_aic_with_weights():
    fits = _fits("sleepstudy_three")
    table = ml.compare(*fits)
    assert list(table.index) == ["m3", "m2", "m1"]  # AIC 1763.9 < 1802.1 < 1916.5 (lme4)
    assert table["aic_weight"].sum() == pytest.approx(1.0)
    assert table["bic_weight"].sum() == pytest.approx(1.0)
    d = table["delta_aic"].to_numpy()
    w = np.exp(-d / 2) / np.exp(-d / 2).sum()
    np.testing.assert_allclose(table["aic_weight"], w)
    ref = REF["cases"]["sleepstudy_three"]["table"]
    np.testing.assert_allclose(sorted(table["aic"]), sorted(ref["AIC"]), rtol=1e-6)


def test_refit_false_keeps_reml_when_fixed_effects_agree():
    m0, m1 = _fits("sleepstudy_random_slope")
    table = ml.anova(m0, m1, refit=False)
    assert table.attrs["refitted_ml"] == []
    assert table["loglik"].iloc[1] == pytest.approx(m1.loglik)


def test_refit_false_with_different_fixed_effects_is_an_error():
    m2, m1 = _fits("sleepstudy_fixed_days")
    with pytest.raises(ModelComparisonError, match="refit=True"):
        ml.anova(m2, m1, refit=False)


def test_models_on_different_rows_are_refused():
    df = ml.datasets.load("sleepstudy")
    short = df.copy()
    short.loc[0, "Days"] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ml.errors.MultilevelWarning)
        a = ml.lmer("Reaction ~ 1 + (1 | Subject)", df)
        b = ml.lmer("Reaction ~ Days + (1 | Subject)", short)
    with pytest.raises(ModelComparisonError, match="same observations"):
        ml.anova(a, b)


def test_non_nested_models_are_refused():
    df = ml.datasets.load("sleepstudy")
    df["Week"] = df["Days"] // 7
    a = ml.lmer("Reaction ~ Days + (1 | Subject)", df, reml=False)
    b = ml.lmer("Reaction ~ Week + (Days | Subject)", df, reml=False)
    with pytest.raises(ModelComparisonError, match="nested"):
        ml.anova(a, b)


def test_one_model_is_not_a_comparison():
    (m,) = _fits("sleepstudy_random_slope")[:1]
    with pytest.raises(MultilevelError, match="two or more"):
        ml.compare(m)
