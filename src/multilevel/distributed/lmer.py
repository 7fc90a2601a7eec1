"""``ml.lmer`` on a Dask DataFrame or Parquet files: the two passes and the model.

1. The levels pass (:mod:`~multilevel.distributed.levels`): distinct values of the factor
   columns and grouping combinations, merged by a tree reduction on the workers.
2. On the client, from the levels and the frame's column types alone (no rows): the names of
   the fixed- and random-effects columns, formulaic's encodings, the order of the terms and
   blocks -- what :func:`~multilevel.data.design.build_design` decides -- packed into a
   :class:`~multilevel.distributed.encoding.PartitionEncoder`.
3. The sums pass: each partition encoded with the global coding and reduced to its partial
   cross-products; partial results added pairwise on the workers (tree reduction), so only
   one result of the size of the levels reaches the client.
4. The usual optimizer on the client (:class:`~multilevel.distributed.stages.DaskLinearMixedModel`).

Both passes run on whatever scheduler is active: a ``distributed.Client`` if one is (tasks
retried when a worker dies; :mod:`~multilevel.distributed.passes`), else Dask's default. A task
is a pure function of its partition, so a retried task gives the same partial result: a lost
worker delays the fit or fails it with :class:`~multilevel.errors.DistributedComputeError`,
never changes it.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
import pandas as pd

from multilevel.data.design import (
    GroupingFactor,
    RandomEffectTerm,
    _check_identifiable,
    _check_parameter_count,
    _lme4_order,
    _response_columns,
    r_contrasts,
    warn_aliased,
)
from multilevel.data.frame import logical_as_factor
from multilevel.distributed.encoding import (
    PartitionEncoder,
    _matrix,
    is_factor_column,
    model_columns,
)
from multilevel.distributed.levels import (
    apply_levels,
    merge_levels,
    partition_levels,
    term_labels,
)
from multilevel.distributed.partial_sums import (
    PartialSums,
    aliased_columns,
    combine,
    partial_sums,
    to_cross_products,
)
from multilevel.distributed.passes import (
    RETRIES,
    active_client,
    lost_workers_fail_the_pass,
    tree_reduce,
)
from multilevel.distributed.stages import (
    DaskLinearMixedModel,
    DaskLinearMixedModelResult,
    RowlessDesign,
    SummaryFacts,
)
from multilevel.errors import (
    ArgumentError,
    DataError,
    FormulaError,
    MissingDataWarning,
)
from multilevel.formula.parser import parse_formula
from multilevel.formula.rnames import r_column_names
from multilevel.models.lmm import _checked_settings
from multilevel.models.predictor import make_blocks


def as_dask_frame(data: Any) -> Any:
    """A Dask DataFrame from a Dask DataFrame or a path, directory or glob of Parquet files."""
    import dask.dataframe as dd

    if isinstance(data, str | os.PathLike):
        try:
            return dd.read_parquet(os.fspath(data))
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read the Parquet data {os.fspath(data)!r}: {exc}") from exc
    return data


def _compute(obj: Any) -> Any:
    """Compute on the active distributed client (with retries), else on Dask's default."""
    import dask

    client = active_client()
    if client is None:
        return dask.compute(obj)[0]
    with lost_workers_fail_the_pass():
        return client.compute(obj, retries=RETRIES).result()


def _tree(items: list[Any], func: Any) -> Any:
    """Reduce delayed items with ``func`` in a tree (on the workers)."""
    from dask import delayed

    return tree_reduce(items, func, lambda f, *children: delayed(f, pure=True)(*children))


# -- tasks (module level: the workers import them) ----------------------------------------------
def _levels_task(encoder: PartitionEncoder, columns: list[str], frame: pd.DataFrame) -> Any:
    return partition_levels(encoder, columns, frame)


def _sums_task(encoder: PartitionEncoder, n_levels: list[int], centred: np.ndarray,
               frame: pd.DataFrame) -> PartialSums:
    return partial_sums(encoder.encode(frame), n_levels, centred)


