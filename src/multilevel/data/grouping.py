"""Grouping factors: integer level codes and level labels, as R's ``factor()`` makes them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


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


def _factor_codes(series: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Codes and labels of one column, in R's level order (categories, else sorted values)."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        cat = series.cat.remove_unused_categories()
        return cat.cat.codes.to_numpy(dtype=np.int64), [str(c) for c in cat.cat.categories]
    uniques, codes = np.unique(series.to_numpy(), return_inverse=True)
    return codes.astype(np.int64), [_label(u) for u in uniques]


def _label(value: object) -> str:
    """R prints integral doubles without a decimal point in factor labels."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def grouping_factor(frame: pd.DataFrame, factors: tuple[str, ...], name: str) -> GroupingFactor:
    """Build the grouping factor for ``factors`` (one column, or their interaction).

    The interaction of several factors has the levels that occur, ordered with the first
    factor varying slowest, labelled ``"a:b"`` as R's ``:`` operator on factors does.
    """
    codes, labels = _factor_codes(frame[factors[0]])
    for col in factors[1:]:
        c2, l2 = _factor_codes(frame[col])
        combined = codes * len(l2) + c2
        used, codes = np.unique(combined, return_inverse=True)
        labels = [f"{labels[u // len(l2)]}:{l2[u % len(l2)]}" for u in used]
    return GroupingFactor(name=name, codes=codes.astype(np.int64), levels=tuple(labels))
