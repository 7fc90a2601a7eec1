"""Numerics and the optimizer on bad numbers: the interpreter never dies, nothing non-finite
reaches a compiled library, every numerical failure is a typed error naming what to rescale,
and the default start never ends worse than lme4's.

Provenance of the data: ``sleepstudy`` (lme4's data set, shipped), rescaled by powers of ten;
everything else is simulated here from the seed given in the test. Criterion values are never
compared with a fixed number but with a second fit of the same data (lme4's start) or with the
exact effect of a rescaling (REML criterion + 2 log c for a fixed-effects column scaled by c).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

import multilevel as ml
from fit_helpers import quiet_fit
from multilevel.api import LinearMixedModel
from multilevel.errors import (
    ArgumentError,
    ConvergenceWarning,
    DataError,
    MultilevelWarning,
    NumericalError,
    OptimizerError,
)
from multilevel.models.start import anova_start, initial_step
from multilevel.optim.backends import minimize_theta
from multilevel.optim.optsummary import OptSummary

from reference_data import lmm_reference_files, load_data, load_ref

SLEEP_FORMULA = "Reaction ~ Days + (Days | Subject)"


@pytest.fixture(scope="module")
def sleep() -> pd.DataFrame:
    return ml.datasets.load("sleepstudy")


# -- 1. the interpreter never dies --------------------------------------------------------------

# Each case ran in the same process used to abort it ("double free or corruption", exit 134):
# a NaN start reached NLopt, or the ANOVA start overflowed to NaN. A subprocess turns a crash
# into a failed test instead of a dead pytest.
_CRASH_CASES = textwrap.dedent("""
    import numpy as np, pandas as pd, multilevel as ml
    sleep = ml.datasets.load("sleepstudy")
    def run(label, call):
        try:
            call()
            print(label, "fitted")
        except ml.errors.MultilevelError as exc:
            print(label, type(exc).__name__, str(exc).replace("\\n", " "))
    for label, start in [("nan", [np.nan, 0, 1]), ("inf", [np.inf, 0, 1]),
                         ("none", [None, 0, 1]), ("text", ["a", "b", "c"]),
                         ("nested", [[1, 0, 1]]), ("short", [1, 0]), ("negative", [-1, 0, 1])]:
        run("start-" + label,
            lambda s=start: ml.lmer("Reaction ~ Days + (Days | Subject)", sleep, start=s))
    rng = np.random.default_rng(20240611)
    n = 600
    big = pd.DataFrame({c: rng.integers(0, k, n).astype(str)
                        for c, k in (("a", 10), ("b", 12), ("c", 8))})
    big["y"] = 1e160 * (1 + rng.normal(size=n))
    run("huge-response", lambda: ml.lmer("y ~ 1 + (1|a) + (1|b) + (1|c)", big))
