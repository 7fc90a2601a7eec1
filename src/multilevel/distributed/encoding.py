"""One partition's rows encoded as the whole data's design would encode them.

A linear mixed model fitted from partitioned data needs every partition to give its rows the
same columns as the in-memory design: the same fixed-effects columns (a factor level absent
from a partition still has its column), the same random-effects columns and the same level
codes of every grouping factor. The levels are therefore found first, over the whole data
(:mod:`multilevel.distributed.levels`); :class:`PartitionEncoder` then carries them to the
workers and replays the encoding of :func:`multilevel.data.design.build_design` on each
partition with those global levels: missing values dropped per partition (counted),
categorical columns given the global categories before formulaic encodes them, grouping
labels mapped to the global level codes.

What cannot be replayed per partition is refused: a transform whose value depends on the
whole column (``scale(x)``, ``center(x)``, ``poly(x, 2)``) would be computed from each
partition's own rows and give a different model; the :class:`~multilevel.errors.FormulaError`
names the term.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from formulaic import model_matrix

from multilevel.data.design import formula_offset, r_contrasts
from multilevel.data.design import model_columns as design_columns
from multilevel.data.frame import clean_frame, logical_as_factor
from multilevel.data.grouping import factor_codes
from multilevel.data.response_values import numeric_response
from multilevel.errors import DataError, FormulaError
from multilevel.formula.expressions import EVALUATION_CONTEXT
from multilevel.formula.parser import ParsedFormula, parse_formula
from multilevel.formula.rnames import r_column_names


def model_columns(parsed: ParsedFormula, columns: list[str]) -> tuple[list[str], list[str]]:
    """The data columns a formula uses (each once) and those used only as grouping factors,
    as :func:`~multilevel.data.design.build_design` finds them; ``columns`` are the data's."""
    if parsed.counts is not None:
        raise FormulaError(f"the response {parsed.response} is for binomial models; the Dask "
                           "path fits linear mixed models (ml.lmer) only", parsed.text)
    return design_columns(parsed, pd.DataFrame(columns=columns))


def is_factor_column(dtype: Any) -> bool:
    """A column formulaic encodes as a factor (text, categorical); logicals are made factors
    with fixed levels FALSE, TRUE by :func:`~multilevel.data.frame.logical_as_factor`."""
    if pd.api.types.is_bool_dtype(dtype):
        return False
    return not pd.api.types.is_numeric_dtype(dtype)


@dataclass
class EncodedPartition:
    """One partition's model rows with global coding.

    Attributes
    ----------
    y : (n,) response minus offset; X : (n, p) fixed-effects matrix (all template columns);
    codes, Z : per random-effects block (model order), level codes and model-matrix columns;
    weights : (n,) prior weights or None; offset : (n,) or None;
    n_dropped, n_zero_weight : rows removed for missing values / zero weight.
    """

    y: np.ndarray
    X: np.ndarray
    codes: list[np.ndarray]
    Z: list[np.ndarray]
    weights: np.ndarray | None
    offset: np.ndarray | None
    n_dropped: int
    n_zero_weight: int


