"""The result of :func:`multilevel.nlme`: a nonlinear mixed model fitted by nlme's
Lindstrom-Bates alternation (see :mod:`multilevel.models.nlme_fit`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from multilevel.errors import public_methods
from multilevel.results.lmm_result import LinearMixedModelResult


@public_methods
@dataclass(frozen=True)
class NlmeResult:
    """A fitted nonlinear mixed model.

    Attributes
    ----------
    fixef : pandas.Series
        The population parameters, named as in the formula.
    ranef : pandas.DataFrame
        Groups x parameters with a random effect: the conditional modes.
    lme : LinearMixedModelResult
        The last LME step's linear mixed model (on the linearized model); sigma, the random
        effects' covariance, the log-likelihood and the fixed effects' covariance are its, as
        nlme reports them.
    method : str
    iterations : int
        Lindstrom-Bates alternations.
    """

    fixef: pd.Series
    ranef: pd.DataFrame
    lme: LinearMixedModelResult = field(repr=False)
    method: str
    iterations: int

    @property
    def sigma(self) -> float:
        """Residual standard deviation."""
        return self.lme.sigma

    @property
    def loglik(self) -> float:
        """The log-likelihood (restricted for REML) of the last LME step, as nlme's logLik."""
        return self.lme.loglik

    @property
    def n_params(self) -> int:
        """Fixed effects, the random effects' covariance parameters and sigma."""
        return self.lme.n_params

    @property
    def aic(self) -> float:
        """-2 logLik + 2 n_params."""
        return -2.0 * self.loglik + 2.0 * self.n_params

    @property
    def bic(self) -> float:
        """-2 logLik + log(N for ML, N - p for REML) n_params, as nlme."""
        n = self.lme.nobs - (len(self.fixef) if self.method == "REML" else 0)
        return -2.0 * self.loglik + math.log(n) * self.n_params

    @property
    def vcov(self) -> pd.DataFrame:
        """Covariance of the fixed effects (the last LME step's)."""
        names = list(self.fixef.index)
        return pd.DataFrame(self.lme.vcov.to_numpy(), index=names, columns=names)

    @property
    def varcorr(self) -> pd.DataFrame:
        """Random-effects variances and correlations, residual last, named by parameter."""
        out = self.lme.varcorr.copy()
        names = {f"z{j}": name for j, name in enumerate(self.ranef.columns)}
        out["term1"] = out["term1"].map(lambda t: names.get(t, t))
        out["term2"] = out["term2"].map(lambda t: names.get(t, t))
        return out

    def coef(self) -> pd.DataFrame:
        """Each group's parameters: the fixed effects plus its random effects."""
        out = pd.DataFrame(np.tile(self.fixef.to_numpy(), (len(self.ranef), 1)),
                           index=self.ranef.index, columns=self.fixef.index)
        for col in self.ranef.columns:
            out[col] = out[col] + self.ranef[col]
        return out
