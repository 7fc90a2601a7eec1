"""F tests of linear hypotheses L beta = 0 with Satterthwaite denominator df (lmerTest's
``contestMD``), and the per-term F table of one model.

For a q-row hypothesis the F statistic is (L b)' (L V L')^-1 (L b) / q. Its denominator df
come from the eigen-decomposition L V L' = P D P': each eigen-contrast p_m' L has Satterthwaite
df nu_m, and with E = sum nu_m / (nu_m - 2) the F test gets 2 E / (E - q) (Fai & Cornelius
1996; Kuznetsova et al. 2017). Sums of squares are reported as lmerTest does: F q sigma^2.
Type-III hypotheses follow lmerTest's construction (:func:`type3_hypotheses`).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from formulaic import model_matrix
from scipy import stats

from multilevel.data.frame import logical_as_factor, to_pandas
from multilevel.errors import ArgumentError, MultilevelError, public_api
from multilevel.formula.expressions import EVALUATION_CONTEXT
from multilevel.formula.rnames import r_column_name
from multilevel.inference.arguments import check_ddf, check_fit, check_linear
from multilevel.inference.kenward_roger import kr_quantities, kr_test
from multilevel.inference.satterthwaite import satterthwaite_df
from multilevel.results.base import MixedModelResult
from multilevel.results.lmm_result import DDF_METHODS, LinearMixedModelResult

_POLY = re.compile(r"C\(([^,()]+), contr\.poly\)")


def _combine_df(nu: np.ndarray) -> float:
    """lmerTest's get_Fstat_ddf."""
    if nu.size == 1 or np.all(np.abs(nu - nu[0]) < 1e-8):
        return float(nu[0])
    if np.any(nu <= 2):
        return 2.0
    e = float(np.sum(nu / (nu - 2)))
    return 2 * e / (e - nu.size)


def _hypothesis_matrix(L: object, fixed_names: list[str]) -> np.ndarray:
    """``L`` as a finite (q, p) float matrix, or an ArgumentError naming ``L``."""
    p = len(fixed_names)
    try:
        M = np.atleast_2d(np.asarray(L, dtype=float))
    except (TypeError, ValueError) as exc:
        raise ArgumentError(f"the hypothesis matrix L must be numbers, a (q, {p}) array; "
                            f"could not read it as one: {exc}") from None
    if M.ndim != 2 or M.shape[1] != p or M.shape[0] == 0:
        raise ArgumentError(f"the hypothesis matrix L needs {p} columns (one per fixed effect: "
                            f"{', '.join(fixed_names)}) and at least one row, got shape "
                            f"{M.shape}")
    if not np.all(np.isfinite(M)):
        raise ArgumentError("the hypothesis matrix L has NaN or infinite entries; every entry "
                            "must be a finite number")
    return M


@public_api
def contrast_test(fit: MixedModelResult, L: np.ndarray,
                  ddf: str | None = "satterthwaite") -> pd.Series:
    """F test of ``L beta = 0``.

    Parameters
    ----------
    fit : LinearMixedModelResult or GeneralizedLinearMixedModelResult
        A GLMM takes ``ddf=None`` only: the Wald chi-square / q (its sum_sq is the Wald
        chi-square itself, there being no residual variance to scale by).
    L : array-like, shape (q, p)
        Hypothesis matrix, one row per constraint, columns in ``fit.fixed_names`` order.
    ddf : str or None
        ``"satterthwaite"`` (default), ``"between-within"``, ``"residual"``, or None
        (infinite denominator df: the Wald chi-square / q).

    Returns
    -------
    pandas.Series
        sum_sq, mean_sq, num_df, den_df, f_value, p_value.

    Raises
    ------
    NotApplicableError
        A denominator-df method for a GLMM.
    """
    check_fit(fit)
    ddf = check_ddf(ddf)
    lmm = None if ddf is None else linear_for_ddf(fit, ddf)
    L = _hypothesis_matrix(L, fit.fixed_names)
    V = fit.vcov.to_numpy()
    VL = L @ V @ L.T
    evals, evecs = np.linalg.eigh(VL)
    keep = evals > 1e-10 * max(evals.max(), 0.0)
    if not keep.any():
        raise ArgumentError("the hypothesis matrix L has no estimable rows (every row is zero "
                            "or tests nothing the fit estimates); give at least one non-zero "
                            "row")
    q = int(keep.sum())
    # the test on the eigen-contrasts (drops linearly dependent rows of L)
    P = evecs[:, keep].T @ L
    d = evals[keep]
    lb = P @ fit.beta
    f_value = float(np.sum(lb**2 / d)) / q
    key = None if ddf is None else ddf.lower().replace("_", "-")
    if key is None or lmm is None:
        den = np.inf
    elif key == "kenward-roger":
        # F from the adjusted covariance, scaled by lambda, on m denominator df (pbkrtest)
        kr = kr_quantities(lmm)
        lam, den = kr_test(kr, P)
        f_value = lam * float(lb @ np.linalg.solve(P @ kr.Phi_A @ P.T, lb)) / q
    elif key == "satterthwaite":
        den = _combine_df(satterthwaite_df(lmm, P))
    else:
        if key not in DDF_METHODS:
            raise ArgumentError(f"unknown ddf {ddf!r}; choose one of "
                                  f"{', '.join(sorted(DDF_METHODS))} or None")
        den = float(np.min(DDF_METHODS[key](lmm, P)))
    p_value = float(stats.f.sf(f_value, q, den)) if np.isfinite(den) else float(
        stats.chi2.sf(f_value * q, q))
    s2 = fit.sigma**2 if isinstance(fit, LinearMixedModelResult) else 1.0
    return pd.Series({"sum_sq": f_value * q * s2, "mean_sq": f_value * s2, "num_df": q,
                      "den_df": den, "f_value": f_value, "p_value": p_value})


