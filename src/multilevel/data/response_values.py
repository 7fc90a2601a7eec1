"""The response vector y, read from the rows a model uses, for each form a formula can give it.

A linear mixed model needs a numeric response. A binomial GLMM also takes the forms R's
``glm`` and lme4's ``glmer`` take (``binomial()$initialize``):

* ``cbind(successes, failures)``: y is the proportion s / (s + f) and the number of trials
  s + f becomes a prior weight (multiplying the user's weights); both counts must be whole
  numbers >= 0;
* a logical column: True is 1, False is 0;
* a factor (categorical or text column) with exactly two levels: the first level is failure
  (0), the second success (1); the levels are the category order of a categorical column,
  else the sorted distinct values, as R's ``factor()`` orders them.

The family's own checks of a numeric response (proportions in [0, 1], counts, positivity)
belong to :mod:`multilevel.families`, not here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from formulaic import model_matrix

from multilevel.errors import DataError, FormulaError, quote_rows, shorten
from multilevel.formula.expressions import VALUE_CONTEXT
from multilevel.formula.parser import response_factor
from multilevel.formula.rnames import r_column_name

# How many offending rows a message quotes.
_QUOTED_ROWS = 3
# A count may differ from a whole number by rounding in its expression (n * p); beyond this
# relative difference it is not a count. R's binomial family warns from 1e-3 on.
_WHOLE_NUMBER_TOLERANCE = 1e-9


def evaluate(frame: pd.DataFrame, expr: str, what: str, formula: str) -> np.ndarray:
    """The values of a response expression, or of a ``cbind`` argument, as float.

    Parameters
    ----------
    frame : pandas.DataFrame
        The rows used (already cleaned of missing values).
    expr : str
        A column name, or an expression in formulaic syntax
        (:attr:`multilevel.formula.parser.ParsedFormula.response` or one of ``counts``).
    what : str
        The value's name in messages (``"the response 'log(y)'"``).
    formula : str
        The formula as written (for messages).
    """
    if expr in frame.columns:
        return frame[expr].to_numpy(dtype=float)
    try:
        mm = model_matrix(f"{response_factor(expr)} ~ 1", frame, na_action="ignore",
                          context=VALUE_CONTEXT)
    except Exception as exc:  # formulaic raises several exception types
        raise FormulaError(f"cannot evaluate {what}: {exc}", formula) from exc
    lhs = np.asarray(mm.lhs, dtype=float)
    if lhs.ndim != 2 or lhs.shape[1] != 1:
        raise DataError(f"{what} must be a single numeric column")
    return lhs[:, 0]


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series.dtype) and not (
        pd.api.types.is_bool_dtype(series.dtype))


def numeric_response(frame: pd.DataFrame, expr: str, formula: str) -> np.ndarray:
    """y of a linear mixed model: a numeric column or expression.

    Raises
    ------
    DataError
        If the response column holds booleans, text or categories.
    """
    if expr in frame.columns and not _is_numeric(frame[expr]):
        raise DataError(
            f"the response {expr!r} must be numeric, but it holds {frame[expr].dtype} values; "
            "convert it, or, for a binary outcome (True/False, or a factor with two levels), "
            "fit a binomial model with ml.glmer(..., family=\"binomial\")")
    return evaluate(frame, expr, f"the response {expr!r}", formula)


def binomial_response(frame: pd.DataFrame, expr: str, formula: str,
                      ) -> tuple[np.ndarray, tuple[str, str] | None]:
    """y of a generalized model whose response is one column or expression, and the two
    levels of a factor response (None for a numeric or logical one).

    A logical column gives 1.0 for True; a factor with two levels gives 1.0 for the second
    level; any other column or expression is numeric, checked by the family later.

    Raises
    ------
    DataError
        If a factor response does not have exactly two levels in the rows used.
    """
    if expr not in frame.columns:
        return evaluate(frame, expr, f"the response {expr!r}", formula), None
    series = frame[expr]
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        # clean_frame has removed the categories no row uses, as lme4's model frame does
        levels = [str(c) for c in dtype.categories]
        _check_two_levels(expr, levels)
        return (series.cat.codes.to_numpy() == 1).astype(float), (levels[0], levels[1])
    if pd.api.types.is_bool_dtype(dtype) or (
            pd.api.types.is_object_dtype(dtype)
            and pd.api.types.infer_dtype(series, skipna=True) == "boolean"):
        return series.to_numpy(dtype=float), None
    if _is_numeric(series):
        return series.to_numpy(dtype=float), None
    values = series.to_numpy(dtype=object)
    distinct = sorted(pd.unique(values), key=str)  # R's factor(): sorted distinct values
    levels = [str(v) for v in distinct]
    _check_two_levels(expr, levels)
    return (values == distinct[1]).astype(float), (levels[0], levels[1])


def _check_two_levels(name: str, levels: list[str]) -> None:
    if len(levels) == 2:
        return
    shown = shorten(", ".join(repr(level) for level in levels))
    raise DataError(
        f"the response {name!r} has {len(levels)} level{'' if len(levels) == 1 else 's'} in "
        f"the rows used ({shown}); a binomial response needs exactly two (the first is "
        "failure, the second success, as in R's glm). Recode it to two levels, or give the "
        "counts as cbind(successes, failures); for a count or positive response (Poisson, "
        "negative binomial, Gamma) give a numeric column")


def binomial_counts(frame: pd.DataFrame, counts: tuple[str, str], response: str,
                    formula: str, row_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The successes and failures of a ``cbind(successes, failures)`` response.

    Parameters
    ----------
    frame : pandas.DataFrame
        The rows used (already cleaned of missing values).
    counts : tuple of (str, str)
        :attr:`multilevel.formula.parser.ParsedFormula.counts`.
    response : str
        The ``cbind(...)`` text (for messages).
    formula : str
        The formula as written (for messages).
    row_index : numpy.ndarray
        Positions of ``frame``'s rows in the data as given (for messages).

    Returns
    -------
    successes, failures : numpy.ndarray of float, shape (n,)
        Whole numbers (values within rounding of one are rounded to it).

    Raises
    ------
    DataError
        If a count is not finite, negative or not a whole number, quoting the rows.
    """
    out = []
    for expr, role in zip(counts, ("successes", "failures"), strict=True):
        text = expr if expr in frame.columns else r_column_name(expr)
        what = f"the cbind argument {text!r} (the number of {role} in {response})"
        values = evaluate(frame, expr, what, formula)
        out.append(_checked_counts(values, what, row_index))
    return out[0], out[1]