def _column_name(value: Any, what: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ArgumentError(f"{what}= must be a column name of the Dask data (or None); values "
                        "cannot be matched to the rows of partitioned data. Add them as a "
                        "column (ddf.assign(...)) and pass its name")


def dask_model(formula: str, data: Any, reml: bool = True, weights: Any = None,
               offset: Any = None, optimizer: str = "bobyqa", start: Any = None,
               optimizer_settings: dict[str, Any] | None = None,
               calc_derivs: bool = True) -> DaskLinearMixedModel:
    """The model of ``formula`` on partitioned ``data``, its cross-products summed on the
    cluster (arguments as :func:`multilevel.lmer`; ``weights`` and ``offset`` only as column
    names)."""
    settings = _checked_settings(reml, optimizer, optimizer_settings, calc_derivs, start)
    wcol = _column_name(weights, "weights")
    ocol = _column_name(offset, "offset")
    total, encoder, design, ddf = dask_sums(formula, data, wcol, ocol)
    return _model(total, encoder, design, settings, start, ddf, wcol, ocol)


def dask_sums(formula: str, data: Any, wcol: str | None, ocol: str | None,
              ) -> tuple[PartialSums, PartitionEncoder, RowlessDesign, Any]:
    """The two passes of :func:`dask_model` without the model: the summed cross-products, the
    encoder, the rowless design (before the rows used are known) and the Dask frame of the
    used columns (also what :mod:`~multilevel.distributed.moments` starts from)."""
    ddf = as_dask_frame(data)
    parsed = parse_formula(formula)
    if not parsed.random:
        raise FormulaError("the formula has no random-effects term such as (1 | g)", formula)
    columns = [str(c) for c in ddf.columns]
    used, labels = model_columns(parsed, columns)
    from multilevel.errors import ColumnNotFoundError

    for col in [*used, *(c for c in (wcol, ocol) if c is not None)]:
        if col not in columns:
            raise ColumnNotFoundError(col, columns)
    ddf = ddf[list(dict.fromkeys([*used, *(c for c in (wcol, ocol) if c is not None)]))]
    meta = ddf._meta
    response_cols = set(_response_columns(parsed, meta))
    group_cols = list(dict.fromkeys(c for spec in parsed.random for c in spec.group_factors))
    value_factors = [c for c in used if c not in labels and c not in response_cols
                     and is_factor_column(meta[c].dtype)]
    encoder = PartitionEncoder(formula=parsed.text, used=used, labels=labels, weights=wcol,
                               offset=ocol)

    # refused before any pass: transforms a partition cannot compute (see encoding._matrix)
    empty = logical_as_factor(meta.iloc[:0])
    _matrix(parsed.fixed, empty, parsed.text, "fixed-effects part")
    for spec in parsed.random:
        _matrix(spec.lhs, empty, parsed.text, "random-effects term")

    # pass 1: the levels
    parts = ddf.to_delayed()
    from dask import delayed

    level_reports = [delayed(_levels_task, pure=True)(encoder, value_factors + group_cols, p)
                     for p in parts]
    levels = _compute(_tree(level_reports, merge_levels))
    missing = [c for c in value_factors + group_cols if c not in levels]
    if missing:
        raise DataError(f"no rows left after removing rows with missing values in the used "
                        f"columns ({', '.join(map(repr, used))})")
    combos = apply_levels(encoder, levels, value_factors, group_cols)

    # on the client: the design without rows
    template = logical_as_factor(encoder._with_categories(meta.iloc[:0]))
    mm = _matrix(r_contrasts(parsed.fixed, template), template, parsed.text,
                 "fixed-effects part")
    encoder.fixed_names = r_column_names(list(mm.columns))
    fixed_spec = mm.model_spec
    terms: list[RandomEffectTerm] = []
    n_theta = 0
    for i, spec in enumerate(parsed.random):
        zm = _matrix(spec.lhs, template, parsed.text, "random-effects term")
        cols = r_column_names(list(zm.columns))
        if not cols:
            raise FormulaError(f"the random-effects term ({spec.lhs} | ...) has no columns",
                               parsed.text)
        n_theta += len(cols) * (len(cols) + 1) // 2
        _check_parameter_count(n_theta, spec, len(cols), parsed.text)
        encoder.term_order = list(range(len(parsed.random)))
        encoder.term_levels = list(combos)
        factor = GroupingFactor(name=spec.group_name, codes=np.zeros(0, dtype=np.int64),
                                levels=tuple(term_labels(encoder, i)))
        terms.append(RandomEffectTerm(factor=factor, columns=tuple(cols),
                                      Z=np.zeros((0, len(cols))), lhs=spec.lhs,
                                      spec=zm.model_spec))
    ordered = _lme4_order(terms)
    encoder.term_order = [next(i for i, t in enumerate(terms) if t is o) for o in ordered]
    encoder.term_levels = [combos[i] for i in encoder.term_order]
    encoder.term_columns = [list(t.columns) for t in ordered]
    p = len(encoder.fixed_names)
    design = RowlessDesign(
        formula=parsed, response_name=parsed.response, y=np.zeros(0), X=np.zeros((0, p)),
        fixed_names=tuple(encoder.fixed_names), dropped_fixed=(), fixed_spec=fixed_spec,
        terms=tuple(ordered), weights=None if wcol is None else np.zeros(0),
        offset=None if ocol is None and not parsed.offsets else np.zeros(0),
        row_index=np.zeros(0, dtype=np.int64),
        n_dropped=0)
    blocks = make_blocks(design)
    encoder.blocks = [b.terms for b in blocks]
    n_levels = [design.terms[b.terms[0]].n_levels for b in blocks]
    has_intercept = "(Intercept)" in encoder.fixed_names
    centred = np.array([has_intercept and n != "(Intercept)" for n in encoder.fixed_names]
                       + [has_intercept], dtype=bool)

    # pass 2: the cross-products
    sums = [delayed(_sums_task, pure=True)(encoder, n_levels, centred, p) for p in parts]
    total: PartialSums = _compute(_tree(sums, combine))
    return total, encoder, design, ddf


def _model(total: PartialSums, encoder: PartitionEncoder, design: RowlessDesign,
           settings: Any, start: Any, ddf: Any, wcol: str | None, ocol: str | None,
           ) -> DaskLinearMixedModel:
    design = rows_used(total, encoder, design)
    for term in design.terms:
        _check_identifiable(term, total.n, f"({term.lhs} | {term.factor.name})")
    keep = encoder.keep
    assert keep is not None
    has_intercept = bool(total.centred[-1])
    constants: list[float | None] = []
    for lo, hi in zip(total.z_min, total.z_max, strict=True):
        c = float(lo[0]) if len(lo) == 1 else None
        ok = c is not None and c == float(hi[0]) and c != 0.0 and np.isfinite(c)
        constants.append(c if ok else None)
    facts = SummaryFacts(
        x_shift=total.centre[:-1][keep] if has_intercept else None,
        y_shift=float(total.centre[-1]) if has_intercept else 0.0,
        log_det_w=total.log_w, constants=constants)
    A = to_cross_products(total, keep, [t.n_levels for t in
                                        (design.terms[b[0]] for b in encoder.blocks)])
    return DaskLinearMixedModel.from_sums(design, A, facts, settings, start, ddf, wcol, ocol,
                                          encoder)


def rows_used(total: PartialSums, encoder: PartitionEncoder, design: RowlessDesign,
              ) -> RowlessDesign:
    """The design with the rows used (from the summed pass): warns of dropped rows and of
    aliased fixed-effects columns, sets ``encoder.keep`` (the columns kept) and refuses a fit
    without residual degrees of freedom."""
    n = total.n
    if total.n_dropped:
        warnings.warn(f"{total.n_dropped} row(s) with missing values in used columns were "
                      "dropped", MissingDataWarning, stacklevel=5)
    if total.n_zero_weight:
        warnings.warn(f"{total.n_zero_weight} row(s) with prior weight zero were dropped: "
                      "they carry no information, so the fit is that on the other rows and "
                      "they are not counted in nobs", MissingDataWarning, stacklevel=5)
    alias = aliased_columns(total)
    names = list(encoder.fixed_names)
    dropped = [nm for nm, a in zip(names, alias, strict=True) if a]
    warn_aliased(dropped, stacklevel=5)
    keep = ~alias
    encoder.keep = keep
    kept = tuple(nm for nm, a in zip(names, alias, strict=True) if not a)
    p = len(kept)
    if n <= p:
        raise DataError(
            f"{n} observation(s) are used for {p} fixed-effects coefficient(s) "
            f"({', '.join(kept)}): no degrees of freedom are left for the residual variance. "
            "Use more data or fewer fixed effects")
    return design.with_rows_used(n_rows=n, n_dropped=total.n_dropped,
                                 n_zero_weight=total.n_zero_weight, fixed_names=kept,
                                 dropped_fixed=tuple(dropped), X=np.zeros((0, p)))


# -- fitted values and residuals on the workers -------------------------------------------------
def _fitted_task(frame: pd.DataFrame, encoder: PartitionEncoder, beta: np.ndarray,
                 effects: list[np.ndarray], sigma: float, kind: str, scaled: bool,
                 ) -> pd.Series:
    enc = encoder.encode(frame)
    if len(enc.y) == 0:
        return pd.Series(np.zeros(0), dtype=float)
    assert encoder.keep is not None
    eta = enc.X[:, encoder.keep] @ beta  # y and fitted here both without the offset
    for codes, Z, b in zip(enc.codes, enc.Z, effects, strict=True):
        eta = eta + np.einsum("nk,nk->n", Z, b[codes])
    if kind == "fitted":
        out = eta if enc.offset is None else eta + enc.offset
    else:
        out = enc.y - eta
        if kind == "pearson" and enc.weights is not None:
            out = out * np.sqrt(enc.weights)
        if scaled:
            out = out / sigma
    return pd.Series(out, dtype=float)


def fitted_series(fit: DaskLinearMixedModelResult, kind: str, scaled: bool) -> Any:
    """Fitted values or residuals of ``fit``'s rows as a lazy Dask Series."""
    if kind not in ("fitted", "response", "pearson"):
        raise ArgumentError(f"unknown residual kind {kind!r}; use 'response' or 'pearson'")
    model = fit.model
    assert isinstance(model, DaskLinearMixedModel)
    # effects in the blocks' order (what the encoder's codes and Z follow)
    effects = [np.asarray(e) for e in fit._block_effects()]
    return model.data.map_partitions(
        _fitted_task, model.encoder, np.asarray(fit.beta), effects, float(fit.sigma), kind,
        scaled, meta=pd.Series(dtype=float))
