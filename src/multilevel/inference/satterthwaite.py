"""Satterthwaite denominator degrees of freedom for linear hypotheses on the fixed effects, as
R's lmerTest (Kuznetsova, Brockhoff & Christensen 2017, JSS 82(13)).

For a contrast l, the variance of l'beta-hat is v(phi) = l' V(phi) l, a function of the variance
parameters phi = (theta, sigma). With A the asymptotic covariance of phi-hat (twice the inverse
Hessian of the deviance in phi) and g the gradient of v at phi-hat,

    df = 2 v^2 / (g' A g).

The Hessian and the gradient are taken numerically (central differences with one Richardson
extrapolation step), as lmerTest does with numDeriv. The deviance here is not profiled over
sigma: -2 log L(theta, sigma) = log|L_Z|^2 [+ log|L_X|^2] + m log(2 pi sigma^2) + r^2 / sigma^2
with m = n (ML) or n - p (REML).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.linalg as sla

from multilevel.errors import NumericalError, public_api
from multilevel.inference.arguments import check_linear
from multilevel.linalg.blocked_cholesky import NotPositiveDefinite, profiled_terms
from multilevel.results.lmm_result import LinearMixedModelResult

# Relative step of the finite differences (numDeriv's default d = 1e-4 is relative too).
STEP = 1e-3
MIN_STEP = 1e-5


def _steps(phi: np.ndarray) -> np.ndarray:
    return np.maximum(STEP * np.abs(phi), MIN_STEP)


def _deviance(fit: LinearMixedModelResult) -> Callable[[np.ndarray], float]:
    model = fit.model

    def dev(phi: np.ndarray) -> float:
        try:
            logdet_re, logdet_x, pwrss = profiled_terms(model.A,
                                                        model.layout.templates(phi[:-1]))
        except NotPositiveDefinite as exc:
            raise NumericalError(
                "Satterthwaite df cannot be computed: the likelihood cannot be evaluated next to "
                "the estimates (a degenerate fit: is the response also a predictor, or a "
                "random-effects term repeated?); use ddf=None or ddf='residual'") from exc
        return model.response.criterion(logdet_re, logdet_x, pwrss, fit.reml,
                                        sigma=float(phi[-1]))

    return dev


def _vcov(fit: LinearMixedModelResult) -> Callable[[np.ndarray], np.ndarray]:
    model = fit.model
    p = model.n_fixed
    T, _ = model.fixed_transform()

    def vcov(phi: np.ndarray) -> np.ndarray:
        Lxx = model.factor(phi[:-1]).xy_diag[:p, :p]
        Linv = sla.solve_triangular(Lxx, np.eye(p), lower=True)
        return phi[-1] ** 2 * (T @ Linv.T @ Linv @ T.T)

    return vcov


def _hessian(f: Callable[[np.ndarray], float], x: np.ndarray) -> np.ndarray:
    """Central-difference Hessian with one Richardson step (error O(h^4))."""
    h = _steps(x)
    n = x.size

    def central(scale: float) -> np.ndarray:
        H = np.empty((n, n))
        f0 = f(x)
        for i in range(n):
            ei = np.zeros(n)
            ei[i] = h[i] * scale
            H[i, i] = (f(x + ei) - 2 * f0 + f(x - ei)) / (h[i] * scale) ** 2
            for j in range(i):
                ej = np.zeros(n)
                ej[j] = h[j] * scale
                H[i, j] = H[j, i] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej)
                                     + f(x - ei - ej)) / (4 * h[i] * h[j] * scale**2)
        return H

    return (4 * central(0.5) - central(1.0)) / 3


def _jacobian(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    """d f / d x_k for a matrix-valued f: shape (len(x), *f(x).shape), Richardson-extrapolated
    central differences."""
    h = _steps(x)
    out = []
    for k in range(x.size):
        def diff(scale: float, k: int = k) -> np.ndarray:
            e = np.zeros(x.size)
            e[k] = h[k] * scale
            return (f(x + e) - f(x - e)) / (2 * h[k] * scale)
        out.append((4 * diff(0.5) - diff(1.0)) / 3)
    return np.array(out)


def varpar_covariance(fit: LinearMixedModelResult) -> np.ndarray:
    """Asymptotic covariance of (theta, sigma): twice the inverse Hessian of the deviance."""
    phi = np.append(fit.theta, fit.sigma)
    H = _hessian(_deviance(fit), phi)
    return 2.0 * np.linalg.pinv(H)


@public_api
def satterthwaite_df(fit: LinearMixedModelResult, L: np.ndarray) -> np.ndarray:
    """Satterthwaite df for each row l of ``L`` (contrasts on the fixed effects)."""
    check_linear(fit, "Satterthwaite's denominator df",
                 "A GLMM's Wald tests are z tests (coef_table(), ddf=None)")
    L = np.atleast_2d(np.asarray(L, dtype=float))
    phi = np.append(fit.theta, fit.sigma)
    A = varpar_covariance(fit)
    dV = _jacobian(_vcov(fit), phi)  # (n_phi, p, p)
    V = _vcov(fit)(phi)
    out = np.empty(L.shape[0])
    for r, contrast in enumerate(L):
        v = float(contrast @ V @ contrast)
        g = np.einsum("i,kij,j->k", contrast, dV, contrast)
        denom = float(g @ A @ g)
        out[r] = 2 * v * v / denom if denom > 0 else np.inf
    return out
