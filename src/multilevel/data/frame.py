"""Turn the user's data into a clean pandas frame of the columns a model uses.

Checks happen here, before any fitting: every used column exists, no infinite values, no rows
left empty after removing missing values. Missing values are dropped listwise, as lme4's
``na.action = na.omit`` does, and the count is kept for the result.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from multilevel.errors import ColumnNotFoundError, DataError


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
        return pd.DataFrame(data)
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
        categories removed (as R's ``model.frame`` drops unused levels). Other columns of
        the data may be present too; it is the caller's frame itself when nothing had to
        change.
    row_index : numpy.ndarray
        Positions (0-based) of the kept rows in the data as given.
    n_dropped : int
        Rows removed because a used column was missing.
    """

    frame: pd.DataFrame
    row_index: np.ndarray
    n_dropped: int


def clean_frame(data: pd.DataFrame, columns: Iterable[str],
                extra: dict[str, np.ndarray] | None = None) -> CleanFrame:
    """Select ``columns`` (plus ``extra`` arrays such as weights), check and drop missing rows.

    Raises
    ------
    ColumnNotFoundError
        If a column is not in ``data``.
    DataError
        If a used numeric column holds an infinite value, or no rows remain.
    """
    used = list(dict.fromkeys(columns))
    available = [str(c) for c in data.columns]
    for col in used:
        if col not in data.columns:
            raise ColumnNotFoundError(col, available)
    # Work on the caller's frame without copying it; a copy is made only when rows are
    # dropped, extra columns added or unused categories removed (never mutating the input).
    frame = data
    if extra:
        for name, values in extra.items():
            arr = np.asarray(values)
            if arr.shape != (len(data),):
                raise DataError(f"{name} must have one value per row of the data "
                                f"({len(data)}), got shape {arr.shape}")
        frame = data.assign(**{name: np.asarray(v) for name, v in extra.items()})
        used = used + list(extra)
    missing = np.zeros(len(frame), dtype=bool)
    for col in used:
        series = frame[col]
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            values = series.to_numpy(dtype=float, na_value=np.nan)
            bad = np.isinf(values)
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise DataError(f"column {col!r} has an infinite value (first at row {row}); "
                                "remove or recode it before fitting")
            missing |= np.isnan(values)
        else:
            missing |= series.isna().to_numpy()
    if missing.all():
        raise DataError("no rows left after removing rows with missing values in the used "
                        f"columns ({', '.join(map(str, used))})")
    if missing.any():
        frame = frame.loc[~missing]
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
    return CleanFrame(frame=frame, row_index=np.flatnonzero(~missing),
                      n_dropped=int(missing.sum()))
