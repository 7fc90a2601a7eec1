"""Catalog of the data sets shipped with ``multilevel``.

Each data set ``NAME`` is stored as package data in ``multilevel/datasets/data``: the values in
``NAME.csv`` (or ``NAME.csv.gz``), written from R by ``tools/export_datasets.R``, and the metadata
in ``NAME.json`` (source, R package version, column types, factor levels in R's order and
column descriptions).
"""

from __future__ import annotations

import builtins
import json
import textwrap
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import pandas as pd

from multilevel.datasets._reader import read_frame
from multilevel.errors import ArgumentError, DatasetNotFoundError, public_api

__all__ = ["available", "describe", "list_datasets", "load", "metadata"]

_PACKAGE = "multilevel.datasets"
_DATA_DIR = "data"


def _data_dir() -> Traversable:
    """Return the traversable directory holding the data files."""
    return resources.files(_PACKAGE).joinpath(_DATA_DIR)


@cache
def _index() -> dict[str, str]:
    """Map the lower-cased name of every shipped data set to its canonical name."""
    names = sorted(
        entry.name[: -len(".json")]
        for entry in _data_dir().iterdir()
        if entry.name.endswith(".json")
    )
    return {name.lower(): name for name in names}


@public_api
def available() -> builtins.list[str]:
    """Return the names of all shipped data sets, sorted case-insensitively.

    Returns
    -------
    list of str
        Canonical names, spelt as in R (for example ``"sleepstudy"``, ``"Dyestuff"``).
    """
    return sorted(_index().values(), key=str.lower)


def _resolve(name: str) -> str:
    """Return the canonical spelling of ``name``, matched case-insensitively."""
    if not isinstance(name, str):
        raise ArgumentError(f"name must be the name of a data set (a str such as "
                            f"'sleepstudy'), not {type(name).__name__} {name!r:.60}; "
                            "multilevel.datasets.available() lists them")
    canonical = _index().get(name.strip().lower())
    if canonical is None:
        raise DatasetNotFoundError(name, available())
    return canonical


@cache
def _metadata(name: str) -> dict[str, Any]:
    text = _data_dir().joinpath(f"{name}.json").read_text(encoding="utf-8")
    meta: dict[str, Any] = json.loads(text)
    return meta


@public_api
def metadata(name: str) -> dict[str, Any]:
    """Return the metadata of a data set as stored in its JSON file.

    Parameters
    ----------
    name : str
        Data set name, matched case-insensitively.

    Returns
    -------
    dict
        A deep copy of the metadata: ``name``, ``title``, ``source``, ``package_version``,
        ``nrow``, ``ncol``, ``description``, ``reference`` and ``columns`` (each with
        ``name``, ``type``, ``description`` and, for factors, ``levels``).

    Raises
    ------
    DatasetNotFoundError
        If no data set of that name is shipped.
    """
    meta: dict[str, Any] = json.loads(json.dumps(_metadata(_resolve(name))))
    return meta


@cache
def _frame(name: str) -> pd.DataFrame:
    """Read and type one data set (cached; callers must copy)."""
    return read_frame(_metadata(name), _data_dir())


@public_api
def load(name: str) -> pd.DataFrame:
    """Load a shipped data set as a pandas DataFrame.

    Parameters
    ----------
    name : str
        Data set name, matched case-insensitively (``"dyestuff"`` finds ``Dyestuff``).

    Returns
    -------
    pandas.DataFrame
        A fresh copy each call.  R factors are Categoricals whose categories follow R's level
        order (``ordered=True`` for R's ordered factors), R integers are ``int64`` and R
        doubles are ``float64``, read exactly as R holds them.

    Raises
    ------
    DatasetNotFoundError
        If no data set of that name is shipped; the message suggests close names.
    """
    frame: pd.DataFrame = _frame(_resolve(name)).copy(deep=True)
    return frame


@public_api
def list_datasets() -> pd.DataFrame:
    """Return a table of the shipped data sets.

    Returns
    -------
    pandas.DataFrame
        One row per data set, sorted by name (case-insensitively), with columns ``name``,
        ``nrow``, ``ncol``, ``source`` and ``title``.
    """
    rows = [
        {
            "name": meta["name"],
            "nrow": int(meta["nrow"]),
            "ncol": int(meta["ncol"]),
            "source": meta["source"],
            "title": meta["title"],
        }
        for meta in (_metadata(n) for n in available())
    ]
    table = pd.DataFrame(rows, columns=["name", "nrow", "ncol", "source", "title"])
    return table.astype({"nrow": "int64", "ncol": "int64"})


@public_api
def describe(name: str) -> str:
    """Return a printable description of a data set.

    Parameters
    ----------
    name : str
        Data set name, matched case-insensitively.

    Returns
    -------
    str
        The title, description, source (with the R package version), reference, and one
        entry per column giving its type, its levels for factors, and its description.

    Raises
    ------
    DatasetNotFoundError
        If no data set of that name is shipped.
    """
    meta = _metadata(_resolve(name))
    wrap = textwrap.TextWrapper(width=88, subsequent_indent="    ")
    lines = [f"{meta['name']}: {meta['title']}", ""]
    lines += textwrap.wrap(meta["description"], width=88)
    lines += [
        "",
        f"Source: {meta['source']} (R package {meta['package']} {meta['package_version']})",
        f"Size: {meta['nrow']} rows x {meta['ncol']} columns",
    ]
    lines += wrap.wrap(f"Reference: {meta['reference']}")
    lines += ["", "Columns:"]
    width = max(len(c["name"]) for c in meta["columns"])
    indent = " " * (width + 4)
    for col in meta["columns"]:
        kind = col["type"]
        if "levels" in col:
            levels = col["levels"]
            shown = ", ".join(levels[:8]) + (", ..." if len(levels) > 8 else "")
            kind = f"{kind}, {len(levels)} levels: {shown}"
        first = f"  {col['name']:<{width}}  {col['description']}"
        lines += textwrap.wrap(first, width=88, subsequent_indent=indent)
        lines += textwrap.wrap(
            f"[{kind}]", width=88, initial_indent=indent, subsequent_indent=indent
        )
    return "\n".join(lines)
