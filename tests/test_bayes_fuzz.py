"""Fuzzing the Bayesian entry points' input checks: whatever prior text, prior field, sampler
setting, family, formula or nonlinear parameter spec a user passes, the answer is a
multilevel.errors exception that names the problem (not the InternalError net) — raised before
any sampling starts, so these examples never compile a sampler."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import multilevel as ml
from multilevel.errors import InternalError, MultilevelError

pytest.importorskip("numpyro")

SLEEP = ml.datasets.load("sleepstudy")
ORANGE = ml.datasets.load("Orange")

TEXTS = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["normal(0)", "normal(0, -1)", "student_t(3, 0)", "lkj(-1)",
                     "__import__('os')", "normal(0, 1) + 1", "gamma(0, 1)", "beta(1)",
                     "uniform(2, 1)", "cauchy(0, 1, 2)", "normal(x, 1)", "normal", ""]))
VALUES = st.one_of(st.none(), st.integers(-3, 3), st.floats(allow_nan=True), TEXTS,
                   st.booleans(), st.lists(st.integers(), max_size=2))


def refused(call: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(MultilevelError) as info:
            call()
    assert not isinstance(info.value, InternalError), info.value
    assert str(info.value)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=TEXTS)
def test_prior_text_is_a_distribution_or_a_named_error(spec):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            p = ml.prior(spec)
        except MultilevelError as exc:
            assert not isinstance(exc, InternalError), exc
            return
    assert p.distribution.text()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(["class_", "coef", "group", "nlpar"]), value=VALUES)
def test_prior_fields_are_checked(field, value):
    kwargs = {field: value}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ml.prior("normal(0, 1)", **kwargs)
        except MultilevelError as exc:
            assert not isinstance(exc, InternalError), exc


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(["chains", "draws", "warmup", "seed", "target_accept",
                             "max_tree_depth", "thin"]),
       value=st.one_of(st.integers(-5, 0), st.floats(allow_nan=True), st.text(max_size=5),
                       st.booleans()))
def test_bad_sampler_settings_are_refused_by_name(name, value):
    if name == "seed" and isinstance(value, int) and not isinstance(value, bool) and value == 0:
        return  # seed 0 is valid
    if name == "warmup" and isinstance(value, int) and not isinstance(value, bool) \
            and value == 0:
        return  # no warmup is valid
    if name == "target_accept" and isinstance(value, float) and 0 < value < 1:
        return
    refused(lambda: ml.bayes("Reaction ~ Days + (1 | Subject)", SLEEP, progress=False,
                             **{name: value}))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(family=VALUES, priors=st.one_of(VALUES, st.lists(VALUES, min_size=1, max_size=2)))
def test_bad_family_or_priors_argument_is_refused(family, priors):
    try:  # a family name that happens to be valid ("NORMAL") needs a bad priors argument
        ml.families.family(family)
        family_ok = True
    except MultilevelError:
        family_ok = False
    if family_ok and priors is None:
        return
    refused(lambda: ml.bayes("Reaction ~ Days + (1 | Subject)", SLEEP, family=family,
                             priors=priors, progress=False))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=st.one_of(VALUES, st.dictionaries(st.sampled_from(["Asym", "xmid", "nope",
                                                                  "age"]),
                                                VALUES, max_size=3)))
def test_bad_nonlinear_parameters_are_refused(params):
    # the model's own parameters each with "1" would be valid: keep one spec wrong
    if isinstance(params, dict) and all(isinstance(v, str) for v in params.values()) \
            and set(params) <= {"Asym", "xmid"}:
        params = {**params, "nope": "1"}
    refused(lambda: ml.bayes_nlme("circumference ~ Asym / (1 + exp((xmid - age) / scal))",
                                  ORANGE, params=params, progress=False))
