"""nlme's variance functions and correlation structures (multilevel.structures) against nlme.

Every reference number comes from tests/reference/make_structures_refs.R (R 4.2.2, nlme 3.1-162),
written to tests/reference/structures/refs.json with the nlme call beside it; these tests do not
need R. Agreement asked for: 1e-10 relative (absolute near zero).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from multilevel.errors import ArgumentError, DataError
from multilevel.structures import (
    VarComb,
    VarConstPower,
    VarExp,
    VarFixed,
    VarIdent,
    VarPower,
)

REFS = json.loads((Path(__file__).parent / "reference" / "structures" / "refs.json").read_text())
DATA: dict[str, dict[str, Any]] = {
    name: {col: np.asarray(vals) for col, vals in cols.items()}
    for name, cols in REFS["data"].items()}
RTOL = 1e-10
ATOL = 1e-12


def close(ours: Any, theirs: Any) -> None:
    np.testing.assert_allclose(np.asarray(ours, dtype=float),
                               np.asarray(theirs, dtype=float).ravel(), rtol=RTOL, atol=ATOL)


# ---- variance functions ------------------------------------------------------------------

VARIANCE: dict[str, Any] = {
    "varIdent(form = ~ 1 | Sex)": VarIdent("~ 1 | Sex"),
    "varIdent(0.5, form = ~ 1 | Sex)": VarIdent("~ 1 | Sex", 0.5),
    "varIdent(c(`2` = 1.7, `3` = 0.6), form = ~ 1 | Diet)":
        VarIdent("~ 1 | Diet", {"2": 1.7, "3": 0.6}),
    "varIdent(c(`1` = 0.8, `3` = 2.5), form = ~ 1 | Diet)":
        VarIdent("~ 1 | Diet", {"1": 0.8, "3": 2.5}),
    "varPower(0.7, form = ~ age)": VarPower("~ age", 0.7),
    "varPower(c(Female = 0.3, Male = -0.4), form = ~ age | Sex)":
        VarPower("~ age | Sex", {"Female": 0.3, "Male": -0.4}),
    "varExp(0.05, form = ~ age)": VarExp("~ age", 0.05),
    "varExp(c(`1` = 0.1, `3` = -0.02, `2` = 0.01), form = ~ Time | Diet)":
        VarExp("~ Time | Diet", {"1": 0.1, "3": -0.02, "2": 0.01}),
    "varConstPower(const = 2.5, power = 0.6, form = ~ age)":
        VarConstPower("~ age", const=2.5, power=0.6),
    "varConstPower(const = c(Male = 2, Female = 0.5), power = c(Male = 0.6, Female = -0.2), "
    "form = ~ age | Sex)":
        VarConstPower("~ age | Sex", const={"Male": 2, "Female": 0.5},
                      power={"Male": 0.6, "Female": -0.2}),
    "varFixed(~ age)": VarFixed("~ age"),
    "varComb(varIdent(0.5, form = ~ 1 | Sex), varPower(0.7, form = ~ age))":
        VarComb(VarIdent("~ 1 | Sex", 0.5), VarPower("~ age", 0.7)),
    "varComb(varExp(0.05, form = ~ Time), varIdent(c(`2` = 1.7, `3` = 0.6), form = ~ 1 | Diet))":
        VarComb(VarExp("~ Time", 0.05), VarIdent("~ 1 | Diet", {"2": 1.7, "3": 0.6})),
}
VAR_CASES = {case["call"]: case for case in REFS["variance"]}


def test_every_variance_reference_has_a_python_twin() -> None:
    assert set(VAR_CASES) == set(VARIANCE)


@pytest.mark.parametrize("call", sorted(VAR_CASES))
def test_variance_function_matches_nlme(call: str) -> None:
    ref = VAR_CASES[call]
    data = DATA[ref["data"]]
    vf = VARIANCE[call].initialize_data(data)
    if isinstance(vf, VarComb):
        theta = vf.parameters(data, unconstrained=True)
        natural = vf.parameters(data, unconstrained=False)
        assert vf.n_parameters(data) == len(np.atleast_1d(ref["coef_unconstrained"]))
        sd = vf.weights_from_data(theta, data)
        loglik = vf.loglik(theta, data)
    else:
        cov, strata = vf.columns(data)
        theta = vf.parameters(True, strata)
        natural = vf.parameters(False, strata)
        assert vf.n_parameters(strata) == len(np.atleast_1d(ref["coef_unconstrained"]))
        close(vf.to_constrained(theta), natural)
        sd = vf.weights(theta, cov, strata)
        close(vf.var_weights(theta, cov, strata), ref["var_weights"])
        loglik = vf.loglik(theta, cov, strata)
        assert vf.log_det(theta, cov, strata) == pytest.approx(-2 * ref["loglik"], rel=RTOL)
    close(theta, np.atleast_1d(ref["coef_unconstrained"]))
    close(natural, np.atleast_1d(ref["coef_constrained"]))
    close(1.0 / sd, ref["var_weights"])
    assert loglik == pytest.approx(ref["loglik"], rel=RTOL, abs=ATOL)


def test_fitted_covariate_is_the_values_passed() -> None:
    # varPower(form = ~ fitted(.)) reads the fitted values; with age as "fitted" it must
    # reproduce nlme's varPower(0.7, form = ~ age)
    ref = VAR_CASES["varPower(0.7, form = ~ age)"]
    vf = VarPower("~ fitted(.)", 0.7)
    close(vf.var_weights([0.7], DATA["orth"]["age"]), ref["var_weights"])
    with pytest.raises(ArgumentError, match="fitted"):
        vf.weights_from_data([0.7], DATA["orth"])


def test_variance_starting_values_are_nlme_defaults() -> None:
    sex = DATA["orth"]["Sex"]
    diet = DATA["bw"]["Diet"]
    np.testing.assert_array_equal(VarIdent("~ 1 | Diet").initial(diet), [0.0, 0.0])  # ratios 1
    np.testing.assert_array_equal(VarPower("~ age | Sex").initial(sex), [0.0, 0.0])
    np.testing.assert_array_equal(VarExp("~ age").initial(), [0.0])
    np.testing.assert_array_equal(VarConstPower("~ age").initial(), [0.0, 0.0])  # const 1
    assert VarFixed("~ age").n_parameters() == 0


def test_unknown_stratum_is_a_data_error() -> None:
    vf = VarIdent("~ 1 | Sex").initialize(DATA["orth"]["Sex"])
    assert vf.levels == ("Male", "Female")
    with pytest.raises(DataError, match="'Other'"):
        vf.weights([0.1], strata=["Male", "Other"])
    with pytest.raises(DataError, match="not in the data"):
        VarIdent("~ 1 | Sex", {"Unknown": 2.0}).initialize(DATA["orth"]["Sex"])


def test_bad_variance_forms_and_lengths() -> None:
    with pytest.raises(ArgumentError):
        VarPower("age")
    with pytest.raises(ArgumentError):
        VarIdent("~ age")
    with pytest.raises(ArgumentError, match="2 parameters"):
        VarConstPower("~ age").weights([0.0], [1.0, 2.0])
