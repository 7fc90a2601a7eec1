"""Separated data and PIRLS divergence end in a reported, unconverged fit -- never an endless
loop, a crash or a silent fit with absurd estimates (lme4 is silent on separation; glm warns
"fitted probabilities numerically 0 or 1 occurred").

The data sets are small simulations with fixed seeds; each is separated by construction.
"""

from __future__ import annotations

import signal
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest

import multilevel as ml
from multilevel.errors import ConvergenceWarning, NumericalError
from multilevel.families import Binomial, Gamma, Poisson
from multilevel.models.separation import divergence_messages, separating_direction

GROUPS, PER_GROUP = 12, 8
# A fit that has not ended by then is stuck: these fits take well under a second.
DEADLINE_S = 120


@contextmanager
def deadline(seconds: int = DEADLINE_S) -> Iterator[None]:
    """Fail (rather than hang) when the block runs past ``seconds``."""
    def expire(signum: int, frame: object) -> None:
        raise AssertionError(f"the fit did not end within {seconds} s")
    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def fit_quietly(formula: str, data: pd.DataFrame, **kwargs: object,
                ) -> tuple[ml.GeneralizedLinearMixedModelResult, list[str]]:
    """The fit and the messages of the ConvergenceWarnings it issued."""
    with deadline(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = ml.glmer(formula, data, **kwargs)  # type: ignore[arg-type]
    return fit, [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]


def base(seed: int = 3) -> tuple[pd.DataFrame, np.random.Generator]:
    rng = np.random.default_rng(seed)
    n = GROUPS * PER_GROUP
    df = pd.DataFrame({"g": [f"h{i}" for i in np.repeat(np.arange(GROUPS), PER_GROUP)],
                       "x": rng.normal(size=n)})
    return df, rng


def diverged(fit: ml.GeneralizedLinearMixedModelResult) -> list[str]:
    return [m for m in fit.optsum.messages if "diverge" in m]


def test_complete_separation_is_reported() -> None:
    df, _ = base()
    df["y"] = (df["x"] > 0).astype(float)  # x predicts every outcome
    fit, warned = fit_quietly("y ~ x + (1 | g)", df)
    assert not fit.converged
    [message] = diverged(fit)
    assert message.startswith("fixed effect 'x' (+Inf) diverges: the data are "
                              "(quasi-)completely separated")
    assert "in 96 of 96 rows" in message
    assert "not meaningful" in message
    assert message in warned
    assert message in fit.summary()
    assert fit.to_dict()["converged"] is False


def test_quasi_separation_by_a_treatment_names_only_it() -> None:
    df, rng = base()
    t = rng.integers(0, 2, len(df))
    df["t"] = t.astype(float)
    df["y"] = np.where(t == 1, 1.0, rng.integers(0, 2, len(df)))  # every treated row a success
    fit, warned = fit_quietly("y ~ t + (1 | g)", df)
    assert not fit.converged
    [message] = diverged(fit)
    assert message.startswith("fixed effect 't' (+Inf) diverges")
    assert "(Intercept)" not in message
    assert any(message == w for w in warned)
    # the other estimates stay finite and ordinary
    assert abs(fit.fixef["(Intercept)"]) < 2


def test_quasi_separation_with_ties_at_the_boundary() -> None:
    df, rng = base()
    x = np.round(df["x"].to_numpy())
    df["x"] = x
    df["y"] = np.where(x > 0, 1.0, np.where(x < 0, 0.0, rng.integers(0, 2, len(df))))
    fit, _ = fit_quietly("y ~ x + (1 | g)", df)
    assert not fit.converged
    [message] = diverged(fit)
    assert message.startswith("fixed effect 'x' (+Inf) diverges")


def test_a_factor_level_with_one_outcome() -> None:
    df, rng = base()
    level = rng.choice(["a", "b", "c"], len(df))
    df["f"] = level
    df["y"] = np.where(level == "c", 0.0, rng.integers(0, 2, len(df)))
    fit, _ = fit_quietly("y ~ f + (1 | g)", df)
    assert not fit.converged
    [message] = diverged(fit)
    assert message.startswith("fixed effect 'fc' (-Inf) diverges")
    assert "factor levels that have a single outcome" in message
    # nAGQ = 0 (beta inside PIRLS) ends the same way
    fit0, _ = fit_quietly("y ~ f + (1 | g)", df, nagq=0)
    assert not fit0.converged
    assert diverged(fit0)[0].startswith("fixed effect 'fc' (-Inf) diverges")


def test_counts_all_zero_in_a_level() -> None:
    df, rng = base()
    level = rng.choice(["a", "b", "c"], len(df))
    df["f"] = level
    df["y"] = np.where(level == "b", 0.0, rng.poisson(3.0, len(df))).astype(float)
    fit, warned = fit_quietly("y ~ f + (1 | g)", df, family="poisson")
    assert not fit.converged
    [message] = diverged(fit)
    assert message.startswith("fixed effect 'fb' (-Inf) diverges: the counts are 0 in every "
                              "row")
    assert message in warned


def test_sound_fits_are_not_flagged() -> None:
    # a steep but not separated logistic slope, and counts with many zeros
    df, rng = base(11)
    df["y"] = rng.binomial(1, 1 / (1 + np.exp(-4 * df["x"].to_numpy()))).astype(float)
    fit, _ = fit_quietly("y ~ x + (1 | g)", df)
    assert fit.converged and not diverged(fit)
    df["k"] = rng.poisson(np.exp(-1.5 + df["x"].to_numpy())).astype(float)
    fit, _ = fit_quietly("k ~ x + (1 | g)", df, family="poisson")
    assert fit.converged and not fit.optsum.messages[1:] and not diverged(fit)


def test_exposure_given_as_offset_is_reported() -> None:
    # the offset should be log(exposure): with the exposure itself (1..30 on the log scale)
    # no mean can fit the counts, and the fitted means of many positive counts are ~0
    df, rng = base()
    df["y"] = rng.poisson(3.0, len(df)).astype(float)
    df["exposure"] = rng.uniform(1.0, 30.0, len(df))
    fit, warned = fit_quietly("y ~ x + (1 | g)", df, family="poisson", offset="exposure")
    assert not fit.converged
    [message] = [m for m in fit.optsum.messages if "cannot fit" in m]
    assert "fitted means numerically 0" in message
    assert "log(exposure)" in message
    assert "row " in message and "(y = " in message
    assert message in warned


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's overflow on the way there
def test_an_offset_no_start_can_fit_is_a_typed_error() -> None:
    df, rng = base()
    df["y"] = rng.poisson(3.0, len(df)).astype(float)
    df["off"] = np.where(np.arange(len(df)) % 7 == 0, 800.0, 0.0)
    with deadline(), pytest.raises(NumericalError) as info:
        ml.glmer("y ~ x + (1 | g)", df, family="poisson", offset="off")
    text = str(info.value)
    assert "starting values" in text
    assert "offset ranges from 0 to 800" in text
    assert "log(exposure)" in text


def test_separating_direction() -> None:
    x = np.array([-2.0, -1.0, -0.5, 0.5, 1.0, 3.0])
    X = np.column_stack([np.ones(6), x])
    y = (x > 0).astype(float)
    d = separating_direction(X, y == 0, y == 1)
    assert d is not None
    assert d[0] == 0 and d[1] > 0  # the sparsest direction leaves the intercept alone
    # one overlap (a failure at x = 1 between successes) removes the separation
    y2 = y.copy()
    y2[4] = 0.0
    assert separating_direction(X, y2 == 0, y2 == 1) is None
    # proportions strictly inside (0, 1) pin x'd = 0 in their rows: one at x = 0 leaves the
    # slope free to diverge, two (at x = -1 and 1) pin both coefficients
    Xp = np.column_stack([np.ones(5), [-2.0, -1.0, 0.0, 1.0, 2.0]])
    d = separating_direction(Xp, np.array([1, 1, 0, 0, 0], bool), np.array([0, 0, 0, 1, 1], bool))
    assert d is not None and d[0] == 0 and d[1] > 0
    assert separating_direction(Xp[[0, 1, 3, 4]], np.array([1, 0, 0, 0], bool),
                                np.array([0, 0, 0, 1], bool)) is None
    Xb = np.column_stack([np.ones(4), [0.0, 0.0, 1.0, 1.0]])
    # both outcomes at each value: no direction; all successes where the dummy is 1: one
    assert separating_direction(Xb, np.array([1, 0, 1, 0], bool),
                                np.array([0, 1, 0, 1], bool)) is None
    d = separating_direction(Xb, np.array([1, 0, 0, 0], bool), np.array([0, 1, 1, 1], bool))
    assert d is not None and d[0] == 0 and d[1] > 0


def test_divergence_messages_need_fitted_means_at_the_edge() -> None:
    X = np.column_stack([np.ones(4), [-1.0, -0.5, 0.5, 1.0]])
    y = np.array([0.0, 0.0, 1.0, 1.0])
    names = ["(Intercept)", "x"]
    # separated, but the fit did not run off (means away from 0 and 1): nothing to report
    assert divergence_messages(X, y, np.array([0.2, 0.3, 0.7, 0.8]), Binomial(), names) == []
    [message] = divergence_messages(X, y, np.array([1e-12, 1e-9, 1 - 1e-9, 1 - 1e-12]),
                                    Binomial(), names)
    assert message.startswith("fixed effect 'x' (+Inf) diverges")
    assert "in 4 of 4 rows" in message
    # families without an edge the data can reach, and links that reach the edge at finite
    # estimates, have nothing to diverge
    assert divergence_messages(X, y + 1, np.full(4, 1e-9), Gamma(), names) == []
    assert divergence_messages(X, np.zeros(4), np.full(4, 1e-9), Poisson(link="identity"),
                               names) == []
    # a count fitted at mean ~0 against the data is quoted, with the row's label
    [bad] = divergence_messages(X, np.array([0.0, 2.0, 1.0, 3.0]),
                                np.array([1e-12, 1e-10, 1.0, 3.0]), Poisson(), names,
                                labels=np.array([10, 11, 12, 13]))
    assert "row 11 (y = 2, fitted 1e-10)" in bad
