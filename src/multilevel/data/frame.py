"""Turn the user's data into a clean pandas frame of the columns a model uses.

Checks happen here, before any fitting: every used column exists and is named once, holds no
infinite or complex values, and a column meant as numbers is not a few stray text cells away
from being read as a factor with thousands of levels. Missing values are dropped listwise, as
lme4's ``na.action = na.omit`` does, and rows with prior weight zero are dropped as lme4 drops
them from the likelihood; both counts are kept for the result.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from multilevel.errors import ColumnNotFoundError, DataError, quote_rows
from multilevel.formula.expressions import logical_factor

# infer_dtype's names for an object column that holds only real numbers (and missing values).
_NUMBERS_AS_OBJECTS = {"integer", "floating", "mixed-integer-float", "decimal"}
# ... for one of dates, durations or intervals, which a model cannot use as numbers unnamed;
_TIME_LIKE = {"datetime", "datetime64", "date", "time", "timedelta", "timedelta64", "period",
              "interval"}
# ... and for one that may mix numbers with text.
_MAYBE_TEXT = {"string", "mixed", "mixed-integer", "bytes"}
# How many offending rows a message quotes.
_QUOTED_ROWS = 5


def to_pandas(data: Any) -> pd.DataFrame:
    """Accept a pandas or polars DataFrame (or anything pandas can build a frame from)."""
    if isinstance(data, pd.DataFrame):
        return data
    module = type(data).__module__
    if module.startswith("polars"):
        try:
            return data.to_pandas()
        except ModuleNotFoundError as exc:  # polars needs pyarrow to convert
            raise DataError(
                "converting a polars DataFrame needs pyarrow: pip install 'multilevel[polars]'"
            ) from exc
    if isinstance(data, dict):
        try:
            return pd.DataFrame(data)
        except (ValueError, TypeError) as exc:  # columns of unequal length, scalars only
            raise DataError(f"the dict of columns does not make a data frame ({exc}); give "
                            "each column as a list or array, all of one length") from exc
    raise DataError(
        f"data must be a pandas or polars DataFrame (or a dict of columns), got "
        f"{type(data).__name__}"
    )


@dataclass(frozen=True)
class CleanFrame:
    """The used columns of the data after listwise deletion of missing values.

    Attributes
    ----------
    frame : pandas.DataFrame
        The rows kept, with a 0..n-1 index; used categorical columns have unused
        categories removed (as R's ``model.frame`` drops unused levels), and used object
        columns holding only numbers are float. Other columns of the data may be present
        too; it is the caller's frame itself when nothing had to change.
    row_index : numpy.ndarray
        Positions (0-based) of the kept rows in the data as given.
    n_dropped : int
        Rows removed because a used column was missing.
    n_zero_weight : int
        Complete rows removed because their prior weight was zero.
    """

    frame: pd.DataFrame
    row_index: np.ndarray
    n_dropped: int
    n_zero_weight: int = 0


def _check_unique_names(data: pd.DataFrame, used: list[str]) -> None:
    """Two columns with one name make ``data[name]`` a frame, not a column."""
    if data.columns.is_unique:
        return
    dup = {str(c) for c in data.columns[data.columns.duplicated()]}
    clash = [c for c in used if c in dup]
    if clash:
        raise DataError(f"the data have several columns named {', '.join(map(repr, clash))}; "
                        "rename them so that each name used in the model means one column")


def _text_cells_error(col: str, series: pd.Series, numeric: pd.Series) -> DataError:
    """The error for a column of numbers with a few text cells, quoting the first of them."""
    text = series.notna().to_numpy() & numeric.isna().to_numpy()
    shown = quote_rows(np.flatnonzero(text), series.iloc.__getitem__, _QUOTED_ROWS)
    return DataError(
        f"column {col!r} holds numbers but also text that is not a number: {shown}. "
        "Read as text it would become a factor with a level per distinct value. Recode those "
        f"cells as missing (data[{col!r}] = pd.to_numeric(data[{col!r}], errors='coerce')), "
        "or, if the column really is a factor, convert it with .astype('category')")


def _value_column(col: str, series: pd.Series) -> pd.Series | None:
    """Check a column used for its values (response, predictor, random slope).

    Returns the column as float when it holds only numbers in an object column (R has no
    such type: it would be numeric), else None when it can be used as it is."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return None  # an explicit factor: the user has said what it is
    if pd.api.types.is_complex_dtype(dtype):
        raise DataError(f"column {col!r} holds complex numbers; a model of real numbers would "
                        "silently drop the imaginary part: pass the real part (np.real) or the "
                        "modulus (np.abs) explicitly")
    if pd.api.types.is_numeric_dtype(dtype):
        return None
    if not (pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)):
        raise _time_error(col, dtype)
    kind = pd.api.types.infer_dtype(series, skipna=True)
    if kind in _TIME_LIKE:
        raise _time_error(col, kind)
    if kind == "complex":
        raise DataError(f"column {col!r} holds complex numbers; pass the real part (np.real) "
                        "or the modulus (np.abs) explicitly")
    if kind in _NUMBERS_AS_OBJECTS:
        return pd.to_numeric(series).astype(float)
    if kind not in _MAYBE_TEXT:
        return None
    # Judge on the distinct values: a text factor has few, and the cost stays small.
    try:
        distinct = pd.Series(pd.unique(series.dropna().to_numpy(dtype=object)), dtype=object)
        numeric = pd.to_numeric(distinct, errors="coerce")
    except TypeError as exc:  # unhashable cells: lists, dicts, arrays
        raise _nested_error(col, exc) from exc
    if numeric.dtype.kind == "c":
        raise DataError(f"column {col!r} holds complex numbers; pass the real part (np.real) "
                        "or the modulus (np.abs) explicitly")
    n_numbers = int(numeric.notna().sum())
    if 0 < len(distinct) - n_numbers <= n_numbers:
        raise _text_cells_error(col, series, pd.to_numeric(series.astype(object),
                                                           errors="coerce"))
    if not pd.api.types.is_object_dtype(dtype):
        # pandas' string dtypes hold text as R's character vectors do: a factor. The encoder
        # reads text factors from object columns.
        return series.astype(object)
    return None


