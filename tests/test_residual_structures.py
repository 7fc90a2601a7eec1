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
    CorAR1,
    CorARMA,
    CorCAR1,
    CorCompSymm,
    CorExp,
    CorGaus,
    CorLin,
    CorRatio,
    CorSpher,
    CorSymm,
    VarComb,
    VarConstPower,
    VarExp,
    VarFixed,
    VarIdent,
    VarPower,
    arma_autocorrelation,
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


# ---- correlation structures ---------------------------------------------------------------

CORRELATION: dict[str, Any] = {
    "corAR1(0.6, form = ~ 1 | Subject)": CorAR1(0.6, "~ 1 | Subject"),
    "corAR1(-0.45, form = ~ occ | Subject)": CorAR1(-0.45, "~ occ | Subject"),
    "corAR1(0.8, form = ~ Time | Rat)": CorAR1(0.8, "~ Time | Rat"),
    "corCAR1(0.7, form = ~ tcont | Rat)": CorCAR1(0.7, "~ tcont | Rat"),
    "corCAR1(0.2, form = ~ age | Subject)": CorCAR1(0.2, "~ age | Subject"),
    "corARMA(c(0.8, 0.4), form = ~ 1 | Subject, p = 1, q = 1)":
        CorARMA([0.8, 0.4], "~ 1 | Subject", p=1, q=1),
    "corARMA(c(0.2, 0.3, -0.1), form = ~ 1 | Subject, p = 1, q = 2)":
        CorARMA([0.2, 0.3, -0.1], "~ 1 | Subject", p=1, q=2),
    "corARMA(c(0.5, -0.3), form = ~ occ | Subject, p = 2, q = 0)":
        CorARMA([0.5, -0.3], "~ occ | Subject", p=2, q=0),
    "corARMA(c(0.4), form = ~ 1 | Subject, p = 0, q = 1)":
        CorARMA([0.4], "~ 1 | Subject", p=0, q=1),
    "corARMA(c(0.3, 0.2, 0.1, 0.5, -0.3), form = ~ 1 | Rat, p = 3, q = 2)":
        CorARMA([0.3, 0.2, 0.1, 0.5, -0.3], "~ 1 | Rat", p=3, q=2),
    "corCompSymm(0.3, form = ~ 1 | Subject)": CorCompSymm(0.3, "~ 1 | Subject"),
    "corCompSymm(-0.2, form = ~ 1 | Subject)": CorCompSymm(-0.2, "~ 1 | Subject"),
    "corSymm(c(0.5, 0.3, 0.1, 0.4, 0.2, 0.6), form = ~ 1 | Subject)":
        CorSymm([0.5, 0.3, 0.1, 0.4, 0.2, 0.6], "~ 1 | Subject"),
    "corSymm(c(0.5, -0.3, 0.1, 0.4, 0.2, 0.6), form = ~ occ | Subject)":
        CorSymm([0.5, -0.3, 0.1, 0.4, 0.2, 0.6], "~ occ | Subject"),
    "corExp(1.5, form = ~ x + y | g)": CorExp(1.5, "~ x + y | g"),
    "corExp(c(1.5, 0.2), form = ~ x + y | g, nugget = TRUE)":
        CorExp([1.5, 0.2], "~ x + y | g", nugget=True),
    "corExp(1.5, form = ~ x + y | g, metric = 'manhattan')":
        CorExp(1.5, "~ x + y | g", metric="manhattan"),
    "corExp(1.5, form = ~ x + y | g, metric = 'maximum')":
        CorExp(1.5, "~ x + y | g", metric="maximum"),
    "corGaus(1.2, form = ~ x + y | g)": CorGaus(1.2, "~ x + y | g"),
    "corGaus(c(1.2, 0.3), form = ~ x + y | g, nugget = TRUE)":
        CorGaus([1.2, 0.3], "~ x + y | g", nugget=True),
    "corLin(3, form = ~ x + y | g)": CorLin(3.0, "~ x + y | g"),
    "corLin(c(3, 0.1), form = ~ x + y | g, nugget = TRUE)":
        CorLin([3.0, 0.1], "~ x + y | g", nugget=True),
    "corSpher(2.8, form = ~ x + y | g)": CorSpher(2.8, "~ x + y | g"),
    "corSpher(c(2.8, 0.25), form = ~ x + y | g, nugget = TRUE)":
        CorSpher([2.8, 0.25], "~ x + y | g", nugget=True),
    "corRatio(0.9, form = ~ x + y | g)": CorRatio(0.9, "~ x + y | g"),
    "corRatio(c(0.9, 0.4), form = ~ x + y | g, nugget = TRUE)":
        CorRatio([0.9, 0.4], "~ x + y | g", nugget=True),
    "corExp(20, form = ~ Time | Rat)": CorExp(20.0, "~ Time | Rat"),
}
COR_CASES = {case["call"]: case for case in REFS["correlation"]}
# nlme 3.1-162's corARMA is not the ARMA process's autocorrelation when q > p >= 1: for
# phi = 0.2, theta = (0.3, -0.1) (an MA(1) in disguise: (1 + 0.3B - 0.1B^2) / (1 - 0.2B) =
# 1 + 0.5B) nlme gives 0.32 and 0.064 at lags 2 and 3, stats::ARMAacf (and we) give 0 and 0.
# We follow ARMAacf; test_arma_autocorrelation_matches_armaacf checks it.
NLME_ARMA_DIFFERS = {"corARMA(c(0.2, 0.3, -0.1), form = ~ 1 | Subject, p = 1, q = 2)"}


