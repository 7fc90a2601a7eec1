"""Between-within ("containment") denominator degrees of freedom, as nlme's ``lme``
(Pinheiro & Bates 2000, sec. 4.2.2).

With nested grouping factors ordered from the outermost (level 1) to the innermost (level Q),
and the observations as level Q + 1, each fixed-effects column is estimated at the outermost
level within whose groups it is constant (a school-level covariate at level 1, a pupil-level
one at level Q + 1). With m_i groups at level i (m_0 = 1 for the intercept, m_{Q+1} = n) and
p_i columns estimated there, level i has m_i - m_{i-1} - p_i degrees of freedom; the intercept
gets the innermost level's.
"""

from __future__ import annotations

import numpy as np

from multilevel.data.design import ModelDesign
from multilevel.errors import MultilevelError, public_api
from multilevel.inference.arguments import check_linear
from multilevel.results.lmm_result import LinearMixedModelResult


def _nested_levels(design: ModelDesign) -> list[np.ndarray]:
    """Level codes of the grouping factors, outermost first; error unless each is nested in
    the one before it."""
    factors: dict[str, np.ndarray] = {}
    for t in design.terms:
        factors.setdefault(t.factor.name, t.factor.codes)
    ordered = sorted(factors.items(), key=lambda kv: int(kv[1].max()) + 1)
    for (outer_name, outer), (inner_name, inner) in zip(ordered, ordered[1:], strict=False):
        pairs = np.unique(np.column_stack([inner, outer]), axis=0)
        if len(pairs) != len(np.unique(inner)):
            raise MultilevelError(
                f"between-within df need nested grouping factors, but {inner_name!r} is not "
                f"nested in {outer_name!r} (crossed); use ddf='satterthwaite'")
    return [codes for _, codes in ordered]


def _constant_within(x: np.ndarray, codes: np.ndarray) -> bool:
    n = int(codes.max()) + 1
    lo = np.full(n, np.inf)
    hi = np.full(n, -np.inf)
    np.minimum.at(lo, codes, x)
    np.maximum.at(hi, codes, x)
    scale = max(float(np.abs(x).max()), 1.0)
    return bool(np.all(hi - lo <= 1e-10 * scale))


def column_df(fit: LinearMixedModelResult) -> np.ndarray:
    """Between-within df of each fixed-effects column."""
    return design_column_df(fit.model.design)


def design_column_df(design: ModelDesign) -> np.ndarray:
    """Between-within df of each fixed-effects column of ``design`` (an ``lme`` fit's data-
    scale design: its whitened columns no longer show which level they vary at)."""
    levels = _nested_levels(design)
    X = design.X
    q = len(levels)
    level_of = np.full(X.shape[1], q + 1)
    intercept = np.all(X == 1.0, axis=0)
    for j in range(X.shape[1]):
        if intercept[j]:
            continue
        for i, codes in enumerate(levels, start=1):
            if _constant_within(X[:, j], codes):
                level_of[j] = i
                break
    sizes = [1] + [int(c.max()) + 1 for c in levels] + [X.shape[0]]
    df_level = [sizes[i] - sizes[i - 1] - int(np.sum((level_of == i) & ~intercept))
                for i in range(1, q + 2)]
    return np.array([float(df_level[q] if intercept[j] else df_level[level_of[j] - 1])
                     for j in range(X.shape[1])])


@public_api
def between_within_df(fit: LinearMixedModelResult, L: np.ndarray) -> np.ndarray:
    """Between-within df for each contrast row: the smallest df of the columns it involves."""
    check_linear(fit, "The between-within denominator df",
                 "A GLMM's Wald tests are z tests (coef_table(), ddf=None)")
    df = column_df(fit)
    L = np.atleast_2d(np.asarray(L, dtype=float))
    return np.array([df[row != 0].min() if np.any(row != 0) else np.nan for row in L])
