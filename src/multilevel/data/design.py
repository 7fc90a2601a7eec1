"""From a parsed formula and a data frame to the model's matrices: y, X and the
random-effects terms (each a grouping factor and a dense n x k model matrix). The forms of the
response a binomial model also takes (``cbind(successes, failures)``, logical, two-level
factor) are read by :mod:`multilevel.data.response_values`.

This is the one pass over the rows; everything after it works on cross-products whose size
depends on the number of levels, not of rows.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.linalg as sla
from formulaic import ModelSpec, model_matrix

from multilevel.data.frame import clean_frame, drop_zero_weight, logical_as_factor, to_pandas
from multilevel.data.grouping import GroupingFactor, grouping_factor
from multilevel.data.response_values import (
    binomial_counts,
    binomial_response,
    numeric_response,
)
from multilevel.data.weights import row_vector
from multilevel.errors import (
    DataError,
    FormulaError,
    IdentifiabilityError,
    MissingDataWarning,
    RankDeficiencyWarning,
)
from multilevel.formula.expressions import EVALUATION_CONTEXT, VALUE_CONTEXT
from multilevel.formula.identifiers import unquote_name
from multilevel.formula.parser import (
    ParsedFormula,
    RandomTermSpec,
    expression_columns,
    formula_terms,
    parse_formula,
    response_factor,
)
from multilevel.formula.rnames import r_column_name, r_column_names

# The most covariance parameters (theta) a model may have. A term with k columns has
# k(k+1)/2; the derivative-free optimizer's work per step grows with the square of the count
# and the steps needed with the count, so a 20-column term (210 parameters) already takes
# thousands of evaluations of a likelihood that cannot inform that many parameters.
MAX_COVARIANCE_PARAMETERS = 200

# R's qr() (LINPACK dqrdc2) declares a column aliased when its norm after projection on the
# previous columns falls below this fraction of its original norm; lme4 inherits the rule.
RANK_TOLERANCE = 1e-7


@dataclass(frozen=True)
class RandomEffectTerm:
    """One ``(lhs | group)`` term: a grouping factor and the term's model matrix.

    Attributes
    ----------
    factor : GroupingFactor
    columns : tuple of str
        Column names of the term's model matrix, as lme4 names them (``"(Intercept)"``).
    Z : numpy.ndarray, shape (n, k)
        The term's raw model matrix (one row per observation).
    lhs : str
        The term's formula (formulaic syntax).
    spec : formulaic.ModelSpec or None
        Replays the same encoding on new data (for prediction); None when the term is plain
        numeric columns, whose encoding is stateless.
    """

    factor: GroupingFactor
    columns: tuple[str, ...]
    Z: np.ndarray
    lhs: str
    spec: ModelSpec | None

    @property
    def n_columns(self) -> int:
        """Number of random effects per level (k)."""
        return len(self.columns)

    @property
    def n_levels(self) -> int:
        """Number of levels of the grouping factor."""
        return self.factor.n_levels


@dataclass(frozen=True)
class ModelDesign:
    """Everything the likelihood needs from the data, built once.

    Attributes
    ----------
    formula : ParsedFormula
    response_name : str
        The response as the formula writes it (``"cbind(incidence, size - incidence)"``).
    y : numpy.ndarray, shape (n,)
        The response; for a binomial model built with ``glm=True``, the proportion of
        successes of a ``cbind`` response, and 0.0 / 1.0 for a logical or two-level one.
    X : numpy.ndarray, shape (n, p)
        Fixed-effects matrix, aliased columns already removed.
    fixed_names : tuple of str
        Names of the columns of X, as R names them.
    dropped_fixed : tuple of str
        Aliased columns that were dropped (rank deficiency).
    fixed_spec : formulaic.ModelSpec or None
        Replays the fixed-effects encoding on new data (None for plain numeric columns).
    terms : tuple of RandomEffectTerm
        In lme4's order (by decreasing number of levels when that order changes anything).
    weights, offset : numpy.ndarray or None
        Prior weights and offset, per kept row. The prior weights of a ``cbind`` response
        are its numbers of trials (times the user's weights, if any), as in R's ``glm``.
    row_index : numpy.ndarray
        Positions of the kept rows in the data as given.
    n_dropped : int
        Rows removed for missing values.
    n_zero_weight : int
        Complete rows removed because their prior weight was zero: they carry no
        information, and the fit is that on the other rows (as R's ``lm`` counts them). Rows
        of a ``cbind`` response with no trials (successes + failures = 0) count here too.
    response_levels : tuple of (str, str) or None
        For a two-level factor response of a binomial model, its levels: the first is
        failure (y = 0), the second success (y = 1), as in R's ``glm``. None otherwise.
    """

    formula: ParsedFormula
    response_name: str
    y: np.ndarray
    X: np.ndarray
    fixed_names: tuple[str, ...]
    dropped_fixed: tuple[str, ...]
    fixed_spec: ModelSpec | None
    terms: tuple[RandomEffectTerm, ...]
    weights: np.ndarray | None
    offset: np.ndarray | None
    row_index: np.ndarray
    n_dropped: int
    n_zero_weight: int = 0
    response_levels: tuple[str, str] | None = None

    @property
    def nobs(self) -> int:
        """Number of observations used."""
        return int(self.y.shape[0])


def _variables(expr: str, what: str, formula: str) -> list[str]:
    """The data columns a right-hand side uses as values, each factor checked against the
    formula allow-list (again: a :class:`ParsedFormula` may be built by hand)."""
    try:
        return list(expression_columns(expr, formula))
    except FormulaError:
        raise
    except Exception as exc:  # formulaic raises several exception types for bad syntax
        raise FormulaError(f"cannot read the {what} {expr!r}: {exc}", formula) from exc


def _plain_numeric_matrix(frame: pd.DataFrame, expr: str,
                          ) -> tuple[np.ndarray, list[str]] | None:
    """X for a right-hand side made only of the intercept, numeric columns and products of
    numeric columns (``a:b``, from ``a * b``), built directly (formulaic's general machinery
    costs milliseconds for these, as much as a small model's whole optimization); None
    otherwise. Columns and names are formulaic's (its terms, in its order). Such an encoding
    is stateless, so prediction can rebuild it with formulaic."""
    intercept = False
    terms: list[tuple[str, ...]] = []
    for term in formula_terms(expr):
        if len(term) == 1 and term[0].kind == "literal" and term[0].text == "1":
            intercept = True
            continue
        cols = tuple(f.column for f in term if f.column is not None)
        if len(cols) != len(term) or len(set(cols)) != len(cols):
            return None
        for col in cols:
            if col not in frame.columns:
                return None
            dtype = frame[col].dtype
            if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
                return None
        terms.append(cols)
    if not intercept and not terms:
        return None
    values = {c: frame[c].to_numpy(dtype=float) for cols in terms for c in cols}
    X = np.empty((len(frame), int(intercept) + len(terms)))
    if intercept:
        X[:, 0] = 1.0
    for j, cols in enumerate(terms, start=int(intercept)):
        X[:, j] = values[cols[0]]
        for c in cols[1:]:
            X[:, j] *= values[c]
    names = (["(Intercept)"] if intercept else []) + [":".join(cols) for cols in terms]
    return X, names


def formula_offset(frame: pd.DataFrame, offsets: tuple[str, ...], formula: str,
                   row_index: np.ndarray) -> np.ndarray | None:
    """The sum of a formula's ``offset(...)`` terms on ``frame`` (None if it has none).

    Parameters
    ----------
    frame : pandas.DataFrame
        The rows to evaluate on (the fitted rows, or new data in prediction).
    offsets : tuple of str
        :attr:`ParsedFormula.offsets`, in formulaic syntax.
    formula : str
        The formula as written (for messages).
    row_index : numpy.ndarray
        Positions of ``frame``'s rows in the data as given (for messages).

    Raises
    ------
    DataError
        If an offset is not numeric or not finite.
    """
    total: np.ndarray | None = None
    for expr in offsets:
        column = unquote_name(expr)
        try:
            if column is not None and column in frame.columns:
                values = frame[column].to_numpy(dtype=float)
            else:
                mm = model_matrix(f"0 + I({expr})", frame, na_action="ignore",
                                  context=VALUE_CONTEXT)
                values = np.asarray(mm, dtype=float)[:, 0]
        except (TypeError, ValueError) as exc:
            raise DataError(f"the offset offset({r_column_name(expr)}) in {formula!r} must be "
                            f"numeric: {exc}") from exc
        _check_finite(values, "offset", [f"offset({r_column_name(expr)})"], row_index)
        total = values if total is None else total + values
    return total


def _check_finite(values: np.ndarray, what: str, names: list[str], row_index: np.ndarray,
                  ) -> None:
    """A transform (``log(y)``, ``1 / x``) can make non-finite values from finite data."""
    bad = ~np.isfinite(values)
    if not bad.any():
        return
    rows, cols = np.nonzero(bad.reshape(len(values), -1))
    row = int(row_index[rows[0]])
    raise DataError(f"the {what} {names[cols[0]]!r} is not finite at row {row} of the data "
                    f"({values.reshape(len(values), -1)[rows[0], cols[0]]}); a transform such "
                    "as log() or 1/x is undefined there: remove those rows or change the "
                    "transform")


def aliased_columns(X: np.ndarray) -> np.ndarray:
    """Boolean mask of columns of ``X`` that are linear combinations of earlier columns."""
    if X.shape[1] == 0:
        return np.zeros(0, dtype=bool)
    norms = np.linalg.norm(X, axis=0)
    R = sla.qr(X, mode="r", check_finite=False)[0]
    diag = np.abs(np.diag(R)) if R.shape[0] >= X.shape[1] else np.concatenate(
        [np.abs(np.diag(R)), np.zeros(X.shape[1] - R.shape[0])])
    return diag <= RANK_TOLERANCE * np.where(norms > 0, norms, 1.0)


def warn_aliased(dropped: list[str], stacklevel: int) -> None:
    """lme4's warning that aliased fixed-effects columns (``dropped``, R's names) were dropped;
    none when there are none. ``stacklevel`` as the caller's own ``warnings.warn`` would take."""
    if dropped:
        warnings.warn(
            f"fixed-effect model matrix is rank deficient so dropping {len(dropped)} "
            f"column{'s' if len(dropped) > 1 else ''} / coefficient"
            f"{'s' if len(dropped) > 1 else ''}: {', '.join(dropped)}",
            RankDeficiencyWarning, stacklevel=stacklevel + 1)


def r_contrasts(expr: str, frame: pd.DataFrame) -> str:
    """Rewrite a right-hand side so that ordered categoricals get polynomial contrasts, R's
    default for ordered factors (``contr.poly``); unordered ones keep treatment contrasts."""
    terms = formula_terms(expr)
    # only the plain columns of the terms can be ordered factors (a frame may have many others)
    named = {f.column for term in terms for f in term if f.column in frame.columns}
    ordered = {c for c in named
               if isinstance(frame[c].dtype, pd.CategoricalDtype) and frame[c].cat.ordered}
    if not ordered:
        return expr
    intercept = any(t[0].kind == "literal" and t[0].text == "1" for t in terms)
    labels = [":".join(f"C({f.text}, contr.poly)" if f.column in ordered else f.text
                       for f in term)
              for term in terms if term[0].kind != "literal"]
    return " + ".join(["1" if intercept else "0", *labels])


def _fixed_matrix(frame: pd.DataFrame, fixed: str, formula: str, row_index: np.ndarray,
                  ) -> tuple[np.ndarray, list[str], list[str], ModelSpec | None]:
    fixed = r_contrasts(fixed, frame)
    plain = _plain_numeric_matrix(frame, fixed)
    spec: ModelSpec | None = None
    if plain is not None:
        X, names = plain
    else:
        try:
            mm = model_matrix(fixed, logical_as_factor(frame), na_action="ignore",
                              context=EVALUATION_CONTEXT)
        except Exception as exc:
            raise FormulaError(f"cannot build the fixed-effects matrix for {fixed!r}: {exc}",
                               formula) from exc
        names = r_column_names(list(mm.columns))
        X = np.asarray(mm, dtype=float)
        spec = mm.model_spec
    _check_finite(X, "fixed-effects column", names, row_index)
    alias = aliased_columns(X)
    dropped = [n for n, a in zip(names, alias, strict=True) if a]
    warn_aliased(dropped, stacklevel=4)
    if dropped:
        X = X[:, ~alias]
        names = [n for n, a in zip(names, alias, strict=True) if not a]
    return np.ascontiguousarray(X), names, dropped, spec


def _random_term_matrix(frame: pd.DataFrame, lhs: str, formula: str,
                        ) -> tuple[np.ndarray, list[str], ModelSpec | None]:
    plain = _plain_numeric_matrix(frame, lhs)
    if plain is not None:
        return plain[0], plain[1], None
    try:
        mm = model_matrix(lhs, logical_as_factor(frame), na_action="ignore",
                          context=EVALUATION_CONTEXT)
    except Exception as exc:
        raise FormulaError(f"cannot build the random-effects term {lhs!r}: {exc}",
                           formula) from exc
    if mm.shape[1] == 0:
        raise FormulaError(f"the random-effects term ({lhs} | ...) has no columns", formula)
    return np.asarray(mm, dtype=float), r_column_names(list(mm.columns)), mm.model_spec


def _check_parameter_count(n_theta: int, spec: RandomTermSpec, k: int, formula: str) -> None:
    if n_theta > MAX_COVARIANCE_PARAMETERS:
        raise FormulaError(
            f"the random-effects terms need more than {MAX_COVARIANCE_PARAMETERS} covariance "
            f"parameters ({n_theta} up to ({spec.lhs.replace('**', '^')} | "
            f"{spec.group_name}), which has {k} columns and so {k * (k + 1) // 2} "
            "parameters); such a model cannot be estimated in reasonable time. Simplify it: "
            "fewer terms per bar, '||' for uncorrelated effects, or a factor as a fixed "
            "effect", formula)


def _check_identifiable(term: RandomEffectTerm, n: int, label: str, glm: bool = False) -> None:
    """lme4's checks of a term's levels against the observations. A GLMM has no residual
    variance for the random effects to be confused with, so only the two-level minimum
    applies there (glmerControl's check.nobs.vs.nlev = "ignore"): an observation-level term
    (1 | obs) models overdispersion."""
    nl = term.n_levels
    if nl < 2:
        raise IdentifiabilityError(
            f"grouping factor {term.factor.name!r} in {label} has {nl} level in the data used; "
            "a grouping factor needs at least 2 levels. Drop the term or check for missing "
            "values in its column")
    if glm:
        return
    if nl >= n:
        raise IdentifiabilityError(
            f"grouping factor {term.factor.name!r} in {label} has {nl} levels for {n} "
            "observations: the number of levels must be less than the number of observations, "
            "or the random effects cannot be told apart from the residual")
    q = nl * term.n_columns
    if q >= n and term.n_columns > 1:
        raise IdentifiabilityError(
            f"the term {label} has {q} random effects for {n} observations; the random-effects "
            "parameters and the residual variance are unidentifiable. Simplify the term")


def _lme4_order(terms: list[RandomEffectTerm]) -> list[RandomEffectTerm]:
    """lme4's mkReTrms: if any term has more levels than the one before it, order all terms by
    decreasing number of levels (R's ``rev(order(nl))``, which also reverses ties)."""
    nl = [t.n_levels for t in terms]
    if any(b > a for a, b in zip(nl, nl[1:], strict=False)):
        ascending = sorted(range(len(terms)), key=lambda i: nl[i])  # stable, like order()
        return [terms[i] for i in reversed(ascending)]
    return terms


def _grouping_only_columns(parsed: ParsedFormula, used: list[str]) -> list[str]:
    """Columns that appear only as grouping factors: labels, exempt from the numeric checks
    of value columns. ``used`` lists each column once per use, grouping uses last."""
    groups = [c for spec in parsed.random for c in spec.group_factors]
    counts = {c: used.count(c) for c in set(groups)}
    return [c for c in counts if counts[c] == groups.count(c)]


def _response_columns(parsed: ParsedFormula, source: pd.DataFrame) -> list[str]:
    """The data columns the response uses (both counts of a ``cbind`` response)."""
    used: list[str] = []
    for expr in parsed.counts or (parsed.response,):
        used += ([expr] if expr in source.columns else
                 _variables(response_factor(expr), "response", parsed.text))
    return used


def model_columns(parsed: ParsedFormula, source: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The columns of ``source`` (only its names are read) that the formula uses, each once:
    the response's, then the fixed part's, the offsets', the random-effects terms' and the
    grouping factors; and those used only as grouping factors (labels, exempt from the
    numeric checks of value columns). A name the data lack is kept, for the data checks to
    name it."""
    used = _response_columns(parsed, source)
    used += _variables(parsed.fixed, "fixed-effects part", parsed.text)
    for expr in parsed.offsets:
        used += _variables(f"I({expr})", "offset", parsed.text)
    for spec in parsed.random:
        used += _variables(spec.lhs, "random-effects term", parsed.text)
        used += list(spec.group_factors)
    # R's pi: a constant of the formula unless the data have a column of that name
    used = [c for c in used if c != "pi" or c in source.columns]
    return list(dict.fromkeys(used)), _grouping_only_columns(parsed, used)


def build_design(formula: str | ParsedFormula, data: Any, weights: Any = None,
                 offset: Any = None, *, glm: bool = False) -> ModelDesign:
    """Build the :class:`ModelDesign` of an lme4 formula on a data frame.

    Parameters
    ----------
    formula : str or ParsedFormula
    data : pandas.DataFrame or polars.DataFrame
    weights : array-like, column name or None
        Prior weights (non-negative), one per row of ``data``: row i has residual variance
        sigma^2 / w_i. Rows with weight zero are dropped (counted in ``n_zero_weight``); a
        missing weight drops the row as missing.
    offset : array-like, column name or None
        A known term added to the linear predictor, one per row of ``data``.
    glm : bool
        Build the design of a binomial (or other generalized) model, whose response may also
        be ``cbind(successes, failures)``, a logical column or a two-level factor, read as
        lme4's ``glmer`` reads them (see :mod:`multilevel.data.response_values`). A numeric
        response is taken as it is: the family checks its values.

    Raises
    ------
    FormulaError
        Among others, for a ``cbind(...)`` response without ``glm=True``.
    DataError
        Among others, for a response that is not numeric without ``glm=True``; with it, for
        ``cbind`` counts that are not whole numbers >= 0, or a factor response that does not
        have exactly two levels.
    """
    parsed = formula if isinstance(formula, ParsedFormula) else parse_formula(formula)
    source = to_pandas(data)
    if not parsed.random:
        raise FormulaError("the formula has no random-effects term such as (1 | g); for a "
                           "model without random effects use an ordinary linear model",
                           parsed.text)
    if parsed.counts is not None and not glm:
        raise FormulaError(
            f"the response {parsed.response} is for binomial models: fit it with "
            "ml.glmer(..., family=\"binomial\"); a linear mixed model needs one numeric "
            "response", parsed.text, max(parsed.text.find("cbind"), 0))
    used, labels = model_columns(parsed, source)
    extra: dict[str, np.ndarray] = {}
    w = row_vector(weights, source, "weights")
    if w is not None:
        extra["(weights)"] = w
    o = row_vector(offset, source, "offset")
    if o is not None:
        extra["(offset)"] = o
    clean = clean_frame(source, used, extra, labels=labels,
                        zero_weight="(weights)" if w is not None else None)
    levels: tuple[str, str] | None = None
    trials: np.ndarray | None = None
    if parsed.counts is not None:
        successes, failures = binomial_counts(clean.frame, parsed.counts, parsed.response,
                                              parsed.text, clean.row_index)
        trials = successes + failures
        keep = trials > 0
        clean = drop_zero_weight(clean, ~keep, [*used, *extra],
                                 f"no trials (successes + failures = 0 in {parsed.response})")
        y, trials = successes[keep] / trials[keep], trials[keep]
    elif glm:
        y, levels = binomial_response(clean.frame, parsed.response, parsed.text)
    else:
        y = numeric_response(clean.frame, parsed.response, parsed.text)
    frame = clean.frame
    if clean.n_dropped:
        warnings.warn(f"{clean.n_dropped} row(s) with missing values in used columns were "
                      "dropped", MissingDataWarning, stacklevel=3)
    if clean.n_zero_weight:
        trials_note = (f" (the prior weight of {parsed.response} is its number of trials)"
                       if trials is not None else "")
        warnings.warn(f"{clean.n_zero_weight} row(s) with prior weight zero were dropped"
                      f"{trials_note}: they carry no information, so the fit is that on the "
                      "other rows and they are not counted in nobs", MissingDataWarning,
                      stacklevel=3)
    n = len(frame)
    _check_finite(y, "response", [parsed.response], clean.row_index)
    X, names, dropped, fixed_spec = _fixed_matrix(frame, parsed.fixed, parsed.text,
                                                  clean.row_index)
    w_kept = frame["(weights)"].to_numpy(dtype=float) if w is not None else None
    if trials is not None:  # R's glm: the prior weights of cbind(s, f) are s + f
        w_kept = trials if w_kept is None else w_kept * trials
    o_kept = frame["(offset)"].to_numpy(dtype=float) if o is not None else None
    in_formula = formula_offset(frame, parsed.offsets, parsed.text, clean.row_index)
    if in_formula is not None:  # lme4 sums offset() terms and the offset argument
        o_kept = in_formula if o_kept is None else o_kept + in_formula
    terms: list[RandomEffectTerm] = []
    n_theta = 0
    for spec in parsed.random:
        Z, cols, zspec = _random_term_matrix(frame, spec.lhs, parsed.text)
        n_theta += len(cols) * (len(cols) + 1) // 2
        _check_parameter_count(n_theta, spec, len(cols), parsed.text)
        _check_finite(Z, "random-effects column", cols, clean.row_index)
        factor = grouping_factor(frame, spec.group_factors, spec.group_name)
        term = RandomEffectTerm(factor=factor, columns=tuple(cols), Z=Z, lhs=spec.lhs,
                                spec=zspec)
        _check_identifiable(term, n, f"({spec.lhs} | {spec.group_name})", glm)
        terms.append(term)
    return ModelDesign(
        formula=parsed, response_name=parsed.response, y=y, X=X, fixed_names=tuple(names),
        dropped_fixed=tuple(dropped), fixed_spec=fixed_spec, terms=tuple(_lme4_order(terms)),
        weights=w_kept, offset=o_kept, row_index=clean.row_index, n_dropped=clean.n_dropped,
        n_zero_weight=clean.n_zero_weight, response_levels=levels)


__all__ = ["GroupingFactor", "ModelDesign", "RandomEffectTerm", "aliased_columns",
           "build_design"]