def _nested_error(col: str, exc: Exception) -> DataError:
    return DataError(f"column {col!r} holds nested values (lists, dicts or arrays: {exc}); a "
                     "model term needs one number or one label per row: unnest the column first")


def _time_error(col: str, kind: object) -> DataError:
    return DataError(
        f"column {col!r} holds {kind} values, which a model term cannot use as they are: "
        "convert it to numbers with the unit you mean (for example days since the first "
        f"date: (data[{col!r}] - data[{col!r}].min()).dt.days), or to a factor with "
        ".astype('category'); as a grouping factor it can be used as it is")


def clean_frame(data: pd.DataFrame, columns: Iterable[str],
                extra: dict[str, np.ndarray] | None = None, *,
                labels: Iterable[str] = (), zero_weight: str | None = None) -> CleanFrame:
    """Select ``columns`` (plus ``extra`` arrays such as weights), check and drop missing rows.

    Parameters
    ----------
    data : pandas.DataFrame
        The data as given (never modified).
    columns : iterable of str
        The columns the model uses.
    extra : dict of str to numpy.ndarray, optional
        Further per-row values (already checked float arrays: weights, offset), added to the
        frame under their keys.
    labels : iterable of str
        Columns used only as grouping factors: labels, whatever their type (as R treats
        them), so they are not checked for text cells among numbers.
    zero_weight : str, optional
        The key in ``extra`` of the prior weights: complete rows whose weight is zero are
        removed and counted in ``n_zero_weight``.

    Raises
    ------
    ColumnNotFoundError
        If a column is not in ``data``.
    DataError
        If a used column name is duplicated, a used column holds an infinite or complex value
        or is mostly numbers with some text cells, or no rows remain.
    """
    used = list(dict.fromkeys(columns))
    available = [str(c) for c in data.columns]
    for col in used:
        if col not in data.columns:
            raise ColumnNotFoundError(col, available)
    _check_unique_names(data, used)
    if not data.columns.is_unique:
        # Unused columns sharing a name would make frame[name] a frame further on: leave them.
        data = data.loc[:, ~data.columns.duplicated(keep=False)]
    # Work on the caller's frame without copying it; a copy is made only when rows are
    # dropped, extra columns added or columns converted (never mutating the input).
    frame = data
    label_only = set(labels)
    converted = {}
    for col in used:
        if col in label_only:
            if pd.api.types.is_complex_dtype(data[col].dtype):
                raise DataError(f"grouping factor {col!r} holds complex numbers; convert it "
                                "to labels (strings) explicitly")
            continue
        as_float = _value_column(col, data[col])
        if as_float is not None:
            converted[col] = as_float
    if converted or extra:
        frame = data.assign(**converted, **(extra or {}))
        used = used + list(extra or {})
    missing = np.zeros(len(frame), dtype=bool)
    empty = []
    for col in used:
        series = frame[col]
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            values = series.to_numpy(dtype=float, na_value=np.nan)
            bad = np.isinf(values)
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise DataError(f"column {col!r} has an infinite value (first at row {row}); "
                                "remove or recode it before fitting")
            col_missing = np.isnan(values)
        else:
            col_missing = series.isna().to_numpy()
        missing |= col_missing
        if col_missing.all():
            empty.append(col)
    if missing.all():
        which = (f"; {', '.join(map(repr, empty))} {'is' if len(empty) == 1 else 'are'} "
                 "missing on every row" if empty else "")
        raise DataError("no rows left after removing rows with missing values in the used "
                        f"columns ({', '.join(map(repr, used))}){which}")
    drop = missing
    n_zero = 0
    if zero_weight is not None:
        zero = ~missing & (frame[zero_weight].to_numpy(dtype=float) == 0)
        n_zero = int(zero.sum())
        if n_zero == int((~missing).sum()):
            raise DataError("every row with complete data has prior weight zero; rows with "
                            "weight zero do not enter the likelihood, so no rows are left")
        drop = missing | zero
    return CleanFrame(frame=_without_rows(data, frame, drop, used),
                      row_index=np.flatnonzero(~drop), n_dropped=int(missing.sum()),
                      n_zero_weight=n_zero)


