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
