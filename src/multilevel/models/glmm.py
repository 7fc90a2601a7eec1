"""The generalized linear mixed model: g(E[y | b]) = X beta + Z b + offset, b = Lambda(theta) u,
u ~ N(0, I), y | b from an exponential-dispersion family (or the negative binomial).

:class:`GLMMStages` is the model, not the result, as :class:`~multilevel.models.lmm.ModelStages`
is for the linear model: the design, the random-effects :class:`~.predictor.Predictor`, a
:class:`~.response.GLMResponse`, and the criterion for any parameters. Estimation follows lme4's
``glmer`` (Bates et al. 2015, JSS 67(1); lme4's ``optimizeGlmer``):

1. nAGQ = 0 stage: the optimizer moves theta (and the family parameter, if any); PIRLS solves
   for beta and the modes together; the criterion is the Laplace approximation there.
2. nAGQ >= 1 stage, started from stage 1: the optimizer moves (theta, beta[, family
   parameter]); PIRLS solves for the modes only; the criterion is the Laplace approximation
   (nagq = 1) or adaptive Gauss-Hermite quadrature (nagq > 1, one scalar random-effects term).

Families with a parameter of their own -- the dispersion phi of the Gamma and inverse Gaussian,
the negative binomial's size -- have it estimated by maximum likelihood alongside, on the log
scale, as glmmTMB does (lme4 plugs in a moment estimate for phi and reports a quasi-likelihood).
"""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import dataclass, replace
from typing import Any, Self

import numpy as np
from scipy import optimize

from multilevel.covariance.relative_factor import ThetaLayout
from multilevel.data.design import ModelDesign, build_design
from multilevel.errors import ArgumentError, DataError, NumericalError, OptimizerError
from multilevel.families.exponential import Binomial
from multilevel.families.family import Family
from multilevel.families.negative_binomial import NegativeBinomial
from multilevel.families.resolve import family as resolve_family
from multilevel.formula.parser import ParsedFormula
from multilevel.linalg.blocked_cholesky import NotPositiveDefinite
from multilevel.linalg.cross_products import CrossProducts
from multilevel.models.laplace_gradient import gradient_available, laplace_gradient
from multilevel.models.lmm import checked_flag
from multilevel.models.memory import check_fit_memory
from multilevel.models.pirls import (
    Modes,
    PirlsFailure,
    agq_deviance,
    laplace_deviance,
    pirls,
)
from multilevel.models.predictor import Predictor, ReBlock
from multilevel.models.replacing import KEEP, changed_design
from multilevel.models.response import GLMResponse
from multilevel.models.separation import divergence_messages
from multilevel.models.threads import blas_threads_for
from multilevel.optim.backends import backend_key, check_settings, check_start, minimize_theta
from multilevel.optim.convergence import BOUNDARY_TOL, check_boundary, check_derivatives
from multilevel.optim.optsummary import OptSummary

# The largest number of quadrature nodes accepted (gauss_hermite's limit).
MAX_NAGQ = 300
CURVATURES = ("expected", "observed")
# The nAGQ = 0 stage before a Laplace or quadrature fit only provides the second stage's start:
# BOBYQA's default tolerances there (lme4 runs it to its full tolerance) cost evaluations the
# second stage repeats anyway.
STAGE0_TOLERANCES = {"ftol_abs": 1e-4, "xtol_rel": 1e-3}
# ... and coarser still when the analytic-gradient second stage follows, which converges fast
# from a rough start
STAGE0_TOLERANCES_GRADIENT = {"ftol_abs": 1e-2, "xtol_rel": 1e-2, "maxeval": 12}
# Per-row arrays PIRLS keeps alive besides the design (see check_fit_memory's use).
PIRLS_ROW_ARRAYS = 10





@dataclass(frozen=True)
class GLMMSettings:
    """How the GLMM is estimated (all checked before any work on the data)."""

    nagq: int
    optimizer: str
    optimizer_settings: dict[str, Any]
    calc_derivs: bool
    curvature: str | None


