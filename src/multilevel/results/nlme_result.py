"""The result of :func:`multilevel.nlme`: a nonlinear mixed model fitted by nlme's
Lindstrom-Bates alternation (see :mod:`multilevel.models.nlme_fit`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import stats

from multilevel.data.grouping import level_labels
from multilevel.errors import ArgumentError, NotApplicableError, public_methods
from multilevel.models.nlme_fit import NlmeFit, fixed_df, nlme_estimate, ranef_frames
from multilevel.models.nlme_spec import NlmeSpec, new_rows
from multilevel.models.whitening import Whitening
from multilevel.results import approximate_intervals as ai
from multilevel.results.base import INFERENCE_HOOKS, check_simulation_arguments, confidence_level
from multilevel.results.lme_result import LmeResult
from multilevel.results.lmm_result import LinearMixedModelResult
from multilevel.results.nlme_summary import (
    NlmeSummary,
    fixed_correlation,
    random_effects_lines,
    residual_quantiles,
)
from multilevel.results.structure_parameters import StructureParameters
from multilevel.results.surface import ResultSurface


def _levels_arg(level: Any, depth: int) -> list[int]:
    levels = list(level) if isinstance(level, list | tuple) else [level]
    for lv in levels:
        if isinstance(lv, bool) or not isinstance(lv, int | np.integer) or not 0 <= lv <= depth:
            raise ArgumentError(f"level must be an integer from 0 (population) to {depth} (the "
                                f"innermost grouping level), or a list of them; got {level!r:.60}")
    return [int(lv) for lv in levels]


def _rename_effects(text: str, effects: dict[str, str]) -> str:
    for old, new in sorted(effects.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(old, new)
    return text


def _level_covariance(vc: pd.DataFrame, group: str, names: list[str]) -> np.ndarray:
    """The random effects' covariance of one level from ``varcorr`` (zeros between blocks)."""
    k = len(names)
    D = np.zeros((k, k))
    rows = vc[vc["group"] == group]
    for _, r in rows.iterrows():
        i = names.index(r["term1"])
        if pd.isna(r["term2"]):
            D[i, i] = r["variance"]
        else:
            j = names.index(r["term2"])
            D[i, j] = D[j, i] = r["variance"]
    return D


