"""The immutable result of a linear mixed-model fit, with lme4's vocabulary."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
import scipy.linalg as sla
from scipy import stats

from multilevel.errors import ArgumentError, MultilevelError, public_methods
from multilevel.linalg.blocked_cholesky import (
    BlockedFactor,
    solve_fixed_and_modes,
)
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
    register_confint,
)

if TYPE_CHECKING:
    from multilevel.models.lmm import ModelStages


DdfMethod = Callable[["LinearMixedModelResult", np.ndarray], Any]
# Denominator-df methods by name: each maps (fit, contrast rows L) to one df per row, or to
# (df, adjusted covariance of the fixed effects) when the method also adjusts the standard
# errors (Kenward-Roger). The inference layer registers its methods (register_ddf);
# "residual" is built in.
DDF_METHODS: dict[str, DdfMethod] = {}


class Default:
    """The type of :data:`DEFAULT`, the marker of an argument left at its default."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT = Default()

EXPENSIVE_DDF_NOTE = (
    "t tests without denominator df: every evaluation of this model's objective takes "
    "seconds, and Satterthwaite df would need about 40 of them (with this much data they are "
    "large, and t is close to z); summary(ddf='satterthwaite') computes them")


def register_ddf(name: str, method: DdfMethod) -> None:
    """Make a denominator-df method available to ``coef_table(ddf=name)``."""
    DDF_METHODS[name] = method




