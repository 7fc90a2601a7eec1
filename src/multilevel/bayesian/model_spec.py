"""What a Bayesian multilevel model is made of, built once from the formula and the data.

A model is one or more *linear parts*, each a fixed-effects matrix and random-effects terms
on the same rows: the linear model has one (its linear predictor), the three-stage nonlinear
model one per nonlinear parameter (``Asym ~ 1 + Treatment + (1 | Tree)``), combined by the
model expression. The designs come from the same machinery as ``lmer``'s
(:func:`multilevel.data.design.build_design`), so formulas, factors, contrasts, missing values
and errors behave the same; only the names follow brms (``b_Days``, ``sd_Subject__Days``,
``r_Tree__Asym``), so that brms users read our posterior as theirs.

As brms does for linear models with an intercept, the fixed-effects columns are centred and
the intercept of the centred design (class ``Intercept``) is sampled; ``b_Intercept`` is
recovered afterwards. Nonlinear parameters are not centred (brms does not centre them either).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from multilevel.bayesian.likelihood import ResponseFamily
from multilevel.bayesian.priors import Slot
from multilevel.data.design import ModelDesign, RandomEffectTerm, _fixed_matrix, build_design
from multilevel.data.frame import to_pandas
from multilevel.errors import ArgumentError, ColumnNotFoundError, FormulaError, InternalError
from multilevel.formula.parser import parse_formula


def brms_name(r_name: str) -> str:
    """A coefficient's name as brms writes it: ``(Intercept)`` -> ``Intercept``; brms keeps
    letters, digits, ``.``, ``_`` and ``:`` and drops the rest (``poly(x, 2)1`` -> ``polyx21``)."""
    if r_name == "(Intercept)":
        return "Intercept"
    return re.sub(r"[^\w.:]", "", r_name)


@dataclass(frozen=True)
class RandomBlock:
    """One ``(terms | group)`` term of one linear part: correlated effects per level.

    Attributes
    ----------
    group : str
        The grouping factor's name (``"Subject"``).
    nlpar : str
        The nonlinear parameter the term belongs to ("" in a linear model).
    terms : tuple of str
        brms's names of the term's columns (``("Intercept", "Days")``).
    Z : numpy.ndarray, shape (n, k)
    codes : numpy.ndarray, shape (n,)
        Level of each row.
    levels : tuple of str
        brms's labels: for a factor of several columns, their values outer first joined by
        ``_`` (``A_a`` for batch A, cask a of ``(1 | batch/cask)``).
    term : RandomEffectTerm
        The design's term (replays its encoding on new data).
    group_factors : tuple of str
        The data columns forming the grouping factor.
    offset : int
        Where this block's terms start in the group-effects variable.
    match_levels : tuple of str
        The levels as the design labels them (lme4's, ``a:A``), to find new data's levels.
    """

    group: str
    nlpar: str
    terms: tuple[str, ...]
    Z: np.ndarray
    codes: np.ndarray
    levels: tuple[str, ...]
    term: RandomEffectTerm
    group_factors: tuple[str, ...]
    offset: int = 0
    match_levels: tuple[str, ...] = ()

    @property
    def r_variable(self) -> str:
        """``r_Subject`` / ``r_Tree__Asym``: the posterior variable of the group effects; the
        terms of every block on one grouping factor (and nonlinear parameter) share it, as in
        brms (``(1 | g) + (0 + x | g)`` gives ``r_g[level, Intercept]`` and ``r_g[level, x]``)."""
        return f"r_{self.prefix.rstrip('_')}"

    @property
    def columns(self) -> slice:
        """This block's columns in :attr:`r_variable`'s term axis."""
        return slice(self.offset, self.offset + self.k)

    @property
    def k(self) -> int:
        """Effects per level."""
        return len(self.terms)

    @property
    def prefix(self) -> str:
        """``Tree__Asym_`` / ``Subject__``: brms's stem of this block's sd, cor and r names."""
        return f"{self.group}__{self.nlpar + '_' if self.nlpar else ''}"

    def sd_variable(self, term: str) -> str:
        """``sd_Subject__Days``: brms's posterior variable of a term's SD."""
        return f"sd_{self.prefix}{term}"

    def cor_variable(self, a: str, b: str) -> str:
        """``cor_Subject__Intercept__Days``: brms's variable of two terms' correlation."""
        return f"cor_{self.prefix}{a}__{b}"

    def term_label(self, j: int) -> str:
        """``Asym_Intercept`` / ``Days``: the j-th term as brms names it inside the block."""
        return f"{self.nlpar}_{self.terms[j]}" if self.nlpar else self.terms[j]


@dataclass(frozen=True)
class LinearPart:
    """The linear predictor of the model or of one nonlinear parameter.

    Attributes
    ----------
    nlpar : str
        "" for a linear model, else the nonlinear parameter (``"Asym"``).
    formula : str
        The part's right-hand side as given.
    X : numpy.ndarray, shape (n, p)
        The fixed-effects matrix (R's columns, intercept first when there is one).
    r_names : tuple of str
        R's names of X's columns.
    names : tuple of str
        brms's names (``Intercept``, ``Days``).
    centred : bool
        Whether the intercept of the centred design is what is sampled (linear models with
        an intercept column, as brms).
    means : numpy.ndarray, shape (p - 1,) or (0,)
        Column means of the non-intercept columns when centred.
    blocks : tuple of RandomBlock
    design : ModelDesign or None
        The design it was built from (for prediction on new data); None for a part without
        random effects of a nonlinear model.
    fixed_spec : Any
        The formulaic spec that replays X's encoding (None for plain numeric columns).
    """

    nlpar: str
    formula: str
    X: np.ndarray
    r_names: tuple[str, ...]
    names: tuple[str, ...]
    centred: bool
    means: np.ndarray
    blocks: tuple[RandomBlock, ...]
    design: ModelDesign | None
    fixed_spec: Any

    @property
    def b_columns(self) -> np.ndarray:
        """The columns whose coefficients are sampled as class ``b`` (centred if so)."""
        if self.centred:
            return self.X[:, 1:] - self.means
        return self.X

    @property
    def b_names(self) -> tuple[str, ...]:
        """brms's coefficient names of :attr:`b_columns`."""
        return self.names[1:] if self.centred else self.names

    def variable(self, name: str) -> str:
        """``b_Days`` / ``b_Asym_Intercept``: brms's posterior variable of a coefficient."""
        return f"b_{self.nlpar}_{name}" if self.nlpar else f"b_{name}"


@dataclass(frozen=True)
class NonlinearPart:
    """The model expression of a three-stage model and the data columns it uses."""

    text: str
    tree: ast.expr
    parameters: tuple[str, ...]
    columns: dict[str, np.ndarray]
    functions: dict[str, Any]


@dataclass(frozen=True)
class BayesModel:
    """A Bayesian multilevel model, data included, ready for priors and sampling.

    Attributes
    ----------
    formula : str
        The formula as given (``ml.bayes``) or the model expression's formula
        (``ml.bayes_nlme``).
    response_name : str
    family : ResponseFamily
    y, wt : numpy.ndarray
        Response (a binomial model's proportions) and prior weights (trials for binomial).
    offset : numpy.ndarray or None
    parts : tuple of LinearPart
    nonlinear : NonlinearPart or None
    rows : pandas.DataFrame
        The data rows used (after dropping incomplete ones), for prediction and plots.
    n_dropped : int
    """

    formula: str
    response_name: str
    family: ResponseFamily
    y: np.ndarray
    wt: np.ndarray
    offset: np.ndarray | None
    parts: tuple[LinearPart, ...]
    nonlinear: NonlinearPart | None
    rows: pd.DataFrame
    n_dropped: int

    @property
    def nobs(self) -> int:
        """Number of observations."""
        return int(self.y.shape[0])

    @property
    def blocks(self) -> tuple[RandomBlock, ...]:
        """Every random-effects block, part by part."""
        return tuple(b for part in self.parts for b in part.blocks)

    def fixed_variables(self) -> list[tuple[str, str]]:
        """(our name, brms variable) of each fixed effect: R's names for a linear model, so
        that ``fixef`` lines up with ``lmer``'s; ``Asym_Intercept`` for nonlinear ones."""
        return [(r_name if not part.nlpar else f"{part.nlpar}_{name}", part.variable(name))
                for part in self.parts
                for r_name, name in zip(part.r_names, part.names, strict=True)]

    def group_variables(self) -> dict[str, tuple[str, list[str]]]:
        """Each group-effects variable: its grouping factor and every term it holds."""
        out: dict[str, tuple[str, list[str]]] = {}
        for b in self.blocks:
            out.setdefault(b.r_variable, (b.group, []))[1].extend(b.terms)
        return out

    def slots(self) -> list[Slot]:
        """Every parameter (or block of parameters) a prior can be put on, as brms lists them."""
        out: list[Slot] = []
        for part in self.parts:
            if part.centred:
                out.append(Slot("Intercept", nlpar=part.nlpar))
            out.extend(Slot("b", coef=name, nlpar=part.nlpar) for name in part.b_names)
        for block in self.blocks:
            out.extend(Slot("sd", coef=t, group=block.group, nlpar=block.nlpar)
                       for t in block.terms)
        for block in self.blocks:
            if block.k > 1:
                out.append(Slot("cor", group=block.group, nlpar=block.nlpar))
        if self.family.extra is not None:
            out.append(Slot(self.family.extra))
        return out


def _brms_levels(levels: tuple[str, ...], factors: tuple[str, ...], written: str,
                 ) -> tuple[str, ...]:
    """Level labels as brms writes them: the columns' values in the formula's order (outer
    first for a nested factor) joined by ``_``; lme4's labels join them inner first by ``:``."""
    if len(factors) < 2:
        return levels
    order = [factors.index(f) for f in written.split(":") if f in factors]
    if len(order) != len(factors):
        return levels
    out = []
    for label in levels:
        parts = label.split(":")
        if len(parts) != len(factors):  # a value holding ':' itself: keep lme4's label
            return levels
        out.append("_".join(parts[i] for i in order))
    return tuple(out)


def _blocks(design: ModelDesign, nlpar: str) -> tuple[RandomBlock, ...]:
    out = []
    for term in design.terms:
        spec = next(s for s in design.formula.random if s.group_name == term.factor.name)
        out.append(RandomBlock(
            group=spec.written_name, nlpar=nlpar,
            terms=tuple(brms_name(c) for c in term.columns),
            Z=np.asarray(term.Z, dtype=float), codes=np.asarray(term.factor.codes),
            levels=_brms_levels(term.factor.levels, spec.group_factors, spec.written_name),
            term=term, group_factors=spec.group_factors, match_levels=term.factor.levels))
    # blocks on one grouping factor share the group-effects variable: each its own columns
    seen: dict[str, list[str]] = {}
    placed = []
    for b in out:
        names = seen.setdefault(b.group, [])
        twice = [t for t in b.terms if t in names]
        if twice:
            raise FormulaError(f"two random-effects terms on the grouping factor {b.group!r} "
                               f"both have {twice[0]!r}: their SDs would share one name "
                               f"(sd_{b.group}__{twice[0]}); write them as one term, e.g. "
                               f"(1 + x | {b.group}), or (1 + x || {b.group}) for "
                               "uncorrelated effects", design.formula.text)
        placed.append(replace(b, offset=len(names)))
        names.extend(b.terms)
    return tuple(placed)


def _part(design: ModelDesign, nlpar: str, formula: str, centre: bool) -> LinearPart:
    names = tuple(brms_name(n) for n in design.fixed_names)
    centred = centre and bool(design.fixed_names) and design.fixed_names[0] == "(Intercept)"
    means = design.X[:, 1:].mean(axis=0) if centred else np.zeros(0)
    return LinearPart(nlpar=nlpar, formula=formula, X=design.X, r_names=design.fixed_names,
                      names=names, centred=centred, means=means,
                      blocks=_blocks(design, nlpar), design=design,
                      fixed_spec=design.fixed_spec)


# brms's binomial response ``successes | trials(n)``: names only (anything else is refused by
# the formula parser as usual)
_TRIALS = re.compile(r"^\s*([A-Za-z.][\w.]*)\s*\|\s*trials\(\s*([A-Za-z.][\w.]*)\s*\)\s*~")


def brms_response(formula: str, family: ResponseFamily) -> str:
    """``incidence | trials(size) ~ ...`` (brms) as ``cbind(incidence, size - incidence) ~
    ...`` for a binomial model; other formulas unchanged."""
    m = _TRIALS.match(formula)
    if m is None:
        return formula
    if family.name != "binomial":
        raise FormulaError("a 'y | trials(n)' response is for binomial models: pass "
                           "family='binomial'", formula)
    y, n = m.group(1), m.group(2)
    return f"cbind({y}, {n} - {y}) ~" + formula[m.end():]


def linear_model(formula: str, data: Any, family: ResponseFamily, weights: Any = None,
                 offset: Any = None) -> BayesModel:
    """The model of ``ml.bayes``: one linear predictor, lme4's formula (and brms's
    ``y | trials(n)`` binomial response)."""
    glm = family.name != "gaussian"
    design = build_design(brms_response(formula, family), data, weights=weights,
                          offset=offset, glm=glm)
    wt = np.ones(design.nobs) if design.weights is None else np.asarray(design.weights, float)
    family.family.validate(design.y, wt, column=design.response_name)
    frame = to_pandas(data).iloc[design.row_index].reset_index(drop=True)
    return BayesModel(formula=formula, response_name=design.response_name, family=family,
                      y=np.asarray(design.y, float), wt=wt, offset=design.offset,
                      parts=(_part(design, "", formula, centre=True),), nonlinear=None,
                      rows=frame, n_dropped=design.n_dropped)


_IDENT = re.compile(r"[A-Za-z.][\w.]*")


def nonlinear_model(model: str, data: Any, params: dict[str, str], family: ResponseFamily,
                    functions: dict[str, Any] | None = None) -> BayesModel:
    """The model of ``ml.bayes_nlme``: ``response ~ expression`` and one linear part per
    nonlinear parameter (``{"Asym": "1 + Treatment + (1 | Tree)", "xmid": "1"}``)."""
    from multilevel.bayesian.jax_expression import jax_function
    from multilevel.nonlinear.expression import names_in, parse_expression, user_functions

    if "~" not in model:
        raise FormulaError("the model must be 'response ~ expression', e.g. "
                           "'circumference ~ Asym / (1 + exp((xmid - age) / scal))'", model)
    lhs, rhs = (s.strip() for s in model.split("~", 1))
    if not isinstance(params, dict) or not params:
        raise ArgumentError("params must be a dict from each nonlinear parameter to its "
                            "formula, e.g. {'Asym': '1 + (1 | Tree)', 'xmid': '1'}")
    frame = to_pandas(data)
    tree = parse_expression(rhs, model)
    fns = user_functions(functions)
    names, _ = names_in(tree)
    parameters = tuple(params)
    for p in parameters:
        if not isinstance(params[p], str):
            raise ArgumentError(f"params[{p!r}] must be a formula text such as '1 + (1 | g)'")
        if p in frame.columns:
            raise ArgumentError(f"the nonlinear parameter {p!r} is also a data column; "
                                "rename one of them")
    unused = [p for p in parameters if p not in names]
    if unused:
        raise ArgumentError(f"params names {unused} that the model expression {rhs!r} does "
                            f"not use; its names are {names}")
    covariates = [n for n in names if n not in parameters and n != "pi"]
    for col in covariates:
        if col not in frame.columns:
            raise FormulaError(
                f"{col!r} in the model expression is neither a data column nor a nonlinear "
                f"parameter: add it to params (e.g. params={{{col!r}: '1', ...}}) or correct "
                f"the column name (the data have {', '.join(map(str, frame.columns))})", model)
    used = set(covariates)
    for text in params.values():
        used.update(n for n in _IDENT.findall(text) if n in frame.columns)
    if lhs not in frame.columns:
        raise ColumnNotFoundError(lhs, [str(c) for c in frame.columns], "response")
    used.add(lhs)
    complete = frame[sorted(used)].notna().all(axis=1).to_numpy()
    rows = frame.loc[complete].reset_index(drop=True)
    n_dropped = int((~complete).sum())
    jax_function(tree, parameters, fns, model, columns=set(rows.columns))
    parts = []
    for p in parameters:
        rhs_p = params[p].strip().lstrip("~").strip()
        parsed = parse_formula(f"{lhs} ~ {rhs_p}")
        if parsed.random:
            design = build_design(parsed, rows, glm=family.name != "gaussian")
            if design.nobs != len(rows):
                raise InternalError(f"the design of {p!r} lost rows after the "
                                    "complete-case selection")
            parts.append(_part(design, p, rhs_p, centre=False))
        else:
            X, r_names, _, spec = _fixed_matrix(rows, parsed.fixed, model,
                                                np.arange(len(rows)))
            parts.append(LinearPart(
                nlpar=p, formula=rhs_p, X=X, r_names=tuple(r_names),
                names=tuple(brms_name(n) for n in r_names), centred=False,
                means=np.zeros(0), blocks=(), design=None, fixed_spec=spec))
    y = rows[lhs].to_numpy(dtype=float)
    wt = np.ones(len(y))
    family.family.validate(y, wt, column=lhs)
    columns = {c: rows[c].to_numpy(dtype=float) for c in covariates}
    return BayesModel(formula=model, response_name=lhs, family=family, y=y, wt=wt, offset=None,
                      parts=tuple(parts), nonlinear=NonlinearPart(rhs, tree, parameters,
                                                                  columns, dict(fns)),
                      rows=rows, n_dropped=n_dropped)



def complete_params(model: str, params: dict[str, str] | None) -> dict[str, str]:
    """``params`` with ``"1"`` for the parameters of a self-starting model that it leaves out
    (``SSlogis(age, Asym, xmid, scal)`` with ``{"Asym": "1 + (1 | Tree)"}`` gives xmid and
    scal population values only). Other names must be given or be data columns."""
    from multilevel.nonlinear.expression import parse_expression, unmangle
    from multilevel.nonlinear.selfstart import SELF_STARTING

    if params is not None and not isinstance(params, dict):
        raise ArgumentError("params must be a dict from each nonlinear parameter to its "
                            "formula, e.g. {'Asym': '1 + (1 | Tree)', 'xmid': '1'}")
    out = dict(params or {})
    if "~" not in model:
        return out
    tree = parse_expression(model.split("~", 1)[1].strip(), model)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            ss = SELF_STARTING.get(unmangle(node.func.id))
            if ss is None:
                continue
            for arg in node.args[ss.covariates:]:
                if isinstance(arg, ast.Name):
                    out.setdefault(unmangle(arg.id), "1")
    return out