""")


def test_bad_starts_and_huge_data_give_typed_errors_in_a_live_process():
    out = subprocess.run([sys.executable, "-c", _CRASH_CASES], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in out.stdout.strip().splitlines())
    for label in ("nan", "inf", "none", "text", "nested", "short", "negative"):
        assert lines[f"start-{label}"].startswith("OptimizerError"), lines
        assert "start" in lines[f"start-{label}"]
    assert "not a finite number" in lines["start-nan"]
    assert lines["huge-response"].startswith("NumericalError")
    assert "'y'" in lines["huge-response"] and "rescale" in lines["huge-response"]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_objective_values_never_reach_the_optimizer(bad):
    """A quadratic with an infeasible region, minimum 0 at (2, 1). Measured: NLopt's BOBYQA
    given the raw +Inf (or NaN) stops at 3.82, 3.27, 2.13 and 0.57 from these four starts;
    with the finite penalty it finds the minimum from each."""

    def fun(x: np.ndarray) -> float:
        if x[0] > 2.2 or (x[0] < 0.5 and x[1] > 3):
            return bad
        return float((x[0] - 2) ** 2 + (x[1] - 1) ** 2)

    for x0 in ([0.1, 2.0], [0.25, 2.0], [0.4, 2.0], [1.3, 2.0]):
        opt = minimize_theta(fun, np.array(x0), np.zeros(2))
        assert opt.fmin == pytest.approx(0.0, abs=1e-9)
        np.testing.assert_allclose(opt.final, [2.0, 1.0], atol=1e-4)
        logged = [v for _, v in opt.fitlog]
        assert not any(math.isnan(v) or v == -math.inf for v in logged)
        assert math.inf in logged  # the infeasible region was visited, and logged as +Inf


def test_objective_not_finite_at_the_start_is_a_numerical_error():
    with pytest.raises(NumericalError, match="starting values"):
        minimize_theta(lambda x: math.nan, np.array([1.0]), np.zeros(1))


def test_an_error_raised_by_the_objective_itself_is_not_swallowed():
    def fun(x: np.ndarray) -> float:
        if x[0] < 0.9:
            raise ValueError("from the objective")
        return float(x[0] ** 2)

    with pytest.raises(ValueError, match="from the objective"):
        minimize_theta(fun, np.array([1.0]), np.zeros(1))


def test_fit_log_with_failed_evaluations_is_strict_json():
    opt = OptSummary(backend="bobyqa", initial=np.ones(1), final=np.ones(1), lower=np.zeros(1),
                     fmin=1.0, feval=2, elapsed=0.0, return_code="x", converged=True,
                     fitlog=((np.ones(1), 1.0), (np.full(1, 2.0), math.inf)))
    text = json.dumps(opt.to_dict(), allow_nan=False)
    assert json.loads(text)["fitlog"][1][1] is None


# -- 3. NLopt stopping early: the best point, reported as not converged --------------------------

def test_nlopt_roundoff_keeps_the_best_point_as_an_unconverged_fit():
    """``y ~ x + (0 + y | g)`` (the response as its own random slope) made NLopt raise
    RoundoffLimited out of lmer; seed 3 of this simulation does so."""
    rng = np.random.default_rng(3)
    n, groups = int(rng.integers(20, 300)), int(rng.integers(3, 20))
    d = pd.DataFrame({"g": rng.integers(0, groups, n).astype(str), "x": rng.normal(size=n)})
    d["y"] = d.x * rng.normal() + rng.normal(size=n) * float(np.exp(rng.uniform(-3, 3)))
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        fit = ml.lmer("y ~ x + (0 + y | g)", d, calc_derivs=False)
    assert "RoundoffLimited" in fit.optsum.return_code
    assert not fit.optsum.converged
    assert fit.optsum.fmin == min(v for _, v in fit.optsum.fitlog)
    assert math.isfinite(fit.optsum.fmin)


# -- 3. scales: exact where the math allows, else a NumericalError naming the variable ----------

@pytest.mark.parametrize("factor", [1e9, 1e-9, 1e100, 1e-100])
def test_a_rescaled_fixed_effect_fits_exactly(sleep, factor):
    """Scaling a fixed-effects column by c is a reparametrization: theta is unchanged, the
    coefficient scales by 1/c and the REML criterion moves by exactly 2 log c."""
    formula = "Reaction ~ Days + (1 | Subject)"
    base = quiet_fit(formula, sleep)
    scaled = sleep.copy()
    scaled["Days"] = scaled["Days"] * factor
    with pytest.warns(MultilevelWarning, match="very different scales"):
        fit = ml.lmer(formula, scaled)
    assert fit.optsum.fmin - base.optsum.fmin == pytest.approx(2 * math.log(factor), abs=1e-6)
    np.testing.assert_allclose(fit.theta, base.theta, rtol=1e-5)
    assert fit.beta[1] * factor == pytest.approx(base.beta[1], rel=1e-8)


@pytest.mark.parametrize(("column", "factor", "named"), [
    ("Reaction", 1e-200, "'Reaction'"),   # squares underflow: pwrss = 0
    ("Reaction", 1e200, "'Reaction'"),    # squares overflow
    ("Days", 1e-160, "'Days'"),           # subnormal cross-products: silently 1e-5 off
    ("Days", 1e9, "'Days'"),              # a random slope of 1e9: lme4's start overflows
    ("w", 1e300, "prior weights"),        # weights: X'WX overflows
    ("w", 1e-200, "prior weights"),       # weights: X'WX underflows
])
def test_data_on_an_extreme_scale_is_a_numerical_error_naming_it(sleep, column, factor, named):
    data = sleep.copy()
    data["w"] = 1.0
    data[column] = data[column] * factor
    with pytest.raises(NumericalError, match="rescale|multiply") as info:
        quiet_fit(SLEEP_FORMULA, data, weights="w")
    assert named in str(info.value)


def test_model_factor_failure_is_a_numerical_error(sleep):
    model = LinearMixedModel(SLEEP_FORMULA, sleep)
    model.A.xy[-1, -1] = -1.0  # an impossible residual sum of squares
    with pytest.raises(NumericalError, match="rescale"):
        model.factor(np.array([1.0, 0.0, 1.0]))


def test_no_degrees_of_freedom_left_is_a_data_error():
    d = pd.DataFrame({"y": [1.0, 2.0, 3.0, 4.0], "x": [0.0, 1.0, 0.0, 1.0],
                      "z": [0.0, 0.0, 1.0, 1.0], "u": [1.0, 3.0, 2.0, 5.0],
                      "g": ["a", "a", "b", "b"]})
    with pytest.raises(DataError, match="degrees of freedom"):
        ml.lmer("y ~ x + z + u + (1 | g)", d)


# -- 3. arguments of the optimizer -------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "error", "named"), [
    ({"optimizer": None}, OptimizerError, "optimizer"),
    ({"optimizer": 3}, OptimizerError, "optimizer"),
    ({"optimizer": "nelder"}, OptimizerError, "optimizer"),
    ({"optimizer_settings": "x"}, OptimizerError, "optimizer_settings"),
    ({"optimizer_settings": {"maxeval": "x"}}, OptimizerError, "maxeval"),
    ({"optimizer_settings": {"maxeval": 0}}, OptimizerError, "maxeval"),
    ({"optimizer_settings": {"maxeval": 2.5}}, OptimizerError, "maxeval"),
    ({"optimizer_settings": {"xtol_abs": math.nan}}, OptimizerError, "xtol_abs"),
    ({"optimizer_settings": {"xtol_abs": -1.0}}, OptimizerError, "xtol_abs"),
    ({"optimizer_settings": {"initial_step": [0.1, math.nan]}}, OptimizerError,
     "initial_step"),
    ({"optimizer_settings": {"bogus": 1}}, OptimizerError, "bogus"),
    ({"optimizer": "lbfgsb", "optimizer_settings": {"maxeval": 10}}, OptimizerError, "maxeval"),
    ({"start": "banana"}, OptimizerError, "start"),
    ({"start": [1.0, 0.0]}, OptimizerError, "start"),
    ({"start": {"a": 1}}, OptimizerError, "start"),
    ({"reml": "yes"}, ArgumentError, "reml"),
    ({"reml": 2}, ArgumentError, "reml"),
    ({"reml": None}, ArgumentError, "reml"),
    ({"calc_derivs": "x"}, ArgumentError, "calc_derivs"),
])
def test_bad_optimizer_arguments_are_typed_errors_naming_them(sleep, kwargs, error, named):
    with pytest.raises(error, match=named):
        ml.lmer(SLEEP_FORMULA, sleep, **kwargs)


def test_accepted_flag_and_setting_values(sleep):
    ref = quiet_fit(SLEEP_FORMULA, sleep)
    for reml in (1, np.True_):
        assert quiet_fit(SLEEP_FORMULA, sleep, reml=reml).optsum.fmin == pytest.approx(
            ref.optsum.fmin, abs=1e-8)
    assert not quiet_fit(SLEEP_FORMULA, sleep, reml=0).reml
    fit = quiet_fit(SLEEP_FORMULA, sleep, optimizer="BOBYQA",
                     optimizer_settings={"maxeval": np.int64(1000), "xtol_abs": 1e-8})
    assert fit.optsum.fmin == pytest.approx(ref.optsum.fmin, abs=1e-6)


# -- 2. the start: ANOVA only for random intercepts, never worse than lme4's ----------------------

def _slope_only_nested(seed: int) -> pd.DataFrame:
    """log(z) ~ x:f + (0 + z | g/h) data: z positive, g with 10 levels, h nested in g."""
    rng = np.random.default_rng(seed)
    G, H = 10, int(rng.integers(2, 5))
    n = int(rng.integers(60, 400))
    g, h = rng.integers(0, G, n), rng.integers(0, H, n)
    x, f = rng.normal(size=n), rng.integers(0, 3, n)
    scale = float(np.exp(rng.uniform(-8, 0)))
    z = (rng.uniform(0.01, 1, n) * scale
         * np.exp(rng.normal(0, rng.uniform(0, 2), (G, H)))[g, h])
    return pd.DataFrame({"g": [f"g{v}" for v in g], "h": [f"h{v}" for v in h],
                         "f": [f"f{v}" for v in f], "x": x, "z": z})


def test_slope_only_terms_do_not_get_the_intercept_anova_start():
    """Seed 37 of this simulation is a case of the reported class: the one-way ANOVA start,
    computed as if ``(0 + z | g/h)`` were random intercepts, ends 1.5 above lme4's start
    (a local optimum reported as converged). The default must now end where lme4's does."""
    formula = "log(z) ~ x:f + (0 + z | g/h)"
    d = _slope_only_nested(37)
    default = quiet_fit(formula, d)
    lme4 = quiet_fit(formula, d, start="lme4")
    assert default.optsum.fmin <= lme4.optsum.fmin + 1e-6 * abs(lme4.optsum.fmin)
    model = LinearMixedModel(formula, d)
    y, _ = model._response_shift()
    ratios = anova_start(model.design.X, y, [b.codes for b in model.blocks])
    assert ratios is not None
    wrong = np.empty(model.layout.n_theta)
    for blk, r in zip(model.blocks, ratios, strict=True):
        wrong[model.layout.terms[blk.terms[0]].theta_offset] = r
    old = quiet_fit(formula, d, start=wrong,
                     optimizer_settings={"initial_step": initial_step(wrong)})
    assert old.optsum.fmin > default.optsum.fmin + 1.0  # the defect this test guards against
    with pytest.raises(OptimizerError, match="random intercept"):
        ml.lmer(formula, d, start="anova")


