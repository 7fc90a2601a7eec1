"""Fuzzing the entry points added with the GLMM and nlme work (glmer, gls, lme, nlme,
lm_list, nls_list): whatever formula text, random part, method or level a user passes, the
answer is a fit or a multilevel.errors exception that is not the InternalError net (which
would mean an unexpected exception reached the API boundary)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import multilevel as ml
from multilevel.errors import InternalError, MultilevelError

from reference_data import load_data

ORTHODONT = load_data("Orthodont")
ORANGE = load_data("Orange")
CBPP = load_data("cbpp")

TEXTS = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["distance ~ age", "distance ~ age | Subject", "~ 1 | Subject",
                     "~ age | Subject", "Asym ~ 1 | Tree", "Asym + xmid ~ 1 | Tree",
                     "circumference ~ SSlogis(age, Asym, xmid, scal) | Tree",
                     "circumference ~ SSfpl(age, A, B, xmid, scal) | Tree",
                     "incidence ~ period + (1 | herd)", "~ | ", "|", "a ~ b | c | d",
                     "distance ~ nope", "cbind(incidence, size) ~ 1 + (1 | herd)"]))
VALUES = st.one_of(st.none(), st.integers(-3, 30), st.floats(allow_nan=True), TEXTS,
                   st.booleans())


def answers(call: Callable[[], Any]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            call()
        except InternalError as exc:  # pragma: no cover - the failure being tested for
            pytest.fail(f"unexpected exception reached the API: {exc}")
        except MultilevelError:
            pass


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(TEXTS, TEXTS, VALUES)
def test_new_entry_points_answer_any_input_with_a_fit_or_a_named_error(a: str, b: str,
                                                                        c: Any) -> None:
    answers(lambda: ml.lm_list(a, ORTHODONT, pool=c))
    answers(lambda: ml.nls_list(a, ORANGE))
    answers(lambda: ml.gls(a, ORTHODONT, method=c))
    answers(lambda: ml.gls("distance ~ age", ORTHODONT, correlation=ml.CorAR1(form=a)))
    answers(lambda: ml.gls("distance ~ age", ORTHODONT, weights=ml.VarIdent(form=a)))
    answers(lambda: ml.lme(a, ORTHODONT, random=b, method=c))
    answers(lambda: ml.nlme("circumference ~ SSlogis(age, Asym, xmid, scal)", ORANGE,
                            random=b, fixed=a, method=c))
    answers(lambda: ml.glmer(a, CBPP, family=b, nagq=c))
    answers(lambda: ml.lm_list("distance ~ age | Subject", ORTHODONT).intervals(level=c))


MODELS = st.one_of(TEXTS, st.sampled_from([
    "circumference ~ Asym / (1 + exp((xmid - age) / scal))",
    "circumference ~ SSlogis(age, Asym, xmid, scal)", "circumference ~ f(age, Asym)",
    "circumference ~ Asym * age.__class__", "circumference ~ Asym[0]", "~ Asym",
    "circumference ~ lambda: 1", "circumference ~ Asym ** age", "circumference ~ pi * Asym",
    "circumference ~ SSlogis(age, Asym + xmid, xmid, scal)", "log(circumference) ~ Asym"]))
RANDOMS = st.one_of(
    VALUES, st.sampled_from(["Asym ~ 1 | Tree/age", "Asym ~ age | Tree", "Nope ~ 1 | Tree"]),
    st.builds(lambda t: ml.PdDiag(t) if "~" in t and "|" not in t else t, TEXTS),
    st.dictionaries(st.sampled_from(["Tree", "age", "Nope", ""]), TEXTS, max_size=2),
    st.lists(TEXTS, max_size=2))
STARTS = st.one_of(st.none(), st.lists(VALUES, max_size=4),
                   st.dictionaries(st.sampled_from(["Asym", "xmid", "scal", "K"]), VALUES,
                                   max_size=3))


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(MODELS, st.one_of(TEXTS, st.lists(TEXTS, max_size=2)), RANDOMS, VALUES, STARTS, VALUES)
def test_nlme_answers_any_specification_with_a_fit_or_a_named_error(
        model: str, fixed: Any, random: Any, groups: Any, start: Any, other: Any) -> None:
    answers(lambda: ml.nlme(model, ORANGE, fixed=fixed, random=random, groups=groups,
                            start=start))
    answers(lambda: ml.nlme("circumference ~ f(age, Asym)", ORANGE, fixed="Asym ~ 1",
                            random="Asym ~ 1 | Tree", start={"Asym": 150},
                            functions={"f": other} if not callable(other) else None))
    answers(lambda: ml.nlme("circumference ~ SSlogis(age, Asym, xmid, scal)", ORANGE,
                            random="Asym ~ 1 | Tree", control=other))
    answers(lambda: ml.PdBlocked(other))


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(VALUES, VALUES)
def test_nlme_results_answer_any_argument_with_a_value_or_a_named_error(a: Any, b: Any) -> None:
    fit = _orange_fit()
    answers(lambda: fit.predict(level=a))
    answers(lambda: fit.residuals(a, level=b))
    answers(lambda: fit.intervals(level=a, which=b))
    answers(lambda: fit.coef(level=a))
    answers(lambda: fit.simulate(nsim=a, seed=b))
    answers(lambda: fit.predict(ORANGE.assign(Tree=a), level=[0, 1]))


_CACHE: dict[str, Any] = {}


def _orange_fit() -> Any:
    if "fit" not in _CACHE:
        _CACHE["fit"] = ml.nlme("circumference ~ SSlogis(age, Asym, xmid, scal)", ORANGE,
                                random="Asym ~ 1 | Tree")
    return _CACHE["fit"]
