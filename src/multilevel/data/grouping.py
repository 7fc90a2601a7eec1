"""Grouping factors: integer level codes and level labels, as R's ``factor()`` makes them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from multilevel.errors import DataError


@dataclass(frozen=True)
class GroupingFactor:
    """A grouping factor coded as integers 0..n_levels-1.

    Attributes
    ----------
    name : str
        As lme4 prints it (``"Subject"``, ``"cask:batch"``).
    codes : numpy.ndarray of int64, shape (n,)
        Level index of each row.
    levels : tuple of str
        Level labels in R's order.
    """

    name: str
    codes: np.ndarray
    levels: tuple[str, ...]

    @property
    def n_levels(self) -> int:
        """Number of levels that occur in the data."""
        return len(self.levels)


# infer_dtype's names for object columns whose values compare among themselves, so that
# sorting them gives R's order (numbers numerically, text alphabetically).
_HOMOGENEOUS = {"string", "integer", "floating", "mixed-integer-float", "decimal", "boolean",
                "datetime", "datetime64", "date", "timedelta", "timedelta64", "period"}


def _label(value: object) -> str:
    """A level's label as R prints it: integral doubles without a decimal point, logicals
    as ``TRUE``/``FALSE``."""
    if isinstance(value, bool | np.bool_):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _labels(uniques: pd.Index) -> list[str]:
    if isinstance(uniques, pd.DatetimeIndex | pd.TimedeltaIndex | pd.PeriodIndex):
        return [str(u) for u in uniques.astype(str)]  # dates print without a midnight time
    return [_label(u) for u in uniques]


def level_labels(series: pd.Series) -> np.ndarray:
    """The label of each row's level (as :class:`GroupingFactor` labels levels); None where
    the value is missing. Use it to match new data against fitted levels."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy()
        labels = np.array([str(c) for c in series.cat.categories] + [None], dtype=object)
    else:
        codes, uniques = pd.factorize(series)
        labels = np.array(_labels(pd.Index(uniques)) + [None], dtype=object)
    return labels[codes]  # code -1 (missing) picks the trailing None


def factor_codes(series: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Codes and labels of one column, in R's level order (categories, else sorted values).

    Grouping factors are labels: a column mixing numbers and text (which R would hold as
    text) has its values turned into labels first and sorted as text."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        cat = series.cat.remove_unused_categories()
        # tolist() first: iterating a pyarrow-backed Index one element at a time costs ~4 us a
        # level, as much as a small model's whole fit for a few thousand levels
        return (cat.cat.codes.to_numpy(dtype=np.int64),
                [str(c) for c in cat.cat.categories.tolist()])
    try:
        if pd.api.types.is_object_dtype(series.dtype) and (
                pd.api.types.infer_dtype(series, skipna=True) not in _HOMOGENEOUS):
            series = pd.Series(level_labels(series), dtype=object, name=series.name)
        codes, uniques = pd.factorize(series, sort=True)
    except TypeError as exc:  # unhashable cells (lists, dicts) cannot be labels
        raise DataError(f"grouping factor {series.name!r} holds values that cannot be labels "
                        f"({exc}); a grouping factor needs one label per row") from exc
    return codes.astype(np.int64), _labels(pd.Index(uniques))


def grouping_factor(frame: pd.DataFrame, factors: tuple[str, ...], name: str,
                    sep: str = ":") -> GroupingFactor:
    """Build the grouping factor for ``factors`` (one column, or their interaction).

    The interaction of several factors has the levels that occur, ordered with the first
    factor varying slowest, labelled ``"a:b"`` as R's ``:`` operator on factors does (``sep``
    "/" gives nlme's names of nested groups, ``"a/b"``).
    """
    codes, labels = factor_codes(frame[factors[0]])
    for col in factors[1:]:
        c2, l2 = factor_codes(frame[col])
        combined = codes * len(l2) + c2
        used, codes = np.unique(combined, return_inverse=True)
        labels = [f"{labels[u // len(l2)]}{sep}{l2[u % len(l2)]}" for u in used]
    return GroupingFactor(name=name, codes=codes.astype(np.int64), levels=tuple(labels))
