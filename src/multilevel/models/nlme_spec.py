"""The specification of a nonlinear mixed model, read as nlme reads it, and its data.

    nlme(model, data, fixed, random, groups, start)

* ``model``: ``"response ~ expression"``; the expression of data columns and parameters (see
  :mod:`multilevel.nonlinear.expression`), e.g. ``SSlogis(age, Asym, xmid, scal)`` or
  ``Asym / (1 + exp((xmid - age) / scal))``.
* ``fixed``: ``"Asym + xmid + scal ~ 1"`` or a list such as ``["Asym ~ Treatment",
  "xmid + scal ~ 1"]``: each parameter phi_p = A_p beta_p (+ random part), A_p the model
  matrix of its right-hand side (R's contrasts). Coefficients are named as nlme names them:
  ``Asym`` for a parameter with ``~ 1``, ``Asym.(Intercept)``, ``Asym.TreatmentB`` otherwise.
* ``random``: ``"Asym + xmid ~ 1 | Tree"``, nested ``"Asym ~ 1 | g1/g2"``, a structure
  ``PdDiag("lKa + lCl ~ 1")`` / ``PdBlocked([...])`` with ``groups="~ Subject"``, or a dict
  ``{"g1": spec, "g2": spec}`` (nlme's named list: outermost level first, each nested in the
  previous). Random effects of one level: phi_p += B_p b_{p,level,group}, B_p the model
  matrix of the right-hand side (``~ 1``: one random effect of parameter p).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from formulaic import model_matrix

from multilevel.covariance.pdmat import PdBlocked, PdDiag, PdSymm
from multilevel.data.design import r_contrasts
from multilevel.data.frame import logical_as_factor, to_pandas
from multilevel.data.grouping import grouping_factor
from multilevel.errors import ArgumentError, DataError, FormulaError
from multilevel.formula.expressions import EVALUATION_CONTEXT, check_tokens
from multilevel.formula.identifiers import to_formulaic
from multilevel.formula.rnames import r_column_names
from multilevel.models.nls_list import per_group_fits
from multilevel.nonlinear.expression import (
    Evaluator,
    UserFunction,
    names_in,
    parse_expression,
    unmangle,
    user_functions,
)
from multilevel.nonlinear.selfstart import SELF_STARTING

_NAME = re.compile(r"^[A-Za-z_.][\w.]*$")
RandomSpec = str | PdSymm | PdDiag | PdBlocked


@dataclass(frozen=True)
class Effect:
    """One coefficient of a parameter: phi_p gets ``column * coefficient``."""

    parameter: int
    column: np.ndarray
    name: str


@dataclass(frozen=True)
class Block:
    """Random effects with one covariance: ``diagonal`` (PdDiag) or general."""

    effects: tuple[int, ...]  # positions in the level's effects
    diagonal: bool


@dataclass(frozen=True)
class Level:
    """One grouping level of the random effects."""

    name: str  # nlme's name: the grouping column (innermost name for nested levels)
    codes: np.ndarray
    labels: list[str]  # "outer/inner" for nested levels, as nlme's ranef row names
    effects: tuple[Effect, ...]
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class NlmeSpec:
    """A nonlinear mixed model and its data (complete rows, in the data's order)."""

    formula: str
    response: str
    y: np.ndarray
    tree: ast.expr
    evaluator: Evaluator
    parameters: tuple[str, ...]
    columns: dict[str, np.ndarray]
    fixed: tuple[Effect, ...]
    levels: tuple[Level, ...]
    rows: pd.DataFrame
    fixed_formulas: tuple[str, ...]

    @property
    def fixed_names(self) -> list[str]:
        """The fixed-effect coefficients' names."""
        return [e.name for e in self.fixed]

    def evaluate(self, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The model's value and its (n, parameters) derivatives at per-row parameters
        ``phi`` (n, parameters)."""
        with np.errstate(all="ignore"):  # non-finite values are checked by the caller
            out = self.evaluator.run(self.tree, self.columns,
                                     {p: phi[:, j] for j, p in enumerate(self.parameters)})
        n = self.y.size
        value = np.broadcast_to(out.v, (n,)).astype(float)
        jac = np.zeros((n, len(self.parameters)))
        for j, g in out.d.items():
            jac[:, j] = g
        return value, jac

    def phi(self, beta: np.ndarray, b: list[np.ndarray]) -> np.ndarray:
        """Per-row parameters for fixed effects ``beta`` and each level's random effects
        (groups x effects)."""
        n = self.y.size
        out = np.zeros((n, len(self.parameters)))
        for e, value in zip(self.fixed, beta, strict=True):
            out[:, e.parameter] += e.column * value
        for level, bl in zip(self.levels, b, strict=True):
            for j, e in enumerate(level.effects):
                out[:, e.parameter] += e.column * bl[level.codes, j]
        return out

    def self_start(self) -> dict[str, float] | None:
        """Starting values when the model is one self-starting call whose parameter arguments
        are the parameters themselves, as nlme finds them without ``start``: the median of
        per-group least-squares fits (nlsList) over the groups of a single grouping level, else
        R's getInitial on all the data."""
        node = self.tree
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in SELF_STARTING):
            return None
        model = SELF_STARTING[node.func.id]
        pargs = node.args[model.covariates:]
        if len(node.args) != model.covariates + len(model.parameters) or not all(
                isinstance(a, ast.Name) and unmangle(a.id) in self.parameters for a in pargs):
            return None
        covs = [np.broadcast_to(self.evaluator.run(a, self.columns, {}).v,
                                self.y.shape).astype(float)
                for a in node.args[:model.covariates]]
        names = [unmangle(a.id) for a in pargs if isinstance(a, ast.Name)]
        if len(self.levels) == 1:
            level = self.levels[0]
            coef = per_group_fits(model, covs, self.y, level.codes, level.labels, level.name,
                                  strict=False)[0]
            complete = coef[np.all(np.isfinite(coef), axis=1)]
            if len(complete):
                return dict(zip(names, np.median(complete, axis=0).tolist(), strict=True))
        init = model.initial(*covs, self.y)
        return {a: init[name] for a, name in zip(names, model.parameters, strict=True)}


def _split_lhs(spec: str, who: str) -> tuple[list[str], str]:
    if not isinstance(spec, str) or "~" not in spec:
        raise ArgumentError(f"{who} must be nlme's 'parameters ~ formula' (e.g. 'Asym + xmid "
                            f"~ 1'), got {spec!r:.60}")
    lhs, rhs = spec.split("~", 1)
    names = [p.strip() for p in lhs.split("+")]
    bad = [p for p in names if not _NAME.match(p)]
    if bad or not rhs.strip():
        raise ArgumentError(f"{who}: {spec!r} must name parameters on the left "
                            "('Asym + xmid ~ 1')")
    return names, rhs.strip()


def _design(rhs: str, frame: pd.DataFrame, parameter: str, who: str,
            ) -> tuple[list[np.ndarray], list[str]]:
    """The model matrix of one parameter's right-hand side and the coefficients' names."""
    if rhs == "1":
        return [np.ones(len(frame))], [parameter]
    check_tokens(rhs, f"{parameter} ~ {rhs}", 0)  # the formula allow-list
    try:
        mm = model_matrix(to_formulaic(r_contrasts(rhs, frame)), logical_as_factor(frame),
                          na_action="raise", context=EVALUATION_CONTEXT)
    except Exception as exc:  # formulaic raises several exception types
        raise FormulaError(f"{who}: cannot build the model matrix of {parameter} ~ {rhs}: "
                           f"{exc}", f"{parameter} ~ {rhs}") from exc
    names = r_column_names(list(mm.columns))
    cols = np.asarray(mm, dtype=float)
    return [cols[:, j] for j in range(cols.shape[1])], [f"{parameter}.{c}" for c in names]


def _rhs_columns(rhs: str) -> list[str]:
    if rhs.strip() in ("1", "0", "-1"):
        return []
    return [n for n in re.findall(r"[A-Za-z_.][\w.]*", rhs) if n not in EVALUATION_CONTEXT
            and n not in ("C", "poly", "scale", "center", "contr")]


def _random_levels(random: Any, groups: str | None, parameters: tuple[str, ...],
                   ) -> list[tuple[list[str], list[tuple[list[str], str, bool]]]]:
    """[(grouping columns of the level, [(parameters, rhs, diagonal) per block])]; the
    grouping columns of a nested level are all its ancestors' and its own."""
    def blocks_of(spec: Any) -> list[tuple[list[str], str, bool]]:
        if isinstance(spec, PdBlocked):
            return [b for blk in spec.blocks for b in blocks_of(blk)]
        if isinstance(spec, PdDiag | PdSymm):
            names, rhs = _split_lhs(spec.formula, type(spec).__name__)
            return [(names, rhs, isinstance(spec, PdDiag))]
        if isinstance(spec, str):
            names, rhs = _split_lhs(spec, "random")
            return [(names, rhs, False)]
        raise ArgumentError(f"random must be a formula string, PdSymm, PdDiag, PdBlocked or a "
                            f"dict of them by grouping column, got {spec!r:.60}")

    group_list: list[str] = []
    if groups is not None:
        if not isinstance(groups, str) or not groups.strip().startswith("~"):
            raise ArgumentError(f"groups must be nlme's '~ g' (or '~ g1/g2'), got "
                                f"{groups!r:.60}")
        group_list = [g.strip() for g in groups.strip()[1:].split("/")]
    if isinstance(random, Mapping):
        if not random:
            raise ArgumentError("random={} names no grouping level")
        out = []
        path: list[str] = []
        for g, level_spec in random.items():
            path = [*path, str(g)]
            out.append((list(path), blocks_of(level_spec)))
        return out
    if isinstance(random, str) and "|" in random:
        body, grp = random.rsplit("|", 1)
        group_list = [g.strip() for g in grp.split("/")]
        spec: Any = body
    else:
        spec = random
    if random is None:
        spec = f"{' + '.join(parameters)} ~ 1"
    if not group_list:
        raise ArgumentError("random needs a grouping factor: write 'Asym ~ 1 | Tree', or give "
                            "groups='~ Tree' with a PdDiag/PdSymm/PdBlocked structure")
    bad = [g for g in group_list if not _NAME.match(g)]
    if bad:
        raise ArgumentError(f"grouping factor {bad[0]!r} must be a column name")
    blocks = blocks_of(spec)
    return [(group_list[:i + 1], blocks) for i in range(len(group_list))]


def _level_codes(frame: pd.DataFrame, path: list[str]) -> tuple[np.ndarray, list[str]]:
    """Codes of the (nested) groups, levels in R's factor() order (outer first), named
    ``outer/inner`` as nlme names nested groups."""
    factor = grouping_factor(frame, tuple(path), path[-1], sep="/")
    return factor.codes, list(factor.levels)


def parse_spec(model: str, data: Any, fixed: str | list[str] | None, random: Any,
               groups: str | None, functions: Mapping[str, Any] | None,
               start: Mapping[str, Any] | None, extra_columns: list[str]) -> NlmeSpec:
    """Read and check the whole specification; ``extra_columns`` (the residual structures'
    covariates) must be in the data too."""
    if not isinstance(model, str) or "~" not in model:
        raise FormulaError("nlme's model is 'response ~ expression', e.g. 'circumference ~ "
                           "SSlogis(age, Asym, xmid, scal)'", str(model))
    lhs, rhs = model.split("~", 1)
    fns: dict[str, UserFunction] = user_functions(functions)
    tree = parse_expression(rhs, model)
    ytree = parse_expression(lhs, model)
    names, calls = names_in(tree)
    for c in calls:
        if c not in SELF_STARTING and c not in fns and c not in (
                "exp", "log", "log10", "log2", "log1p", "expm1", "sqrt", "sin", "cos", "tan",
                "atan", "tanh", "abs"):
            raise FormulaError(f"function {c!r} is not known: pass it as functions="
                               f"{{'{c}': f}} or use one of R's self-starting models", model)
    # the parameters: fixed's left-hand sides, else the self-starting call's parameter names
    if fixed is None:
        if (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name)
                and tree.func.id in SELF_STARTING):
            ss = SELF_STARTING[tree.func.id]
            pnames = [unmangle(ast.unparse(a)) for a in tree.args[ss.covariates:]]
            fixed_specs = [f"{' + '.join(pnames)} ~ 1"]
        elif start is not None and isinstance(start, Mapping):
            fixed_specs = [f"{' + '.join(map(str, start))} ~ 1"]
        else:
            raise ArgumentError("fixed= names the model's parameters, e.g. fixed='Asym + xmid "
                                "+ scal ~ 1' (needed unless the model is one self-starting "
                                "call or start= names every parameter)")
    else:
        fixed_specs = [fixed] if isinstance(fixed, str) else list(fixed)
        if not fixed_specs or not all(isinstance(f, str) for f in fixed_specs):
            raise ArgumentError("fixed must be a formula string or a list of them")
    parsed_fixed = [_split_lhs(f, "fixed") for f in fixed_specs]
    parameters: list[str] = []
    for pnames, _ in parsed_fixed:
        for p in pnames:
            if p in parameters:
                raise ArgumentError(f"fixed: parameter {p!r} appears twice")
            parameters.append(p)
    unused = [p for p in parameters if p not in names]
    if unused:
        raise ArgumentError(f"parameter(s) {', '.join(map(repr, unused))} of fixed do not "
                            f"appear in the model {rhs.strip()!r}")
    frame = to_pandas(data)
    covariates = [n for n in names if n not in parameters and n != "pi"]
    levels_spec = _random_levels(random, groups, tuple(parameters))
    used = list(dict.fromkeys([*names_in(ytree)[0], *covariates]))
    for _, rhs_f in parsed_fixed:
        used += _rhs_columns(rhs_f)
    for path, blocks in levels_spec:
        used += path
        for _, rhs_r, _ in blocks:
            used += _rhs_columns(rhs_r)
        for pnames, _, _ in blocks:
            unknown = [p for p in pnames if p not in parameters]
            if unknown:
                raise ArgumentError(
                    f"random effect on {', '.join(map(repr, unknown))}, which "
                    f"{'is' if len(unknown) == 1 else 'are'} not a parameter of the model "
                    f"({', '.join(parameters)})")
    used += extra_columns
    used = [c for c in dict.fromkeys(used) if c != "pi"]
    missing = [c for c in used if c not in frame.columns]
    if missing:
        raise DataError(f"nlme: column(s) {', '.join(map(repr, missing))} not in the data "
                        f"(columns: {', '.join(map(str, list(frame.columns)[:20]))})")
    frame = frame[used].dropna().reset_index(drop=True)
    if frame.empty:
        raise DataError("nlme: no complete rows in the columns the model uses")
    for col in covariates:
        if not pd.api.types.is_numeric_dtype(frame[col]) or pd.api.types.is_bool_dtype(
                frame[col]):
            raise DataError(f"nlme: column {col!r} of the model must be numeric")
    columns = {c: frame[c].to_numpy(dtype=float) for c in covariates}
    evaluator = Evaluator(tuple(parameters), fns, model)
    yv = evaluator.run(ytree, {c: frame[c].to_numpy(dtype=float) for c in names_in(ytree)[0]
                               if c in frame.columns and pd.api.types.is_numeric_dtype(
                                   frame[c])}, {})
    y = np.broadcast_to(yv.v, (len(frame),)).astype(float)
    effects: list[Effect] = []
    order = {p: i for i, p in enumerate(parameters)}
    for pnames, rhs_f in parsed_fixed:
        for p in pnames:
            cols, cnames = _design(rhs_f, frame, p, "fixed")
            effects += [Effect(order[p], c, nm) for c, nm in zip(cols, cnames, strict=True)]
    levels: list[Level] = []
    for path, blocks in levels_spec:
        codes, labels = _level_codes(frame, path)
        level_effects: list[Effect] = []
        out_blocks: list[Block] = []
        for pnames, rhs_r, diagonal in blocks:
            start_at = len(level_effects)
            for p in sorted(pnames, key=order.__getitem__):
                cols, cnames = _design(rhs_r, frame, p, "random")
                if rhs_r == "1" and f"{p}.(Intercept)" in [e.name for e in effects]:
                    cnames = [f"{p}.(Intercept)"]  # nlme's name beside covariate effects
                level_effects += [Effect(order[p], c, nm)
                                  for c, nm in zip(cols, cnames, strict=True)]
            out_blocks.append(Block(tuple(range(start_at, len(level_effects))), diagonal))
        seen = [e.name for e in level_effects]
        if len(set(seen)) != len(seen):
            raise ArgumentError(f"random: a parameter has two random effects at level "
                                f"{path[-1]!r}")
        levels.append(Level(name=path[-1], codes=codes, labels=labels,
                            effects=tuple(level_effects), blocks=tuple(out_blocks)))
    if len(y) <= len(effects):
        raise DataError(f"nlme: {len(y)} rows for {len(effects)} fixed effects")
    return NlmeSpec(formula=model, response=lhs.strip(), y=y, tree=tree, evaluator=evaluator,
                    parameters=tuple(parameters), columns=columns, fixed=tuple(effects),
                    levels=tuple(levels), rows=frame, fixed_formulas=tuple(fixed_specs))


