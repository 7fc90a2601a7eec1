"""The Bayesian research cycle: checking priors before the data speak, and carrying what one
study learnt into the priors of the next.

- :func:`prior_predictive` samples the prior of a model (NUTS on the log prior, the data's
  design kept) and draws replicated responses from it: brms's ``brm(..., sample_prior =
  "only")`` followed by ``posterior_predict``. :class:`PriorPredictive` compares them with the
  observed response.
- :func:`priors_from_posterior` turns a fit's posterior into ``ml.prior(...)`` priors for the
  next study by matching moments, parameter by parameter: normal for coefficients and the
  intercept, lognormal for standard deviations and sigma / shape, LKJ for correlations (whose
  eta matches only their average concentration). Group effects are not carried: the next study
  has its own groups.

Moment matching keeps each parameter's marginal and drops the dependence between parameters;
with the centred intercept (brms's class ``Intercept``) the strongest dependence, intercept
against slopes, is mostly gone, which is why sequential updating with these priors comes
close to a fit of the pooled data (see docs/bayes_research_cycle.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from multilevel.bayesian.priors import Prior, prior
from multilevel.data.frame import to_pandas
from multilevel.errors import ArgumentError, DataError

if TYPE_CHECKING:
    from multilevel.bayesian.model_spec import BayesModel, LinearPart
    from multilevel.bayesian.result import BayesResult

# The smallest LKJ concentration carried forward: below 1/2 the LKJ density piles up at
# correlations of +-1 for 2 x 2 blocks, which no posterior of a real study argues for.
MIN_LKJ_ETA = 0.5

# Quantiles of the prior predictive summary.
_QUANTILES = (0.025, 0.25, 0.5, 0.75, 0.975)


# ---------------------------------------------------------------------------------------------
# Priors from a posterior


def _number(x: float) -> str:
    """A float as Python's ``repr`` writes it: the shortest text that reads back to the same
    double, so a prior carries the posterior's moments without rounding."""
    return repr(float(x))


def _moments(x: np.ndarray, what: str) -> tuple[float, float]:
    """Mean and SD of a parameter's draws, checked usable as a prior's location and scale."""
    x = np.asarray(x, dtype=float).ravel()
    if x.size < 2:
        raise ArgumentError(f"{what} has {x.size} draw; priors_from_posterior needs at least 2 "
                            "(fit with more draws)")
    mean, sd = float(np.mean(x)), float(np.std(x, ddof=1))
    if not (math.isfinite(mean) and math.isfinite(sd)) or sd <= 0.0:
        raise ArgumentError(f"the draws of {what} have mean {mean} and SD {sd}; a prior needs a "
                            "finite mean and a positive SD: check the fit's convergence")
    return mean, sd


def _normal(x: np.ndarray, what: str, class_: str, coef: str = "", nlpar: str = "") -> Prior:
    mean, sd = _moments(x, what)
    return prior(f"normal({_number(mean)}, {_number(sd)})", class_=class_, coef=coef,
                 nlpar=nlpar)


def _lognormal(x: np.ndarray, what: str, class_: str, coef: str = "", group: str = "",
               nlpar: str = "") -> Prior:
    x = np.asarray(x, dtype=float)
    if not np.all(x > 0):
        raise ArgumentError(f"the draws of {what} are not all positive; cannot carry them as a "
                            "lognormal prior")
    mean, sd = _moments(np.log(x), f"log({what})")
    return prior(f"lognormal({_number(mean)}, {_number(sd)})", class_=class_, coef=coef,
                 group=group, nlpar=nlpar)


def lkj_eta(mean_square: float, k: int) -> float:
    """The LKJ(eta) concentration of a k x k correlation matrix whose correlations have
    ``E[r^2] = mean_square``: under LKJ(eta) every correlation has mean 0 and variance
    1 / (2 eta + k - 1), so eta = (1 / E[r^2] - (k - 1)) / 2, at least :data:`MIN_LKJ_ETA`."""
    if not 0.0 < mean_square <= 1.0:
        raise ArgumentError(f"a mean squared correlation lies in (0, 1], got {mean_square}")
    return max(MIN_LKJ_ETA, (1.0 / mean_square - (k - 1)) / 2.0)


def _new_means(part: LinearPart, frame: pd.DataFrame) -> np.ndarray:
    """Column means of the part's non-intercept fixed-effects columns on the next study's
    rows, built with the fit's encoding (factor levels, contrasts, spline knots)."""
    from multilevel.results.prediction import replay_matrix
    text = part.design.formula.fixed if part.design is not None else part.formula
    X, cols = replay_matrix(part.fixed_spec, text, frame, "fixed-effects matrix")
    missing = [n for n in part.r_names if n not in cols]
    if missing:
        raise DataError(f"newdata does not give the fixed-effects columns {missing}; the next "
                        "study must have the fit's covariates (and factor levels)")
    X = X[:, [cols.index(n) for n in part.r_names]]
    return np.asarray(X[:, 1:].mean(axis=0))


