"""The fast paths of the linear mixed model's fit give what the general ones give.

* :func:`multilevel.data.design._plain_numeric_matrix` (numeric columns and their products,
  built without formulaic) equals formulaic's model matrix, columns and names.
* The BLAS thread limit around a fit (:mod:`multilevel.models.threads`) leaves the estimates
  as they are with the caller's threads.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from formulaic import model_matrix
from threadpoolctl import threadpool_limits

import multilevel as ml
from multilevel.data.design import _plain_numeric_matrix
from multilevel.formula.expressions import EVALUATION_CONTEXT
from multilevel.formula.rnames import r_column_names
from multilevel.models import threads


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n = 40
    return pd.DataFrame({
        "a": rng.normal(size=n), "b": rng.integers(0, 5, size=n), "c": rng.normal(size=n),
        "d.e": rng.normal(size=n), "f": pd.Categorical(rng.choice(["u", "v"], size=n)),
        "g": rng.normal(size=n) > 0,
    })


@pytest.mark.parametrize("expr", [
    "1 + a", "0 + a", "a + b", "1 + a * b", "a * b * c", "c:a + a", "0 + a:b", "b + a:c",
    "1", "`d.e` * a", "a + b + a:b:c",
])
def test_plain_matrix_equals_formulaic(frame: pd.DataFrame, expr: str) -> None:
    plain = _plain_numeric_matrix(frame, expr)
    assert plain is not None
    mm = model_matrix(expr, frame, na_action="ignore", context=EVALUATION_CONTEXT)
    assert plain[1] == r_column_names(list(mm.columns))
    np.testing.assert_array_equal(plain[0], np.asarray(mm, dtype=float))


@pytest.mark.parametrize("expr", ["1 + f", "a * f", "a + g", "a + I(a**2)", "0", "a + log(c)"])
def test_plain_matrix_declines_other_terms(frame: pd.DataFrame, expr: str) -> None:
    assert _plain_numeric_matrix(frame, expr) is None


def test_interaction_fit_matches_formulaic_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hsb82's interaction model through the fast path and through formulaic: the same fit."""
    data = ml.datasets.load("Hsb82")
    formula = "mAch ~ meanses * cses + (cses | school)"
    fast = ml.lmer(formula, data)
    monkeypatch.setattr("multilevel.data.design._plain_numeric_matrix", lambda *a: None)
    slow = ml.lmer(formula, data)
    assert list(fast.fixef.index) == list(slow.fixef.index)
    np.testing.assert_allclose(fast.fixef, slow.fixef, rtol=1e-10)
    assert fast.loglik == pytest.approx(slow.loglik, rel=1e-12)


def test_thread_limit_leaves_the_fit_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chem97-like crossed intercepts with the one-thread rule on and off: the same optimum
    (threads change only the order of floating-point sums)."""
    data = ml.datasets.load("Chem97")
    formula = "score ~ gcsecnt + (1 | school) + (1 | lea)"
    limited = ml.lmer(formula, data)
    monkeypatch.setattr(threads, "SMALL_DENSE", -1)
    with threadpool_limits(2, user_api="blas"):
        free = ml.lmer(formula, data)
    assert limited.loglik == pytest.approx(free.loglik, rel=1e-10)
    np.testing.assert_allclose(limited.fixef, free.fixef, rtol=1e-7)
    np.testing.assert_allclose(limited.theta, free.theta, rtol=1e-5, atol=1e-8)


def test_small_model_runs_on_one_blas_thread() -> None:
    """While a small model's objective is evaluated, BLAS has one thread."""
    from threadpoolctl import threadpool_info

    data = ml.datasets.load("sleepstudy")
    model = ml.LinearMixedModel("Reaction ~ Days + (Days | Subject)", data)
    seen: list[int] = []
    deviance = model._deviance

    def spy(theta: np.ndarray, reml: bool | None = None) -> float:
        seen.append(max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"))
        return deviance(theta, reml)

    model._deviance = spy  # type: ignore[method-assign]
    with threadpool_limits(2, user_api="blas"):
        model.optimize()
    assert seen and set(seen) == {1}


@pytest.mark.parametrize("data_name, formula", [
    ("Chem97", "score ~ gcsecnt + (1 | school) + (1 | lea)"),   # nested intercepts
    ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),  # crossed intercepts
])
def test_two_scalar_terms_objective_equals_the_factor(data_name: str, formula: str) -> None:
    """The objective's vector path for two random intercepts gives the blocked factor's
    three numbers at any theta, zeros included."""
    from multilevel.linalg.blocked_cholesky import factorize, profiled_terms

    model = ml.LinearMixedModel(formula, ml.datasets.load(data_name))
    for theta in ([0.5, 0.2], [1.3, 0.01], [0.0, 0.7], [2.0, 0.0], [3.0, 5.0]):
        templates = model.layout.templates(np.array(theta))
        fast = profiled_terms(model.A, templates)
        f = factorize(model.A, templates)
        # the sums run in another order (bincount, not a sparse product): log|L_X|^2 is a
        # difference of nearly equal sums, so it keeps ~11 digits, far beyond lme4's 1e-5
        np.testing.assert_allclose(fast, (f.logdet_re, f.logdet_x, f.pwrss), rtol=1e-9,
                                   atol=1e-12)
