"""Reading a structure's covariate from the data: a number per row, or a typed error."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from multilevel.errors import DataError


def numeric_column(data: Mapping[str, Any], name: str,
                   refusal: Callable[[Any], str]) -> NDArray[np.float64]:
    """Column ``name`` of ``data`` as floats; a text or factor column is a DataError with the
    message ``refusal(example)`` (``example``: its first value), before any fitting."""
    column = data[name]
    arr = np.asarray(column)
    if isinstance(getattr(column, "dtype", None), pd.CategoricalDtype) or \
            arr.dtype.kind not in "biuf":
        example = next((v for v in arr.ravel() if v is not None), None)
        raise DataError(refusal(example))
    return arr.astype(float)
