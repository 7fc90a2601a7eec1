"""``fit.predict``: an unseen level is refused by default, as lme4's ``predict.merMod``
(``allow.new.levels = FALSE``), with a message that says how to get the other behaviour; its
arguments are checked with typed errors."""

from __future__ import annotations

import numpy as np
import pytest

import multilevel as ml
from multilevel.errors import ArgumentError, DataError


@pytest.fixture(scope="module")
def fit():
    return ml.lmer("Reaction ~ Days + (Days | Subject)", ml.datasets.load("sleepstudy"))


@pytest.fixture(scope="module")
def new():
    return ml.datasets.load("sleepstudy").head(3).assign(Subject="new-subject")


def test_unseen_level_is_refused_by_default(fit, new):
    with pytest.raises(DataError) as info:
        fit.predict(new)
    message = str(info.value)
    assert "new-subject" in message and "Subject" in message
    assert "allow_new_levels=True" in message  # says how to get the other behaviour


def test_allow_new_levels_predicts_at_population_level(fit, new):
    np.testing.assert_allclose(fit.predict(new, allow_new_levels=True),
                               fit.predict(new, re_form="~0"), rtol=1e-12)


def test_seen_levels_need_no_flag(fit):
    data = ml.datasets.load("sleepstudy")
    np.testing.assert_allclose(fit.predict(data), fit.fitted(), rtol=1e-12)


@pytest.mark.parametrize("value", ["yes", 1, None, [True]])
def test_allow_new_levels_must_be_bool(fit, new, value):
    with pytest.raises(ArgumentError, match="allow_new_levels"):
        fit.predict(new, allow_new_levels=value)


@pytest.mark.parametrize("value", ["sleepstudy", 3, [1, 2], np.zeros((2, 2))])
def test_newdata_must_be_a_frame(fit, value):
    with pytest.raises(ArgumentError, match="newdata"):
        fit.predict(value)
