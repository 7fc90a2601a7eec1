"""Profile-likelihood intervals, as lme4's ``profile`` / ``confint(method = "profile")``.

For each parameter psi_k -- the random-effects standard deviations and correlations and sigma
(lme4's ``sd_...``, ``cor_...``, ``sigma``), then the fixed effects -- the signed root deviance

    zeta(v) = sign(v - psi_k_hat) sqrt(D_min(psi_k = v) - D_hat)

is computed from the maximum-likelihood deviance minimized over all other parameters, and the
interval is where |zeta| <= z_(1 + level)/2. Like lme4, REML fits are profiled on the ML
deviance of their ML refit. A standard deviation whose profile stays below z down to 0 gets
the lower bound 0 (and a correlation that reaches +-1, that bound).

* fixed effect beta_j = v: the model without column j and with v x_j added to the offset;
* sigma = v: the ML deviance at that sigma, minimized over theta;
* an sd or a correlation: the other sd/cor parameters and sigma are optimized (BOBYQA), each
  term's covariance rebuilt as diag(sd) R diag(sd) and theta = chol(Sigma) / sigma.

A generalized linear mixed model is profiled as lme4's ``profile.merMod`` profiles a glmer fit:
its sd/cor parameters (and sigma = sqrt(dispersion) for a family with one), then its fixed
effects, each held at a value while the deviance (-2 log L by the Laplace approximation or
adaptive quadrature, the fit's own criterion) is minimized over every other parameter -- the
other sd/cor, all fixed effects, and a negative binomial's size -- by BOBYQA from the estimates.
"""

from __future__ import annotations

import math
import warnings

import nlopt
import numpy as np
import pandas as pd
from scipy import optimize, stats

from multilevel.covariance.relative_factor import ThetaLayout
from multilevel.errors import ArgumentError, ConvergenceWarning, public_api
from multilevel.inference.arguments import check_count, check_fit, check_probability
from multilevel.inference.model_comparison import refit_ml
from multilevel.inference.refit import fixed_in_offset
from multilevel.linalg.blocked_cholesky import NotPositiveDefinite, profiled_terms
from multilevel.results.base import MixedModelResult, register_confint
from multilevel.results.glmm_result import GeneralizedLinearMixedModelResult
from multilevel.results.lmm_result import LinearMixedModelResult


