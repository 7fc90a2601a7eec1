"""Power by simulation, as R's simr (Green & MacLeod 2016): simulate responses from a fitted
model (optionally with a different effect size, optionally extended to more groups), refit each
and count how often the test of a fixed effect rejects at level alpha. The power estimate
comes with a Clopper-Pearson confidence interval for its Monte-Carlo error.

The test is the Wald test of the coefficient -- a t test with Satterthwaite (or another) df for
a linear model, a z test for a GLMM, as simr's defaults -- or, with ``method="lrt"``, the
likelihood-ratio test of the maximum-likelihood fits with and without it. A GLMM is simulated
from its family on the link scale: a different ``effect`` changes the coefficient in the linear
predictor, not the response.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from typing import Any, cast

import numpy as np
import pandas as pd
from scipy import stats

from multilevel.data.frame import to_pandas
from multilevel.data.grouping import GroupingFactor
from multilevel.errors import (
    ArgumentError,
    MultilevelError,
    MultilevelWarning,
    NotApplicableError,
    public_api,
    public_methods,
)
from multilevel.formula.parser import parse_formula
from multilevel.inference.arguments import (
    check_count,
    check_ddf,
    check_finite,
    check_fit,
    check_flag,
    check_n_jobs,
    check_probability,
    check_seed,
    check_text,
)
from multilevel.inference.refit import fixed_in_offset, glmm_at
from multilevel.inference.replicates import run_replicates, simulate_refit, simulate_response
from multilevel.inference.reporting import html_report
from multilevel.models.lmm import ModelStages
from multilevel.optim.optsummary import OptSummary
from multilevel.results.base import MixedModelResult
from multilevel.results.glmm_result import GeneralizedLinearMixedModelResult
from multilevel.results.lmm_result import LinearMixedModelResult
from multilevel.results.varcorr import unique_group_names


@public_methods
@dataclass(frozen=True)
class PowerResult:
    """Result of a power simulation.

    Attributes
    ----------
    test : str
        The fixed effect tested (two-sided t test with ``ddf`` denominator df, z test when
        ``ddf`` is None, likelihood-ratio test when ``method`` is ``"lrt"``).
    power : float
        Share of the successful simulations in which the test rejected.
    ci_lower, ci_upper : float
        95% Clopper-Pearson interval for ``power`` (Monte-Carlo error).
    n_significant, nsim, n_failed : int
    alpha : float
    ddf : str or None
    p_values : numpy.ndarray
        The p-value of each simulation (NaN where the refit failed).
    interrupted : bool
    method : str
        ``"wald"`` or ``"lrt"``.
    """

    test: str
    power: float
    ci_lower: float
    ci_upper: float
    n_significant: int
    nsim: int
    n_failed: int
    alpha: float
    ddf: str | None
    p_values: np.ndarray
    interrupted: bool
    method: str = "wald"

    def __str__(self) -> str:
        kind = ("likelihood-ratio test" if self.method == "lrt"
                else f"t test, {self.ddf} df" if self.ddf else "z test")
        return (f"Power for the test of {self.test} (alpha = {self.alpha}, {kind}): "
                f"{100 * self.power:.1f}% ({100 * self.ci_lower:.1f}%, "
                f"{100 * self.ci_upper:.1f}%) from {self.n_significant} of "
                f"{self.nsim - self.n_failed} simulations")

    def _repr_html_(self) -> str:
        return html_report("Power by simulation", [str(self)], {})


@dataclass(frozen=True)
class _Job:
    """One power simulation's work: refit ``fit``'s model to responses drawn from ``source``
    (the fit, or a copy with the tested coefficient changed) and test column ``column``."""

    fit: MixedModelResult
    source: MixedModelResult
    column: int
    ddf: str | None
    method: str


def _one(job: _Job, seed: np.random.SeedSequence) -> np.ndarray:
    if job.method == "lrt":
        return np.array(_lrt_p_value(job, seed))
    # a GLMM's z test uses lme4's Hessian-based standard errors: keep the derivatives
    refit = simulate_refit(job.fit, seed, job.source,
                           calc_derivs=isinstance(job.fit, GeneralizedLinearMixedModelResult))
    if refit is None:
        return np.array(np.nan)
    table = cast(Any, refit).coef_table(ddf=job.ddf)
    return np.array(table["p_value"].iloc[job.column])


def _lrt_p_value(job: _Job, seed: np.random.SeedSequence) -> float:
    """Likelihood-ratio test of the coefficient: maximum-likelihood fits of the simulated
    response with and without it (the same design, its column dropped)."""
    y = simulate_response(job.source, seed)
    model = job.fit.model
    reduced = fixed_in_offset(model.design, job.column, 0.0)
    fits = []
    try:
        for m in (model.replace(y=y, reml=False, calc_derivs=False),
                  model.replace(design=reduced, y=y, reml=False, calc_derivs=False,
                                start=None)):
            fits.append(-0.5 * _optimum(m))
    except (ArithmeticError, np.linalg.LinAlgError):
        return math.nan
    chisq = max(2.0 * (fits[0] - fits[1]), 0.0)
    return float(stats.chi2.sf(chisq, 1))


def _optimum(model: Any) -> float:
    """The minimized -2 log-likelihood of an optimized model of either kind."""
    found = model.optimize()
    return float(found.fmin if isinstance(found, OptSummary) else found.opt.fmin)


def _resolve_ddf(fit: MixedModelResult, ddf: str | None, method: str) -> str | None:
    """The df of the Wald test: ``"auto"`` is Satterthwaite's for a linear model and the z
    test (None) for a GLMM, whose Wald tests have no denominator df."""
    if method == "lrt":
        return None
    if isinstance(fit, LinearMixedModelResult):
        return "satterthwaite" if ddf == "auto" else ddf
    if ddf not in ("auto", None):
        raise NotApplicableError(
            f"ddf={ddf!r} does not apply to a generalized linear mixed model: its Wald tests are "
            "z tests (glmer's); leave ddf out (or None), or use method='lrt'")
    return None


def _summarize(test: str, p: np.ndarray, alpha: float, ddf: str | None,
               interrupted: bool, method: str) -> PowerResult:
    ok = p[np.isfinite(p)]
    k = int((ok < alpha).sum())
    m = len(ok)
    if m == 0:
        raise MultilevelError("every simulated refit failed; check the model")
    ci = stats.binomtest(k, m).proportion_ci(confidence_level=0.95, method="exact")
    return PowerResult(test=test, power=k / m, ci_lower=float(ci.low), ci_upper=float(ci.high),
                       n_significant=k, nsim=len(p), n_failed=len(p) - m, alpha=alpha, ddf=ddf,
                       p_values=p, interrupted=interrupted, method=method)


@public_api
def power(fit: MixedModelResult, test: str, nsim: int = 1000, alpha: float = 0.05,
          effect: float | None = None, ddf: str | None = "auto", seed: int | None = None,
          n_jobs: int | None = None, progress: bool = True, method: str = "wald",
          ) -> PowerResult:
    """Power of the test of one fixed effect, by simulation from a fitted model.

    Parameters
    ----------
    fit : LinearMixedModelResult or GeneralizedLinearMixedModelResult
        The model to simulate from (its fixed effects, variance components, family and
        design).
    test : str
        Name of the fixed effect tested (as in ``fit.fixed_names``).
    nsim : int
        Number of simulations.
    alpha : float
        Significance level.
    effect : float, optional
        Simulate with this value of the tested coefficient instead of its estimate (simr's
        ``fixef(fit)["x"] <- effect``); on the link scale for a GLMM.
    ddf : str or None, default "auto"
        Denominator df of a linear model's t test (``coef_table``'s ``ddf``; ``"auto"`` is
        ``"satterthwaite"``), None for a z test. A GLMM's Wald test is a z test: only
        ``"auto"`` or None apply.
    method : {"wald", "lrt"}
        The Wald test of the coefficient, or the likelihood-ratio test of the
        maximum-likelihood fits with and without it (chi-square, 1 df).
    seed, n_jobs, progress :
        Random seed (results do not depend on ``n_jobs``), worker processes (default all
        cores), progress bar. Ctrl-C stops early and reports the simulations done.

    Raises
    ------
    NotApplicableError
        A denominator-df method for a GLMM.
    """
    check_fit(fit)
    check_text(test, "test")
    nsim = check_count(nsim, "nsim")
    alpha = check_probability(alpha, "alpha")
    effect = None if effect is None else check_finite(effect, "effect")
    ddf = check_ddf(ddf)
    seed = check_seed(seed)
    n_jobs = check_n_jobs(n_jobs)
    progress = check_flag(progress, "progress")
    method = check_text(method, "method", ("wald", "lrt"))
    ddf = _resolve_ddf(fit, ddf, method)
    if test not in fit.fixed_names:
        raise ArgumentError(f"test={test!r} is not a fixed effect of the model; choose one of "
                              f"{', '.join(fit.fixed_names)}")
    j = fit.fixed_names.index(test)
    source = fit
    if effect is not None:
        beta = fit.beta.copy()
        beta[j] = effect
        source = replace(cast(Any, fit), beta=beta)
    job = _Job(fit=fit, source=source, column=j, ddf=ddf, method=method)
    done, interrupted = run_replicates(_one, job, nsim, seed, n_jobs, progress, "power")
    p = np.concatenate([np.ravel(d) for d in done]) if done else np.empty(0)
    return _summarize(test, p, alpha, ddf, interrupted or len(p) < nsim, method)


def _with_parameters(fit_like: ModelStages, theta: np.ndarray, beta: np.ndarray, sigma: float,
                     optsum: OptSummary) -> LinearMixedModelResult:
    """A result carrying given parameters on a model's design (nothing is estimated)."""
    modes = [np.zeros((n, k)) for n, k in zip(fit_like.A.n_levels, fit_like.A.n_columns,
                                              strict=True)]
    return LinearMixedModelResult(model=fit_like, theta=np.asarray(theta, dtype=float),
                                  beta=np.asarray(beta, dtype=float), sigma=float(sigma),
                                  optsum=optsum, reml=fit_like.reml,
                                  _factor=fit_like.factor(theta), _modes=modes)


