"""The public entry points: the model classes with ``fit()`` and the one-call ``lmer`` and
``glmer``.

They compose the stages below (design and objective in :mod:`multilevel.models`, the
immutable result in :mod:`multilevel.results`); this is the only place the two meet.
"""

from __future__ import annotations

import warnings
from typing import Any, TypeVar

import numpy as np

from multilevel.data.design import build_design
from multilevel.distributed import dask_lmer, is_partitioned_input
from multilevel.errors import (
    ArgumentError,
    ConvergenceWarning,
    MultilevelWarning,
    SingularFitWarning,
    public_api,
    public_methods,
)
from multilevel.models.backfitting import fit_moments
from multilevel.models.glmm import GLMMStages
from multilevel.models.gls import gls_fit
from multilevel.models.lme import lme_fit
from multilevel.models.lmm import ModelStages
from multilevel.models.moments import CrossedFactors, intercept_factor_names
from multilevel.models.nlme_fit import NlmeControl, nlme_estimate
from multilevel.results.base import MODEL_CLASSES
from multilevel.results.glmm_result import GeneralizedLinearMixedModelResult
from multilevel.results.gls_result import GlsResult
from multilevel.results.lme_result import LmeCall, LmeResult
from multilevel.results.lmm_result import LinearMixedModelResult
from multilevel.results.moments_result import MomentsResult
from multilevel.results.nlme_result import NlmeResult

_Result = TypeVar("_Result", LinearMixedModelResult, GeneralizedLinearMixedModelResult)


def _warn_messages(result: _Result) -> _Result:
    """Issue the optimizer's messages as warnings (a singular fit's as SingularFitWarning,
    the others as ConvergenceWarning), pointing at the user's call; returns the result."""
    for msg in result.optsum.messages:
        category = SingularFitWarning if "singular" in msg else ConvergenceWarning
        warnings.warn(msg, category, stacklevel=3)
    return result


@public_methods
class LinearMixedModel(ModelStages):
    """A linear mixed model ready to be fitted (lme4's ``lFormula`` + ``mkLmerDevfun``).

    Parameters are those of :func:`lmer`. ``.objective(theta)`` is the profiled deviance (or
    REML criterion), ``.optimize()`` runs the optimizer, ``.fit()`` returns the result and
    ``.refit(y)`` fits the same design to a new response.
    """

    def fit(self) -> LinearMixedModelResult:
        """Fit the model and return the immutable result; a singular or unconverged fit
        also issues a warning (and is flagged on the result)."""
        return _warn_messages(LinearMixedModelResult.from_model(self, self.optimize()))

    def refit(self, y: np.ndarray) -> LinearMixedModelResult:
        """Fit the same model to a new response (no formula or design work is redone)."""
        new = self.with_response(y)
        assert isinstance(new, LinearMixedModel)
        return new.fit()


