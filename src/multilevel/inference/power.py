"""Power by simulation, as R's simr (Green & MacLeod 2016): simulate responses from a fitted
model (optionally with a different effect size, optionally extended to more groups), refit each
and count how often the test of a fixed effect rejects at level alpha. The power estimate
comes with a Clopper-Pearson confidence interval for its Monte-Carlo error.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from multilevel.data.grouping import GroupingFactor
from multilevel.errors import MultilevelError
from multilevel.inference.replicates import run_replicates
from multilevel.inference.reporting import html_report
from multilevel.models.lmm import ModelStages
from multilevel.results.lmm_result import LinearMixedModelResult


@dataclass(frozen=True)
class PowerResult:
    """Result of a power simulation.

    Attributes
    ----------
    test : str
        The fixed effect tested (two-sided t test with ``ddf`` denominator df).
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

    def __str__(self) -> str:
        kind = f"t test, {self.ddf} df" if self.ddf else "z test"
        return (f"Power for the test of {self.test} (alpha = {self.alpha}, {kind}): "
                f"{100 * self.power:.1f}% ({100 * self.ci_lower:.1f}%, "
                f"{100 * self.ci_upper:.1f}%) from {self.n_significant} of "
                f"{self.nsim - self.n_failed} simulations")

    def _repr_html_(self) -> str:
        return html_report("Power by simulation", [str(self)], {})


@dataclass(frozen=True)
class _Job:
    fit: LinearMixedModelResult
    column: int
    mean_shift: np.ndarray
    ddf: str | None


def _one(job: _Job, seed: np.random.SeedSequence) -> np.ndarray:
    fit = job.fit
    y = fit.simulate(1, seed=int(np.random.default_rng(seed).integers(2**63)))["sim_1"]
    model = fit.model.with_response(y.to_numpy() + job.mean_shift)
    model.calc_derivs = False
    try:
        refit = LinearMixedModelResult.from_model(model, model.optimize())
        return np.array(refit.coef_table(ddf=job.ddf)["p_value"].iloc[job.column])
    except (ArithmeticError, np.linalg.LinAlgError):
        return np.array(np.nan)


def _summarize(test: str, p: np.ndarray, alpha: float, ddf: str | None,
               interrupted: bool) -> PowerResult:
    ok = p[np.isfinite(p)]
    k = int((ok < alpha).sum())
    m = len(ok)
    if m == 0:
        raise MultilevelError("every simulated refit failed; check the model")
    ci = stats.binomtest(k, m).proportion_ci(confidence_level=0.95, method="exact")
    return PowerResult(test=test, power=k / m, ci_lower=float(ci.low), ci_upper=float(ci.high),
                       n_significant=k, nsim=len(p), n_failed=len(p) - m, alpha=alpha, ddf=ddf,
                       p_values=p, interrupted=interrupted)


def power(fit: LinearMixedModelResult, test: str, nsim: int = 1000, alpha: float = 0.05,
          effect: float | None = None, ddf: str | None = "satterthwaite",
          seed: int | None = None, n_jobs: int | None = None, progress: bool = True,
          ) -> PowerResult:
    """Power of the t test of one fixed effect, by simulation from a fitted model.

    Parameters
    ----------
    fit : LinearMixedModelResult
        The model to simulate from (its fixed effects, variance components and design).
    test : str
        Name of the fixed effect tested (as in ``fit.fixed_names``).
    nsim : int
        Number of simulations.
    alpha : float
        Significance level.
    effect : float, optional
        Simulate with this value of the tested coefficient instead of its estimate (simr's
        ``fixef(fit)["x"] <- effect``).
    ddf : str or None
        Denominator df of the t test (``coef_table``'s ``ddf``); None for a z test.
    seed, n_jobs, progress :
        Random seed (results do not depend on ``n_jobs``), worker processes (default all
        cores), progress bar. Ctrl-C stops early and reports the simulations done.
    """
    if test not in fit.fixed_names:
        raise MultilevelError(f"{test!r} is not a fixed effect of the model; choose one of "
                              f"{', '.join(fit.fixed_names)}")
    if not 0 < alpha < 1:
        raise MultilevelError(f"alpha must be between 0 and 1, got {alpha}")
    j = fit.fixed_names.index(test)
    shift = np.zeros(fit.nobs)
    if effect is not None:
        shift = (effect - fit.beta[j]) * fit.model.design.X[:, j]
    job = _Job(fit=fit, column=j, mean_shift=shift, ddf=ddf)
    done, interrupted = run_replicates(_one, job, nsim, seed, n_jobs, progress, "power")
    p = np.concatenate([np.ravel(d) for d in done]) if done else np.empty(0)
    return _summarize(test, p, alpha, ddf, interrupted or len(p) < nsim)


def extend_groups(fit: LinearMixedModelResult, n_groups: int) -> LinearMixedModelResult:
    """The fitted model on a design with ``n_groups`` levels of its (single) grouping factor,
    made by copying the existing groups' rows in turn (simr's ``extend(along = g)``); the
    parameters are the fit's. The response of the copies is a placeholder (simulations
    replace it)."""
    design = fit.model.design
    names = {t.factor.name for t in design.terms}
    if len(names) != 1:
        raise MultilevelError("extending the number of groups needs a model with one grouping "
                              f"factor; this one has {', '.join(sorted(names))}")
    if n_groups < 2:
        raise MultilevelError(f"n_groups must be at least 2, got {n_groups}")
    codes = design.terms[0].factor.codes
    n_old = int(codes.max()) + 1
    rows_of = [np.flatnonzero(codes == g) for g in range(n_old)]
    rows = np.concatenate([rows_of[g % n_old] for g in range(n_groups)])
    new_codes = np.concatenate([np.full(len(rows_of[g % n_old]), g) for g in range(n_groups)])
    factor = GroupingFactor(name=design.terms[0].factor.name, codes=new_codes,
                            levels=tuple(f"g{g + 1}" for g in range(n_groups)))
    terms = tuple(replace(t, factor=factor, Z=t.Z[rows]) for t in design.terms)
    new = replace(design, y=design.y[rows], X=design.X[rows], terms=terms,
                  weights=None if design.weights is None else design.weights[rows],
                  offset=None if design.offset is None else design.offset[rows],
                  row_index=np.arange(len(rows)), n_dropped=0)
    model = ModelStages(design.formula, None, reml=fit.reml, design=new, calc_derivs=False)
    # the fit's parameters on the larger design (nothing is re-estimated from the copies)
    modes = [np.zeros((n, k)) for n, k in zip(model.A.n_levels, model.A.n_columns,
                                              strict=True)]
    return LinearMixedModelResult(model=model, theta=fit.theta, beta=fit.beta,
                                  sigma=fit.sigma, optsum=fit.optsum, reml=fit.reml,
                                  _factor=model.factor(fit.theta), _modes=modes)


def power_curve(fit: LinearMixedModelResult, test: str, n_groups: list[int],
                **options: Any) -> pd.DataFrame:
    """Power at several numbers of groups (simr's ``powerCurve(extend(...))``); ``options``
    go to :func:`power`. Returns one row per number of groups: power, ci_lower, ci_upper,
    nsim."""
    rows = []
    for g in n_groups:
        r = power(extend_groups(fit, g), test, **options)
        rows.append({"n_groups": g, "power": r.power, "ci_lower": r.ci_lower,
                     "ci_upper": r.ci_upper, "nsim": r.nsim - r.n_failed})
    return pd.DataFrame(rows).set_index("n_groups")
