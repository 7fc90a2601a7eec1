"""GLS for crossed random intercepts by backfitting, in O(N) per sweep (Ghosh, Hastie & Owen
2022, "Backfitting for large scale crossed random effects regressions", Ann. Statist. 50).

With ``V = s_e^2 I + sum_k s_k^2 Z_k Z_k'`` and ``lambda_k = s_e^2 / s_k^2``, Woodbury's identity
gives ``s_e^2 V^-1 r = r - Z u`` where ``u`` solves the ridge problem
``(Z'Z + diag(lambda)) u = Z'r``. That problem is solved by backfitting: sweep over the factors,
setting each factor's effects to the shrunken level means of what the other factors leave
(block Gauss–Seidel; a sweep is a few ``bincount`` passes over the rows). The slow direction of
plain backfitting is a constant moved from one factor to another (it leaves ``Z u`` almost
unchanged); after each sweep the constants ``c_k`` (summing to zero) that minimise the ridge
penalty are applied in closed form, which removes it, so that the sweeps needed do not grow
with N for the designs Ghosh, Hastie & Owen study.

The GLS estimate ``beta = (X' M X)^-1 X' M y`` with ``M = s_e^2 V^-1`` then needs one backfit
per column of X and one for y, and its covariance ``(X' V^-1 X)^-1 = s_e^2 (X' M X)^-1``
comes with it: standard errors that account for the crossed random effects.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from multilevel.errors import ConvergenceWarning
from multilevel.models.moments import (
    CrossedFactors,
    MomentEstimates,
    moment_coefficients,
    variance_components,
)


@dataclass(frozen=True)
class Backfit:
    """One backfitted vector.

    Attributes
    ----------
    effects : list of numpy.ndarray
        ``u_k``, the ridge solution per factor (the conditional modes when ``r`` is the
        residual ``y - X beta``).
    sweeps : int
    converged : bool
    """

    effects: list[np.ndarray]
    sweeps: int
    converged: bool


def _centre(effects: list[np.ndarray], lambdas: np.ndarray, active: list[int]) -> None:
    """Move constants between the factors' effects (they sum to zero, so ``Z u`` is unchanged)
    to minimise the ridge penalty ``sum_k lambda_k |u_k + c_k|^2``: with S_k the sum and L_k the
    number of levels, ``c_k = mu / (lambda_k L_k) - S_k / L_k`` and mu from ``sum c_k = 0``."""
    if len(active) < 2:
        return
    sizes = np.array([effects[k].size for k in active], dtype=float)
    sums = np.array([effects[k].sum() for k in active])
    lam = lambdas[active]
    mu = np.sum(sums / sizes) / np.sum(1.0 / (lam * sizes))
    for k, c in zip(active, mu / (lam * sizes) - sums / sizes, strict=True):
        effects[k] += c


def backfit(r: np.ndarray, factors: CrossedFactors, lambdas: np.ndarray, tol: float = 1e-8,
            max_sweeps: int = 500) -> Backfit:
    """Solve ``(Z'Z + diag(lambda)) u = Z'r`` by backfitting; factors with ``lambda = inf``
    (variance component zero) are left out. Converged when a sweep changes ``Z u`` by less
    than ``tol`` relative to ``|r|``."""
    r = np.asarray(r, dtype=float)
    active = [k for k in range(len(factors.codes)) if np.isfinite(lambdas[k])]
    effects = [np.zeros(c.size) for c in factors.counts]
    # the running residual r - Z u: three passes over the rows per factor and sweep
    resid = r.copy()
    scale = float(np.sqrt(r @ r)) or 1.0
    for sweep in range(1, max_sweeps + 1):
        change = 0.0
        for k in active:
            codes, counts = factors.codes[k], factors.counts[k]
            # resid still holds factor k's own fit: add it back through the level sums
            sums = np.bincount(codes, weights=resid, minlength=counts.size)
            new = (sums + counts * effects[k]) / (counts + lambdas[k])
            step = new - effects[k]
            resid -= step[codes]
            change += float(counts @ step**2)  # |Z_k step|^2
            effects[k] = new
        _centre(effects, lambdas, active)
        if np.sqrt(change) <= tol * scale:
            return Backfit(effects, sweep, True)
    return Backfit(effects, max_sweeps, False)


def fitted_effects(effects: list[np.ndarray], factors: CrossedFactors) -> np.ndarray:
    """``Z u``: the sum over factors of each row's level effect."""
    out = np.zeros(factors.nobs)
    for u, codes in zip(effects, factors.codes, strict=True):
        out += u[codes]
    return out


@dataclass(frozen=True)
class GlsBackfit:
    """GLS fixed effects and their covariance at given variance components.

    Attributes
    ----------
    beta : numpy.ndarray, shape (p,)
    vcov : numpy.ndarray, shape (p, p)
        ``(X' V^-1 X)^-1``.
    sweeps : int
        The most sweeps any backfit needed.
    converged : bool
    """

    beta: np.ndarray
    vcov: np.ndarray
    sweeps: int
    converged: bool


def ridge_lambdas(sigma2: np.ndarray, sigma2_resid: float) -> np.ndarray:
    """``lambda_k = s_e^2 / s_k^2`` (inf for a zero component: the factor drops out)."""
    with np.errstate(divide="ignore"):
        return np.where(sigma2 > 0, sigma2_resid / np.where(sigma2 > 0, sigma2, 1.0), np.inf)


def gls_by_backfitting(X: np.ndarray, y: np.ndarray, factors: CrossedFactors,
                       sigma2: np.ndarray, sigma2_resid: float, tol: float = 1e-8,
                       max_sweeps: int = 500) -> GlsBackfit:
    """``beta = (X' M X)^-1 X' M y`` and ``s_e^2 (X' M X)^-1`` with ``M = s_e^2 V^-1`` applied
    to each column by backfitting (memory: a few vectors of length N at a time)."""
    lambdas = ridge_lambdas(np.asarray(sigma2, dtype=float), sigma2_resid)
    p = X.shape[1]
    xmx = np.zeros((p, p))
    xmy = np.zeros(p)
    sweeps, converged = 0, True
    for j in range(p + 1):
        col = X[:, j] if j < p else y
        bf = backfit(col, factors, lambdas, tol, max_sweeps)
        sweeps, converged = max(sweeps, bf.sweeps), converged and bf.converged
        m_col = col - fitted_effects(bf.effects, factors)
        if j < p:
            xmx[:, j] = X.T @ m_col
        else:
            xmy = X.T @ m_col
    if not converged:
        warnings.warn(f"backfitting did not converge in {max_sweeps} sweeps: the GLS fixed "
                      "effects are approximate; raise max_sweeps", ConvergenceWarning,
                      stacklevel=3)
    xmx = (xmx + xmx.T) / 2
    beta = np.linalg.solve(xmx, xmy)
    return GlsBackfit(beta=beta, vcov=sigma2_resid * np.linalg.inv(xmx), sweeps=sweeps,
                      converged=converged)


@dataclass(frozen=True)
class MomentsFit:
    """The whole O(N) fit: moments for the variance components, GLS by backfitting for beta.

    Attributes
    ----------
    beta, vcov : numpy.ndarray
        GLS fixed effects and ``(X' V^-1 X)^-1`` at the final variance components.
    components : MomentEstimates
        The final variance components (from the GLS residuals of the previous round).
    effects : list of numpy.ndarray
        Conditional modes of each factor's intercepts at the final beta and components.
    ols_beta, ols_vcov : numpy.ndarray
        Ordinary least squares and its naive covariance ``s^2 (X'X)^-1`` (for comparison:
        it ignores the crossed random effects).
    rounds : int
        Moment / GLS rounds done.
    sweeps : int
        The most backfitting sweeps any solve needed.
    converged : bool
    """

    beta: np.ndarray
    vcov: np.ndarray
    components: MomentEstimates
    effects: list[np.ndarray]
    ols_beta: np.ndarray
    ols_vcov: np.ndarray
    rounds: int
    sweeps: int
    converged: bool


def fit_moments(X: np.ndarray, y: np.ndarray, factors: CrossedFactors, rounds: int = 2,
                tol: float = 1e-8, max_sweeps: int = 500) -> MomentsFit:
    """OLS, then ``rounds`` times: moment estimates of the components from the current
    residuals, and GLS by backfitting at them (Gao & Owen 2020 start from OLS residuals; a
    second round on the GLS residuals makes the components less sensitive to the OLS beta)."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    ols_beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ ols_beta
    n, p = X.shape
    ols_vcov = float(resid @ resid) / max(n - p, 1) * np.linalg.inv(X.T @ X)
    beta = ols_beta
    gls: GlsBackfit | None = None
    coefficients = moment_coefficients(factors)
    components = variance_components(resid, factors, coefficients)
    sweeps, converged = 0, True
    for round_ in range(max(int(rounds), 1)):
        if round_:
            components = variance_components(y - X @ beta, factors, coefficients)
        gls = gls_by_backfitting(X, y, factors, components.sigma2, components.sigma2_resid,
                                 tol, max_sweeps)
        beta = gls.beta
        sweeps, converged = max(sweeps, gls.sweeps), converged and gls.converged
    assert gls is not None
    lambdas = ridge_lambdas(components.sigma2, components.sigma2_resid)
    modes = backfit(y - X @ beta, factors, lambdas, tol, max_sweeps)
    return MomentsFit(beta=beta, vcov=gls.vcov, components=components, effects=modes.effects,
                      ols_beta=ols_beta, ols_vcov=ols_vcov, rounds=max(int(rounds), 1),
                      sweeps=max(sweeps, modes.sweeps), converged=converged and modes.converged)
