"""ml.lmer_moments on Dask DataFrames and Parquet files: the O(N) moments fit from level-sized
sums taken over the partitions on a real multi-process cluster (distributed.LocalCluster)
equals the in-memory fit of the same rows -- variance components, GLS fixed effects and
their standard errors, OLS, conditional modes -- to 1e-8 relative (the sums are the same,
added in another order)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import multilevel as ml
from multilevel.errors import NotApplicableError
from multilevel.results.moments_result import MomentsResult

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
# the tests' ``client`` fixture: the session's LocalCluster (tests/conftest.py)

CROSSED = "y ~ x + trt + (1 | user) + (1 | item)"
RTOL = 1e-8


def crossed_data(n: int = 180, seed: int = 3) -> pd.DataFrame:
    """Sleepstudy-sized crossed design (18 users x 10 items, repeated cells), a three-level
    factor fixed effect, an offset column and two rows with a missing covariate."""
    rng = np.random.default_rng(seed)
    user = rng.integers(0, 18, n)
    item = rng.integers(0, 10, n)
    trt = rng.choice(["ctl", "low", "high"], n)
    x = rng.normal(size=n)
    y = (250 + 10 * x + np.select([trt == "low", trt == "high"], [5.0, -8.0], 0.0)
         + 25 * rng.normal(size=18)[user] + 12 * rng.normal(size=10)[item]
         + 20 * rng.normal(size=n))
    df = pd.DataFrame({"y": y, "x": x, "trt": trt, "user": [f"s{u:03d}" for u in user],
                       "item": item, "off": rng.normal(size=n)})
    df.loc[[7, 120], "x"] = np.nan
    return df


def assert_same(mem: MomentsResult, dsk: MomentsResult) -> None:
    assert isinstance(dsk, MomentsResult)
    assert dsk.nobs == mem.nobs and dsk.n_dropped == mem.n_dropped
    assert dsk.group_names == mem.group_names and dsk.levels == mem.levels
    assert list(dsk.fixef.index) == list(mem.fixef.index)
    np.testing.assert_allclose(dsk.beta, mem.beta, rtol=RTOL)
    np.testing.assert_allclose(dsk.coef_table()["std_error"], mem.coef_table()["std_error"],
                               rtol=RTOL)
    np.testing.assert_allclose(dsk.vcov_array, mem.vcov_array, rtol=RTOL,
                               atol=RTOL * np.abs(mem.vcov_array).max())
    np.testing.assert_allclose(dsk.sigma2_groups, mem.sigma2_groups, rtol=RTOL)
    assert dsk.sigma2_resid == pytest.approx(mem.sigma2_resid, rel=RTOL)
    np.testing.assert_allclose(dsk.ols_beta, mem.ols_beta, rtol=RTOL)
    np.testing.assert_allclose(dsk.ols_vcov, mem.ols_vcov, rtol=RTOL,
                               atol=RTOL * np.abs(mem.ols_vcov).max())
    for a, b in zip(dsk.effects, mem.effects, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=RTOL * np.abs(b).max())
    assert dsk.sweeps == mem.sweeps and dsk.converged == mem.converged
    assert dsk.at_boundary == mem.at_boundary


def test_partitions_equal_in_memory(client):
    df = crossed_data()
    with pytest.warns(ml.errors.MissingDataWarning):
        mem = ml.lmer_moments(CROSSED, df, offset="off", rounds=3)
    with pytest.warns(ml.errors.MissingDataWarning):
        dsk = ml.lmer_moments(CROSSED, dd.from_pandas(df, npartitions=5), offset="off",
                              rounds=3)
    assert_same(mem, dsk)
    assert str(dsk.summary()) == str(mem.summary())
    pd.testing.assert_frame_equal(dsk.varcorr, mem.varcorr, check_exact=False, rtol=RTOL)
    with pytest.raises(NotApplicableError):
        dsk.model_frame()  # the rows stay on the cluster
    assert mem.sigma2_groups.min() > 0  # both components estimated, not at the boundary


def test_parquet_glob_equals_in_memory(client, tmp_path):
    df = crossed_data(seed=8).dropna().reset_index(drop=True)
    for i, part in enumerate(np.array_split(np.arange(len(df)), 3)):
        df.iloc[part].to_parquet(tmp_path / f"part{i}.parquet")
    formula = "y ~ x + (1 | user) + (1 | item)"
    assert_same(ml.lmer_moments(formula, df),
                ml.lmer_moments(formula, str(tmp_path / "part*.parquet")))


def test_random_slope_refused_as_in_memory(client):
    df = crossed_data().dropna()
    formula = "y ~ x + (x | user) + (1 | item)"
    with pytest.raises(NotApplicableError) as mem:
        ml.lmer_moments(formula, df)
    with pytest.raises(NotApplicableError) as dsk:
        ml.lmer_moments(formula, dd.from_pandas(df, npartitions=2))
    assert str(dsk.value) == str(mem.value)
    assert "(x | user)" in str(dsk.value)


def test_three_factors_in_any_order_with_a_boundary_component(client):
    """Terms given smallest factor first (the sums come per block, ordered by size; the result
    follows the formula's terms as in memory), one factor without variance (its component is
    set to zero in both fits)."""
    rng = np.random.default_rng(21)
    n = 240
    site, user, item = rng.integers(0, 6, n), rng.integers(0, 40, n), rng.integers(0, 15, n)
    x = rng.normal(size=n)
    y = 1 + 0.5 * x + rng.normal(size=40)[user] + 0.6 * rng.normal(size=15)[item] \
        + rng.normal(size=n)
    df = pd.DataFrame({"y": y, "x": x, "site": site, "user": user, "item": item})
    formula = "y ~ x + (1 | site) + (1 | item) + (1 | user)"
    mem = ml.lmer_moments(formula, df)
    assert mem.at_boundary == ("site",)
    assert_same(mem, ml.lmer_moments(formula, dd.from_pandas(df, npartitions=3)))


def test_fits_where_the_exact_model_is_too_large(client, monkeypatch):
    """The moments path uses the exact path's passes but not its model: with (pretend) 16 bytes
    of memory the exact Dask lmer is refused, the moments fit is not (for real designs: 400k
    rows with 150k x 80k crossed levels, whose exact fit would need ~200 GiB)."""
    import multilevel.models.memory as memory

    monkeypatch.setattr(memory, "available_memory_bytes", lambda: 16)
    df = crossed_data(seed=5).dropna().reset_index(drop=True)
    formula = "y ~ x + (1 | user) + (1 | item)"
    ddf = dd.from_pandas(df, npartitions=2)
    with pytest.raises(ml.errors.ModelTooLargeError):
        ml.lmer(formula, ddf)
    assert_same(ml.lmer_moments(formula, df), ml.lmer_moments(formula, ddf))
