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

A generalized linear mixed model is decomposed on the latent (link) scale, as Nakagawa, Johnson
& Schielzeth (2017, J. R. Soc. Interface 14: 20170213) and performance / insight (0.10.2 /
0.19.0) do: the fixed and random parts as above (sigma = 1), and a residual variance that is
the family's distribution-specific variance (``Family.latent_variance``: pi^2/3 for the logit,
1 for the probit, pi^2/6 for the cloglog link; for log-link counts ln(1 + V(mu)/mu^2) --
ln(1 + 1/mu) for the Poisson, ln(1 + 1/mu + 1/theta) for the negative binomial -- at mu =
exp(beta_0) of the null model, the model refitted with the same random terms and only an
intercept, a negative binomial's size held at the fit's) plus the variance of observation-level
random effects (a term with one level per row, which models overdispersion, is residual
variation, not clustering).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from multilevel.errors import ArgumentError, NotApplicableError, public_api, public_methods
from multilevel.families.exponential import Poisson
from multilevel.families.negative_binomial import NegativeBinomial
from multilevel.inference.arguments import check_fit, check_linear, model_kind
from multilevel.inference.refit import formula_text, refit_formula
from multilevel.results.base import MixedModelResult
from multilevel.results.glmm_result import GeneralizedLinearMixedModelResult
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
    distribution : float or None
        For a GLMM, the family's distribution-specific variance on the latent scale (part of
        ``residual``); None for a linear model.
    observation_level : float
        For a GLMM, the variance of observation-level random effects (one level per row),
        counted in ``residual``; 0 otherwise.
    """

    fixed: float
    random: float
    residual: float
    by_group: dict[str, float]
    distribution: float | None = None
    observation_level: float = 0.0

    @property
    def total(self) -> float:
        """fixed + random + residual."""
        return self.fixed + self.random + self.residual


@public_api
def variance_decomposition(fit: MixedModelResult) -> VarianceDecomposition:
    """Split the model's variance into fixed, random and residual parts (for a GLMM on the
    latent scale, see the module docstring).

    Raises
    ------
    NotApplicableError
        A GLMM whose family and link have no latent-scale residual variance (the binomial
        with logit, probit or cloglog link, and the Poisson or negative binomial with log link
        have one; so do the Poisson's sqrt and the Gamma's log link).
    """
    check_fit(fit)
    design = fit.model.design
    fixed = float(np.var(design.X @ fit.beta, ddof=1)) if len(fit.beta) else 0.0
    glmm = isinstance(fit, GeneralizedLinearMixedModelResult)
    scale = fit.sigma if isinstance(fit, LinearMixedModelResult) else 1.0
    covs = term_covariances(fit.model.layout, fit.theta, scale)
    by_group: dict[str, float] = {}
    observation_level = 0.0
    for term, cov in zip(design.terms, covs, strict=True):
        contribution = float(np.mean(np.einsum("ij,jk,ik->i", term.Z, cov, term.Z)))
        if glmm and term.n_levels == fit.nobs:
            observation_level += contribution
        else:
            by_group[term.factor.name] = by_group.get(term.factor.name, 0.0) + contribution
    if not isinstance(fit, GeneralizedLinearMixedModelResult):
        return VarianceDecomposition(fixed=fixed, random=sum(by_group.values()),
                                     residual=scale**2, by_group=by_group)
    distribution = _latent_variance(fit)
    return VarianceDecomposition(fixed=fixed, random=sum(by_group.values()),
                                 residual=distribution + observation_level, by_group=by_group,
                                 distribution=distribution,
                                 observation_level=observation_level)


def _latent_variance(fit: GeneralizedLinearMixedModelResult) -> float:
    """The family's residual variance on the latent scale (mu from the null model where the
    approximation needs one)."""
    family = fit.family
    mu = None
    if isinstance(family, Poisson | NegativeBinomial) and family.link.name == "log":
        mu = _null_model_mean(fit)
    try:
        return family.latent_variance(
            mu, fit.dispersion if family.has_dispersion else None, "lognormal")
    except ArgumentError as exc:
        raise NotApplicableError(
            f"the latent-scale variance decomposition (ICC, R2) is not defined for "
            f"{model_kind(fit)} with the {family.link.name!r} link ({exc}); it is for the "
            "binomial (logit, probit, cloglog) and for Poisson and negative binomial models "
            "(log link)") from None


def _null_model_mean(fit: GeneralizedLinearMixedModelResult) -> float:
    """exp(intercept) of the model refitted with its random terms and offsets and only an
    intercept (insight's ``null_model``), the mean at which a log link's latent variance is
    taken. A negative binomial's size stays at the fit's estimate there (glmer.nb's refit
    does the same: its call carries the estimated size)."""
    formula = fit.model.design.formula
    null = refit_formula(fit, formula_text(formula.response, ["1"], formula.random,
                                           formula.offsets), family=fit.family)
    return math.exp(float(null.beta[0]))


@public_api
def icc(fit: MixedModelResult) -> pd.Series:
    """Intraclass correlation as R's ``performance::icc`` (for a GLMM on the latent scale).

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
def r2(fit: MixedModelResult) -> pd.Series:
    """Nakagawa's R^2 as R's ``performance::r2_nakagawa``: ``marginal`` (fixed effects only)
    and ``conditional`` (fixed and random effects); for a GLMM on the latent scale (Nakagawa,
    Johnson & Schielzeth 2017)."""
    v = variance_decomposition(fit)
    return pd.Series({"marginal": v.fixed / v.total,
                      "conditional": (v.fixed + v.random) / v.total}, name="r2")


@public_api
def design_effect(fit: MixedModelResult) -> pd.Series:
    """Kish's design effect per grouping factor, 1 + (m - 1) rho, with m the mean number of
    observations per level and rho that factor's share of the random plus residual variance
    (for a single random intercept, the adjusted ICC). It is the factor by which clustering
    inflates the variance of a mean compared with independent observations.

    Raises
    ------
    NotApplicableError
        For a GLMM: Kish's rho is the correlation of the responses themselves, and a GLMM's
        ICC is on the latent scale (use :func:`icc`).
    """
    check_linear(fit, "Kish's design effect",
                 "It needs the intraclass correlation of the responses themselves; a GLMM's "
                 "ICC (multilevel.icc) is on the latent scale")
    v = variance_decomposition(fit)
    out = {}
    for name, n_levels in fit.ngroups.items():
        m = fit.nobs / n_levels
        out[name] = 1.0 + (m - 1.0) * v.by_group[name] / (v.random + v.residual)
    return pd.Series(out, name="design_effect")
