"""Denominator degrees of freedom of the fixed-effects t tests.

Satterthwaite: against lmerTest 3.1-3's summary tables stored in the shared reference fits
(tests/reference/lme4_shared/*.json, field ``satterthwaite``; R call in ``call``). Targets: df
1e-3 relative, p-values 1e-2 relative.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import multilevel as ml

from reference_data import lmm_reference_files, load_data, load_ref

SHARED = {p.stem: p for p in lmm_reference_files() if p.parent.name == "lme4_shared"}


@pytest.mark.parametrize("case", sorted(SHARED))
def test_satterthwaite_matches_lmertest(case):
    ref = load_ref(SHARED[case])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ml.errors.SingularFitWarning)  # dyestuff2
        fit = ml.lmer(ref["formula"], load_data(ref["dataset"]), reml=bool(ref["reml"]))
    table = ref["satterthwaite"]["table"]
    ct = fit.coef_table()  # Satterthwaite is the default, as in lmerTest
    for name in fit.fixed_names:
        assert ct.loc[name, "df"] == pytest.approx(table[name]["df"], rel=1e-3)
        assert ct.loc[name, "statistic"] == pytest.approx(table[name]["t value"], rel=1e-4)
        assert ct.loc[name, "p_value"] == pytest.approx(table[name]["Pr(>|t|)"], rel=1e-2)


def test_t_intervals_use_the_df():
    fit = ml.lmer("Reaction ~ Days + (Days | Subject)", ml.datasets.load("sleepstudy"))
    ct = fit.coef_table(level=0.9)
    q = stats.t.ppf(0.95, ct["df"])
    np.testing.assert_allclose(ct["ci_upper"] - ct["estimate"], q * ct["std_error"],
                               rtol=1e-12)


def test_residual_df_is_n_minus_p():
    fit = ml.lmer("Reaction ~ Days + (Days | Subject)", ml.datasets.load("sleepstudy"))
    ct = fit.coef_table(ddf="residual")
    assert (ct["df"] == 180 - 2).all()


def test_unknown_ddf_is_an_error():
    fit = ml.lmer("Yield ~ 1 + (1 | Batch)", ml.datasets.load("Dyestuff"))
    with pytest.raises(ml.errors.MultilevelError, match="satterthwaite"):
        fit.coef_table(ddf="containment-ish")


NLME = json.loads((Path(__file__).parent / "reference" / "nlme_df" /
                   "between_within.json").read_text())["cases"]


@pytest.mark.parametrize("case", sorted(NLME))
def test_between_within_matches_nlme(case):
    """Against nlme 3.1-162's lme() t-table DF (tests/reference/make_nlme_df_refs.R)."""
    ref = NLME[case]
    fit = ml.lmer(ref["formula"], load_data(ref["dataset"]))
    ct = fit.coef_table(ddf="between-within")
    assert list(ct.index) == ref["terms"]
    np.testing.assert_array_equal(ct["df"].to_numpy(), np.array(ref["df"], dtype=float))


def test_between_within_refuses_crossed_factors():
    fit = ml.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", ml.datasets.load("Penicillin"))
    with pytest.raises(ml.errors.MultilevelError, match="nested"):
        fit.coef_table(ddf="between-within")
