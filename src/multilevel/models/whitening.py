"""nlme's residual variance function and correlation structure on a model's rows, as ``gls``
and ``lme`` both use them: the structures' starting parameters, the whitening of the rows at
any parameters, and the optimization of those parameters around an inner fit.

With Var(e_g) = sigma^2 S_g C_g S_g in each correlation group g (S_g the variance function's sd
multipliers, C_g the correlation matrix), multiplying a group's rows by F_g S_g^-1
(F_g' F_g = C_g^-1, nlme's ``corFactor``) leaves independent errors of variance sigma^2; the
log-likelihood of the original data is that of the whitened data minus
sum_g log|S_g C_g^{1/2}| (the Jacobian).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from multilevel.errors import ArgumentError
from multilevel.optim.backends import minimize_theta
from multilevel.optim.optsummary import OptSummary
from multilevel.structures.correlation import CorrelationStructure
from multilevel.structures.variance import VarianceFunction


def refuse_fitted_variance(weights: Any, who: str) -> None:
    """Variance functions of the fitted values need the fit inside the structure's
    optimization; refused until they are written."""
    if weights is not None and getattr(getattr(weights, "parsed", None), "covariate",
                                       None) == "fitted":
        raise ArgumentError(f"{who}: variance functions of the fitted values are not "
                            "supported yet; use a covariate form such as '~ age'")


@dataclass(frozen=True)
class GroupClass:
    """Correlation groups with the same covariate values (balanced designs: all of them),
    which share one factor F: ``rows`` is (groups, size), each row a group's positions."""

    times: np.ndarray
    rows: np.ndarray


def group_classes(members: list[np.ndarray], times: list[np.ndarray]) -> list[GroupClass]:
    """The groups gathered by equal covariates, classes in order of first appearance."""
    found: dict[bytes, list[int]] = {}
    for g, t in enumerate(times):
        arr = np.ascontiguousarray(t, dtype=float)
        found.setdefault(arr.tobytes() + str(arr.shape).encode(), []).append(g)
    return [GroupClass(times=np.asarray(times[gs[0]], dtype=float),
                       rows=np.stack([members[g] for g in gs]))
            for gs in found.values()]


@dataclass(frozen=True)
class Whitening:
    """The structures initialized on ``rows`` (the model's rows, in its order).

    Attributes
    ----------
    variance : VarianceFunction or None
    correlation : CorrelationStructure or None
        With its grouping column set (``gls`` and ``lme`` decide which).
    members : list of numpy.ndarray
        The row positions of each correlation group, groups in order of appearance.
    start : numpy.ndarray
        The unconstrained starting parameters: the variance function's, then the
        correlation's.
    classes : list of GroupClass
        The groups gathered by equal covariates; whitening applies one factor to all groups
        of a class at once.
    """

    variance: VarianceFunction | None
    correlation: CorrelationStructure | None
    rows: Any = field(repr=False)
    members: list[np.ndarray] = field(repr=False)
    times: list[np.ndarray] = field(repr=False)
    start: np.ndarray
    classes: list[GroupClass] = field(default_factory=list, repr=False)

    @classmethod
    def build(cls, weights: VarianceFunction | None, correlation: CorrelationStructure | None,
              rows: Any) -> Whitening:
        """Initialize the structures on ``rows``; a correlation without a group form is one
        group of all rows."""
        var = weights.initialize_data(rows) if weights is not None else None
        var_start = var.initial(var.columns(rows, np.zeros(1))[1]) if var is not None else (
            np.empty(0))
        members: list[np.ndarray] = []
        times: list[np.ndarray] = []
        classes: list[GroupClass] = []
        cor_start = np.empty(0)
        if correlation is not None:
            group = correlation.parsed.group
            codes = (pd.factorize(rows[group], sort=False)[0] if group
                     else np.zeros(len(rows), dtype=int))
            # one stable sort instead of a scan of all rows per group (a missing group, code
            # -1, belongs to none)
            kept = np.flatnonzero(codes >= 0)
            order = kept[np.argsort(codes[kept], kind="stable")]
            members = np.split(order, np.cumsum(np.bincount(codes[kept]))[:-1])
            times = correlation.covariates(rows)
            classes = group_classes(members, times)
            cor_start = correlation.initial(times)
        return cls(variance=var, correlation=correlation, rows=rows, members=members,
                   times=times, start=np.concatenate([var_start, cor_start]), classes=classes)

    def constant_within_groups(self, values: np.ndarray) -> bool:
        """Whether ``values`` (one per row) take one value within every correlation group."""
        if not self.members:
            return True
        order = np.concatenate(self.members)
        v = np.asarray(values)[order]
        starts = np.r_[0, np.cumsum([m.size for m in self.members])[:-1]]
        return bool(np.all(np.minimum.reduceat(v, starts) == np.maximum.reduceat(v, starts)))

    @property
    def n_variance(self) -> int:
        """How many of the parameters are the variance function's."""
        return self.start.size - (self.correlation.initial(self.times).size
                                  if self.correlation is not None else 0)

    def whiten(self, psi: np.ndarray, arrays: list[np.ndarray],
               ) -> tuple[list[np.ndarray], float]:
        """Each array's rows (a vector or a matrix with one row per model row) whitened at
        the unconstrained parameters ``psi``, and sum_g log|S_g C_g^{1/2}|."""
        nv = self.n_variance
        n = len(self.rows)
        s = (self.variance.weights_from_data(psi[:nv], self.rows) if self.variance is not None
             else np.ones(n))
        out = [a / (s[:, None] if a.ndim == 2 else s) for a in arrays]
        logdet = float(np.log(s).sum())
        if self.correlation is not None:
            params = self.correlation.to_constrained(psi[nv:], self.times)
            factors = self.correlation.factors(params, [c.times for c in self.classes])
            # all arrays as the columns of one matrix: one gather and one scatter per class
            widths = [1 if a.ndim == 1 else a.shape[1] for a in out]
            stacked = np.column_stack(out)
            for c, F in zip(self.classes, factors, strict=True):
                # every group of the class at once: (n_c x n_c) @ (groups, n_c, columns)
                stacked[c.rows] = np.matmul(F, stacked[c.rows])
                # F need not be triangular (corCompSymm's is not)
                logdet -= c.rows.shape[0] * float(np.linalg.slogdet(F)[1])
            cuts = np.cumsum(widths)[:-1]
            out = [part[:, 0] if a.ndim == 1 else part
                   for a, part in zip(out, np.split(stacked, cuts, axis=1), strict=True)]
        return out, logdet

    def natural(self, psi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The variance and correlation parameters on nlme's natural scale."""
        nv = self.n_variance
        var = (np.asarray(self.variance.to_constrained(psi[:nv])) if self.variance is not None
               else np.empty(0))
        cor = (np.asarray(self.correlation.to_constrained(psi[nv:], self.times))
               if self.correlation is not None else np.empty(0))
        return var, cor

    def optimize(self, deviance: Callable[[np.ndarray], float],
                 ) -> tuple[np.ndarray, OptSummary | None]:
        """Minimize ``deviance(psi)`` over the unconstrained parameters (BOBYQA; a point where
        it cannot be evaluated counts as +Inf); the start itself when there is none."""
        if not self.start.size:
            return self.start, None

        def objective(p: np.ndarray) -> float:
            try:
                return deviance(p)
            except (ArithmeticError, np.linalg.LinAlgError, ValueError):
                return math.inf

        opt = minimize_theta(objective, self.start, np.full(self.start.size, -np.inf),
                             "bobyqa", {}, f0=objective(self.start))
        return opt.final, opt
