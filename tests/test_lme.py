"""ml.lme against nlme's lme on Orthodont with residual structures
(tests/reference/make_lme_refs.R)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import multilevel as ml
from multilevel.errors import ArgumentError, DataError

from reference_data import REF, load_data

R = json.loads((REF / "lme" / "orthodont.json").read_text())["cases"]

CASES = {
    "plain": dict(formula="distance ~ age", random="~ 1 | Subject"),
    "ar1": dict(formula="distance ~ age * Sex", random="~ 1 | Subject",
                correlation=ml.CorAR1()),
    "varident_ml": dict(formula="distance ~ age * Sex", random="~ 1 | Subject",
                        weights=ml.VarIdent(form="~ 1 | Sex"), method="ML"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_lme_matches_nlme(case):
    ref = R[case]
    fit = ml.lme(data=load_data("Orthodont"), **CASES[case])
    assert fit.loglik == pytest.approx(ref["logLik"], rel=1e-7)
    assert fit.n_params == ref["df"]
    assert fit.aic == pytest.approx(ref["AIC"], rel=1e-7)
    assert fit.bic == pytest.approx(ref["BIC"], rel=1e-7)
    names = list(ref["fixef"])
    assert fit.fixef[names].to_numpy() == pytest.approx(list(ref["fixef"].values()), rel=1e-4)
    se = np.sqrt(np.diag(fit.vcov.loc[names, names]))
    assert se == pytest.approx(list(ref["se"].values()), rel=1e-3)
    sds = fit.varcorr.loc[fit.varcorr.term2.isna(), "sd"].to_numpy()
    assert sds == pytest.approx(ref["sd"], rel=1e-3)
    for ours, theirs in ((fit.variance_parameters, ref["variance"]),
                         (fit.correlation_parameters, ref["correlation"])):
        values = list(theirs.values()) if isinstance(theirs, dict) else theirs
        assert list(ours) == pytest.approx(values, rel=1e-3, abs=1e-4)


def test_correlation_at_its_boundary():
    """A continuous-time AR(1) whose parameter goes to 0 (nlme: 7.5e-5): the likelihood is
    flat there on nlme's log scale; ours stops a little earlier, within 1e-5 relative."""
    ref = R["slope_car1"]
    fit = ml.lme("distance ~ age", load_data("Orthodont"), random="~ age | Subject",
                 correlation=ml.CorCAR1(form="~ age | Subject"))
    assert fit.loglik == pytest.approx(ref["logLik"], rel=1e-5)
    assert fit.correlation_parameters[0] < 0.01
    assert fit.fixef.to_numpy() == pytest.approx(list(ref["fixef"].values()), rel=1e-4)


def test_bad_calls_are_typed_errors():
    d = load_data("Orthodont")
    with pytest.raises(ArgumentError):
        ml.lme("distance ~ age", d, random="Subject")
    with pytest.raises(ArgumentError):
        ml.lme("distance ~ age", d, random="~ 1 | Subject", method="OLS")
    with pytest.raises(DataError, match="not nested"):
        ml.lme("distance ~ age", d, random="~ 1 | Subject",
               correlation=ml.CorAR1(form="~ 1 | Sex"))
