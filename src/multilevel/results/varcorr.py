"""Variance components table: lme4's ``as.data.frame(VarCorr(fit))``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from multilevel.covariance.relative_factor import ThetaLayout


def term_covariances(layout: ThetaLayout, theta: np.ndarray, sigma: float) -> list[np.ndarray]:
    """Covariance matrix sigma^2 T T' of every term, in lme4's order."""
    out = []
    for i in range(len(layout.terms)):
        T = layout.term_factor(theta, i)
        out.append(sigma**2 * T @ T.T)
    return out


def unique_group_names(layout: ThetaLayout) -> list[str]:
    """lme4 names the second term on a factor ``g.1``, the third ``g.2``, ..."""
    seen: dict[str, int] = {}
    names = []
    for t in layout.terms:
        count = seen.get(t.group, 0)
        names.append(t.group if count == 0 else f"{t.group}.{count}")
        seen[t.group] = count + 1
    return names


def varcorr_frame(layout: ThetaLayout, theta: np.ndarray, sigma: float,
                  residual: float | None = None) -> pd.DataFrame:
    """One row per variance and one per correlation, term by term, residual last.

    Columns: group, term1, term2, variance, sd, corr. For a correlation row ``variance``
    holds the covariance (as lme4's ``vcov`` column does) and ``sd`` is NaN; for a variance
    row ``term2`` is None and ``corr`` is NaN.

    ``sigma`` scales the relative factors (the residual SD of a linear model, 1 for a GLMM);
    ``residual`` is the residual row's SD (``sigma`` when omitted), ``float("nan")`` for no
    residual row (a GLMM whose family has no dispersion).
    """
    residual = sigma if residual is None else residual
    rows: list[dict[str, object]] = []
    covs = term_covariances(layout, theta, sigma)
    for name, term, cov in zip(unique_group_names(layout), layout.terms, covs, strict=True):
        sd = np.sqrt(np.diag(cov))
        for a, col in enumerate(term.columns):
            rows.append({"group": name, "term1": col, "term2": None,
                         "variance": cov[a, a], "sd": sd[a], "corr": np.nan})
        for a in range(term.k):
            for b in range(a + 1, term.k):
                denom = sd[a] * sd[b]
                rows.append({"group": name, "term1": term.columns[a],
                             "term2": term.columns[b], "variance": cov[a, b], "sd": np.nan,
                             "corr": cov[a, b] / denom if denom > 0 else np.nan})
    if not np.isnan(residual):
        rows.append({"group": "Residual", "term1": None, "term2": None,
                     "variance": residual**2, "sd": residual, "corr": np.nan})
    return pd.DataFrame(rows, columns=["group", "term1", "term2", "variance", "sd", "corr"])


def sdcor_parameters(layout: ThetaLayout, theta: np.ndarray, sigma: float,
                     residual: float | None = None) -> pd.Series:
    """The variance parameters on the standard-deviation / correlation scale, in theta's order
    and named as lme4's ``confint`` names them (``sd_(Intercept)|Subject``,
    ``cor_Days.(Intercept)|Subject``), then ``sigma`` (``residual`` as for
    :func:`varcorr_frame`: NaN leaves it out)."""
    residual = sigma if residual is None else residual
    names: list[str] = []
    values: list[float] = []
    covs = term_covariances(layout, theta, sigma)
    for group, term, cov in zip(unique_group_names(layout), layout.terms, covs, strict=True):
        sd = np.sqrt(np.diag(cov))
        cols, rows = np.triu_indices(term.k)  # theta's column-major lower triangle
        for r, c in zip(rows, cols, strict=True):
            if r == c:
                names.append(f"sd_{term.columns[r]}|{group}")
                values.append(float(sd[r]))
            else:
                names.append(f"cor_{term.columns[r]}.{term.columns[c]}|{group}")
                d = sd[r] * sd[c]
                values.append(float(cov[r, c] / d) if d > 0 else float("nan"))
    if not np.isnan(residual):
        names.append("sigma")
        values.append(float(residual))
    return pd.Series(values, index=names, name="estimate")
