"""Fuzzing the public API: whatever a user passes, what leaves ``multilevel`` is a result or a
``multilevel.errors`` type -- and not the :class:`InternalError` net, which means an error the
code did not name.

Three fuzzers (hypothesis, derandomized so that CI sees the same examples on every run):
formulas from lme4's grammar with junk mixed in, frames with every dtype pandas and polars have,
and odd values for every argument of the fitting function, the result's methods and the
inference functions. Data: a small simulated frame (seeded) and the built-in sleepstudy.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import multilevel as ml
from multilevel.errors import InternalError, MultilevelError, public_api, public_methods

FUZZ = settings(max_examples=120, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.filter_too_much])
# every fit in the fuzzers is capped: what is tested is the path to a result or a typed error
QUICK = {"maxeval": 300}


def _frame(n_groups: int = 8, per_group: int = 6, seed: int = 20261126) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_groups * per_group
    g = np.repeat([f"g{i}" for i in range(n_groups)], per_group)
    h = np.tile(np.arange(per_group) % 3, n_groups)
    x = rng.normal(size=n)
    b = rng.normal(size=n_groups)[np.repeat(np.arange(n_groups), per_group)]
    y = 1.0 + 0.5 * x + b + rng.normal(scale=0.5, size=n)
    return pd.DataFrame({
        "y": y, "x": x, "z": np.exp(rng.normal(size=n)),
        "f": pd.Series(rng.choice(["a", "b", "c"], size=n)),
        "o": pd.Categorical(rng.choice(["lo", "mid", "hi"], size=n),
                            categories=["lo", "mid", "hi"], ordered=True),
        "g": g, "h": h, "Days.n": rng.integers(0, 10, size=n).astype(float),
        "my var": rng.normal(size=n), "größe": rng.normal(size=n),
        "w": rng.uniform(0.5, 2.0, size=n), "k": rng.poisson(3.0, size=n)})


DATA = _frame()


@contextlib.contextmanager
def outcome_is_ours() -> Iterator[None]:
    """The block either returns or raises a named multilevel error (not the net)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yield
        except InternalError as exc:  # the net caught an error nobody named
            raise AssertionError(f"unnamed error reached the API boundary: {exc}") from exc
        except MultilevelError:
            pass
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # anything else escaped the API altogether
            raise AssertionError(f"{type(exc).__name__} escaped the public API: {exc}") from exc


# -- the boundary itself --------------------------------------------------------------------

def test_public_api_turns_foreign_exceptions_into_internal_error() -> None:
    @public_api
    def broken(x: int) -> int:
        return [1, 2][x]

    assert broken(1) == 2
    with pytest.raises(InternalError, match="IndexError") as info:
        broken(5)
    assert isinstance(info.value.__cause__, IndexError)


def test_public_api_lets_our_errors_and_interrupts_through() -> None:
    @public_api
    def raises(exc: BaseException) -> None:
        raise exc

    with pytest.raises(ml.errors.DataError):
        raises(ml.errors.DataError("bad column"))
    with pytest.raises(KeyboardInterrupt):
        raises(KeyboardInterrupt())


def test_public_methods_wraps_methods_and_properties() -> None:
    @public_methods
    class Thing:
        @property
        def prop(self) -> float:
            return 1 / 0

        def method(self) -> None:
            raise KeyError("k")

        def _private(self) -> None:
            raise KeyError("k")

    with pytest.raises(InternalError, match="ZeroDivisionError"):
        _ = Thing().prop
    with pytest.raises(InternalError, match="KeyError"):
        Thing().method()
    with pytest.raises(KeyError):
        Thing()._private()


def test_internal_error_quotes_at_most_a_few_hundred_characters() -> None:
    @public_api
    def long_message() -> None:
        raise ValueError("x" * 10_000_000)

    with pytest.raises(InternalError) as info:
        long_message()
    assert len(str(info.value)) < 1000


# -- formulas from the grammar --------------------------------------------------------------

COLUMNS = ["x", "z", "f", "o", "Days.n", "`my var`", "größe", "k", "h"]
TRANSFORMS = ["log(z)", "sqrt(z)", "abs(x)", "exp(x / 4)", "I(x^2)", "poly(x, 2)", "scale(x)",
              "center(x)", "C(f)", "log10(z)", "offset(x)", "x * f", "(x + z)^2", "x:f",
              "factor(h)", "I(x > 0)", "-1", "0", "1"]
JUNK = ["x.__class__", "x[0]", "np.log(z)", "__import__('os')", "lambda: 1", "'text'",
        "nope", "X", "Days", "my var", "1e400", "x..", "`", "(", ")", "|", "||", "~", "::",
        "f(x)", "exec('1')", "open('F', 'w')", "[x]", "{x}", "x if z else y", "*x", "**x",
        "x @ z", "y.__dict__", "getattr(x, 'a')"]
