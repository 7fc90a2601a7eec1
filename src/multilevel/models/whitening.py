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
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from multilevel.errors import ArgumentError, ConvergenceWarning, DataError
from multilevel.models.threads import blas_threads_for
from multilevel.optim.backends import minimize_theta
from multilevel.optim.optsummary import OptSummary
from multilevel.structures.correlation import CorrelationStructure
from multilevel.structures.variance import VarComb, VarianceFunction

# restarts of BOBYQA at its optimum, and the least decrease of the criterion (-2 logLik)
# that earns another one
RESTARTS = 4
RESTART_GAIN = 1e-6


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
    variance : VarianceFunction, VarComb or None
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
    n_correlation : int
        How many of the parameters are the correlation's (the rest, first, the variance
        function's).
    sd : callable or None
        The variance function's sd multipliers as a function of its parameters, its columns
        read once (None without a variance function, or before a fitted-value one has fitted
        values).
    """

    variance: VarianceFunction | VarComb | None
    correlation: CorrelationStructure | None
    rows: Any = field(repr=False)
    members: list[np.ndarray] = field(repr=False)
    times: list[np.ndarray] = field(repr=False)
    start: np.ndarray
    classes: list[GroupClass] = field(default_factory=list, repr=False)
    fitted: np.ndarray | None = field(default=None, repr=False)
    n_correlation: int = 0
    sd: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False,
                                                            compare=False)

    @classmethod
    def build(cls, weights: VarianceFunction | VarComb | None,
              correlation: CorrelationStructure | None,
              rows: Any) -> Whitening:
        """Initialize the structures on ``rows``; a correlation without a group form is one
        group of all rows."""
        check_columns(weights, correlation, rows)
        var = weights.initialize_data(rows) if weights is not None else None
        var_start = var.start_from_data(rows) if var is not None else np.empty(0)
        members: list[np.ndarray] = []
        times: list[np.ndarray] = []
        classes: list[GroupClass] = []
        cor_start = np.empty(0)
        if correlation is not None:
            # the combinations of the grouping columns (nlme's nested a/b), in order of first
            # appearance
            group_codes = correlation.group_codes(rows)
            codes = group_codes if group_codes is not None else np.zeros(len(rows), dtype=int)
            # one stable sort instead of a scan of all rows per group (a missing group, code
            # -1, belongs to none)
            kept = np.flatnonzero(codes >= 0)
            order = kept[np.argsort(codes[kept], kind="stable")]
            members = np.split(order, np.cumsum(np.bincount(codes[kept]))[:-1])
            times = correlation.covariates(rows)
            check_times(correlation, times, rows, members)
            classes = group_classes(members, times)
            cor_start = correlation.initial(times)
        # the variance function's columns read once (not at every evaluation); one of the
        # fitted values gets its function with them (with_fitted)
        sd = (var.weights_function(rows) if var is not None and not var.uses_fitted
              else None)
        check_start(var, correlation, var_start, cor_start)
        return cls(variance=var, correlation=correlation, rows=rows, members=members,
                   times=times, start=np.concatenate([var_start, cor_start]), classes=classes,
                   n_correlation=cor_start.size, sd=sd)

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
        # the count kept from build: the correlation's starting values can cost a pass over
        # the data (spatial classes' smallest distance), too much for every evaluation
        return self.start.size - self.n_correlation

    def whiten(self, psi: np.ndarray, arrays: list[np.ndarray],
               ) -> tuple[list[np.ndarray], float]:
        """Each array's rows (a vector or a matrix with one row per model row) whitened at
        the unconstrained parameters ``psi``, and sum_g log|S_g C_g^{1/2}|."""
        nv = self.n_variance
        n = len(self.rows)
        if self.variance is None or (self.variance.uses_fitted and self.fitted is None):
            s = np.ones(n)  # nlme's first fit: weights 1 until there are fitted values
        else:
            s = (self.sd(psi[:nv]) if self.sd is not None
                 else self.variance.weights_from_data(psi[:nv], self.rows, self.fitted))
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
        var = (np.asarray(self.variance.natural_from_data(psi[:nv], self.rows))
               if self.variance is not None else np.empty(0))
        cor = (np.asarray(self.correlation.to_constrained(psi[nv:], self.times))
               if self.correlation is not None else np.empty(0))
        return var, cor

    @property
    def uses_fitted(self) -> bool:
        """Whether the variance function reads the model's fitted values (nlme's
        ``fitted(.)``): then the fit alternates with updates of them (:meth:`with_fitted`)."""
        return self.variance is not None and self.variance.uses_fitted

    def with_fitted(self, fitted: np.ndarray) -> Whitening:
        """A copy whose fitted-value variance function reads ``fitted`` (one per row)."""
        values = np.asarray(fitted, dtype=float)
        sd = (self.variance.weights_function(self.rows, values) if self.variance is not None
              else None)
        return replace(self, fitted=values, sd=sd)

    @property
    def dense_order(self) -> int:
        """The order of the largest correlation factor (0 without a correlation)."""
        return max((c.rows.shape[1] for c in self.classes), default=0)

    def optimize(self, deviance: Callable[[np.ndarray], float],
                 start: np.ndarray | None = None, lower: np.ndarray | None = None,
                 dense_order: int = 0) -> tuple[np.ndarray, OptSummary | None]:
        """Minimize ``deviance(x)`` (BOBYQA; a point where it cannot be evaluated counts as
        +Inf) from ``start`` (default: the structures' starting parameters) above ``lower``
        (default: none); the start itself when there is nothing to optimize.

        The evaluations run on one BLAS thread while the correlation factors and the caller's
        ``dense_order`` (the order of its own dense matrices) are small: on such sizes BLAS
        threads cost more than they gain, and on a busy machine far more (Wheat2's spatial
        gls: 36 s with OpenBLAS's default threads on 2 loaded cores, 0.5 s with one)."""
        with blas_threads_for(max(self.dense_order, dense_order)):
            return self._optimize(deviance, start, lower)

    def _optimize(self, deviance: Callable[[np.ndarray], float], start: np.ndarray | None,
                  lower: np.ndarray | None) -> tuple[np.ndarray, OptSummary | None]:
        x0 = self.start if start is None else np.asarray(start, dtype=float)
        if not x0.size:
            return x0, None
        bounds = np.full(x0.size, -np.inf) if lower is None else lower

        def objective(p: np.ndarray) -> float:
            try:
                return deviance(p)
            except (ArithmeticError, np.linalg.LinAlgError, ValueError):
                return math.inf

        opt = minimize_theta(objective, x0, bounds, "bobyqa", {}, f0=objective(x0))
        # BOBYQA restarted where it stopped, while that still gains: on badly scaled
        # directions (varExp's rate against sigma) its trust region shrinks too soon
        for _ in range(RESTARTS):
            again = minimize_theta(objective, opt.final, bounds, "bobyqa", {}, f0=opt.fmin)
            if again.fmin >= opt.fmin - RESTART_GAIN:
                break
            opt = again
        return opt.final, opt


def check_columns(weights: Any, correlation: CorrelationStructure | None, rows: Any) -> None:
    """Every column the structures' forms read is in the data (a DataError naming it)."""
    wanted: list[tuple[str, str]] = []
    if weights is not None:
        for part in getattr(weights, "components", (weights,)):  # a VarComb's, each
            wanted += [(c, f"variance function {part.form!r}") for c in part.column_names()]
    if correlation is not None:
        wanted += [(c, f"correlation form {correlation.form!r}")
                   for c in correlation.column_names()]
    for col, where in wanted:
        if col not in rows.columns:
            raise DataError(f"column {col!r} of the {where} is not in the data; add it or "
                            "change the form")


def check_times(correlation: CorrelationStructure, times: list[np.ndarray], rows: Any,
                members: list[np.ndarray]) -> None:
    """nlme's rules on each group's times (integer, distinct positions for corAR1, corARMA
    and corSymm; distinct times for corCAR1; no zero distances for the spatial classes),
    checked before any fitting: a DataError naming the column and the group."""
    form = correlation.parsed
    for t, idx in zip(times, members, strict=True):
        try:
            correlation.check_times(t)
        except DataError as exc:
            cols = " + ".join(form.covariates) or "the row order"
            label = "/".join(str(rows[g].iloc[idx[0]]) for g in form.groups)
            group = (f" in group {label!r} of {form.group_text!r}"
                     if form.groups and len(idx) else "")
            raise DataError(f"{exc} (time covariate {cols}{group})") from exc


def check_start(variance: Any, correlation: CorrelationStructure | None,
                var_start: np.ndarray, cor_start: np.ndarray) -> None:
    """Starting values that map to finite unconstrained parameters (the structures refuse
    most bad ones at construction; this catches what only the data reveal): an
    ArgumentError naming the structure, before any fitting."""
    for who, start in ((variance, var_start), (correlation, cor_start)):
        if who is not None and not np.all(np.isfinite(start)):
            raise ArgumentError(f"{type(who).__name__}(form={who.form!r}): the starting "
                                "values (value=) are outside the parameters' range on these "
                                "data; give values inside it or leave value= out.")


# nlme's gls/lme: the fitted values are refreshed until the parameters change by at most
# this much relatively (glsControl/lmeControl's tolerance and maxIter)
FITTED_TOLERANCE = 1e-6
FITTED_MAX_ITER = 50

Optimum = tuple[np.ndarray, OptSummary | None]
Step = Callable[[Whitening, np.ndarray], Optimum]
Estimate = Callable[[Whitening, np.ndarray], tuple[np.ndarray, np.ndarray]]


def alternate_fitted(structures: Whitening, start: np.ndarray, optimize: Step,
                     estimate: Estimate) -> tuple[Whitening, np.ndarray, OptSummary | None]:
    """The optimum of the parameters, with nlme's updates of a fitted-value variance function.

    ``optimize(structures, start)`` minimizes the criterion with the structures' fitted
    values held fixed and returns the optimum ``x`` (and its record); ``estimate(structures,
    x)`` returns the fitted values on the data's scale at ``x`` and the estimates that also
    count towards convergence (nlme: gls's coefficients; none for lme). Without a fitted-value
    variance function this is one optimization. With one, as nlme's ``gls`` and ``lme``: a
    first estimate at the start with variance weights 1 gives the first fitted values; then
    optimize, re-estimate, refresh the fitted values, until every parameter and watched
    estimate changes by at most ``FITTED_TOLERANCE`` relatively. Returns the structures with
    the fitted values of the last optimization, its optimum and record.
    """
    if not structures.uses_fitted:
        x, opt = optimize(structures, start)
        return structures, x, opt
    fitted, watched = estimate(structures, start)
    current = structures.with_fitted(fitted)
    x = np.asarray(start, dtype=float)
    for _ in range(FITTED_MAX_ITER):
        x_new, opt = optimize(current, x)
        fitted, watched_new = estimate(current, x_new)
        old, new = np.r_[watched, x], np.r_[watched_new, x_new]
        change = float(np.max(np.abs(old - new) / np.where(new == 0, 1.0, np.abs(new)),
                              initial=0.0))
        if change <= FITTED_TOLERANCE:
            return current, x_new, opt
        current, x, watched = current.with_fitted(fitted), x_new, watched_new
    warnings.warn(f"the fitted values of the variance function did not settle in "
                  f"{FITTED_MAX_ITER} updates (last relative change {change:.2g}); the "
                  "estimates are those of the last update", ConvergenceWarning, stacklevel=3)
    return current, x, opt