@public_methods
@dataclass(frozen=True)
class LinearMixedModelResult(MixedModelResult):
    """A fitted linear mixed model. Create it with :func:`multilevel.lmer` or
    ``LinearMixedModel(...).fit()``; nothing on it changes after the fit.

    Attributes
    ----------
    model : ModelStages
        The model that was fitted (its design, cross-products and objective).
    theta : numpy.ndarray
        Relative covariance factor parameters in lme4's order (names: ``theta_names``).
    beta : numpy.ndarray
        Fixed-effects estimates (see ``fixef`` for the labelled Series).
    sigma : float
        Residual standard deviation.
    optsum : OptSummary
        The optimizer record.
    reml : bool
        True for a REML fit.
    """

    kind: ClassVar[str] = "lmer"  # the fitting function, for dispatch and saved files

    model: ModelStages = field(repr=False)
    theta: np.ndarray
    beta: np.ndarray
    sigma: float
    optsum: OptSummary = field(repr=False)
    reml: bool
    _factor: BlockedFactor = field(repr=False)
    _modes: list[np.ndarray] = field(repr=False)

    @classmethod
    def from_model(cls, model: ModelStages, opt: OptSummary) -> LinearMixedModelResult:
        """Assemble the result at the optimizer's final theta."""
        theta = np.array(opt.final, dtype=float)
        f = model.factor(theta)
        beta_centred, u = solve_fixed_and_modes(model.A, f)
        T, c = model.fixed_transform()
        beta = T @ beta_centred + c
        dof = model.nobs - (model.n_fixed if model.reml else 0)
        sigma = math.sqrt(f.pwrss / dof)
        return cls(model=model, theta=theta, beta=beta, sigma=sigma, optsum=opt,
                   reml=model.reml, _factor=f, _modes=u)

    # -- hooks of the shared vocabulary (results.base) -----------------------------------------
    @property
    def _re_scale(self) -> float:
        return self.sigma

    @property
    def _residual_sd(self) -> float:
        return self.sigma

    @property
    def _condvar_factor(self) -> tuple[CrossProducts, BlockedFactor]:
        return self.model.A, self._factor

    @property
    def n_params(self) -> int:
        """Parameters counted by AIC: fixed effects, theta and sigma."""
        return self.model.n_fixed + self.model.layout.n_theta + 1

    # -- fixed effects ----------------------------------------------------------------------
    @cached_property
    def _vcov_array(self) -> np.ndarray:
        p = self.model.n_fixed
        Lxx = self._factor.xy_diag[:p, :p]
        Linv = sla.solve_triangular(Lxx, np.eye(p), lower=True)
        T, _ = self.model.fixed_transform()
        return self.sigma**2 * (T @ Linv.T @ Linv @ T.T)

    def coef_table(self, ddf: str | None = "satterthwaite", level: float = 0.95,
                   ) -> pd.DataFrame:
        """Fixed-effects table: estimate, std_error, statistic (t value), df, p_value and the
        confidence interval bounds ci_lower, ci_upper.

        Parameters
        ----------
        ddf : str or None, default "satterthwaite"
            Denominator degrees of freedom of the t tests, by name (``DDF_METHODS``):
            ``"satterthwaite"`` (lmerTest's default), ``"kenward-roger"`` (pbkrtest's df and
            adjusted standard errors; REML fits), ``"between-within"`` (nlme's containment
            df), ``"residual"`` (n - p); ``None`` gives z tests (df infinite).
        level : float
            Confidence level of the interval columns.
        """
        key = _ddf_key(ddf)
        level = confidence_level(level)
        se = np.sqrt(np.diag(self._vcov_array))
        stat = self.beta / se
        if key is None:
            df = np.full(len(self.beta), np.inf)
        else:
            out = DDF_METHODS[key](self, np.eye(len(self.beta)))
            if isinstance(out, tuple):  # a method that also adjusts the covariance (KR)
                df = np.asarray(out[0], dtype=float)
                se = np.sqrt(np.diag(out[1]))
                stat = self.beta / se
            else:
                df = np.asarray(out, dtype=float)
        q = stats.t.ppf(0.5 + level / 2, df)
        return pd.DataFrame({
            "estimate": self.beta, "std_error": se, "statistic": stat, "df": df,
            "p_value": 2 * stats.t.sf(np.abs(stat), df),
            "ci_lower": self.beta - q * se, "ci_upper": self.beta + q * se,
        }, index=self.fixed_names)

    def confint(self, method: str = "wald", level: float = 0.95, **options: Any,
                ) -> pd.DataFrame:
        """Confidence intervals for the variance parameters (standard deviations,
        correlations, sigma; named as lme4 names them) and the fixed effects.

        Parameters
        ----------
        method : str
            ``"wald"``: fixed effects +- z SE; the variance parameters get NaN (as lme4's
            Wald intervals). ``"boot"``: parametric bootstrap percentile intervals
            (``options`` go to :func:`multilevel.bootstrap`: ``n``, ``seed``, ``n_jobs``,
            ``progress``, ``kind="percentile"|"shortest"``).
        level : float
            Confidence level.

        Returns
        -------
        pandas.DataFrame
            Columns lower, upper; rows: variance parameters then fixed effects.
        """
        methods = ", ".join(repr(m) for m in sorted(CONFINT_METHODS))
        if not isinstance(method, str):
            raise ArgumentError(f"method must be the name of an interval method ({methods}), "
                                f"got {type(method).__name__} {method!r:.60}")
        key = method.lower()
        if key not in CONFINT_METHODS:
            raise ArgumentError(f"unknown confint method={method!r:.60}; choose one of "
                                f"{methods}")
        level = confidence_level(level)
        return CONFINT_METHODS[key](self, level, **options)

    def contrast(self, L: Any, ddf: str | None = "satterthwaite") -> pd.Series:
        """F test of the linear hypothesis ``L beta = 0`` (rows of ``L`` are constraints,
        columns follow ``fixed_names``), with Satterthwaite denominator df by default, as
        lmerTest's ``contest``. Returns sum_sq, mean_sq, num_df, den_df, f_value, p_value."""
        _ddf_key(ddf)
        return INFERENCE_HOOKS["contrast"](self, L, ddf)

    def profile(self, level: float = 0.99, n: int = 9) -> pd.DataFrame:
        """zeta profiles of every parameter (lme4's ``profile``): long DataFrame with
        parameter, value, zeta, ``n`` values across each ``level`` profile interval."""
        return INFERENCE_HOOKS["profile"](self, level, n)

    # -- fit statistics ---------------------------------------------------------------------

    @property
    def deviance_ml(self) -> float:
        """-2 log-likelihood (ML) at these estimates; for a REML fit lme4's
        ``deviance(fit, REML = FALSE)``."""
        return self.model.objective(self.theta, reml=False) if self.reml else self.objective

    # -- fitted values, residuals, prediction, simulation -----------------------------------
    def fitted(self) -> np.ndarray:
        """Fitted values X beta + Z b (+ offset) for the rows used in the fit."""
        d = self.model.design
        out = d.X @ self.beta + self._re_contribution()
        return out if d.offset is None else out + d.offset

    def residuals(self, kind: str = "response", scaled: bool = False) -> np.ndarray:
        """Residuals: ``"response"`` (y - fitted) or ``"pearson"`` (weighted by sqrt of the
        prior weights, as lme4). ``scaled=True`` divides by sigma."""
        d = self.model.design
        r = d.y - self.fitted()
        if kind == "pearson":
            if d.weights is not None:
                r = r * np.sqrt(d.weights)
        elif kind != "response":
            raise MultilevelError(f"unknown residual kind {kind!r}; use 'response' or "
                                  "'pearson'")
        return r / self.sigma if scaled else r

    def predict(self, newdata: Any = None, re_form: str | None = None,
                allow_new_levels: bool = False, offset: Any = None) -> np.ndarray:
        """Predictions on the response scale, as lme4's ``predict.merMod``.

        Parameters
        ----------
        newdata : pandas or polars DataFrame (or dict of columns), optional
            Defaults to the data used in the fit.
        re_form : None, "~0", "NA" or a formula of random terms
            ``None`` includes every random-effects term; ``"~0"`` (or ``"NA"``) none (the
            population-level prediction); a formula such as ``"~(1 | Subject)"`` only the terms
            on the grouping factors it names.
        allow_new_levels : bool, default False
            As in lme4, a level of a grouping factor that was not seen in the fit is an error
            (a :class:`~multilevel.errors.DataError` naming the level), so that a misspelt or
            recoded level is not silently predicted without its random effect. With True, such
            a level gets the population-level prediction for that term (a random effect of
            zero).
        offset : array-like or column name, optional
            Offset for ``newdata`` (a column name replays on new data; default: the model's
            offset column if it was given by name, else zero).

        Returns
        -------
        numpy.ndarray
            One prediction per row of ``newdata`` (or of the data used in the fit).
        """
        allow_new_levels = check_newdata(newdata, allow_new_levels)
        return prediction.predict(self, newdata, re_form, allow_new_levels, offset)

    def simulate(self, nsim: int = 1, seed: int | None = None) -> pd.DataFrame:
        """Simulate responses from the fitted model (new random effects and residuals).

        Returns a DataFrame with one column per simulation (``sim_1`` ...), one row per
        observation used in the fit.
        """
        nsim, seed = check_simulation_arguments(nsim, seed)
        return prediction.simulate(self, nsim, seed)

    # -- presentation -----------------------------------------------------------------------
    def summary(self, ddf: str | None | Default = DEFAULT) -> str:
        """The printed report, as lmerTest's ``summary()``: t tests of the fixed effects with
        Satterthwaite denominator df and p-values by default.

        Parameters
        ----------
        ddf : str or None, default "satterthwaite"
            Denominator df of the t tests, as in :meth:`coef_table`: ``"satterthwaite"``,
            ``"kenward-roger"``, ``"between-within"``, ``"residual"``; ``None`` prints lme4's
            own table (estimate, standard error, t value; no df or p-values). Left at its
            default for a fit whose objective takes seconds per evaluation (two large crossed
            factors, see docs/large_crossed.md), the report is lme4's table with a note: the
            Satterthwaite df would cost some 40 more evaluations, and with that much data
            they are large; ask for them by name to compute them.

        Returns
        -------
        str
            The report, lines ending in a newline.
        """
        if isinstance(ddf, Default):
            if self.model.expensive_evaluations:
                return summary.format_summary(self, None, note=EXPENSIVE_DDF_NOTE)
            ddf = "satterthwaite"
        return summary.format_summary(self, ddf)

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        return summary.format_html(self)

    def to_dict(self, ddf: str | None = "satterthwaite") -> dict[str, Any]:
        """JSON-ready dictionary of the fit: strict JSON (NaN and Inf become None), full float
        precision.

        Parameters
        ----------
        ddf : str or None, default "satterthwaite"
            Denominator df of the ``coef_table`` entry (the columns of :meth:`coef_table`),
            recorded under ``"ddf"``; ``None`` gives z tests (df null).

        Returns
        -------
        dict
            formula, reml, nobs, n_dropped, ngroups, fixef, ddf, coef_table, vcov, varcorr,
            theta, sigma, loglik, objective, aic, bic, df_resid, is_singular, converged,
            dropped_fixed, optsum.
        """
        return summary.to_dict(self, ddf)


