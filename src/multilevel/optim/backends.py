"""Derivative-free minimization of the profiled objective over theta, by backend name.

``bobyqa`` (NLopt's LN_BOBYQA with lme4's tolerances) is the default, as in lme4's
``nloptwrap``; ``cobyqa`` and ``lbfgsb`` come from scipy. Every backend is a plain function
``(fun, x0, lower, settings) -> OptSummary``.

Everything handed to the compiled optimizers is checked first (:func:`check_settings`,
:func:`minimize_theta`): a NaN start makes NLopt throw and then corrupt the heap (the process
dies with "double free or corruption"), so no non-finite or out-of-bounds number ever reaches
it. The objective itself may still be non-finite at a trial point (a factorization that
overflows); the optimizer then sees a finite penalty instead (:class:`_Recorder`).
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from multilevel.errors import NumericalError, OptimizerError
from multilevel.optim.optsummary import OptSummary

Objective = Callable[[np.ndarray], float]

# lme4's nloptwrap (lme4 1.1-31) sets xtol_abs = ftol_abs = 1e-8 and maxeval 1e5 and leaves
# the rest at nloptr's defaults, of which xtol_rel = 1e-4 matters (nloptr 2.0.3).
BOBYQA_DEFAULTS: dict[str, Any] = {"xtol_abs": 1e-8, "ftol_abs": 1e-8, "xtol_rel": 1e-4,
                                   "ftol_rel": 0.0, "maxeval": 100_000}

# The settings each backend accepts, and which of them are counts (positive integers); the
# others are tolerances or steps (finite, non-negative numbers; an initial step may also be
# one per parameter). scipy's options are those of scipy.optimize.minimize for the method.
_COUNTS = {"maxeval", "maxfev", "maxfun", "maxiter", "maxcor", "maxls", "iprint"}
_FLAGS = {"disp", "scale"}
KNOWN_SETTINGS: dict[str, frozenset[str]] = {
    "bobyqa": frozenset({"xtol_abs", "ftol_abs", "xtol_rel", "ftol_rel", "maxeval",
                         "initial_step"}),
    "cobyqa": frozenset({"maxfev", "maxiter", "f_target", "feasibility_tol",
                         "initial_tr_radius", "final_tr_radius", "scale", "disp"}),
    "lbfgsb": frozenset({"maxcor", "ftol", "gtol", "eps", "maxfun", "maxiter", "maxls",
                         "iprint", "disp", "finite_diff_rel_step"}),
}


class _Recorder:
    """Wraps the objective to count evaluations, keep the fit log and shield the optimizer
    from non-finite values.

    A NaN or +-Inf objective (lme4 treats them all as +Inf) is logged as +Inf, and the
    optimizer is given a finite penalty above every value seen so far instead. Measured on a
    quadratic with an infeasible region (40 starts): NLopt's BOBYQA returned a wrong optimum
    from 24 of them when given +Inf, NaN or 1e300 (its quadratic model overflows), and the
    right one from all 40 with this penalty. The start is evaluated before the optimizer runs
    (it must be finite); the optimizer's own first call at the start reuses that value.
    """

    def __init__(self, fun: Objective, x0: np.ndarray, f0: float) -> None:
        self.fun = fun
        self.log: list[tuple[np.ndarray, float]] = [(np.array(x0, dtype=float), f0)]
        self._pending_start: np.ndarray | None = self.log[0][0]
        self._worst = f0
        # set when the objective itself raised, so that its exception is not mistaken for
        # one of NLopt's (NLopt re-raises a callback's exception unchanged)
        self.raised = False

    def __call__(self, x: np.ndarray) -> float:
        if self._pending_start is not None:
            start, self._pending_start = self._pending_start, None
            if np.array_equal(x, start):
                return self.log[0][1]
        try:
            value = float(self.fun(np.asarray(x, dtype=float)))
        except BaseException:
            self.raised = True
            raise
        if not math.isfinite(value):
            self.log.append((np.array(x, dtype=float), math.inf))
            return self._worst + abs(self._worst) + 1.0
        self.log.append((np.array(x, dtype=float), value))
        if value > self._worst:
            self._worst = value
        return value

    def best(self) -> tuple[np.ndarray, float]:
        i = int(np.argmin([v for _, v in self.log]))
        return self.log[i]


def _bobyqa(fun: Objective, x0: np.ndarray, lower: np.ndarray,
            settings: dict[str, Any], f0: float) -> OptSummary:
    import nlopt

    opts = {**BOBYQA_DEFAULTS, **settings}
    rec = _Recorder(fun, x0, f0)
    opt = nlopt.opt(nlopt.LN_BOBYQA, len(x0))
    opt.set_min_objective(lambda x, grad: rec(x))
    opt.set_lower_bounds(np.where(np.isfinite(lower), lower, -np.inf))
    opt.set_xtol_abs(float(opts["xtol_abs"]))
    opt.set_ftol_abs(float(opts["ftol_abs"]))
    opt.set_xtol_rel(float(opts["xtol_rel"]))
    opt.set_ftol_rel(float(opts["ftol_rel"]))
    opt.set_maxeval(int(opts["maxeval"]))
    if "initial_step" in opts:
        opt.set_initial_step(np.broadcast_to(
            np.asarray(opts["initial_step"], dtype=float), x0.shape).copy())
    names = {1: "NLOPT_SUCCESS", 2: "NLOPT_STOPVAL_REACHED", 3: "NLOPT_FTOL_REACHED",
             4: "NLOPT_XTOL_REACHED", 5: "NLOPT_MAXEVAL_REACHED", 6: "NLOPT_MAXTIME_REACHED"}
    start = time.perf_counter()
    try:
        opt.optimize(np.array(x0, dtype=float))
        code = opt.last_optimize_result()
        return_code, converged = names.get(code, str(code)), code in (1, 2, 3, 4)
    except Exception as exc:  # NLopt's own: RoundoffLimited, ForcedStop, C++ errors
        if rec.raised:
            raise
        # as lme4's nloptwrap: keep the best point evaluated and report that it stopped early
        return_code = f"NLopt stopped early: {type(exc).__name__}: {exc}".rstrip(": ")
        converged = False
    elapsed = time.perf_counter() - start
    x, f = rec.best()
    return OptSummary(backend="bobyqa", initial=np.array(x0, dtype=float), final=x.copy(),
                      lower=lower, fmin=f, feval=len(rec.log), elapsed=elapsed,
                      return_code=return_code, converged=converged, fitlog=tuple(rec.log),
                      settings=opts)


def _scipy(method: str) -> Callable[[Objective, np.ndarray, np.ndarray, dict[str, Any], float],
                                    OptSummary]:
    def run(fun: Objective, x0: np.ndarray, lower: np.ndarray,
            settings: dict[str, Any], f0: float) -> OptSummary:
        from scipy.optimize import Bounds, minimize  # lazily: ~0.1 s, only these backends

        rec = _Recorder(fun, x0, f0)
        start = time.perf_counter()
        res = minimize(rec, np.array(x0, dtype=float), method=method,
                       bounds=Bounds(lower, np.full_like(lower, np.inf)),
                       options=dict(settings))
        elapsed = time.perf_counter() - start
        x, f = rec.best()
        return OptSummary(backend=method.lower().replace("-", ""),
                          initial=np.array(x0, dtype=float), final=x.copy(), lower=lower,
                          fmin=f, feval=len(rec.log), elapsed=elapsed,
                          return_code=str(res.message), converged=bool(res.success),
                          fitlog=tuple(rec.log), settings=dict(settings))
    return run


BACKENDS: dict[str, Callable[[Objective, np.ndarray, np.ndarray, dict[str, Any], float],
                             OptSummary]] = {
    "bobyqa": _bobyqa,
    "cobyqa": _scipy("COBYQA"),
    "lbfgsb": _scipy("L-BFGS-B"),
}


def backend_key(optimizer: Any) -> str:
    """The backend's key for an optimizer name (case, '-' and '_' ignored).

    Raises
    ------
    OptimizerError
        When ``optimizer`` is not a string naming a backend.
    """
    choices = ", ".join(repr(k) for k in sorted(BACKENDS))
    if not isinstance(optimizer, str):
        raise OptimizerError(f"optimizer must be the name of a backend ({choices}), got "
                             f"{optimizer!r} of type {type(optimizer).__name__}")
    key = optimizer.lower().replace("-", "").replace("_", "")
    if key not in BACKENDS:
        raise OptimizerError(f"unknown optimizer {optimizer!r}; choose one of {choices}")
    return key


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_settings(optimizer: str, settings: Any) -> dict[str, Any]:
    """Validate ``optimizer_settings`` for a backend before anything reaches it.

    Returns
    -------
    dict
        A copy of the settings.

    Raises
    ------
    OptimizerError
        For a non-dict, an unknown key, a count that is not a positive integer, or a tolerance
        that is not a finite non-negative number.
    """
    key = backend_key(optimizer)
    if settings is None:
        return {}
    if not isinstance(settings, dict):
        raise OptimizerError(f"optimizer_settings must be a dict of {key} options, got "
                             f"{type(settings).__name__}")
    known = KNOWN_SETTINGS[key]
    out: dict[str, Any] = {}
    for name, value in settings.items():
        if name not in known:
            raise OptimizerError(f"optimizer_settings has {name!r}, which the {key} optimizer "
                                 f"does not take; its settings are {', '.join(sorted(known))}")
        where = f"optimizer_settings[{name!r}]"
        if name in _FLAGS:
            if not isinstance(value, bool | np.bool_):
                raise OptimizerError(f"{where} must be True or False, got {value!r}")
        elif name in _COUNTS:
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or (
                    value < (0 if name == "iprint" else 1)):
                raise OptimizerError(f"{where} must be a positive integer, got {value!r}")
            value = int(value)
        elif name == "initial_step":
            step = (np.asarray(value, dtype=float)
                    if isinstance(value, list | tuple | np.ndarray) or _is_number(value)
                    else None)
            if step is None or step.ndim > 1 or not np.all(np.isfinite(step)) or np.any(
                    step <= 0):
                raise OptimizerError(f"{where} must be a positive finite number or one per "
                                     f"theta parameter, got {value!r}")
            value = step
        elif name == "finite_diff_rel_step" and value is None:
            pass
        elif not _is_number(value) or not math.isfinite(value) or value < 0:
            raise OptimizerError(f"{where} must be a finite non-negative number, got "
                                 f"{value!r}")
        out[name] = value
    return out


def check_start(x0: Any, lower: np.ndarray, names: list[str] | None = None) -> np.ndarray:
    """``x0`` as a float vector of the right length, finite and within the bounds.

    Raises
    ------
    OptimizerError
        Naming ``start`` and the offending parameter.
    """
    labels = names or [f"theta[{i}]" for i in range(lower.size)]
    if isinstance(x0, str | bytes) or x0 is None:
        raise OptimizerError(f"start must be {lower.size} numbers, got {x0!r}")
    try:
        arr = np.asarray(x0)
    except (TypeError, ValueError) as exc:  # ragged nested lists
        raise OptimizerError(f"start must be {lower.size} numbers (one per theta parameter: "
                             f"{', '.join(labels)}), got {x0!r}") from exc
    if arr.dtype.kind not in "iuf" or arr.ndim != 1:
        raise OptimizerError(f"start must be a flat sequence of {lower.size} numbers (one per "
                             f"theta parameter: {', '.join(labels)}), got {x0!r}")
    arr = arr.astype(float)
    if arr.shape != lower.shape:
        raise OptimizerError(f"start must have {lower.size} values (one per theta parameter: "
                             f"{', '.join(labels)}), got {arr.size}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        i = int(bad[0])
        raise OptimizerError(f"start value {arr[i]} for {labels[i]} is not a finite number")
    below = np.flatnonzero(arr < lower)
    if below.size:
        i = int(below[0])
        raise OptimizerError(f"start value {arr[i]} for {labels[i]} is below its lower "
                             f"bound {lower[i]}")
    return arr


def minimize_theta(fun: Objective, x0: np.ndarray, lower: np.ndarray,
                   optimizer: str = "bobyqa", settings: dict[str, Any] | None = None,
                   f0: float | None = None) -> OptSummary:
    """Minimize ``fun`` over theta >= lower with the named backend.

    Parameters
    ----------
    fun : callable
        The objective; it may return NaN or +-Inf at trial points (treated as +Inf).
    x0 : array-like
        Starting point: finite and within the bounds.
    lower : numpy.ndarray
        Lower bounds (-Inf where unbounded).
    optimizer : str
        Backend name (see ``BACKENDS``).
    settings : dict, optional
        Backend options (validated by :func:`check_settings`).
    f0 : float, optional
        ``fun(x0)`` when the caller has already evaluated it.

    Raises
    ------
    OptimizerError
        For an unknown backend name, bad settings, or a start that is not finite, of the
        wrong length or outside the bounds.
    NumericalError
        When the objective is not finite at the start.
    """
    key = backend_key(optimizer)
    opts = check_settings(key, settings)
    lower = np.asarray(lower, dtype=float)
    x0 = check_start(x0, lower)
    if f0 is None:
        f0 = float(fun(x0))
    if not math.isfinite(f0):
        raise NumericalError(f"the objective is {f0} at the starting values {x0.tolist()}; "
                             "the data are probably on an extreme scale: rescale them")
    return BACKENDS[key](fun, x0, lower, opts, f0)
