"""The reference grid of a fitted model (emmeans's ``ref_grid``) and what each model kind gives
the marginal means computed on it: coefficients, their covariance, the denominator df of a
linear function of them, and the link.

The grid holds every combination of the predictors' values: each factor of the fixed-effects
formula at all of its fitted levels and each numeric covariate at its mean over the rows used
in the fit (or at the values given by ``at=``). Its rows are encoded with the fit's own encoding
(``fit.model_matrix(newdata)``), so that a marginal mean is a linear function ``l' beta`` of the
coefficients whatever the contrasts, interactions or transformations of the formula.

Denominator df, as emmeans chooses them for each kind (Lenth, emmeans 1.8, ``emm_basis``):

- lmer: Satterthwaite (lmerTest's ``calcSatterth``), or Kenward-Roger (pbkrtest's adjusted
  covariance ``vcovAdj`` for the standard errors and its ``Lb_ddf`` for the df), or infinite;
- glmer: infinite (z tests);
- lme: "containment": each coefficient's between-within df (nlme's ``fixDF``), the
  intercept's replaced by the number of outermost groups less one, and a linear function gets
  the least df among the coefficients it involves (|l_j| > 1e-4). ML fits' covariance is scaled
  by N / (N - p) as emmeans's ``sigmaAdjust``;
- gls: "df.error", N - p less the number of variance and correlation parameters;
- bayes: none; the posterior draws of the coefficients are kept instead.

Averaging over the grid's other factors weights its rows equally, or by the data's cell counts
as emmeans's ``weights = "proportional" | "outer" | "cells" | "flat"``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from formulaic import model_matrix

from multilevel.data.frame import logical_as_factor
from multilevel.errors import ArgumentError, NotApplicableError
from multilevel.formula.expressions import EVALUATION_CONTEXT
from multilevel.inference.kenward_roger import kr_quantities, kr_test
from multilevel.inference.satterthwaite import satterthwaite_df
from multilevel.results.base import INFERENCE_HOOKS
from multilevel.results.lme_result import LmeResult
from multilevel.results.lmm_result import DDF_METHODS, LinearMixedModelResult

DfRule = Callable[[np.ndarray], np.ndarray]
# emmeans's weightings of the cells averaged over
WEIGHTS = ("equal", "proportional", "outer", "cells", "flat")

# emmeans's default df for each kind, and the names each kind takes
DEFAULT_DDF = {"lmer": "satterthwaite", "glmer": "asymptotic", "lme": "containment",
               "gls": "df.error", "bayes": "posterior"}
KIND_DDF = {"lmer": ("satterthwaite", "kenward-roger", "asymptotic", "residual",
                     "between-within"),
            "glmer": ("asymptotic",), "lme": ("containment", "asymptotic"),
            "gls": ("df.error", "asymptotic"), "bayes": ("posterior",)}


@dataclass(frozen=True)
class ModelBasis:
    """What a fitted model gives its marginal means.

    Attributes
    ----------
    kind : str
        ``"lmer"``, ``"glmer"``, ``"lme"`` or ``"gls"``.
    beta : numpy.ndarray, shape (p,)
    vcov : numpy.ndarray, shape (p, p)
        The covariance used for standard errors (Kenward-Roger's adjusted one for that df).
    df_method : str
    df_rule : callable
        Rows of L (q, p) -> denominator df of each (infinite for z tests).
    link : Link or None
        The GLMM's link; None for a Gaussian response on the identity scale.
    encode : callable
        A data frame of predictor values -> its fixed-effects matrix (n, p).
    data : pandas.DataFrame
        The rows used in the fit (for covariate means, ranges and cell counts).
    factors : dict
        Each factor of the fixed-effects formula -> its levels, in the fit's order.
    covariates : list of str
        The numeric predictors.
    terms : list of frozenset
        The grid variables of each fixed-effects term (for emmeans's note on interactions).
    draws : numpy.ndarray or None, shape (n_draws, p)
        A Bayesian fit's posterior draws of the coefficients (summaries of l' beta are then
        taken over them: median, posterior SD, highest-density interval).
    """

    kind: str
    beta: np.ndarray
    vcov: np.ndarray
    df_method: str
    df_rule: DfRule
    link: Any
    encode: Callable[[pd.DataFrame], np.ndarray]
    data: pd.DataFrame
    factors: dict[str, list[Any]]
    covariates: list[str]
    draws: np.ndarray | None = None
    terms: list[frozenset[str]] = field(default_factory=list)

    @property
    def variables(self) -> list[str]:
        """The grid's variables (factors and covariates), in the formula's order."""
        return [v for v in self._order if v in self.factors or v in self.covariates]

    def in_interaction(self, variables: list[str]) -> bool:
        """Whether some term involves all of ``variables`` and another variable too (then
        emmeans notes that the means "may be misleading due to involvement in
        interactions")."""
        wanted = set(variables)
        return bool(wanted) and any(wanted < set(t) for t in self.terms)

    @property
    def _order(self) -> list[str]:
        return list(dict.fromkeys([*self.factors, *self.covariates]))


def _infinite(L: np.ndarray) -> np.ndarray:
    return np.full(np.atleast_2d(L).shape[0], np.inf)


def _fit_kind(fit: Any) -> str:
    kind = getattr(type(fit), "kind", None)
    if kind not in ("lmer", "glmer", "lme", "gls", "bayes"):
        raise NotApplicableError(
            f"marginal means are available for lmer, glmer, lme, gls and bayes fits, not for "
            f"a {type(fit).__name__}: they need a fixed-effects model matrix l' beta (a "
            "nonlinear model's parameters are not linear in its predictors)")
    return str(kind)


def _ddf_name(kind: str, ddf: Any) -> str:
    if ddf is None:
        return DEFAULT_DDF[kind]
    if not isinstance(ddf, str):
        raise ArgumentError(f"ddf must be None (the model kind's default) or one of "
                            f"{', '.join(map(repr, KIND_DDF[kind]))}, got "
                            f"{type(ddf).__name__} {ddf!r:.60}")
    key = ddf.lower().replace("_", "-")
    if key in ("kr", "kenwardroger"):
        key = "kenward-roger"
    if key not in KIND_DDF[kind]:
        raise NotApplicableError(f"ddf={ddf!r} does not apply to a {kind} fit; it takes "
                                 f"{', '.join(map(repr, KIND_DDF[kind]))} (None: "
                                 f"{DEFAULT_DDF[kind]!r}, as emmeans)")
    return key


def _lmer_df(fit: LinearMixedModelResult, key: str) -> tuple[np.ndarray, DfRule]:
    V = fit.vcov.to_numpy()
    if key == "asymptotic":
        return V, _infinite
    if key == "satterthwaite":
        return V, lambda L: satterthwaite_df(fit, L)
    if key == "kenward-roger":
        kr = kr_quantities(fit)
        # pbkrtest's Lb_ddf: the one-row Kenward-Roger df with the unadjusted covariance
        return kr.Phi_A, lambda L: np.array([kr_test(kr, row[None, :])[1]
                                             for row in np.atleast_2d(L)])
    method = DDF_METHODS[key]
    return V, lambda L: np.asarray(method(fit, L), dtype=float).reshape(-1)


def _containment_rule(fit: LmeResult) -> DfRule:
    dfx = np.asarray(INFERENCE_HOOKS["between_within_columns"](fit.design), dtype=float)
    if fit.fixed_names and fit.fixed_names[0] == "(Intercept)":
        dfx = dfx.copy()
        dfx[0] = fit.ngroups[fit.groups[0]] - 1  # the outermost grouping factor

    def rule(L: np.ndarray) -> np.ndarray:
        out = []
        for row in np.atleast_2d(L):
            used = np.abs(row) > 1e-4
            out.append(float(dfx[used].min()) if used.any() else np.nan)
        return np.array(out)

    return rule


def _rows_used(fit: Any) -> pd.DataFrame:
    try:
        return fit.model_frame()
    except NotApplicableError as exc:
        raise NotApplicableError(
            "marginal means need the fit's data (covariate means, factor levels), and this "
            "fit keeps none; refit it with its data") from exc


def _fixed_spec(fit: Any, kind: str) -> tuple[Any, str]:
    if kind in ("lmer", "glmer"):
        design = fit.model.design
    elif kind == "lme":
        design = fit.design
    elif kind == "bayes":
        part = fit.model.parts[0]
        return part.fixed_spec, part.design.formula.fixed
    else:
        return fit.fixed_spec, fit.formula.split("~", 1)[1]
    return design.fixed_spec, design.formula.fixed


def _spec(spec: Any, expr: str, frame: pd.DataFrame) -> Any:
    if spec is None:  # no stateful encoding: read the variables off the formula on the data
        spec = model_matrix(expr, logical_as_factor(frame.head(50)),
                            context=EVALUATION_CONTEXT).model_spec
    return spec


def _term_variables(spec: Any, variables: list[str]) -> list[frozenset[str]]:
    """The grid variables each fixed-effects term involves (``age:Sex`` -> {age, Sex})."""
    out = []
    for s in spec.structure:
        text = " ".join(str(getattr(f, "expr", f)) for f in s.term.factors)
        used = frozenset(v for v in variables if re.search(rf"\b{re.escape(v)}\b", text))
        if used:
            out.append(used)
    return out


def _classify(spec: Any, frame: pd.DataFrame) -> tuple[dict[str, list[Any]], list[str]]:
    """The factors (with levels) and covariates of the fixed-effects formula."""
    names = [v for v in spec.variables_by_source.get("data", set()) if v in frame.columns]
    state = dict(spec.encoder_state)
    ordered = [k for k in state if k in names] + sorted(v for v in names if v not in state)
    factors: dict[str, list[Any]] = {}
    covariates: list[str] = []
    for v in ordered:
        kind, info = state.get(v, (None, {}))
        col = frame[v]
        if getattr(kind, "value", None) == "categorical" and "categories" in info:
            factors[v] = list(info["categories"])
            continue
        wrapped = any(getattr(k, "value", None) == "categorical"
                      and re.search(rf"\b{re.escape(v)}\b", key)
                      for key, (k, _) in state.items())
        numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
        if numeric and not wrapped:
            covariates.append(v)
        elif isinstance(col.dtype, pd.CategoricalDtype):
            present = set(col.dropna().unique())
            factors[v] = [c for c in col.cat.categories if c in present]
        else:
            factors[v] = sorted(col.dropna().unique().tolist())
    return factors, covariates


@dataclass(frozen=True)
class _Encoder:
    fit: Any
    data: pd.DataFrame

    def __call__(self, grid: pd.DataFrame) -> np.ndarray:
        frame = grid.copy()
        for v in frame.columns:
            col = self.data[v]
            if isinstance(col.dtype, pd.CategoricalDtype):
                frame[v] = pd.Categorical(frame[v], categories=col.cat.categories,
                                          ordered=col.cat.ordered)
        return self.fit.model_matrix(frame).to_numpy(dtype=float)


def model_basis(fit: Any, ddf: Any = None) -> ModelBasis:
    """The coefficients, covariance, df rule, link, encoder and data of ``fit``."""
    kind = _fit_kind(fit)
    key = _ddf_name(kind, ddf)
    if kind == "bayes":
        return _bayes_basis(fit)
    if kind in ("lmer", "glmer") and fit.model.design.offset is not None:
        # emmeans adds the offset evaluated at the grid's covariates; refuse rather than
        # report means that silently leave it out
        raise NotApplicableError(
            "marginal means of a model with an offset are not available (emmeans adds the "
            "offset at the grid's values, which multilevel does not do yet); refit without "
            "the offset, or compute l' beta from fit.model_matrix(newdata) yourself")
    data = _rows_used(fit)
    spec, expr = _fixed_spec(fit, kind)
    spec = _spec(spec, expr, data)
    factors, covariates = _classify(spec, data)
    beta = fit.fixef.to_numpy(dtype=float)
    link = None
    if kind == "lmer":
        V, rule = _lmer_df(fit, key)
    elif kind == "glmer":
        V, rule = fit.vcov.to_numpy(), _infinite
        link = fit.family.link
    elif kind == "lme":
        V = fit.vcov.to_numpy()
        if not fit.reml:  # emmeans's sigmaAdjust: the ML covariance scaled up to REML's size
            V = V * fit.nobs / (fit.nobs - len(beta))
        rule = _infinite if key == "asymptotic" else _containment_rule(fit)
    else:
        V = fit.vcov.to_numpy()
        n_struct = fit.variance_parameters.size + fit.correlation_parameters.size
        df_error = float(fit.nobs - len(beta) - n_struct)
        rule = _infinite if key == "asymptotic" else (
            lambda L: np.full(np.atleast_2d(L).shape[0], df_error))
    if link is not None and link.name == "identity":
        link = None
    return ModelBasis(kind=kind, beta=beta, vcov=np.asarray(V, dtype=float), df_method=key,
                      df_rule=rule, link=link, encode=_Encoder(fit, data), data=data,
                      factors=factors, covariates=covariates,
                      terms=_term_variables(spec, [*factors, *covariates]))


def _bayes_basis(fit: Any) -> ModelBasis:
    model = fit.model
    if model.nonlinear is not None or model.parts[0].design is None:
        raise NotApplicableError(
            "marginal means of a nonlinear Bayesian model (ml.bayes_nlme) are not available: "
            "its parameters are not linear in the predictors")
    if model.offset is not None:
        raise NotApplicableError(
            "marginal means of a model with an offset are not available (emmeans adds the "
            "offset at the grid's values, which multilevel does not do yet)")
    data = _rows_used(fit)
    spec, expr = _fixed_spec(fit, "bayes")
    spec = _spec(spec, expr, data)
    factors, covariates = _classify(spec, data)
    draws = np.stack([fit.draws(v).reshape(-1) for _, v in model.fixed_variables()], axis=1)
    link = model.family.family.link
    return ModelBasis(kind="bayes", beta=draws.mean(axis=0),
                      vcov=np.atleast_2d(np.cov(draws, rowvar=False)), df_method="posterior",
                      df_rule=_infinite, link=None if link.name == "identity" else link,
                      encode=_Encoder(fit, data), data=data, factors=factors,
                      covariates=covariates, draws=draws,
                      terms=_term_variables(spec, [*factors, *covariates]))


def grid_values(basis: ModelBasis, at: Mapping[str, Any] | None) -> dict[str, list[Any]]:
    """Each grid variable's values: a factor's levels, a covariate's mean, or ``at``'s."""
    at = {} if at is None else at
    if not isinstance(at, Mapping):
        raise ArgumentError(f"at must be a dict of variable -> value(s), such as "
                            f"{{'age': [8, 14]}}, got {type(at).__name__} {at!r:.60}")
    values: dict[str, list[Any]] = {}
    for v in basis.variables:
        if v in basis.factors:
            values[v] = list(basis.factors[v])
        else:
            values[v] = [float(basis.data[v].to_numpy(dtype=float).mean())]
    for v, given in at.items():
        if v not in values:
            raise ArgumentError(f"at names {v!r}, which is not a predictor of the model's "
                                f"fixed effects (they are: {', '.join(basis.variables)})")
        chosen = list(given) if isinstance(given, Sequence | np.ndarray | pd.Series) and \
            not isinstance(given, str) else [given]
        if not chosen:
            raise ArgumentError(f"at[{v!r}] is empty; give at least one value")
        if v in basis.factors:
            unknown = [c for c in chosen if c not in basis.factors[v]]
            if unknown:
                raise ArgumentError(f"at[{v!r}] has {unknown[0]!r}, not a level of factor "
                                    f"{v!r} (its levels: {basis.factors[v]})")
        else:
            try:
                chosen = [float(c) for c in chosen]
            except (TypeError, ValueError):
                raise ArgumentError(f"at[{v!r}] must be numbers (covariate {v!r} is "
                                    f"numeric), got {given!r:.60}") from None
            if not np.all(np.isfinite(chosen)):
                raise ArgumentError(f"at[{v!r}] must be finite numbers, got {given!r:.60}")
        values[v] = list(dict.fromkeys(chosen))  # a value given twice is one grid value
    return values


def expand(values: Mapping[str, list[Any]]) -> pd.DataFrame:
    """Every combination of ``values``, the first variable varying fastest (R's
    ``expand.grid``)."""
    names = list(values)
    if not names:
        return pd.DataFrame(index=range(1))
    combos = itertools.product(*(values[v] for v in reversed(names)))
    rows = [tuple(reversed(c)) for c in combos]
    return pd.DataFrame(rows, columns=names)


def cell_counts(basis: ModelBasis, grid: pd.DataFrame) -> np.ndarray:
    """How many rows of the fit's data fall in each grid row's factor combination (emmeans's
    ``.wgt.``; covariates do not split cells)."""
    factors = [v for v in grid.columns if v in basis.factors]
    if not factors:
        return np.full(len(grid), float(len(basis.data)))
    counts = basis.data.groupby([basis.data[v].astype(str) for v in factors],
                                observed=True).size()
    keys = zip(*(grid[v].astype(str) for v in factors), strict=True)
    if len(factors) == 1:
        return np.array([float(counts.get(k[0], 0)) for k in keys])
    return np.array([float(counts.get(k, 0)) for k in keys])


def grid_weights(weights: str, grid: pd.DataFrame, counts: np.ndarray,
                   kept: list[str]) -> np.ndarray:
    """emmeans's weight of each grid row in the mean it is averaged into (``kept``: the
    variables that mean is taken at; the weights are normalised within each mean)."""
    averaged = [v for v in grid.columns if v not in kept]
    if weights == "equal":
        return np.ones(len(grid))
    if weights == "cells":
        return counts.astype(float)
    if weights == "flat":
        return (counts > 0).astype(float)
    keys = grid[averaged].astype(str)
    if weights == "proportional":  # marginal counts of the averaged combination
        if not averaged:
            return np.ones(len(grid))
        tag = keys.agg("\x1f".join, axis=1)
        return pd.Series(counts).groupby(tag.to_numpy()).transform("sum").to_numpy()
    out = np.ones(len(grid))  # outer: the product of each averaged factor's margin
    for v in averaged:
        out *= pd.Series(counts).groupby(keys[v].to_numpy()).transform("sum").to_numpy()
    return out


def average_rows(grid: pd.DataFrame, X: np.ndarray, values: Mapping[str, list[Any]],
             kept: list[str], w: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """The combinations of ``kept`` (first varying fastest) and the weighted mean of the grid
    rows of each: one row of L per combination."""
    keys = expand({v: values[v] for v in kept})
    L = np.empty((len(keys), X.shape[1]))
    for i, key in enumerate(keys.itertuples(index=False)):
        mask = np.ones(len(grid), dtype=bool)
        for v, val in zip(kept, key, strict=True):
            mask &= (grid[v] == val).to_numpy()
        wi = w[mask]
        L[i] = wi @ X[mask] / wi.sum() if wi.sum() > 0 else np.nan
    return keys, L
