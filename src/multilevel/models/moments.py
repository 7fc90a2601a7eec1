"""Method-of-moments variance components for crossed random intercepts, in O(N).

The model is ``y = X beta + a_1[g_1] + ... + a_K[g_K] + e`` with K crossed (or nested, or
partly crossed) grouping factors, independent random intercepts ``a_k ~ N(0, s_k^2)`` and
``e ~ N(0, s_e^2)``. Following Gao & Owen (2017, "Efficient moment calculations for variance
components in large unbalanced crossed random effects models", Electron. J. Statist. 11) the
variance components solve linear equations in U-statistics of the residuals ``r``:

- for each factor k, half the sum over ordered pairs of rows in the same level of k of
  ``(r_s - r_t)^2``, which equals ``U_k = sum_l N_l * sum_{s in l} (r_s - rbar_l)^2``;
- over all pairs of rows, ``U_e = N * sum_s (r_s - rbar)^2``.

For two rows s, t, ``E (r_s - r_t)^2 = 2 s_e^2 [s != t] + 2 sum_m s_m^2 [g_m(s) != g_m(t)]``,
so each expectation is linear in the components with coefficients made of level counts and
the sums of squared counts of pairs of levels (``sum_{l,l'} N_{l l'}^2`` for factors k and m):

    E U_k = s_e^2 (sum_l N_l^2 - N) + sum_{m != k} s_m^2 (sum_l N_l^2 - P_km)
    E U_e = s_e^2 (N^2 - N)         + sum_m        s_m^2 (N^2 - sum_l N_{m,l}^2)

Everything is a handful of passes over the rows: O(N) time (O(N log N) for the pair counts,
found by sorting) and O(N + levels) memory. Repeated cells (several rows for one pair of
levels) are allowed. As Gao & Owen (2020, Statistica Sinica 30) do with covariates, the
fixed effects are removed first and the equations are applied to the residuals; the small
bias this leaves (of relative order p / levels) is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from multilevel.errors import NotApplicableError, NumericalError


@dataclass(frozen=True)
class CrossedFactors:
    """Grouping factors coded 0..L_k-1, with their level counts (computed once).

    Attributes
    ----------
    names : tuple of str
    codes : tuple of numpy.ndarray of int, shape (n,)
    counts : tuple of numpy.ndarray of float, shape (L_k,)
        Rows in each level.
    """

    names: tuple[str, ...]
    codes: tuple[np.ndarray, ...]
    counts: tuple[np.ndarray, ...]

    @classmethod
    def from_codes(cls, names: list[str] | tuple[str, ...],
                   codes: list[np.ndarray] | tuple[np.ndarray, ...]) -> CrossedFactors:
        """Factors from integer codes (levels that do not occur get count 0)."""
        # platform integers: bincount would convert narrower codes on every call
        arrays = tuple(np.asarray(c).astype(np.intp, copy=False) for c in codes)
        counts = tuple(np.bincount(c).astype(float) for c in arrays)
        return cls(tuple(names), arrays, counts)

    @property
    def nobs(self) -> int:
        """Number of rows."""
        return int(self.codes[0].shape[0])

    @property
    def n_levels(self) -> tuple[int, ...]:
        """Number of levels of each factor."""
        return tuple(int(c.size) for c in self.counts)


@dataclass(frozen=True)
class MomentEstimates:
    """The variance components and the equations they solve.

    Attributes
    ----------
    sigma2 : numpy.ndarray, shape (K,)
        The factors' variance components, negative solutions set to zero (the equations are
        then solved again without them).
    sigma2_resid : float
        The residual variance.
    raw : numpy.ndarray, shape (K + 1,)
        The unconstrained solution (factors first, residual last).
    statistics : numpy.ndarray, shape (K + 1,)
        The U-statistics U_1..U_K, U_e.
    coefficients : numpy.ndarray, shape (K + 1, K + 1)
        Their expectations' coefficients (rows: statistics; columns: s_1^2..s_K^2, s_e^2).
    """

    sigma2: np.ndarray
    sigma2_resid: float
    raw: np.ndarray
    statistics: np.ndarray
    coefficients: np.ndarray

    @property
    def at_boundary(self) -> tuple[int, ...]:
        """Factors whose component was negative and set to zero."""
        return tuple(int(k) for k in np.flatnonzero(self.raw[:-1] <= 0))


def intercept_factor_names(terms: Any) -> list[str]:
    """The grouping factors of a design's random-effects terms, each of which must be a
    random intercept ``(1 | g)`` of its own factor (what the moments method fits); a
    NotApplicableError naming the term otherwise."""
    names: list[str] = []
    for term in terms:
        if term.columns != ("(Intercept)",):
            raise NotApplicableError(
                f"the term ({term.lhs} | {term.factor.name}) has random slopes; the moments "
                "method fits random intercepts (1 | g) only: fit it exactly with "
                "ml.lmer(formula, data) (REML)")
        if term.factor.name in names:
            raise NotApplicableError(
                f"the grouping factor {term.factor.name} appears in two terms; the moments "
                "method takes one (1 | g) per factor")
        names.append(term.factor.name)
    return names


def within_level_statistic(r: np.ndarray, codes: np.ndarray, counts: np.ndarray) -> float:
    """``U = sum_l N_l sum_{s in l} (r_s - rbar_l)^2`` (centred within levels, for accuracy
    when N is large)."""
    n_levels = counts.size
    sums = np.bincount(codes, weights=r, minlength=n_levels)
    means = np.divide(sums, counts, out=np.zeros(n_levels), where=counts > 0)
    within = np.bincount(codes, weights=(r - means[codes]) ** 2, minlength=n_levels)
    return float(counts @ within)


def pair_square_sum(first: np.ndarray, second: np.ndarray, n_second: int) -> float:
    """``sum_{l,l'} N_{l l'}^2``: squared counts of the rows in each pair of levels."""
    key = first.astype(np.int64) * np.int64(n_second) + second.astype(np.int64)
    key.sort()
    # run lengths of the sorted keys are the pair counts
    edges = np.flatnonzero(np.diff(key)) + 1
    runs = np.diff(np.concatenate(([0], edges, [key.size]))).astype(float)
    return float(runs @ runs)


def moment_coefficients(factors: CrossedFactors) -> np.ndarray:
    """The coefficients of the U-statistics' expectations (rows: U_1..U_K, U_e; columns:
    s_1^2..s_K^2, s_e^2; see the module docstring). They depend on the design only."""
    n = float(factors.nobs)
    k_count = len(factors.codes)
    square = [float(c @ c) for c in factors.counts]
    coef = np.zeros((k_count + 1, k_count + 1))
    for k in range(k_count):
        coef[k, k_count] = square[k] - n
        for m in range(k_count):
            if m > k:
                coef[k, m] = square[k] - pair_square_sum(factors.codes[k], factors.codes[m],
                                                         factors.n_levels[m])
            elif m < k:  # P_km = P_mk
                coef[k, m] = square[k] - (square[m] - coef[m, k])
    coef[k_count, k_count] = n * n - n
    for m in range(k_count):
        coef[k_count, m] = n * n - square[m]
    return coef


def moment_statistics(r: np.ndarray, factors: CrossedFactors) -> np.ndarray:
    """The U-statistics U_1..U_K, U_e of ``r``."""
    stat = [within_level_statistic(r, codes, counts)
            for codes, counts in zip(factors.codes, factors.counts, strict=True)]
    stat.append(float(factors.nobs) * float(np.sum((r - r.mean()) ** 2)))
    return np.array(stat)


def moment_equations(r: np.ndarray, factors: CrossedFactors) -> tuple[np.ndarray, np.ndarray]:
    """The U-statistics of ``r`` and the coefficient matrix of their expectations (see the
    module docstring)."""
    return moment_statistics(r, factors), moment_coefficients(factors)


def solve_components(stat: np.ndarray, coef: np.ndarray) -> MomentEstimates:
    """Solve the moment equations; a factor whose component comes out negative is set to zero
    and the equations are solved again without it and its own statistic (its within-level
    pairs then carry no information on the others beyond U_e's)."""
    k_count = stat.size - 1
    # equations scaled to unit size first: their coefficients range over N^2 and N_l^2
    scale = np.abs(coef).max(axis=1)
    scale[scale == 0] = 1.0
    a, u = coef / scale[:, None], stat / scale
    try:
        raw = np.linalg.solve(a, u)
    except np.linalg.LinAlgError as exc:
        raise NumericalError(
            "the moment equations are singular: two grouping factors have the same levels "
            "pattern (one is a relabelling of the other) or a factor has one row per level; "
            "drop one of them from the formula") from exc
    keep = list(range(k_count))
    solution = raw.copy()
    while True:
        negative = [k for k in keep if solution[k] <= 0]
        if not negative:
            break
        keep = [k for k in keep if k not in negative]
        cols = [*keep, k_count]
        sub = np.linalg.lstsq(a[cols][:, cols], u[cols], rcond=None)[0]
        solution = np.zeros(k_count + 1)
        solution[cols] = sub
    sigma2 = np.where(np.isin(np.arange(k_count), keep), solution[:k_count], 0.0)
    resid = float(solution[k_count])
    if not np.isfinite(resid) or resid <= 0:
        raise NumericalError(
            "the moment estimate of the residual variance is not positive: the data have (close "
            "to) one row per combination of levels, so residual and random-effect variation "
            "cannot be separated; fit the exact model with ml.lmer")
    return MomentEstimates(sigma2=np.maximum(sigma2, 0.0), sigma2_resid=resid, raw=raw,
                           statistics=stat, coefficients=coef)


def variance_components(r: np.ndarray, factors: CrossedFactors,
                        coefficients: np.ndarray | None = None) -> MomentEstimates:
    """Gao–Owen moment estimates of the variance components from residuals ``r`` (pass the
    design's ``moment_coefficients`` when estimating repeatedly: they cost a sort per pair of
    factors)."""
    coef = moment_coefficients(factors) if coefficients is None else coefficients
    return solve_components(moment_statistics(np.asarray(r, dtype=float), factors), coef)