@public_api
def extend(fit: MixedModelResult, n_groups: int | None = None,
           n_per_group: int | None = None) -> MixedModelResult:
    """The fitted model on a larger (or smaller) design, simr's ``extend``: ``n_groups``
    levels of its single grouping factor, made by copying the existing groups in turn, and/or
    ``n_per_group`` rows in every group, made by cycling through each group's rows. The
    parameters are the fit's; the response of the copies is a placeholder (simulations replace
    it)."""
    check_fit(fit)
    for label, value in (("n_groups", n_groups), ("n_per_group", n_per_group)):
        if value is not None:
            check_count(value, label, 2)
    design = fit.model.design
    names = {t.factor.name for t in design.terms}
    if len(names) != 1:
        raise MultilevelError("extending the design needs a model with one grouping factor; "
                              f"this one has {', '.join(sorted(names))}")
    for label, value in (("n_groups", n_groups), ("n_per_group", n_per_group)):
        if value is not None and value < 2:
            raise MultilevelError(f"{label} must be at least 2, got {value}")
    codes = design.terms[0].factor.codes
    n_old = int(codes.max()) + 1
    rows_of = [np.flatnonzero(codes == g) for g in range(n_old)]
    n_new = n_groups or n_old
    picked = []
    for g in range(n_new):
        rows = rows_of[g % n_old]
        if n_per_group is not None:
            rows = rows[np.arange(n_per_group) % len(rows)]
        picked.append(rows)
    rows = np.concatenate(picked)
    new_codes = np.concatenate([np.full(len(r), g) for g, r in enumerate(picked)])
    factor = GroupingFactor(name=design.terms[0].factor.name, codes=new_codes,
                            levels=tuple(f"g{g + 1}" for g in range(n_new)))
    terms = tuple(replace(t, factor=factor, Z=t.Z[rows]) for t in design.terms)
    new = replace(design, y=design.y[rows], X=design.X[rows], terms=terms,
                  weights=None if design.weights is None else design.weights[rows],
                  offset=None if design.offset is None else design.offset[rows],
                  row_index=np.arange(len(rows)), n_dropped=0)
    # the copies are not rows of the fit's data: the extended model keeps no data
    model = fit.model.replace(design=new, data=None, calc_derivs=False)
    if isinstance(fit, GeneralizedLinearMixedModelResult):
        return glmm_at(fit, model)
    assert isinstance(fit, LinearMixedModelResult)
    return _with_parameters(model, fit.theta, fit.beta, fit.sigma, fit.optsum)


