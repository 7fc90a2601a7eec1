"""Derivative-free minimization of the profiled objective over theta, by backend name.

``bobyqa`` (NLopt's LN_BOBYQA with lme4's tolerances) is the default, as in lme4's
``nloptwrap``; ``cobyqa`` and ``lbfgsb`` come from scipy. Every backend is a plain function
``(fun, x0, lower, settings) -> OptSummary``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from multilevel.errors import OptimizerError
from multilevel.optim.optsummary import OptSummary

Objective = Callable[[np.ndarray], float]

# lme4's nloptwrap (lme4 1.1-31) sets xtol_abs = ftol_abs = 1e-8 and maxeval 1e5 and leaves
# the rest at nloptr's defaults, of which xtol_rel = 1e-4 matters (nloptr 2.0.3).
BOBYQA_DEFAULTS: dict[str, Any] = {"xtol_abs": 1e-8, "ftol_abs": 1e-8, "xtol_rel": 1e-4,
                                   "ftol_rel": 0.0, "maxeval": 100_000}


class _Recorder:
    """Wraps the objective to count evaluations and keep the fit log."""

    def __init__(self, fun: Objective) -> None:
        self.fun = fun
        self.log: list[tuple[np.ndarray, float]] = []

    def __call__(self, x: np.ndarray) -> float:
        value = float(self.fun(np.asarray(x, dtype=float)))
        self.log.append((np.array(x, dtype=float), value))
        return value

    def best(self) -> tuple[np.ndarray, float]:
        i = int(np.argmin([v for _, v in self.log]))
        return self.log[i]


def _bobyqa(fun: Objective, x0: np.ndarray, lower: np.ndarray,
            settings: dict[str, Any]) -> OptSummary:
    import nlopt

    opts = {**BOBYQA_DEFAULTS, **settings}
    rec = _Recorder(fun)
    opt = nlopt.opt(nlopt.LN_BOBYQA, len(x0))
    opt.set_min_objective(lambda x, grad: rec(x))
    opt.set_lower_bounds(np.where(np.isfinite(lower), lower, -np.inf))
    opt.set_xtol_abs(opts["xtol_abs"])
    opt.set_ftol_abs(opts["ftol_abs"])
    opt.set_xtol_rel(opts["xtol_rel"])
    opt.set_ftol_rel(opts["ftol_rel"])
    opt.set_maxeval(int(opts["maxeval"]))
    if "initial_step" in opts:
        opt.set_initial_step(np.broadcast_to(opts["initial_step"], x0.shape).copy())
    start = time.perf_counter()
    x = opt.optimize(np.asarray(x0, dtype=float))
    elapsed = time.perf_counter() - start
    code = opt.last_optimize_result()
    names = {1: "NLOPT_SUCCESS", 2: "NLOPT_STOPVAL_REACHED", 3: "NLOPT_FTOL_REACHED",
             4: "NLOPT_XTOL_REACHED", 5: "NLOPT_MAXEVAL_REACHED", 6: "NLOPT_MAXTIME_REACHED"}
    return OptSummary(backend="bobyqa", initial=np.array(x0, dtype=float), final=np.array(x),
                      lower=lower, fmin=float(opt.last_optimum_value()), feval=len(rec.log),
                      elapsed=elapsed, return_code=names.get(code, str(code)),
                      converged=code in (1, 2, 3, 4), fitlog=tuple(rec.log), settings=opts)


def _scipy(method: str) -> Callable[[Objective, np.ndarray, np.ndarray, dict[str, Any]],
                                    OptSummary]:
    def run(fun: Objective, x0: np.ndarray, lower: np.ndarray,
            settings: dict[str, Any]) -> OptSummary:
        from scipy.optimize import Bounds, minimize  # lazily: ~0.1 s, only these backends

        rec = _Recorder(fun)
        start = time.perf_counter()
        res = minimize(rec, np.asarray(x0, dtype=float), method=method,
                       bounds=Bounds(lower, np.full_like(lower, np.inf)),
                       options=dict(settings))
        elapsed = time.perf_counter() - start
        x, f = rec.best()
        return OptSummary(backend=method.lower().replace("-", ""),
                          initial=np.array(x0, dtype=float), final=x, lower=lower, fmin=f,
                          feval=len(rec.log), elapsed=elapsed, return_code=str(res.message),
                          converged=bool(res.success), fitlog=tuple(rec.log),
                          settings=dict(settings))
    return run


BACKENDS: dict[str, Callable[[Objective, np.ndarray, np.ndarray, dict[str, Any]],
                             OptSummary]] = {
    "bobyqa": _bobyqa,
    "cobyqa": _scipy("COBYQA"),
    "lbfgsb": _scipy("L-BFGS-B"),
}


def minimize_theta(fun: Objective, x0: np.ndarray, lower: np.ndarray,
                   optimizer: str = "bobyqa", settings: dict[str, Any] | None = None,
                   ) -> OptSummary:
    """Minimize ``fun`` over theta >= lower with the named backend.

    Raises
    ------
    OptimizerError
        For an unknown backend name or a start outside the bounds.
    """
    key = optimizer.lower().replace("-", "").replace("_", "")
    if key not in BACKENDS:
        raise OptimizerError(f"unknown optimizer {optimizer!r}; choose one of "
                             f"{', '.join(sorted(BACKENDS))}")
    x0 = np.asarray(x0, dtype=float)
    if x0.shape != lower.shape:
        raise OptimizerError(f"start must have {lower.size} values (one per theta "
                             f"parameter), got {x0.size}")
    if np.any(x0 < lower):
        bad = int(np.flatnonzero(x0 < lower)[0])
        raise OptimizerError(f"start value {x0[bad]} for theta[{bad}] is below its lower "
                             f"bound {lower[bad]}")
    return BACKENDS[key](fun, x0, lower, settings or {})