@public_methods
@dataclass(frozen=True)
class NlmeResult(ResultSurface):
    """A fitted nonlinear mixed model.

    Attributes
    ----------
    fixef : pandas.Series
        The fixed effects, named as nlme names them (``Asym``; ``Asym.(Intercept)``,
        ``Asym.TreatmentB`` for a parameter that depends on covariates).
    ranef : dict of str to pandas.DataFrame
        Per grouping level (outermost first): groups x random effects, the conditional modes
        (the last PNLS solution). Nested levels' groups are named ``outer/inner`` as nlme.
    linear : LmeResult
        The linear mixed model of the last linearization at nlme's final relative factors and
        structures (nlme's final ``MEestimate``): sigma, the log-likelihood, the random
        effects' and the fixed effects' covariance, the structures' parameters and their
        approximate intervals are its, as nlme reports them.
    method : str
    iterations : int
        Lindstrom-Bates alternations.
    spec : NlmeSpec
        The model and its data.
    X : numpy.ndarray
        The last linearization's fixed-effects columns (nlme's denominator df).
    call : dict
        The arguments of the fit, for refits.
    """

    kind: ClassVar[str] = "nlme"  # the fitting function, for dispatch and saved files

    fixef: pd.Series
    ranef: dict[str, pd.DataFrame]
    linear: LmeResult = field(repr=False)
    method: str
    iterations: int
    spec: NlmeSpec = field(repr=False)
    X: np.ndarray = field(repr=False)
    call: dict[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def from_fit(cls, spec: NlmeSpec, fit: NlmeFit, call: dict[str, Any]) -> NlmeResult:
        """The result of :func:`multilevel.models.nlme_fit.nlme_estimate`'s estimates;
        ``call`` holds the arguments, for refits."""
        method = call.get("method", "ML")
        linear = LmeResult(fit=LinearMixedModelResult.from_model(fit.model, fit.opt),
                           deviance=fit.deviance,
                           variance_parameters=fit.variance_parameters,
                           correlation_parameters=fit.correlation_parameters, method=method,
                           design=fit.design, whitening=fit.structures, psi=fit.psi)
        return cls(fixef=pd.Series(fit.beta, index=spec.fixed_names, name="estimate"),
                   ranef=ranef_frames(spec, fit.b), linear=linear, method=method,
                   iterations=fit.iterations, spec=spec, X=fit.X, call=dict(call))

    # -- what the last linearization's linear mixed model reports ----------------------------
    @property
    def lme(self) -> LinearMixedModelResult:
        """The last linearization's linear mixed model (on the whitened rows)."""
        return self.linear.fit

    @property
    def deviance(self) -> float:
        """-2 log-likelihood (ML) or the REML criterion of the last linearization, with the
        residual structures' Jacobian."""
        return self.linear.deviance

    @property
    def variance_parameters(self) -> np.ndarray:
        """The variance function's parameters on nlme's natural scale (empty without one)."""
        return self.linear.variance_parameters

    @property
    def correlation_parameters(self) -> np.ndarray:
        """The correlation structure's parameters on nlme's natural scale (empty without
        one)."""
        return self.linear.correlation_parameters

    @property
    def structures(self) -> Whitening | None:
        """The residual structures on the model's rows."""
        whitening: Whitening | None = self.linear.whitening
        return whitening

    @property
    def psi(self) -> np.ndarray:
        """The structures' unconstrained parameters."""
        return self.linear.psi if self.linear.psi is not None else np.empty(0)

    @property
    def weights(self) -> Any:
        """The variance function as given."""
        return self.call.get("weights")

    @property
    def correlation(self) -> Any:
        """The correlation structure as given."""
        return self.call.get("correlation")

    @property
    def sigma(self) -> float:
        """Residual standard deviation (at variance-function multiplier 1)."""
        return self.linear.sigma

    @property
    def loglik(self) -> float:
        """The log-likelihood (restricted for REML), as nlme's logLik."""
        return self.linear.loglik

    @property
    def n_params(self) -> int:
        """Fixed effects, the random effects' covariance parameters, sigma and the residual
        structures' parameters."""
        return self.linear.n_params

    @property
    def aic(self) -> float:
        """-2 logLik + 2 n_params."""
        return self.linear.aic

    @property
    def bic(self) -> float:
        """-2 logLik + log(N for ML, N - p for REML) n_params, as nlme."""
        return self.linear.bic

    @property
    def response(self) -> np.ndarray:
        """The response of the rows used."""
        return self.spec.y

    @property
    def reml(self) -> bool:
        """Whether the fit is REML."""
        return self.method == "REML"

    @property
    def nobs(self) -> int:
        """Number of observations used."""
        return int(self.spec.y.size)

    def _kept_data(self) -> tuple[Any, Any]:
        return self.spec.rows, None

    def model_matrix(self, newdata: Any = None) -> pd.DataFrame:
        """Not defined for a nonlinear model: its fixed effects enter through the model
        function, not a model matrix (use ``predict``)."""
        raise NotApplicableError("a nonlinear mixed model has no fixed-effects model matrix: "
                                 "its coefficients enter through the model function; use "
                                 "predict(newdata, level=0) for population predictions")

    @property
    def vcov(self) -> pd.DataFrame:
        """Covariance of the fixed effects (the last LME step's)."""
        names = list(self.fixef.index)
        return pd.DataFrame(self.lme.vcov.to_numpy(), index=names, columns=names)

    @property
    def varcorr(self) -> pd.DataFrame:
        """Random-effects variances and correlations (group = the grouping level, terms named
        by the random effect), residual last."""
        out = self.lme.varcorr.copy()
        groups, names = self._names()
        # a diagonal block is one LMM term per effect, named nlme_gL, nlme_gL.1, ...
        out["group"] = out["group"].map(lambda g: groups.get(str(g).split(".")[0], g))
        for col in ("term1", "term2"):
            out[col] = out[col].map(lambda t: names.get(t, t))
        order = {lv.name: i for i, lv in enumerate(self.spec.levels)}
        rank = out["group"].map(lambda g: order.get(g, len(order)))
        return (out.assign(_rank=rank).sort_values("_rank", kind="stable")
                .drop(columns="_rank").reset_index(drop=True))

    def df(self) -> pd.Series:
        """The fixed effects' denominator df as nlme's ``summary(...)$tTable`` (``getFixDF``
        on the last linearization's fixed-effects columns; see
        :func:`multilevel.models.nlme_fit.fixed_df`)."""
        levels = [lv.codes for lv in self.spec.levels]
        return pd.Series(fixed_df(self.X, levels), index=self.fixef.index)

    def coef_table(self, level: float = 0.95) -> pd.DataFrame:
        """nlme's ``summary(fit)$tTable``: estimate, std_error, statistic (t), df, p_value, and
        ci_lower, ci_upper at ``level``."""
        if isinstance(level, bool) or not isinstance(level, int | float) or not 0 < level < 1:
            raise ArgumentError(f"level must be strictly between 0 and 1, got {level!r:.60}")
        est = self.fixef.to_numpy()
        se = np.sqrt(np.diag(self.vcov.to_numpy()))
        if self.method == "ML":
            # nlme's summary scales an ML fit's standard errors by sqrt(N / (N - p)), the
            # REML-style residual variance; vcov itself is not scaled
            se = se * math.sqrt(self.nobs / (self.nobs - est.size))
        df = self.df().to_numpy()
        t = est / se
        q = stats.t.ppf(0.5 + level / 2, df)
        return pd.DataFrame({"estimate": est, "std_error": se, "statistic": t, "df": df,
                             "p_value": 2 * stats.t.sf(np.abs(t), df),
                             "ci_lower": est - q * se, "ci_upper": est + q * se},
                            index=self.fixef.index)

    def coef(self, level: int | None = None) -> pd.DataFrame:
        """Each group's coefficients at ``level`` (default innermost): the fixed effects plus
        the random effects of that level and the levels above it, matched by name as nlme's
        ``coef``."""
        depth = len(self.spec.levels)
        L = _levels_arg(depth if level is None else level, depth)[0]
        if L == 0:
            raise ArgumentError("coef: level must be 1 or more (level 0 is fixef)")
        lv = self.spec.levels[L - 1]
        out = pd.DataFrame(np.tile(self.fixef.to_numpy(), (len(lv.labels), 1)),
                           index=pd.Index(lv.labels, name=lv.name), columns=self.fixef.index)
        for up in range(L):
            upper = self.spec.levels[up]
            frame = self.ranef[upper.name]
            # the row of each group's ancestor at level `up`
            anc = [self._ancestor(lab, up, L - 1) for lab in lv.labels]
            for e in upper.effects:
                target = e.name if e.name in out.columns else f"{e.name}.(Intercept)"
                if target in out.columns:
                    out[target] = out[target] + frame[e.name].reindex(anc).to_numpy()
        return out

    def _ancestor(self, label: str, up: int, at: int) -> str:
        return "/".join(label.split("/")[:up + 1]) if up < at else label

    def _phi(self, levels: int, A: np.ndarray, random_cols: list[np.ndarray],
             rows: pd.DataFrame) -> np.ndarray:
        spec = self.spec
        phi = np.zeros((A.shape[0], len(spec.parameters)))
        for j, e in enumerate(spec.fixed):
            phi[:, e.parameter] += A[:, j] * self.fixef.iloc[j]
        for L in range(levels):
            lv = spec.levels[L]
            labels = self._labels(rows, L)
            frame = self.ranef[lv.name]
            b = frame.reindex(labels).to_numpy()  # NaN for groups the fit did not see
            for j, e in enumerate(lv.effects):
                phi[:, e.parameter] += random_cols[L][:, j] * b[:, j]
        return phi

    def _labels(self, rows: pd.DataFrame, L: int) -> list[str]:
        """Each row's group at level L, named as the fit names them (``outer/inner``)."""
        return ["/".join(map(str, vals)) for vals in zip(
            *(level_labels(rows[c]) for c in self._group_columns(L)), strict=True)]

    def _group_columns(self, L: int) -> list[str]:
        """The data columns that identify level L's groups (nlme's nested path)."""
        names = [lv.name for lv in self.spec.levels]
        return names[:L + 1]

    def predict(self, newdata: Any = None, level: Any = None) -> Any:
        """Predictions at ``level`` (0: population; k: with the random effects of levels 1..k;
        default the innermost), as nlme's ``predict``: a Series for one level, a DataFrame
        with a column per level (``fixed``, then the grouping names) for a list. Groups the
        fit did not see get NaN above level 0, as nlme."""
        depth = len(self.spec.levels)
        levels = _levels_arg(depth if level is None else level, depth)
        if newdata is None:
            rows = self.spec.rows
            A = np.column_stack([e.column for e in self.spec.fixed])
            random_cols = [np.column_stack([e.column for e in lv.effects])
                           for lv in self.spec.levels]
            covariates = self.spec.columns
        else:
            rows, covariates, A, random_cols = new_rows(self.spec, newdata)
            for L in range(max(levels)):
                missing = [c for c in self._group_columns(L) if c not in rows.columns]
                if missing:
                    raise ArgumentError(f"predict at level {L + 1} needs the grouping "
                                        f"column(s) {', '.join(missing)} in newdata")
        out = {}
        for L in levels:
            phi = self._phi(L, A, random_cols, rows)
            res = self.spec.evaluator.run(
                self.spec.tree, covariates,
                {p: phi[:, j] for j, p in enumerate(self.spec.parameters)})
            out[L] = np.broadcast_to(res.v, (A.shape[0],)).astype(float)
        if len(levels) == 1:
            return pd.Series(out[levels[0]], name="fitted" if newdata is None else "predicted")
        names = ["fixed", *(lv.name for lv in self.spec.levels)]
        return pd.DataFrame({names[L]: out[L] for L in levels})

    def fitted(self, level: Any = None) -> Any:
        """Fitted values at ``level`` (default the innermost), as nlme's ``fitted``."""
        return self.predict(None, level)

    def residuals(self, type: str = "response", level: Any = None) -> Any:
        """Residuals at ``level`` (default innermost): ``"response"`` (y - fitted),
        ``"pearson"`` (divided by sigma times the variance function's sd) or
        ``"normalized"`` (also decorrelated by the inverse of the correlation matrix's
        Cholesky factor within each correlation group), as nlme's ``residuals``."""
        if type not in ("response", "pearson", "normalized"):
            raise ArgumentError(f"type must be 'response', 'pearson' or 'normalized', got "
                                f"{type!r:.60}")
        fit = self.fitted(level)
        y = self.spec.y
        frame = fit if isinstance(fit, pd.DataFrame) else pd.DataFrame({"r": fit})
        out = {}
        for col in frame.columns:
            r = y - frame[col].to_numpy()
            if type != "response":
                r = self._standardize(r, normalized=type == "normalized")
            out[col] = r
        if isinstance(fit, pd.DataFrame):
            return pd.DataFrame(out)
        return pd.Series(out["r"], name="residuals")

    def _standardize(self, r: np.ndarray, normalized: bool) -> np.ndarray:
        s = self.structures
        if s is None:
            return r / self.sigma
        if normalized:
            # nlme's corFactor: the rows whitened as in the fit, F S^-1 r
            (out,), _ = s.whiten(self.psi, [np.array(r, dtype=float)])
            return out / self.sigma
        sd = StructureParameters(s, self.psi).sd_multipliers(r.size)
        return r / sd / self.sigma

    # -- intervals -----------------------------------------------------------------------------
    def _names(self) -> tuple[dict[str, str], dict[str, str]]:
        """The LME step's names -> nlme's: grouping terms -> level names, working columns ->
        random effects."""
        groups: dict[str, str] = {}
        effects: dict[str, str] = {}
        for L, lv in enumerate(self.spec.levels):
            groups[f"nlme_g{L}"] = lv.name
            for j, e in enumerate(lv.effects):
                effects[f"nlme_z{L}_{j}"] = e.name
        return groups, effects

    def intervals(self, level: float = 0.95, which: str = "all") -> dict[str, Any]:
        """nlme's ``intervals`` of an nlme fit: the fixed effects' from the t distribution
        with nlme's df and vcov's standard errors; the random effects' SDs and correlations,
        the structures' parameters and sigma from nlme's approximate covariance of the last
        linearization's linear mixed model (the inverse of minus the numerical Hessian of its
        (restricted) log-likelihood over nlme's working parameters), Wald limits mapped back.

        Returns
        -------
        dict
            ``"fixed"`` (DataFrame lower, est., upper), ``"reStruct"`` (level -> DataFrame
            with rows ``sd(Asym)``, ``cor(Asym,xmid)``), ``"corStruct"``, ``"varStruct"`` when
            the model has them, ``"sigma"``.
        """
        level = confidence_level(level)
        if which not in ("all", "fixed", "var-cov"):
            raise ArgumentError(f"which must be 'all', 'fixed' or 'var-cov', got {which!r:.60}")
        out: dict[str, Any] = {}
        if which != "var-cov":
            se = np.sqrt(np.diag(self.vcov.to_numpy()))
            q = stats.t.ppf(0.5 + level / 2, self.df().to_numpy())
            out["fixed"] = ai.interval_frame(
                ai.wald_limits(self.fixef.to_numpy(), se, q), list(self.fixef.index))
        if which == "fixed":
            return out
        if self.linear is None:
            raise ArgumentError("this nlme result keeps no linearized model; refit it")
        inner = self.linear.intervals(level, which="var-cov")
        groups, effects = self._names()
        random: dict[str, pd.DataFrame] = {}
        for group, frame in inner["reStruct"].items():
            name = groups.get(str(group).split(".")[0], str(group))
            renamed = frame.rename(index=lambda r: _rename_effects(str(r), effects))
            random[name] = pd.concat([random[name], renamed]) if name in random else renamed
        out["reStruct"] = {lv.name: random[lv.name] for lv in self.spec.levels
                           if lv.name in random}
        out.update({k: v for k, v in inner.items() if k != "reStruct"})
        return out

    # -- simulation and the bootstrap ------------------------------------------------------------
    def simulate(self, nsim: int = 1, seed: int | None = None) -> pd.DataFrame:
        """Responses drawn from the fitted model: new random effects from their fitted
        covariance at every level, the nonlinear model at the resulting parameters, and errors
        with the fitted sigma, variance function and correlation structure. One column per
        draw (``sim_1``, ...)."""
        nsim, seed = check_simulation_arguments(nsim, seed)
        rng = np.random.default_rng(seed)
        spec = self.spec
        n = self.nobs
        vc = self.varcorr
        sims = np.empty((n, nsim))
        sp = StructureParameters(self.structures, self.psi)
        for s in range(nsim):
            b = []
            for lv in spec.levels:
                names = [e.name for e in lv.effects]
                D = _level_covariance(vc, lv.name, names)
                L = np.linalg.cholesky(D + 1e-12 * np.max(np.diag(D), initial=1.0)
                                       * np.eye(len(names)))
                b.append(rng.standard_normal((len(lv.labels), len(names))) @ L.T)
            f, _ = spec.evaluate(spec.phi(self.fixef.to_numpy(), b))
            sims[:, s] = f
        sims += self.sigma * sp.correlated_draws(rng.standard_normal((n, nsim)))
        return pd.DataFrame(sims, columns=[f"sim_{i + 1}" for i in range(nsim)])

    def refit_response(self, y: np.ndarray) -> NlmeResult:
        """The same model fitted to another response ``y`` (one value per row used), from
        this fit's estimates."""
        if not self.call:
            raise ArgumentError("this nlme result keeps no call to refit")
        column = "simulated_response_"
        rows = self.spec.rows.assign(**{column: np.asarray(y, dtype=float)})
        call = dict(self.call)
        call["model"] = f"{column} ~ {self.spec.formula.split('~', 1)[1]}"
        call["data"] = rows
        call["start"] = self.fixef.to_numpy()
        spec, fit = nlme_estimate(**call)
        return NlmeResult.from_fit(spec, fit, call)

    def bootstrap_parameters(self) -> pd.Series:
        """The estimates a bootstrap collects: fixed effects, random-effects SDs and
        correlations by level, the structures' parameters, sigma."""
        names, values = list(self.fixef.index), list(self.fixef.to_numpy())
        vc = self.varcorr
        for _, r in vc[vc["group"] != "Residual"].iterrows():
            if pd.isna(r["term2"]):
                names.append(f"{r['group']}: sd({r['term1']})")
                values.append(r["sd"])
            else:
                names.append(f"{r['group']}: cor({r['term1']},{r['term2']})")
                values.append(r["corr"])
        var_names, cor_names = StructureParameters(self.structures, self.psi).names()
        names += [*var_names, *cor_names, "sigma"]
        values += [*self.variance_parameters, *self.correlation_parameters, self.sigma]
        return pd.Series(values, index=names, dtype=float)

    def bootstrap(self, n: int = 1000, seed: int | None = None, n_jobs: int | None = None,
                  progress: bool = True) -> Any:
        """Parametric bootstrap (see :func:`multilevel.bootstrap`): ``n`` responses drawn by
        :meth:`simulate`, each refitted with the same call."""
        return INFERENCE_HOOKS["bootstrap"](self, n, seed, n_jobs, progress)

    def summary(self) -> NlmeSummary:
        """nlme's ``summary``: the model, fit criteria, random effects by level, the residual
        structures, the fixed-effects table (nlme's df; an ML fit's standard errors scaled by
        sqrt(N / (N - p))), their correlation, standardized residuals' quantiles, the numbers
        of observations and groups. ``str()`` prints it in nlme's layout."""
        spec = self.spec
        names = [lv.name for lv in spec.levels]
        lines = random_effects_lines("", names, self.varcorr)
        for lv in spec.levels:
            effects = [e.name for e in lv.effects]
            text = (f"{effects[0]} ~ 1" if len(effects) == 1
                    else "list(" + ", ".join(f"{e} ~ 1" for e in effects) + ")")
            lines = [f" Formula: {text} | {lv.name}" if ln == f" Formula: ~ | {lv.name}"
                     else ln for ln in lines]
        table = self.coef_table()
        t_frame = pd.DataFrame({"Value": table["estimate"], "Std.Error": table["std_error"],
                                "DF": table["df"], "t-value": table["statistic"],
                                "p-value": table["p_value"]})
        fixed = ", ".join(spec.fixed_formulas)
        return NlmeSummary(
            title=("Nonlinear mixed-effects model fit by "
                   + ("REML" if self.method == "REML" else "maximum likelihood")),
            formula=fixed if len(spec.fixed_formulas) == 1 else f"list({fixed})",
            aic=self.aic, bic=self.bic, loglik=self.loglik, tTable=t_frame,
            corFixed=fixed_correlation(self.vcov),
            residual_quantiles=residual_quantiles(self.residuals("pearson").to_numpy()),
            nobs=self.nobs, sigma=self.sigma,
            ngroups={lv.name: len(lv.labels) for lv in spec.levels},
            random_lines=lines,
            structure_lines=StructureParameters(self.structures, self.psi).summary_lines(),
            mixed=True, model=spec.formula)

    def __str__(self) -> str:
        return str(self.summary())
