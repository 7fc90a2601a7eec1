"""ml.lmer on Dask DataFrames and Parquet files: the same fit as in memory, from cross-products
summed on a real multi-process cluster (distributed.LocalCluster, not the synchronous
scheduler).

Tolerances. The Dask model is the in-memory model: its objective at any theta agrees to 1e-12
(relative), and the fit's log-likelihood, fixed effects and standard errors to 1e-10. Theta is
compared to 1e-8: the optimum is determined only to the optimizer's resolution, so any change
in the last bits of the cross-products (here the order of the sums; in memory, merely
shuffling the rows) moves BOBYQA's final theta by ~1e-10 to 1e-9 -- while the objective there
agrees to 1e-14.
"""

from __future__ import annotations

import os
import pickle
import signal
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import multilevel as ml
from multilevel.errors import DataError, FormulaError, MissingExtraError, NotApplicableError

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
# the tests' ``client`` fixture: the session's LocalCluster (tests/conftest.py)

SLEEP = "Reaction ~ Days + (Days | Subject)"
CROSSED = "y ~ x + trt + (1 | user) + (1 | item)"


def crossed_data(n: int = 4000, seed: int = 11) -> pd.DataFrame:
    """Simulated crossed design (users x items) with a three-level factor fixed effect, a few
    missing values, a few users seen only in one partition."""
    rng = np.random.default_rng(seed)
    user = rng.integers(0, 80, n)
    item = rng.integers(0, 30, n)
    trt = rng.choice(["ctl", "low", "high"], n)
    x = rng.normal(size=n)
    y = (2.0 + 0.5 * x + np.select([trt == "low", trt == "high"], [0.3, -0.4], 0.0)
         + 0.8 * rng.normal(size=80)[user] + 0.5 * rng.normal(size=30)[item]
         + rng.normal(size=n))
    df = pd.DataFrame({"y": y, "x": x, "trt": trt, "user": [f"u{u:03d}" for u in user],
                       "item": item})
    df.loc[[i for i in (3, 50, 777) if i < n], "x"] = np.nan
    return df


def assert_same_fit(mem, dsk, rtol: float = 1e-6) -> None:
    """``dsk`` (a Dask fit) is ``mem`` (the in-memory fit of the same rows).

    The model itself to rounding: at the in-memory optimum the Dask model gives the same
    log-likelihood, fixed effects, standard errors, sigma and conditional modes to 1e-10, and
    the same objective at any theta to 1e-12. The fit: the same log-likelihood to 1e-10;
    theta and beta to ``rtol``, the optimizer's resolution (see the module docstring)."""
    from multilevel.distributed.stages import DaskLinearMixedModelResult

    assert isinstance(dsk, DaskLinearMixedModelResult)
    assert dsk.nobs == mem.nobs and dsk.n_dropped == mem.n_dropped
    assert list(dsk.fixef.index) == list(mem.fixef.index)
    assert dsk.ngroups == mem.ngroups
    at = DaskLinearMixedModelResult.from_model(dsk.model, mem.optsum)  # at mem's theta
    assert at.loglik == pytest.approx(mem.loglik, rel=1e-10)
    assert at.sigma == pytest.approx(mem.sigma, rel=1e-10)
    np.testing.assert_allclose(at.beta, mem.beta, rtol=1e-10)
    np.testing.assert_allclose(np.sqrt(np.diag(at.vcov)), np.sqrt(np.diag(mem.vcov)),
                               rtol=1e-10)
    for name, frame in mem.ranef.items():
        assert list(at.ranef[name].index) == list(frame.index)
        scale = float(np.abs(frame.to_numpy()).max())
        np.testing.assert_allclose(at.ranef[name].to_numpy(), frame.to_numpy(), rtol=0,
                                   atol=1e-10 * scale)
    for theta in (mem.theta, dsk.theta, mem.theta * 1.3 + 0.1):
        assert dsk.model.objective(theta) == pytest.approx(mem.model.objective(theta),
                                                           rel=1e-12)
    # the fit itself
    assert dsk.loglik == pytest.approx(mem.loglik, rel=1e-10)
    scale = float(np.abs(mem.theta).max())
    np.testing.assert_allclose(dsk.theta, mem.theta, rtol=rtol, atol=rtol * scale)
    np.testing.assert_allclose(dsk.beta, mem.beta, rtol=rtol)