GROUPS = ["g", "h", "g/h", "g:h", "h/g", "f", "nope", "(g)", "g/g", "`g`", "1", "x"]
LHS = ["1", "x", "0 + x", "1 + x", "f", "z", "-1 + x", "Days.n", "`my var`", "0", ""]
RESPONSES = ["y", "log(z)", "-", "y + x", "sqrt(z)", "k", "f", "", "y ~ y", "`my var`",
             "I(y * 2)", "x.__class__", "cbind(y, x)"]


@st.composite
def formulas(draw: st.DrawFn) -> str:
    fixed = draw(st.lists(st.sampled_from(COLUMNS + TRANSFORMS), min_size=0, max_size=3))
    if draw(st.booleans()):
        fixed.append(draw(st.sampled_from(JUNK)))
    n_random = draw(st.integers(min_value=0, max_value=3))
    random = [f"({draw(st.sampled_from(LHS))} {draw(st.sampled_from(['|', '||']))} "
              f"{draw(st.sampled_from(GROUPS))})" for _ in range(n_random)]
    if n_random and draw(st.integers(0, 9)) == 0:
        random[0] = f"({random[0]})"  # lme4 reads ((1|g)) as (1|g)
    rhs = " + ".join(fixed + random) or "1"
    text = f"{draw(st.sampled_from(RESPONSES))} ~ {rhs}"
    if draw(st.integers(0, 4)) == 0:  # character-level damage
        i = draw(st.integers(0, len(text)))
        text = text[:i] + draw(st.sampled_from(list("()|~+:*/^`'\"[]{}.,0\\ ") + ["", "__"])) \
            + text[i + draw(st.integers(0, 2)):]
    return text


