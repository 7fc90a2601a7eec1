"""Penalized iteratively reweighted least squares (PIRLS) and the GLMM criteria built on it.

For a GLMM with spherical random effects u (b = Lambda(theta) u, u ~ N(0, I)), the conditional
modes maximize log p(y | u) - |u|^2 / 2. PIRLS finds them by Fisher scoring: at the current
eta, the working weights w and working response z give a penalized weighted least-squares
problem -- the linear mixed model's, with W = diag(w) -- whose solution is the next iterate
(Bates et al. 2015, JSS 67(1), section 5; lme4's ``pwrssUpdate``). A step that does not lower
the penalized deviance -2 log p(y | u) + |u|^2 (up to constants) is halved.

Two versions, as lme4's: with beta inside the least-squares problem (nAGQ = 0: PIRLS solves
for beta and u together) and with beta held fixed (nAGQ >= 1: the optimizer moves beta).

At the modes, the Laplace approximation to the marginal deviance is
-2 log p(y | u^) + |u^|^2 + log|L_Z|^2, with L_Z the Cholesky factor of
Lambda' Z' W Z Lambda + I at the weights of the converged mu. For a single scalar random-effects
term, adaptive Gauss-Hermite quadrature (:func:`agq_deviance`) integrates each group's
one-dimensional integral around its mode instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from multilevel.families.gauss_hermite import gauss_hermite
from multilevel.linalg.blocked_cholesky import (
    BlockedFactor,
    factorize,
    solve_fixed_and_modes,
)
from multilevel.linalg.cross_products import CrossProducts
from multilevel.models.predictor import Predictor
from multilevel.models.response import GLMResponse

# Iterations before PIRLS gives up (lme4: 30 with its looser tolerance).
MAX_ITERATIONS = 100
# Step halvings before a step that does not lower the penalized deviance counts as failed.
MAX_HALVINGS = 12
# Converged when a full Newton step moves no linear predictor by more than this (relative to
# the largest |eta|): the iteration converges quadratically, so the modes are then exact to
# rounding and the criterion a smooth function of the parameters, as the finite-difference
# Hessian (step 1e-4) needs. (lme4's default stops on a relative change of the penalized
# deviance of 1e-7, which leaves its Laplace deviance ~1e-4 off and its Hessian-based
# standard errors up to ~1% off; with glmerControl(tolPwrss = 1e-12) it agrees with ours.)
STEP_TOLERANCE = 1e-10
# With Newton steps (observed information, or any canonical link) convergence is quadratic:
# a step this small leaves the next iterate within ~1e-12 of the mode, so it is accepted.
QUADRATIC_TOLERANCE = 1e-6
# After this many iterations, a step that lowers the penalized deviance by no more than
# FLAT_TOLERANCE * (|deviance| + 0.1) ends the iteration (glm's and lme4's own stopping rule):
# quadratic convergence never gets here, but separated data do -- beta runs off along a
# direction in which the deviance only approaches its infimum, so eta never settles. The fit
# then reports the divergence (see multilevel.models.separation) instead of failing.
FLAT_ITERATIONS = 30
FLAT_TOLERANCE = 1e-10


class PirlsFailure(ArithmeticError):
    """PIRLS found no admissible step or did not converge (a model or data problem at these
    parameters: the optimizer treats the point as infeasible)."""


@dataclass
class Modes:
    """The state PIRLS converged to at one value of the parameters.

    Attributes
    ----------
    beta : numpy.ndarray
        Fixed effects (estimated by PIRLS when it was run with beta inside).
    u : list of numpy.ndarray
        Spherical modes per block, ``(levels, k)``.
    eta, mu : numpy.ndarray
        Linear predictor and mean at the modes.
    A : CrossProducts or None
        Cross-products of [X z] at the expected (Fisher) working weights of mu (None when
        PIRLS was run without ``full``).
    factor : BlockedFactor or None
        Their blocked Cholesky factor (its X block: beta's covariance given theta).
    re_A, re_factor : CrossProducts, BlockedFactor
        The random-effects cross-products and factor at the curvature the Laplace
        approximation uses (``A`` and ``factor`` for the expected information).
    sum_u2 : float
        |u|^2.
    iterations : int
    """

    beta: np.ndarray
    u: list[np.ndarray]
    eta: np.ndarray
    mu: np.ndarray
    A: CrossProducts | None
    factor: BlockedFactor | None
    re_A: CrossProducts
    re_factor: BlockedFactor
    sum_u2: float
    iterations: int


def linear_predictor(pred: Predictor, X: np.ndarray, resp: GLMResponse, theta: np.ndarray,
                     beta: np.ndarray, u: list[np.ndarray]) -> np.ndarray:
    """eta = X beta + Z Lambda u + offset."""
    return X @ beta + pred.z_times(pred.effects(theta, u)) + resp.offset


def _sum_sq(u: list[np.ndarray]) -> float:
    return float(sum(float(np.vdot(x, x)) for x in u))


def pirls(pred: Predictor, X: np.ndarray, resp: GLMResponse, A0: CrossProducts,
          theta: np.ndarray, beta: np.ndarray, u: list[np.ndarray], beta_inside: bool,
          observed: bool = False, full: bool = True) -> Modes:
    """Conditional modes (and beta when ``beta_inside``) at theta, from the start (beta, u).

    Parameters
    ----------
    pred : Predictor
    X : (n, p) array
    resp : GLMResponse
    A0 : CrossProducts
        Any cross-products of this predictor (their structure is reused).
    theta : array
    beta, u : arrays
        Starting values (beta is kept when not ``beta_inside``).
    beta_inside : bool
        Solve for beta with u (nAGQ = 0), or hold it fixed.
    observed : bool
        Take the Laplace log-determinant at the observed rather than the expected (Fisher)
        information (glmmTMB's Laplace approximation; the same for canonical links).
    full : bool
        Also factor the [X z] system at the modes (beta's covariance, the result); the
        optimizer's evaluations need only the random-effects factor.

    Raises
    ------
    PirlsFailure
        No step lowers the penalized deviance, or no convergence in MAX_ITERATIONS.
    NotPositiveDefinite
        From the factorization.
    """
    templates = pred.layout.templates(theta)
    # with beta held fixed, X beta + offset is the same at every iteration
    fixed_part = None if beta_inside else X @ beta + resp.offset
    eta = linear_predictor(pred, X, resp, theta, beta, u)
    mu = resp.mu(eta)
    if not resp.valid(eta, mu):
        raise PirlsFailure("the starting linear predictor is outside the family's range")
    pdev = resp.deviance(mu) + _sum_sq(u)
    for it in range(1, MAX_ITERATIONS + 1):
        sqrt_w, z, newton = resp.newton_working(eta, mu)
        if beta_inside:
            Xy = np.column_stack([X, eta - resp.offset + z])
        else:
            Xy = (eta - resp.offset - X @ beta + z)[:, None]
        A = _with_free_response_pivot(pred.reweighted(A0, Xy, sqrt_w))
        f = factorize(A, templates)
        beta_new, u_new = solve_fixed_and_modes(A, f)
        if not beta_inside:
            beta_new = beta
        eta_new = (linear_predictor(pred, X, resp, theta, beta_new, u_new)
                   if fixed_part is None else fixed_part + pred.z_times(pred.effects(theta, u_new)))
        change = float(np.max(np.abs(eta_new - eta)))
        tol = QUADRATIC_TOLERANCE if newton else STEP_TOLERANCE
        if change <= tol * (1.0 + float(np.max(np.abs(eta)))):
            mu_new = resp.mu(eta_new)
            if resp.valid(eta_new, mu_new):
                return _at_modes(pred, resp, A0, templates, X, beta_new, u_new, eta_new,
                                 mu_new, it, observed, full)
        step = 1.0
        for _ in range(MAX_HALVINGS):
            b_try = beta + step * (beta_new - beta)
            u_try = [a + step * (c - a) for a, c in zip(u, u_new, strict=True)]
            eta_try = eta + step * (eta_new - eta)
            mu_try = resp.mu(eta_try)
            if resp.valid(eta_try, mu_try):
                pdev_try = resp.deviance(mu_try) + _sum_sq(u_try)
                if pdev_try <= pdev + 1e-12 * abs(pdev):
                    break
            step *= 0.5
        else:
            raise PirlsFailure("no step of the penalized least-squares iteration lowers the "
                               "penalized deviance")
        flat = pdev - pdev_try <= FLAT_TOLERANCE * (abs(pdev_try) + 0.1)
        beta, u, eta, mu, pdev = b_try, u_try, eta_try, mu_try, pdev_try
        if flat and it >= FLAT_ITERATIONS:
            return _at_modes(pred, resp, A0, templates, X, beta, u, eta, mu, it, observed,
                             full)
    raise PirlsFailure(f"the penalized least-squares iteration did not converge in "
                       f"{MAX_ITERATIONS} iterations")


def _with_free_response_pivot(A: CrossProducts) -> CrossProducts:
    """A with the working response's own entry z'Wz raised by z'Wz + 1.

    That changes only the last pivot of the factor (the penalized weighted residual sum of
    squares, which no GLMM criterion uses; beta, the modes and the X block are unchanged) and
    keeps it positive when the model reproduces z exactly -- a constant response, a Poisson
    count fitted to rounding -- where the plain factorization fails on a zero pivot."""
    xy = A.xy.copy()
    xy[-1, -1] += xy[-1, -1] + 1.0
    return replace(A, xy=xy)


def _at_modes(pred: Predictor, resp: GLMResponse, A0: CrossProducts, templates: list[np.ndarray],
              X: np.ndarray, beta: np.ndarray, u: list[np.ndarray], eta: np.ndarray,
              mu: np.ndarray, iterations: int, observed: bool, full: bool) -> Modes:
    """The factors at the converged mu's weights (the last iteration's used the previous mu).

    The random-effects factor is taken at the curvature the Laplace approximation uses: the
    expected (Fisher) weights, or the observed information, whose weights may be negative for
    some rows as long as the sum stays positive definite. With ``full``, the [X z] system (the
    nAGQ = 0 one) is factored at the expected weights too: its X block gives beta's covariance
    (RX) whichever stage this is, and the working response keeps its last diagonal element
    positive."""
    n = eta.shape[0]
    if observed:
        re_A = pred.reweighted(A0, np.empty((n, 0)), weights=resp.observed_weights(eta, mu))
    else:
        re_A = pred.reweighted(A0, np.empty((n, 0)), resp.working(eta, mu)[0])
    re_factor = factorize(re_A, templates)
    A: CrossProducts | None = None
    f: BlockedFactor | None = None
    if full:
        sqrt_w, z = resp.working(eta, mu)
        A = _with_free_response_pivot(
            pred.reweighted(A0, np.column_stack([X, eta - resp.offset + z]), sqrt_w))
        f = factorize(A, templates)
    return Modes(beta=beta, u=u, eta=eta, mu=mu, A=A, factor=f, re_A=re_A,
                 re_factor=re_factor, sum_u2=_sum_sq(u), iterations=iterations)


def laplace_deviance(resp: GLMResponse, modes: Modes) -> float:
    """-2 log L by the Laplace approximation at the modes."""
    return resp.criterion(modes.re_factor.logdet_re, modes.sum_u2, resp.loglik(modes.mu))


def agq_deviance(pred: Predictor, resp: GLMResponse, modes: Modes, theta: np.ndarray,
                 nagq: int) -> float:
    """-2 log L by adaptive Gauss-Hermite quadrature with ``nagq`` nodes, for one scalar
    random-effects term (each group's integral is one-dimensional and independent).

    Around each group's mode u_j with conditional SD s_j = 1 / L_jj,

        log L_j = log s_j + log sum_k w_k exp(l_j(u_j + s_j z_k) - (u_j + s_j z_k)^2 / 2
                                               + z_k^2 / 2),

    with (z_k, w_k) the rule for the standard normal and l_j the group's conditional
    log-likelihood (saturated constants included). One node is the Laplace approximation."""
    rule = gauss_hermite(nagq)
    blk = pred.blocks[0]
    codes, zcol = blk.codes, blk.Z[:, 0]
    t = float(pred.layout.templates(theta)[0][0, 0])
    u0 = modes.u[0][:, 0]
    s = 1.0 / modes.re_factor.first_diag[:, 0, 0]
    nl = u0.shape[0]
    eta_fixed = modes.eta - zcol * t * u0[codes]
    terms = np.empty((rule.order, nl))
    for k, (zk, _) in enumerate(zip(rule.z, rule.w, strict=True)):
        uk = u0 + s * zk
        eta_k = eta_fixed + zcol * t * uk[codes]
        ll = np.bincount(codes, weights=resp.loglik_terms(resp.mu(eta_k)), minlength=nl)
        terms[k] = ll - 0.5 * uk * uk + 0.5 * zk * zk
    log_w = np.log(rule.w)[:, None]
    top = np.max(terms + log_w, axis=0)
    log_lj = np.log(s) + top + np.log(np.exp(terms + log_w - top).sum(axis=0))
    value = -2.0 * float(log_lj.sum())
    return value if math.isfinite(value) else math.inf