def _checked_counts(values: np.ndarray, what: str, row_index: np.ndarray) -> np.ndarray:
    def quoted(rows: np.ndarray) -> str:
        return (quote_rows(rows, values.__getitem__, _QUOTED_ROWS, row_index.__getitem__)
                + (" is" if rows.size == 1 else " are"))

    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise DataError(f"{what} must be finite, but {quoted(bad)} not; a transform such "
                        "as log() or 1/x is undefined there: remove those rows or change the "
                        "expression")
    bad = np.flatnonzero(values < 0)
    if bad.size:
        raise DataError(f"{what} must be a count (a whole number >= 0), but {quoted(bad)} "
                        "negative; check the expression: in cbind(s, n - s), is s ever more "
                        "than n?")
    whole = np.round(values)
    bad = np.flatnonzero(np.abs(values - whole)
                         > _WHOLE_NUMBER_TOLERANCE * np.maximum(1.0, np.abs(values)))
    if bad.size:
        raise DataError(f"{what} must be a count (a whole number >= 0), but {quoted(bad)} "
                        "not; for proportions, give the proportion as the response and the "
                        "number of trials as weights, as in ml.glmer('p ~ x + (1 | g)', data, "
                        "family='binomial', weights='n')")
    return whole


__all__ = ["binomial_counts", "binomial_response", "evaluate", "numeric_response"]