def _semidefinite_cholesky(S: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor that tolerates zero pivots (a zero standard deviation)."""
    k = S.shape[0]
    L = np.zeros_like(S)
    for j in range(k):
        d = S[j, j] - L[j, :j] @ L[j, :j]
        if d <= 1e-14 * max(S[j, j], 1e-300):
            continue  # column stays zero
        L[j, j] = math.sqrt(d)
        for i in range(j + 1, k):
            L[i, j] = (S[i, j] - L[i, :j] @ L[j, :j]) / L[j, j]
    return L


def sdcor_slots(layout: ThetaLayout) -> list[tuple[int, int, int]]:
    """(term, row, column) of every sd/cor parameter, in lme4's order (the sd of a term's
    columns on the diagonal, their correlations below it)."""
    slots: list[tuple[int, int, int]] = []
    for t, term in enumerate(layout.terms):
        cols, rows = np.triu_indices(term.k)
        slots += [(t, int(r), int(c)) for r, c in zip(rows, cols, strict=True)]
    return slots


def theta_from_sdcor(layout: ThetaLayout, slots: list[tuple[int, int, int]],
                     values: np.ndarray, scale: float) -> np.ndarray | None:
    """theta from the sd/cor parameters (random-effects covariances Sigma, theta the lower
    Cholesky factor of Sigma / scale^2); None if infeasible (a negative sd, a correlation
    matrix that is not positive semidefinite)."""
    theta = np.empty(layout.n_theta)
    pos = 0
    for term in layout.terms:
        k = term.k
        block = values[pos: pos + term.n_theta]
        sd = np.zeros(k)
        R = np.eye(k)
        for (_, r, c), value in zip(slots[pos: pos + term.n_theta], block, strict=True):
            if r == c:
                sd[r] = value
            else:
                R[r, c] = R[c, r] = value
        if np.any(sd < 0) or np.any(np.abs(R) > 1 + 1e-12):
            return None
        if k > 1 and np.linalg.eigvalsh(R).min() < -1e-10:
            return None
        T = _semidefinite_cholesky(np.outer(sd, sd) * R) / scale
        cols, rows = np.triu_indices(k)
        theta[term.theta_offset: term.theta_offset + term.n_theta] = T[rows, cols]
        pos += term.n_theta
    return theta


class _Deviance:
    """ML deviance of the (ML) fit as a function of sd/cor/sigma or of theta and sigma."""

    def __init__(self, fit: LinearMixedModelResult) -> None:
        self.fit = fit
        self.model = fit.model
        self.layout = fit.model.layout
        self.slots = sdcor_slots(self.layout)  # (term, row, col) of each sd/cor parameter

    def at_theta(self, theta: np.ndarray, sigma: float) -> float:
        try:
            logdet_re, logdet_x, pwrss = profiled_terms(self.model.A,
                                                        self.layout.templates(theta))
        except NotPositiveDefinite:
            return math.inf
        return self.model.response.criterion(logdet_re, logdet_x, pwrss, reml=False,
                                             sigma=sigma)

    def theta_of(self, psi: np.ndarray) -> np.ndarray | None:
        """theta from sd/cor parameters and sigma (psi[-1]); None if infeasible."""
        return theta_from_sdcor(self.layout, self.slots, psi[:-1], psi[-1])

    def at_psi(self, psi: np.ndarray) -> float:
        theta = self.theta_of(psi)
        return math.inf if theta is None or psi[-1] <= 0 else self.at_theta(theta, psi[-1])


def _minimize(fun, x0: np.ndarray, lower: np.ndarray, upper: np.ndarray,
              step: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    if x0.size == 0:
        return x0, float(fun(x0))
    best: list[tuple[float, np.ndarray]] = []

    def tracked(x: np.ndarray, grad: np.ndarray) -> float:
        value = float(fun(np.asarray(x)))
        if not best or value < best[0][0]:
            best[:] = [(value, np.array(x))]
        return value

    opt = nlopt.opt(nlopt.LN_BOBYQA, x0.size)
    opt.set_min_objective(tracked)
    opt.set_lower_bounds(lower)
    opt.set_upper_bounds(upper)
    opt.set_ftol_abs(1e-10)
    opt.set_xtol_rel(1e-8)
    opt.set_maxeval(5000)
    opt.set_initial_step(np.maximum(0.05 * np.abs(x0), 1e-3) if step is None else step)
    try:
        opt.optimize(np.clip(x0, lower, upper))
    except nlopt.RoundoffLimited:
        pass  # no further progress possible in floating point: the best point stands
    return best[0][1], best[0][0]


class _Profiler:
    def __init__(self, fit: LinearMixedModelResult) -> None:
        ml = refit_ml(fit)
        assert isinstance(ml, LinearMixedModelResult)
        self.ml = ml
        self.dev = _Deviance(self.ml)
        self.d_hat = self.ml.objective
        self.psi_hat = self.ml.sdcor.to_numpy()
        self.names = list(self.ml.sdcor.index)
        n_var = len(self.psi_hat) - 1
        self.lower = np.array([0.0 if r == c else -1.0 for _, r, c in self.dev.slots] + [1e-12])
        self.upper = np.array([np.inf if r == c else 1.0 for _, r, c in self.dev.slots]
                              + [np.inf])
        assert len(self.lower) == n_var + 1
        self._warm: dict[int, np.ndarray] = {}

    def zeta_variance(self, k: int, v: float) -> float:
        """Signed root deviance with sd/cor/sigma parameter k fixed at v."""
        free = np.ones(len(self.psi_hat), dtype=bool)
        free[k] = False
        start = self._warm.get(k, self.psi_hat)[free]

        def fun(x: np.ndarray) -> float:
            psi = self.psi_hat.copy()
            psi[free] = x
            psi[k] = v
            return self.dev.at_psi(psi)

        x, value = _minimize(fun, start, self.lower[free], self.upper[free])
        if k in self._warm:
            # The warm start (the optimum at the previous point on this profile) can leave
            # BOBYQA in another basin after a far jump of the bracket search: measured on a
            # weighted sleepstudy fit, the profile at the estimate itself came out 14 deviance
            # units too high. A second start from the estimates keeps the profile a minimum.
            x2, value2 = _minimize(fun, self.psi_hat[free], self.lower[free],
                                   self.upper[free])
            if value2 < value:
                x, value = x2, value2
        warm = self.psi_hat.copy()
        warm[free] = x
        warm[k] = v
        self._warm[k] = warm
        return math.copysign(math.sqrt(max(value - self.d_hat, 0.0)), v - self.psi_hat[k])

    def zeta_fixed(self, j: int, v: float) -> float:
        """Signed root deviance with fixed effect j fixed at v (offset trick)."""
        fit = self.ml
        reduced = fixed_in_offset(fit.model.design, j, v)
        model = fit.model.replace(design=reduced, start=fit.theta, calc_derivs=False)
        value = model.optimize().fmin
        return math.copysign(math.sqrt(max(value - self.d_hat, 0.0)), v - fit.beta[j])


class _GLMMProfiler:
    """Profiles of a GLMM's deviance over the vector x = (sd/cor[, sigma], beta[, log
    size]): one coordinate held, the rest minimized (see the module docstring)."""

    def __init__(self, fit: GeneralizedLinearMixedModelResult) -> None:
        self.ml = fit
        # a copy: its PIRLS warm starts move with the profile, not the user's model's
        self.model = fit.model.replace(calc_derivs=False)
        layout = self.model.layout
        self.layout = layout
        self.slots = sdcor_slots(layout)
        self.names = list(fit.sdcor.index)
        self.psi_hat = fit.sdcor.to_numpy()
        self.has_sigma = fit.family.has_dispersion
        extra = ([math.log(fit.nb_size)] if self.model.estimate_size and fit.nb_size
                 else [])
        p = len(fit.beta)
        self.n_psi = len(self.psi_hat)
        self.x_hat = np.concatenate([self.psi_hat, fit.beta, extra])
        cor = [r != c for _, r, c in self.slots] + [False] * (self.n_psi - len(self.slots))
        self.lower = np.concatenate([[-1.0 if c else 0.0 for c in cor],
                                     np.full(p + len(extra), -np.inf)])
        self.upper = np.concatenate([[1.0 if c else np.inf for c in cor],
                                     np.full(p + len(extra), np.inf)])
        se = fit.coef_table(ddf=None)["std_error"].to_numpy()
        self.step = np.concatenate([np.maximum(0.05 * np.abs(self.psi_hat), 1e-3),
                                    np.maximum(0.2 * se, 1e-4), [0.1] * len(extra)])
        self.d_hat = min(fit.objective, self.deviance(self.x_hat))

    def deviance(self, x: np.ndarray) -> float:
        """-2 log L at x (infinite where the parameters are infeasible or PIRLS fails)."""
        n_vc = len(self.slots)
        theta = theta_from_sdcor(self.layout, self.slots, x[:n_vc], 1.0)
        if theta is None:
            return math.inf
        p = len(self.ml.beta)
        beta = x[self.n_psi: self.n_psi + p]
        family_parameter = None
        if self.has_sigma:
            if x[n_vc] <= 0:
                return math.inf
            family_parameter = float(x[n_vc]) ** 2
        elif x.size > self.n_psi + p:
            family_parameter = math.exp(float(x[-1]))
        try:
            return self.model.objective(theta, beta, family_parameter)
        except (ArithmeticError, np.linalg.LinAlgError):
            return math.inf

    def _zeta(self, index: int, v: float) -> float:
        free = np.ones(self.x_hat.size, dtype=bool)
        free[index] = False

        def fun(x: np.ndarray) -> float:
            full = self.x_hat.copy()
            full[free] = x
            full[index] = v
            return self.deviance(full)

        # one start, from the estimates: warm starts from the previous profile point can leave
        # BOBYQA in another basin (see _Profiler.zeta_variance), and on cbpp a start from the
        # estimates alone gave the same bounds for half the evaluations of both starts
        _, value = _minimize(fun, self.x_hat[free], self.lower[free], self.upper[free],
                             self.step[free])
        return math.copysign(math.sqrt(max(value - self.d_hat, 0.0)), v - self.x_hat[index])

    def zeta_variance(self, k: int, v: float) -> float:
        """Signed root deviance with sd/cor/sigma parameter k held at v."""
        return self._zeta(k, v)

    def zeta_fixed(self, j: int, v: float) -> float:
        """Signed root deviance with fixed effect j held at v."""
        return self._zeta(self.n_psi + j, v)


def _profiler(fit: MixedModelResult) -> _Profiler | _GLMMProfiler:
    if isinstance(fit, GeneralizedLinearMixedModelResult):
        return _GLMMProfiler(fit)
    assert isinstance(fit, LinearMixedModelResult)
    return _Profiler(fit)


def _bound(zeta, center: float, scale: float, z: float, side: int,
           limit: float | None) -> float:
    """Root of zeta(v) = side * z on one side of center, expanding the bracket."""
    step = max(scale, 1e-8)
    inner = center
    outer = center + side * step
    for _ in range(60):
        if limit is not None and side * (outer - limit) >= 0:
            outer = limit
            if side * zeta(outer) < z:
                return limit
            break
        if side * zeta(outer) >= z:
            break
        inner, step = outer, step * 2
        outer = center + side * step
    else:
        return math.nan
    a, b = min(inner, outer), max(inner, outer)
    fa, fb = zeta(a) - side * z, zeta(b) - side * z
    if fa * fb > 0:
        # the profile is not monotone between the points that bracketed it (lme4 reports NA
        # with a warning); never an interval bound that is not a root
        warnings.warn(f"the profile could not bracket its {'upper' if side > 0 else 'lower'} "
                      f"bound near {center:.6g} (it is not monotone there); the bound is NaN",
                      ConvergenceWarning, stacklevel=3)
        return math.nan
    return float(optimize.brentq(lambda v: zeta(v) - side * z, a, b,
                                 xtol=1e-10 * max(abs(center), 1.0), rtol=1e-10))


@public_api
def profile_confint(fit: MixedModelResult, level: float = 0.95) -> pd.DataFrame:
    """Profile-likelihood intervals for the sd/cor parameters, sigma (where the model has a
    residual scale) and the fixed effects, of a linear or generalized linear mixed model."""
    check_fit(fit)
    level = check_probability(level, "level")
    prof = _profiler(fit)
    z = float(stats.norm.ppf((1 + level) / 2))
    rows: dict[str, tuple[float, float]] = {}
    ml = prof.ml
    for k, name in enumerate(prof.names):
        est = prof.psi_hat[k]
        is_cor = name.startswith("cor_")
        scale = 0.25 if is_cor else max(0.2 * abs(est), 1e-3 * ml.sigma)
        lo_limit = -1.0 if is_cor else 0.0
        hi_limit = 1.0 if is_cor else None

        def zeta(v: float, k: int = k) -> float:
            return prof.zeta_variance(k, v)

        rows[name] = (_bound(zeta, est, scale, z, -1, lo_limit),
                      _bound(zeta, est, scale, z, +1, hi_limit))
    se = ml.coef_table(ddf=None)["std_error"].to_numpy()
    for j, name in enumerate(ml.fixed_names):

        def zeta_b(v: float, j: int = j) -> float:
            return prof.zeta_fixed(j, v)

        rows[name] = (_bound(zeta_b, ml.beta[j], se[j], z, -1, None),
                      _bound(zeta_b, ml.beta[j], se[j], z, +1, None))
    return pd.DataFrame.from_dict(rows, orient="index", columns=["lower", "upper"])


def _profile_confint(fit: MixedModelResult, level: float, **options: object,
                     ) -> pd.DataFrame:
    if options:
        raise ArgumentError(f"confint(method='profile') takes no options, got {sorted(options)}")
    return profile_confint(fit, level)


register_confint("profile", _profile_confint)


@public_api
def profile(fit: MixedModelResult, level: float = 0.99, n: int = 9) -> pd.DataFrame:
    """The zeta profiles (lme4's ``profile``): for each parameter, ``n`` values across its
    ``level`` profile interval and the signed root deviance at each.

    Returns
    -------
    pandas.DataFrame
        Long format: parameter, value, zeta. zeta is 0 at the estimate, +-z at the interval's
        ends; a straight line in value means a quadratic (Wald-like) likelihood.
    """
    check_fit(fit)
    level = check_probability(level, "level")
    n = check_count(n, "n", 3)
    ci = profile_confint(fit, level)
    prof = _profiler(fit)
    rows = []
    lows = ci["lower"].to_dict()
    highs = ci["upper"].to_dict()
    for k, name in enumerate(prof.names):
        for v in np.linspace(float(lows[name]), float(highs[name]), n):
            rows.append((name, float(v), prof.zeta_variance(k, float(v))))
    for j, name in enumerate(prof.ml.fixed_names):
        for v in np.linspace(float(lows[name]), float(highs[name]), n):
            rows.append((name, float(v), prof.zeta_fixed(j, float(v))))
    return pd.DataFrame(rows, columns=["parameter", "value", "zeta"])