def _ddf_key(ddf: Any) -> str | None:
    """The registered name of a denominator-df method (spelling normalized), None for z
    tests; an ArgumentError naming ``ddf`` for anything else."""
    if ddf is None:
        return None
    names = f"{', '.join(repr(m) for m in sorted(DDF_METHODS))} or None"
    if not isinstance(ddf, str):
        raise ArgumentError(f"ddf must be the name of a denominator-df method ({names}), got "
                            f"{type(ddf).__name__} {ddf!r:.60}")
    key = ddf.lower().replace("_", "-")
    if key not in DDF_METHODS:
        raise ArgumentError(f"unknown ddf={ddf!r:.60}; choose one of {names}")
    return key


def _residual_df(fit: LinearMixedModelResult, L: np.ndarray) -> np.ndarray:
    """n - p for every contrast (lme4/nlme's "residual" df)."""
    return np.full(np.atleast_2d(L).shape[0], float(fit.nobs - len(fit.beta)))


register_ddf("residual", _residual_df)


def _wald_confint(fit: LinearMixedModelResult, level: float, **options: Any) -> pd.DataFrame:
    """Fixed effects: estimate +- z SE; variance parameters: NaN (no Wald interval, as lme4)."""
    if options:
        raise ArgumentError(f"confint(method='wald') takes no options, got {sorted(options)}")
    ct = fit.coef_table(ddf=None, level=level)
    var = pd.DataFrame({"lower": np.nan, "upper": np.nan}, index=fit.sdcor.index)
    fixed = ct[["ci_lower", "ci_upper"]].set_axis(["lower", "upper"], axis=1)
    return pd.concat([var, fixed])


register_confint("wald", _wald_confint)
