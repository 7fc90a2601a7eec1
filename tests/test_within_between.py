"""Cluster-mean centring and the Mundlak / Hausman tests.

References: tests/reference/within_between/tests.json, written by
tests/reference/make_within_between_refs.R (R 4.2.2, lme4 1.1-31) on mlmRev's Hsb82: the
Mundlak test as lme4's anova() of the ML fits without and with the school means of ses, the
Hausman statistic from lme4's REML fit and the within OLS estimator.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import multilevel as ml

REF = json.loads(
    (Path(__file__).parent / "reference" / "within_between" / "tests.json").read_text())


@pytest.fixture(scope="module")
def hsb_fit():
    return ml.lmer("mAch ~ ses + (1 | school)", ml.datasets.load("Hsb82"))


def test_mundlak_matches_lme4_lrt(hsb_fit):
    t = ml.mundlak(hsb_fit)
    assert t.variables == ("ses",)
    assert t.df == REF["mundlak"]["df"]
    assert t.statistic == pytest.approx(REF["mundlak"]["chisq"], rel=1e-5)
    assert t.p_value == pytest.approx(REF["mundlak"]["p_value"], rel=1e-2)
    assert "center" in t.message  # it rejects, and the message says what to do


def test_hausman_matches_r(hsb_fit):
    t = ml.hausman(hsb_fit)
    assert t.df == 1
    assert t.statistic == pytest.approx(REF["hausman"]["statistic"], rel=1e-3)
    assert t.p_value == pytest.approx(REF["hausman"]["p_value"], rel=5e-2)


def test_no_correlation_when_the_covariate_is_within_only():
    """Group-mean-centred ses is uncorrelated with the school means by construction, so the
    Mundlak test has nothing to find: its school means are all zero and cannot be added."""
    d = ml.center(ml.datasets.load("Hsb82"), "ses", by="school")
    fit = ml.lmer("mAch ~ ses_within + (1 | school)", d)
    with pytest.raises(ml.errors.MultilevelError, match="Mundlak test cannot be formed"):
        ml.mundlak(fit)


def test_simulated_exogenous_covariate_is_not_rejected_often():
    """x independent of the random intercept: the Mundlak p-value is uniform under the null,
    so with seed 11 and a large design it is expected (and checked) to exceed 0.01."""
    rng = np.random.default_rng(11)
    g = np.repeat(np.arange(60), 12)
    x = rng.normal(size=g.size) + rng.normal(size=60)[g]
    y = 1 + 0.5 * x + rng.normal(size=60)[g] + rng.normal(size=g.size)
    fit = ml.lmer("y ~ x + (1 | g)", {"y": y, "x": x, "g": g.astype(str)})
    assert ml.mundlak(fit).p_value > 0.01
    assert ml.hausman(fit).p_value > 0.01


def test_center_columns():
    d = ml.datasets.load("Hsb82")
    c = ml.center(d, ["ses", "mAch"], by="school")
    np.testing.assert_allclose(c["ses_within"] + c["ses_between"], c["ses"], atol=1e-12)
    assert abs(c["ses_centered"].mean()) < 1e-12
    # the group means are constant within schools and equal mlmRev's meanses up to rounding
    assert c.groupby("school", observed=True)["ses_between"].nunique().max() == 1
    np.testing.assert_allclose(c["ses_between"], d["meanses"], atol=1e-3)
    assert "mAch_within" in c.columns


def test_center_errors():
    d = ml.datasets.load("Hsb82")
    with pytest.raises(ml.errors.ColumnNotFoundError, match="sess"):
        ml.center(d, "sess", by="school")
    with pytest.raises(ml.errors.MultilevelError, match="not numeric"):
        ml.center(d, "sx", by="school")


def test_several_grouping_factors_need_by():
    fit = ml.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", ml.datasets.load("Penicillin"))
    with pytest.raises(ml.errors.MultilevelError, match="by="):
        ml.mundlak(fit)


def test_reports_render(hsb_fit):
    t = ml.hausman(hsb_fit)
    assert str(t).startswith("Hausman test of ses")
    assert "<b>Hausman test of ses" in t._repr_html_()
