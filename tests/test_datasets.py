"""Tests of ``multilevel.datasets``: the data sets exported from R by tools/export_datasets.R.

Expected values were computed in R 4.2.2 (lme4 1.1-31, nlme 3.1-162, mlmRev 1.0-8); the R
expression that gives each number is written beside it.
"""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pandas as pd
import pytest

import multilevel.datasets as ds
from multilevel.errors import DatasetNotFoundError, MultilevelError

# name: (nrow, ncol) -- dim(as.data.frame(<data set>)) in R
SHAPES = {
    "sleepstudy": (180, 3),
    "Dyestuff": (30, 2),
    "Dyestuff2": (30, 2),
    "Penicillin": (144, 3),
    "Pastes": (60, 4),
    "Machines": (54, 3),
    "Oxboys": (234, 4),
    "Orthodont": (108, 4),
    "Orange": (35, 3),
    "cbpp": (56, 4),
    "Hsb82": (7185, 8),
    "Exam": (4059, 10),
    "Chem97": (31022, 8),
    "InstEval": (73421, 7),
}


def is_categorical(series: pd.Series) -> bool:
    return isinstance(series.dtype, pd.CategoricalDtype)


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_every_data_set_loads_with_documented_shape(name: str) -> None:
    frame = ds.load(name)
    assert isinstance(frame, pd.DataFrame)
    assert frame.shape == SHAPES[name]
    meta = ds.metadata(name)
    assert (meta["nrow"], meta["ncol"]) == SHAPES[name]
    assert list(frame.columns) == [c["name"] for c in meta["columns"]]
    assert isinstance(frame.index, pd.RangeIndex)


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_column_types_follow_metadata(name: str) -> None:
    frame = ds.load(name)
    for col in ds.metadata(name)["columns"]:
        series = frame[col["name"]]
        assert col["description"]
        if col["type"] == "numeric":
            assert series.dtype == np.float64
        elif col["type"] == "integer":
            assert series.dtype == np.int64
        else:
            assert is_categorical(series)
            assert list(series.cat.categories) == col["levels"]
            assert series.cat.ordered == (col["type"] == "ordered factor")
            assert series.notna().all()  # no data set shipped has a missing factor value


def test_sleepstudy_facts() -> None:
    sleep = ds.load("sleepstudy")
    assert len(sleep) == 180
    assert sleep["Subject"].nunique() == 18  # nlevels(sleepstudy$Subject)
    # sprintf("%.17g", mean(sleepstudy$Reaction)) -> 298.50789166666664
    assert abs(sleep["Reaction"].mean() - 298.50789166666664) < 1e-10
    assert sleep["Days"].dtype == np.float64  # Days is a double in R
    # sleepstudy$Reaction[2] -> 258.7047 (read exactly)
    assert sleep["Reaction"].iloc[1] == 258.7047


def test_hsb82_facts() -> None:
    hsb = ds.load("Hsb82")
    assert len(hsb) == 7185
    assert len(hsb["school"].cat.categories) == 160  # nlevels(Hsb82$school)
    assert hsb["school"].nunique() == 160
    assert hsb["school"].cat.ordered  # is.ordered(Hsb82$school)
    # levels(Hsb82$school)[1:5]
    assert list(hsb["school"].cat.categories[:5]) == ["8367", "8854", "4458", "5762", "6990"]
    # sprintf("%.17g", mean(Hsb82$mAch)) -> 12.74785260960334
    assert abs(hsb["mAch"].mean() - 12.74785260960334) < 1e-10
    assert np.allclose(hsb["cses"], hsb["ses"] - hsb["meanses"], atol=1e-12)


def test_penicillin_levels() -> None:
    pen = ds.load("Penicillin")
    assert list(pen["plate"].cat.categories) == list("abcdefghijklmnopqrstuvwx")  # 24 levels
    assert list(pen["sample"].cat.categories) == list("ABCDEF")  # 6 levels


def test_level_order_is_r_order_not_sorted() -> None:
    # levels(Orthodont$Subject)[1:4]; Subject is ordered by mean distance within Sex
    ortho = ds.load("orthodont")
    assert list(ortho["Subject"].cat.categories[:4]) == ["M16", "M05", "M02", "M11"]
    assert list(ortho["Sex"].cat.categories) == ["Male", "Female"]  # levels(Orthodont$Sex)
    assert not ortho["Sex"].cat.ordered
    assert list(ds.load("Orange")["Tree"].cat.categories) == ["3", "1", "5", "2", "4"]
    assert list(ds.load("Machines")["Worker"].cat.categories) == ["6", "2", "4", "1", "3", "5"]
    # levels(InstEval$dept)
    dept = ["15", "5", "10", "12", "6", "7", "4", "8", "9", "14", "1", "3", "11", "2"]
    assert list(ds.load("InstEval")["dept"].cat.categories) == dept
    assert list(ds.load("Chem97")["gender"].cat.categories) == ["M", "F"]
    assert list(ds.load("Exam")["vr"].cat.categories) == ["bottom 25%", "mid 50%", "top 25%"]
    # levels(Oxboys$Subject)[1:3]
    assert list(ds.load("Oxboys")["Subject"].cat.categories[:3]) == ["10", "26", "25"]


