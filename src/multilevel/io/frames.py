"""Data frames as saved-fit members: one ``.npy`` member per numeric, boolean or date column,
JSON for text and for factor levels (their order included), and the index kept, so that the
model rebuilt from the stored copy sees the same values, dtypes, levels and row labels.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from multilevel.errors import SavedFitError
from multilevel.io.archive import ArchiveReader, ArchiveWriter


def used_columns(frame: pd.DataFrame, texts: Iterable[str]) -> list[str]:
    """The columns of ``frame`` that the model's formulas and arguments name: a column is kept
    when its name appears in any of ``texts`` as a whole word (not inside a longer name)."""
    joined = "\n".join(t for t in texts if t)
    keep = []
    for col in frame.columns:
        name = str(col)
        pattern = rf"(?<![\w.]){re.escape(name)}(?![\w.])"
        if re.search(pattern, joined):
            keep.append(col)
    return keep


def write_frame(w: ArchiveWriter, prefix: str, frame: pd.DataFrame) -> None:
    """Store ``frame`` under ``prefix/`` (``prefix/frame.json`` describes the columns)."""
    columns = []
    for i, col in enumerate(frame.columns):
        if not isinstance(col, str):
            raise SavedFitError(f"cannot save the data: column name {col!r} is not a string; "
                                "rename the columns to strings before fitting")
        columns.append({"name": col, **_write_column(w, f"{prefix}/c{i}", frame[col], col)})
    index = frame.index
    if isinstance(index, pd.RangeIndex):
        index_meta: dict[str, Any] = {"codec": "range", "start": index.start,
                                      "stop": index.stop, "step": index.step,
                                      "name": _name(index.name)}
    elif isinstance(index, pd.MultiIndex):
        raise SavedFitError("cannot save the data: its row index is a MultiIndex; "
                            "reset_index() the data before fitting")
    else:
        index_meta = {"name": _name(index.name),
                      **_write_column(w, f"{prefix}/index", pd.Series(index), "the index")}
    name = frame.attrs.get("name") if isinstance(frame.attrs.get("name"), str) else None
    w.add_json(f"{prefix}/frame.json", {"columns": columns, "index": index_meta,
                                        "name": name, "nrows": len(frame)})


def _name(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _write_column(w: ArchiveWriter, stem: str, s: pd.Series, label: str) -> dict[str, Any]:
    dtype = s.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        cats = dtype.categories
        meta: dict[str, Any] = {"codec": "categorical", "ordered": bool(dtype.ordered)}
        w.add_array(f"{stem}.codes.npy", np.asarray(s.cat.codes, dtype=np.int64))
        meta["categories"] = _write_column(w, f"{stem}.cats", pd.Series(cats), label)
        return meta
    if isinstance(dtype, pd.DatetimeTZDtype):
        w.add_array(f"{stem}.npy", s.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy())
        return {"codec": "datetime_tz", "tz": str(dtype.tz)}
    if isinstance(dtype, np.dtype) and dtype.kind in "biufcmM":
        w.add_array(f"{stem}.npy", s.to_numpy())
        return {"codec": "numpy"}
    if isinstance(dtype, pd.api.extensions.ExtensionDtype) and dtype.kind in "biuf" \
            and not isinstance(dtype, pd.StringDtype):
        # pandas' nullable Int64 / Float64 / boolean: values with a mask of missing ones
        mask = np.asarray(s.isna())
        fill = False if dtype.kind == "b" else 0
        numpy_dtype = getattr(dtype, "numpy_dtype", None)
        w.add_array(f"{stem}.npy", s.fillna(fill).to_numpy(dtype=numpy_dtype))
        w.add_array(f"{stem}.mask.npy", mask)
        return {"codec": "nullable", "dtype": str(dtype)}
    values: list[Any] = []
    for v in s.tolist():
        if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
            values.append(None)
        elif isinstance(v, (str, bool, int)) and not isinstance(v, np.generic):
            values.append(v)
        elif isinstance(v, float) and math.isfinite(v):
            values.append(v)
        elif isinstance(v, np.generic) and np.asarray(v).dtype.kind in "biuf":
            values.append(v.item())
        else:
            raise SavedFitError(f"cannot save column {label!r}: it holds a {type(v).__name__} "
                                f"value ({v!r:.40}), and only numbers, text, booleans and dates "
                                "are stored; convert the column before fitting")
    w.add_json(f"{stem}.json", values)
    return {"codec": "json", "dtype": str(dtype)}


def read_frame(r: ArchiveReader, prefix: str) -> pd.DataFrame:
    """The data frame stored under ``prefix/``."""
    meta = r.json(f"{prefix}/frame.json")
    try:
        data = {c["name"]: _read_column(r, f"{prefix}/c{i}", c)
                for i, c in enumerate(meta["columns"])}
        idx = meta["index"]
        if idx["codec"] == "range":
            index: pd.Index = pd.RangeIndex(int(idx["start"]), int(idx["stop"]),
                                            int(idx["step"]), name=idx["name"])
        else:
            index = pd.Index(_read_column(r, f"{prefix}/index", idx), name=idx["name"])
        frame = pd.DataFrame(data, index=index)
        if len(frame) != int(meta["nrows"]):
            raise SavedFitError(f"the stored data under {prefix!r} has {len(frame)} rows, its "
                                f"description {meta['nrows']}: the file is damaged")
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, SavedFitError):
            raise
        raise SavedFitError(f"the stored data under {prefix!r} cannot be read ({exc}): the "
                            "file is damaged") from exc
    if meta.get("name"):
        frame.attrs["name"] = meta["name"]
    return frame


def _read_column(r: ArchiveReader, stem: str, meta: dict[str, Any]) -> Any:
    codec = meta["codec"]
    if codec == "categorical":
        codes = r.array(f"{stem}.codes.npy")
        cats = _read_column(r, f"{stem}.cats", meta["categories"])
        return pd.Categorical.from_codes(codes, categories=pd.Index(cats),
                                         ordered=bool(meta["ordered"]))
    if codec == "numpy":
        return r.array(f"{stem}.npy")
    if codec == "datetime_tz":
        stamps = pd.Series(r.array(f"{stem}.npy")).dt.tz_localize("UTC")
        return stamps.dt.tz_convert(meta["tz"]).array
    if codec == "nullable":
        values = r.array(f"{stem}.npy")
        mask = r.array(f"{stem}.mask.npy").astype(bool)
        out = pd.array(values, dtype=meta["dtype"])
        out[mask] = pd.NA
        return out
    if codec == "json":
        values = r.json(f"{stem}.json")
        if not isinstance(values, list):
            raise SavedFitError(f"member {stem}.json is not a list: the file is damaged")
        dtype = meta.get("dtype", "object")
        if dtype == "object":
            out_obj = np.empty(len(values), dtype=object)
            out_obj[:] = values
            return out_obj
        return pd.array(values, dtype=dtype)
    raise SavedFitError(f"unknown column codec {codec!r} in {stem}: the file is damaged or "
                        "newer than this multilevel")
