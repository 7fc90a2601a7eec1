"""The result of :func:`multilevel.gls`: a linear model with nlme's residual variance function
and correlation structure, with nlme's results surface (``fitted``, ``residuals`` of the three
kinds, ``predict``, ``intervals``, ``summary``, ``simulate``, ``bootstrap``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import stats

from multilevel.data.frame import to_pandas
from multilevel.errors import ArgumentError, NotApplicableError, public_methods
from multilevel.optim.optsummary import OptSummary
from multilevel.results import approximate_intervals as ai
from multilevel.results.base import INFERENCE_HOOKS, check_simulation_arguments, confidence_level
from multilevel.results.nlme_summary import (
    NlmeSummary,
    fixed_correlation,
    residual_quantiles,
    t_table,
)
from multilevel.results.structure_parameters import StructureParameters
from multilevel.results.structured_likelihood import gaussian_loglik
from multilevel.results.surface import ResultSurface

RESIDUAL_TYPES = ("response", "pearson", "normalized")
INTERVAL_WHICH = ("all", "fixed", "var-cov")
# the response column of a refit to a simulated response (bootstrap)
SIMULATED = "simulated_response_"


def check_residual_type(type: Any) -> str:
    """One of nlme's residual types, or an ArgumentError."""
    if type not in RESIDUAL_TYPES:
        raise ArgumentError(f"type must be 'response', 'pearson' or 'normalized' (nlme's "
                            f"residual types), got {type!r:.60}")
    return str(type)


def check_which(which: Any) -> str:
    """intervals()'s ``which``."""
    if which not in INTERVAL_WHICH:
        raise ArgumentError(f"which must be 'all', 'fixed' or 'var-cov', got {which!r:.60}")
    return str(which)


