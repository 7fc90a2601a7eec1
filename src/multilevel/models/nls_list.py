"""Per-group nonlinear least squares with a self-starting model, as nlme's ``nlsList``: the
curve fitted separately to each group (each tree's logistic growth), from the model's own
starting values (R's ``getInitial``), to explore before pooling and to start a nonlinear mixed
model.

``nls_list("circumference ~ SSlogis(age, Asym, xmid, scal) | Tree", data)``. The coefficients'
standard errors come from each group's Gauss-Newton information; intervals use them rescaled to
the pooled residual SD with the pooled df, as nlme's ``intervals(nlsList(...))`` does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from multilevel.data.frame import to_pandas
from multilevel.data.grouping import factor_codes
from multilevel.errors import (
    ArgumentError,
    DataError,
    FormulaError,
    NumericalError,
    public_api,
    public_methods,
)
from multilevel.nonlinear.selfstart import SELF_STARTING, SelfStartModel

# response ~ SSmodel(arguments) | group, every name a plain column name (nothing evaluated)
_FORMULA = re.compile(r"^\s*([A-Za-z_.][\w.]*)\s*~\s*(SS\w+)\s*\((.*)\)"
                      r"\s*\|\s*([A-Za-z_.][\w.]*)\s*$")
_HELP = ("nls_list needs 'response ~ SSmodel(covariates, parameters) | group', e.g. "
         "'circumference ~ SSlogis(age, Asym, xmid, scal) | Tree', with one of R's "
         f"self-starting models ({', '.join(sorted(SELF_STARTING))})")


@public_methods
@dataclass(frozen=True)
class NlsListResult:
    """Per-group nonlinear least-squares fits (see :func:`nls_list`).

    Attributes
    ----------
    coef : pandas.DataFrame
        One row per group (level order), one column per parameter (named as in the formula).
    groups : list of str
    model : SelfStartModel
    """

    coef: pd.DataFrame
    groups: list[str]
    model: SelfStartModel
    _se_own: pd.DataFrame
    _rss: np.ndarray
    _df: np.ndarray

    @property
    def rse(self) -> float:
        """The pooled residual standard error, sqrt(sum RSS / sum df)."""
        return float(np.sqrt(self._rss.sum() / self._df.sum()))

    @property
    def df_resid(self) -> float:
        """The pooled residual df."""
        return float(self._df.sum())

    def coef_table(self) -> pd.DataFrame:
        """Long table: group, term, estimate, std_error (from the pooled residual SD),
        statistic (t), df (pooled), p_value."""
        own_sd = np.sqrt(self._rss / self._df)
        se = self._se_own.to_numpy() * (self.rse / own_sd)[:, None]
        rows = []
        est = self.coef.to_numpy()
        for i, g in enumerate(self.groups):
            for j, term in enumerate(self.coef.columns):
                t = est[i, j] / se[i, j]
                rows.append({"group": g, "term": term, "estimate": est[i, j],
                             "std_error": se[i, j], "statistic": t, "df": self.df_resid,
                             "p_value": float(2 * stats.t.sf(abs(t), self.df_resid))})
        return pd.DataFrame(rows)

    def intervals(self, level: float = 0.95) -> pd.DataFrame:
        """Confidence intervals of every group's parameters, as nlme's ``intervals`` of an
        ``nlsList``: estimate +- t(pooled df) x standard error at the pooled residual SD."""
        if isinstance(level, bool) or not isinstance(level, int | float) or not 0 < level < 1:
            raise ArgumentError(f"level must be a number strictly between 0 and 1, got "
                                f"{level!r:.60}")
        table = self.coef_table()
        half = stats.t.ppf(0.5 + level / 2, self.df_resid) * table["std_error"].to_numpy()
        return pd.DataFrame({"group": table["group"], "term": table["term"],
                             "lower": table["estimate"] - half, "estimate": table["estimate"],
                             "upper": table["estimate"] + half})


def self_starting_call(name: str, inner: str, formula: str,
                       ) -> tuple[SelfStartModel, list[str], list[str]]:
    """The self-starting model ``name`` and the arguments of its call ``name(inner)``: the
    covariates (column names) and the parameters' labels."""
    model = SELF_STARTING[name]
    args = [a.strip() for a in inner.split(",")]
    if len(args) != model.covariates + len(model.parameters):
        raise FormulaError(f"{name} takes {model.covariates} covariate(s) and the parameters "
                           f"{', '.join(model.parameters)}; got {len(args)} argument(s)", formula)
    return model, args[:model.covariates], args[model.covariates:]


@dataclass(frozen=True)
class GroupedColumns:
    """The numeric columns of a per-group nonlinear model, complete rows only, with each
    row's group (``codes`` into ``levels``)."""

    x: list[np.ndarray]
    y: np.ndarray
    codes: np.ndarray
    levels: list[str]