def test_anova_start_is_none_when_not_finite():
    rng = np.random.default_rng(5)
    y = 1e160 * (1 + rng.normal(size=50))
    assert anova_start(np.ones((50, 1)), y, [rng.integers(0, 5, 50)]) is None


def test_a_constant_non_unit_column_is_a_scaled_intercept():
    """``(0 + two | g)`` with two == 2 is twice a random intercept: the ANOVA start applies
    (theta halved) and ends where lme4's start does."""
    rng = np.random.default_rng(11)
    g = rng.integers(0, 12, 200)
    d = pd.DataFrame({"g": g.astype(str), "x": rng.normal(size=200), "two": 2.0})
    d["y"] = d.x + rng.normal(0, 1.5, 12)[g] + rng.normal(size=200)
    default = quiet_fit("y ~ x + (0 + two | g)", d)
    lme4 = quiet_fit("y ~ x + (0 + two | g)", d, start="lme4")
    anova = quiet_fit("y ~ x + (0 + two | g)", d, start="anova")
    assert anova.optsum.initial[0] == pytest.approx(default.optsum.initial[0])
    assert default.optsum.fmin == pytest.approx(lme4.optsum.fmin, abs=1e-6)
    np.testing.assert_allclose(default.theta, lme4.theta, rtol=1e-3)


