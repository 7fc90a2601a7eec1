"""Newton's method with finite-difference derivatives, for objectives that are expensive to
evaluate and have few parameters.

A crossed model with two random intercepts over tens of thousands of levels costs half a
minute per evaluation (a dense factorization of the larger block; see
:mod:`multilevel.linalg.tiled_cholesky`), and has two parameters. From a moment-based start
(:func:`multilevel.models.start.moments_start`) BOBYQA needs ~20 evaluations and then the
convergence check (:func:`multilevel.optim.convergence.check_derivatives`) 6 more. Newton's
method on lme4's own finite-difference derivatives (:func:`~multilevel.optim.convergence.deriv12`,
n (n + 3) / 2 evaluations) converges quadratically from such a start, and its last
derivatives are the very ones the convergence check computes at the optimum (the caller
memoizes the objective, so the check repeats no evaluation). Measured on scaled-down copies of
the benchmark (200,000 rows): 14-16 evaluations in all where BOBYQA and the check took 25-27,
at the same optimum within BOBYQA's tolerance.

The method gives up (returns None, and the caller runs BOBYQA from the best point seen) when
the Hessian is not positive definite or a step fails to lower the objective after halving;
near a boundary (a variance estimated as zero) BOBYQA is the better tool anyway.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from multilevel.optim.convergence import convergence_messages, deriv12, free_parameters
from multilevel.optim.optsummary import OptSummary

# A step within lme4's BOBYQA tolerances (xtol_rel 1e-4, xtol_abs 1e-8) ends the iteration.
XTOL_REL = 1e-4
XTOL_ABS = 1e-8
MAX_ITERATIONS = 10
MAX_HALVINGS = 4


def newton_fd(fun: Callable[[np.ndarray], float], x0: np.ndarray, lower: np.ndarray,
              f0: float) -> OptSummary | None:
    """Minimize ``fun`` over ``x >= lower`` from ``x0`` (where it is ``f0``) by Newton steps
    on finite-difference derivatives; None when the method does not apply (see the module
    docstring). ``fun`` should be memoized by the caller."""
    started = time.perf_counter()
    log: list[tuple[np.ndarray, float]] = [(np.array(x0, dtype=float), f0)]

    def recorded(x: np.ndarray) -> float:
        value = float(fun(x))
        log.append((np.array(x, dtype=float), value))
        return value

    x, fx = np.array(x0, dtype=float), float(f0)
    for _ in range(MAX_ITERATIONS):
        d = deriv12(recorded, x, fx)
        free = free_parameters(x, lower)
        if not free.all() or not np.all(np.isfinite(d.hessian)):
            return None
        try:
            L = np.linalg.cholesky(d.hessian)
        except np.linalg.LinAlgError:
            return None
        step = np.linalg.solve(L.T, np.linalg.solve(L, d.gradient))
        # done when lme4's gradient check passes here (the caller's check_derivatives then
        # repeats it on memoized values) and the next step is within BOBYQA's tolerance
        if (not convergence_messages(d, free)
                and np.all(np.abs(step) <= XTOL_REL * np.abs(x) + XTOL_ABS)):
            return OptSummary(
                backend="newton", initial=np.array(x0, dtype=float), final=x, lower=lower,
                fmin=fx, feval=len(log), elapsed=time.perf_counter() - started,
                return_code="XTOL_REACHED", converged=True, messages=(), fitlog=tuple(log),
                settings={"xtol_rel": XTOL_REL, "xtol_abs": XTOL_ABS})
        for _ in range(MAX_HALVINGS + 1):
            trial = np.maximum(x - step, lower)
            value = recorded(trial)
            if value < fx:
                x, fx = trial, value
                break
            step = step / 2.0
        else:
            return None
    return None
