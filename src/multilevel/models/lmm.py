"""The linear mixed model: y = X beta + Z b + e,  b = Lambda(theta) u,  u ~ N(0, sigma^2 I),
e ~ N(0, sigma^2 W^-1).

:class:`ModelStages` is the model, not the result: it holds the design and the blocks of
A = [Z X y]' W [Z X y] and evaluates the profiled objective for any theta. The stages are
public, as in lme4's modular interface (``lFormula -> mkLmerDevfun -> optimizeLmer``):
``ModelStages(...)`` is the formula and design stage, ``.objective`` the deviance function,
``.optimize()`` the optimizer, and ``.replace(...)`` the same model with some parts changed (the
one path of every refit). The result layer sits above this module, so the ``fit()`` that
returns an immutable :class:`~multilevel.results.lmm_result.LinearMixedModelResult` is added by
the public subclass :class:`multilevel.api.LinearMixedModel`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import replace
from functools import cached_property
from typing import Any, Self

import numpy as np

from multilevel.covariance.relative_factor import ThetaLayout
from multilevel.data.design import ModelDesign, build_design
from multilevel.errors import (
    ArgumentError,
    DataError,
    NumericalError,
    OptimizerError,
)
from multilevel.formula.parser import ParsedFormula
from multilevel.linalg.blocked_cholesky import (
    TILED_ORDER,
    BlockedFactor,
    NotPositiveDefinite,
    factorize,
    profiled_terms,
)
from multilevel.linalg.cross_products import CrossProducts, xy_cross_products
from multilevel.models.data_scales import check_scales, scale_diagnosis, warn_scales
from multilevel.models.fit_cost import EvaluationProgress, evaluation_cost
from multilevel.models.memory import check_fit_memory, gram_products
from multilevel.models.predictor import Predictor, ReBlock
from multilevel.models.replacing import KEEP, changed_design, checked_response
from multilevel.models.response import GaussianResponse
from multilevel.models.start import (
    anova_applies,
    anova_start,
    initial_step,
    intercept_constant,
    moments_start,
)
from multilevel.models.threads import blas_threads_for
from multilevel.optim.backends import backend_key, check_settings, check_start, minimize_theta
from multilevel.optim.convergence import check_boundary, check_derivatives
from multilevel.optim.newton import newton_fd
from multilevel.optim.optsummary import OptSummary

# A response whose residual sum of squares on X is below this share of its sum of squares is
# reproduced exactly by the fixed effects (see ModelStages._check_response_not_reproduced).
REPRODUCED_RSS = 1e-12

# The fitting settings as checked: reml, optimizer, optimizer_settings, calc_derivs.
_Settings = tuple[bool, str, dict[str, Any], bool]






class ModelStages:
    """A linear mixed model ready to be fitted: design, cross-products and objective.

    Parameters
    ----------
    formula : str
        lme4 formula, e.g. ``"Reaction ~ Days + (Days | Subject)"``.
    data : pandas.DataFrame or polars.DataFrame
    reml : bool, default True
        Fit by REML (lme4's default) or by maximum likelihood.
    weights : array-like or column name, optional
        Prior weights: observation i has residual variance sigma^2 / w_i.
    offset : array-like or column name, optional
        Known term added to the linear predictor.
    optimizer : {"bobyqa", "cobyqa", "lbfgsb"}
    start : None, "lme4", "anova" or array-like
        Starting theta (lme4's order). ``"lme4"``: identity relative factors, lme4's start.
        ``"anova"``: one-way ANOVA estimates, for models whose random effects are all scalar
        (see :mod:`multilevel.models.start`). None (default): ``"anova"`` when every term is
        scalar, else ``"lme4"``. The optimum is the same; the number of evaluations is not.
    optimizer_settings : dict, optional
        Passed to the backend (e.g. ``{"maxeval": 1000}`` for bobyqa).
    calc_derivs : bool, default True
        Check convergence at the optimum with finite-difference derivatives (n (n + 3) / 2
        extra evaluations), as lme4's ``calc.derivs``; see :mod:`multilevel.optim.convergence`.

    Attributes
    ----------
    design : ModelDesign
    layout : ThetaLayout
    blocks : list of ReBlock
    A : CrossProducts
    """

    # Show the cost notice and a progress bar while optimizing: None shows them for fits
    # whose evaluations are expensive (see multilevel.models.fit_cost), True always, False
    # never (ml.lmer's progress argument sets it).
    progress: bool | None = None
    # Called with each objective value while a progress bar is shown.
    _on_evaluation: Callable[[float], None] | None = None

    def __init__(self, formula: str | ParsedFormula, data: Any, reml: bool = True,
                 weights: Any = None, offset: Any = None, optimizer: str = "bobyqa",
                 start: Any = None, optimizer_settings: dict[str, Any] | None = None,
                 calc_derivs: bool = True, *, design: ModelDesign | None = None) -> None:
        # arguments are checked before any work on the data
        self._set_settings(_checked_settings(reml, optimizer, optimizer_settings, calc_derivs,
                                             start))
        # one BLAS thread for the construction: its dense work is on p x p matrices and
        # row-wise passes, where threads only synchronize (see multilevel.models.threads)
        with blas_threads_for(0):
            self.design = design if design is not None else build_design(formula, data, weights,
                                                                         offset)
            # the caller's data, by reference (no copy), for procedures that refit other formulas
            # on the same data (stepwise selection)
            self.data = data
            self._weights_source = weights
            self._offset_source = offset
            self.predictor = Predictor(self.design)
            self.blocks: list[ReBlock] = self.predictor.blocks
            self.layout: ThetaLayout = self.predictor.layout
            terms = self.design.terms
            self.start: np.ndarray | str | None = self._checked_start(start)
            w = self.design.weights
            self._sqrt_w = None if w is None else np.sqrt(w)
            self._x_shift_is_intercept = np.all(self.design.X == 1.0, axis=0)
            self._x_shift = _centering(self.design.X, w, self._x_shift_is_intercept)
            self._log_det_w = 0.0 if w is None else float(np.log(w[w > 0]).sum())
            self.response = GaussianResponse(self.design.nobs, int(self.design.X.shape[1]),
                                             self._log_det_w)
            if self.nobs <= self.n_fixed:
                raise DataError(
                    f"{self.nobs} observation(s) are used for {self.n_fixed} fixed-effects "
                    f"coefficient(s) ({', '.join(self.design.fixed_names)}): no degrees of freedom "
                    "are left for the residual variance. Use more data or fewer fixed effects")
            check_scales(self.design, self._response_shift()[0])
            self.A: CrossProducts = self.predictor.cross_products(self._xy(), self._sqrt_w)
            self._check_finite_cross_products()
            self._check_response_not_reproduced()
            warn_scales(self.design)
            check_fit_memory(self.A, self.nobs, self.n_fixed + 1 + sum(b.k for b in self.blocks),
                             [terms[b.terms[0]].factor.name for b in self.blocks])

    # -- numerical trouble ------------------------------------------------------------------
    def _check_finite_cross_products(self) -> None:
        """Refuse data whose cross-products overflow (or are NaN): the likelihood cannot be
        evaluated, and no optimizer may be handed the result."""
        A = self.A
        if (np.all(np.isfinite(A.xy)) and all(np.all(np.isfinite(d)) for d in A.diag)
                and all(np.all(np.isfinite(r)) for r in A.xy_re)):
            return
        raise NumericalError(f"the cross-products of the data overflow floating point, so the "
                             f"likelihood cannot be evaluated: {self.scale_diagnosis()}")

    def _check_response_not_reproduced(self) -> None:
        """Refuse a response that the fixed effects reproduce exactly (the response, or a
        transform of it, also a predictor): no variation is left for the random effects or
        the residual, and every criterion evaluation would divide by a zero residual.

        [X y]'W[X y] is already at hand: the last diagonal entry of its Cholesky factor is the
        residual sum of squares of y on X. The threshold (a residual SD of 1e-6 of the
        response's) is far above the rounding of the cross-products (~1e-16 of y'y) and far
        below any real data's residual share."""
        xy = self.A.xy
        total = float(xy[-1, -1])
        try:
            rss = float(np.linalg.cholesky(xy)[-1, -1]) ** 2
        except np.linalg.LinAlgError:
            rss = 0.0
        if total > 0 and rss > REPRODUCED_RSS * total:
            return
        raise DataError(
            f"the fixed effects ({', '.join(self.design.fixed_names)}) reproduce the response "
            f"{self.design.response_name!r} exactly: no variation is left for the random "
            "effects or the residual. Is the response (or a transform of it) also a "
            "predictor? Remove it from the right-hand side")

    def scale_diagnosis(self) -> str:
        """Which variables are on an extreme scale, and what to do: the tail of every
        :class:`~multilevel.errors.NumericalError` raised for these data."""
        return scale_diagnosis(self.design, self._response_shift()[0])

    # -- response ---------------------------------------------------------------------------
    def _response_shift(self) -> tuple[np.ndarray, float]:
        """The response as the cross-products see it (offset removed) and the constant
        subtracted from it (its weighted mean when X has an intercept, else 0)."""
        y = self.design.y if self.design.offset is None else self.design.y - self.design.offset
        if self._x_shift is None:
            return y, 0.0
        return y, float(np.average(y, weights=self.design.weights))

    def _xy(self) -> np.ndarray:
        """[X y] as the cross-products see it: offset removed and, when X has an intercept,
        the other columns and y centred (see :func:`_centering`)."""
        y, y_shift = self._response_shift()
        if self._x_shift is None:
            return np.column_stack([self.design.X, y])
        return np.column_stack([self.design.X - self._x_shift, y - y_shift])

    def fixed_transform(self) -> tuple[np.ndarray, np.ndarray]:
        """``(T, c)`` with beta = T @ beta_centred + c, mapping the coefficients of the
        centred problem back to the user's X (identity and zero when nothing is centred)."""
        p = self.n_fixed
        if self._x_shift is None:
            return np.eye(p), np.zeros(p)
        icol = int(np.flatnonzero(self._x_shift_is_intercept)[0])
        T = np.eye(p)
        T[icol, :] -= self._x_shift
        T[icol, icol] = 1.0
        c = np.zeros(p)
        c[icol] = self._response_shift()[1]
        return T, c

    # -- settings and copies ----------------------------------------------------------------
    def _set_settings(self, settings: _Settings) -> None:
        self.reml, self.optimizer, self.optimizer_settings, self.calc_derivs = settings

    def _checked_start(self, start: Any) -> np.ndarray | str | None:
        """``start`` checked against this model's theta layout (a strategy name passes)."""
        if start is None or isinstance(start, str):
            return start
        return check_start(start, self.layout.lower_bounds(), self.layout.names())

    def replace(self, *, formula: str | ParsedFormula | None = None, data: Any = KEEP,
                design: ModelDesign | None = None, y: Any = None, reml: bool | None = None,
                weights: Any = KEEP, offset: Any = KEEP, optimizer: str | None = None,
                optimizer_settings: Any = KEEP, start: Any = KEEP,
                calc_derivs: bool | None = None) -> Self:
        """A new, unfitted model like this one with the named parts replaced: the one way
        every refit (model comparison, stepwise selection, profiles, bootstrap, power) builds
        its model, so that a setting not named is never dropped.

        Every argument left out keeps this model's value. Only what a change needs is redone:
        settings alone (``reml``, ``optimizer``, ``optimizer_settings``, ``start``,
        ``calc_derivs``) share the design and the cross-products; a new response ``y`` shares
        the design and the random-effects blocks of the cross-products and recomputes only the
        [X y] parts; a new ``formula``, ``data``, ``weights`` or ``offset`` builds the design
        again from the data (the model's own data unless ``data`` is given).

        Parameters
        ----------
        formula : str or ParsedFormula, optional
            A new lme4 formula, built on the model's data (or ``data``).
        data : pandas.DataFrame or polars.DataFrame, optional
            New data for the formula. With ``design``, the data the new model keeps (pass
            ``data=None`` when the design's rows are no longer the data's rows).
        design : ModelDesign, optional
            A design built elsewhere (e.g. with a changed fixed-effects matrix or other rows);
            not together with ``formula``, ``weights`` or ``offset``, which build one.
        y : array-like, optional
            A new response, one value per observation used by the model (``nobs``).
        reml : bool, optional
        weights, offset : array-like, column name or None, optional
            New prior weights or offset; None removes them. An offset in the formula
            (``offset(...)``) stays part of the formula.
        optimizer : str, optional
            A new backend; the kept ``optimizer_settings`` must apply to it (else pass new
            ones).
        optimizer_settings : dict or None, optional
            None or ``{}`` clears them.
        start : None, "lme4", "anova" or array-like, optional
            Starting theta. When left out, theta values are kept only while the theta layout
            (the random-effects terms) is unchanged; otherwise the default start is used.
        calc_derivs : bool, optional

        Returns
        -------
        ModelStages
            A new model of the same class; this one is not changed.

        Raises
        ------
        ArgumentError
            ``design`` together with ``formula``, ``weights`` or ``offset``, or a new design to
            build when the model keeps no data.
        DataError
            A response ``y`` of the wrong length.
        OptimizerError
            Settings that do not apply (as when building the model).

        Examples
        --------
        >>> ml_model = model.replace(reml=False)                  # doctest: +SKIP
        >>> sim_model = model.replace(y=y_new, calc_derivs=False)  # doctest: +SKIP
        >>> smaller = model.replace(formula="Reaction ~ Days + (1 | Subject)")  # doctest: +SKIP
        """
        settings = _checked_settings(
            self.reml if reml is None else reml,
            self.optimizer if optimizer is None else optimizer,
            self.optimizer_settings if optimizer_settings is KEEP else optimizer_settings,
            self.calc_derivs if calc_derivs is None else calc_derivs,
            None if start is KEEP else start)
        change = changed_design(self, formula, data, design, weights, offset, None)
        design = change.design
        new_data, new_weights, new_offset = change.data, change.weights, change.offset
        if design is not None:
            if y is not None:
                design = _replace(design, y=checked_response(y, design))
            new = type(self)(design.formula, new_data, reml=settings[0],
                             weights=new_weights, offset=new_offset, optimizer=settings[1],
                             start=None if start is KEEP else start,
                             optimizer_settings=settings[2], calc_derivs=settings[3],
                             design=design)
        else:
            # the same design (or the same with a new response): share the blocks of A
            new = object.__new__(type(self))
            new.__dict__.update(self.__dict__)
            new._set_settings(settings)
            new.data = new_data
            if y is not None:
                new.design = _replace(self.design, y=checked_response(y, self.design))
                xy_re, xy = xy_cross_products([b.codes for b in self.blocks],
                                              [b.Z for b in self.blocks], self.A.n_levels,
                                              new._xy(), self._sqrt_w)
                new.A = replace(self.A, xy_re=xy_re, xy=xy)
                new._check_finite_cross_products()
            if start is not KEEP:
                new.start = new._checked_start(start)
            return new
        if start is KEEP and (not isinstance(self.start, np.ndarray)
                               or new.layout.names() == self.layout.names()):
            # theta values are the old model's parameters: kept only for the same layout
            new.start = self.start
        return new

    def with_response(self, y: np.ndarray) -> Self:
        """``replace(y=y)``: this model with a new response, the design shared."""
        return self.replace(y=y)

    # -- objective --------------------------------------------------------------------------
    @property
    def weights_source(self) -> Any:
        """The ``weights=`` argument as the call gave it: None, a column name, or values (one
        per data row); what a model rebuilt from the call (a saved fit, a refit) needs."""
        return self._weights_source

    @property
    def offset_source(self) -> Any:
        """The ``offset=`` argument as the call gave it: None, a column name, or values (one
        per data row)."""
        return self._offset_source

    @property
    def nobs(self) -> int:
        """Number of observations."""
        return self.design.nobs

    @property
    def n_fixed(self) -> int:
        """Number of fixed-effects coefficients (p)."""
        return int(self.design.X.shape[1])

    @property
    def dense_order(self) -> int:
        """Order of the dense part of the blocked factor: the [X y] block and every grouping
        factor after the first (the first stays block diagonal). It decides the BLAS threads
        of the fit (see :mod:`multilevel.models.threads`)."""
        return self.n_fixed + 1 + sum(self._dense_orders())

    def factor(self, theta: np.ndarray) -> BlockedFactor:
        """The blocked Cholesky factor at ``theta``.

        Raises
        ------
        NumericalError
            When the factorization fails in floating point (the data's scale).
        """
        try:
            with blas_threads_for(self.dense_order):
                return factorize(self.A, self.layout.templates(np.asarray(theta, dtype=float)))
        except NotPositiveDefinite as exc:
            raise NumericalError(f"the likelihood cannot be evaluated at theta = "
                                 f"{np.asarray(theta).tolist()}: {self.scale_diagnosis()}"
                                 ) from exc

    def _criterion(self, logdet_re: float, logdet_x: float, pwrss: float,
                   reml: bool | None) -> float:
        """-2 log-likelihood (ML) or the REML criterion from the factor's three numbers."""
        return self.response.criterion(logdet_re, logdet_x, pwrss,
                                       self.reml if reml is None else reml)

    def objective(self, theta: Any, reml: bool | None = None) -> float:
        """The profiled deviance (ML) or REML criterion at ``theta``.

        Parameters
        ----------
        theta : array-like
            Relative covariance parameters in lme4's order (see ``layout.names()``).
        reml : bool, optional
            Override the model's REML setting (e.g. the ML deviance at REML estimates).
        """
        theta = np.asarray(theta, dtype=float)
        if theta.shape != (self.layout.n_theta,):
            raise OptimizerError(f"theta must have {self.layout.n_theta} values "
                                 f"({', '.join(self.layout.names())}), got {theta.size}")
        if not np.isfinite(theta).all():
            raise OptimizerError(f"theta must be finite, got {theta.tolist()}")
        return self._deviance(theta, reml)

    def _deviance(self, theta: np.ndarray, reml: bool | None = None) -> float:
        """:meth:`objective` without the argument checks, for the optimizer's own points
        (finite floats of the right length by construction; called 30-100 times a fit)."""
        try:
            terms = profiled_terms(self.A, self.layout.templates(theta))
        except NotPositiveDefinite:
            return math.inf
        value = self._criterion(*terms, reml)
        if self._on_evaluation is not None:
            self._on_evaluation(value)
        return value

    # -- fitting ----------------------------------------------------------------------------
    def _start(self) -> tuple[np.ndarray, dict[str, Any]]:
        """Starting theta and the backend settings to use with it."""
        if isinstance(self.start, np.ndarray):
            return self.start, self.optimizer_settings
        applies = anova_applies([b.Z for b in self.blocks])
        if self.start == "lme4" or (self.start is None and not applies):
            return self.layout.start(), self.optimizer_settings
        if not applies:
            raise OptimizerError("start='anova' needs every random-effects term to be a random "
                                 "intercept (a column constant over the rows); use "
                                 "start='lme4' or theta values")
        y, _ = self._response_shift()
        codes = [b.codes for b in self.blocks]
        constants = [intercept_constant(b.Z) or 1.0 for b in self.blocks]
        ratios = None
        if self.newton_first and len(codes) > 1 and self.design.weights is None:
            # the moment equations see every factor at once: a start close to the optimum,
            # which saves evaluations of half a minute each (see multilevel.optim.newton)
            ratios = moments_start(self.design.X, y, codes, constants)
        if ratios is None:
            ratios = anova_start(self.design.X, y, codes, self.design.weights, constants)
        return self.start_from_ratios(ratios)

    def start_from_ratios(self, ratios: np.ndarray | None) -> tuple[np.ndarray, dict[str, Any]]:
        """Theta from each random intercept's sigma_b / sigma (lme4's start when None: data on
        a scale where the estimates are not finite), and the backend settings to use with it
        (BOBYQA's first step scaled to the start)."""
        if ratios is None:
            return self.layout.start(), self.optimizer_settings
        theta0 = np.empty(self.layout.n_theta)
        for blk, ratio in zip(self.blocks, ratios, strict=True):
            theta0[self.layout.terms[blk.terms[0]].theta_offset] = ratio
        settings = dict(self.optimizer_settings)
        if self.optimizer == "bobyqa":
            settings.setdefault("initial_step", initial_step(theta0))
        return theta0, settings

    @property
    def newton_first(self) -> bool:
        """True when an evaluation costs enough (its dense flops plus the Gram products of its
        level pairs: ``NEWTON_MIN_WORK`` or more, ~20 ms here) for fewer evaluations to beat
        less work per step: the fit then starts from moment estimates of the random
        intercepts, tries Newton's method first (:mod:`multilevel.optim.newton`) and memoizes
        the objective. A rule on the model's sizes, not on measured time, so that a model is
        fitted along the same path on every machine. The 1 M-row crossed benchmark: 37 -> 23
        evaluations, 8.7 -> 5.9 s, the same optimum."""
        if self.expensive_evaluations:
            return True
        if self.layout.n_theta > NEWTON_MAX_THETA or len(self.blocks) < 2:
            return False
        return self._evaluation_work >= NEWTON_MIN_WORK

    @cached_property
    def _evaluation_work(self) -> float:
        """Flops of the dense blocks plus the Gram products of one evaluation (the sizes do
        not change after construction; counting the products is a pass over the level
        pairs)."""
        dense = sum(float(q) ** 3 / 3.0 for q in self._dense_orders())
        products = sum(gram_products(self.A, a, b) for a in range(1, len(self.blocks))
                       for b in range(1, a + 1))
        return dense + products

    def _dense_orders(self) -> list[int]:
        """Order of each grouping factor's block after the first (all dense)."""
        return [nl * b.k for nl, b in zip(self.predictor.n_levels[1:], self.blocks[1:],
                                          strict=True)]

    @property
    def expensive_evaluations(self) -> bool:
        """True when one evaluation factors a dense block of ``TILED_ORDER`` or more (seconds
        to minutes each): the fit then starts from moment estimates, tries Newton's method
        first (:mod:`multilevel.optim.newton`) and memoizes the objective."""
        return self.dense_order >= TILED_ORDER

    def optimize(self) -> OptSummary:
        """Minimize the objective over theta; returns the optimizer record.

        BLAS runs single-threaded while the dense part of the factor is small (see
        :mod:`multilevel.models.threads`): threads only add synchronization there, and on a
        busy machine far more."""
        with blas_threads_for(self.dense_order):
            if not (self.progress or (self.progress is None and self.expensive_evaluations)):
                return self._optimize()
            names = [self.design.terms[b.terms[0]].factor.name for b in self.blocks]
            with EvaluationProgress(evaluation_cost(self.A, names), names[0]) as bar:
                self._on_evaluation = bar.evaluated
                self.A.cache["tile_progress"] = bar.factoring
                try:
                    return self._optimize()
                finally:
                    self._on_evaluation = None
                    self.A.cache.pop("tile_progress", None)

    def _optimize(self) -> OptSummary:
        lower = self.layout.lower_bounds()
        x0, settings = self._start()
        fun = _Memo(self._deviance) if self.newton_first else self._deviance
        f0 = fun(x0)
        if not math.isfinite(f0):
            raise NumericalError(f"the likelihood cannot be evaluated at the starting values "
                                 f"(theta = {x0.tolist()}): {self.scale_diagnosis()}")
        newton = None
        if (isinstance(fun, _Memo) and self.optimizer == "bobyqa" and not self.optimizer_settings
                and self.layout.n_theta <= NEWTON_MAX_THETA):
            newton = newton_fd(fun, x0, lower, f0)
            if newton is None:  # BOBYQA from the best point Newton's method reached
                x0, f0 = fun.best()
        if newton is None:
            found, derivatives = minimize_theta(fun, x0, lower, self.optimizer, settings,
                                                f0=f0), None
        else:
            found, derivatives = newton
        opt = check_boundary(fun, found)
        if self.calc_derivs:
            opt = check_derivatives(fun, opt, self.optimizer, self.optimizer_settings,
                                    derivatives=derivatives)
        return opt


# Newton's method (multilevel.optim.newton) is tried for fits with at most this many theta:
# its derivatives cost n (n + 3) / 2 evaluations an iteration. Measured with three (InstEval's
# intercepts, ML): 47 evaluations against BOBYQA's 30 and its check's 9.
NEWTON_MAX_THETA = 2
# Work of one evaluation (flops of the dense blocks plus Gram products) from which Newton's
# method goes first (see ModelStages.newton_first): ~20 ms here. The 1 M-row crossed benchmark
# (3e9) is above it; the lme4 reference models are all far below.
NEWTON_MIN_WORK = 1e8


class _Memo:
    """The objective with every value kept, so that the convergence check repeats none of
    the evaluations Newton's method made at the same points (each costs seconds here)."""

    def __init__(self, fun: Any) -> None:
        self.fun = fun
        self.values: dict[bytes, tuple[np.ndarray, float]] = {}

    def __call__(self, theta: np.ndarray) -> float:
        key = np.asarray(theta, dtype=float).tobytes()
        hit = self.values.get(key)
        if hit is None:
            hit = self.values[key] = (np.array(theta, dtype=float), self.fun(theta))
        return hit[1]

    def best(self) -> tuple[np.ndarray, float]:
        """The point with the lowest value so far."""
        x, value = min(self.values.values(), key=lambda item: item[1])
        return x.copy(), value


def _checked_settings(reml: Any, optimizer: str, optimizer_settings: Any, calc_derivs: Any,
                      start: Any) -> _Settings:
    """The fitting settings checked (before any work on the data): reml, optimizer, its
    settings (a copy), calc_derivs; a start given by name must be a known one (theta values
    are checked against the layout later)."""
    checked_reml = checked_flag("reml", reml)
    checked_derivs = checked_flag("calc_derivs", calc_derivs)
    backend_key(optimizer)
    settings = check_settings(optimizer, optimizer_settings)
    if isinstance(start, str) and start not in ("lme4", "anova"):
        raise OptimizerError(f"start must be None, 'lme4', 'anova' or theta values, got "
                             f"{start!r}")
    return checked_reml, optimizer, settings, checked_derivs


def checked_flag(name: str, value: Any) -> bool:
    """A yes/no argument of a model: True, False, or the integers 1 and 0 (as R's TRUE and
    FALSE); an ArgumentError naming it otherwise."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral) and value in (0, 1):
        return bool(value)
    raise ArgumentError(f"{name} must be True or False, got {value!r:.60}")


def _centering(X: np.ndarray, w: np.ndarray | None, is_one: np.ndarray) -> np.ndarray | None:
    """Column means to subtract from X (0 for the intercept column), or None without an
    intercept. Centring is an exact reparametrization of the fixed effects (the intercept
    absorbs the shifts) that keeps [X y]'[X y] from cancelling catastrophically when y or a
    covariate is far from zero -- the profiled objective then stays smooth to ~1e-12, which
    the finite-difference convergence check needs. ``is_one`` flags the intercept column."""
    if not is_one.any():
        return None
    shift = np.average(X, axis=0, weights=w)
    shift[is_one] = 0.0
    return shift


def _replace(design: ModelDesign, **changes: Any) -> ModelDesign:
    return replace(design, **changes)