def _random_design(seed: int) -> tuple[str, pd.DataFrame, dict]:
    """Small random designs: intercepts crossed or nested, slope-only terms, weights."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(40, 250))
    a, b = int(rng.integers(3, 15)), int(rng.integers(2, 8))
    d = pd.DataFrame({"a": rng.integers(0, a, n), "b": rng.integers(0, b, n),
                      "x": rng.normal(size=n),
                      "z": np.exp(rng.normal(0, 1, n)) * float(np.exp(rng.uniform(-3, 3)))})
    sd_a, sd_b = rng.uniform(0, 2, 2)
    d["y"] = (float(rng.normal()) * d.x + rng.normal(0, sd_a, a)[d.a]
              + rng.normal(0, sd_b, (a, b))[d.a, d.b] * np.where(seed % 3 == 2, d.z, 1.0)
              + rng.normal(0, rng.uniform(0.1, 2), n))
    d["a"], d["b"] = d.a.astype(str), d.b.astype(str)
    formula = ["y ~ x + (1 | a) + (1 | b)", "y ~ x + (1 | a/b)", "y ~ x + (0 + z | a/b)",
               "y ~ x + (1 | a) + (0 + z | b)"][seed % 4]
    kwargs = {"weights": rng.uniform(0.2, 3, n)} if seed % 5 < 2 else {}
    return formula, d, kwargs


@pytest.mark.parametrize("seed", range(16))
def test_default_start_never_ends_worse_than_lme4_start_on_random_designs(seed):
    formula, d, kwargs = _random_design(seed)
    default = quiet_fit(formula, d, **kwargs)
    lme4 = quiet_fit(formula, d, start="lme4", **kwargs)
    assert default.optsum.fmin <= lme4.optsum.fmin + 1e-6 * max(1.0, abs(lme4.optsum.fmin))


def _anova_reference_cases() -> list[str]:
    cases = []
    for path in lmm_reference_files():
        ref = load_ref(path)
        if "|" in ref["formula"] and all(
                part.split("|")[0].strip() == "1"
                for part in ref["formula"].split("(")[1:] if "|" in part):
            cases.append(path.stem)
    return cases


@pytest.mark.parametrize("case", _anova_reference_cases())
def test_default_start_never_ends_worse_than_lme4_start_on_reference_cases(case):
    path = {p.stem: p for p in lmm_reference_files()}[case]
    ref = load_ref(path)
    data = load_data(ref["dataset"])
    kwargs = {"weights": "w"} if case == "sleepstudy_weights" else {}
    default = quiet_fit(ref["formula"], data, reml=bool(ref["reml"]), **kwargs)
    lme4 = quiet_fit(ref["formula"], data, reml=bool(ref["reml"]), start="lme4", **kwargs)
    assert default.optsum.fmin <= lme4.optsum.fmin + 1e-6 * abs(lme4.optsum.fmin)
