"""The optimizer record kept on every fit (after MixedModels.jl's ``OptSummary``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class OptSummary:
    """What the optimizer did.

    Attributes
    ----------
    backend : str
        Optimizer name (``"bobyqa"``, ``"cobyqa"``, ``"lbfgsb"``).
    initial : numpy.ndarray
        Starting theta.
    final : numpy.ndarray
        Theta at the optimum.
    lower : numpy.ndarray
        Lower bounds of theta.
    fmin : float
        Objective at the optimum (deviance for ML, REML criterion for REML).
    feval : int
        Number of objective evaluations.
    elapsed : float
        Wall-clock seconds spent optimizing.
    return_code : str
        The backend's own termination status.
    converged : bool
        True when the backend reported success.
    messages : tuple of str
        Warnings and notes (boundary fit, convergence trouble), as lme4 reports them.
    fitlog : tuple of (numpy.ndarray, float)
        Every theta tried with its objective, in order.
    settings : dict
        Tolerances and limits passed to the backend.
    gradient, hessian : numpy.ndarray or None
        Finite-difference derivatives of the objective at ``final`` (lme4's ``derivs``),
        when computed.
    polished : bool
        True when a Newton step from the optimizer's answer lowered the objective enough to
        replace it (see :mod:`multilevel.optim.convergence`).
    restarts : int
        Times the optimizer was restarted from its best point because the fit failed the
        derivative check there (``feval`` and ``fitlog`` include the restarts).
    """

    backend: str
    initial: np.ndarray
    final: np.ndarray
    lower: np.ndarray
    fmin: float
    feval: int
    elapsed: float
    return_code: str
    converged: bool
    messages: tuple[str, ...] = ()
    fitlog: tuple[tuple[np.ndarray, float], ...] = field(default=(), repr=False)
    settings: dict[str, Any] = field(default_factory=dict)
    gradient: np.ndarray | None = field(default=None, repr=False)
    hessian: np.ndarray | None = field(default=None, repr=False)
    polished: bool = False
    restarts: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (the fit log as lists; a non-finite objective value, logged
        where the objective could not be evaluated, as None: strict JSON has no Infinity)."""
        return {
            "backend": self.backend,
            "initial": self.initial.tolist(),
            "final": self.final.tolist(),
            "lower": [None if not np.isfinite(v) else float(v) for v in self.lower],
            "fmin": _finite_or_none(self.fmin),
            "feval": self.feval,
            "elapsed": self.elapsed,
            "return_code": self.return_code,
            "converged": self.converged,
            "messages": list(self.messages),
            "settings": {k: v.tolist() if isinstance(v, np.ndarray) else v
                         for k, v in self.settings.items()},
            "gradient": None if self.gradient is None else self.gradient.tolist(),
            "hessian": None if self.hessian is None else self.hessian.tolist(),
            "polished": self.polished,
            "restarts": self.restarts,
            "fitlog": [[th.tolist(), _finite_or_none(f)] for th, f in self.fitlog],
        }


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
