"""ml.gls against nlme's gls on Orthodont (tests/reference/make_gls_refs.R): log-likelihood,
AIC/BIC, coefficients and their SEs, sigma, and the variance and correlation parameters."""

from __future__ import annotations

import json

import numpy as np
import pytest

import multilevel as ml
from multilevel.errors import ArgumentError, DataError, FormulaError

from reference_data import REF, load_data

R = json.loads((REF / "gls" / "orthodont.json").read_text())["cases"]

CASES = {
    "plain_reml": ("distance ~ age", {}),
    "plain_ml": ("distance ~ age", {"method": "ML"}),
    "ar1": ("distance ~ age * Sex", {"correlation": ml.CorAR1(form="~ 1 | Subject")}),
    "varident_ml": ("distance ~ age * Sex", {"weights": ml.VarIdent(form="~ 1 | Sex"),
                                             "method": "ML"}),
    "compsymm_varident": ("distance ~ age * Sex",
                          {"correlation": ml.CorCompSymm(form="~ 1 | Subject"),
                           "weights": ml.VarIdent(form="~ 1 | Sex")}),
    "varpower_car1": ("distance ~ age + Sex", {"weights": ml.VarPower(form="~ age"),
                                               "correlation": ml.CorCAR1(form="~ age | Subject")}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_gls_matches_nlme(case):
    formula, options = CASES[case]
    ref = R[case]
    fit = ml.gls(formula, load_data("Orthodont"), **options)
    assert fit.loglik == pytest.approx(ref["logLik"], rel=1e-7)
    assert fit.n_params == ref["df"]
    assert fit.aic == pytest.approx(ref["AIC"], rel=1e-7)
    assert fit.bic == pytest.approx(ref["BIC"], rel=1e-7)
    assert fit.sigma == pytest.approx(ref["sigma"], rel=1e-4)
    names = list(ref["fixef"])
    assert fit.fixef[names].to_numpy() == pytest.approx(list(ref["fixef"].values()), rel=1e-4)
    se = np.sqrt(np.diag(fit.vcov.loc[names, names]))
    assert se == pytest.approx(list(ref["se"].values()), rel=1e-3)
    for ours, theirs in ((fit.variance_parameters, ref["variance"]),
                         (fit.correlation_parameters, ref["correlation"])):
        values = list(theirs.values()) if isinstance(theirs, dict) else theirs  # [] if none
        assert list(ours) == pytest.approx(values, rel=1e-3)


def test_bad_calls_are_typed_errors():
    d = load_data("Orthodont")
    with pytest.raises(ArgumentError):
        ml.gls("distance ~ age", d, method="OLS")
    with pytest.raises(FormulaError, match="no random effects"):
        ml.gls("distance ~ age + (1 | Subject)", d)
    with pytest.raises(DataError, match="not in the data"):
        ml.gls("distance ~ age", d, correlation=ml.CorAR1(form="~ 1 | Patient"))
    with pytest.raises(DataError, match="height.* not in the data"):
        ml.gls("distance ~ age", d, weights=ml.VarPower(form="~ height"))
