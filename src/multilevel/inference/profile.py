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
"""

from __future__ import annotations

import math
import warnings
from dataclasses import replace

import nlopt
import numpy as np
import pandas as pd
from scipy import optimize, stats

from multilevel.errors import ArgumentError, ConvergenceWarning, public_api
from multilevel.inference.arguments import check_count, check_fit, check_probability
from multilevel.inference.model_comparison import refit_ml
from multilevel.linalg.blocked_cholesky import NotPositiveDefinite, profiled_terms
from multilevel.results.lmm_result import LinearMixedModelResult, register_confint


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


class _Deviance:
    """ML deviance of the (ML) fit as a function of sd/cor/sigma or of theta and sigma."""

    def __init__(self, fit: LinearMixedModelResult) -> None:
        self.fit = fit
        self.model = fit.model
        self.layout = fit.model.layout
        self.slots: list[tuple[int, int, int]] = []  # (term, row, col) of each sd/cor parameter
        for t, term in enumerate(self.layout.terms):
            cols, rows = np.triu_indices(term.k)
            self.slots += [(t, int(r), int(c)) for r, c in zip(rows, cols, strict=True)]

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
        sigma = psi[-1]
        theta = np.empty(self.layout.n_theta)
        pos = 0
        for term in self.layout.terms:
            k = term.k
            block = psi[pos: pos + term.n_theta]
            sd = np.zeros(k)
            R = np.eye(k)
            for (_, r, c), value in zip(self.slots[pos: pos + term.n_theta], block,
                                         strict=True):
                if r == c:
                    sd[r] = value
                else:
                    R[r, c] = R[c, r] = value
            if np.any(sd < 0) or np.any(np.abs(R) > 1 + 1e-12):
                return None
            if k > 1 and np.linalg.eigvalsh(R).min() < -1e-10:
                return None
            T = _semidefinite_cholesky(np.outer(sd, sd) * R) / sigma
            cols, rows = np.triu_indices(k)
            theta[term.theta_offset: term.theta_offset + term.n_theta] = T[rows, cols]
            pos += term.n_theta
        return theta

    def at_psi(self, psi: np.ndarray) -> float:
        theta = self.theta_of(psi)
        return math.inf if theta is None or psi[-1] <= 0 else self.at_theta(theta, psi[-1])


def _minimize(fun, x0: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> tuple[
        np.ndarray, float]:
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
    step = np.maximum(0.05 * np.abs(x0), 1e-3)
    opt.set_initial_step(step)
    try:
        opt.optimize(np.clip(x0, lower, upper))
    except nlopt.RoundoffLimited:
        pass  # no further progress possible in floating point: the best point stands
    return best[0][1], best[0][0]


class _Profiler:
    def __init__(self, fit: LinearMixedModelResult) -> None:
        self.ml = refit_ml(fit)
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
        design = fit.model.design
        keep = np.ones(design.X.shape[1], dtype=bool)
        keep[j] = False
        offset = v * design.X[:, j] + (0.0 if design.offset is None else design.offset)
        reduced = replace(design, X=np.ascontiguousarray(design.X[:, keep]),
                          fixed_names=tuple(n for n, k in zip(design.fixed_names, keep,
                                                              strict=True) if k),
                          offset=offset, fixed_spec=None)
        model = fit.model.replace(design=reduced, start=fit.theta, calc_derivs=False)
        value = model.optimize().fmin
        return math.copysign(math.sqrt(max(value - self.d_hat, 0.0)), v - fit.beta[j])


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
def profile_confint(fit: LinearMixedModelResult, level: float = 0.95) -> pd.DataFrame:
    """Profile-likelihood intervals for the sd/cor parameters, sigma and the fixed effects."""
    check_fit(fit)
    level = check_probability(level, "level")
    prof = _Profiler(fit)
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


def _profile_confint(fit: LinearMixedModelResult, level: float, **options: object,
                     ) -> pd.DataFrame:
    if options:
        raise ArgumentError(f"confint(method='profile') takes no options, got {sorted(options)}")
    return profile_confint(fit, level)


register_confint("profile", _profile_confint)


@public_api
def profile(fit: LinearMixedModelResult, level: float = 0.99, n: int = 9) -> pd.DataFrame:
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
    prof = _Profiler(fit)
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