def test_sleepstudy_partitions_same_fit(client):
    df = ml.datasets.load("sleepstudy")
    mem = ml.lmer(SLEEP, df)
    dsk = ml.lmer(SLEEP, dd.from_pandas(df, npartitions=6))
    assert_same_fit(mem, dsk)
    # what needs the rows is one more pass on the workers
    np.testing.assert_allclose(dsk.fitted(), mem.fitted(), rtol=1e-8)
    np.testing.assert_allclose(dsk.residuals(), mem.residuals(), rtol=1e-6, atol=1e-8)
    assert "Scaled residuals" in dsk.summary()
    with pytest.raises(NotApplicableError, match="simulate"):
        dsk.simulate()
    with pytest.raises(NotApplicableError, match="newdata"):
        dsk.predict()
    np.testing.assert_allclose(dsk.predict(df.head(20)), mem.predict(df.head(20)), rtol=1e-8)
    # what reads X or y row by row is a typed error, never a value computed from no rows
    with pytest.raises(NotApplicableError, match="kenward-roger"):
        dsk.coef_table(ddf="kenward-roger")
    with pytest.raises(NotApplicableError, match="row by row"):
        ml.anova(dsk, ddf="kenward-roger")
    with pytest.raises(NotApplicableError):
        dsk.profile()
    with pytest.raises(NotApplicableError, match="cannot be saved"):
        dsk.save("never-written.mlm")


def test_crossed_factor_fixed_effect_same_fit(client):
    df = crossed_data()
    with pytest.warns(ml.errors.MissingDataWarning):
        mem = ml.lmer(CROSSED, df)
    with pytest.warns(ml.errors.MissingDataWarning):
        dsk = ml.lmer(CROSSED, dd.from_pandas(df, npartitions=7))
    assert dsk.n_dropped == 3
    assert_same_fit(mem, dsk)


@pytest.mark.parametrize("formula", [
    "y ~ x + trt + (x | user) + (1 | item)",        # a random slope, crossed
    "y ~ x + (1 | user/trt)",                         # nested
    "y ~ 0 + x + trt + (1 | user)",                   # no intercept: nothing centred
    "y ~ log(item + 1) + x:trt + (1 | item:trt)",     # transforms and interactions
])
def test_more_formulas_same_fit(client, formula):
    df = crossed_data(2500, seed=5).dropna()
    mem = ml.lmer(formula, df)
    dsk = ml.lmer(formula, dd.from_pandas(df, npartitions=5))
    assert_same_fit(mem, dsk, rtol=1e-5)  # flatter optima: theta to the optimizer's resolution