def test_every_correlation_reference_has_a_python_twin() -> None:
    assert set(COR_CASES) == set(CORRELATION)


@pytest.mark.parametrize("call", sorted(COR_CASES))
def test_correlation_structure_matches_nlme(call: str) -> None:
    ref = COR_CASES[call]
    cs = CORRELATION[call]
    times = cs.covariates(DATA[ref["data"]])
    assert [np.asarray(t).shape[0] for t in times] == list(np.atleast_1d(ref["sizes"]))
    theta = cs.parameters(times, unconstrained=True)
    params = cs.parameters(times, unconstrained=False)
    assert cs.n_parameters(times) == len(np.atleast_1d(ref["coef_unconstrained"]))
    close(theta, np.atleast_1d(ref["coef_unconstrained"]))
    close(params, np.atleast_1d(ref["coef_constrained"]))
    close(cs.to_unconstrained(params, times), theta)
    if call in NLME_ARMA_DIFFERS:
        first = np.asarray(ref["cor_matrix"][0]).reshape(4, 4, order="F")[0]
        close(first, [1.0, 0.4, 0.32, 0.064])  # nlme's values, recorded
        close(cs.corr_matrix(params, times[0])[0], ref["armaacf"])
        return
    mats = cs.corr_matrices(params, times)
    facs = cs.factors(params, times)
    # R's split() names the per-group factors "1", "2", ...: jsonlite writes an object
    ref_facs = [ref["cor_factor"][k] for k in sorted(ref["cor_factor"], key=int)]
    for m, f, r_m, r_f in zip(mats, facs, ref["cor_matrix"], ref_facs, strict=True):
        n = m.shape[0]
        close(m.ravel(order="F"), r_m)
        close(f.ravel(order="F"), r_f)
        np.testing.assert_allclose(f.T @ f @ m, np.eye(n), atol=1e-9)
    # nlme's logDet(obj) is half the summed log|R_g|
    assert cs.total_log_det(params, times) == pytest.approx(2 * ref["log_det"], rel=RTOL)
    assert sum(cs.log_det(params, t) for t in times) == pytest.approx(2 * ref["log_det"],
                                                                      rel=RTOL)


@pytest.mark.parametrize("call", sorted(c for c in COR_CASES if COR_CASES[c].get("armaacf")))
def test_arma_autocorrelation_matches_armaacf(call: str) -> None:
    ref = COR_CASES[call]
    acf = np.asarray(ref["armaacf"])
    cs = CORRELATION[call]
    p = getattr(cs, "p", 1)
    params = np.atleast_1d(ref["coef_constrained"])
    close(arma_autocorrelation(params[:p], params[p:], acf.size - 1), acf)


