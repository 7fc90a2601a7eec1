"""Helpers shared by the tests that compare two fits of the same model (a fit with damaged or
reweighted rows against the fit on the rows that count)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest

import multilevel as ml


def quiet_fit(formula: str, data: Any, **kwargs: Any) -> ml.LinearMixedModelResult:
    """``ml.lmer`` with the library's own warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ml.errors.MultilevelWarning)
        return ml.lmer(formula, data, **kwargs)


def assert_same_fit(a: ml.LinearMixedModelResult, b: ml.LinearMixedModelResult,
                    rtol: float = 1e-10) -> None:
    """The two fits agree on the rows, groups, criterion and every estimate."""
    assert a.nobs == b.nobs
    assert a.fixed_names == b.fixed_names
    assert a.ngroups == b.ngroups
    assert a.objective == pytest.approx(b.objective, rel=rtol)
    assert a.sigma == pytest.approx(b.sigma, rel=rtol)
    np.testing.assert_allclose(a.beta, b.beta, rtol=rtol)
    np.testing.assert_allclose(a.theta, b.theta, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(a.vcov.to_numpy(), b.vcov.to_numpy(), rtol=rtol)


def crossed_ratings(seed: int, n: int, n_users: int, n_items: int,
                    exponent: float = 0.9) -> pd.DataFrame:
    """Users x items with power-law item popularity (rank^-exponent), the shape of
    ``benchmarks/crossed_large_bench.py``: y = 1 + 0.5 x + u (sd 0.8) + v (sd 0.5) + e."""
    rng = np.random.default_rng(seed)
    p = np.arange(1, n_items + 1.0) ** -exponent
    p /= p.sum()
    user = rng.integers(0, n_users, n)
    item = rng.choice(n_items, n, p=p)
    x = rng.standard_normal(n)
    y = (1 + 0.5 * x + rng.normal(0, 0.8, n_users)[user] + rng.normal(0, 0.5, n_items)[item]
         + rng.standard_normal(n))
    return pd.DataFrame({"y": y, "x": x, "user": user, "item": item})