def _without_rows(data: pd.DataFrame, frame: pd.DataFrame, drop: np.ndarray,
                  used: Iterable[str]) -> pd.DataFrame:
    """``frame`` without the rows marked in ``drop``, indexed 0..n-1, with the categories no
    kept row uses removed from the ``used`` columns; ``data``, the caller's frame, is never
    modified."""
    if drop.any():
        frame = frame.loc[~drop]
    if not isinstance(frame.index, pd.RangeIndex) or frame.index.start != 0 or (
            frame.index.step != 1):
        frame = frame.reset_index(drop=True)
    for col in used:
        if isinstance(frame[col].dtype, pd.CategoricalDtype):
            codes = frame[col].cat.codes.to_numpy()
            if np.bincount(codes, minlength=len(frame[col].cat.categories)).min() == 0:
                if frame is data:
                    frame = data.copy(deep=False)
                frame[col] = frame[col].cat.remove_unused_categories()
    return frame


def drop_zero_weight(clean: CleanFrame, zero: np.ndarray, columns: Iterable[str],
                     what: str) -> CleanFrame:
    """``clean`` without the rows marked in ``zero``, counted with the rows of prior weight
    zero: for a weight known only once the used columns are evaluated, such as the number of
    trials of a binomial ``cbind(successes, failures)`` response (a row with no trials carries
    no information).

    Parameters
    ----------
    clean : CleanFrame
        The result of :func:`clean_frame`.
    zero : numpy.ndarray of bool, shape (len(clean.frame),)
        The rows to drop.
    columns : iterable of str
        The columns the model uses (their unused categories are removed).
    what : str
        What the dropped rows have, for the message when no row is left
        (``"no trials (successes + failures = 0)"``).

    Raises
    ------
    DataError
        If every row is dropped.
    """
    if not zero.any():
        return clean
    if zero.all():
        raise DataError(f"every row with complete data has {what}; such rows do not enter the "
                        "likelihood, so no rows are left")
    frame = _without_rows(clean.frame, clean.frame, zero, list(columns))
    return CleanFrame(frame=frame, row_index=clean.row_index[~zero],
                      n_dropped=clean.n_dropped,
                      n_zero_weight=clean.n_zero_weight + int(zero.sum()))


def logical_as_factor(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every logical column (numpy bool or pandas "boolean") a factor with
    levels FALSE and TRUE, as R's model matrices treat logicals: the column ``x`` gives the
    coefficient ``xTRUE``, lme4's name. The frame itself is not changed."""
    logical = [c for c in frame.columns if pd.api.types.is_bool_dtype(frame[c].dtype)]
    if not logical:
        return frame
    out = frame.copy()
    for c in logical:
        out[c] = logical_factor(frame[c])
    return out