def factor_types_data(n: int = 1500, seed: int = 4) -> pd.DataFrame:
    """An ordered factor, a logical, a pandas string column, a categorical grouping factor, a
    numeric grouping factor, an offset column and a duplicated (aliased) predictor."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "x": rng.normal(size=n),
        "dose": pd.Categorical(rng.choice(["lo", "mid", "hi"], n),
                               categories=["lo", "mid", "hi"], ordered=True),
        "flag": rng.random(n) > 0.5, "s": pd.Series(rng.choice(["p", "q"], n), dtype="string"),
        "g": pd.Categorical(rng.choice([f"g{i}" for i in range(30)], n)),
        "h": rng.integers(0, 12, n).astype(float), "t": rng.uniform(1, 3, n),
        "o": rng.normal(size=n)})
    df["y"] = rng.normal(size=n) + rng.normal(size=30)[df.g.cat.codes] + 0.3 * df.x
    df["x2"] = 2.0 * df.x
    return df


@pytest.mark.parametrize(("formula", "offset"), [
    ("y ~ x + dose + (1 | g)", None),                       # ordered factor: contr.poly
    ("y ~ x + flag + s + (1 | g:s)", None),                 # logical, string, interaction
    ("y ~ x + offset(log(t)) + (1 | g) + (1 | h)", "o"),    # both kinds of offset
])
def test_factor_types_and_offsets_same_fit(client, formula, offset):
    df = factor_types_data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ml.errors.SingularFitWarning)
        mem = ml.lmer(formula, df, offset=offset)
        dsk = ml.lmer(formula, dd.from_pandas(df, npartitions=4), offset=offset)
    assert_same_fit(mem, dsk, rtol=1e-5)
    np.testing.assert_allclose(dsk.fitted(), mem.fitted(), rtol=1e-6, atol=1e-8)


def test_aliased_column_dropped_as_in_memory(client):
    df = factor_types_data()
    with pytest.warns(ml.errors.RankDeficiencyWarning, match="x2"):
        mem = ml.lmer("y ~ x + x2 + (1 | g)", df)
    with pytest.warns(ml.errors.RankDeficiencyWarning, match="x2"):
        dsk = ml.lmer("y ~ x + x2 + (1 | g)", dd.from_pandas(df, npartitions=3))
    assert dsk.model.design.dropped_fixed == ("x2",)
    assert_same_fit(mem, dsk)


def test_weights_column(client):
    df = crossed_data(2000, seed=3).dropna()
    df["w"] = np.random.default_rng(0).uniform(0.5, 2.0, len(df))
    mem = ml.lmer(CROSSED, df, weights="w")
    dsk = ml.lmer(CROSSED, dd.from_pandas(df, npartitions=4), weights="w")
    assert_same_fit(mem, dsk)
    with pytest.raises(ml.errors.ArgumentError, match="column name"):
        ml.lmer(CROSSED, dd.from_pandas(df, npartitions=4), weights=df["w"].to_numpy())


def test_parquet_glob(client, tmp_path: Path):
    df = crossed_data(3000, seed=2).dropna().reset_index(drop=True)
    for i, part in enumerate(np.array_split(np.arange(len(df)), 4)):
        df.iloc[part].to_parquet(tmp_path / f"part-{i}.parquet")
    mem = ml.lmer(CROSSED, df)
    dsk = ml.lmer(CROSSED, str(tmp_path / "*.parquet"))
    assert_same_fit(mem, dsk)


def test_client_receives_only_level_sized_results(client, monkeypatch):
    """The passes bring back results whose size depends on the levels, not on the rows:
    the same design with 4x the rows gives results of the same pickled size."""
    from multilevel.distributed import lmer as dlmer

    sizes: list[int] = []
    compute = dlmer._compute

    def recording(obj):
        out = compute(obj)
        sizes.append(len(pickle.dumps(out)))
        return out

    monkeypatch.setattr(dlmer, "_compute", recording)
    small = crossed_data(4000, seed=1).dropna()
    big = pd.concat([small] * 4, ignore_index=True)
    ml.lmer(CROSSED, dd.from_pandas(small, npartitions=4))
    ml.lmer(CROSSED, dd.from_pandas(big, npartitions=16))
    levels_small, sums_small, levels_big, sums_big = sizes
    assert sums_big == pytest.approx(sums_small, rel=0.01)
    assert levels_big == pytest.approx(levels_small, rel=0.05)
    assert sums_big < big.memory_usage(deep=True).sum() / 10


KILL_DIR = "MULTILEVEL_TEST_KILL_DIR"


def kill_worker_once(frame: pd.DataFrame, marker: str) -> pd.DataFrame:
    """Kill the worker process running this task the second time the first partition (the
    one holding row 0) is read: the first read is the levels pass, the second the sums pass."""
    if len(frame) and frame.index[0] == 0 and not os.path.exists(marker + ".killed"):
        reads = marker + ".reads"
        count = int(Path(reads).read_text()) if os.path.exists(reads) else 0
        Path(reads).write_text(str(count + 1))
        if count + 1 == 2:
            Path(marker + ".killed").write_text("1")
            os.kill(os.getpid(), signal.SIGKILL)
    return frame


def test_worker_killed_mid_pass_retries_to_the_right_answer(client, tmp_path: Path):
    df = crossed_data(3000, seed=9).dropna()
    mem = ml.lmer(CROSSED, df)
    ddf = dd.from_pandas(df, npartitions=6)
    ddf = ddf.map_partitions(kill_worker_once, str(tmp_path / "kill"), meta=ddf._meta)
    dsk = ml.lmer(CROSSED, ddf)
    assert (tmp_path / "kill.killed").exists()  # the worker did die in the sums pass
    assert_same_fit(mem, dsk)
    client.wait_for_workers(2, timeout=60)


def test_data_dependent_transform_refused(client):
    df = crossed_data(500).dropna()
    with pytest.raises(FormulaError, match=r"scale\(x\)"):
        ml.lmer("y ~ scale(x) + (1 | user)", dd.from_pandas(df, npartitions=2))
    with pytest.raises(FormulaError, match=r"poly"):
        ml.lmer("y ~ poly(x, 2) + (1 | user)", dd.from_pandas(df, npartitions=2))


def test_missing_column_and_empty_partitions(client):
    df = crossed_data(800).dropna()
    with pytest.raises(ml.errors.ColumnNotFoundError):
        ml.lmer("y ~ z + (1 | user)", dd.from_pandas(df, npartitions=2))
    # a partition with no complete row contributes nothing (and its rows are counted)
    df2 = df.copy()
    df2.iloc[:200, df2.columns.get_loc("x")] = np.nan
    with pytest.warns(ml.errors.MissingDataWarning):
        mem = ml.lmer(CROSSED, df2)
    with pytest.warns(ml.errors.MissingDataWarning):
        dsk = ml.lmer(CROSSED, dd.from_pandas(df2, npartitions=8))
    assert dsk.n_dropped == mem.n_dropped == 200
    assert_same_fit(mem, dsk)
    with pytest.raises(DataError, match="no rows left"):
        ml.lmer(CROSSED, dd.from_pandas(df2.assign(x=np.nan), npartitions=2))


def test_missing_extra_is_a_typed_error(monkeypatch, tmp_path: Path):
    import builtins

    ml.datasets.load("sleepstudy").to_parquet(tmp_path / "sleep.parquet")
    real_import = builtins.__import__

    def no_dask(name, *args, **kwargs):
        if name.split(".")[0] in ("dask", "distributed"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dask)
    with pytest.raises(MissingExtraError, match=r'pip install "multilevel\[dask\]"'):
        ml.lmer(SLEEP, str(tmp_path / "*.parquet"))


def make_partition(i: int, rows: int) -> pd.DataFrame:
    """One partition of the big data, generated on the worker (never on the client): the
    model's four columns and eight more that it does not use (read, then dropped)."""
    rng = np.random.default_rng(1000 + i)
    user = rng.integers(0, 2000, rows)
    item = rng.integers(0, 40, rows)
    x = rng.normal(size=rows)
    ue = np.random.default_rng(1).normal(size=2000)
    ie = np.random.default_rng(2).normal(size=40)
    y = 1.0 + 0.5 * x + 0.7 * ue[user] + 0.4 * ie[item] + rng.normal(size=rows)
    pads = {f"pad{j}": rng.normal(size=rows) for j in range(8)}
    return pd.DataFrame({"y": y, "x": x, "user": user, "item": item, **pads})


@pytest.mark.slow
def test_client_memory_stays_low_on_data_larger_than_its_limit(client):
    """~3 GB of rows (32 partitions of 1 M rows x 12 eight-byte columns, generated on the
    workers): the client's resident memory grows by far less than the data -- no
    partition's rows ever reach it, only level-sized sums."""
    import psutil

    rows, parts = 1_000_000, 32
    # meta given: no partition is generated on the client, not even to learn the dtypes
    ddf = dd.from_map(make_partition, range(parts), rows=rows, meta=make_partition(0, 0))
    proc = psutil.Process()
    before = proc.memory_info().rss
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = ml.lmer("y ~ x + (1 | user) + (1 | item)", ddf)
    growth = proc.memory_info().rss - before
    data_bytes = rows * parts * 12 * 8
    assert fit.nobs == rows * parts
    assert fit.fixef["x"] == pytest.approx(0.5, abs=0.01)
    assert fit.ngroups == {"user": 2000, "item": 40}
    print(f"client RSS growth {growth / 2**20:.0f} MiB for {data_bytes / 2**30:.2f} GiB of rows")
    assert data_bytes > 2.5 * 2**30
    assert growth < 200 * 2**20
