"""Prior weights and offsets: one number per row of the data, checked before any fitting.

A prior weight ``w_i`` makes row ``i``'s residual variance ``sigma^2 / w_i``; an offset is a
known term added to the linear predictor. Both are given as a column name of the data or as an
array with one value per row. Rules (lme4's, made explicit):

* the values must be real numbers: strings, booleans and complex numbers are refused rather
  than coerced;
* a missing value (NaN, None, ``pd.NA``) marks the row as missing: it is dropped with the other
  incomplete rows, as R's ``model.frame`` does with ``na.action = na.omit``;
* infinite values are refused, and so are negative weights;
* a row with weight zero does not enter the likelihood; :func:`multilevel.data.frame.
  clean_frame` removes it before fitting and counts it apart from the missing rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from multilevel.errors import ColumnNotFoundError, DataError, quote_rows

# How many offending values a message quotes: enough to see the pattern, short on big data.
QUOTED_VALUES = 3


def _quote(rows: np.ndarray, values: np.ndarray) -> str:
    """``row 3 ('a'), row 7 ('b')`` for the first few offending rows."""
    return quote_rows(rows, values.__getitem__, QUOTED_VALUES)


def _as_float(values: np.ndarray, what: str) -> np.ndarray:
    """Real numbers as float64 with NaN for missing; anything else is a DataError."""
    kind = values.dtype.kind
    if kind == "c":
        rows = np.flatnonzero(np.imag(values) != 0)
        where = f" ({_quote(rows, values)})" if rows.size else ""
        raise DataError(f"{what} holds complex numbers{where}; it must hold real numbers: pass "
                        "the real part (np.real) if that is what you mean")
    if kind == "b":
        raise DataError(f"{what} holds booleans (True/False); convert them to numbers "
                        "explicitly (for example .astype(float)) if 0/1 is what you mean")
    if kind in "iuf":
        return values.astype(float, copy=False)
    # Objects, strings, dates: only real numbers and missing markers are accepted, cell by cell.
    series = pd.Series(values, dtype=object)
    missing = series.isna().to_numpy()
    real = int | float | np.integer | np.floating
    is_real = np.fromiter((isinstance(v, real) and not isinstance(v, bool | np.bool_)
                           for v in values), dtype=bool, count=len(values))
    bad = np.flatnonzero(~missing & ~is_real)
    if bad.size:
        # Quote the cells that are no number at all before those that are numbers as text.
        parsed = pd.to_numeric(pd.Series(values[bad], dtype=object), errors="coerce")
        worst = bad[parsed.isna().to_numpy()]
        if worst.size:
            raise DataError(f"{what} must hold numbers, but {_quote(worst, values)} "
                            f"{'is' if worst.size == 1 else 'are'} not; recode those cells as "
                            "numbers or as missing (pd.to_numeric(..., errors='coerce'))")
        raise DataError(f"{what} must hold numbers, but holds text ({_quote(bad, values)}); "
                        "convert it with pd.to_numeric")
    out = np.full(len(values), np.nan)
    out[~missing] = np.asarray(values[~missing], dtype=float)
    return out


def row_vector(value: Any, source: pd.DataFrame, what: str) -> np.ndarray | None:
    """The weights or offset argument as float64, one per row of ``source``; None if absent.

    Parameters
    ----------
    value : str, array-like or None
        A column name of ``source``, or one value per row (a list, numpy array, pandas or
        polars Series; taken by position, not by index).
    source : pandas.DataFrame
        The data as given.
    what : str
        ``"weights"`` or ``"offset"``: named in every message.

    Returns
    -------
    numpy.ndarray of float, shape (len(source),), or None
        NaN where the value is missing (the row is then dropped as incomplete).

    Raises
    ------
    ColumnNotFoundError
        If ``value`` is a name that is not a column of ``source``.
    DataError
        If the values are not real numbers, have the wrong length, are infinite, or (weights)
        are negative or all zero.
    """
    if value is None:
        return None
    n = len(source)
    is_weights = what == "weights"
    if isinstance(value, str):
        if value not in source.columns:
            raise ColumnNotFoundError(value, [str(c) for c in source.columns], what)
        column = source[value]
        if isinstance(column, pd.DataFrame):
            raise DataError(f"the data have {column.shape[1]} columns named {value!r}; rename "
                            f"them so that {what}={value!r} names one column")
        what = f"{what}={value!r} (a column of the data)"
        series: Any = column
    else:
        what = f"{what}="
        series = value
    if isinstance(series, pd.Series):
        raw = series.to_numpy(dtype=float, na_value=np.nan) if (
            pd.api.types.is_numeric_dtype(series.dtype)
            and not pd.api.types.is_bool_dtype(series.dtype)
            and not pd.api.types.is_complex_dtype(series.dtype)) else series.to_numpy()
    else:
        try:
            raw = np.asarray(series)
            if raw.dtype.kind in "US" and not isinstance(series, np.ndarray):
                # a list mixing numbers and text would come back as all text: keep each cell
                raw = np.asarray(series, dtype=object)
        except Exception as exc:  # ragged nested lists and the like
            raise DataError(f"{what} must be one number per row of the data ({n} rows); "
                            f"could not read {type(series).__name__}: {exc}") from exc
    if raw.shape != (n,):
        raise DataError(f"{what} must have one value per row of the data ({n} values), got "
                        f"{'a scalar' if raw.ndim == 0 else f'shape {raw.shape}'}")
    values = _as_float(raw, what)
    infinite = np.flatnonzero(np.isinf(values))
    if infinite.size:
        raise DataError(f"{what} must be finite, but {_quote(infinite, values)} "
                        f"{'is' if infinite.size == 1 else 'are'} infinite; remove or recode "
                        "those rows")
    if is_weights:
        negative = np.flatnonzero(values < 0)
        if negative.size:
            raise DataError(f"{what} must be non-negative (a weight w makes the residual "
                            f"variance sigma^2 / w), but {_quote(negative, values)} "
                            f"{'is' if negative.size == 1 else 'are'} negative")
        if not (values > 0).any():
            raise DataError(f"{what} holds only zeros and missing values: rows with weight "
                            "zero do not enter the likelihood, so no rows are left to fit")
    return values


__all__ = ["row_vector"]