@FUZZ
@given(formula=formulas())
def test_any_formula_gives_a_fit_or_a_named_error(formula: str, tmp_path_factory: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    where = tmp_path_factory.mktemp("fuzz")
    monkeypatch.chdir(where)
    with outcome_is_ours():
        fit = ml.lmer(formula, DATA, optimizer_settings=QUICK)
        fit.summary()
        fit.to_dict()
        fit.predict(DATA.head(5), allow_new_levels=True)
    assert list(where.iterdir()) == [], f"{formula!r} wrote files"


# -- frames with every dtype ----------------------------------------------------------------

def _column(kind: str, n: int, rng: np.random.Generator) -> Any:
    base = rng.normal(size=n)
    ints = rng.integers(0, 5, size=n)
    labels = np.array([f"L{i}" for i in ints])
    with_na = base.copy()
    with_na[::7] = np.nan
    makers: dict[str, Callable[[], Any]] = {
        "float64": lambda: base, "float32": lambda: base.astype(np.float32),
        "int8": lambda: ints.astype(np.int8), "uint64": lambda: ints.astype(np.uint64),
        "int64": lambda: ints, "Int64": lambda: pd.array(
            [None if i % 5 == 0 else int(v) for i, v in enumerate(ints)], dtype="Int64"),
        "Float64": lambda: pd.array(with_na, dtype="Float64"),
        "boolean": lambda: pd.array([None if i % 9 == 0 else bool(v % 2)
                                     for i, v in enumerate(ints)], dtype="boolean"),
        "bool": lambda: ints % 2 == 0, "string": lambda: pd.array(labels, dtype="string"),
        "object-str": lambda: labels.astype(object),
        "object-mixed": lambda: np.array([v if i % 2 else f"s{v}"
                                          for i, v in enumerate(ints)], dtype=object),
        "object-numbers-one-text": lambda: np.array(
            ["n/a?" if i == 3 else str(v) for i, v in enumerate(base)], dtype=object),
        "category": lambda: pd.Categorical(labels),
        "ordered": lambda: pd.Categorical(labels, categories=sorted(set(labels)),
                                          ordered=True),
        "datetime": lambda: pd.Timestamp("2026-01-01") + pd.to_timedelta(ints, unit="D"),
        "timedelta": lambda: pd.to_timedelta(ints, unit="h"),
        "complex": lambda: base + 1j * base,
        "inf": lambda: np.where(np.arange(n) == 5, np.inf, base),
        "all-nan": lambda: np.full(n, np.nan),
        "constant": lambda: np.ones(n),
        "huge": lambda: base * 1e200, "tiny": lambda: base * 1e-200,
    }
    return makers[kind]()


DTYPES = ["float64", "float32", "int8", "uint64", "int64", "Int64", "Float64", "boolean", "bool",
          "string", "object-str", "object-mixed", "object-numbers-one-text", "category",
          "ordered", "datetime", "timedelta", "complex", "inf", "all-nan", "constant", "huge",
          "tiny"]


@FUZZ
@given(y=st.sampled_from(DTYPES), x=st.sampled_from(DTYPES), g=st.sampled_from(DTYPES),
       polars=st.booleans())
def test_any_dtype_gives_a_fit_or_a_named_error(y: str, x: str, g: str, polars: bool) -> None:
    rng = np.random.default_rng(7)
    n = 60
    frame = pd.DataFrame({"y": _column(y, n, rng), "x": _column(x, n, rng),
                          "g": _column(g, n, rng)})
    data: Any = frame
    if polars:
        pl = pytest.importorskip("polars")
        try:
            data = pl.from_pandas(frame)
        except Exception:  # a dtype polars cannot hold is not our input to test
            data = frame
    with outcome_is_ours():
        fit = ml.lmer("y ~ x + (1 | g)", data, optimizer_settings=QUICK)
        fit.summary()


# -- odd argument values --------------------------------------------------------------------

ODD: list[Any] = [None, -1, 0, 2.5, math.nan, math.inf, -math.inf, "x", "", 123, True, [], {},
                  [1, 2], 1e300, -1e-300, np.array([np.nan]), object(), "satterthwaite", 0.5]


@pytest.fixture(scope="module")
def sleep_fit() -> ml.LinearMixedModelResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ml.lmer("Reaction ~ Days + (Days | Subject)", ml.datasets.load("sleepstudy"))


def _calls(fit: ml.LinearMixedModelResult, v: Any) -> dict[str, Callable[[], Any]]:
    sleep = ml.datasets.load("sleepstudy")
    formula = "Reaction ~ Days + (Days | Subject)"
    serial: dict[str, Any] = {"nsim": 2, "n_jobs": 1, "progress": False}
    # a huge simulation count is a valid request, not an odd value: keep the fuzzer quick
    bounded = -1 if isinstance(v, float) and v > 1e3 else v
    return {
        "lmer(formula)": lambda: ml.lmer(v, sleep),
        "lmer(data)": lambda: ml.lmer(formula, v),
        "lmer(reml)": lambda: ml.lmer(formula, sleep, reml=v),
        "lmer(weights)": lambda: ml.lmer(formula, sleep, weights=v),
        "lmer(offset)": lambda: ml.lmer(formula, sleep, offset=v),
        "lmer(optimizer)": lambda: ml.lmer(formula, sleep, optimizer=v),
        "lmer(start)": lambda: ml.lmer(formula, sleep, start=v),
        "lmer(optimizer_settings)": lambda: ml.lmer(formula, sleep, optimizer_settings=v),
        "lmer(maxeval)": lambda: ml.lmer(formula, sleep, optimizer_settings={"maxeval": v}),
        "lmer(calc_derivs)": lambda: ml.lmer(formula, sleep, calc_derivs=v),
        "coef_table(ddf)": lambda: fit.coef_table(ddf=v),
        "coef_table(level)": lambda: fit.coef_table(level=v),
        "confint(method)": lambda: fit.confint(method=v),
        "confint(level)": lambda: fit.confint(level=v),
        "contrast(L)": lambda: fit.contrast(v),
        "predict(newdata)": lambda: fit.predict(v),
        "predict(re_form)": lambda: fit.predict(re_form=v),
        "predict(allow_new_levels)": lambda: fit.predict(sleep.head(3), allow_new_levels=v),
        "simulate(nsim)": lambda: fit.simulate(nsim=v),
        "simulate(seed)": lambda: fit.simulate(seed=v),
        "residuals(kind)": lambda: fit.residuals(kind=v),
        "anova(v)": lambda: ml.anova(v),
        "anova(fit, v)": lambda: ml.anova(fit, v),
        "compare(fit, v)": lambda: ml.compare(fit, v),
        "icc": lambda: ml.icc(v),
        "r2": lambda: ml.r2(v),
        "design_effect": lambda: ml.design_effect(v),
        "step": lambda: ml.step(v),
        "mundlak(by)": lambda: ml.mundlak(fit, by=v),
        "center(columns)": lambda: ml.center(sleep, v),
        "power(test)": lambda: ml.power(fit, v, **serial),
        "power(effect)": lambda: ml.power(fit, "Days", effect=v, **serial),
        "power(nsim)": lambda: ml.power(fit, "Days", **{**serial, "nsim": bounded}),
        "power(alpha)": lambda: ml.power(fit, "Days", alpha=v, **serial),
        "power(seed)": lambda: ml.power(fit, "Days", seed=v, **serial),
        "bootstrap(n)": lambda: ml.bootstrap(fit, n=bounded, n_jobs=1, progress=False),
        "bootstrap(seed)": lambda: ml.bootstrap(fit, n=2, seed=v, n_jobs=1, progress=False),
        "datasets.load": lambda: ml.datasets.load(v),
        "datasets.describe": lambda: ml.datasets.describe(v),
    }


def _call_names() -> list[str]:
    class _Dummy:
        pass
    return sorted(_calls(_Dummy(), None))  # type: ignore[arg-type]


@FUZZ
@given(call=st.sampled_from(_call_names()), value=st.sampled_from(ODD))
def test_any_argument_gives_a_result_or_a_named_error(sleep_fit: ml.LinearMixedModelResult,
                                                      call: str, value: Any) -> None:
    with outcome_is_ours():
        _calls(sleep_fit, value)[call]()
