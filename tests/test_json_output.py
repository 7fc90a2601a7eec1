"""``fit.to_dict()`` and ``multilevel fit --json``: one coefficient-table layout (the columns of
``fit.coef_table()``), the same default as the Python API (Satterthwaite), ``ddf`` choosing
it and recorded, full float precision, and strict JSON (no NaN or Infinity) on every fit:
regular, singular, rank-deficient, with missing rows, with z tests."""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest

import multilevel as ml
from multilevel.cli.main import main
from multilevel.errors import MultilevelError

COLUMNS = ["estimate", "std_error", "statistic", "df", "p_value", "ci_lower", "ci_upper"]


def strict(payload: dict[str, Any]) -> dict[str, Any]:
    """Serialize without NaN/Infinity (raises ValueError if any is left) and read back."""
    return json.loads(json.dumps(payload, allow_nan=False))


def same_or_null(json_value: Any, value: float) -> bool:
    return json_value is None if not math.isfinite(value) else json_value == value


@pytest.fixture(scope="module")
def sleep_fit():
    return ml.lmer("Reaction ~ Days + (Days | Subject)", ml.datasets.load("sleepstudy"))


@pytest.fixture(scope="module")
def singular_fit():
    # Dyestuff2: lme4 reports a boundary (singular) fit (reference/lme4_shared/dyestuff2.json)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ml.lmer("Yield ~ 1 + (1 | Batch)", ml.datasets.load("Dyestuff2"))


@pytest.fixture(scope="module")
def odd_fit():
    """An aliased column (dropped, as lme4), missing rows, and an uncorrelated pair of terms
    (varcorr rows without a correlation)."""
    df = ml.datasets.load("sleepstudy").copy()
    df["x2"] = 2 * df["Days"]
    df.loc[[3, 50], "Reaction"] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ml.lmer("Reaction ~ Days + x2 + (Days || Subject)", df)


@pytest.mark.parametrize("ddf", ["satterthwaite", "kenward-roger", "residual", None])
def test_coef_table_is_the_python_table(sleep_fit, ddf):
    out = strict(sleep_fit.to_dict(ddf=ddf))
    table = sleep_fit.coef_table(ddf=ddf)
    assert out["ddf"] == ddf
    assert list(out["coef_table"]) == list(table.index)
    for name, row in table.iterrows():
        assert list(out["coef_table"][name]) == COLUMNS
        for col in COLUMNS:  # full precision: equal, not approximately equal
            assert same_or_null(out["coef_table"][name][col], float(row[col])), (name, col)


def test_default_is_satterthwaite_as_coef_table(sleep_fit):
    out = strict(sleep_fit.to_dict())
    assert out["ddf"] == "satterthwaite"
    assert out["coef_table"] == strict(sleep_fit.to_dict(ddf="satterthwaite"))["coef_table"]
    # lmerTest 3.1-3: df 16.9997 (reference/lme4_shared/sleepstudy_reml.json)
    assert out["coef_table"]["(Intercept)"]["df"] == pytest.approx(16.99972628849272,
                                                                   rel=1e-3)


def test_z_tests_have_null_df(sleep_fit):
    out = strict(sleep_fit.to_dict(ddf=None))
    assert all(row["df"] is None for row in out["coef_table"].values())
    assert all(row["p_value"] is not None for row in out["coef_table"].values())


def test_ddf_spellings_are_recorded_by_name(sleep_fit):
    assert sleep_fit.to_dict(ddf="Kenward_Roger")["ddf"] == "kenward-roger"


def test_unknown_ddf_is_a_typed_error(sleep_fit):
    with pytest.raises(MultilevelError, match="banana"):
        sleep_fit.to_dict(ddf="banana")


@pytest.mark.parametrize("name", ["sleep_fit", "singular_fit", "odd_fit"])
def test_strict_json_everywhere(request, name):
    fit = request.getfixturevalue(name)
    for ddf in ["satterthwaite", "residual", None]:
        out = strict(fit.to_dict(ddf=ddf))
        assert out["nobs"] == fit.nobs
        assert out["fixef"] == {k: float(v) for k, v in fit.fixef.items()}
        assert out["sigma"] == fit.sigma and out["objective"] == fit.objective


def test_singular_fit_flags_and_nulls(singular_fit):
    out = strict(singular_fit.to_dict())
    assert out["is_singular"] is True
    assert out["varcorr"][-1]["group"] == "Residual"


def test_odd_fit_records_what_was_dropped(odd_fit):
    out = strict(odd_fit.to_dict())
    assert out["dropped_fixed"] == ["x2"]
    assert out["n_dropped"] == 2 and out["nobs"] == 178
    assert list(out["coef_table"]) == ["(Intercept)", "Days"]
    # (Days || Subject): no correlation between the two terms, written as null
    assert any(r["corr"] is None for r in out["varcorr"])


def test_strict_json_of_numpy_and_pandas_values():
    from multilevel.results.summary import strict_json

    value = {1: np.float64("nan"), "a": [np.inf, -np.inf, np.float32(0.5)],
             "b": (np.int64(3), np.bool_(True)), "c": np.array([1.0, np.nan]),
             "d": pd.NA, "e": pd.NaT}
    assert strict(strict_json(value)) == {"1": None, "a": [None, None, 0.5], "b": [3, True],
                                          "c": [1.0, None], "d": None, "e": None}


def test_cli_json_is_to_dict(sleep_fit, capsys):
    assert main(["fit", "Reaction ~ Days + (Days | Subject)", "--data", "sleepstudy",
                 "--json"]) == 0
    text = capsys.readouterr().out
    assert "NaN" not in text and "Infinity" not in text
    out = json.loads(text)
    expected = strict(sleep_fit.to_dict())
    for key in ["coef_table", "fixef", "theta", "sigma", "objective", "ddf", "vcov"]:
        assert out[key] == expected[key], key


def test_cli_json_z_tests(capsys):
    assert main(["fit", "Yield ~ 1 + (1 | Batch)", "--data", "Dyestuff2", "--json", "--ddf",
                 "none"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)  # json.loads accepts NaN; the text must not hold it
    assert "NaN" not in captured.out and "Infinity" not in captured.out
    assert out["ddf"] is None and out["coef_table"]["(Intercept)"]["df"] is None
