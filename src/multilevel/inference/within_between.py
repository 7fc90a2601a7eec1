"""Within and between effects: cluster-mean centring, and the Mundlak and Hausman tests of
whether level-1 regressors are correlated with the random effects.

A random-intercept model assumes that a pupil-level covariate is uncorrelated with the school
effect. When it is not (richer pupils in better schools), the covariate's coefficient mixes the
within-school association with the between-school one and is biased for both. Mundlak (1978):
add each level-1 covariate's cluster mean as a fixed effect; the means' coefficients are zero
exactly when the assumption holds (likelihood-ratio test of the ML fits). Hausman (1978):
compare the random-effects estimates with the within (fixed-effects) estimates, which are
consistent either way: H = d' (V_FE - V_RE)^-1 d, chi-square with one df per covariate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from multilevel.data.design import aliased_columns
from multilevel.data.frame import to_pandas
from multilevel.errors import (
    ArgumentError,
    ColumnNotFoundError,
    MultilevelError,
    public_api,
    public_methods,
)
from multilevel.inference.arguments import check_fit, check_linear
from multilevel.inference.model_comparison import refit_ml
from multilevel.inference.refit import fit_like
from multilevel.inference.reporting import html_report
from multilevel.results.base import MixedModelResult


@public_api
def center(data: Any, columns: str | Sequence[str], by: str | None = None) -> pd.DataFrame:
    """Add centred versions of numeric columns.

    For each column ``x``: ``x_centered`` (minus the grand mean) and, with ``by``,
    ``x_between`` (the mean of ``x`` in the row's group) and ``x_within`` (``x`` minus that
    mean). Means ignore missing values. Returns a new DataFrame.
    """
    frame = to_pandas(data).copy()
    if isinstance(columns, str):
        cols = [columns]
    elif hasattr(columns, "__iter__") and all(isinstance(c, str) for c in columns):
        cols = list(columns)
    else:
        raise ArgumentError(f"columns must be a column name or a list of column names, got "
                            f"{type(columns).__name__} {columns!r}")
    if not cols:
        raise ArgumentError("columns is empty: name at least one numeric column to centre")
    if by is not None and not isinstance(by, str):
        raise ArgumentError(f"by must be a column name or None, got {type(by).__name__} {by!r}")
    for c in [*cols, *([by] if by else [])]:
        if c not in frame.columns:
            raise ColumnNotFoundError(c, [str(x) for x in frame.columns], "center()")
    for c in cols:
        if not pd.api.types.is_numeric_dtype(frame[c]):
            raise MultilevelError(f"column {c!r} is not numeric; only numeric columns can be "
                                  "centred")
        frame[f"{c}_centered"] = frame[c] - frame[c].mean()
        if by:
            means = frame.groupby(by, observed=True, sort=False)[c].transform("mean")
            frame[f"{c}_between"] = means
            frame[f"{c}_within"] = frame[c] - means
    return frame


@public_methods
@dataclass(frozen=True)
class EndogeneityTest:
    """Result of a Mundlak or Hausman test.

    Attributes
    ----------
    test : str
    statistic, df, p_value : float
        Chi-square statistic, its degrees of freedom and p-value.
    variables : tuple of str
        The level-1 regressors tested.
    message : str
        What the result means and, when it rejects, what to do.
    """

    test: str
    statistic: float
    df: int
    p_value: float
    variables: tuple[str, ...]
    message: str

    def __str__(self) -> str:
        return (f"{self.test} test of {', '.join(self.variables)}: chi-square = "
                f"{self.statistic:.4g} on {self.df} df, p = {self.p_value:.4g}\n{self.message}")

    def _repr_html_(self) -> str:
        title, message = str(self).split("\n", 1)
        return html_report(title, [message], {})


def _grouping(fit: MixedModelResult, by: str | None) -> tuple[str, np.ndarray]:
    check_fit(fit)
    if by is not None and not isinstance(by, str):
        raise ArgumentError(f"by must be the name of a grouping factor or None, got "
                            f"{type(by).__name__} {by!r}")
    factors: dict[str, np.ndarray] = {}
    for t in fit.model.design.terms:
        factors.setdefault(t.factor.name, t.factor.codes)
    if by is None:
        if len(factors) != 1:
            raise MultilevelError(f"the model has several grouping factors ({', '.join(factors)})"
                                  "; say which one the regressors are centred in with by=")
        by = next(iter(factors))
    if by not in factors:
        raise MultilevelError(f"{by!r} is not a grouping factor of the model "
                              f"({', '.join(factors)})")
    return by, factors[by]


def _group_means(x: np.ndarray, codes: np.ndarray) -> np.ndarray:
    n = np.bincount(codes)
    return (np.bincount(codes, weights=x) / n)[codes]


def _level1_columns(fit: MixedModelResult, codes: np.ndarray) -> list[int]:
    X = fit.model.design.X
    out = []
    for j in range(X.shape[1]):
        dev = X[:, j] - _group_means(X[:, j], codes)
        if np.abs(dev).max() > 1e-10 * max(np.abs(X[:, j]).max(), 1.0):
            out.append(j)
    if not out:
        raise MultilevelError("no fixed-effects column varies within the groups: there is no "
                              "level-1 regressor to test")
    return out


def _message(test: str, p: float, names: Sequence[str], by: str) -> str:
    subject = ", ".join(names)
    verb = "correlates" if len(names) == 1 else "correlate"
    if p >= 0.05:
        return (f"No evidence (p >= 0.05) that {subject} {verb} with the {by} random effects; "
                "the random-effects estimates pass this check.")
    return (f"{subject} {verb} with the {by} random effects (p < 0.05): the coefficients mix "
            "within- and between-group associations. Split each regressor into its group mean "
            f"and the within-group deviation (multilevel.center(data, x, by={by!r})) and put "
            "both in the model, or report the within-group estimates.")


@public_api
def mundlak(fit: MixedModelResult, by: str | None = None) -> EndogeneityTest:
    """Mundlak's test: add the group means of the level-1 regressors and test them jointly
    (likelihood-ratio test of the maximum-likelihood fits without and with the means). For a
    GLMM the means enter the linear predictor (the correlated random-effects model)."""
    by, codes = _grouping(fit, by)
    design = fit.model.design
    cols = _level1_columns(fit, codes)
    means = np.column_stack([_group_means(design.X[:, j], codes) for j in cols])
    # a mean that is constant (to rounding, relative to its regressor's scale) carries nothing
    scale = np.array([max(np.abs(design.X[:, j]).max(), 1.0) for j in cols])
    varies = np.ptp(means, axis=0) > 1e-8 * scale
    X_aug = np.hstack([design.X, means])
    keep = ~aliased_columns(X_aug)
    keep[: design.X.shape[1]] = True
    keep[design.X.shape[1]:] &= varies
    names = [design.fixed_names[j] for j, k in zip(cols, keep[design.X.shape[1]:], strict=True)
             if k]
    if not names:
        raise MultilevelError("the group means of the level-1 regressors are constant or "
                              "collinear with the other fixed effects (a balanced design?); "
                              "the Mundlak test cannot be formed")
    aug_design = replace(design, X=np.ascontiguousarray(X_aug[:, keep]),
                         fixed_names=(*design.fixed_names, *[f"mean({n})" for n in names]),
                         fixed_spec=None)
    base = refit_ml(fit)
    aug = fit_like(base, base.model.replace(design=aug_design))
    chisq = max(2.0 * (aug.loglik - base.loglik), 0.0)
    p = float(stats.chi2.sf(chisq, len(names)))
    return EndogeneityTest("Mundlak", chisq, len(names), p, tuple(names),
                           _message("Mundlak", p, names, by))


@public_api
def hausman(fit: MixedModelResult, by: str | None = None) -> EndogeneityTest:
    """Hausman's test: random-effects against within (fixed-effects) estimates of the level-1
    regressors' coefficients."""
    fit = check_linear(fit, "The Hausman test",
                       "Its within (fixed-effects) estimator is the linear model's; for a GLMM "
                       "use multilevel.mundlak(fit), the likelihood-ratio test of the group "
                       "means")
    by, codes = _grouping(fit, by)
    design = fit.model.design
    if design.weights is not None:
        raise MultilevelError("the Hausman test is not defined here for weighted fits")
    cols = _level1_columns(fit, codes)
    y = design.y if design.offset is None else design.y - design.offset
    Xw = np.column_stack([design.X[:, j] - _group_means(design.X[:, j], codes) for j in cols])
    yw = y - _group_means(y, codes)
    b_fe, *_ = np.linalg.lstsq(Xw, yw, rcond=None)
    resid = yw - Xw @ b_fe
    dof = design.nobs - (int(codes.max()) + 1) - len(cols)
    v_fe = float(resid @ resid) / dof * np.linalg.inv(Xw.T @ Xw)
    b_re = fit.beta[cols]
    v_re = fit.vcov.to_numpy()[np.ix_(cols, cols)]
    d = b_fe - b_re
    stat = float(d @ np.linalg.pinv(v_fe - v_re) @ d)
    df = int(np.linalg.matrix_rank(v_fe - v_re))
    names = [design.fixed_names[j] for j in cols]
    p = float(stats.chi2.sf(stat, df))
    return EndogeneityTest("Hausman", stat, df, p, tuple(names), _message("Hausman", p, names, by))
