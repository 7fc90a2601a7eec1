"""Per-group least-squares fits, as nlme's ``lmList``: the same linear model fitted separately
to each level of a grouping factor, to explore before pooling (how much do intercepts and slopes
vary between subjects?) and to start a mixed model.

``lm_list("distance ~ age | Subject", data)`` fits ``distance ~ age`` within each subject.
Standard errors, t tests and intervals use by default the pooled residual standard deviation,
sqrt(sum of the groups' residual sums of squares / sum of their residual df), with the pooled
df, as ``summary(lmList(...))`` and ``intervals(lmList(...))`` do (``pool=TRUE``);
``pool=False`` uses each group's own residual SD and df.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from multilevel.data.design import ModelDesign, build_design
from multilevel.errors import ArgumentError, FormulaError, public_api, public_methods
from multilevel.formula.parser import parse_formula


def _split(formula: str) -> tuple[str, str]:
    """``"y ~ x | g"`` -> (``"y ~ x"``, ``"g"``): the model and the grouping factor."""
    if not isinstance(formula, str) or formula.count("|") != 1:
        raise FormulaError("lm_list needs a formula 'response ~ predictors | group', e.g. "
                           "'distance ~ age | Subject'", str(formula))
    model, group = formula.split("|")
    if not group.strip() or "~" not in model:
        raise FormulaError("lm_list needs a formula 'response ~ predictors | group', e.g. "
                           "'distance ~ age | Subject'", formula)
    return model.strip(), group.strip()


@public_methods
@dataclass(frozen=True)
class LmListResult:
    """Per-group least-squares fits (see :func:`lm_list`).

    Attributes
    ----------
    coef : pandas.DataFrame
        One row per group (in the grouping factor's level order), one column per coefficient;
        NaN where a group's design does not determine the coefficient (too few rows, a
        constant predictor), as R's NA.
    groups : list of str
    pooled : bool
        Whether standard errors and intervals use the pooled residual SD.
    """

    coef: pd.DataFrame
    groups: list[str]
    pooled: bool
    _se_unit: pd.DataFrame  # sqrt(diag((X'X)^-1)) per group
    _rss: np.ndarray
    _df: np.ndarray
    design: ModelDesign

    @property
    def df_resid(self) -> float | np.ndarray:
        """The pooled residual df (pooled fits), else each group's."""
        return float(self._df.sum()) if self.pooled else self._df.copy()

    @property
    def rse(self) -> float | np.ndarray:
        """Residual standard error: pooled over the groups (pooled fits), else per group
        (NaN for a group with no residual df)."""
        if self.pooled:
            return float(np.sqrt(self._rss.sum() / self._df.sum()))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.sqrt(np.where(self._df > 0, self._rss / self._df, np.nan))

    def _scale(self) -> tuple[np.ndarray, np.ndarray]:
        """Per group: the residual SD and the df the tests use."""
        n = len(self.groups)
        if self.pooled:
            return np.full(n, float(self.rse)), np.full(n, float(self.df_resid))
        return np.asarray(self.rse), self._df.astype(float)

    def coef_table(self) -> pd.DataFrame:
        """Long table: group, term, estimate, std_error, statistic (t), df, p_value."""
        sd, df = self._scale()
        rows = []
        coef, unit = self.coef.to_numpy(), self._se_unit.to_numpy()
        for i, g in enumerate(self.groups):
            for j, term in enumerate(self.coef.columns):
                est = float(coef[i, j])
                se = float(sd[i] * unit[i, j])
                t = est / se if se > 0 else np.nan
                rows.append({"group": g, "term": term, "estimate": est, "std_error": se,
                             "statistic": t, "df": df[i],
                             "p_value": float(2 * stats.t.sf(abs(t), df[i]))
                             if np.isfinite(t) and df[i] > 0 else np.nan})
        return pd.DataFrame(rows)

    def intervals(self, level: float = 0.95) -> pd.DataFrame:
        """Confidence intervals of every group's coefficients (nlme's ``intervals``): long
        table with group, term, lower, estimate, upper."""
        if isinstance(level, bool) or not isinstance(level, int | float) or not 0 < level < 1:
            raise ArgumentError(f"level must be a number strictly between 0 and 1, got "
                                f"{level!r:.60}")
        table = self.coef_table()
        q = stats.t.ppf(0.5 + level / 2, table["df"].to_numpy())
        half = q * table["std_error"].to_numpy()
        return pd.DataFrame({"group": table["group"], "term": table["term"],
                             "lower": table["estimate"] - half, "estimate": table["estimate"],
                             "upper": table["estimate"] + half})


@public_api
def lm_list(formula: str, data: Any, pool: bool = True) -> LmListResult:
    """Fit ``response ~ predictors`` by least squares within each level of a grouping factor,
    as nlme's ``lmList``.

    Parameters
    ----------
    formula : str
        ``"response ~ predictors | group"``, e.g. ``"distance ~ age | Subject"``; the model
        part takes what a fixed-effects part of :func:`multilevel.lmer` takes.
    data : pandas.DataFrame or polars.DataFrame
    pool : bool, default True
        Standard errors, tests and intervals from the pooled residual SD and df (nlme's
        default), or from each group's own.

    Returns
    -------
    LmListResult
    """
    if not isinstance(pool, bool):
        raise ArgumentError(f"pool must be True or False, got {pool!r:.60}")
    model, group = _split(formula)
    # the model part with the group as a random intercept: the design layer then checks the
    # formula, drops incomplete rows and codes the groups, as for any model
    parsed = parse_formula(f"{model} + (1 | {group})")
    design = build_design(parsed, data)
    term = design.terms[0]
    codes, levels = term.factor.codes, [str(v) for v in term.factor.levels]
    names = list(design.fixed_names)
    p = len(names)
    coef = np.full((len(levels), p), np.nan)
    unit = np.full((len(levels), p), np.nan)
    rss = np.zeros(len(levels))
    dfs = np.zeros(len(levels))
    for i in range(len(levels)):
        rows = codes == i
        X, y = design.X[rows], design.y[rows]
        keep = _independent_columns(X)
        Xk = X[:, keep]
        beta, *_ = np.linalg.lstsq(Xk, y, rcond=None)
        coef[i, keep] = beta
        resid = y - Xk @ beta
        rss[i] = float(resid @ resid)
        dfs[i] = X.shape[0] - int(keep.sum())
        unit[i, keep] = np.sqrt(np.diag(np.linalg.inv(Xk.T @ Xk)))
    frame = pd.DataFrame(coef, index=pd.Index(levels, name=group), columns=names)
    return LmListResult(coef=frame, groups=levels, pooled=pool,
                        _se_unit=pd.DataFrame(unit, index=frame.index, columns=names),
                        _rss=rss, _df=dfs, design=design)


def _independent_columns(X: np.ndarray) -> np.ndarray:
    """Columns of X kept by a pivoted QR in order (R's lm drops the later of collinear
    columns, reporting NA)."""
    keep = np.zeros(X.shape[1], dtype=bool)
    basis = np.empty((X.shape[0], 0))
    scale = max(1.0, float(np.abs(X).max())) if X.size else 1.0
    for j in range(X.shape[1]):
        col = X[:, j]
        if basis.shape[1]:
            col = col - basis @ np.linalg.lstsq(basis, col, rcond=None)[0]
        if np.linalg.norm(col) > 1e-7 * scale * np.sqrt(X.shape[0]):
            keep[j] = True
            basis = np.column_stack([basis, X[:, j]])
    return keep
