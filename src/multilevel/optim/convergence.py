"""Convergence checks at the optimum, as lme4's ``checkConv``, and a Newton polish.

Derivative-free optimizers stop on small changes in theta or in the objective, which on a
flat or ill-conditioned surface can be short of the optimum. At the reported optimum we
estimate the gradient and Hessian by finite differences (lme4's ``deriv12`` step, 1e-4),
report lme4's convergence messages when the Hessian-scaled gradient is large or the Hessian
is not positive definite, and take one Newton step, kept when it lowers the objective by more
than the optimizer's own tolerance (ftol_abs = 1e-8).

Why polish: BOBYQA stops 1e-5..1e-4 (relative, in the variance components) short of the
optimum on flat surfaces, and where it stops depends on rounding in the last digits. When the
Newton step gains more than BOBYQA's ftol, BOBYQA stopped before the criterion had settled
and the polished point -- the optimum itself -- is the stable answer, within lme4's own
precision of lme4's. When it gains less, the optimizer's answer is kept: it then coincides with
lme4's whenever the two took the same path (sleepstudy prints lme4's 612.10, not the optimum's
612.09). Measured on the 31 lme4 reference fits in tests/reference: all variance components
within 1e-4 of lme4 except oxboys_quadratic (lme4 itself 1.5e-4 from the optimum) and the two
fits where lme4 warns that it did not converge.

:func:`check_boundary` and :func:`check_derivatives` apply these checks to any objective and
optimizer record, so that every model kind finishes its optimization the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from multilevel.optim.backends import minimize_theta
from multilevel.optim.optsummary import OptSummary

# lme4's lmerControl(check.conv.grad = .makeCC("warning", tol = 2e-3)).
GRADIENT_TOL = 2e-3
# lme4's check.conv.hess tolerance: eigenvalues below -HESSIAN_TOL count as negative.
HESSIAN_TOL = 1e-6
# lme4's optimizeLmer: parameters within this distance of a zero lower bound are tried on the
# bound after optimization, and kept there if the objective is lower.
BOUNDARY_TOL = 1e-5
# Restarts of the optimizer when the fit fails the derivative check at its optimum.
MAX_RESTARTS = 3
# lme4's isSingular default tolerance.
SINGULAR_TOL = 1e-4
# lme4's deriv12 step.
DERIV_STEP = 1e-4
# A Newton step replaces the optimizer's answer when it lowers the objective by more than this:
# lme4's (and our BOBYQA's) ftol_abs.
POLISH_MIN_GAIN = 1e-8


@dataclass(frozen=True)
class Derivatives:
    """Finite-difference gradient and Hessian of the objective at ``x``."""

    x: np.ndarray
    fx: float
    gradient: np.ndarray
    hessian: np.ndarray


def deriv12(fun: Callable[[np.ndarray], float], x: np.ndarray, fx: float,
            delta: float = DERIV_STEP) -> Derivatives:
    """Gradient and Hessian by finite differences with lme4's step, in n (n + 3) / 2
    evaluations.

    The gradient and the Hessian's diagonal are central differences, exactly as lme4's
    ``deriv12``; the off-diagonal elements use the one extra point f(x + h e_i + h e_j) with
    the points already evaluated, (f_ij - f_i - f_j + f) / h^2, where lme4 spends four:
    an O(h) = 1e-4 relative difference that neither the convergence check nor the Newton step
    can see, for half the evaluations (3 parameters: 9 instead of 18).
    """
    n = x.size
    f_up, f_down = _axis_points(fun, x, delta)
    H = np.empty((n, n))
    H[np.diag_indices(n)] = (f_up - 2 * fx + f_down) / delta**2
    for i in range(n):
        for j in range(i):
            z = x.copy()
            z[i] += delta
            z[j] += delta
            H[i, j] = H[j, i] = (fun(z) - f_up[i] - f_up[j] + fx) / delta**2
    return Derivatives(x=x, fx=fx, gradient=(f_up - f_down) / (2 * delta), hessian=H)


def _axis_points(fun: Callable[[np.ndarray], float], x: np.ndarray,
                 delta: float) -> tuple[np.ndarray, np.ndarray]:
    """``fun`` at ``x + delta e_i`` and ``x - delta e_i`` for each parameter i (in that order:
    up, then down, parameter by parameter)."""
    f_up = np.empty(x.size)
    f_down = np.empty(x.size)
    for i in range(x.size):
        up = x.copy()
        up[i] += delta
        down = x.copy()
        down[i] -= delta
        f_up[i], f_down[i] = fun(up), fun(down)
    return f_up, f_down


def central_gradient(fun: Callable[[np.ndarray], float], x: np.ndarray,
                     delta: float = DERIV_STEP) -> np.ndarray:
    """The central-difference gradient of :func:`deriv12` alone (its 2 n points)."""
    f_up, f_down = _axis_points(fun, x, delta)
    return (f_up - f_down) / (2 * delta)


def derivs_from_gradient(grad: Callable[[np.ndarray], np.ndarray], x: np.ndarray, fx: float,
                         delta: float = DERIV_STEP) -> Derivatives:
    """Gradient and Hessian when the objective's gradient is known: the Hessian by forward
    differences of the gradient (symmetrized), in n + 1 gradient evaluations where
    :func:`deriv12` needs n (n + 3) / 2 evaluations of the objective. Its error, O(delta)
    relative (1e-4), is far below what standard errors need (they are reported to 1e-3)."""
    n = x.size
    g = grad(x)
    H = np.empty((n, n))
    for i in range(n):
        up = x.copy()
        up[i] += delta
        H[:, i] = (grad(up) - g) / delta
    return Derivatives(x=x, fx=fx, gradient=g, hessian=0.5 * (H + H.T))


def free_parameters(x: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """Parameters not sitting on their bound (the gradient check ignores the others)."""
    return ~((lower == 0) & (x <= lower))


def convergence_messages(d: Derivatives, free: np.ndarray) -> list[str]:
    """lme4's ``checkConv`` messages for the free parameters (empty when all is well)."""
    if not free.any():
        return []
    g = d.gradient[free]
    H = d.hessian[np.ix_(free, free)]
    if not np.all(np.isfinite(H)) or not np.all(np.isfinite(g)):
        return ["unable to evaluate the scaled gradient (non-finite derivatives)"]
    try:
        scaled = np.linalg.solve(np.linalg.cholesky(H), g)
    except np.linalg.LinAlgError:
        messages = ["unable to evaluate scaled gradient"]
        eig = np.linalg.eigvalsh(H)
        negative = int((eig < -HESSIAN_TOL).sum())
        if negative:
            messages.append("Model failed to converge: degenerate  Hessian with "
                            f"{negative} negative eigenvalues")
        else:
            messages.append("Model is nearly unidentifiable: very large eigenvalue - "
                            "Rescale variables?")
        return messages
    # lme4 takes the smaller of the scaled and the raw gradient, component by component
    worst_each = np.minimum(np.abs(scaled), np.abs(g))
    worst = float(worst_each.max())
    if worst > GRADIENT_TOL:
        comp = int(np.argmax(worst_each)) + 1
        return [f"Model failed to converge with max|grad| = {worst:.6g} "
                f"(tol = {GRADIENT_TOL}, component {comp})"]
    return []