@public_api
def extend_groups(fit: MixedModelResult, n_groups: int) -> MixedModelResult:
    """``extend(fit, n_groups=n_groups)``."""
    return extend(fit, n_groups=n_groups)


@public_api
def specify(formula: str, data: Any, fixef: dict[str, float],
            covariance: dict[str, Any], sigma: float, reml: bool = True,
            ) -> LinearMixedModelResult:
    """A model with given parameters on a given design, to simulate from (simr's
    ``makeLmer``): no data on the response is needed.

    Parameters
    ----------
    formula : str
        lme4 formula; if the response column is not in ``data``, the model carries one draw
        from itself (seed 0) as its response.
    data : DataFrame
        The design: predictors and grouping factors.
    fixef : dict
        Value of every fixed-effects coefficient, by name (as the model names them).
    covariance : dict
        Per random-effects term, by group name as ``varcorr`` names it (``"Subject"``,
        ``"Subject.1"`` for a second term on the same factor): the standard deviation of a
        scalar term, or the covariance matrix of a vector term.
    sigma : float
        Residual standard deviation.
    """
    frame = to_pandas(data).copy()
    response = parse_formula(formula).response
    placeholder = response not in frame.columns
    if placeholder:  # any non-degenerate values; replaced below by a draw from the model
        frame[response] = np.random.default_rng(0).standard_normal(len(frame))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MultilevelWarning)
        model = ModelStages(formula, frame, reml=reml, calc_derivs=False)
    missing = [n for n in model.design.fixed_names if n not in fixef]
    if missing:
        raise MultilevelError(f"fixef needs a value for every coefficient; missing {missing} "
                              f"(the model's coefficients: {list(model.design.fixed_names)})")
    beta = np.array([float(fixef[n]) for n in model.design.fixed_names])
    theta = np.empty(model.layout.n_theta)
    for name, term in zip(unique_group_names(model.layout), model.layout.terms, strict=True):
        if name not in covariance:
            raise MultilevelError(f"covariance needs an entry for the random-effects term "
                                  f"{name!r} ({', '.join(term.columns)})")
        cov = np.atleast_2d(np.asarray(covariance[name], dtype=float))
        if cov.shape == (1, 1) and term.k == 1:
            cov = cov**2  # a scalar term is given by its standard deviation
        if cov.shape != (term.k, term.k):
            raise MultilevelError(f"covariance[{name!r}] must be a {term.k} x {term.k} matrix "
                                  f"for the columns {list(term.columns)}")
        T = np.linalg.cholesky(cov + 1e-300 * np.eye(term.k)) / sigma
        cols, rows = np.triu_indices(term.k)
        theta[term.theta_offset: term.theta_offset + term.n_theta] = T[rows, cols]
    optsum = OptSummary(backend="specified", initial=theta, final=theta,
                        lower=model.layout.lower_bounds(), fmin=float("nan"), feval=0,
                        elapsed=0.0, return_code="specified", converged=True)
    result = _with_parameters(model, theta, beta, sigma, optsum)
    if placeholder:  # the response becomes one draw from the specified model (seed 0)
        y = result.simulate(1, seed=0)["sim_1"].to_numpy()
        result = _with_parameters(model.replace(y=y), theta, beta, sigma, optsum)
    return result


