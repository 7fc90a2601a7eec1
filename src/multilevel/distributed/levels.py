"""The first, cheap pass: the levels of every factor over the whole (partitioned) data.

Each partition reports the distinct values of its factor columns among its complete rows
(what the in-memory design keeps), and, for a grouping factor made of several columns
(``(1 | a:b)``, ``(1 | a/b)``), the distinct combinations; the reports are merged by union.
Only distinct values travel, so the result is of the size of the levels, not of the rows.
:func:`apply_levels` turns the merged values into the levels R would give the whole data:
categories in their order, other values sorted; combinations ordered with the first column
varying slowest, as R's interaction of factors.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from multilevel.data.grouping import factor_codes
from multilevel.distributed.encoding import PartitionEncoder

# column -> distinct values (a Series keeping the column's dtype); ("combo", i) -> the
# distinct rows of term i's grouping columns (a DataFrame)
Levels = dict[Any, Any]


def partition_levels(encoder: PartitionEncoder, factor_columns: list[str],
                     frame: pd.DataFrame) -> Levels:
    """The distinct values of ``factor_columns`` and grouping combinations in one partition's
    complete rows."""
    clean, _, _ = encoder.clean(frame)
    out: Levels = {}
    if clean is None:
        return out
    for col in factor_columns:
        out[col] = clean[col].drop_duplicates().reset_index(drop=True)
    for i, spec in enumerate(encoder.parsed.random):
        if len(spec.group_factors) > 1:
            cols = list(spec.group_factors)
            out[("combo", i)] = clean[cols].drop_duplicates().reset_index(drop=True)
    return out


def merge_levels(*parts: Levels) -> Levels:
    """The union of several partitions' reports (still distinct values only)."""
    out: Levels = {}
    keys = list(dict.fromkeys(k for p in parts for k in p))
    for key in keys:
        pieces = [p[key] for p in parts if key in p]
        out[key] = pd.concat(pieces, ignore_index=True).drop_duplicates().reset_index(drop=True)
    return out


def value_categories(values: pd.Series) -> list[Any]:
    """A factor column's levels as formulaic would find them on the whole column: the
    categories in their order (those that occur), else the sorted distinct values."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        present = set(values.dropna().astype(object))
        return [c for c in values.cat.categories if c in present]
    return list(pd.Index(values.dropna().unique()).sort_values())


def apply_levels(encoder: PartitionEncoder, levels: Levels, value_columns: list[str],
                 group_columns: list[str]) -> list[np.ndarray | None]:
    """Fill ``encoder``'s global levels (categories, grouping labels) from the merged report
    and return, per random term in the formula's order, the sorted keys of the level
    combinations that occur (None for a one-column grouping factor, whose labels are its
    levels). Grouping labels are those of :func:`~multilevel.data.grouping.factor_codes` on
    the distinct values, hence R's order and R's labels."""
    for col in value_columns:
        encoder.categories[col] = value_categories(levels[col])
    for col in group_columns:
        encoder.group_labels[col] = factor_codes(levels[col])[1]
    out: list[np.ndarray | None] = []
    for i, spec in enumerate(encoder.parsed.random):
        if len(spec.group_factors) == 1:
            out.append(None)
            continue
        combos = levels[("combo", i)]
        key = np.zeros(len(combos), dtype=np.int64)
        for col in spec.group_factors:
            key = key * len(encoder.group_labels[col]) + encoder._column_codes(combos, col)
        out.append(np.unique(key))
    return out


def term_labels(encoder: PartitionEncoder, term: int, sep: str = ":") -> list[str]:
    """The level labels of term ``term`` (model order): ``"a:b"`` for a combination."""
    spec = encoder.parsed.random[encoder.term_order[term]]
    cols = spec.group_factors
    combos = encoder.term_levels[term]
    if combos is None:
        return list(encoder.group_labels[cols[0]])
    sizes = [len(encoder.group_labels[c]) for c in cols]
    labels = []
    for key in combos.tolist():
        parts = []
        for col, size in zip(reversed(cols), reversed(sizes), strict=True):
            parts.append(encoder.group_labels[col][key % size])
            key //= size
        labels.append(sep.join(reversed(parts)))
    return labels
