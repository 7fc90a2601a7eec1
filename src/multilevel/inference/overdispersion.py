"""The overdispersion check of a count or binomial GLMM: the sum of squared Pearson residuals
against its residual degrees of freedom, as R's ``performance::check_overdispersion`` and the
GLMM FAQ's ``overdisp_fun`` (Bolker et al.): chi^2 = sum r_i^2 with r_i = (y_i - mu_i)
sqrt(w_i / V(mu_i)) at the conditional modes, df = nobs - n_params, ratio = chi^2 / df, and the
upper-tail chi-square(df) p-value. A ratio well above 1 (a small p-value) says the family's
variance is too small for the data: an observation-level random effect or a negative binomial
may fit better. The statistic is approximate (the residuals use estimated random effects).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from multilevel.errors import NotApplicableError, public_api, public_methods
from multilevel.families.exponential import Binomial
from multilevel.inference.arguments import check_fit, model_kind
from multilevel.inference.reporting import html_report
from multilevel.results.base import MixedModelResult
from multilevel.results.glmm_result import GeneralizedLinearMixedModelResult


@public_methods
@dataclass(frozen=True)
class OverdispersionTest:
    """Pearson chi-square test of overdispersion.

    Attributes
    ----------
    chisq : float
        Sum of squared Pearson residuals.
    ratio : float
        chisq / df (about 1 when the family's variance fits).
    df : int
        Residual degrees of freedom, nobs - n_params.
    p_value : float
        P(chi-square(df) > chisq).
    """

    chisq: float
    ratio: float
    df: int
    p_value: float

    def __str__(self) -> str:
        verdict = ("overdispersion detected" if self.p_value < 0.05
                   else "no overdispersion detected")
        return (f"Overdispersion test: Pearson chi-square = {self.chisq:.3f} on {self.df} df, "
                f"dispersion ratio = {self.ratio:.3f}, p = {self.p_value:.4g} ({verdict})")

    def _repr_html_(self) -> str:
        return html_report("Overdispersion test", [str(self)], {})


@public_api
def overdispersion(fit: MixedModelResult) -> OverdispersionTest:
    """Pearson chi-square / residual df of a Poisson, negative binomial or binomial (with
    more than one trial per row) GLMM, with its p-value (see the module docstring).

    Parameters
    ----------
    fit : GeneralizedLinearMixedModelResult

    Returns
    -------
    OverdispersionTest
        chisq, ratio, df, p_value.

    Raises
    ------
    NotApplicableError
        A linear mixed model or a GLMM whose family estimates its dispersion (Gamma, inverse
        Gaussian: the ratio is then the dispersion's moment estimate, not a test), or a binary
        (Bernoulli) response, whose Pearson residuals say nothing about dispersion.
    """
    check_fit(fit)
    if not isinstance(fit, GeneralizedLinearMixedModelResult):
        raise NotApplicableError(
            f"the overdispersion test does not apply to {model_kind(fit)}: its residual "
            "variance is estimated, so there is no variance to exceed; it is for Poisson, "
            "negative binomial and binomial GLMMs")
    if fit.family.has_dispersion:
        raise NotApplicableError(
            f"the overdispersion test does not apply to {model_kind(fit)}: the family's "
            f"dispersion is estimated (phi = {fit.dispersion:.4g}), so the Pearson ratio is "
            "that estimate, not a test; it is for Poisson, negative binomial and binomial "
            "GLMMs")
    weights = fit.model.response_at(None).prior_weights
    if isinstance(fit.family, Binomial) and np.all(weights == 1.0):
        raise NotApplicableError(
            "the overdispersion test does not apply to a binary (0/1) response: a Bernoulli "
            "variable's variance is fixed by its mean, and the Pearson statistic of binary "
            "data carries no information about dispersion; it needs binomial counts with "
            "more than one trial (cbind(successes, failures) or proportions with weights)")
    chisq = float(np.sum(fit.residuals("pearson") ** 2))
    df = fit.df_resid
    if df < 1:
        raise NotApplicableError(f"the overdispersion test needs residual degrees of freedom: "
                                 f"{fit.nobs} observations for {fit.n_params} parameters")
    return OverdispersionTest(chisq=chisq, ratio=chisq / df, df=int(df),
                              p_value=float(stats.chi2.sf(chisq, df)))


__all__ = ["OverdispersionTest", "overdispersion"]
