"""F tests with Satterthwaite df against lmerTest 3.1-3's anova(m, type = 3).

References: tests/reference/lmertest_anova/anova.json, written by
tests/reference/make_lmertest_anova_refs.R (R calls stored per case). Targets: df 1e-3
relative, F 1e-3, p-values 1e-2.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import multilevel as ml

from reference_data import load_data

REF = json.loads(
    (Path(__file__).parent / "reference" / "lmertest_anova" / "anova.json").read_text())["cases"]


@pytest.mark.parametrize("case", sorted(REF))
def test_f_table_matches_lmertest(case):
    ref = REF[case]
    fit = ml.lmer(ref["formula"], ml.datasets.load(ref["dataset"]))
    table = ml.anova(fit)
    assert list(table.index) == ref["terms"]
    t = {k: np.atleast_1d(v) for k, v in ref["table"].items()}
    np.testing.assert_array_equal(table["num_df"], t["NumDF"])
    np.testing.assert_allclose(table["den_df"], t["DenDF"], rtol=1e-3)
    np.testing.assert_allclose(table["f_value"], t["F value"], rtol=1e-3)
    np.testing.assert_allclose(table["sum_sq"], t["Sum Sq"], rtol=1e-3)
    np.testing.assert_allclose(table["p_value"], t["Pr(>F)"], rtol=1e-2)


def test_one_df_contrast_is_the_squared_t_test():
    fit = ml.lmer("Reaction ~ Days + (Days | Subject)", ml.datasets.load("sleepstudy"))
    res = fit.contrast([[0.0, 1.0]])
    ct = fit.coef_table()
    assert res["f_value"] == pytest.approx(ct.loc["Days", "statistic"] ** 2, rel=1e-12)
    assert res["den_df"] == pytest.approx(ct.loc["Days", "df"], rel=1e-10)
    assert res["p_value"] == pytest.approx(ct.loc["Days", "p_value"], rel=1e-8)


def test_contrast_drops_dependent_rows():
    """Repeating a constraint adds no information: the test keeps one df."""
    fit = ml.lmer("Reaction ~ Days + (Days | Subject)", ml.datasets.load("sleepstudy"))
    one = fit.contrast([[0.0, 1.0]])
    two = fit.contrast([[0.0, 1.0], [0.0, 2.0]])
    assert two["num_df"] == 1
    assert two["f_value"] == pytest.approx(one["f_value"], rel=1e-10)


MARGINAL = json.loads((Path(__file__).parent / "reference" / "lmertest_anova" /
                       "anova_marginal.json").read_text())["cases"]


@pytest.mark.parametrize("case", sorted(MARGINAL))
def test_type3_with_interactions_matches_lmertest(case):
    """Terms contained in interactions (numeric x factor, factor x factor): lmerTest's
    coding-independent type III (reference/make_lmertest_anova_refs.R, anova_marginal.json)."""
    ref = MARGINAL[case]
    fit = ml.lmer(ref["formula"], load_data(ref["dataset"]))
    table = ml.anova(fit)
    assert list(table.index) == ref["terms"]
    np.testing.assert_array_equal(table["num_df"], ref["table"]["NumDF"])
    np.testing.assert_allclose(table["f_value"], ref["table"]["F value"], rtol=1e-3)
    np.testing.assert_allclose(table["den_df"], ref["table"]["DenDF"], rtol=1e-3)
    np.testing.assert_allclose(table["p_value"], ref["table"]["Pr(>F)"], rtol=1e-2)


def test_type3_with_ordered_factor_interaction_is_refused_with_a_way_out():
    d = ml.datasets.load("sleepstudy")
    d["Dayf"] = pd.Categorical((d["Days"] // 3).astype(int), ordered=True)
    d["x"] = np.random.default_rng(1).normal(size=len(d))
    fit = ml.lmer("Reaction ~ Dayf * x + (1 | Subject)", d)
    with pytest.raises(ml.errors.MultilevelError, match="contrast"):
        ml.anova(fit)


def test_contrast_with_wrong_width_is_an_error():
    fit = ml.lmer("Reaction ~ Days + (Days | Subject)", ml.datasets.load("sleepstudy"))
    with pytest.raises(ml.errors.MultilevelError, match="2 columns"):
        fit.contrast([[1.0, 0.0, 0.0]])
