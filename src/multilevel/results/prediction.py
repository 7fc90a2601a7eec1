"""Prediction on new data and simulation from a fitted linear mixed model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from formulaic import ModelSpec, model_matrix

from multilevel.data.design import formula_offset
from multilevel.data.frame import logical_as_factor, to_pandas
from multilevel.data.grouping import level_labels
from multilevel.errors import ColumnNotFoundError, DataError, FormulaError
from multilevel.formula.expressions import EVALUATION_CONTEXT
from multilevel.formula.parser import parse_formula
from multilevel.formula.rnames import r_column_names

if TYPE_CHECKING:
    from multilevel.results.base import MixedModelResult
    from multilevel.results.lmm_result import LinearMixedModelResult


_RE_FORM_HELP = ("re_form must be None (all random effects), 'NA' or '~0' (none: the "
                 "population level), or a formula of some of the model's random-effects terms "
                 "such as '~(1 | Subject)'")


def _included_groups(result: MixedModelResult, re_form: str | None) -> set[str]:
    """The grouping factors whose random effects a prediction includes (lme4's re.form)."""
    names = {t.factor.name for t in result.model.design.terms}
    if re_form is None:
        return names
    if not isinstance(re_form, str):
        raise FormulaError(f"{_RE_FORM_HELP}; got {re_form!r} ({type(re_form).__name__})")
    text = re_form.strip()
    if text == "NA":
        return set()
    if not text.startswith("~"):
        raise FormulaError(f"{_RE_FORM_HELP}; got {re_form!r}")
    try:
        parsed = parse_formula(f"y {text}")
    except FormulaError as exc:
        raise FormulaError(f"re_form {re_form!r} is not a valid formula: "
                           f"{str(exc).splitlines()[0]}") from exc
    if parsed.fixed not in ("0", "1") or parsed.offsets:
        raise FormulaError(f"re_form {re_form!r} has terms that are not random-effects "
                           f"terms; {_RE_FORM_HELP}")
    wanted = {spec.group_name for spec in parsed.random}
    unknown = wanted - names
    if unknown:
        raise FormulaError(f"re_form names grouping factor(s) {sorted(unknown)} that are not "
                           f"in the model (it has {sorted(names)})", re_form)
    return wanted


def _level_codes(frame: pd.DataFrame, factors: tuple[str, ...], levels: tuple[str, ...],
                 allow_new_levels: bool, group: str) -> np.ndarray:
    """Codes of newdata's levels in the fitted factor; -1 for a level not seen in the fit."""
    for col in factors:
        if col not in frame.columns:
            raise ColumnNotFoundError(col, [str(c) for c in frame.columns], "newdata")
    # The fit's own labelling, so that 1.0, True or a date in newdata finds its level.
    labels = level_labels(frame[factors[0]])
    for col in factors[1:]:
        labels = np.array([None if a is None or b is None else f"{a}:{b}" for a, b in
                           zip(labels, level_labels(frame[col]), strict=True)], dtype=object)
    lookup = {lab: i for i, lab in enumerate(levels)}
    codes = np.array([lookup.get(lab, -1) for lab in labels], dtype=np.int64)
    if not allow_new_levels and (codes < 0).any():
        bad = labels[int(np.flatnonzero(codes < 0)[0])]
        raise DataError(f"newdata has level {bad!r} of grouping factor {group!r} that was not "
                        "in the fitted data; pass allow_new_levels=True to predict it at the "
                        "population level")
    return codes


def replay_matrix(spec: ModelSpec | None, expr: str, frame: pd.DataFrame, what: str,
                  ) -> tuple[np.ndarray, list[str]]:
    """The model matrix of ``expr`` on new data, with the fitted encoding (``spec``) when the
    encoding has state (factor levels, centring constants), else built afresh."""
    if not frame.columns.is_unique:  # frame[name] would be a frame, not a column
        dup = dict.fromkeys(str(c) for c in frame.columns[frame.columns.duplicated()])
        raise DataError(f"newdata has several columns named {', '.join(map(repr, dup))}; "
                        "rename or drop them so that each name means one column")
    frame = logical_as_factor(frame)  # as when the model was built
    try:
        mm = (spec.get_model_matrix(frame, na_action="raise", context=EVALUATION_CONTEXT)
              if spec is not None
              else model_matrix(expr, frame, na_action="raise", context=EVALUATION_CONTEXT))
    except Exception as exc:
        raise DataError(f"cannot build the {what} on newdata: {exc}") from exc
    return np.asarray(mm, dtype=float), r_column_names(list(mm.columns))


def fixed_matrix(spec: ModelSpec | None, expr: str, names: list[str] | tuple[str, ...],
                 X: np.ndarray | None, newdata: Any) -> pd.DataFrame:
    """The fixed-effects model matrix, columns ``names`` (aliased columns left out as in the
    fit): the fit's own ``X`` when ``newdata`` is None, else the fitted encoding (``spec``
    of the right-hand side ``expr``) replayed on ``newdata``."""
    if newdata is None:
        if X is None:
            raise DataError("this fit keeps no model matrix; pass newdata")
        return pd.DataFrame(np.asarray(X, dtype=float), columns=list(names))
    if not (isinstance(newdata, pd.DataFrame | dict)
            or type(newdata).__module__.startswith("polars")):
        raise DataError(f"newdata must be a pandas or polars DataFrame (or a dict of columns), "
                        f"got {type(newdata).__name__}")
    frame = to_pandas(newdata).reset_index(drop=True)
    M, cols = replay_matrix(spec, expr, frame, "fixed-effects matrix")
    missing = [n for n in names if n not in cols]
    if missing:
        raise DataError(f"newdata gives no column {missing[0]!r} of the fixed-effects matrix "
                        f"(it has {cols}); give every predictor of the model, with the "
                        f"fit's factor levels")
    return pd.DataFrame(M[:, [cols.index(n) for n in names]], columns=list(names))


def _fixed_part(result: MixedModelResult, frame: pd.DataFrame) -> np.ndarray:
    design = result.model.design
    X, cols = replay_matrix(design.fixed_spec, design.formula.fixed, frame,
                            "fixed-effects matrix")
    keep = [cols.index(n) for n in design.fixed_names]
    return X[:, keep] @ result.beta


def predict(result: MixedModelResult, newdata: Any, re_form: str | None,
            allow_new_levels: bool, offset: Any) -> np.ndarray:
    """See :meth:`LinearMixedModelResult.predict`."""
    design = result.model.design
    groups = _included_groups(result, re_form)
    if newdata is None:
        out = design.X @ result.beta
        if design.offset is not None:
            out = out + design.offset
        effects = result._block_effects()
        for blk, b in zip(result.model.blocks, effects, strict=True):
            if design.terms[blk.terms[0]].factor.name in groups:
                out = out + np.einsum("nk,nk->n", blk.Z, b[blk.codes])
        return out
    frame = to_pandas(newdata).reset_index(drop=True)
    out = _fixed_part(result, frame)
    source = result.model.offset_source if offset is None else offset
    if isinstance(source, str):
        if source not in frame.columns:
            raise ColumnNotFoundError(source, [str(c) for c in frame.columns], "offset")
        out = out + frame[source].to_numpy(dtype=float)
    elif offset is not None:
        out = out + np.asarray(offset, dtype=float)
    in_formula = formula_offset(frame, design.formula.offsets, design.formula.text,
                                np.arange(len(frame)))
    if in_formula is not None:  # offset() terms are evaluated again on newdata, as in lme4
        out = out + in_formula
    # block by block: terms on one grouping factor share its levels and its modes, in the
    # block's column order (two terms on a factor may both have an "(Intercept)" column)
    effects = result._block_effects()
    for blk, modes in zip(result.model.blocks, effects, strict=True):
        first = design.terms[blk.terms[0]]
        name = first.factor.name
        if name not in groups:
            continue
        spec = next(s for s in design.formula.random if s.group_name == name)
        codes = _level_codes(frame, spec.group_factors, first.factor.levels, allow_new_levels,
                             name)
        b = np.vstack([modes, np.zeros((1, modes.shape[1]))])[codes]  # -1: the zero row
        start = 0
        for i in blk.terms:
            term = design.terms[i]
            Z = replay_matrix(term.spec, term.lhs, frame,
                              f"random-effects term ({term.lhs} | {name})")[0]
            out = out + np.einsum("nk,nk->n", Z, b[:, start:start + term.n_columns])
            start += term.n_columns
    return out


def simulate(result: LinearMixedModelResult, nsim: int, seed: int | None) -> pd.DataFrame:
    """Parametric simulation: new u ~ N(0, I), e ~ N(0, 1), scaled by sigma."""
    if nsim < 1:
        raise DataError(f"nsim must be at least 1, got {nsim}")
    rng = np.random.default_rng(seed)
    design = result.model.design
    mean = design.X @ result.beta
    if design.offset is not None:
        mean = mean + design.offset
    templates = result.model.layout.templates(result.theta)
    scale = np.ones(design.nobs) if design.weights is None else 1 / np.sqrt(design.weights)
    sims = np.empty((design.nobs, nsim))
    for s in range(nsim):
        y = mean + result.sigma * scale * rng.standard_normal(design.nobs)
        for blk, T, nl in zip(result.model.blocks, templates, result.model.A.n_levels,
                              strict=True):
            b = result.sigma * rng.standard_normal((nl, blk.k)) @ T.T
            y += np.einsum("nk,nk->n", blk.Z, b[blk.codes])
        sims[:, s] = y
    return pd.DataFrame(sims, columns=[f"sim_{i + 1}" for i in range(nsim)])
