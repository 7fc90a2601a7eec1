"""Variance partition of a linear mixed model: ICC, Nakagawa's R^2 and the design effect.

The decomposition is that of Nakagawa & Schielzeth (2013), extended to random slopes by
Johnson (2014) and used by R's performance / insight packages:

* fixed-effects variance: the sample variance of the fixed-effects predictions X beta;
* random-effects variance: for each random-effects term with covariance Sigma and model-matrix
  rows z_i, the mean over observations of z_i' Sigma z_i -- for a random intercept this is its
  variance; with a random slope it depends on where the covariate's values lie (sleepstudy:
  the intercept variance plus 2 x 4.5 x their covariance plus 28.5 x the slope variance);
* residual variance: sigma^2.

ICC (adjusted) = random / (random + residual); ICC (conditional, performance's "unadjusted")
= random / (fixed + random + residual); R^2 marginal = fixed / total, conditional =
(fixed + random) / total.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from multilevel.errors import public_api, public_methods
from multilevel.inference.arguments import check_fit
from multilevel.results.lmm_result import LinearMixedModelResult
from multilevel.results.varcorr import term_covariances


@public_methods
@dataclass(frozen=True)
class VarianceDecomposition:
    """The three variance components of the decomposition (see the module docstring).

    Attributes
    ----------
    fixed, random, residual : float
    by_group : dict of str -> float
        The random-effects variance contributed by each grouping factor.
    """

    fixed: float
    random: float
    residual: float
    by_group: dict[str, float]

    @property
    def total(self) -> float:
        """fixed + random + residual."""
        return self.fixed + self.random + self.residual


@public_api
def variance_decomposition(fit: LinearMixedModelResult) -> VarianceDecomposition:
    """Split the model's variance into fixed, random and residual parts."""
    check_fit(fit)
    design = fit.model.design
    fixed = float(np.var(design.X @ fit.beta, ddof=1)) if len(fit.beta) else 0.0
    covs = term_covariances(fit.model.layout, fit.theta, fit.sigma)
    by_group: dict[str, float] = {}
    for term, cov in zip(design.terms, covs, strict=True):
        contribution = float(np.mean(np.einsum("ij,jk,ik->i", term.Z, cov, term.Z)))
        by_group[term.factor.name] = by_group.get(term.factor.name, 0.0) + contribution
    return VarianceDecomposition(fixed=fixed, random=sum(by_group.values()),
                                 residual=fit.sigma**2, by_group=by_group)


@public_api
def icc(fit: LinearMixedModelResult) -> pd.Series:
    """Intraclass correlation as R's ``performance::icc``.

    Returns
    -------
    pandas.Series
        ``adjusted`` (random / (random + residual)) and ``conditional`` (random / total,
        performance's "unadjusted" ICC, which counts the fixed effects' variance too).
    """
    v = variance_decomposition(fit)
    return pd.Series({"adjusted": v.random / (v.random + v.residual),
                      "conditional": v.random / v.total}, name="icc")


@public_api
def r2(fit: LinearMixedModelResult) -> pd.Series:
    """Nakagawa's R^2 as R's ``performance::r2_nakagawa``: ``marginal`` (fixed effects only)
    and ``conditional`` (fixed and random effects)."""
    v = variance_decomposition(fit)
    return pd.Series({"marginal": v.fixed / v.total,
                      "conditional": (v.fixed + v.random) / v.total}, name="r2")


@public_api
def design_effect(fit: LinearMixedModelResult) -> pd.Series:
    """Kish's design effect per grouping factor, 1 + (m - 1) rho, with m the mean number of
    observations per level and rho that factor's share of the random plus residual variance
    (for a single random intercept, the adjusted ICC). It is the factor by which clustering
    inflates the variance of a mean compared with independent observations."""
    v = variance_decomposition(fit)
    out = {}
    for name, n_levels in fit.ngroups.items():
        m = fit.nobs / n_levels
        out[name] = 1.0 + (m - 1.0) * v.by_group[name] / (v.random + v.residual)
    return pd.Series(out, name="design_effect")