@public_api
def lmer(formula: str, data: Any, reml: bool = True, weights: Any = None, offset: Any = None,
         optimizer: str = "bobyqa", start: Any = None,
         optimizer_settings: dict[str, Any] | None = None,
         calc_derivs: bool = True, progress: bool | None = None) -> LinearMixedModelResult:
    """Fit a linear mixed model, as lme4's ``lmer``.

    Parameters
    ----------
    formula : str
        lme4 formula: ``"Reaction ~ Days + (Days | Subject)"``. Random terms ``(x | g)``,
        ``(x || g)`` (uncorrelated), ``(1 | a/b)`` (nested), ``(1 | a:b)``, crossed terms.
    data : pandas.DataFrame, polars.DataFrame, dask.dataframe.DataFrame or Parquet path
        Rows with missing values in used columns are dropped (and counted on the result).
        A Dask DataFrame, or a path or glob of Parquet files, is fitted exactly without
        collecting its rows: the cross-products are summed over the partitions on the
        workers (see docs/dask.md; needs ``pip install "multilevel[dask]"``).
    reml : bool, default True
        REML (lme4's default) or maximum likelihood.
    weights, offset : array-like or column name, optional
        Prior weights and a known offset, one value per row of ``data``.
    optimizer : {"bobyqa", "cobyqa", "lbfgsb"}
        Backend for the theta optimization; bobyqa (NLopt) as lme4.
    start : None, "lme4", "anova" or array-like
        Starting theta in lme4's order; by default lme4's identity start, or one-way ANOVA
        estimates when every random-effects term is scalar (fewer evaluations, same optimum).
    optimizer_settings : dict, optional
        Backend options (bobyqa: ``xtol_abs``, ``ftol_abs``, ``xtol_rel``, ``maxeval``).
    calc_derivs : bool, default True
        Check convergence with finite-difference derivatives at the optimum (lme4's
        ``calc.derivs``); a clearly better Newton step replaces the optimizer's answer.
    progress : bool or None, default None
        Before the fit, print the memory and estimated time of one evaluation and show a
        progress bar per evaluation (on stderr). None: only for models whose evaluations
        factor a dense block of 8,192 or more levels (two large crossed factors, see
        docs/large_crossed.md); True: always; False: never.

    Returns
    -------
    LinearMixedModelResult
    """
    if progress is not None and not isinstance(progress, bool):
        raise ArgumentError(f"progress must be True, False or None, got {progress!r}")
    if is_partitioned_input(data):
        return dask_lmer(formula, data, reml=reml, weights=weights, offset=offset,
                         optimizer=optimizer, start=start,
                         optimizer_settings=optimizer_settings, calc_derivs=calc_derivs)
    model = LinearMixedModel(formula, data, reml=reml, weights=weights, offset=offset,
                             optimizer=optimizer, start=start,
                             optimizer_settings=optimizer_settings, calc_derivs=calc_derivs)
    model.progress = progress
    return model.fit()


@public_api
def lmer_moments(formula: str, data: Any, offset: Any = None, rounds: int = 2,
                 tol: float = 1e-8, max_sweeps: int = 500) -> MomentsResult:
    """Fit crossed random intercepts in O(N): Gao–Owen moment estimates of the variance
    components and GLS fixed effects by backfitting (Ghosh, Hastie & Owen 2022), with standard
    errors ``(X' V^-1 X)^-1`` that account for the crossed effects. For data too large for the
    exact fit (millions of rows, two factors with 10^4..10^6 levels); where ``lmer`` runs,
    prefer it: (RE)ML variance components are more efficient, markedly so when a few levels
    hold much of the data.

    A separate function, not ``lmer(method=...)``: the result has no likelihood and a
    different type (:class:`~multilevel.results.moments_result.MomentsResult`), and lmer's
    ``reml``, ``optimizer`` and ``start`` mean nothing here.

    Parameters
    ----------
    formula : str
        ``"y ~ x + (1 | user) + (1 | item)"``: any number of random-intercept terms ``(1 | g)``
        (crossed, nested or partly crossed); random slopes are refused (NotApplicableError).
    data : pandas.DataFrame, polars.DataFrame, dask.dataframe.DataFrame or Parquet path
        A Dask DataFrame, or a path or glob of Parquet files, is fitted without collecting
        its rows: every sum the method needs is taken over the partitions on the workers
        (see docs/dask.md; needs ``pip install "multilevel[dask]"``).
    offset : array-like or column name, optional
        Subtracted from the response (a column name only, for Dask data).
    rounds : int, default 2
        Moment / GLS rounds: the first from OLS residuals, later ones from GLS residuals.
    tol, max_sweeps
        Backfitting convergence: relative change of the fitted effects per sweep.

    Returns
    -------
    MomentsResult
    """
    _check_moments_arguments(formula, rounds, tol, max_sweeps)
    if is_partitioned_input(data):
        from multilevel.distributed.moments import dask_lmer_moments

        return dask_lmer_moments(formula, data, offset=offset, rounds=rounds, tol=tol,
                                 max_sweeps=max_sweeps)
    design = build_design(formula, data, offset=offset)
    names = intercept_factor_names(design.terms)
    if np.isin(design.y, (0.0, 1.0)).all():
        # the published logistic extension is not implemented: say what this fit is
        warnings.warn(
            f"the response {design.response_name} takes only the values 0 and 1: "
            "lmer_moments fits it as a linear (probability) model; the moments method's "
            "logistic extension is not implemented. For a logistic model use "
            "ml.glmer(formula, data, family='binomial')", MultilevelWarning, stacklevel=3)
    y = design.y if design.offset is None else design.y - design.offset
    factors = CrossedFactors.from_codes(names, [t.factor.codes for t in design.terms])
    fit = fit_moments(design.X, y, factors, rounds=rounds, tol=tol, max_sweeps=max_sweeps)
    return MomentsResult(
        formula=formula, fixed_names=tuple(design.fixed_names), beta=fit.beta,
        vcov_array=fit.vcov, group_names=tuple(names),
        levels=tuple(tuple(t.factor.levels) for t in design.terms),
        sigma2_groups=fit.components.sigma2, sigma2_resid=fit.components.sigma2_resid,
        effects=tuple(fit.effects), ols_beta=fit.ols_beta, ols_vcov=fit.ols_vcov,
        rounds=fit.rounds, sweeps=fit.sweeps, converged=fit.converged,
        at_boundary=tuple(names[k] for k in fit.components.at_boundary),
        n_obs=design.nobs, n_dropped=design.n_dropped, data=data, row_index=design.row_index)