@public_methods
@dataclass(frozen=True)
class GlsResult(ResultSurface):
    """A fitted generalized least-squares model (see :func:`multilevel.gls`).

    Attributes
    ----------
    fixef : pandas.Series
    vcov : pandas.DataFrame
        RSS* / (N - p) (X*' X*)^-1, as nlme's ``vcov`` (for ML fits too).
    sigma : float
        Residual SD (for a variance function: at multiplier 1).
    loglik : float
        The (restricted, for REML) log-likelihood, as nlme's ``logLik``.
    method : str
    variance_parameters, correlation_parameters : numpy.ndarray
        On nlme's natural (constrained) scale, as ``coef(..., unconstrained = FALSE)``.
    optsum : OptSummary or None
        None when there was nothing to optimize.
    nobs : int
    X, y : numpy.ndarray
        The model matrix and response of the rows used (data scale).
    whitening : Whitening or None
        The structures initialized on the rows; ``psi`` their unconstrained parameters.
    formula : str
    rows : pandas.DataFrame
        The data rows used, in the model's order (for refits).
    fixed_spec : formulaic ModelSpec or None
        Replays the fixed-effects encoding on new data.
    structures : tuple
        The variance function and correlation structure as the user gave them (refits).
    """

    kind: ClassVar[str] = "gls"  # the fitting function, for dispatch and saved files

    fixef: pd.Series
    vcov: pd.DataFrame
    sigma: float
    loglik: float
    method: str
    variance_parameters: np.ndarray
    correlation_parameters: np.ndarray
    optsum: OptSummary | None
    nobs: int
    X: np.ndarray | None = field(default=None, repr=False)
    y: np.ndarray | None = field(default=None, repr=False)
    whitening: Any = field(default=None, repr=False)
    psi: np.ndarray | None = field(default=None, repr=False)
    formula: str = ""
    rows: Any = field(default=None, repr=False)
    fixed_spec: Any = field(default=None, repr=False)
    structures: tuple[Any, Any] = field(default=(None, None), repr=False)

    @classmethod
    def from_fit(cls, fit: Any) -> GlsResult:
        """The result of :func:`multilevel.models.gls.gls_fit`'s estimates."""
        return cls(**{f.name: getattr(fit, f.name) for f in fields(cls)})

    # -- the comparison vocabulary ------------------------------------------------------------
    @property
    def n_params(self) -> int:
        """Coefficients, sigma and the structures' parameters (nlme's ``df`` of logLik)."""
        return (len(self.fixef) + 1 + self.variance_parameters.size
                + self.correlation_parameters.size)

    @property
    def reml(self) -> bool:
        """Whether the criterion is REML."""
        return self.method == "REML"

    @property
    def fixed_names(self) -> list[str]:
        """Names of the coefficients."""
        return list(self.fixef.index)

    @property
    def response(self) -> np.ndarray:
        """The response of the rows used."""
        return self._need(self.y, "response")

    @property
    def aic(self) -> float:
        """-2 logLik + 2 n_params."""
        return -2.0 * self.loglik + 2.0 * self.n_params

    @property
    def bic(self) -> float:
        """-2 logLik + log(N - p for REML, N for ML) n_params, as nlme."""
        n = self.nobs - (len(self.fixef) if self.method == "REML" else 0)
        return -2.0 * self.loglik + math.log(n) * self.n_params

    def coef_table(self) -> pd.DataFrame:
        """estimate, std_error, statistic (t), df (N - p, as nlme), p_value."""
        se = np.sqrt(np.diag(self.vcov.to_numpy()))
        t = self.fixef.to_numpy() / se
        df = float(self.nobs - len(self.fixef))
        return pd.DataFrame({"estimate": self.fixef.to_numpy(), "std_error": se,
                             "statistic": t, "df": df,
                             "p_value": 2 * stats.t.sf(np.abs(t), df)},
                            index=self.fixef.index)

    # -- fitted values and residuals ---------------------------------------------------------
    def _need(self, value: Any, what: str) -> Any:
        if value is None:
            raise NotApplicableError(f"this gls result does not keep its {what}; refit it with "
                                     "multilevel.gls")
        return value

    @property
    def _structures(self) -> StructureParameters:
        return StructureParameters(self.whitening, self._need(self.psi, "structures")
                                   if self.whitening is not None else np.empty(0))

    def fitted(self) -> np.ndarray:
        """Fitted values X beta (nlme's ``fitted``)."""
        return self._need(self.X, "model matrix") @ self.fixef.to_numpy()

    def residuals(self, type: str = "response") -> np.ndarray:
        """nlme's residuals: ``"response"`` (y - fitted), ``"pearson"`` (divided by sigma
        times the variance function's SD multiplier) or ``"normalized"`` (the Pearson ones
        pre-multiplied, within each correlation group, by the inverse of the transposed
        Cholesky factor of the fitted correlation matrix: independent N(0, 1) under the
        model)."""
        type = check_residual_type(type)
        r = self.response - self.fitted()
        return structured_residuals(r, self._structures, self.sigma, type)

    def _kept_data(self) -> tuple[Any, Any]:
        return self.rows, None

    def model_matrix(self, newdata: Any = None) -> pd.DataFrame:
        """The model matrix of the rows used, or of ``newdata`` (the fit's encoding
        replayed)."""
        from multilevel.results.prediction import fixed_matrix

        return fixed_matrix(self.fixed_spec, self.formula.split("~", 1)[1], self.fixed_names,
                            self.X, newdata)

    def predict(self, newdata: Any = None) -> np.ndarray:
        """X beta on ``newdata`` (default: the rows used in the fit), as nlme's
        ``predict.gls``."""
        if newdata is None:
            return self.fitted()
        from multilevel.results.prediction import replay_matrix

        frame = to_pandas(newdata).reset_index(drop=True)
        fixed = self.formula.split("~", 1)[1]
        X, cols = replay_matrix(self.fixed_spec, fixed, frame, "fixed-effects matrix")
        keep = [cols.index(n) for n in self.fixed_names]
        return X[:, keep] @ self.fixef.to_numpy()

    # -- intervals ----------------------------------------------------------------------------
    def _loglik_at(self, sp: StructureParameters) -> Any:
        X, y = self._need(self.X, "model matrix"), self.response
        reml = self.reml

        def loglik(pars: np.ndarray) -> float:
            (Xs, ys), logdet = sp.whiten([X, y], sp.psi_from_working(pars[:-1]))
            return gaussian_loglik(Xs, ys, None, None, math.exp(pars[-1]), reml) - logdet

        return loglik

    def intervals(self, level: float = 0.95, which: str = "all",
                  ) -> ai.ApproximateIntervals:
        """nlme's ``intervals.gls``: approximate confidence intervals.

        The coefficients' from the t distribution on N - p df; the correlation and variance
        parameters' and sigma's from nlme's approximate covariance (the inverse of minus the
        numerical Hessian of the (restricted) log-likelihood over the structures'
        unconstrained parameters and log sigma), mapped back to the natural scale.

        Returns
        -------
        ApproximateIntervals
            A dict (``str()`` prints nlme's layout): ``"coef"``, ``"corStruct"``,
            ``"varStruct"`` (DataFrames with columns lower, est.,
            upper, as nlme names them; a structure the model lacks is left out) and
            ``"sigma"`` (a Series lower, est., upper).
        """
        level = confidence_level(level)
        which = check_which(which)
        out: dict[str, Any] = {}
        if which != "var-cov":
            ct = self.coef_table()
            q = float(stats.t.ppf(0.5 + level / 2, ct["df"].iloc[0]))
            out["coef"] = ai.interval_frame(
                ai.wald_limits(ct["estimate"].to_numpy(), ct["std_error"].to_numpy(), q),
                self.fixed_names)
        if which != "fixed":
            sp = self._structures
            pars = np.concatenate([sp.working(), [math.log(self.sigma)]])
            cov = ai.approximate_covariance(self._loglik_at(sp), pars)
            out.update(variance_covariance_intervals(sp, pars, cov, level))
        return ai.ApproximateIntervals(out, level, mixed=False)

    # -- summary ------------------------------------------------------------------------------
    def summary(self) -> NlmeSummary:
        """The summary in nlme's layout (``print(summary(fit))``)."""
        return NlmeSummary(
            title=("Generalized least squares fit by "
                   + ("REML" if self.reml else "maximum likelihood")),
            formula=self.formula, aic=self.aic, bic=self.bic, loglik=self.loglik,
            tTable=t_table(self.coef_table(), with_df=False),
            corFixed=fixed_correlation(self.vcov),
            residual_quantiles=residual_quantiles(self.residuals("pearson")),
            nobs=self.nobs, sigma=self.sigma,
            structure_lines=self._structures.summary_lines(), mixed=False)

    def __str__(self) -> str:
        return str(self.summary())

    # -- simulation and the parametric bootstrap ----------------------------------------------
    def simulate(self, nsim: int = 1, seed: int | None = None) -> pd.DataFrame:
        """Responses drawn from the fitted model: X beta plus errors with the fitted sigma,
        variance function and correlation structure. One column per draw (``sim_1``, ...)."""
        nsim, seed = check_simulation_arguments(nsim, seed)
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((self.nobs, nsim))
        e = self.sigma * self._structures.correlated_draws(z)
        sims = self.fitted()[:, None] + e
        return pd.DataFrame(sims, columns=[f"sim_{i + 1}" for i in range(nsim)])

    def refit_response(self, y: np.ndarray) -> GlsResult:
        """The same model fitted to another response ``y`` (one value per row used)."""
        from multilevel.models.gls import gls_fit

        rows = self._need(self.rows, "data").assign(**{SIMULATED: np.asarray(y, dtype=float)})
        weights, correlation = self.structures
        return GlsResult.from_fit(gls_fit(f"{SIMULATED} ~ {self.formula.split('~', 1)[1]}",
                                          rows, weights, correlation, self.method))

    def bootstrap_parameters(self) -> pd.Series:
        """The estimates a bootstrap collects: coefficients, structures' parameters, sigma."""
        var_names, cor_names = self._structures.names()
        return pd.Series(np.concatenate([self.fixef.to_numpy(), self.variance_parameters,
                                         self.correlation_parameters, [self.sigma]]),
                         index=[*self.fixed_names, *var_names, *cor_names, "sigma"])

    def bootstrap(self, n: int = 1000, seed: int | None = None, n_jobs: int | None = None,
                  progress: bool = True) -> Any:
        """Parametric bootstrap (see :func:`multilevel.bootstrap`)."""
        return INFERENCE_HOOKS["bootstrap"](self, n, seed, n_jobs, progress)


