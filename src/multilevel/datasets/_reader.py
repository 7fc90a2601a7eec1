"""Reading one shipped data file into a typed pandas DataFrame."""

from __future__ import annotations

from importlib.resources.abc import Traversable
from typing import Any

import numpy as np
import pandas as pd

from multilevel.errors import InternalError

__all__ = ["read_frame"]

# What to do about damaged package data: it ships with the package, so the user cannot fix it.
_REINSTALL = "; the installed package data is damaged: reinstall multilevel"


def _parse_float(text: str) -> float:
    """Parse one CSV cell exactly (Python's ``float`` is correctly rounded)."""
    return float("nan") if text == "NA" else float(text)


def read_frame(meta: dict[str, Any], data_dir: Traversable) -> pd.DataFrame:
    """Read and type the data file described by ``meta`` from the directory ``data_dir``.

    Every cell is read as text and converted here: doubles with Python's correctly rounded
    ``float`` so that each value is bit-for-bit R's (this is what
    ``read_csv(float_precision="round_trip")`` guarantees, an option pandas 3 deprecates),
    integers as ``int64``, and factors as Categoricals in R's level order.
    """
    name = meta["name"]
    columns = meta["columns"]
    try:
        with data_dir.joinpath(meta["file"]).open("rb") as handle:
            raw = pd.read_csv(
                handle,
                compression="gzip" if meta["file"].endswith(".gz") else None,
                dtype=str,
                keep_default_na=False,
                na_filter=False,
            )
    except (OSError, ValueError, EOFError, pd.errors.ParserError) as exc:
        # a truncated or damaged installation (gzip, decoding and CSV errors alike)
        raise InternalError(f"the data file of {name!r} cannot be read "
                            f"({type(exc).__name__}: {exc}){_REINSTALL}") from exc
    expected = [c["name"] for c in columns]
    if list(raw.columns) != expected or len(raw) != meta["nrow"]:
        raise InternalError(f"data file for {name!r} does not match its metadata{_REINSTALL}")
    data: dict[str, Any] = {}
    for col in columns:
        text = raw[col["name"]].to_numpy(dtype=object)
        kind = col["type"]
        if kind == "numeric":
            data[col["name"]] = np.array([_parse_float(v) for v in text], dtype=np.float64)
        elif kind == "integer":
            if (text == "NA").any():
                data[col["name"]] = pd.array(
                    [None if v == "NA" else int(v) for v in text], dtype="Int64"
                )
            else:
                data[col["name"]] = text.astype(np.int64)
        elif kind in ("factor", "ordered factor"):
            dtype = pd.CategoricalDtype(col["levels"], ordered=kind == "ordered factor")
            values = [None if v == "NA" else v for v in text]
            unknown = {v for v in text if v != "NA"} - set(col["levels"])
            if unknown:
                raise InternalError(
                    f"column {col['name']!r} of {name!r} has values outside its levels: "
                    f"{sorted(unknown)[:5]}{_REINSTALL}"
                )
            data[col["name"]] = pd.Categorical(values, dtype=dtype)
        else:
            raise InternalError(f"unknown column type {kind!r} in metadata of {name!r}"
                                f"{_REINSTALL}")
    return pd.DataFrame(data, index=pd.RangeIndex(len(raw)))
