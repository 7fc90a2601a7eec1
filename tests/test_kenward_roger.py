"""Kenward-Roger df and adjusted standard errors against pbkrtest 0.5.2 (through lmerTest).

References: the shared fits (tests/reference/lme4_shared/*.json, field kenward_roger) and
tests/reference/pbkrtest/kr.json, written by tests/reference/make_kr_refs.R. Targets: df 1e-3
relative, standard errors 1e-3, F 1e-3, p-values 1e-2.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import multilevel as ml

from reference_data import lmm_reference_files, load_data, load_ref

SHARED = {p.stem: p for p in lmm_reference_files() if p.parent.name == "lme4_shared"}
REML_WITH_KR = sorted(c for c, p in SHARED.items() if "table" in (load_ref(p)["kenward_roger"]
                                                                  or {}))
KR = json.loads((Path(__file__).parent / "reference" / "pbkrtest" / "kr.json").read_text())[
    "cases"]


@pytest.mark.parametrize("case", REML_WITH_KR)
def test_kr_t_table_matches_pbkrtest(case):
    ref = load_ref(SHARED[case])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ml.errors.SingularFitWarning)
        fit = ml.lmer(ref["formula"], load_data(ref["dataset"]), reml=True)
    ct = fit.coef_table(ddf="kenward-roger")
    for name, row in ref["kenward_roger"]["table"].items():
        assert ct.loc[name, "df"] == pytest.approx(row["df"], rel=1e-3)
        assert ct.loc[name, "std_error"] == pytest.approx(row["Std. Error"], rel=1e-3)
        assert ct.loc[name, "p_value"] == pytest.approx(row["Pr(>|t|)"], rel=1e-2)


@pytest.mark.parametrize("case", sorted(KR))
def test_kr_tables_match_pbkrtest(case):
    ref = KR[case]
    fit = ml.lmer(ref["formula"], load_data(ref["dataset"]))
    ct = fit.coef_table(ddf="kenward-roger")
    assert list(ct.index) == ref["coef_names"]
    np.testing.assert_allclose(ct["df"], ref["df"], rtol=1e-3)
    np.testing.assert_allclose(ct["std_error"], ref["se"], rtol=1e-3)
    table = ml.anova(fit, ddf="kenward-roger")
    assert list(table.index) == ref["terms"]
    np.testing.assert_allclose(table["f_value"], np.atleast_1d(ref["F"]), rtol=1e-3)
    np.testing.assert_allclose(table["den_df"], np.atleast_1d(ref["DenDF"]), rtol=1e-3)
    np.testing.assert_allclose(table["p_value"], np.atleast_1d(ref["p"]), rtol=1e-2)


def test_kr_needs_reml():
    fit = ml.lmer("Reaction ~ Days + (Days | Subject)", ml.datasets.load("sleepstudy"),
                  reml=False)
    with pytest.raises(ml.errors.MultilevelError, match="REML"):
        fit.coef_table(ddf="kenward-roger")
