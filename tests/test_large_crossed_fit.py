"""Fitting two large crossed random intercepts exactly (issue 11, item 2): a moment-based
start, Newton's method on finite-difference derivatives with the objective memoized, the cost
notice and the progress bar. The path switches on at ``TILED_ORDER`` levels of the second
factor; the tests lower that threshold so a small model takes it, and compare with the
ordinary path (BOBYQA from the ANOVA start) on the same data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import multilevel as ml
import multilevel.linalg.blocked_cholesky as bc
import multilevel.models.lmm as lmm
from fit_helpers import crossed_ratings
from multilevel.errors import ArgumentError
from multilevel.models.start import anova_start, moments_start
from multilevel.optim.newton import newton_fd

FORMULA = "y ~ x + (1 | user) + (1 | item)"


def _crossed(seed: int, n: int = 20_000, n_users: int = 1_500, n_items: int = 400,
             ) -> pd.DataFrame:
    return crossed_ratings(seed, n, n_users, n_items)


def _large_path(monkeypatch: pytest.MonkeyPatch, order: int = 100) -> None:
    monkeypatch.setattr(bc, "TILED_ORDER", order)
    monkeypatch.setattr(lmm, "TILED_ORDER", order)


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("reml", [True, False])
def test_newton_reaches_the_bobyqa_optimum_in_fewer_evaluations(
        seed: int, reml: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    df = _crossed(seed)
    counted: list[int] = []
    original = lmm.ModelStages._deviance

    def counting(self: lmm.ModelStages, theta: np.ndarray, reml: bool | None = None) -> float:
        counted.append(1)
        return original(self, theta, reml)

    monkeypatch.setattr(lmm.ModelStages, "_deviance", counting)
    ordinary = ml.lmer(FORMULA, df, reml=reml)
    ordinary_count = len(counted)
    counted.clear()
    _large_path(monkeypatch)
    large = ml.lmer(FORMULA, df, reml=reml, progress=False)
    assert large.optsum.backend == "newton" and ordinary.optsum.backend == "bobyqa"
    assert len(counted) < 0.8 * ordinary_count, (len(counted), ordinary_count)
    assert large.optsum.messages == () and large.optsum.converged
    np.testing.assert_allclose(large.theta, ordinary.theta, rtol=2e-5)
    assert large.optsum.fmin <= ordinary.optsum.fmin + 1e-7
    np.testing.assert_allclose(large.fixef, ordinary.fixef, rtol=1e-6)
    np.testing.assert_allclose(large.optsum.gradient, 0.0, atol=0.05)


def test_moment_start_is_closer_than_the_one_way_anova() -> None:
    df = _crossed(3)
    fit = ml.lmer(FORMULA, df)
    m = fit.model
    y, _ = m._response_shift()
    codes = [b.codes for b in m.blocks]
    moments = moments_start(m.design.X, y, codes, [1.0, 1.0])
    anova = anova_start(m.design.X, y, codes)
    assert moments is not None and anova is not None
    err_moments = np.abs(moments / fit.theta - 1).max()
    err_anova = np.abs(anova / fit.theta - 1).max()
    assert err_moments < 0.1 and err_moments < err_anova, (err_moments, err_anova)


def test_newton_on_a_smooth_bowl_and_its_refusals() -> None:
    calls: list[np.ndarray] = []

    def bowl(x: np.ndarray) -> float:
        calls.append(x.copy())
        return float((x[0] - 1.0) ** 2 * 50 + (x[1] - 2.0) ** 2 * 20 + 0.5 * x[0] * x[1]
                     + (x[0] - 1.0) ** 4)

    x0 = np.array([1.3, 1.5])
    found = newton_fd(bowl, x0, np.zeros(2), bowl(x0))
    assert found is not None
    opt, derivatives = found
    assert opt.backend == "newton"
    best = opt.final
    np.testing.assert_array_equal(derivatives.x, best)  # the derivatives are at the optimum
    grad = np.array([100 * (best[0] - 1) + 0.5 * best[1] + 4 * (best[0] - 1) ** 3,
                     40 * (best[1] - 2) + 0.5 * best[0]])
    np.testing.assert_allclose(grad, 0.0, atol=1e-3)
    assert opt.feval == len(calls)  # every evaluation is logged

    def saddle(x: np.ndarray) -> float:
        return float(x[0] ** 2 - x[1] ** 2)

    start = np.array([0.5, 0.5])
    assert newton_fd(saddle, start, np.zeros(2), saddle(start)) is None


def test_the_convergence_check_costs_no_evaluation_after_newton(
        monkeypatch: pytest.MonkeyPatch) -> None:
    df = _crossed(4)
    _large_path(monkeypatch)
    model = ml.LinearMixedModel(FORMULA, df)
    model.progress = False
    calls: list[np.ndarray] = []
    original = model._deviance

    def counted(theta: np.ndarray, reml: bool | None = None) -> float:
        calls.append(np.array(theta))
        return original(theta, reml)

    model._deviance = counted  # type: ignore[method-assign]
    fit = model.fit()
    logged = len(fit.optsum.fitlog)
    # everything evaluated is in Newton's log, save at most the polishing step and the
    # final factorization of the result (the start is logged, evaluated once)
    assert len(calls) <= logged + 1
    assert fit.optsum.gradient is not None and fit.optsum.hessian is not None
    assert np.abs(fit.optsum.gradient).max() < 0.05


def test_cost_notice_and_progress_bar_on_stderr(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    df = _crossed(5, n=5_000, n_users=500, n_items=150)
    _large_path(monkeypatch)
    ml.lmer(FORMULA, df)
    err = capsys.readouterr().err
    assert "item (150 levels) crossed with user is factored as a dense block" in err
    assert "per evaluation on this machine (estimated)" in err and "ml.lmer_moments" in err
    ml.lmer(FORMULA, df, progress=False)
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(bc, "TILED_ORDER", 10**9)
    monkeypatch.setattr(lmm, "TILED_ORDER", 10**9)
    ml.lmer(FORMULA, df)  # an ordinary fit is silent by default
    assert capsys.readouterr().err == ""
    ml.lmer(FORMULA, df, progress=True)
    assert "dense block" in capsys.readouterr().err
    with pytest.raises(ArgumentError, match="progress"):
        ml.lmer(FORMULA, df, progress="yes")


def test_summary_of_an_expensive_fit_skips_satterthwaite_unless_asked(
        monkeypatch: pytest.MonkeyPatch) -> None:
    df = _crossed(6, n=5_000, n_users=500, n_items=150)
    _large_path(monkeypatch)
    fit = ml.lmer(FORMULA, df, progress=False)
    text = fit.summary()
    assert "t value" in text and "Pr(>|t|)" not in text
    assert "summary(ddf='satterthwaite') computes them" in text
    assert str(fit) == text
    asked = fit.summary(ddf="satterthwaite")
    assert "Pr(>|t|)" in asked and "Satterthwaite" in asked
    assert "Pr(>|t|)" not in fit.summary(ddf=None)
    monkeypatch.setattr(lmm, "TILED_ORDER", 10**9)  # an ordinary fit: lmerTest's default
    assert "Pr(>|t|)" in fit.summary()


@pytest.mark.filterwarnings("ignore::multilevel.errors.SingularFitWarning")  # rater: no effect
def test_newton_goes_first_by_the_size_of_an_evaluation(monkeypatch: pytest.MonkeyPatch,
                                                       ) -> None:
    """A rule on sizes (dense flops plus Gram products), the same on every machine: small
    models keep BOBYQA, a model above NEWTON_MIN_WORK takes Newton's method, and three
    random intercepts keep BOBYQA whatever their size."""
    df = _crossed(7, n=5_000, n_users=500, n_items=150)
    assert ml.lmer(FORMULA, df).optsum.backend == "bobyqa"
    monkeypatch.setattr(lmm, "NEWTON_MIN_WORK", 1e4)
    fit = ml.lmer(FORMULA, df)
    assert fit.optsum.backend == "newton" and fit.optsum.messages == ()
    assert ml.lmer(FORMULA, df, optimizer_settings={"maxeval": 500}).optsum.backend == "bobyqa"
    df["rater"] = df["user"] % 7
    three = ml.lmer("y ~ x + (1 | user) + (1 | item) + (1 | rater)", df)
    assert three.optsum.backend == "bobyqa"


@settings(max_examples=25, deadline=None, derandomize=True)
@given(value=st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                       st.text(max_size=8), st.lists(st.booleans(), max_size=2)))
def test_progress_and_summary_ddf_take_their_values_or_refuse_them_by_name(value: object,
                                                                          ) -> None:
    penicillin = ml.datasets.load("Penicillin")
    formula = "diameter ~ 1 + (1 | plate) + (1 | sample)"
    if value is None or isinstance(value, bool):
        ml.lmer(formula, penicillin, progress=value)
    else:
        with pytest.raises(ArgumentError, match="progress"):
            ml.lmer(formula, penicillin, progress=value)
    fit = ml.lmer(formula, penicillin, progress=False)
    try:
        text = fit.summary(ddf=value)  # type: ignore[arg-type]
    except ArgumentError as exc:
        assert "ddf" in str(exc)
    else:
        assert "Formula:" in text