def priors_from_posterior(fit: BayesResult, newdata: Any = None) -> list[Prior]:
    """Priors for the next study from the posterior of this one, matched moment by moment.

    Each parameter's posterior becomes a prior of the same class (brms's names; pass the list
    as ``priors=`` to the next ``ml.bayes`` / ``ml.bayes_nlme`` of the same model):

    - each coefficient (class ``b``, per coef and nlpar): ``normal(mean, sd)`` of its draws;
    - the intercept of the centred design (class ``Intercept``): ``normal(mean, sd)`` of the
      next study's centred intercept, ``b_Intercept + mean_new(X) . b``. With ``newdata`` (the
      next study's rows), ``mean_new(X)`` are its column means, computed with this fit's
      encoding of the covariates. Without it, this fit's own centred ``Intercept`` draws are
      used, which is right when the next study's covariate means are close to this one's;
    - each group-level SD (per group, coef and nlpar) and sigma / shape:
      ``lognormal(mean(log x), sd(log x))``;
    - the correlations of each group's block: ``lkj(eta)`` with eta matched to their average
      ``E[r^2]`` (under a k x k LKJ(eta) each correlation has variance 1 / (2 eta + k - 1)),
      at least 0.5. LKJ is centred at 0: it carries how concentrated the correlations were,
      not where (a posterior correlation of 0.6 is carried as the spread of one about 0).

    The group effects themselves are not carried (the next study has its own groups); their
    SDs and correlations are. Moment matching keeps every parameter's marginal and drops the
    dependence between parameters, so the next fit approximates a fit of the pooled data (the
    research-cycle example in the docs measures how closely). The numbers are written with
    Python's ``repr`` (every digit of the double), not rounded.

    Parameters
    ----------
    fit : BayesResult
        A fit of ``ml.bayes`` or ``ml.bayes_nlme``.
    newdata : DataFrame, optional
        The next study's rows (their covariates; the response is not needed), for its centred
        intercept. Rows with missing covariates must be left out first.

    Returns
    -------
    list of Prior
        One prior per parameter of ``fit.prior_summary()``, in its order.

    Raises
    ------
    ArgumentError
        ``fit`` is not a Bayesian fit, or a parameter's draws cannot give a prior (fewer than
        two, or none with spread).
    DataError
        ``newdata`` lacks a covariate of the fixed effects.

    Examples
    --------
    >>> sleep = ml.datasets.load("sleepstudy")
    >>> first = sleep["Subject"].cat.codes < 9            # two studies of 9 subjects each
    >>> study1, study2 = sleep[first], sleep[~first]
    >>> quick = dict(chains=2, draws=300, warmup=300, seed=1, progress=False)
    >>> fit1 = ml.bayes("Reaction ~ Days + (Days | Subject)", study1, **quick)
    >>> informed = ml.priors_from_posterior(fit1, newdata=study2)
    >>> fit2 = ml.bayes("Reaction ~ Days + (Days | Subject)", study2, priors=informed, **quick)
    >>> [p.class_ for p in informed][:3]
    ['Intercept', 'b', 'sd']
    """
    from multilevel.bayesian.result import BayesResult
    if not isinstance(fit, BayesResult):
        raise ArgumentError("priors_from_posterior takes a Bayesian fit (ml.bayes / "
                            f"ml.bayes_nlme), not {type(fit).__name__}")
    model: BayesModel = fit.model
    frame = None
    if newdata is not None:
        frame = to_pandas(newdata).reset_index(drop=True)
        if len(frame) == 0:
            raise DataError("newdata has no rows")
    out: list[Prior] = []
    for part in model.parts:
        if part.centred:
            if frame is None:
                name = "Intercept" if not part.nlpar else f"{part.nlpar}_Intercept"
                centred = fit.draws(name).ravel()
            else:
                b = np.stack([fit.draws(part.variable(n)).ravel() for n in part.b_names],
                             axis=1) if part.b_names else np.zeros((fit.ndraws, 0))
                centred = fit.draws(part.variable("Intercept")).ravel() + \
                    b @ _new_means(part, frame)
            out.append(_normal(centred, "the centred Intercept", "Intercept"))
        for name in part.b_names:
            out.append(_normal(fit.draws(part.variable(name)), part.variable(name), "b",
                               coef=name, nlpar=part.nlpar))
    for block in model.blocks:
        for t in block.terms:
            variable = block.sd_variable(t)
            out.append(_lognormal(fit.draws(variable), variable, "sd", coef=t,
                                  group=block.group, nlpar=block.nlpar))
    for block in model.blocks:
        if block.k < 2:
            continue
        squares = [float(np.mean(fit.draws(block.cor_variable(a, b)) ** 2))
                   for i, a in enumerate(block.terms) for b in block.terms[i + 1:]]
        eta = lkj_eta(float(np.mean(squares)), block.k)
        out.append(prior(f"lkj({_number(eta)})", class_="cor", group=block.group,
                         nlpar=block.nlpar))
    extra = model.family.extra
    if extra is not None:
        out.append(_lognormal(fit.draws(extra), extra, extra))
    return out