@dataclass(frozen=True)
class GLMMFit:
    """What :meth:`GLMMStages.optimize` returns: the optimizer record (of the last stage),
    the parameters split by kind, and the PIRLS state at them.

    Attributes
    ----------
    opt : OptSummary
        Its ``final`` is the vector the last stage optimized (see ``GLMMStages.parameter_names``).
    theta, beta : numpy.ndarray
    family : Family
        The family with its estimated parameter set (negative binomial size).
    dispersion : float
        phi (1 for families without one).
    modes : Modes
    stage0 : OptSummary or None
        The nAGQ = 0 stage's record when a second stage followed.
    """

    opt: OptSummary
    theta: np.ndarray
    beta: np.ndarray
    family: Family
    dispersion: float
    modes: Modes
    stage0: OptSummary | None


def _nagq(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) \
            or not 0 <= int(value) <= MAX_NAGQ:
        raise ArgumentError(f"nagq must be a whole number from 0 to {MAX_NAGQ} (0: the fast "
                            f"nAGQ = 0 fit, 1: Laplace, more: adaptive Gauss-Hermite "
                            f"quadrature), got {value!r:.60}")
    return int(value)


def checked_settings(nagq: Any, optimizer: Any, optimizer_settings: Any, calc_derivs: Any,
                     curvature: Any) -> GLMMSettings:
    """The estimation settings checked (typed errors naming the argument)."""
    n = _nagq(nagq)
    backend_key(optimizer)
    settings = check_settings(optimizer, optimizer_settings)
    if curvature is not None and curvature not in CURVATURES:
        raise ArgumentError(f"laplace must be None, 'expected' or 'observed', got "
                            f"{curvature!r:.60}")
    return GLMMSettings(nagq=n, optimizer=optimizer, optimizer_settings=settings,
                        calc_derivs=checked_flag("calc_derivs", calc_derivs), curvature=curvature)


def glm_start(X: np.ndarray, resp: GLMResponse, max_iter: int = 50) -> np.ndarray:
    """Fixed effects of the GLM without random effects, by IRLS from the family's starting
    mu (R's ``glm.fit``; lme4 starts glmer there). Falls back to the last admissible iterate
    when the GLM itself does not converge (separation): only a start.

    A step that leaves the family's range (a log-link binomial mean above 1, an
    identity-link Poisson mean below 0) is halved towards the last admissible coefficients;
    when even the first step is out of range, those are the intercept-only fit's (its mean is
    the response's, inside the range) -- where R's glm stops with "no valid set of
    coefficients has been found"."""
    fam = resp.family
    mu = fam.mustart(resp.y, resp.prior_weights)
    with np.errstate(all="ignore"):
        eta = fam.link.link(mu)
    beta: np.ndarray | None = None
    if not np.all(np.isfinite(eta)):  # a log-link Gaussian with y <= 0: start from the mean
        beta = _intercept_only(X, resp)
        if beta is None:
            return np.zeros(X.shape[1])
        eta = X @ beta + resp.offset
        mu = resp.mu(eta)
    dev = math.inf
    for _ in range(max_iter):
        with np.errstate(over="ignore", invalid="ignore"):
            sqrt_w, z = resp.working(eta, mu)
        if not (np.all(np.isfinite(sqrt_w)) and np.all(np.isfinite(z))):
            break  # the weights overflow (a mean beyond 1e154: an offset on the wrong scale)
        target = (eta - resp.offset + z) * sqrt_w
        new, *_ = np.linalg.lstsq(X * sqrt_w[:, None], target, rcond=None)
        if beta is None and not _admissible(X, resp, new):
            beta = _intercept_only(X, resp)
            if beta is None:
                break
        for _halving in range(30):
            if _admissible(X, resp, new):
                break
            assert beta is not None
            new = 0.5 * (new + beta)
        else:
            break
        eta_new = X @ new + resp.offset
        mu_new = resp.mu(eta_new)
        dev_new = resp.deviance(mu_new)
        beta, eta, mu = new, eta_new, mu_new
        if abs(dev - dev_new) <= 1e-10 * (abs(dev_new) + 0.1):
            break
        dev = dev_new
    return np.zeros(X.shape[1]) if beta is None else beta


def _admissible(X: np.ndarray, resp: GLMResponse, beta: np.ndarray) -> bool:
    with np.errstate(all="ignore"):
        eta = X @ beta + resp.offset
        return resp.valid(eta, resp.mu(eta))


