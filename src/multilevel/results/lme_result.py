"""The result of :func:`multilevel.lme`: a linear mixed model with nlme's residual variance
function and correlation structure. The estimates are those of the linear mixed model fitted
to the whitened data (see :mod:`multilevel.models.lme`), so they are that model's result; the
log-likelihood adds the whitening's Jacobian, and the structures' parameters are reported on
nlme's natural scale."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from multilevel.errors import public_methods
from multilevel.results.lmm_result import LinearMixedModelResult


@public_methods
@dataclass(frozen=True)
class LmeResult:
    """A fitted ``lme`` model.

    Attributes
    ----------
    fit : LinearMixedModelResult
        The linear mixed model on the whitened data: fixef, vcov, varcorr, theta, sigma,
        ranef and coef_table (with any ddf method) are its. Its fitted values, residuals and
        predictions are on the whitened scale, not the data's (nlme-style ``fitted``,
        ``residuals`` and ``predict`` for lme fits come with issue 8's results).
    deviance : float
        -2 log-likelihood (ML) or the REML criterion, the whitening's Jacobian included.
    variance_parameters, correlation_parameters : numpy.ndarray
        nlme's natural scale, as ``coef(..., unconstrained = FALSE)``.
    method : str
    """

    fit: LinearMixedModelResult = field(repr=False)
    deviance: float
    variance_parameters: np.ndarray
    correlation_parameters: np.ndarray
    method: str

    @property
    def fixef(self) -> pd.Series:
        """Fixed-effects estimates."""
        return self.fit.fixef

    @property
    def vcov(self) -> pd.DataFrame:
        """Covariance of the fixed effects."""
        return self.fit.vcov

    @property
    def varcorr(self) -> pd.DataFrame:
        """Random-effects variances (residual last, at variance-function multiplier 1)."""
        return self.fit.varcorr

    @property
    def sigma(self) -> float:
        """Residual SD (at variance-function multiplier 1)."""
        return self.fit.sigma

    @property
    def ranef(self) -> dict[str, pd.DataFrame]:
        """Conditional modes of the random effects."""
        return self.fit.ranef

    def coef_table(self, ddf: str | None = "between-within", **options: Any) -> pd.DataFrame:
        """Fixed-effects tests; nlme's between-within df by default."""
        return self.fit.coef_table(ddf=ddf, **options)

    @property
    def loglik(self) -> float:
        """The (restricted, for REML) log-likelihood, as nlme's ``logLik``."""
        return -0.5 * self.deviance

    @property
    def n_params(self) -> int:
        """The linear mixed model's parameters and the structures'."""
        return (self.fit.n_params + self.variance_parameters.size
                + self.correlation_parameters.size)

    @property
    def aic(self) -> float:
        """-2 logLik + 2 n_params."""
        return self.deviance + 2.0 * self.n_params

    @property
    def bic(self) -> float:
        """-2 logLik + log(N - p for REML, N for ML) n_params, as nlme."""
        n = self.fit.nobs - (len(self.fixef) if self.method == "REML" else 0)
        return self.deviance + math.log(n) * self.n_params