def fixed_terms(fit: MixedModelResult) -> dict[str, list[int]]:
    """The fixed-effects terms (R's labels) and the columns of X that belong to each; the
    intercept is left out."""
    design = fit.model.design
    spec = design.fixed_spec
    names = list(design.fixed_names)
    out: dict[str, list[int]] = {}
    if spec is None:  # plain numeric columns: one column per term
        return {n: [i] for i, n in enumerate(names) if n != "(Intercept)"}
    for s in spec.structure:
        label = str(s.term)
        if label == "1":
            continue
        cols = [names.index(c) for c in (r_column_name(x) for x in s.columns) if c in names]
        if cols:
            out[_POLY.sub(r"\1", label).replace(" ** ", "^").replace("**", "^")] = cols
    return out


def _contained(term: str, other: str) -> bool:
    a, b = set(term.split(":")), set(other.split(":"))
    return a < b


def type3_hypotheses(fit: MixedModelResult) -> dict[str, np.ndarray]:
    """Type-III hypothesis matrices of the fixed-effects terms, lmerTest's construction.

    With X the model's (full-rank) matrix and R the over-parametrized one (every factor coded
    by all its levels), the rows of B' = (X^+ R)' are the coefficient-scale versions of R's
    parameters. Working from the highest-order terms down, each term's columns of B' are
    made orthogonal to the columns of the terms that contain it; the term's hypothesis is then
    its columns read at the rows of X's own parameters. For a term contained in no other this
    is the test that all of its coefficients are zero; for ``x`` beside ``x:z`` it is the
    coding-independent type III test (SAS, lmerTest).
    """
    terms = fixed_terms(fit)
    if not any(_contained(t, o) for t in terms for o in terms):
        out = {}
        for t, cols in terms.items():
            L = np.zeros((len(cols), len(fit.beta)))
            L[np.arange(len(cols)), cols] = 1.0
            out[t] = L
        return out
    design = fit.model.design
    data = fit.model.data
    if data is None:
        raise MultilevelError("type-III tests of terms contained in interactions need the "
                              "fit's data; refit with multilevel.lmer(formula, data)")
    frame = to_pandas(data).iloc[design.row_index].reset_index(drop=True)
    mm = model_matrix(design.formula.fixed, logical_as_factor(frame), ensure_full_rank=False,
                      context=EVALUATION_CONTEXT)
    rd_names = [r_column_name(c) for c in mm.columns]
    missing = [n for n in design.fixed_names if n not in rd_names]
    if missing:
        raise MultilevelError(
            f"type-III tests of terms contained in interactions need treatment-coded factors; "
            f"columns {missing} have other contrasts (an ordered factor?). Test an explicit "
            "hypothesis with fit.contrast(L)")
    M = (np.linalg.pinv(design.X) @ np.asarray(mm, dtype=float)).T
    M[np.abs(M) < 1e-10] = 0.0
    for t in sorted(terms, key=lambda t: -len(t.split(":"))):
        bigger = [c for o in terms if _contained(t, o) for c in terms[o]]
        if bigger:
            A = M[:, bigger]
            coef, *_ = np.linalg.lstsq(A, M[:, terms[t]], rcond=None)
            M[:, terms[t]] -= A @ coef
            M[np.abs(M) < 1e-10] = 0.0
    L = M[[rd_names.index(n) for n in design.fixed_names], :]
    out = {}
    for t, cols in terms.items():
        Lt = L[:, cols].T
        out[t] = Lt[np.abs(Lt).sum(axis=1) > 1e-8]
    return out


def linear_for_ddf(fit: MixedModelResult, ddf: str) -> LinearMixedModelResult:
    """The fit as a linear model, for a test with denominator df ``ddf``; a GLMM raises
    NotApplicableError (its Wald tests are z / chi-square tests)."""
    return check_linear(fit, f"ddf={ddf!r} (denominator degrees of freedom)",
                        "A GLMM's Wald tests are z tests (chi-square for several "
                        "coefficients): use ddf=None, or the likelihood-ratio test "
                        "multilevel.anova(m0, m1) of nested fits")


@public_api
def f_table(fit: MixedModelResult, ddf: str | None = "satterthwaite",
            type: int = 3) -> pd.DataFrame:
    """Type-III F test of every fixed-effects term (see :func:`type3_hypotheses`), as
    lmerTest's ``anova(fit, type = 3)``. A GLMM takes ``ddf=None`` only (Wald chi-square
    tests, reported as F = chi-square / num_df with infinite den_df)."""
    check_fit(fit)
    ddf = check_ddf(ddf)
    if ddf is not None:
        linear_for_ddf(fit, ddf)
    if isinstance(type, bool) or type != 3:
        raise ArgumentError(f"type={type!r} is not available; only type=3 is")
    hypotheses = type3_hypotheses(fit)
    if not hypotheses:
        raise MultilevelError("the model has no fixed-effects term besides the intercept")
    table = pd.DataFrame({t: contrast_test(fit, L, ddf) for t, L in hypotheses.items()}).T
    table["num_df"] = table["num_df"].astype(int)
    table.index.name = "term"
    return table