def grouped_columns(data: Any, response: str, covariates: list[str], group: str,
                    who: str) -> GroupedColumns:
    """Read the response, the covariates and the grouping column; rows with a missing value
    are dropped. Groups in the level order of a categorical column, else sorted (R's
    ``factor()``), levels without rows left out."""
    frame = to_pandas(data)
    used = [response, *covariates, group]
    missing = [c for c in used if c not in frame.columns]
    if missing:
        raise DataError(f"{who}: column(s) {', '.join(map(repr, missing))} not in the data")
    frame = frame[used].dropna()
    for col in (response, *covariates):
        if not pd.api.types.is_numeric_dtype(frame[col]) or pd.api.types.is_bool_dtype(
                frame[col]):
            raise DataError(f"{who}: column {col!r} must be numeric")
    codes, levels = factor_codes(frame[group])
    return GroupedColumns(x=[frame[c].to_numpy(dtype=float) for c in covariates],
                          y=frame[response].to_numpy(dtype=float), codes=codes,
                          levels=levels)


def per_group_fits(model: SelfStartModel, x: list[np.ndarray], y: np.ndarray,
                   codes: np.ndarray, levels: list[str], group: str, strict: bool,
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Least squares of the self-starting model within each group, from its own starting
    values: (coefficients, standard errors, RSS, residual df), one row per group. With
    ``strict`` a group that cannot be fitted is an error naming it; without, its row is NaN
    (as nlsList leaves it)."""
    p = len(model.parameters)
    coef = np.full((len(levels), p), np.nan)
    se = np.full((len(levels), p), np.nan)
    rss = np.full(len(levels), np.nan)
    dfs = np.full(len(levels), np.nan)
    for i, level in enumerate(levels):
        rows = codes == i
        xs = [v[rows] for v in x]
        yg = y[rows]
        try:
            start = model.initial(*xs, yg)
            x0 = np.array([start[k] for k in model.parameters])
            fit = optimize.least_squares(
                lambda b, xs=xs, yg=yg: model.value(*xs, *b) - yg, x0,
                jac=lambda b, xs=xs: model.gradient(*xs, *b), method="lm", xtol=1e-12,
                ftol=1e-12, gtol=1e-12)
            if not fit.success:
                raise NumericalError(f"nls_list: the fit for {group} = {level!r} did not "
                                     f"converge ({fit.message})")
            if len(yg) - p <= 0:
                raise DataError(f"nls_list: {group} = {level!r} has {len(yg)} rows for {p} "
                                "parameters: no residual degrees of freedom")
            J = model.gradient(*xs, *fit.x)
            rss[i] = float(fit.fun @ fit.fun)
            dfs[i] = len(yg) - p
            cov = np.linalg.inv(J.T @ J) * rss[i] / dfs[i]
        except (DataError, NumericalError, np.linalg.LinAlgError, ValueError):
            if strict:
                raise
            continue
        coef[i] = fit.x
        se[i] = np.sqrt(np.diag(cov))
    return coef, se, rss, dfs


@public_api
def nls_list(formula: str, data: Any) -> NlsListResult:
    """Fit a self-starting nonlinear model by least squares within each group, as nlme's
    ``nlsList``.

    Parameters
    ----------
    formula : str
        ``"response ~ SSmodel(covariates..., parameters...) | group"``; the covariates are
        data columns, the parameters' names label the coefficients.
    data : pandas.DataFrame or polars.DataFrame
        Rows with a missing value in a used column are dropped.

    Returns
    -------
    NlsListResult

    Raises
    ------
    FormulaError
        A formula not of that form, an unknown model, or the wrong number of arguments.
    DataError
        A column that is missing or not numeric, or a group whose data cannot give starting
        values (too few distinct covariate values).
    NumericalError
        A group whose fit does not converge (named).
    """
    match = _FORMULA.match(formula) if isinstance(formula, str) else None
    if match is None:
        raise FormulaError(_HELP, str(formula))
    response, name, inner, group = match.groups()
    if name not in SELF_STARTING:
        raise FormulaError(f"{name} is not a self-starting model. {_HELP}", formula)
    model, covariates, labels = self_starting_call(name, inner, formula)
    grouped = grouped_columns(data, response, covariates, group, "nls_list")
    levels = grouped.levels
    coef, se, rss, dfs = per_group_fits(model, grouped.x, grouped.y, grouped.codes, levels,
                                        group, strict=True)
    index = pd.Index(levels, name=group)
    return NlsListResult(coef=pd.DataFrame(coef, index=index, columns=labels),
                         groups=list(index), model=model,
                         _se_own=pd.DataFrame(se, index=index, columns=labels), _rss=rss,
                         _df=dfs)