def start_vector(spec: NlmeSpec, start: Any) -> np.ndarray:
    """Starting fixed effects: ``start`` by parameter (one number, or one per coefficient of
    a parameter with covariates) or by coefficient name, or an ``ml.nls_list`` fit (the mean
    of its per-group estimates, as nlme's ``nlme(nlsList(...))``); else the self-starting
    model's values for each parameter's first coefficient and 0 for the others."""
    names = spec.fixed_names
    beta = np.zeros(len(names))
    if start is None:
        init = spec.self_start()
        if init is None:
            raise ArgumentError("start= is needed: give a value for each parameter, e.g. "
                                "start={'Asym': 200, 'xmid': 700, 'scal': 350} (ml.nls_list "
                                "gives per-group estimates to start from)")
        given: Mapping[str, Any] = init
    elif isinstance(start, Mapping):
        given = start
    elif isinstance(start, list | tuple | np.ndarray) and not isinstance(start, str):
        # R's unnamed start vector: every fixed-effect coefficient, in order
        values = np.asarray(start, dtype=float).ravel()
        if values.size != len(names) or not np.all(np.isfinite(values)):
            raise ArgumentError(f"start as a sequence needs {len(names)} finite values, one "
                                f"per fixed effect ({', '.join(names)}); got {values.size}")
        return values
    elif isinstance(getattr(start, "coef", None), pd.DataFrame):
        # an ml.nls_list fit, as nlme(nlsList(...)): the mean of the per-group estimates
        means = start.coef.mean(skipna=True)
        given = {str(k): float(v) for k, v in means.items()}
    else:
        raise ArgumentError(f"start must be a dict by parameter or an ml.nls_list fit, got "
                            f"{start!r:.60}")
    filled = np.zeros(len(names), dtype=bool)
    for key, value in given.items():
        values = np.atleast_1d(np.asarray(value, dtype=float))
        if key in names and values.size == 1:
            idx = [names.index(key)]
        elif key in spec.parameters:
            pos = spec.parameters.index(key)
            idx = [i for i, e in enumerate(spec.fixed) if e.parameter == pos]
            if values.size == 1:
                values = np.concatenate([values, np.zeros(len(idx) - 1)])
        else:
            raise ArgumentError(f"start: {key!r} is neither a parameter "
                                f"({', '.join(spec.parameters)}) nor a fixed-effect coefficient")
        if values.size != len(idx) or not np.all(np.isfinite(values)):
            raise ArgumentError(f"start[{key!r}] needs {len(idx)} finite value(s)")
        beta[idx] = values
        filled[idx] = True
    missing = {spec.parameters[spec.fixed[i].parameter] for i in np.flatnonzero(~filled)}
    first = {e.parameter: i for i, e in reversed(list(enumerate(spec.fixed)))}
    missing = {p for p in missing if not filled[first[spec.parameters.index(p)]]}
    if missing:
        raise ArgumentError(f"start needs a value for {', '.join(sorted(missing))}")
    return beta


