"""The result of :func:`multilevel.lme`: a linear mixed model with nlme's residual variance
function and correlation structure. The estimates are those of the linear mixed model fitted
to the whitened data (see :mod:`multilevel.models.lme`), so they are that model's result; the
log-likelihood adds the whitening's Jacobian, and the structures' parameters are reported on
nlme's natural scale.

Fitted values, residuals, predictions and simulations are on the data's scale, with nlme's
levels: level 0 is the population (X beta), level i adds the random effects of the first i
grouping factors, outermost first (level 1 of a one-factor model: within-group)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from multilevel.data.frame import to_pandas
from multilevel.errors import ArgumentError, MultilevelWarning, NotApplicableError, public_methods
from multilevel.linalg.blocked_cholesky import profiled_terms
from multilevel.models.lmm import ModelStages
from multilevel.results import approximate_intervals as ai
from multilevel.results.base import INFERENCE_HOOKS, check_simulation_arguments, confidence_level
from multilevel.results.gls_result import (
    SIMULATED,
    check_residual_type,
    check_which,
    structured_residuals,
    variance_covariance_intervals,
)
from multilevel.results.lmm_result import LinearMixedModelResult
from multilevel.results.nlme_summary import (
    NlmeSummary,
    fixed_correlation,
    random_effects_lines,
    residual_quantiles,
    t_table,
)
from multilevel.results.structure_parameters import StructureParameters
from multilevel.results.surface import ResultSurface


class LmeCall(NamedTuple):
    """The arguments of :func:`multilevel.lme`, kept for refits (the parametric bootstrap)."""

    formula: str
    data: Any
    random: str | None
    weights: Any
    correlation: Any


@public_methods
@dataclass(frozen=True)
class LmeResult(ResultSurface):
    """A fitted ``lme`` model.

    Attributes
    ----------
    fit : LinearMixedModelResult
        The linear mixed model on the whitened data: fixef, vcov, varcorr, theta, sigma and
        ranef are its (the same parameters as the data's model); its own fitted values and
        residuals are on the whitened scale (use this result's).
    deviance : float
        -2 log-likelihood (ML) or the REML criterion, the whitening's Jacobian included.
    variance_parameters, correlation_parameters : numpy.ndarray
        nlme's natural scale, as ``coef(..., unconstrained = FALSE)``.
    method : str
    design : ModelDesign or None
        The data-scale design (X, y, the random-effects terms).
    whitening : Whitening or None
        The structures initialized on the rows; ``psi`` their unconstrained parameters.
    call : LmeCall or None
        The arguments of the fit (for refits).
    """

    kind: ClassVar[str] = "lme"  # the fitting function, for dispatch and saved files

    fit: LinearMixedModelResult = field(repr=False)
    deviance: float
    variance_parameters: np.ndarray
    correlation_parameters: np.ndarray
    method: str
    design: Any = field(default=None, repr=False)
    whitening: Any = field(default=None, repr=False)
    psi: np.ndarray | None = field(default=None, repr=False)
    call: LmeCall | None = field(default=None, repr=False)

    @classmethod
    def from_fit(cls, fit: Any, method: str, call: LmeCall | None = None) -> LmeResult:
        """The result of :func:`multilevel.models.lme.lme_fit`'s estimates."""
        inner = LinearMixedModelResult.from_model(fit.model, fit.opt)
        return cls(fit=inner, deviance=fit.deviance,
                   variance_parameters=fit.variance_parameters,
                   correlation_parameters=fit.correlation_parameters, method=method,
                   design=fit.design, whitening=fit.structures, psi=fit.psi, call=call)

    # -- estimates ----------------------------------------------------------------------------
    @property
    def fixef(self) -> pd.Series:
        """Fixed-effects estimates."""
        return self.fit.fixef

    @property
    def fixed_names(self) -> list[str]:
        """Names of the fixed effects."""
        return list(self.fit.fixed_names)

    def _kept_data(self) -> tuple[Any, Any]:
        if self.call is None or self.design is None:
            return None, None
        return self.call.data, self.design.row_index

    def model_matrix(self, newdata: Any = None) -> pd.DataFrame:
        """The fixed-effects model matrix of the rows used, or of ``newdata`` (the fit's
        encoding replayed)."""
        return self.fit.model_matrix(newdata)

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
        """Conditional modes of the random effects (BLUPs): grouping factor -> DataFrame
        (levels x terms), as nlme's ``ranef``."""
        return self.fit.ranef

    @property
    def groups(self) -> list[str]:
        """The grouping factors, outermost (nlme's level 1) first."""
        found: dict[str, int] = {}
        for t in self.fit.model.design.terms:
            found.setdefault(t.factor.name, t.n_levels)
        return sorted(found, key=lambda g: found[g])

    @property
    def ngroups(self) -> dict[str, int]:
        """Number of levels of each grouping factor, outermost first."""
        sizes = self.fit.ngroups
        return {g: sizes[g] for g in self.groups}

    def coef(self, level: int | None = None) -> pd.DataFrame:
        """nlme's ``coef``: each group's coefficients, the fixed effects plus that group's
        random effects (and those of the groups it is nested in), at ``level`` (default the
        innermost); one row per group."""
        level = self._level(level)
        if level == 0:
            raise ArgumentError("coef() needs a level of 1 or more (level 0 is fixef)")
        name = self.groups[level - 1]
        ranef = self.ranef
        inner = ranef[name]
        out = pd.DataFrame(np.tile(self.fixef.to_numpy(), (len(inner), 1)),
                           index=inner.index, columns=self.fixef.index)
        codes = self._codes()
        # each inner level's first row, and so the level of every outer factor it lies in
        first_row = pd.Series(np.arange(len(codes[name]))).groupby(codes[name]).first()
        for g in self.groups[:level]:
            frame = ranef[g]
            outer_level = codes[g][first_row.to_numpy()]
            for col in frame.columns:
                if col in out.columns:
                    out[col] = out[col].to_numpy() + frame[col].to_numpy()[outer_level]
        return out

    def coef_table(self, ddf: str | None = "between-within", **options: Any) -> pd.DataFrame:
        """Fixed-effects tests; nlme's between-within df by default, worked out on the data's
        columns (the whitened ones need not be constant within the groups any more)."""
        table = self.fit.coef_table(ddf=ddf, **options)
        if ddf != "between-within" or self.design is None:
            return table
        df = INFERENCE_HOOKS["between_within_columns"](self.design)
        level = float(options.get("level", 0.95))
        q = stats.t.ppf(0.5 + level / 2, df)
        out = table.copy()
        out["df"] = df
        out["p_value"] = 2 * stats.t.sf(np.abs(out["statistic"].to_numpy()), df)
        if "ci_lower" in out:
            out["ci_lower"] = out["estimate"] - q * out["std_error"]
            out["ci_upper"] = out["estimate"] + q * out["std_error"]
        return out

    # -- the comparison vocabulary ------------------------------------------------------------
    @property
    def loglik(self) -> float:
        """The (restricted, for REML) log-likelihood, as nlme's ``logLik``."""
        return -0.5 * self.deviance

    @property
    def reml(self) -> bool:
        """Whether the criterion is REML."""
        return self.method == "REML"

    @property
    def nobs(self) -> int:
        """Number of observations used."""
        return int(self.fit.nobs)

    @property
    def response(self) -> np.ndarray:
        """The response of the rows used (data scale)."""
        return np.asarray(self._need_design().y, dtype=float)

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

    # -- fitted values, residuals, predictions -------------------------------------------------
    def _need_design(self) -> Any:
        if self.design is None:
            raise NotApplicableError("this lme result does not keep its data-scale design; "
                                     "refit it with multilevel.lme")
        return self.design

    @property
    def _structures(self) -> StructureParameters:
        psi = self.psi if self.psi is not None else np.empty(0)
        return StructureParameters(self.whitening, psi)

    def _level(self, level: Any) -> int:
        q = len(self.groups)
        if level is None:
            return q
        if isinstance(level, bool) or not isinstance(level, int | np.integer) or not (
                0 <= level <= q):
            raise ArgumentError(f"level must be a whole number from 0 (population) to {q} "
                                f"(the innermost of {self.groups}), got {level!r:.60}")
        return int(level)

    def _levels(self, level: Any) -> list[int]:
        if isinstance(level, list | tuple | np.ndarray):
            if not len(level):
                raise ArgumentError("level must name at least one level")
            return [self._level(v) for v in level]
        return [self._level(level)]

    def _codes(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for t in self.fit.model.design.terms:
            out.setdefault(t.factor.name, t.factor.codes)
        return out

    def _fitted_at(self, level: int) -> np.ndarray:
        design = self._need_design()
        out = design.X @ self.fit.beta
        included = set(self.groups[:level])
        effects = self.fit._block_effects()
        for blk, b in zip(self.fit.model.blocks, effects, strict=True):
            terms = [design.terms[i] for i in blk.terms]
            if terms[0].factor.name in included:
                Z = np.hstack([t.Z for t in terms])
                out = out + np.einsum("nk,nk->n", Z, b[blk.codes])
        return np.asarray(out, dtype=float)

    def fitted(self, level: int | list[int] | None = None) -> np.ndarray | pd.DataFrame:
        """nlme's ``fitted``: X beta (level 0) plus the random effects of the first ``level``
        grouping factors (default: all, the within-group fitted values). A list of levels
        gives a DataFrame with a column per level (``fixed``, then the factors' names)."""
        levels = self._levels(level)
        if isinstance(level, list | tuple | np.ndarray):
            return pd.DataFrame({self._level_name(v): self._fitted_at(v) for v in levels})
        return self._fitted_at(levels[0])

    def _level_name(self, level: int) -> str:
        return "fixed" if level == 0 else self.groups[level - 1]

    def residuals(self, type: str = "response", level: int | list[int] | None = None,
                  ) -> np.ndarray | pd.DataFrame:
        """nlme's residuals at ``level`` (default the innermost): ``"response"``
        (y - fitted), ``"pearson"`` (divided by sigma times the variance function's SD
        multiplier) or ``"normalized"`` (the Pearson ones pre-multiplied, within each
        correlation group, by the inverse of the transposed Cholesky factor of the fitted
        correlation matrix). A list of levels gives a DataFrame with a column per level."""
        type = check_residual_type(type)
        levels = self._levels(level)
        y = self.response
        sp = self._structures

        def at(v: int) -> np.ndarray:
            return structured_residuals(y - self._fitted_at(v), sp, self.sigma, type)

        if isinstance(level, list | tuple | np.ndarray):
            return pd.DataFrame({self._level_name(v): at(v) for v in levels})
        return at(levels[0])

    def predict(self, newdata: Any = None, level: int | list[int] | None = None,
                ) -> np.ndarray | pd.DataFrame:
        """nlme's ``predict.lme``: predictions at ``level`` (default the innermost) on
        ``newdata`` (default the rows used). A group not seen in the fit has no random
        effect to add: its predictions above level 0 are NaN, as nlme's. A list of levels
        gives a DataFrame with the columns ``predict.fixed`` and ``predict.<factor>``, as
        nlme's ``predict(fit, newdata, level = 0:1)``."""
        levels = self._levels(level)
        as_frame = isinstance(level, list | tuple | np.ndarray)
        if newdata is None:
            values = [self._fitted_at(v) for v in levels]
        else:
            frame = to_pandas(newdata).reset_index(drop=True)
            values = [self._predict_new(frame, v) for v in levels]
        if not as_frame:
            return values[0]
        return pd.DataFrame({f"predict.{self._level_name(v)}": x
                             for v, x in zip(levels, values, strict=True)})

    def _predict_new(self, frame: pd.DataFrame, level: int) -> np.ndarray:
        from multilevel.results.prediction import _level_codes

        if level == 0:
            return np.asarray(self.fit.predict(frame, re_form="NA"), dtype=float)
        names = self.groups[:level]
        form = "~" + " + ".join(f"(1 | {g})" for g in names)
        out = np.asarray(self.fit.predict(frame, re_form=form, allow_new_levels=True),
                         dtype=float).copy()
        design = self.fit.model.design
        for spec in design.formula.random:
            if spec.group_name in names:
                term = next(t for t in design.terms if t.factor.name == spec.group_name)
                codes = _level_codes(frame, spec.group_factors, term.factor.levels, True,
                                     spec.group_name)
                out[codes < 0] = np.nan
        return out

    # -- intervals ----------------------------------------------------------------------------
    def _random_blocks(self) -> list[tuple[str, list[str], np.ndarray, np.ndarray, np.ndarray]]:
        """Per block of the fit: factor name, columns, codes, data-scale Z (n x k) and the
        absolute covariance D of its random effects."""
        design = self._need_design()
        templates = self.fit.model.layout.templates(self.fit.theta)
        out = []
        for blk, T in zip(self.fit.model.blocks, templates, strict=True):
            terms = [design.terms[i] for i in blk.terms]
            Z = np.hstack([t.Z for t in terms])
            cols = [c for t in terms for c in t.columns]
            out.append((terms[0].factor.name, cols, blk.codes, Z,
                        self.sigma**2 * (T @ T.T)))
        return out

    def _whitened_model(self, psi: np.ndarray) -> tuple[ModelStages, float]:
        """The linear mixed model on the rows whitened at ``psi`` (as the fit builds it) and
        the whitening's Jacobian term."""
        design = self._need_design()
        sp = self._structures
        (X, y, *Zs), logdet = sp.whiten([design.X, design.y, *(t.Z for t in design.terms)],
                                        psi)
        terms = tuple(replace(t, Z=z) for t, z in zip(design.terms, Zs, strict=True))
        d = replace(design, X=X, y=y, terms=terms)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MultilevelWarning)
            model = ModelStages(d.formula, None, reml=self.reml, calc_derivs=False, design=d)
        return model, logdet

    def _loglik_at(self, sp: StructureParameters) -> Any:
        """The (restricted) log-likelihood at nlme's working parameters: per random-effects
        term its pdNatural coefficients, then the structures', then log sigma. Evaluated by
        the package's blocked-Cholesky engine on the rows whitened at the structures'
        parameters, at the given sigma (not profiled): theta = chol(D) / sigma per term."""
        layout = self.fit.model.layout
        reml = self.reml
        cache: dict[bytes, tuple[ModelStages, float]] = {}

        def loglik(pars: np.ndarray) -> float:
            sigma = math.exp(pars[-1])
            theta = np.empty(layout.n_theta)
            start = 0
            for t in layout.terms:
                D = ai.covariance_from_natural(pars[start:start + t.n_theta], t.k)
                T = np.linalg.cholesky(D) / sigma
                rows, cols = np.triu_indices(t.k)[::-1]  # lme4's order: column by column
                theta[t.theta_offset:t.theta_offset + t.n_theta] = T[rows, cols]
                start += t.n_theta
            psi = sp.psi_from_working(pars[start:-1])
            key = psi.tobytes()
            if key not in cache:  # the Hessian's steps in the other parameters reuse it
                cache[key] = self._whitened_model(psi)
            model, logdet = cache[key]
            parts = profiled_terms(model.A, model.layout.templates(theta))
            return -0.5 * model.response.criterion(*parts, reml, sigma=sigma) - logdet

        return loglik

    def intervals(self, level: float = 0.95, which: str = "all",
                  ) -> ai.ApproximateIntervals:
        """nlme's ``intervals.lme``: approximate confidence intervals.

        The fixed effects' from the t distribution with the between-within df; those of the
        random effects' SDs and correlations, the structures' parameters and sigma from nlme's
        approximate covariance: the inverse of minus the numerical Hessian of the (restricted)
        log-likelihood over nlme's working parameters (log SDs and log((1 + r)/(1 - r)) of
        each random-effects covariance, the structures' unconstrained coefficients, log
        sigma), Wald intervals there mapped back.

        Returns
        -------
        ApproximateIntervals
            A dict (``str()`` prints nlme's layout): ``"fixed"`` (DataFrame lower, est.,
            upper), ``"reStruct"`` (dict factor ->
            DataFrame with rows ``sd((Intercept))``, ``cor((Intercept),age)``, ...),
            ``"corStruct"`` and ``"varStruct"`` when the model has them, ``"sigma"`` (Series).
        """
        level = confidence_level(level)
        which = check_which(which)
        out: dict[str, Any] = {}
        if which != "var-cov":
            ct = self.coef_table()
            q = stats.t.ppf(0.5 + level / 2, ct["df"].to_numpy())
            out["fixed"] = ai.interval_frame(
                ai.wald_limits(ct["estimate"].to_numpy(), ct["std_error"].to_numpy(), q),
                self.fixed_names)
        if which == "fixed":
            return ai.ApproximateIntervals(out, level, mixed=True)
        sp = self._structures
        layout = self.fit.model.layout
        factors = [layout.term_factor(self.fit.theta, i) for i in range(len(layout.terms))]
        re_pars = [ai.natural_from_covariance(self.sigma**2 * (T @ T.T)) for T in factors]
        pars = np.concatenate([*re_pars, sp.working(), [math.log(self.sigma)]])
        cov = ai.approximate_covariance(self._loglik_at(sp), pars)
        limits = ai.wald_limits(pars, np.sqrt(np.diag(cov)), ai.normal_quantile(level))
        random: dict[str, pd.DataFrame] = {}
        start = 0
        for t in layout.terms:
            rows = np.column_stack([
                ai.natural_to_sdcor(limits[start:start + t.n_theta, c], t.k)
                for c in range(3)])
            frame = ai.interval_frame(rows, ai.sdcor_names(list(t.columns)))
            random[t.group] = (pd.concat([random[t.group], frame]) if t.group in random
                               else frame)
            start += t.n_theta
        out["reStruct"] = {g: random[g] for g in self.groups if g in random}
        out.update(variance_covariance_intervals(sp, pars, cov, level, offset=start))
        return ai.ApproximateIntervals(out, level, mixed=True)

    # -- summary ------------------------------------------------------------------------------
    def summary(self) -> NlmeSummary:
        """The summary in nlme's layout (``print(summary(fit))``)."""
        formula = self.fit.model.design.formula
        fixed_text = f"{formula.response} ~ {formula.fixed}" if formula.fixed not in (
            "1",) else f"{formula.response} ~ 1"
        if self.call is not None:
            fixed_text = " ".join(self.call.formula.split())
        lhs = " + ".join(dict.fromkeys(s.lhs.replace(" ", "") for s in formula.random))
        if self.call is not None and self.call.random:
            lhs = self.call.random.split("~", 1)[1].split("|")[0].replace(" ", "") or "1"
        return NlmeSummary(
            title=("Linear mixed-effects model fit by "
                   + ("REML" if self.reml else "maximum likelihood")),
            formula=fixed_text, aic=self.aic, bic=self.bic, loglik=self.loglik,
            tTable=self._summary_table(),
            corFixed=fixed_correlation(self.vcov),
            residual_quantiles=residual_quantiles(np.asarray(self.residuals("pearson"))),
            nobs=self.nobs, sigma=self.sigma, ngroups=self.ngroups,
            random_lines=random_effects_lines(lhs, self.groups, self.varcorr),
            structure_lines=self._structures.summary_lines(), mixed=True)

    def _summary_table(self) -> pd.DataFrame:
        table = t_table(self.coef_table(), with_df=True)
        if not self.reml:
            # nlme's summary.lme (adjustSigma = TRUE): an ML fit's standard errors are those
            # of sigma on N - p df, sqrt(N / (N - p)) times vcov's (intervals use vcov's)
            n, p = self.nobs, len(self.fixef)
            table["Std.Error"] *= math.sqrt(n / (n - p))
            table["t-value"] = table["Value"] / table["Std.Error"]
            table["p-value"] = 2 * stats.t.sf(np.abs(table["t-value"]), table["DF"])
        return table

    def __str__(self) -> str:
        return str(self.summary())

    # -- simulation and the parametric bootstrap ----------------------------------------------
    def simulate(self, nsim: int = 1, seed: int | None = None) -> pd.DataFrame:
        """Responses drawn from the fitted model: X beta, new random effects from their
        fitted covariance, and errors with the fitted sigma, variance function and
        correlation structure. One column per draw (``sim_1``, ...)."""
        nsim, seed = check_simulation_arguments(nsim, seed)
        rng = np.random.default_rng(seed)
        n = self.nobs
        sims = np.repeat(self._fitted_at(0)[:, None], nsim, axis=1)
        for _, _, codes, Z, D in self._random_blocks():
            L = np.linalg.cholesky(D + 1e-300 * np.eye(D.shape[0])) if np.all(
                np.diag(D) > 0) else np.diag(np.sqrt(np.maximum(np.diag(D), 0.0)))
            nl = int(codes.max()) + 1
            for s in range(nsim):
                b = rng.standard_normal((nl, Z.shape[1])) @ L.T
                sims[:, s] += np.einsum("nk,nk->n", Z, b[codes])
        sims += self.sigma * self._structures.correlated_draws(rng.standard_normal((n, nsim)))
        return pd.DataFrame(sims, columns=[f"sim_{i + 1}" for i in range(nsim)])

    def refit_response(self, y: np.ndarray) -> LmeResult:
        """The same model fitted to another response ``y`` (one value per row used)."""
        from multilevel.models.lme import lme_fit

        if self.call is None:
            raise NotApplicableError("this lme result does not keep its call; refit it with "
                                     "multilevel.lme")
        frame = to_pandas(self.call.data).iloc[self._need_design().row_index]
        rows = frame.reset_index(drop=True).assign(**{SIMULATED: np.asarray(y, dtype=float)})
        formula = f"{SIMULATED} ~ {self.call.formula.split('~', 1)[1]}"
        call = LmeCall(formula, rows, self.call.random, self.call.weights,
                       self.call.correlation)
        return LmeResult.from_fit(lme_fit(*call, method=self.method), self.method, call)

    def bootstrap_parameters(self) -> pd.Series:
        """The estimates a bootstrap collects: fixed effects, random-effects SDs and
        correlations, the structures' parameters, sigma."""
        var_names, cor_names = self._structures.names()
        names, values = list(self.fixed_names), list(self.fixef.to_numpy())
        for name, cols, *_, D in self._random_blocks():
            sd = np.sqrt(np.diag(D))
            R = D / np.outer(sd, sd)
            iu = np.triu_indices(len(cols), 1)
            names += [f"{name}: {n}" for n in ai.sdcor_names(cols)]
            values += [*sd, *R[iu]]
        names += [*var_names, *cor_names, "sigma"]
        values += [*self.variance_parameters, *self.correlation_parameters, self.sigma]
        return pd.Series(values, index=names, dtype=float)

    def bootstrap(self, n: int = 1000, seed: int | None = None, n_jobs: int | None = None,
                  progress: bool = True) -> Any:
        """Parametric bootstrap (see :func:`multilevel.bootstrap`)."""
        return INFERENCE_HOOKS["bootstrap"](self, n, seed, n_jobs, progress)