# ---------------------------------------------------------------------------------------------
# Prior predictive checks


@dataclass(frozen=True, eq=False)  # arrays inside: identity, not elementwise, equality
class PriorPredictive:
    """Draws of the prior and of the responses it predicts for the data's design.

    Attributes
    ----------
    fit : BayesResult
        The prior, sampled by NUTS (``fit.draws("b_x")`` are prior draws; its
        ``prior_summary()`` lists the priors used).
    y : numpy.ndarray, shape (draws, n)
        Replicated responses, one row per prior draw (binomial: proportions).
    observed : numpy.ndarray, shape (n,)
        The data's response.
    """

    fit: BayesResult
    y: np.ndarray
    observed: np.ndarray

    @property
    def outside_observed_range(self) -> float:
        """Share of replicated responses outside the observed ``[min(y), max(y)]``."""
        low, high = float(np.min(self.observed)), float(np.max(self.observed))
        return float(np.mean((self.y < low) | (self.y > high)))

    def summary(self) -> pd.DataFrame:
        """Where the observed response lies among the prior's replicated data sets.

        Rows ``mean``, ``sd``, ``min``, ``max``: the statistic of each replicated data set
        (one per prior draw) against the observed one; row ``y``: every replicated response
        pooled (its ``observed`` is NaN, the observed range is in rows ``min`` and ``max``).
        Columns: ``observed``, the 2.5 %, 25 %, 50 %, 75 %, 97.5 % quantiles over the prior
        draws (``q2.5`` ... ``q97.5``), and ``p_below``, the share of draws whose statistic is
        below the observed one (near 0 or 1: the prior cannot produce data like these).
        """
        columns = ["observed", *(f"q{100 * q:g}" for q in _QUANTILES), "p_below"]
        rows = {}
        for name in ("mean", "sd", "min", "max"):
            rep, obs = _statistic(name, self.y), float(_statistic(name, self.observed[None])[0])
            rows[name] = [obs, *np.quantile(rep, _QUANTILES), float(np.mean(rep < obs))]
        rows["y"] = [float("nan"), *np.quantile(self.y, _QUANTILES), float("nan")]
        return pd.DataFrame.from_dict(rows, orient="index", columns=columns)

    def __str__(self) -> str:
        table = self.summary().to_string(float_format="{:.4g}".format)
        return (f"Prior predictive check: {self.y.shape[0]} prior draws x {self.y.shape[1]} "
                f"rows; {100 * self.outside_observed_range:.1f} % of replicated responses "
                f"fall outside the observed range\n{table}")


def _statistic(name: str, y: np.ndarray) -> np.ndarray:
    """A statistic of each row (one data set) of ``y``."""
    if name == "mean":
        return np.asarray(np.mean(y, axis=1))
    if name == "sd":
        return np.asarray(np.std(y, axis=1, ddof=1))
    if name == "min":
        return np.asarray(np.min(y, axis=1))
    return np.asarray(np.max(y, axis=1))


def sample_prior_predictive(model: BayesModel, priors: Sequence[Prior] | Prior | None,
                            draws: int, chains: int, warmup: int, seed: int,
                            target_accept: float, max_tree_depth: int,
                            progress: bool) -> PriorPredictive:
    """The prior of ``model`` sampled by NUTS and one replicated response per draw (the work
    of ``ml.prior_predictive``, whose docstring says what the arguments are)."""
    from multilevel.bayesian.fit import fit_model
    from multilevel.bayesian.sampler import check_settings
    if isinstance(draws, bool) or not isinstance(draws, int | np.integer) or draws < 1:
        raise ArgumentError(f"draws must be a whole number >= 1, got {draws!r}")
    if isinstance(chains, bool) or not isinstance(chains, int | np.integer) or chains < 1:
        raise ArgumentError(f"chains must be a whole number >= 1, got {chains!r}")
    if draws % chains:
        raise ArgumentError(f"draws ({draws}) are split evenly over the chains ({chains}); "
                            "give a multiple of chains")
    settings = check_settings(chains, draws // chains, warmup, seed, target_accept,
                              max_tree_depth, 1, progress)
    fit = fit_model(model, priors, settings, sample_prior=True)
    y = fit.posterior_predictive(seed=settings.seed)
    return PriorPredictive(fit=fit, y=np.asarray(y), observed=np.asarray(model.y, dtype=float))