def new_rows(spec: NlmeSpec, newdata: Any,
             ) -> tuple[pd.DataFrame, dict[str, np.ndarray], np.ndarray, list[np.ndarray]]:
    """The columns of ``newdata`` that the model needs: (rows, model covariates, fixed-effect
    columns (rows x coefficients), each level's random-effect columns (rows x effects)).

    The parameters' model matrices are built on the fitted rows and the new ones together, so
    that factors are coded as in the fit; a level the fit did not see is refused."""
    frame = to_pandas(newdata)
    needed = [c for c in spec.rows.columns if c in frame.columns or c in spec.columns]
    missing = [c for c in spec.columns if c not in frame.columns]
    if missing:
        raise DataError(f"predict: newdata lacks the column(s) {', '.join(map(repr, missing))}")
    new = frame[[c for c in needed if c in frame.columns]].reset_index(drop=True)
    for c in new.columns:
        fitted_col = spec.rows[c]
        if isinstance(fitted_col.dtype, pd.CategoricalDtype):
            # code new rows with the fit's levels (text or categorical alike)
            cats = fitted_col.cat.categories
            as_text = new[c].astype(str)
            unknown = sorted(set(as_text) - {str(v) for v in cats})
            if unknown and c not in [lv.name for lv in spec.levels]:
                raise DataError(f"predict: newdata column {c!r} has level(s) "
                                f"{', '.join(map(repr, unknown[:5]))} the fit did not see")
            new[c] = pd.Categorical(as_text.map({str(v): v for v in cats}), categories=cats,
                                    ordered=fitted_col.cat.ordered)
    both = pd.concat([spec.rows[new.columns], new], ignore_index=True)
    n0 = len(spec.rows)
    params = {e.parameter for e in spec.fixed}
    fixed_cols: list[np.ndarray] = []
    by_param: dict[int, list[str]] = {}
    for text in spec.fixed_formulas:
        pnames, fixed_rhs = _split_lhs(text, "fixed")
        for p in pnames:
            by_param[spec.parameters.index(p)] = [fixed_rhs]
    for pos in sorted(params):
        try:
            cols, names = _design(by_param[pos][0], both, spec.parameters[pos], "predict")
        except FormulaError as exc:
            raise DataError(f"predict: newdata cannot be coded as the fit's data ({exc})") \
                from None
        expected = [e.name for e in spec.fixed if e.parameter == pos]
        if names != expected:
            raise DataError(f"predict: newdata's columns give the coefficients {names} for "
                            f"{spec.parameters[pos]}, the fit has {expected} (a new level?)")
        fixed_cols += [c[n0:] for c in cols]
    order = [e.name for e in spec.fixed]
    named: dict[str, np.ndarray] = {}
    i = 0
    for pos in sorted(params):
        for e in spec.fixed:
            if e.parameter == pos:
                named[e.name] = fixed_cols[i]
                i += 1
    A = np.column_stack([named[nm] for nm in order])
    random_cols: list[np.ndarray] = []
    for lv in spec.levels:
        cols_l = []
        for e in lv.effects:
            # a random effect's column: ones for "p ~ 1", else the fixed-effect column of the
            # same name (a random slope on a covariate the fixed part also has)
            if e.name == spec.parameters[e.parameter] or e.name.endswith(".(Intercept)"):
                cols_l.append(np.ones(len(new)))
            elif e.name in named:
                cols_l.append(named[e.name])
            else:
                raise DataError(f"predict: the random effect {e.name!r} has no fixed-effect "
                                "column of the same name to be evaluated on newdata")
        random_cols.append(np.column_stack(cols_l) if cols_l else np.zeros((len(new), 0)))
    covariates = {}
    for c in spec.columns:
        if not pd.api.types.is_numeric_dtype(new[c]):
            raise DataError(f"predict: newdata column {c!r} must be numeric")
        covariates[c] = new[c].to_numpy(dtype=float)
    return new, covariates, A, random_cols


def structure_columns(weights: Any, correlation: Any) -> list[str]:
    """The data columns the residual structures' forms name (a VarComb's components', a
    nested correlation group's every column)."""
    cols: list[str] = []
    for structure in (weights, correlation):
        if structure is not None and hasattr(structure, "column_names"):
            cols += list(structure.column_names())
    return cols