def structured_residuals(r: np.ndarray, sp: StructureParameters, sigma: float,
                         type: str) -> np.ndarray:
    """Response residuals ``r`` as nlme's ``type``: pearson = r / (sigma s), s the variance
    function's SD multipliers; normalized = the pearson ones whitened within each
    correlation group by F_g (F_g' F_g = C_g^-1, nlme's corFactor)."""
    if type == "response":
        return r
    if type == "pearson" or sp.whitening is None or sp.whitening.correlation is None:
        return r / (sigma * sp.sd_multipliers(r.size))
    (out,), _ = sp.whiten([r])
    return out / sigma


def variance_covariance_intervals(sp: StructureParameters, pars: np.ndarray,
                                  cov: np.ndarray, level: float, offset: int = 0,
                                  ) -> dict[str, Any]:
    """The structures' and sigma's intervals from the approximate covariance ``cov`` of the
    working parameters ``pars`` (the structures' at ``offset``, then ..., log sigma last)."""
    q = ai.normal_quantile(level)
    se = np.sqrt(np.diag(cov))
    limits = ai.wald_limits(pars, se, q)
    out: dict[str, Any] = {}
    k = sp.n
    if k:
        var, cor = sp.natural_limits(limits[offset:offset + k])
        var_names, cor_names = sp.names()
        if cor.size:
            out["corStruct"] = ai.interval_frame(cor, cor_names)
        if var.size:
            out["varStruct"] = ai.interval_frame(var, var_names)
    out["sigma"] = pd.Series(np.exp(limits[-1]), index=ai.COLUMNS, name="sigma")
    return out
