"""Data validation before any fitting: prior weights and offsets, complex numbers, text cells
in numeric columns, grouping factors of every type, duplicated column names, and frames with
every dtype pandas and polars have.

Provenance of the numbers: the data are the built-in sleepstudy (lme4::sleepstudy, 180 rows)
and small simulations whose seeds are given beside them. Every comparison is an exact identity
(the same model on the same rows fitted two ways), never a number copied from elsewhere.
"""

from __future__ import annotations

import datetime as dt
import json
import warnings
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import multilevel as ml
from fit_helpers import assert_same_fit, quiet_fit
from multilevel.data.frame import clean_frame
from multilevel.data.grouping import grouping_factor, level_labels
from multilevel.errors import (
    ColumnNotFoundError,
    DataError,
    MissingDataWarning,
    MultilevelError,
)

FORMULA = "Reaction ~ Days + (Days | Subject)"
REF_DIR = Path(__file__).parent / "reference"


@pytest.fixture(scope="module")
def sleep() -> pd.DataFrame:
    return ml.datasets.load("sleepstudy")


def simulated(seed: int = 20261101, n_groups: int = 12, per_group: int = 6) -> pd.DataFrame:
    """y = 1 + 0.5 x + b_g + e, b_g ~ N(0, 1), e ~ N(0, 0.5^2); seed as given."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), per_group)
    x = rng.normal(size=g.size)
    y = 1 + 0.5 * x + rng.normal(size=n_groups)[g] + rng.normal(scale=0.5, size=g.size)
    return pd.DataFrame({"y": y, "x": x, "g": g})


# -- zero prior weights: the rows leave the likelihood, as a subset fit ---------------------

@pytest.mark.parametrize("reml", [True, False])
def test_zero_weights_fit_equals_the_fit_without_those_rows(sleep, reml):
    # weights: seed 7, uniform on (0.5, 2); rows 3, 50, 51, 120 and all of subject 372's rows
    # (rows 110..119 in lme4's sleepstudy) set to zero, so one level disappears with them.
    w = np.random.default_rng(7).uniform(0.5, 2.0, len(sleep))
    zero = np.zeros(len(sleep), dtype=bool)
    zero[[3, 50, 51, 120]] = True
    zero[(sleep["Subject"] == sleep["Subject"].iloc[110]).to_numpy()] = True
    w[zero] = 0.0
    with pytest.warns(MissingDataWarning, match=rf"{zero.sum()} row\(s\) with prior weight zero"):
        full = ml.lmer(FORMULA, sleep, weights=w, reml=reml)
    subset = quiet_fit(FORMULA, sleep.loc[~zero].reset_index(drop=True), weights=w[~zero],
                       reml=reml)
    assert full.nobs == len(sleep) - zero.sum() == subset.nobs
    assert full.ngroups["Subject"] == 17
    assert full.n_zero_weight == zero.sum()
    assert f"({zero.sum()} observations with prior weight zero left out)" in full.summary()
    assert full.to_dict()["n_zero_weight"] == zero.sum()
    assert full.n_dropped == 0
    np.testing.assert_array_equal(full.model.design.row_index, np.flatnonzero(~zero))
    assert_same_fit(full, subset)
    assert full.loglik == pytest.approx(subset.loglik, rel=1e-10)


def test_zero_weights_match_lme4_on_the_rows_that_count(sleep):
    """tests/reference/make_hardening_refs.R: lme4 1.1-31 with weights 0 on sleepstudy rows 3,
    50, 51 and 120 (R's 1-based numbers; 2, 49, 50, 119 here) keeps them in n and returns an
    infinite REML criterion at its start (log 0 in the weights' log-determinant): no fit.
    Dropping them is the fit lme4 gives on the other 176 rows, which we must reproduce."""
    ref = json.loads((REF_DIR / "hardening" / "zero_weights.json").read_text())
    assert ref["weighted"]["REMLcrit"] == "Inf" and ref["weighted"]["nobs"] == 180
    w = np.ones(len(sleep))
    w[[2, 49, 50, 119]] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingDataWarning)
        fit = ml.lmer(FORMULA, sleep, weights=w)
    lme4 = ref["subset"]
    assert fit.nobs == lme4["nobs"] == 176 and fit.df_resid == lme4["df_resid"]
    assert fit.objective == pytest.approx(lme4["REMLcrit"], rel=1e-6)
    np.testing.assert_allclose(fit.beta, lme4["fixef"], rtol=1e-4)
    np.testing.assert_allclose(fit.sigma, lme4["sigma"], rtol=1e-4)
    np.testing.assert_allclose(fit.theta, lme4["theta"], rtol=1e-3, atol=1e-4)


def test_zero_one_weights_equal_the_unweighted_subset_fit(sleep):
    """Weights 0/1 are the subset fit (the case lme4 issue #880 asks about): log w = 0 for
    the kept rows, so even the criterion is that of the unweighted fit."""
    keep = (np.arange(len(sleep)) % 7) != 0
    fit = quiet_fit(FORMULA, sleep, weights=keep.astype(float))
    subset = quiet_fit(FORMULA, sleep.loc[keep].reset_index(drop=True))
    assert_same_fit(fit, subset)


def test_zero_weights_are_counted_apart_from_missing_rows(sleep):
    data = sleep.copy()
    data.loc[[0, 1], "Reaction"] = np.nan
    w = np.ones(len(data))
    w[[1, 2, 3]] = 0.0  # row 1 is missing anyway: it counts as missing, not as zero weight
    fit = quiet_fit(FORMULA, data, weights=w)
    assert (fit.n_dropped, fit.model.design.n_zero_weight, fit.nobs) == (2, 2, 176)


@pytest.mark.parametrize("weights", [np.zeros(180), np.r_[np.zeros(179), np.nan]])
def test_weights_all_zero_is_a_data_error(sleep, weights):
    with pytest.raises(DataError, match="weights=.*only zeros"):
        ml.lmer(FORMULA, sleep, weights=weights)


def test_zero_weights_on_every_complete_row_is_a_data_error(sleep):
    data = sleep.copy()
    data.loc[1:, "Reaction"] = np.nan
    w = np.ones(len(data))
    w[0] = 0.0
    with pytest.raises(DataError, match="every row with complete data has prior weight zero"):
        ml.lmer(FORMULA, data, weights=w)


def test_missing_weight_drops_the_row_as_missing(sleep):
    w = np.ones(len(sleep))
    w[[5, 6]] = np.nan
    with pytest.warns(MissingDataWarning, match="2 row"):
        fit = ml.lmer(FORMULA, sleep, weights=w)
    subset = quiet_fit(FORMULA, sleep.drop(index=[5, 6]).reset_index(drop=True))
    assert fit.n_dropped == 2
    assert_same_fit(fit, subset)


def test_weights_and_offset_from_columns_equal_arrays(sleep):
    # weights seed 11, offset seed 12: arbitrary positive weights and a known shift
    data = sleep.assign(w=np.random.default_rng(11).uniform(0.5, 2, len(sleep)),
                        o=np.random.default_rng(12).normal(size=len(sleep)))
    by_name = quiet_fit(FORMULA, data, weights="w", offset="o")
    by_array = quiet_fit(FORMULA, sleep, weights=data["w"].to_numpy(),
                         offset=list(data["o"]))
    assert_same_fit(by_name, by_array)


# -- weights and offsets that are not real numbers, or not one per row ----------------------

def _bad_vectors(n: int) -> list[tuple[str, object, str]]:
    """(label, value, what the message must contain) for a vector of n values."""
    neg = np.ones(n)
    neg[9] = -0.5
    inf = np.ones(n)
    inf[4] = np.inf
    text = [1.0] * n
    text[6] = "heavy"
    cplx = np.ones(n, dtype=complex)
    cplx[2] = 1 + 2j
    return [
        ("negative", neg, r"row 9 \(-0.5\)"),
        ("infinite", inf, r"row 4 \(inf\)"),
        ("text", text, r"row 6 \('heavy'\)"),
        ("complex", cplx, r"complex.*row 2 \(\(1\+2j\)\)"),
        ("boolean", np.ones(n, dtype=bool), "booleans"),
        ("dates", pd.Series(pd.date_range("2020-01-01", periods=n)), "row 0"),
        ("short", np.ones(n - 1), f"one value per row of the data \\({n} values\\)"),
        ("scalar", 1.0, "a scalar"),
        ("matrix", np.ones((n, 2)), r"shape \(180, 2\)"),
    ]


@pytest.mark.parametrize("what", ["weights", "offset"])
@pytest.mark.parametrize("case", range(9))
def test_bad_weights_and_offsets_are_data_errors(sleep, what, case):
    label, value, pattern = _bad_vectors(len(sleep))[case]
    if what == "offset" and label == "negative":
        quiet_fit(FORMULA, sleep, offset=value)  # a negative offset is an ordinary offset
        return
    with pytest.raises(DataError, match=pattern) as info:
        ml.lmer(FORMULA, sleep, **{what: value})
    assert str(info.value).startswith(f"{what}=")


@pytest.mark.parametrize("what", ["weights", "offset"])
def test_bad_weights_and_offset_columns_name_the_column(sleep, what):
    data = sleep.assign(v=["1.0"] * (len(sleep) - 1) + ["n/a"])
    with pytest.raises(DataError, match=rf"{what}='v' \(a column of the data\).*row 179"):
        ml.lmer(FORMULA, data, **{what: "v"})
    with pytest.raises(ColumnNotFoundError, match="'vv' used in the " + what):
        ml.lmer(FORMULA, data, **{what: "vv"})


# -- complex numbers --------------------------------------------------------------------------

@pytest.mark.parametrize("formula, column", [
    ("Reaction ~ Days + (Days | Subject)", "Reaction"),
    ("Reaction ~ Days + (1 | Subject)", "Days"),
    ("Reaction ~ 1 + (0 + Days | Subject)", "Days"),
    ("log(Reaction) ~ Days + (1 | Subject)", "Reaction"),
])
@pytest.mark.parametrize("as_object", [False, True])
def test_complex_columns_are_data_errors(sleep, formula, column, as_object):
    values = sleep[column].to_numpy() + 0.5j
    data = sleep.assign(**{column: values.astype(object) if as_object else values})
    with pytest.raises(DataError, match=f"column '{column}' holds complex numbers"):
        ml.lmer(formula, data)


# -- text cells in a numeric column -------------------------------------------------------

@pytest.mark.parametrize("formula, column", [
    ("Reaction ~ Days + (1 | Subject)", "Days"),
    ("Reaction ~ Days + (1 | Subject)", "Reaction"),
    ("Reaction ~ 1 + (0 + Days | Subject)", "Days"),
    ("Reaction ~ Days:Subject + (1 | Subject)", "Days"),
])
def test_a_few_text_cells_in_a_numeric_column_are_a_data_error(sleep, formula, column,
                                                               monkeypatch):
    data = sleep.astype({column: object})
    data.loc[[7, 100], column] = ["n/a?", "  "]

    def no_design_work(*args, **kwargs):
        raise AssertionError("the design was built: the column was not refused up front")

    # refused up front, before any matrix is built (the fit took 619 s)
    monkeypatch.setattr("multilevel.data.design._fixed_matrix", no_design_work)
    with pytest.raises(DataError) as info:
        ml.lmer(formula, data)
    message = str(info.value)
    assert f"column {column!r}" in message
    assert "row 7 ('n/a?')" in message and "row 100 ('  ')" in message
    assert "errors='coerce'" in message and "astype('category')" in message


def test_text_cells_message_quotes_only_the_first_rows():
    # 2000 numbers as text (seed 5) with 40 bad cells: the message stays short
    rng = np.random.default_rng(5)
    data = simulated().sample(2000, replace=True, random_state=5).reset_index(drop=True)
    x = rng.normal(size=2000).astype(str).astype(object)
    x[np.arange(40) * 50] = "?"
    with pytest.raises(DataError, match=r"row 0 \('\?'\).* and 35 more") as info:
        ml.lmer("y ~ x + (1 | g)", data.assign(x=x))
    assert len(str(info.value)) < 600


def test_numbers_as_text_with_a_pandas_string_dtype_are_checked_too(sleep):
    data = sleep.assign(Days=sleep["Days"].astype(str).astype("string"))
    data.loc[3, "Days"] = "three"
    with pytest.raises(DataError, match=r"column 'Days'.*row 3 \('three'\)"):
        ml.lmer(FORMULA, data)


def test_a_genuine_text_factor_stays_a_factor():
    # a three-level text factor (seed 20261101 data) and the same as a category column
    data = simulated()
    data["f"] = np.array(["lo", "mid", "hi"], dtype=object)[data.index % 3]
    as_text = quiet_fit("y ~ f + (1 | g)", data)
    as_category = quiet_fit("y ~ f + (1 | g)", data.astype({"f": "category"}))
    assert as_text.fixed_names == ["(Intercept)", "flo", "fmid"]  # R sorts levels: hi, lo, mid
    assert_same_fit(as_text, as_category)
    as_string = quiet_fit("y ~ f + (1 | g)", data.astype({"f": "string"}))
    assert_same_fit(as_text, as_string)


def test_a_category_column_of_mostly_numbers_is_never_checked():
    data = simulated()
    data["f"] = pd.Categorical(np.array(["1", "2", "none"], dtype=object)[data.index % 3])
    fit = quiet_fit("y ~ f + (1 | g)", data)
    assert fit.fixed_names == ["(Intercept)", "f2", "fnone"]


def test_numbers_in_an_object_column_are_numbers(sleep):
    fit = quiet_fit(FORMULA, sleep.astype({"Days": object, "Reaction": object}))
    assert_same_fit(fit, quiet_fit(FORMULA, sleep))
    decimals = sleep.assign(Days=[Decimal(int(d)) for d in sleep["Days"]])
    assert_same_fit(quiet_fit(FORMULA, decimals), quiet_fit(FORMULA, sleep))


# -- grouping factors are labels --------------------------------------------------------------

def test_grouping_column_mixing_numbers_and_text_is_labels(sleep):
    subjects = sleep["Subject"].astype(str).to_numpy(dtype=object)
    mixed = subjects.copy()
    numeric = np.isin(mixed, ["308", "309", "310"])
    mixed[numeric] = mixed[numeric].astype(int)  # R would hold these as text too
    fit = quiet_fit(FORMULA, sleep.assign(Subject=mixed))
    assert_same_fit(fit, quiet_fit(FORMULA, sleep.assign(Subject=subjects)))
    assert list(fit.ranef["Subject"].index) == sorted(set(subjects))


def test_mixed_labels_sort_as_text_as_r_does():
    frame = pd.DataFrame({"g": pd.Series([10, "b", 2, 10, "a", 2.0], dtype=object)})
    factor = grouping_factor(frame, ("g",), "g")
    assert factor.levels == ("10", "2", "a", "b")
    np.testing.assert_array_equal(factor.codes, [0, 3, 1, 0, 2, 1])


@pytest.mark.parametrize("values, levels", [
    ([True, False, True], ("FALSE", "TRUE")),  # R: levels(factor(c(TRUE, FALSE)))
    ([3.0, 1.0, 2.5], ("1", "2.5", "3")),  # R: levels(factor(c(3, 1, 2.5)))
    (pd.to_datetime(["2020-01-02", "2020-01-01", "2020-01-02"]), ("2020-01-01", "2020-01-02")),
    (pd.array([2, 1, 2], dtype="Int64"), ("1", "2")),
    (pd.array(["b", "a", "b"], dtype="string[pyarrow]"), ("a", "b")),
    (pd.array([True, False, False], dtype="boolean"), ("FALSE", "TRUE")),
])
def test_grouping_factor_labels_follow_r(values, levels):
    frame = pd.DataFrame({"g": values})
    factor = grouping_factor(frame, ("g",), "g")
    assert factor.levels == levels
    # the per-row labels that new data are matched with are the same labels
    assert [factor.levels[c] for c in factor.codes] == list(level_labels(frame["g"]))


@pytest.mark.parametrize("kind", ["bool", "float", "datetime", "mixed", "Int64", "string"])
@pytest.mark.parametrize("formula", ["y ~ x + (1 | v)", "y ~ x + (1 | v:g)"])
def test_predict_on_new_data_finds_the_levels_of_any_grouping_type(kind, formula):
    """newdata is labelled as the fit labels its levels (1.0 is level "1", True is "TRUE"),
    so predicting the fitted rows gives the fitted values. Data: simulated(), seed as given."""
    data = simulated()
    i = np.arange(len(data))
    v = {"bool": i % 2 == 0, "float": (i % 5).astype(float),
         "datetime": pd.Timestamp("2020-01-01") + pd.to_timedelta(i % 5, unit="D"),
         "mixed": pd.Series([k % 5 if k % 5 else "z" for k in i], dtype=object),
         "Int64": pd.array(i % 5, dtype="Int64"),
         "string": pd.array([f"s{k % 5}" for k in i], dtype="string[pyarrow]")}[kind]
    data = data.assign(v=v)
    fit = quiet_fit(formula, data)
    np.testing.assert_allclose(fit.predict(data.head(12)), fit.fitted()[:12], rtol=1e-12)


def test_unhashable_grouping_values_are_a_data_error():
    data = simulated()
    data["h"] = [[int(v)] for v in data["g"]]
    with pytest.raises(DataError, match="grouping factor 'h'"):
        ml.lmer("y ~ x + (1 | h)", data)


# -- duplicated column names ----------------------------------------------------------------

def test_duplicated_used_column_is_a_data_error(sleep):
    data = pd.concat([sleep, sleep[["Days"]] * 2], axis=1)
    with pytest.raises(DataError, match="several columns named 'Days'"):
        ml.lmer(FORMULA, data)
    weights = pd.concat([sleep, sleep[["Days"]], sleep[["Days"]]], axis=1).set_axis(
        [*sleep.columns, "w", "w"], axis=1)
    with pytest.raises(DataError, match="2 columns named 'w'"):
        ml.lmer(FORMULA, weights, weights="w")


def test_duplicated_unused_column_does_not_matter(sleep):
    data = pd.concat([sleep, sleep[["Days"]].set_axis(["extra"], axis=1)] * 1 + [
        sleep[["Days"]].set_axis(["extra"], axis=1)], axis=1)
    assert list(data.columns).count("extra") == 2
    assert_same_fit(quiet_fit(FORMULA, data), quiet_fit(FORMULA, sleep))


# -- every dtype: fits, or a typed error that names the column --------------------------------

N, N_GROUPS = 60, 10
_INTS = np.random.default_rng(3).integers(0, 5, N)  # seed 3: a 5-valued column
_LABELS = np.array(list("abcde"), dtype=object)[_INTS]


def _pandas_columns() -> dict[str, Callable[[], pd.Series]]:
    cols: dict[str, Callable[[], pd.Series]] = {
        t: (lambda t=t: pd.Series(_INTS, dtype=t)) for t in [
            "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
            "float16", "float32", "float64", "Int8", "Int64", "UInt64", "Float32", "Float64"]}
    cols.update({
        "Int64 with NA": lambda: pd.Series(_INTS, dtype="Int64").mask(np.arange(N) == 4),
        "bool": lambda: pd.Series(_INTS > 2),
        "boolean": lambda: pd.Series(_INTS > 2, dtype="boolean"),
        "string": lambda: pd.Series(_LABELS, dtype="string"),
        "string[pyarrow]": lambda: pd.Series(_LABELS, dtype="string[pyarrow]"),
        "object text": lambda: pd.Series(_LABELS),
        "object mixed": lambda: pd.Series([i if i % 2 else f"s{i}" for i in _INTS],
                                          dtype=object),
        "object numbers": lambda: pd.Series(_INTS.astype(float), dtype=object),
        "category": lambda: pd.Series(_LABELS, dtype="category"),
        "ordered": lambda: pd.Series(pd.Categorical(_LABELS, ordered=True)),
        "datetime": lambda: pd.Series(pd.Timestamp("2020-01-01")
                                      + pd.to_timedelta(_INTS, unit="D")),
        "datetime tz": lambda: pd.Series(pd.Timestamp("2020-01-01", tz="UTC")
                                         + pd.to_timedelta(_INTS, unit="D")),
        "timedelta": lambda: pd.Series(pd.to_timedelta(_INTS, unit="D")),
        "period": lambda: pd.Series(pd.period_range("2020-01", periods=5, freq="M")[_INTS]),
        "interval": lambda: pd.Series(pd.IntervalIndex.from_breaks(range(6))[_INTS]),
        "sparse": lambda: pd.Series(pd.arrays.SparseArray(_INTS.astype(float))),
        "complex": lambda: pd.Series(_INTS + 1j),
        "bytes": lambda: pd.Series([bytes([i]) for i in _INTS]),
        "lists": lambda: pd.Series([[i] for i in _INTS]),
        "all missing": lambda: pd.Series([None] * N, dtype=object),
    })
    return cols


PANDAS_COLUMNS = _pandas_columns()
ROLES = {
    "predictor": "y ~ v + (1 | g)",
    "random slope": "y ~ 1 + (0 + v | g)",
    "response": "v ~ x + (1 | g)",
    "grouping factor": "y ~ x + (1 | v)",
}


def _frame(column: pd.Series) -> pd.DataFrame:
    # y, x: seed 4; g: 10 groups of 6
    rng = np.random.default_rng(4)
    return pd.DataFrame({"y": rng.normal(size=N), "x": rng.normal(size=N),
                         "g": np.repeat(np.arange(N_GROUPS), N // N_GROUPS), "v": column})


def fits_or_names_the_column(formula: str, data) -> str:
    """Fit; a failure must be a multilevel error whose message names column 'v'."""
    try:
        quiet_fit(formula, data)
    except MultilevelError as exc:
        assert "'v'" in str(exc), str(exc)
        return type(exc).__name__
    return "fit"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dtype=st.sampled_from(sorted(PANDAS_COLUMNS)), role=st.sampled_from(sorted(ROLES)))
def test_every_pandas_dtype_fits_or_names_the_column(dtype, role):
    fits_or_names_the_column(ROLES[role], _frame(PANDAS_COLUMNS[dtype]()))


@pytest.mark.parametrize("dtype, role, outcome", [
    ("float32", "predictor", "fit"), ("Int64 with NA", "response", "fit"),
    ("object mixed", "grouping factor", "fit"), ("string[pyarrow]", "predictor", "fit"),
    ("datetime", "grouping factor", "fit"), ("datetime", "predictor", "DataError"),
    ("timedelta", "random slope", "DataError"), ("complex", "grouping factor", "DataError"),
    ("lists", "predictor", "DataError"), ("bool", "response", "DataError"),
])
def test_dtype_outcomes_that_were_decided(dtype, role, outcome):
    assert fits_or_names_the_column(ROLES[role], _frame(PANDAS_COLUMNS[dtype]())) == outcome


def test_every_polars_dtype_fits_or_names_the_column():
    pl = pytest.importorskip("polars")
    ints = [int(i) for i in _INTS]
    columns = {
        "Int8": pl.Series(ints, dtype=pl.Int8), "UInt64": pl.Series(ints, dtype=pl.UInt64),
        "Float32": pl.Series(ints, dtype=pl.Float32),
        "Boolean": pl.Series([i > 2 for i in ints]),
        "String": pl.Series([f"s{i}" for i in ints]),
        "Categorical": pl.Series([f"s{i}" for i in ints], dtype=pl.Categorical),
        "Enum": pl.Series([str(i) for i in ints], dtype=pl.Enum([str(i) for i in range(5)])),
        "Date": pl.Series([dt.date(2020, 1, 1 + i) for i in ints]),
        "Datetime": pl.Series([dt.datetime(2020, 1, 1 + i) for i in ints]),
        "Duration": pl.Series([dt.timedelta(days=i) for i in ints]),
        "Time": pl.Series([dt.time(i) for i in ints]),
        "Decimal": pl.Series([Decimal(i) for i in ints]),
        "List": pl.Series([[i] for i in ints]),
        "Struct": pl.Series([{"a": i} for i in ints]),
        "Binary": pl.Series([bytes([i]) for i in ints]),
        "Null": pl.Series([None] * N),
    }
    outcomes = {}
    for name, column in columns.items():
        for role, formula in ROLES.items():
            data = pl.from_pandas(_frame(pd.Series(np.zeros(N)))).with_columns(column.alias("v"))
            outcomes[name, role] = fits_or_names_the_column(formula, data)
    assert outcomes["Decimal", "predictor"] == "fit"
    assert outcomes["Date", "grouping factor"] == "fit"
    assert outcomes["Categorical", "predictor"] == "fit"


# -- cost on large data -------------------------------------------------------------------------

def test_clean_frame_on_many_rows_with_zero_weights():
    # 1e6 rows, seed 9: numeric columns, an integer grouping column and a text factor
    rng = np.random.default_rng(9)
    n = 1_000_000
    data = pd.DataFrame({"y": rng.normal(size=n), "x": rng.normal(size=n),
                         "g": rng.integers(0, 1000, n),
                         "f": np.array(["a", "b", "c"], dtype=object)[rng.integers(0, 3, n)]})
    w = rng.uniform(0.5, 2.0, n)
    w[:10] = 0.0
    clean = clean_frame(data, ["y", "x", "f", "g"], {"(weights)": w}, labels=["g"],
                        zero_weight="(weights)")
    assert clean.n_zero_weight == 10 and len(clean.frame) == n - 10
    np.testing.assert_array_equal(clean.row_index, np.arange(10, n))