def newton_step(d: Derivatives, free: np.ndarray, lower: np.ndarray) -> np.ndarray | None:
    """One Newton step on the free parameters, or None when the Hessian is not positive
    definite or the step would leave the feasible region."""
    if not free.any():
        return None
    H = d.hessian[np.ix_(free, free)]
    try:
        L = np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        return None
    step = np.linalg.solve(L.T, np.linalg.solve(L, d.gradient[free]))
    x = d.x.copy()
    x[free] -= step
    if np.any(x < lower) or not np.all(np.isfinite(x)):
        return None
    return x


def _predicted_gain(d: Derivatives, x: np.ndarray) -> float:
    """The decrease of the objective from ``d.x`` to ``x`` that the quadratic model of ``d``
    predicts."""
    s = x - d.x
    return -float(d.gradient @ s + 0.5 * s @ d.hessian @ s)


def check_derivatives(fun: Callable[[np.ndarray], float], opt: OptSummary, optimizer: str,
                      settings: dict[str, Any],
                      grad: Callable[[np.ndarray], np.ndarray] | None = None,
                      derivatives: Derivatives | None = None) -> OptSummary:
    """Check the optimum of ``fun`` found by ``opt`` with finite-difference derivatives
    (lme4's checkConv), polish it with a Newton step, and restart the ``optimizer`` (with its
    ``settings``) from the best point while the check fails.

    BOBYQA can stop on its x-tolerance far from the optimum on badly scaled problems (a
    covariate in the hundreds, a slope variance tiny next to the intercept's); lme4 then warns
    "Model failed to converge". We restart from where it stopped (up to ``MAX_RESTARTS``
    times) and report lme4's message only if the fit still fails the check. With ``grad``
    (the objective's gradient) the derivatives come from it (:func:`derivs_from_gradient`).
    ``derivatives``: the optimizer's own at ``opt.final`` (Newton's method,
    :mod:`multilevel.optim.newton`), used for the first check instead of new evaluations; the
    polishing step is then evaluated only when its predicted gain could pass
    ``POLISH_MIN_GAIN``."""
    theta, fmin, polished = opt.final, opt.fmin, False
    feval, restarts = opt.feval, 0
    log = list(opt.fitlog)
    given = derivatives if derivatives is not None and np.array_equal(derivatives.x,
                                                                       theta) else None
    while True:
        if given is not None:
            d, given, reused = given, None, True
        else:
            d = deriv12(fun, theta, fmin) if grad is None else derivs_from_gradient(
                grad, theta, fmin)
            reused = False
        free = free_parameters(theta, opt.lower)
        trial = newton_step(d, free, opt.lower)
        if reused and trial is not None and _predicted_gain(d, trial) < POLISH_MIN_GAIN:
            trial = None
        problems = convergence_messages(d, free)
        if trial is not None:
            value = fun(trial)
            if value < fmin - POLISH_MIN_GAIN:
                theta, fmin, polished = trial, value, True
        if not problems or restarts == MAX_RESTARTS:
            break
        again = minimize_theta(fun, theta, opt.lower, optimizer, settings, f0=fmin)
        restarts += 1
        feval += again.feval
        log += list(again.fitlog)
        if again.fmin < fmin:
            theta, fmin = again.final, again.fmin
    return replace(opt, final=theta, fmin=fmin, feval=feval, fitlog=tuple(log),
                   messages=tuple(list(opt.messages) + problems),
                   converged=opt.converged and not problems, gradient=d.gradient,
                   hessian=d.hessian, polished=polished, restarts=restarts)


def check_boundary(fun: Callable[[np.ndarray], float], opt: OptSummary) -> OptSummary:
    """Try parameters of ``fun`` near a zero lower bound on the bound (lme4's
    check.boundary), then add lme4's messages for singular and unconverged fits."""
    theta = opt.final.copy()
    fmin = opt.fmin
    gap = theta - opt.lower
    edge = (gap < BOUNDARY_TOL) & (gap > 0)
    if edge.any():
        trial = theta.copy()
        trial[edge] = opt.lower[edge]
        value = fun(trial)
        if value < fmin:
            theta, fmin = trial, value
    messages = list(opt.messages)
    if not opt.converged:
        messages.append(f"optimizer ({opt.backend}) did not converge: {opt.return_code}")
    lower = opt.lower
    if np.any(theta[lower == 0] < SINGULAR_TOL):
        messages.append("boundary (singular) fit: see help('isSingular')")
    return OptSummary(backend=opt.backend, initial=opt.initial, final=theta, lower=lower,
                      fmin=fmin, feval=opt.feval, elapsed=opt.elapsed,
                      return_code=opt.return_code, converged=opt.converged,
                      messages=tuple(messages), fitlog=opt.fitlog, settings=opt.settings)