def _check_moments_arguments(formula: Any, rounds: Any, tol: Any, max_sweeps: Any) -> None:
    if not isinstance(formula, str):
        raise ArgumentError(f"formula must be a string such as \"y ~ x + (1 | a) + (1 | b)\", "
                            f"got {type(formula).__name__}")
    for name, value in (("rounds", rounds), ("max_sweeps", max_sweeps)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ArgumentError(f"{name} must be a whole number >= 1, got {value!r:.60}")
    if isinstance(tol, bool) or not isinstance(tol, int | float) or not 0 < tol < 1:
        raise ArgumentError(f"tol must be a number between 0 and 1 (e.g. 1e-8), got {tol!r:.60}")


@public_methods
class GeneralizedLinearMixedModel(GLMMStages):
    """A generalized linear mixed model ready to be fitted (lme4's ``glFormula`` +
    ``mkGlmerDevfun``).

    Parameters are those of :func:`glmer`. ``.objective(theta, beta)`` is -2 log L by the
    Laplace approximation or adaptive quadrature (with ``beta=None``, the nAGQ = 0 criterion
    with beta solved inside PIRLS), ``.optimize()`` runs both stages, ``.fit()`` returns the
    result and ``.refit(y)`` fits the same design to a new response.
    """

    def fit(self) -> GeneralizedLinearMixedModelResult:
        """Fit the model and return the immutable result; a singular or unconverged fit
        also issues a warning (and is flagged on the result)."""
        return _warn_messages(GeneralizedLinearMixedModelResult.from_model(self, self.optimize()))

    def refit(self, y: np.ndarray) -> GeneralizedLinearMixedModelResult:
        """Fit the same model to a new response (same design, family and settings)."""
        new = self.replace(y=y)
        assert isinstance(new, GeneralizedLinearMixedModel)
        return new.fit()


# models rebuilt below this layer (ml.load) are made of the public classes
MODEL_CLASSES["lmer"] = LinearMixedModel
MODEL_CLASSES["glmer"] = GeneralizedLinearMixedModel


@public_api
def glmer(formula: str, data: Any, family: Any = "binomial", nagq: int = 1,
          weights: Any = None, offset: Any = None, optimizer: str = "bobyqa",
          start: Any = None, optimizer_settings: dict[str, Any] | None = None,
          calc_derivs: bool = True, laplace: str | None = None,
          ) -> GeneralizedLinearMixedModelResult:
    """Fit a generalized linear mixed model by maximum likelihood, as lme4's ``glmer``.

    Parameters
    ----------
    formula : str
        lme4 formula. The response may be 0/1 or logical, a two-level factor (success = the
        second level, as R's ``glm``), a proportion with ``weights`` giving the numbers of
        trials, ``cbind(successes, failures)``, counts (Poisson, negative binomial) or
        positive values (Gamma, inverse Gaussian). ``offset(log(exposure))`` terms are
        allowed. Observation-level random effects ``(1 | obs)`` are allowed.
    data : pandas.DataFrame or polars.DataFrame
    family : str or Family, default "binomial"
        ``"binomial"``, ``"poisson"``, ``"gamma"``, ``"inverse_gaussian"``,
        ``"negative_binomial"`` (NB2 with its size estimated), or a family object:
        ``ml.families.Binomial(link="probit")``, ``ml.families.NegativeBinomial(theta=2)``
        (size fixed), ... Links: logit, probit, cloglog, cauchit, log, identity, inverse,
        sqrt, 1/mu^2 where valid for the family.
    nagq : int, default 1
        1: the Laplace approximation. > 1: adaptive Gauss-Hermite quadrature with that many
        nodes (a single scalar random-effects term only). 0: the fast fit that estimates beta
        inside the penalized least-squares iteration (lme4's nAGQ = 0).
    weights : array-like or column name, optional
        Prior weights: the numbers of trials for a binomial proportion, frequency weights for
        counts, precision weights for Gamma and inverse Gaussian.
    offset : array-like or column name, optional
        Known term added to the linear predictor (e.g. ``np.log(exposure)``).
    optimizer : {"bobyqa", "cobyqa", "lbfgsb"}
    start : dict, optional
        ``{"theta": [...], "beta": [...]}``, either or both.
    optimizer_settings : dict, optional
    calc_derivs : bool, default True
        Finite-difference derivatives at the optimum: lme4's convergence check and the
        Hessian that gives the fixed effects' standard errors.
    laplace : None, "expected" or "observed"
        Curvature in the Laplace approximation (see :class:`GeneralizedLinearMixedModel`):
        by default lme4's expected information, or the observed one (glmmTMB's) for families
        whose dispersion or size is estimated. Equal for canonical links.

    Returns
    -------
    GeneralizedLinearMixedModelResult
    """
    model = GeneralizedLinearMixedModel(
        formula, data, family=family, nagq=nagq, weights=weights, offset=offset,
        optimizer=optimizer, start=start, optimizer_settings=optimizer_settings,
        calc_derivs=calc_derivs, laplace=laplace)
    return model.fit()


@public_api
def lme(formula: str, data: Any, random: str | None = None, weights: Any = None,
        correlation: Any = None, method: str = "REML") -> LmeResult:
    """Fit a linear mixed model with nlme's residual variance function and correlation
    structure, as nlme's ``lme``.

    Parameters
    ----------
    formula : str
        The fixed part, optionally with lme4-style random terms (``"y ~ x + (1 | g)"``).
    data : pandas.DataFrame or polars.DataFrame
    random : str, optional
        nlme's random part, ``"~ 1 | Subject"`` or ``"~ age | Subject"``.
    weights : variance function, optional
        ``ml.VarIdent(form="~ 1 | Sex")``, ``ml.VarPower(form="~ age")``, ...
    correlation : correlation structure, optional
        ``ml.CorAR1()`` (positions within the innermost grouping factor, nlme's default),
        ``ml.CorCAR1(form="~ age | Subject")``, ...; each correlation group must lie within
        one level of every random-effects factor.
    method : {"REML", "ML"}

    Returns
    -------
    LmeResult
    """
    fit = lme_fit(formula, data, random, weights, correlation, method)
    return LmeResult.from_fit(fit, method, LmeCall(formula, data, random, weights, correlation))


@public_api
def gls(formula: str, data: Any, weights: Any = None, correlation: Any = None,
        method: str = "REML") -> GlsResult:
    """Fit a linear model with correlated and/or heteroscedastic errors, as nlme's ``gls``.

    Parameters
    ----------
    formula : str
        ``"response ~ predictors"`` (no random-effects terms).
    data : pandas.DataFrame or polars.DataFrame
    weights : variance function, optional
        e.g. ``ml.VarIdent(form="~ 1 | Sex")``, ``ml.VarPower(form="~ age")``,
        ``ml.VarComb(...)``; ``ml.VarPower()`` without a form is of the fitted values.
    correlation : correlation structure, optional
        e.g. ``ml.CorAR1(form="~ 1 | Subject")``.
    method : {"REML", "ML"}

    Returns
    -------
    GlsResult
        With nlme's results: ``fitted``, ``residuals(type)``, ``predict(newdata)``,
        ``intervals()``, ``summary()``, ``simulate``, ``bootstrap`` (see
        :mod:`multilevel.models.gls` for the estimation).
    """
    return GlsResult.from_fit(gls_fit(formula, data, weights, correlation, method))


@public_api
def nlme(model: str, data: Any, fixed: str | list[str] | None = None, random: Any = None,
         groups: str | None = None, start: dict[str, Any] | None = None, method: str = "ML",
         weights: Any = None, correlation: Any = None,
         functions: dict[str, Any] | None = None,
         control: NlmeControl | None = None) -> NlmeResult:
    """Fit a nonlinear mixed model, as nlme's ``nlme`` (Lindstrom-Bates alternation; see
    :mod:`multilevel.models.nlme_fit`).

    Parameters
    ----------
    model : str
        ``"response ~ expression"``: one of R's self-starting models
        (``"circumference ~ SSlogis(age, Asym, xmid, scal)"``) or any expression of data
        columns and parameters (``"circumference ~ Asym / (1 + exp((xmid - age) / scal))"``),
        with ``+ - * / ^``, exp, log, sqrt, sin, cos, ..., self-starting models and the
        functions passed in ``functions``.
    data : pandas.DataFrame or polars.DataFrame
    fixed : str or list of str, optional
        ``"Asym + xmid + scal ~ 1"`` or ``["Asym ~ Treatment", "xmid + scal ~ 1"]`` (parameters
        that depend on covariates, R's contrasts). Default for a self-starting model: every
        parameter ``~ 1``.
    random : str, PdSymm, PdDiag, PdBlocked or dict
        ``"Asym + xmid ~ 1 | Tree"`` (general covariance), ``"Asym ~ 1 | g1/g2"`` (nested),
        ``ml.PdDiag("lKa + lCl ~ 1")`` with ``groups="~ Subject"``, ``ml.PdBlocked([...])``,
        or ``{"g1": spec, "g2": spec}`` (nlme's named list, outermost first). Default: every
        parameter, general covariance, by ``groups``.
    groups : str, optional
        ``"~ Subject"`` (or ``"~ g1/g2"``) when ``random`` names no grouping factor.
    start : dict, optional
        Starting fixed effects by parameter (one value, or one per coefficient of a parameter
        that depends on covariates) or by coefficient name. Optional for a self-starting model
        (R's getInitial on all the data; the other coefficients of a parameter start at 0).
    method : {"ML", "REML"}
        nlme's default is ML.
    weights, correlation : optional
        nlme's variance function (``ml.VarPower(form="~ age")``, ...) and correlation
        structure (``ml.CorAR1()``: positions within the innermost group), as in ``ml.lme``.
    functions : dict, optional
        Python functions the model calls by name: ``{"f": f}`` (derivatives by central
        differences) or ``{"f": (f, gradient)}``, gradient returning the (rows, arguments)
        derivatives.
    control : NlmeControl, optional
        nlme's iteration settings (``nlmeControl``), nlme's defaults by default; tighter
        ``pnls_tol`` and ``tolerance`` give the converged fixed point of the alternation.

    Returns
    -------
    NlmeResult
    """
    call = dict(model=model, data=data, fixed=fixed, random=random, groups=groups,
                start=start, method=method, weights=weights, correlation=correlation,
                functions=functions, control=control)
    spec, fit = nlme_estimate(**call)
    return NlmeResult.from_fit(spec, fit, call)


@public_api
def loo(fit: Any) -> Any:
    """PSIS-LOO of a Bayesian fit, as R's ``loo(fit)``: elpd_loo, p_loo and looic with their
    standard errors, the Pareto k of each observation (a ``LooWarning`` when some exceed 0.7)
    and the pointwise elpd.

    Parameters
    ----------
    fit : BayesResult
        A fit of :func:`bayes` or :func:`bayes_nlme`.

    Returns
    -------
    multilevel.bayesian.loo.LooResult
    """
    from multilevel.bayesian.loo import loo as psis_loo
    return psis_loo(fit, stacklevel=5)  # the warning points at the caller


@public_api
def waic(fit: Any) -> Any:
    """WAIC of a Bayesian fit, as R's ``waic(fit)``: elpd_waic, p_waic and waic with their
    standard errors (a ``LooWarning`` when some p_waic_i exceed 0.4: prefer :func:`loo`).

    Returns
    -------
    multilevel.bayesian.loo.WaicResult
    """
    from multilevel.bayesian.loo import waic as waic_of
    return waic_of(fit, stacklevel=4)


def _bayes_settings(chains: Any, draws: Any, warmup: Any, seed: Any, target_accept: Any,
                    max_tree_depth: Any, thin: Any, progress: Any) -> Any:
    from multilevel.bayesian import require
    require()
    from multilevel.bayesian.sampler import check_settings
    return check_settings(chains, draws, warmup, seed, target_accept, max_tree_depth, thin,
                          progress)


@public_api
def bayes(formula: str, data: Any, family: Any = "gaussian", priors: Any = None,
          chains: int = 4, draws: int = 1000, warmup: int = 1000, seed: int | None = 1,
          target_accept: float = 0.8, max_tree_depth: int = 10, thin: int = 1,
          weights: Any = None, offset: Any = None, progress: bool = True) -> Any:
    """Fit a Bayesian (generalized) linear mixed model by NUTS, as brms's ``brm``.

    Parameters
    ----------
    formula : str
        lme4's formula (``"Reaction ~ Days + (Days | Subject)"``); binomial responses as for
        ``glmer`` (``cbind(incidence, size - incidence)``, 0/1, a two-level factor, a
        proportion with ``weights`` giving the trials).
    data : pandas.DataFrame or polars.DataFrame
    family : str or Family, default "gaussian"
        Every family of ``glmer``: gaussian, binomial, poisson, gamma, inverse_gaussian,
        negative_binomial (its size sampled as brms's ``shape``), with their links.
    priors : ml.prior(...) or list of them, optional
        brms-style priors (``ml.prior("normal(0, 10)", class_="b")``); every parameter without
        one gets brms's default (see ``fit.prior_summary()``).
    chains, draws, warmup : int
        brms's defaults: 4 chains of 1000 warmup and 1000 kept iterations.
    seed : int
        Reproduces the draws.
    target_accept : float
        brms's ``adapt_delta`` (raise it, e.g. to 0.95, when there are divergences).
    max_tree_depth : int
        brms's ``max_treedepth``.
    thin : int
    weights, offset : optional
        As for ``lmer`` / ``glmer``: trials of a binomial proportion, frequency weights for
        counts, precision weights for Gaussian, Gamma and inverse Gaussian.
    progress : bool
        Show a progress bar.

    Returns
    -------
    multilevel.bayesian.result.BayesResult
    """
    settings = _bayes_settings(chains, draws, warmup, seed, target_accept, max_tree_depth,
                               thin, progress)
    from multilevel.bayesian.fit import data_name, fit_model, response_family
    from multilevel.bayesian.model_spec import linear_model
    model = linear_model(formula, data, response_family(family), weights=weights,
                         offset=offset)
    return fit_model(model, priors, settings, data_name=data_name(data))


@public_api
def bayes_nlme(model: str, data: Any, params: dict[str, str] | None = None,
               family: Any = "gaussian", priors: Any = None,
               functions: dict[str, Any] | None = None, chains: int = 4, draws: int = 1000,
               warmup: int = 1000, seed: int | None = 1, target_accept: float = 0.8,
               max_tree_depth: int = 10, thin: int = 1, progress: bool = True) -> Any:
    """Fit the three-stage Bayesian nonlinear mixed model by NUTS, as brms's non-linear
    formulas (``bf(y ~ f(x, a, b), a ~ 1 + (1 | g), b ~ 1, nl = TRUE)``).

    Stage 1: y_ij = f(x_ij; phi_ij) + e_ij (or the family's distribution around f); stage 2:
    each nonlinear parameter phi = A beta + B b, a linear model of covariates with group
    effects b ~ N(0, Omega) (``params``); stage 3: priors on beta, the SDs and correlations in
    Omega, and sigma (``priors``).

    Parameters
    ----------
    model : str
        ``"circumference ~ Asym / (1 + exp((xmid - age) / scal))"``, or with R's
        self-starting models: ``"circumference ~ SSlogis(age, Asym, xmid, scal)"``.
    data : pandas.DataFrame or polars.DataFrame
    params : dict
        Each nonlinear parameter's formula: ``{"Asym": "1 + (1 | Tree)", "xmid": "1",
        "scal": "1"}``; covariates as ``"1 + Treatment + (1 | Tree)"``. For a self-starting
        model, parameters left out get ``"1"``.
    family, priors, chains, draws, warmup, seed, target_accept, max_tree_depth, thin, progress
        As for :func:`bayes`. The coefficients of nonlinear parameters have brms's flat
        default prior: give them priors (``ml.prior("normal(200, 50)", nlpar="Asym")``),
        as brms advises.
    functions : dict, optional
        Python functions the model calls by name, written with ``jax.numpy``.

    Returns
    -------
    multilevel.bayesian.result.BayesResult
    """
    settings = _bayes_settings(chains, draws, warmup, seed, target_accept, max_tree_depth,
                               thin, progress)
    from multilevel.bayesian.fit import data_name, fit_model, response_family
    from multilevel.bayesian.model_spec import complete_params, nonlinear_model
    spec = nonlinear_model(model, data, complete_params(model, params), response_family(family),
                           functions=functions)
    return fit_model(spec, priors, settings, data_name=data_name(data))


@public_api
def priors_from_posterior(fit: Any, newdata: Any = None) -> list[Any]:
    """Priors for the next study from a Bayesian fit's posterior, matched moment by moment:
    normal for coefficients and the centred intercept, lognormal for SDs and sigma / shape,
    LKJ for correlations (see :func:`multilevel.bayesian.research_cycle.priors_from_posterior`).

    Parameters
    ----------
    fit : BayesResult
        A fit of :func:`bayes` or :func:`bayes_nlme`.
    newdata : DataFrame, optional
        The next study's rows, for its centred intercept; without them the fit's own centred
        intercept is carried (right when the covariate means are similar).

    Returns
    -------
    list of Prior
        To pass as ``priors=`` to the next fit of the same model.
    """
    from multilevel.bayesian import require
    require()
    from multilevel.bayesian.research_cycle import priors_from_posterior as from_posterior
    return from_posterior(fit, newdata)


@public_api
def prior_predictive(formula: str | None = None, data: Any = None, family: Any = "gaussian",
                     priors: Any = None, draws: int = 500, seed: int | None = 1,
                     params: dict[str, str] | None = None, model: str | None = None,
                     functions: dict[str, Any] | None = None, chains: int = 2,
                     warmup: int = 500, target_accept: float = 0.8, max_tree_depth: int = 10,
                     weights: Any = None, offset: Any = None, progress: bool = False) -> Any:
    """Prior predictive check: sample the model's prior and the responses it predicts for the
    data's design, as brms's ``brm(..., sample_prior = "only")`` then ``posterior_predict``.

    Give ``formula`` (a model of :func:`bayes`) or ``model`` with ``params`` (a nonlinear
    model of :func:`bayes_nlme`), not both.

    Parameters
    ----------
    formula : str
        lme4's formula, as for :func:`bayes`.
    data : pandas.DataFrame or polars.DataFrame
        The design (covariates and groups) to predict for; its response is the observed one
        that ``summary()`` compares with.
    family : str or Family, default "gaussian"
    priors : ml.prior(...) or list of them
        Every parameter needs a proper prior: brms's flat default on ``b`` (and on nonlinear
        parameters) is refused with an ArgumentError naming the parameters.
    draws : int, default 500
        Prior draws in all, split evenly over ``chains``.
    seed : int
    params : dict, optional
        With ``model``: each nonlinear parameter's formula, as for :func:`bayes_nlme`.
    model : str, optional
        A nonlinear model, as :func:`bayes_nlme`'s ``model``
        (``"circumference ~ SSlogis(age, Asym, xmid, scal)"``).
    functions : dict, optional
        With ``model``: Python functions the model calls, as for :func:`bayes_nlme`.
    chains, warmup, target_accept, max_tree_depth, progress
        NUTS's settings for sampling the prior (2 chains of 500 warmup iterations).
    weights, offset : optional
        With ``formula``: as for :func:`bayes`.

    Returns
    -------
    multilevel.bayesian.research_cycle.PriorPredictive
        ``.fit`` (the prior as a BayesResult), ``.y`` (replicated responses, draws x rows),
        ``.summary()`` (the observed response among them).
    """
    if (formula is None) == (model is None):
        raise ArgumentError("prior_predictive takes formula= (a model of ml.bayes) or model= "
                            "with params= (a nonlinear model of ml.bayes_nlme), one of them")
    if formula is not None and (params is not None or functions is not None):
        raise ArgumentError("params= and functions= belong to nonlinear models: pass the model "
                            "expression as model=, e.g. ml.prior_predictive(model='y ~ "
                            "SSlogis(x, Asym, xmid, scal)', data=d, params={...}, priors=[...])")
    if model is not None and (weights is not None or offset is not None):
        raise ArgumentError("weights= and offset= are not taken by nonlinear models")
    if data is None:
        raise ArgumentError("prior_predictive needs data= (the design to predict for)")
    from multilevel.bayesian import require
    require()
    from multilevel.bayesian.fit import response_family
    from multilevel.bayesian.model_spec import complete_params, linear_model, nonlinear_model
    from multilevel.bayesian.research_cycle import sample_prior_predictive
    if formula is not None:
        spec = linear_model(formula, data, response_family(family), weights=weights,
                            offset=offset)
    else:
        assert model is not None
        spec = nonlinear_model(model, data, complete_params(model, params),
                               response_family(family), functions=functions)
    if seed is None:
        seed = int(np.random.default_rng().integers(2**31))
    return sample_prior_predictive(spec, priors, draws, chains, warmup, seed, target_accept,
                                   max_tree_depth, progress)


@public_api
def posterior_mode(formula: str, data: Any, family: Any = "gaussian", priors: Any = None,
                   weights: Any = None, offset: Any = None) -> Any:
    """The marginal posterior mode of a Bayesian (generalized) linear mixed model: fixed
    effects, SDs, correlations and sigma maximising their posterior density with the group
    effects integrated out (Laplace; exact for the Gaussian family) — blme's estimate. With
    flat priors on every parameter (``ml.prior("flat", class_="sd")``, ``"sigma"``,
    ``"Intercept"``; ``lkj(1)`` on correlations) it is the maximum-likelihood fit.

    Parameters are those of :func:`bayes`. Returns a
    :class:`multilevel.bayesian.mode.PosteriorMode`.
    """
    from multilevel.bayesian import require
    require()
    from multilevel.bayesian.density import build_density
    from multilevel.bayesian.fit import model_priors, response_family
    from multilevel.bayesian.mode import posterior_mode as mode
    from multilevel.bayesian.model_spec import linear_model
    from multilevel.bayesian.sampler import prepare_jax
    prepare_jax()
    model = linear_model(formula, data, response_family(family), weights=weights,
                         offset=offset)
    return mode(build_density(model, model_priors(model, priors)))