@public_api
def power_curve(fit: MixedModelResult, test: str, n_groups: list[int] | None = None,
                n_per_group: list[int] | None = None, **options: Any) -> pd.DataFrame:
    """Power over designs of different sizes (simr's ``powerCurve(extend(...))``): every
    combination of ``n_groups`` and ``n_per_group`` (either may be omitted: the fit's own).
    ``options`` go to :func:`power`. Returns one row per design: n_groups, n_per_group, power,
    ci_lower, ci_upper, nsim."""
    check_fit(fit)
    for label, sizes in (("n_groups", n_groups), ("n_per_group", n_per_group)):
        if sizes is not None and (isinstance(sizes, str | bytes)
                                  or not hasattr(sizes, "__iter__")):
            raise ArgumentError(f"{label} must be a list of design sizes, got "
                                f"{type(sizes).__name__} {sizes!r}")
        for value in sizes or []:
            check_count(value, label, 2)
    if not n_groups and not n_per_group:
        raise ArgumentError("give n_groups and/or n_per_group, lists of design sizes")
    rows = []
    group_sizes: list[int | None] = list(n_groups) if n_groups else [None]
    row_sizes: list[int | None] = list(n_per_group) if n_per_group else [None]
    for g in group_sizes:
        for m in row_sizes:
            r = power(extend(fit, n_groups=g, n_per_group=m), test, **options)
            rows.append({"n_groups": g if g is not None else fit.ngroups[
                             next(iter(fit.ngroups))],
                         "n_per_group": m, "power": r.power, "ci_lower": r.ci_lower,
                         "ci_upper": r.ci_upper, "nsim": r.nsim - r.n_failed})
    table = pd.DataFrame(rows)
    keys = [k for k, v in (("n_groups", n_groups), ("n_per_group", n_per_group)) if v]
    return table.set_index(keys)