def test_correlation_starting_values_are_nlme_defaults() -> None:
    orth = CORRELATION["corAR1(0.6, form = ~ 1 | Subject)"].covariates(DATA["orth"])
    sp = CorExp(form="~ x + y | g").covariates(DATA["sp"])
    close(CorAR1(form="~ 1 | Subject").parameters(orth, False), [0.0])
    close(CorCAR1(form="~ 1 | Subject").parameters(orth, False), [0.2])
    close(CorARMA(form="~ 1 | Subject", p=1, q=1).parameters(orth, False), [0.0, 0.0])
    close(CorCompSymm(form="~ 1 | Subject").parameters(orth, False), [0.0])
    close(CorSymm(form="~ 1 | Subject").parameters(orth, False), np.zeros(6))
    close(CorSymm(form="~ 1 | Subject").parameters(orth, True), np.zeros(6))
    min_d = CorExp(form="~ x + y | g").min_distance(sp)
    close(CorExp(form="~ x + y | g").parameters(sp, False), [0.9 * min_d])
    close(CorExp(form="~ x + y | g", nugget=True).parameters(sp, False), [0.9 * min_d, 0.1])
    close(CorLin(form="~ x + y | g").parameters(sp, False), [1.1 * min_d])


def test_ar1_times_must_be_distinct_integers() -> None:
    ar1 = CorAR1(0.5, "~ t | g")
    with pytest.raises(DataError, match="integer"):
        ar1.corr_matrix([0.5], [1.0, 2.5, 3.0])
    with pytest.raises(DataError, match="unique"):
        ar1.corr_matrix([0.5], [1, 2, 2, 3])
    with pytest.raises(DataError, match="unique"):
        CorARMA([0.5], "~ t | g", p=1).factor([0.5], [3, 1, 3])
    with pytest.raises(DataError, match="unique"):
        CorCAR1(0.5, "~ t | g").corr_matrix([0.5], [0.1, 0.1])
    with pytest.raises(DataError, match="integer"):
        CorSymm().corr_matrix([0.2], [1.0, 1.5])


def test_gapped_ar1_is_phi_to_the_lag() -> None:
    r = CorAR1().corr_matrix([0.6], [1, 2, 5])
    close(r.ravel(), np.array([[1, 0.6, 0.6 ** 4], [0.6, 1, 0.6 ** 3],
                               [0.6 ** 4, 0.6 ** 3, 1]]).ravel())
    close(CorARMA(p=1).corr_matrix([0.6], [1, 2, 5]).ravel(), r.ravel())


def _random_params(cs: Any, rng: np.random.Generator, times: list[Any]) -> Any:
    theta = rng.uniform(-4, 4, size=cs.n_parameters(times))
    return cs.to_constrained(theta, times)


PD_CASES = [
    (CorAR1(), [np.arange(1.0, 9.0), np.array([1.0, 3, 4, 9])]),
    (CorCAR1(), [np.array([0.0, 0.3, 1.7, 2.0, 5.5])]),
    (CorARMA(p=2, q=2), [np.arange(1.0, 12.0), np.array([2.0, 5, 6])]),
    (CorARMA(p=1, q=1), [np.arange(1.0, 7.0)]),
    (CorCompSymm(), [np.arange(1.0, 6.0), np.arange(1.0, 3.0)]),
    (CorSymm(), [np.arange(1.0, 6.0), np.array([1.0, 4, 5])]),
    (CorExp(nugget=True), [np.random.default_rng(1).uniform(0, 3, (7, 2))]),
    (CorGaus(nugget=True), [np.random.default_rng(2).uniform(0, 3, (6, 2))]),
    (CorSpher(nugget=True), [np.random.default_rng(3).uniform(0, 3, (7, 2))]),
    (CorRatio(nugget=True), [np.random.default_rng(4).uniform(0, 3, (7, 2))]),
    (CorLin(nugget=True), [np.array([0.0, 0.4, 1.1, 2.5, 2.6, 4.0])]),  # linear: PD in 1-d
]


@pytest.mark.parametrize("cs,times", PD_CASES, ids=lambda v: type(v).__name__)
def test_correlation_matrices_are_positive_definite(cs: Any, times: list[Any]) -> None:
    # unconstrained parameters drawn from [-4, 4] (seed 20261126) map to valid correlations
    rng = np.random.default_rng(20261126)
    for _ in range(50):
        params = _random_params(cs, rng, times)
        for t in times:
            r = cs.corr_matrix(params, t)
            np.testing.assert_allclose(r, r.T, atol=0)
            np.testing.assert_allclose(np.diag(r), 1.0)
            assert np.linalg.eigvalsh(r).min() > 0
            f = cs.factor(params, t)
            np.testing.assert_allclose(f.T @ f @ r, np.eye(r.shape[0]), atol=1e-6)
        close(cs.to_constrained(cs.to_unconstrained(params, times), times), params)