def _intercept_only(X: np.ndarray, resp: GLMResponse) -> np.ndarray | None:
    """Coefficients with every non-constant column at 0 and the intercept at the link of the
    response's weighted mean, when X has an intercept and that is admissible; else None."""
    constant = np.flatnonzero(np.all(X == X[:1], axis=0) & (X[0] != 0))
    if constant.size == 0:
        return None
    mean = float(np.average(resp.y, weights=resp.prior_weights))
    beta = np.zeros(X.shape[1])
    with np.errstate(all="ignore"):
        beta[constant[0]] = float(resp.family.link.link(np.array([mean]))[0]) / X[0, constant[0]]
    return beta if np.isfinite(beta).all() and _admissible(X, resp, beta) else None


class GLMMStages:
    """A generalized linear mixed model ready to be fitted.

    Parameters
    ----------
    formula : str
        lme4 formula; the response may be 0/1, logical, a two-level factor (success = the
        second level), a proportion with ``weights`` as the number of trials,
        ``cbind(successes, failures)``, counts, or positive values.
    data : pandas.DataFrame or polars.DataFrame
    family : str or Family
        ``"binomial"``, ``"poisson"``, ``"gamma"``, ``"inverse_gaussian"``,
        ``"negative_binomial"`` or a family object such as ``Binomial(link="probit")`` or
        ``NegativeBinomial(theta=2)`` (size fixed).
    nagq : int, default 1
        0: the fast fit with beta inside PIRLS; 1: Laplace; > 1: adaptive Gauss-Hermite
        quadrature with that many nodes (one scalar random-effects term only).
    weights, offset : array-like or column name, optional
    optimizer, optimizer_settings : as for the linear model
    start : None or dict, optional
        ``{"theta": ..., "beta": ...}`` (either or both) to start the optimizer there.
    calc_derivs : bool, default True
        Finite-difference gradient and Hessian at the optimum: the convergence check and the
        fixed effects' covariance (lme4's ``use.hessian``).
    laplace : None, "expected" or "observed"
        The curvature in the Laplace log-determinant: the expected (Fisher) information, as
        lme4, or the observed one, as glmmTMB. The same for canonical links (logit binomial,
        log Poisson). Default: "observed" when the family has a parameter the model estimates
        (dispersion, negative binomial size; glmmTMB is the reference there), else "expected".
    """

    def __init__(self, formula: str | ParsedFormula, data: Any, family: Any = "binomial",
                 nagq: int = 1, weights: Any = None, offset: Any = None,
                 optimizer: str = "bobyqa", start: Any = None,
                 optimizer_settings: dict[str, Any] | None = None, calc_derivs: bool = True,
                 laplace: str | None = None, *, design: ModelDesign | None = None) -> None:
        self.settings = checked_settings(nagq, optimizer, optimizer_settings, calc_derivs,
                                         laplace)
        fam = resolve_family(family)
        if fam.name == "gaussian" and fam.link.name == "identity":
            raise ArgumentError("family='gaussian' with the identity link is the linear mixed "
                                "model: fit it with ml.lmer (REML or ML), not ml.glmer")
        self.design = design if design is not None else build_design(
            formula, data, weights, offset, glm=True)
        self.data = data
        self._weights_source = weights
        self._offset_source = offset
        d = self.design
        if not isinstance(fam, Binomial) and (d.response_levels is not None
                                              or d.formula.counts is not None):
            form = ("cbind(successes, failures)" if d.formula.counts is not None
                    else "factor")
            raise DataError(f"the response {d.response_name!r} is a {form} response, which only "
                            f"a binomial model takes; the {fam.name} family needs a numeric "
                            "response")
        fam.validate(d.y, d.weights, column=d.response_name, labels=d.row_index)
        self.predictor = Predictor(d)
        self.blocks: list[ReBlock] = self.predictor.blocks
        self.layout: ThetaLayout = self.predictor.layout
        if self.settings.nagq > 1 and (len(d.terms) != 1 or d.terms[0].n_columns != 1):
            raise ArgumentError(
                f"nagq={self.settings.nagq} (adaptive Gauss-Hermite quadrature) needs a single "
                "scalar random-effects term such as (1 | g); this model has "
                f"{len(d.terms)} term(s) with {sum(t.n_columns for t in d.terms)} column(s). "
                "Use nagq=1 (Laplace)")
        self.family = fam
        self.estimate_size = isinstance(fam, NegativeBinomial) and fam.theta is None
        n = d.nobs
        wt = np.ones(n) if d.weights is None else d.weights
        off = np.zeros(n) if d.offset is None else d.offset
        placeholder = fam.with_theta(1.0) if self.estimate_size and isinstance(
            fam, NegativeBinomial) else fam
        self.response = GLMResponse(placeholder, d.y, wt, off, 1.0)
        if not self.has_family_parameter:
            self.response = self.response.with_saturated()
        self.X = d.X
        self.A0: CrossProducts = self.predictor.cross_products(
            np.zeros((n, 1)), None)
        # the linear model's estimate (dense blocks, rows) plus PIRLS's own per-row arrays:
        # eta, mu, the working weights and response, the trial step, the fixed part
        check_fit_memory(self.A0, n, self.n_fixed + 1 + sum(b.k for b in self.blocks)
                         + PIRLS_ROW_ARRAYS, self.predictor.group_names)
        self.start = self._checked_start(start)
        self._beta_glm = glm_start(self.X, self.response)
        self._warm: tuple[np.ndarray, list[np.ndarray]] | None = None

    # -- parameters -------------------------------------------------------------------------
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
        """Number of fixed-effects coefficients."""
        return int(self.X.shape[1])

    @property
    def nagq(self) -> int:
        """Quadrature nodes (0: beta inside PIRLS, 1: Laplace)."""
        return self.settings.nagq

    @property
    def has_family_parameter(self) -> bool:
        """Whether the family brings a parameter the model estimates (dispersion, size)."""
        return self.family.has_dispersion or self.estimate_size

    @property
    def family_parameter_name(self) -> str | None:
        """``"log_dispersion"``, ``"log_size"`` or None."""
        if self.family.has_dispersion:
            return "log_dispersion"
        return "log_size" if self.estimate_size else None

    @property
    def observed(self) -> bool:
        """Whether the Laplace log-determinant uses the observed information."""
        if self.settings.curvature is not None:
            return self.settings.curvature == "observed"
        return self.has_family_parameter

    def parameter_names(self, with_beta: bool = True) -> list[str]:
        """Names of the optimized vector: theta, beta (stage 2), then the family parameter."""
        names = list(self.layout.names())
        if with_beta:
            names += list(self.design.fixed_names)
        if self.family_parameter_name is not None:
            names.append(self.family_parameter_name)
        return names

    def _checked_start(self, start: Any) -> dict[str, np.ndarray]:
        if start is None:
            return {}
        if not isinstance(start, dict) or set(start) - {"theta", "beta"}:
            raise OptimizerError("start must be None or a dict with 'theta' and/or 'beta' "
                                 f"values, got {start!r:.80}")
        out = {}
        if "theta" in start:
            out["theta"] = check_start(start["theta"], self.layout.lower_bounds(),
                                       self.layout.names())
        if "beta" in start:
            beta = check_start(start["beta"], np.full(self.n_fixed, -np.inf),
                               list(self.design.fixed_names))
            out["beta"] = beta
        return out

    def response_at(self, log_param: float | None) -> GLMResponse:
        """The response with the family parameter exp(log_param) in force."""
        if log_param is None:
            return self.response
        value = math.exp(log_param)
        if self.family.has_dispersion:
            return replace(self.response, dispersion=value)
        fam = self.family
        assert isinstance(fam, NegativeBinomial)
        return replace(self.response, family=fam.with_theta(value))

    def _split(self, x: np.ndarray, with_beta: bool,
               ) -> tuple[np.ndarray, np.ndarray | None, float | None]:
        nt = self.layout.n_theta
        theta = x[:nt]
        beta = x[nt:nt + self.n_fixed] if with_beta else None
        rest = nt + (self.n_fixed if with_beta else 0)
        log_param = float(x[rest]) if self.has_family_parameter else None
        return theta, beta, log_param

    # -- the criterion ----------------------------------------------------------------------
    def modes(self, theta: np.ndarray, beta: np.ndarray | None,
              log_param: float | None = None, full: bool = True) -> Modes:
        """PIRLS at theta: the modes with beta held fixed, or beta solved with them when
        ``beta`` is None (``full``: with the [X z] factor). Raises NumericalError where PIRLS
        fails there."""
        try:
            return self._modes(theta, beta, log_param, full)
        except (PirlsFailure, NotPositiveDefinite) as exc:
            raise NumericalError(f"the penalized least-squares iteration fails at theta = "
                                 f"{np.asarray(theta).tolist()}: {exc}") from exc

    def _modes(self, theta: np.ndarray, beta: np.ndarray | None,
               log_param: float | None = None, full: bool = True) -> Modes:
        # The criterion's PIRLS: its failures mark an infeasible point (a public method's
        # would reach the optimizer as InternalError through the API's error net).
        resp = self.response_at(log_param)
        u0 = [np.zeros((nl, b.k)) for nl, b in zip(self.predictor.n_levels, self.blocks,
                                                    strict=True)]
        starts = []
        if self._warm is not None:
            starts.append(self._warm)
        starts.append((self._beta_glm, u0))
        error: Exception | None = None
        for b0, u in starts:
            try:
                m = pirls(self.predictor, self.X, resp, self.A0, theta,
                          b0 if beta is None else beta, u, beta_inside=beta is None,
                          observed=self.observed, full=full)
            except (PirlsFailure, NotPositiveDefinite) as exc:
                error = exc
                continue
            self._warm = (m.beta, m.u)
            return m
        assert error is not None
        raise error

    def _value(self, resp: GLMResponse, m: Modes, theta: np.ndarray) -> float:
        if self.nagq > 1:
            return agq_deviance(self.predictor, resp, m, theta, self.nagq)
        value = laplace_deviance(resp, m)
        return value if math.isfinite(value) else math.inf

    def _criterion(self, x: np.ndarray, with_beta: bool) -> float:
        # trial points outside a link's domain give NaN means that PIRLS rejects: numpy's
        # warnings about them say nothing to the user
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            theta, beta, log_param = self._split(x, with_beta)
            try:
                m = self._modes(theta, beta, log_param, full=False)
            except (PirlsFailure, NotPositiveDefinite, FloatingPointError):
                return math.inf
            if not with_beta:  # the nAGQ = 0 stage: always the Laplace approximation
                value = laplace_deviance(self.response_at(log_param), m)
                return value if math.isfinite(value) else math.inf
            return self._value(self.response_at(log_param), m, theta)

    def objective(self, theta: Any, beta: Any = None, family_parameter: float | None = None,
                  ) -> float:
        """-2 log-likelihood at (theta, beta): the Laplace approximation (nagq <= 1) or
        adaptive quadrature (nagq > 1); with ``beta`` None, beta is solved by PIRLS (the
        nAGQ = 0 criterion).

        Parameters
        ----------
        theta : array-like
            Relative covariance parameters (``layout.names()``).
        beta : array-like, optional
        family_parameter : float, optional
            The dispersion phi, or the negative binomial's size, when the model estimates one
            (required then).
        """
        theta = check_start(theta, self.layout.lower_bounds(), self.layout.names())
        with_beta = beta is not None
        parts = [theta]
        if with_beta:
            parts.append(check_start(beta, np.full(self.n_fixed, -np.inf),
                                     list(self.design.fixed_names)))
        if self.has_family_parameter:
            if family_parameter is None or not family_parameter > 0:
                what = str(self.family_parameter_name)[4:]
                raise ArgumentError(f"this model estimates its {what} (give "
                                    f"family_parameter > 0), got {family_parameter!r}")
            parts.append(np.array([math.log(family_parameter)]))
        x = np.concatenate(parts)
        if not with_beta:
            return self._criterion(x, False)
        return self._criterion(x, True)

    # -- starting values --------------------------------------------------------------------
    def _family_parameter_start(self) -> list[float]:
        """Log of a moment estimate of phi (Pearson chi^2 / (n - p) of the GLM) or of the
        negative binomial size, from the GLM start."""
        if not self.has_family_parameter:
            return []
        resp = self.response
        mu = resp.mu(self.X @ self._beta_glm + resp.offset)
        y, wt = resp.y, resp.prior_weights
        if self.family.has_dispersion:
            chi2 = float(np.sum(wt * (y - mu) ** 2 / self.family.variance(mu)))
            phi = chi2 / max(self.nobs - self.n_fixed, 1)
            # a GLM start outside the mean space (no admissible one found) gives NaN: then 1
            return [math.log(min(max(phi, 1e-4), 1e4)) if math.isfinite(phi) else 0.0]
        excess = float(np.sum((y - mu) ** 2 - mu))
        size = float(np.sum(mu * mu)) / excess if excess > 0 else 100.0
        return [math.log(min(max(size, 0.05), 1e4)) if math.isfinite(size) else math.log(100.0)]

    # -- fitting ----------------------------------------------------------------------------
    def _run(self, x0: np.ndarray, lower: np.ndarray, with_beta: bool,
             initial_step: np.ndarray | None, calc_derivs: bool,
             loose: bool = False) -> OptSummary:
        def fun(x: np.ndarray) -> float:
            return self._criterion(x, with_beta)

        f0 = fun(x0)
        if not math.isfinite(f0):
            raise NumericalError(
                f"the likelihood cannot be evaluated at the starting values "
                f"({dict(zip(self.parameter_names(with_beta), x0.tolist(), strict=True))}): "
                "the penalized least-squares iteration fails there. Check the response and "
                "the predictors' scales, or give start="
                f"{_offset_hint(self.design.offset)}{self._link_hint()}")
        settings = dict(self.settings.optimizer_settings)
        if initial_step is not None and self.settings.optimizer == "bobyqa":
            settings.setdefault("initial_step", initial_step)
        if loose and self.settings.optimizer == "bobyqa":
            tolerances = (STAGE0_TOLERANCES_GRADIENT if self._gradient_applies()
                          else STAGE0_TOLERANCES)
            for key, value in tolerances.items():
                settings.setdefault(key, value)
        found = minimize_theta(fun, x0, lower, self.settings.optimizer, settings, f0=f0)
        opt = check_boundary(fun, found)
        if calc_derivs:
            opt = check_derivatives(fun, opt, self.settings.optimizer,
                                    self.settings.optimizer_settings)
        return opt

    def _gradient_applies(self) -> bool:
        """The analytic Laplace gradient is used for the second stage with the default
        optimizer (bobyqa, no settings of the user's), the Laplace approximation, and a
        canonical link without dispersion or estimated size (see
        :mod:`multilevel.models.laplace_gradient`)."""
        return (self.nagq == 1 and self.settings.optimizer == "bobyqa"
                and not self.settings.optimizer_settings and not self.has_family_parameter
                and gradient_available(self.predictor, self.response))

    def _value_and_gradient(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """The Laplace deviance and its gradient at (theta, beta); +Inf (and a zero
        gradient) where PIRLS fails."""
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            theta, beta, _ = self._split(x, True)
            try:
                m = self._modes(theta, beta, None, full=False)
            except (PirlsFailure, NotPositiveDefinite, FloatingPointError):
                return math.inf, np.zeros_like(x)
            value = laplace_deviance(self.response, m)
            if not math.isfinite(value):
                return math.inf, np.zeros_like(x)
            return value, laplace_gradient(self.predictor, self.X, self.response, theta, m)

    def _run_with_gradient(self, x0: np.ndarray, lower: np.ndarray,
                           step: np.ndarray) -> OptSummary:
        """The second stage by L-BFGS-B on the analytic gradient (a few dozen evaluations
        where BOBYQA takes hundreds), then lme4's boundary check and the derivative check,
        whose Hessian comes from differences of the gradient. Where L-BFGS-B stops without
        convergence (a line search into a region where PIRLS fails), BOBYQA goes on from its
        best point."""
        def fun(x: np.ndarray) -> float:
            return self._criterion(x, True)

        def grad(x: np.ndarray) -> np.ndarray:
            return self._value_and_gradient(x)[1]

        log: list[tuple[np.ndarray, float]] = []

        def both(x: np.ndarray) -> tuple[float, np.ndarray]:
            value, g = self._value_and_gradient(x)
            log.append((x.copy(), value))
            return (value if math.isfinite(value) else 1e300), g

        # L-BFGS-B is not scale-invariant: it works on z = (x - x0) / scale with unit
        # curvature in every coordinate, as far as cheaply known: beta's from the nAGQ = 0
        # standard errors (the deviance's curvature is 2 / SE^2), theta's from one difference
        # of the gradient per element
        started = time.perf_counter()
        nt = self.layout.n_theta
        scale = step.copy()
        scale[nt:nt + self.n_fixed] = step[nt:nt + self.n_fixed] / (0.2 * math.sqrt(2.0))
        f0, g0 = both(x0)
        for i in range(nt):
            delta = 1e-3 * max(1.0, abs(x0[i]))
            probe = x0.copy()
            probe[i] += delta
            value, g1 = both(probe)
            curvature = (g1[i] - g0[i]) / delta
            if math.isfinite(value) and curvature > 0:
                scale[i] = 1.0 / math.sqrt(curvature)

        def scaled(z: np.ndarray) -> tuple[float, np.ndarray]:
            value, g = both(x0 + scale * z)
            return value, g * scale

        bounds = [((lo - a) / d if np.isfinite(lo) else None, None)
                  for lo, a, d in zip(lower, x0, scale, strict=True)]
        res = optimize.minimize(scaled, np.zeros_like(x0), jac=True, method="L-BFGS-B",
                                bounds=bounds,
                                options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-9})
        best = min(log, key=lambda item: item[1])
        opt = OptSummary(backend="lbfgsb-gradient", initial=np.array(x0, dtype=float),
                         final=best[0].copy(), lower=lower, fmin=float(best[1]),
                         feval=len(log), elapsed=time.perf_counter() - started,
                         return_code=str(res.message), converged=bool(res.success),
                         fitlog=tuple(log), settings={"ftol": 1e-13, "gtol": 1e-7})
        # L-BFGS-B can stop on a face of the bounds (a variance at 0) at a point that is
        # stationary only there -- a random-slope model whose intercept variance is ~0 can sit
        # at a saddle that BOBYQA's trust region steps out of. Such a fit, and one that did
        # not converge, gets the derivative-free second stage too, and the better optimum
        # is kept.
        on_bound = bool(np.any((lower == 0) & (opt.final <= lower + BOUNDARY_TOL)))
        if not opt.converged or on_bound:
            again = self._run(x0, lower, True, step, False)
            if again.fmin < opt.fmin or not opt.converged:
                opt = replace(again, initial=opt.initial, feval=opt.feval + again.feval,
                              fitlog=opt.fitlog + again.fitlog)
            else:
                opt = replace(opt, feval=opt.feval + again.feval)
        opt = check_boundary(fun, opt)
        if self.settings.calc_derivs:
            opt = check_derivatives(fun, opt, self.settings.optimizer,
                                    self.settings.optimizer_settings, grad=grad)
        return opt

    def _link_hint(self) -> str:
        """For a link whose range is not the family's mean space, why the fit may fail."""
        fam = self.family
        bounded = {"binomial": ("log", "identity"), "poisson": ("identity", "sqrt"),
                   "Gamma": ("identity", "inverse"), "negative.binomial": ("identity", "sqrt")}
        if fam.link.name not in bounded.get(fam.name, ()):
            return ""
        return (f". The {fam.link.name} link does not keep the {fam.name} mean inside its "
                "range, and the best fit may push some means to its edge (R's glm and lme4 "
                "stop there too): consider the family's default link")

    def optimize(self) -> GLMMFit:
        """Estimate the parameters: the nAGQ = 0 stage, then (nagq >= 1) the stage over
        theta and beta together, each with lme4's boundary and derivative checks."""
        dense = self.n_fixed + 1 + sum(
            nl * b.k for nl, b in zip(self.predictor.n_levels[1:], self.blocks[1:], strict=True))
        with blas_threads_for(dense):
            return self._optimize()

    def _optimize(self) -> GLMMFit:
        theta0 = self.start.get("theta", self.layout.start())
        fam0 = self._family_parameter_start()
        lower_theta = self.layout.lower_bounds()
        extra_lower = [-np.inf] * len(fam0)
        self._warm = None
        stage0: OptSummary | None = None
        if "beta" not in self.start or self.nagq == 0:
            x0 = np.concatenate([theta0, fam0])
            lower0 = np.concatenate([lower_theta, extra_lower])
            # derivatives are wanted at the final optimum only
            stage0 = self._run(x0, lower0, False, None,
                               self.settings.calc_derivs and self.nagq == 0,
                               loose=self.nagq > 0)
            theta_hat, _, lp = self._split(stage0.final, False)
            m0 = self.modes(theta_hat, None, lp)
            if self.nagq == 0:
                return self._finish(stage0, stage0.final, False, m0, None)
            beta_start = self.start.get("beta", m0.beta)
            theta1 = theta_hat
            fam1 = [] if lp is None else [lp]
            se = _fixed_se(m0)
        else:
            beta_start = self.start["beta"]
            theta1, fam1, se = theta0, fam0, np.full(self.n_fixed, 0.1)
        x1 = np.concatenate([theta1, beta_start, fam1])
        lower1 = np.concatenate([lower_theta, np.full(self.n_fixed, -np.inf), extra_lower])
        # BOBYQA's first trust region: theta's usual 0.1-ish, beta's a fifth of its SE
        step = np.concatenate([np.maximum(0.1 * np.abs(theta1), 0.05) * (theta1 > 0)
                               + 0.1 * (theta1 <= 0), 0.2 * se, [0.1] * len(fam1)])
        if self._gradient_applies():
            opt = self._run_with_gradient(x1, lower1, step)
        else:
            opt = self._run(x1, lower1, True, step, self.settings.calc_derivs)
        theta, beta, lp = self._split(opt.final, True)
        assert beta is not None
        m = self.modes(theta, beta, lp)
        return self._finish(opt, opt.final, True, m, stage0)

    def _finish(self, opt: OptSummary, x: np.ndarray, with_beta: bool, m: Modes,
                stage0: OptSummary | None) -> GLMMFit:
        theta, _, lp = self._split(np.asarray(x, dtype=float), with_beta)
        resp = self.response_at(lp)
        # separated data or fitted means the data contradict: reported, never a silent fit
        diverged = divergence_messages(self.X, resp.y, m.mu, resp.family,
                                       self.design.fixed_names, self.design.row_index)
        if diverged:
            opt = replace(opt, converged=False, messages=(*opt.messages, *diverged))
        return GLMMFit(opt=opt, theta=np.array(theta), beta=np.array(m.beta),
                       family=resp.family, dispersion=resp.dispersion, modes=m,
                       stage0=stage0)

    # -- copies -----------------------------------------------------------------------------
    def replace(self, *, formula: str | ParsedFormula | None = None, data: Any = KEEP,
                design: ModelDesign | None = None, y: Any = None, family: Any = None,
                nagq: int | None = None, weights: Any = KEEP, offset: Any = KEEP,
                optimizer: str | None = None, optimizer_settings: Any = KEEP,
                start: Any = KEEP, calc_derivs: bool | None = None,
                laplace: Any = KEEP, reml: bool | None = None) -> Self:
        """A new, unfitted model like this one with the named parts replaced (the one path
        of every refit, as :meth:`ModelStages.replace`); ``reml`` is accepted only as False
        (a GLMM is fitted by maximum likelihood)."""
        if reml:
            raise ArgumentError("a generalized linear mixed model is fitted by maximum "
                                "likelihood: reml=True does not apply")
        s = self.settings
        change = changed_design(self, formula, data, design, weights, offset, y, glm=True)
        base = self.design if change.design is None else change.design
        new_data, new_weights, new_offset = change.data, change.weights, change.offset
        keep_start = start is KEEP and (change.design is None
                                        or base.formula == self.design.formula)
        new_start: Any = (({k: v for k, v in self.start.items()} or None) if keep_start
                          else (None if start is KEEP else start))
        return type(self)(base.formula, new_data,
                          family=self.family if family is None else family,
                          nagq=s.nagq if nagq is None else nagq,
                          weights=new_weights, offset=new_offset,
                          optimizer=s.optimizer if optimizer is None else optimizer,
                          start=new_start,
                          optimizer_settings=(s.optimizer_settings if optimizer_settings
                                              is KEEP else optimizer_settings),
                          calc_derivs=s.calc_derivs if calc_derivs is None else calc_derivs,
                          laplace=s.curvature if laplace is KEEP else laplace,
                          design=base)


def _offset_hint(offset: np.ndarray | None) -> str:
    """A sentence on an offset whose range alone moves the mean by more than e^20."""
    if offset is None or not np.ptp(offset) > 20:
        return ""
    return (f". The offset ranges from {offset.min():.4g} to {offset.max():.4g} on the link "
            "scale: an offset for a log link is log(exposure), not the exposure")


def _fixed_se(m: Modes) -> np.ndarray:
    """Standard errors of beta from the nAGQ = 0 factor (the RX block), for step sizes."""
    p = m.beta.shape[0]
    if p == 0 or m.factor is None:
        return np.full(p, 0.1)
    Lxx = m.factor.xy_diag[:p, :p]
    inv = np.linalg.inv(Lxx)
    return np.sqrt(np.maximum(np.sum(inv * inv, axis=0), 1e-12))