def test_ordered_factors_are_ordered() -> None:
    orange = ds.load("Orange")
    assert orange["Tree"].cat.ordered  # is.ordered(Orange$Tree)
    assert orange["Tree"].min() == "3"  # the lowest level in R's order, not "1"
    inst = ds.load("InstEval")
    assert inst["studage"].cat.ordered and inst["lectage"].cat.ordered
    assert not inst["service"].cat.ordered
    assert ds.load("Oxboys")["Occasion"].cat.ordered


def test_other_facts_from_r() -> None:
    chem = ds.load("Chem97")
    assert chem["school"].cat.categories.size == 2410  # nlevels(Chem97$school)
    # sprintf("%.17g", sum(Chem97$gcsescore)) -> 194994.49799999999
    assert abs(chem["gcsescore"].sum() - 194994.49799999999) < 1e-6
    inst = ds.load("InstEval")
    assert inst["y"].dtype == np.int64 and int(inst["y"].sum()) == 235369  # sum(InstEval$y)
    assert ds.load("Exam")["school"].cat.categories.size == 65  # nlevels(Exam$school)
    # sprintf("%.17g", mean(Oxboys$height)) -> 149.51940170940171
    assert abs(ds.load("Oxboys")["height"].mean() - 149.51940170940171) < 1e-10
    cbpp = ds.load("cbpp")
    assert list(cbpp["period"].cat.categories) == ["1", "2", "3", "4"]
    assert (cbpp["incidence"] <= cbpp["size"]).all()


def test_unknown_name_raises_with_suggestion() -> None:
    with pytest.raises(DatasetNotFoundError) as info:
        ds.load("sleepstudie")
    message = str(info.value)
    assert "'sleepstudy'" in message and "Did you mean" in message
    assert isinstance(info.value, KeyError) and isinstance(info.value, MultilevelError)
    with pytest.raises(DatasetNotFoundError):
        ds.describe("no such data")
    with pytest.raises(DatasetNotFoundError):
        ds.metadata("iris")


def test_list_has_every_data_set() -> None:
    table = ds.list()
    assert list(table.columns) == ["name", "nrow", "ncol", "source", "title"]
    assert set(table["name"]) == set(SHAPES)
    assert len(table) == len(SHAPES)
    assert list(table["name"]) == sorted(table["name"], key=str.lower)
    for row in table.itertuples():
        assert (row.nrow, row.ncol) == SHAPES[row.name]
    assert table.set_index("name").loc["Hsb82", "source"] == "mlmRev::Hsb82"
    assert table.set_index("name").loc["Orange", "source"] == "datasets::Orange"
    assert table["nrow"].dtype == np.int64
    assert ds.available() == list(table["name"])


def test_lookup_is_case_insensitive() -> None:
    expected = ds.load("Dyestuff")
    for spelling in ("dyestuff", "DYESTUFF", "DyEsTuFf", " Dyestuff "):
        pd.testing.assert_frame_equal(ds.load(spelling), expected)
    assert ds.metadata("hsb82")["name"] == "Hsb82"
    assert ds.describe("SLEEPSTUDY").startswith("sleepstudy:")


def test_loads_are_independent_copies() -> None:
    first = ds.load("sleepstudy")
    first.loc[0, "Reaction"] = -1.0
    first["Subject"] = first["Subject"].cat.add_categories(["new"])
    del first["Days"]
    first.loc[1:2, "Subject"] = "new"
    second = ds.load("sleepstudy")
    assert second.loc[0, "Reaction"] == 249.56
    assert "Days" in second.columns
    assert second.loc[1, "Subject"] == "308"
    assert "new" not in second["Subject"].cat.categories
    meta = ds.metadata("sleepstudy")
    meta["columns"][2]["levels"].append("x")
    assert "x" not in ds.metadata("sleepstudy")["columns"][2]["levels"]


def test_describe_mentions_everything() -> None:
    text = ds.describe("Penicillin")
    assert "lme4::Penicillin" in text and "Davies" in text
    for col in ("diameter", "plate", "sample"):
        assert col in text
    assert "24 levels" in text


def test_package_data_files_are_consistent() -> None:
    data = resources.files("multilevel.datasets").joinpath("data")
    names = {p.name for p in data.iterdir()}
    for name in SHAPES:
        meta = json.loads(data.joinpath(f"{name}.json").read_text(encoding="utf-8"))
        assert meta["file"] in names
        assert meta["file"] in (f"{name}.csv", f"{name}.csv.gz")
        assert meta["source"].endswith(f"::{name}")
    assert {n for n in names if n.endswith(".json")} == {f"{n}.json" for n in SHAPES}
