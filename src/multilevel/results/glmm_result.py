"""The immutable result of a generalized linear mixed-model fit, with glmer's vocabulary.

Everything shared with the linear model lives in :class:`~multilevel.results.base.MixedModelResult`;
this file adds what a family brings: the link and response scales, deviance / Pearson / working
residuals, z tests, the dispersion or negative binomial size, simulation from the family.

The fixed effects' covariance is lme4's default for glmer fits (``use.hessian``): twice the
inverse of the finite-difference Hessian of the deviance over all optimized parameters, its
beta block -- so it accounts for the uncertainty in theta (and in the family parameter). Without
that Hessian (``calc_derivs=False``, ``nagq=0``, or a Hessian that is not positive definite) it
is the inverse of the penalized least-squares information RX'RX at the optimum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
from scipy import stats

from multilevel.errors import ArgumentError, NotApplicableError, public_methods
from multilevel.families.family import Family
from multilevel.families.negative_binomial import NegativeBinomial
from multilevel.linalg.blocked_cholesky import BlockedFactor
from multilevel.linalg.cross_products import CrossProducts
from multilevel.optim.optsummary import OptSummary
from multilevel.results import prediction, summary
from multilevel.results.base import (
    CONFINT_METHODS,
    INFERENCE_HOOKS,
    MixedModelResult,
    check_newdata,
    check_simulation_arguments,
    confidence_level,
)

if TYPE_CHECKING:
    from multilevel.models.glmm import GLMMFit, GLMMStages

RESIDUAL_KINDS = ("deviance", "pearson", "response", "working")
SCALES = ("link", "response")


def _scale_argument(name: str, value: Any) -> str:
    if value not in SCALES:
        raise ArgumentError(f"{name} must be 'link' or 'response', got {value!r:.60}")
    return str(value)


@public_methods
@dataclass(frozen=True)
class GeneralizedLinearMixedModelResult(MixedModelResult):
    """A fitted generalized linear mixed model. Create it with :func:`multilevel.glmer` or
    ``GeneralizedLinearMixedModel(...).fit()``; nothing on it changes after the fit.

    Attributes
    ----------
    model : GLMMStages
        The model that was fitted.
    theta : numpy.ndarray
        Relative covariance factor parameters in lme4's order: for a GLMM the random-effect
        standard deviations and Cholesky factors themselves (no residual scale).
    beta : numpy.ndarray
        Fixed-effects estimates on the link scale.
    family : Family
        The family, with its estimated size for the negative binomial.
    dispersion : float
        The estimated dispersion phi (Gamma, inverse Gaussian: Var(y) = phi V(mu)); 1 for
        families without one.
    optsum : OptSummary
        The record of the last optimization stage.
    nagq : int
        Quadrature nodes (0: beta estimated inside PIRLS; 1: Laplace).
    stage0 : OptSummary or None
        The nAGQ = 0 stage's record when a second stage followed.
    """

    kind: ClassVar[str] = "glmer"  # the fitting function, for dispatch and saved files

    model: GLMMStages = field(repr=False)
    theta: np.ndarray
    beta: np.ndarray
    family: Family
    dispersion: float
    optsum: OptSummary = field(repr=False)
    nagq: int
    stage0: OptSummary | None = field(repr=False)
    _factor: BlockedFactor = field(repr=False)
    _modes: list[np.ndarray] = field(repr=False)
    _A: CrossProducts = field(repr=False)
    _re_factor: BlockedFactor = field(repr=False)
    _re_A: CrossProducts = field(repr=False)
    _eta: np.ndarray = field(repr=False)
    _mu: np.ndarray = field(repr=False)

    @classmethod
    def from_model(cls, model: GLMMStages, fit: GLMMFit) -> GeneralizedLinearMixedModelResult:
        """Assemble the result from the optimizer's answer and the PIRLS state there."""
        m = fit.modes
        assert m.factor is not None and m.A is not None  # the final PIRLS run is a full one
        return cls(model=model, theta=fit.theta, beta=fit.beta, family=fit.family,
                   dispersion=fit.dispersion, optsum=fit.opt, nagq=model.nagq,
                   stage0=fit.stage0, _factor=m.factor, _modes=m.u, _A=m.A, _eta=m.eta,
                   _re_factor=m.re_factor, _re_A=m.re_A,
                   _mu=m.mu)

    # -- hooks of the shared vocabulary ---------------------------------------------------------
    @property
    def _re_scale(self) -> float:
        return 1.0

    @property
    def _residual_sd(self) -> float:
        return math.sqrt(self.dispersion) if self.family.has_dispersion else math.nan

    @property
    def _condvar_factor(self) -> tuple[CrossProducts, BlockedFactor]:
        return self._re_A, self._re_factor

    @property
    def n_params(self) -> int:
        """Parameters counted by AIC: fixed effects, theta, and the family's dispersion or
        negative binomial size where the model estimates one."""
        return (self.model.n_fixed + self.model.layout.n_theta
                + (1 if self.model.has_family_parameter else 0))

    # -- family ---------------------------------------------------------------------------------
    @property
    def sigma(self) -> float:
        """sqrt(dispersion) for a family with a dispersion (lme4's ``sigma()``), else 1."""
        return math.sqrt(self.dispersion) if self.family.has_dispersion else 1.0

    @property
    def nb_size(self) -> float | None:
        """The negative binomial's size theta (estimated or fixed); None for other families."""
        return self.family.theta if isinstance(self.family, NegativeBinomial) else None

    @property
    def family_title(self) -> str:
        """The family as glmer's summary names it."""
        if isinstance(self.family, NegativeBinomial):
            return f"Negative Binomial({self.family.size:.4g})"
        return self.family.name

    @property
    def method_title(self) -> str:
        """How the likelihood was approximated, as glmer's summary says it."""
        if self.nagq > 1:
            return f"Adaptive Gauss-Hermite Quadrature, nAGQ = {self.nagq}"
        if self.nagq == 0:
            return "Laplace Approximation, nAGQ = 0"
        return "Laplace Approximation"

    @property
    def reml(self) -> bool:
        """Always False: a GLMM is fitted by maximum likelihood."""
        return False

    # -- fixed effects --------------------------------------------------------------------------
    @cached_property
    def _vcov_hessian(self) -> np.ndarray | None:
        """2 H^-1's beta block from the optimizer's finite-difference Hessian, or None."""
        H = self.optsum.hessian
        nt, p = self.model.layout.n_theta, self.model.n_fixed
        if H is None or self.nagq == 0 or H.shape[0] < nt + p:
            return None
        try:
            eig = np.linalg.eigvalsh(H)
            if eig.min() <= 0:
                return None
            V = 2.0 * np.linalg.inv(H)[nt:nt + p, nt:nt + p]
        except np.linalg.LinAlgError:
            return None
        return 0.5 * (V + V.T)

    @cached_property
    def _vcov_rx(self) -> np.ndarray:
        p = self.model.n_fixed
        Lxx = self._factor.xy_diag[:p, :p]
        Linv = np.linalg.inv(Lxx)
        return Linv.T @ Linv

    @property
    def _vcov_array(self) -> np.ndarray:
        V = self._vcov_hessian
        return self._vcov_rx if V is None else V

    @property
    def vcov_method(self) -> str:
        """``"hessian"`` (lme4's default) or ``"rx"`` (see the module docstring)."""
        return "rx" if self._vcov_hessian is None else "hessian"

    def coef_table(self, ddf: str | None = None, level: float = 0.95) -> pd.DataFrame:
        """Fixed-effects table with Wald z tests: estimate, std_error, statistic (z value),
        df (infinite), p_value, ci_lower, ci_upper.

        Parameters
        ----------
        ddf : None
            Only None: denominator degrees of freedom (Satterthwaite, Kenward-Roger) belong
            to the linear mixed model; a GLMM's Wald tests are z tests, as glmer's.
        level : float
            Confidence level of the interval columns.

        Raises
        ------
        NotApplicableError
            For any ``ddf`` other than None.
        """
        if ddf is not None:
            raise NotApplicableError(
                f"ddf={ddf!r:.60} does not apply to a generalized linear mixed model: "
                "Satterthwaite and Kenward-Roger degrees of freedom are defined for the linear "
                "mixed model's t tests; glmer's Wald tests are z tests (ddf=None)")
        level = confidence_level(level)
        se = np.sqrt(np.diag(self._vcov_array))
        stat = self.beta / se
        q = stats.norm.ppf(0.5 + level / 2)
        return pd.DataFrame({
            "estimate": self.beta, "std_error": se, "statistic": stat,
            "df": np.full(len(self.beta), np.inf),
            "p_value": 2 * stats.norm.sf(np.abs(stat)),
            "ci_lower": self.beta - q * se, "ci_upper": self.beta + q * se,
        }, index=self.fixed_names)

    def confint(self, method: str = "wald", level: float = 0.95, **options: Any,
                ) -> pd.DataFrame:
        """Confidence intervals for the variance parameters (named as lme4's ``confint``) and
        the fixed effects: ``"wald"`` (fixed effects +- z SE, NaN for the variance parameters
        as lme4), ``"profile"`` (likelihood profiles, lme4's ``profile.merMod``) or ``"boot"``
        (parametric bootstrap percentile intervals; ``options`` go to
        :func:`multilevel.bootstrap`). Columns lower, upper."""
        if not isinstance(method, str) or method.lower() not in CONFINT_METHODS:
            raise ArgumentError(f"method must be one of "
                                f"{', '.join(repr(m) for m in sorted(CONFINT_METHODS))}, got "
                                f"{method!r:.60}")
        return CONFINT_METHODS[method.lower()](self, confidence_level(level), **options)

    def profile(self, level: float = 0.99, n: int = 9) -> pd.DataFrame:
        """zeta profiles of every parameter (lme4's ``profile``): long DataFrame with
        parameter, value, zeta, ``n`` values across each ``level`` profile interval."""
        return INFERENCE_HOOKS["profile"](self, level, n)

    # -- fit statistics -------------------------------------------------------------------------
    @property
    def deviance(self) -> float:
        """-2 log-likelihood, as glmer's summary prints under "deviance"."""
        return self.objective

    @property
    def loglik(self) -> float:
        """The log-likelihood: the Laplace approximation (nagq <= 1) or the adaptive
        quadrature value (nagq > 1), saturated constants always included (lme4's ``logLik``
        leaves them out for nAGQ > 1)."""
        return -0.5 * self.objective

    # -- fitted values and residuals ------------------------------------------------------------
    def fitted(self, type: str = "response") -> np.ndarray:  # noqa: A002 (lme4's name)
        """Fitted values at the conditional modes: the mean mu (``"response"``) or the linear
        predictor eta (``"link"``), for the rows used in the fit."""
        kind = _scale_argument("type", type)
        return (self._mu if kind == "response" else self._eta).copy()

    def residuals(self, kind: str = "deviance", scaled: bool = False) -> np.ndarray:
        """Residuals, as lme4's ``residuals.glmResp``: ``"deviance"`` (default; signed square
        roots of the deviance contributions), ``"pearson"`` ((y - mu) sqrt(wt / V(mu))),
        ``"response"`` (y - mu), ``"working"`` ((y - mu) / mu'(eta)). ``scaled=True`` divides
        by sigma (sqrt of the dispersion; 1 for families without one)."""
        if kind not in RESIDUAL_KINDS:
            raise ArgumentError(f"unknown residual kind {kind!r:.60}; use one of "
                                f"{', '.join(map(repr, RESIDUAL_KINDS))}")
        resp = self.model.response_at(None)
        y, mu, wt = resp.y, self._mu, resp.prior_weights
        fam = self.family
        if kind == "response":
            r = y - mu
        elif kind == "working":
            r = (y - mu) / fam.link.mu_eta(self._eta)
        elif kind == "pearson":
            r = (y - mu) * np.sqrt(wt / fam.variance(mu))
        else:
            r = np.sign(y - mu) * np.sqrt(np.maximum(fam.dev_resids(y, mu, wt), 0.0))
        return r / self.sigma if scaled else r

    def predict(self, newdata: Any = None, type: str = "link",  # noqa: A002 (lme4's name)
                re_form: str | None = None, allow_new_levels: bool = False,
                offset: Any = None) -> np.ndarray:
        """Predictions, as lme4's ``predict.merMod``.

        Parameters
        ----------
        newdata : DataFrame or dict of columns, optional
            Defaults to the data used in the fit.
        type : {"link", "response"}
            The linear predictor (lme4's default) or the mean g^-1(eta).
        re_form : None, "~0", "NA" or a formula of random terms
            Which random effects to include (see the linear model's ``predict``).
        allow_new_levels : bool, default False
            A level not seen in the fit gets a random effect of zero instead of an error.
        offset : array-like or column name, optional
            Offset for ``newdata``.
        """
        kind = _scale_argument("type", type)
        allow = check_newdata(newdata, allow_new_levels)
        eta = prediction.predict(self, newdata, re_form, allow, offset)
        return self.family.link.inverse(eta) if kind == "response" else eta

    def simulate(self, nsim: int = 1, seed: int | None = None) -> pd.DataFrame:
        """Simulate responses from the fitted model: new random effects, then the family's
        draws at their means (proportions for a binomial with trials as weights).

        Returns a DataFrame with one column per simulation (``sim_1`` ...), one row per
        observation used in the fit.
        """
        nsim, seed = check_simulation_arguments(nsim, seed)
        rng = np.random.default_rng(seed)
        d = self.model.design
        resp = self.model.response_at(None)
        base = d.X @ self.beta + resp.offset
        templates = self.model.layout.templates(self.theta)
        pred = self.model.predictor
        sims = np.empty((d.nobs, nsim))
        disp = self.dispersion if self.family.has_dispersion else None
        for s in range(nsim):
            b = [rng.standard_normal((nl, blk.k)) @ T.T
                 for blk, T, nl in zip(pred.blocks, templates, pred.n_levels, strict=True)]
            mu = self.family.link.inverse(base + pred.z_times(b))
            sims[:, s] = self.family.simulate(mu, resp.prior_weights, disp, rng)
        return pd.DataFrame(sims, columns=[f"sim_{i + 1}" for i in range(nsim)])

    # -- presentation ---------------------------------------------------------------------------
    def summary(self, ddf: str | None = None) -> str:
        """The printed report in glmer's layout (family and link, AIC/BIC/logLik/deviance/
        df.resid, scaled Pearson residuals, random effects, z tests). ``ddf`` is accepted for
        symmetry with the linear model and must be None (see :meth:`coef_table`)."""
        self.coef_table(ddf=ddf)  # a ddf method raises NotApplicableError, saying why
        return summary.format_glmm_summary(self)

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        return summary.format_glmm_html(self)

    def to_dict(self, ddf: str | None = None) -> dict[str, Any]:
        """JSON-ready dictionary of the fit (strict JSON: NaN and Inf become None); ``ddf``
        must be None, as for :meth:`summary`.

        Returns
        -------
        dict
            formula, family, link, nagq, nobs, n_dropped, n_zero_weight, ngroups, fixef,
            coef_table, vcov, vcov_method, varcorr, theta, dispersion, nb_size, loglik,
            deviance, aic, bic, df_resid, is_singular, converged, dropped_fixed, optsum.
        """
        self.coef_table(ddf=ddf)
        return summary.glmm_to_dict(self)