@dataclass
class PartitionEncoder:
    """The global encoding of a model, shipped to the workers (small: labels and names).

    Attributes
    ----------
    formula : str
    used, labels : data columns the model uses; those used only as grouping factors
    weights, offset : column names of prior weights and offset, or None
    categories : column -> its global levels (values in encoding order), for factor columns
        used as values (fixed effects, random-effects terms)
    group_labels : column -> global labels of a grouping column (R's level order)
    term_order : indices of the formula's random terms in the model's (lme4's) order
    term_levels : per term (model order), sorted keys of the level combinations that occur
        (for one grouping column, None: its labels are the levels)
    blocks : per random-effects block, the terms (model order) it merges
    fixed_names : expected fixed-effects columns (R's names), before any aliased column is
        dropped; keep : mask of those kept (set after the pass, for fitted values)
    """

    formula: str
    used: list[str]
    labels: list[str]
    weights: str | None
    offset: str | None
    categories: dict[str, list[Any]] = field(default_factory=dict)
    group_labels: dict[str, list[str]] = field(default_factory=dict)
    term_order: list[int] = field(default_factory=list)
    term_levels: list[np.ndarray | None] = field(default_factory=list)
    blocks: list[tuple[int, ...]] = field(default_factory=list)
    fixed_names: list[str] = field(default_factory=list)
    term_columns: list[list[str]] = field(default_factory=list)
    keep: np.ndarray | None = None

    @property
    def parsed(self) -> ParsedFormula:
        return parse_formula(self.formula)

    # -- cleaning (shared with the levels pass) ------------------------------------------------
    def clean(self, frame: pd.DataFrame) -> tuple[pd.DataFrame | None, int, int]:
        """The partition's complete rows with non-zero weight (None when none is left), and the
        numbers of rows dropped as missing and as weight zero."""
        extra: dict[str, np.ndarray] = {}
        if self.weights is not None:
            extra["(weights)"] = frame[self.weights].to_numpy(dtype=float, na_value=np.nan)
        if self.offset is not None:
            extra["(offset)"] = frame[self.offset].to_numpy(dtype=float, na_value=np.nan)
        columns = [*self.used, *extra]
        with_extra = frame.assign(**extra) if extra else frame
        complete = ~with_extra[columns].isna().any(axis=1).to_numpy()
        if not complete.any():  # an empty partition, or one without complete rows
            return None, len(frame), 0
        if self.weights is not None:
            w = extra["(weights)"]
            if np.any(w[complete] < 0):
                raise DataError(f"weights column {self.weights!r} has negative values; prior "
                                "weights must be >= 0")
            if np.all(w[complete] == 0):
                return None, int((~complete).sum()), int(complete.sum())
        clean = clean_frame(frame, self.used, extra, labels=self.labels,
                            zero_weight="(weights)" if self.weights is not None else None)
        return clean.frame, clean.n_dropped, clean.n_zero_weight

    # -- encoding ---------------------------------------------------------------------------
    def _with_categories(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Factor columns given the global categories, so that formulaic makes the same
        columns on every partition (a level absent here still has its column)."""
        changes = {}
        for col, cats in self.categories.items():
            ordered = isinstance(frame[col].dtype, pd.CategoricalDtype) and frame[col].cat.ordered
            values = frame[col].astype(object) if isinstance(frame[col].dtype,
                                                             pd.CategoricalDtype) else frame[col]
            changes[col] = pd.Categorical(values, categories=cats, ordered=bool(ordered))
        return frame.assign(**changes) if changes else frame

    def fixed_matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """X of the partition's (clean) rows: every template column, in template order."""
        parsed = self.parsed
        fixed = r_contrasts(parsed.fixed, frame)
        mm = _matrix(fixed, frame, parsed.text, "fixed-effects part")
        names = r_column_names(list(mm.columns))
        if self.fixed_names and names != self.fixed_names:
            raise DataError(f"a partition encodes the fixed effects as {names}, the data as "
                            f"{self.fixed_names}: give factor columns the same type in "
                            "every partition")
        return np.asarray(mm, dtype=float)

    def term_matrix(self, frame: pd.DataFrame, lhs: str) -> np.ndarray:
        """Z of one random-effects term on the partition's rows."""
        return np.asarray(_matrix(lhs, frame, self.parsed.text, "random-effects term"),
                          dtype=float)

    def group_codes(self, frame: pd.DataFrame, term: int) -> np.ndarray:
        """Global level codes of term ``term`` (model order) for the partition's rows."""
        spec = self.parsed.random[self.term_order[term]]
        cols = spec.group_factors
        codes = self._column_codes(frame, cols[0])
        combos = self.term_levels[term]
        if combos is None:
            return codes
        key = codes
        for col in cols[1:]:
            key = key * len(self.group_labels[col]) + self._column_codes(frame, col)
        return np.searchsorted(combos, key).astype(np.int64)

    def _column_codes(self, frame: pd.DataFrame, col: str) -> np.ndarray:
        local_codes, local_labels = factor_codes(frame[col])
        index = {lab: i for i, lab in enumerate(self.group_labels[col])}
        to_global = np.array([index[lab] for lab in local_labels], dtype=np.int64)
        return to_global[local_codes]

    def encode(self, frame: pd.DataFrame) -> EncodedPartition:
        """The partition's model rows with the global coding (none when no row is kept)."""
        clean, n_dropped, n_zero = self.clean(frame)
        if clean is None:
            return _empty(self, n_dropped, n_zero)
        parsed = self.parsed
        y = numeric_response(clean, parsed.response, parsed.text)
        enc = logical_as_factor(self._with_categories(clean))
        X = self.fixed_matrix(enc)
        offset = (clean["(offset)"].to_numpy(dtype=float) if self.offset is not None
                  else None)
        in_formula = formula_offset(clean, parsed.offsets, parsed.text,
                                    np.arange(len(clean)))
        if in_formula is not None:
            offset = in_formula if offset is None else offset + in_formula
        weights = (clean["(weights)"].to_numpy(dtype=float) if self.weights is not None
                   else None)
        term_Z = [self.term_matrix(enc, parsed.random[i].lhs) for i in self.term_order]
        term_codes = [self.group_codes(clean, t) for t in range(len(self.term_order))]
        _check_finite(y, X, term_Z, parsed.response)
        return EncodedPartition(
            y=y if offset is None else y - offset, X=X,
            codes=[term_codes[blk[0]] for blk in self.blocks],
            Z=[np.hstack([term_Z[t] for t in blk]) for blk in self.blocks],
            weights=weights, offset=offset, n_dropped=n_dropped, n_zero_weight=n_zero)


def _empty(encoder: PartitionEncoder, n_dropped: int, n_zero: int) -> EncodedPartition:
    k = [sum(len(encoder.term_columns[t]) for t in blk) for blk in encoder.blocks]
    return EncodedPartition(y=np.zeros(0), X=np.zeros((0, len(encoder.fixed_names))),
                            codes=[np.zeros(0, dtype=np.int64) for _ in k],
                            Z=[np.zeros((0, kb)) for kb in k],
                            weights=None if encoder.weights is None else np.zeros(0),
                            offset=None, n_dropped=n_dropped, n_zero_weight=n_zero)


def _matrix(expr: str, frame: pd.DataFrame, formula: str, what: str) -> Any:
    """formulaic's model matrix of ``expr``, refusing transforms that learn from the data."""
    try:
        with warnings.catch_warnings():
            # the client's template frame has no rows: a mean of nothing is no news there
            if len(frame) == 0:
                warnings.simplefilter("ignore", RuntimeWarning)
            mm = model_matrix(expr, frame, na_action="ignore", context=EVALUATION_CONTEXT)
    except Exception as exc:  # formulaic raises several exception types for bad syntax
        raise FormulaError(f"cannot build the {what} {expr!r}: {exc}", formula) from exc
    stateful = list(mm.model_spec.transform_state)
    if stateful:
        raise FormulaError(
            f"the term {stateful[0]!r} of the {what} is computed from the whole column "
            "(its mean, scale or polynomial basis), which a partition cannot know; in the "
            "Dask path compute it beforehand as a column of the data (e.g. with "
            "ddf.assign(...)) and use that column in the formula", formula)
    return mm


def _check_finite(y: np.ndarray, X: np.ndarray, Z: list[np.ndarray], response: str) -> None:
    """A transform (``log(y)``, ``1 / x``) can make non-finite values from finite data."""
    if not np.all(np.isfinite(y)):
        raise DataError(f"the response {response!r} is not finite on some row; a transform "
                        "such as log() is undefined there: remove those rows or change it")
    if not (np.all(np.isfinite(X)) and all(np.all(np.isfinite(z)) for z in Z)):
        raise DataError("a fixed- or random-effects column is not finite on some row; a "
                        "transform such as log() or 1/x is undefined there: remove those rows "
                        "or change the transform")
