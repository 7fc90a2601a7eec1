"""Comparing fitted models: likelihood-ratio tests for nested models (lme4's ``anova``) and
information-criterion rankings with Akaike weights for any set of models.

REML likelihoods are comparable only between models with the same fixed effects, so by default
(``refit=True``, as lme4) REML fits are refitted by maximum likelihood first, reusing their
design; the table records which were.

When the larger model adds random-effects variance parameters, the null value of a variance
sits on the boundary of the parameter space and the LRT statistic is not chi-square with the
full df: for one added variance (with its df - 1 covariances) the reference distribution is the
50:50 mixture of chi-square(df - 1) and chi-square(df) (Self & Liang 1987; Stram & Lee 1994).
That p-value is reported beside the classical one.

Generalized linear mixed models are compared in the same way: their log-likelihoods (Laplace or
adaptive quadrature, with the family's normalizing constants) are maximum-likelihood ones, so
no refit is needed. The likelihood-ratio test needs nested models of the same family and link
fitted to the same rows, response and prior weights (binomial trials); :func:`compare` ranks
GLMMs of different families (Poisson against negative binomial, say) on the same data by AIC.
A linear model is never compared with a GLMM: a Gaussian density and a probability mass are not
on one scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from multilevel.errors import (
    ArgumentError,
    ModelComparisonError,
    MultilevelError,
    NotApplicableError,
    public_api,
)
from multilevel.inference.arguments import check_fit, check_flag, model_kind
from multilevel.inference.f_tests import f_table
from multilevel.inference.refit import fit_like
from multilevel.inference.structured_comparison import (
    is_nlme_kind,
    nlme_anova,
    nlme_compare,
    ranking_table,
)
from multilevel.results.base import MixedModelResult
from multilevel.results.glmm_result import GeneralizedLinearMixedModelResult
from multilevel.results.lmm_result import LinearMixedModelResult


def refit_ml(fit: MixedModelResult) -> MixedModelResult:
    """The same model fitted by maximum likelihood: every other setting is kept, and the
    design and cross-products are shared (``model.replace(reml=False)``). A GLMM, always
    fitted by maximum likelihood, is returned as it is."""
    if not isinstance(fit, LinearMixedModelResult) or not fit.reml:
        return fit
    return fit_like(fit, fit.model.replace(reml=False))


def _reml(fit: MixedModelResult) -> bool:
    """Whether the fit's criterion is REML (a GLMM's never is)."""
    return isinstance(fit, LinearMixedModelResult) and fit.reml


def _random_terms(fit: MixedModelResult) -> list[tuple[str, frozenset[str]]]:
    return [(t.factor.name, frozenset(t.columns)) for t in fit.model.design.terms]


def _nested(small: MixedModelResult, large: MixedModelResult) -> bool:
    """Fixed effects and random-effects terms of ``small`` are contained in ``large``'s."""
    if not set(small.fixed_names) <= set(large.fixed_names):
        return False
    big = _random_terms(large)
    return all(any(g == G and cols <= COLS for G, COLS in big) for g, cols in _random_terms(small))


def _check_same_rows(fits: Sequence[MixedModelResult], names: list[str]) -> None:
    first = fits[0].model.design
    for fit, name in zip(fits[1:], names[1:], strict=True):
        d = fit.model.design
        if d.nobs != first.nobs or not np.array_equal(d.row_index, first.row_index) or (
                not np.array_equal(d.y, first.y)):
            raise ModelComparisonError(
                f"models {names[0]!r} ({first.nobs} rows) and {name!r} ({d.nobs} rows) were "
                "not fitted to the same observations (check for missing values in columns only "
                "one model uses); refit both on the same rows")
        if isinstance(fit, GeneralizedLinearMixedModelResult) and not _same_weights(
                fit.model.design.weights, first.weights):
            raise ModelComparisonError(
                f"models {names[0]!r} and {name!r} have different prior weights (numbers of "
                "binomial trials): their likelihoods are of different data; refit both with "
                "the same response and weights")


def _same_weights(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is None and b is None or bool(np.all((b if a is None else a) == 1.0))
    return bool(np.array_equal(a, b))


def _family_key(fit: MixedModelResult) -> tuple[str, str, float | None] | None:
    """(family, link, fixed negative binomial size) of a GLMM; None for a linear model."""
    if not isinstance(fit, GeneralizedLinearMixedModelResult):
        return None
    fam = fit.model.family
    return (fam.name, fam.link.name, getattr(fam, "theta", None))


def _check_kinds(fits: Sequence[MixedModelResult], names: list[str], same_family: bool,
                 ) -> None:
    """All linear or all generalized; for the likelihood-ratio test one family and link."""
    kinds = [isinstance(f, LinearMixedModelResult) for f in fits]
    if len(set(kinds)) > 1:
        i = kinds.index(not kinds[0])
        raise ModelComparisonError(
            f"model {names[0]!r} is {model_kind(fits[0])} and {names[i]!r} is "
            f"{model_kind(fits[i])}: a Gaussian likelihood (a density) and a GLMM's (a "
            "probability or another family's density) are not comparable; compare models of "
            "one kind")
    if not same_family:
        return
    keys = [_family_key(f) for f in fits]
    for key, name in zip(keys[1:], names[1:], strict=True):
        if key != keys[0]:
            raise ModelComparisonError(
                f"models {names[0]!r} ({model_kind(fits[0])}) and {name!r} "
                f"({model_kind(fits[names.index(name)])}) differ in family or link: they are "
                "not nested, so the likelihood-ratio test does not apply; rank them with "
                "multilevel.compare() (AIC)")


def _prepare(fits: Sequence[MixedModelResult], names: Sequence[str] | None,
             refit: bool, same_family: bool = True,
             ) -> tuple[list[MixedModelResult], list[str], list[str]]:
    for i, f in enumerate(fits):
        check_fit(f, f"model {i + 1}")
    if len(fits) < 2:
        raise ArgumentError("comparing models needs two or more fits (multilevel.anova(fit) "
                              "gives the F tests of one model's terms)")
    refit = check_flag(refit, "refit")
    if names is not None and (isinstance(names, str) or not hasattr(names, "__iter__")):
        raise ArgumentError(f"names must be a list of {len(fits)} labels, got "
                            f"{type(names).__name__} {names!r}")
    labels = list(names) if names is not None else [f"m{i + 1}" for i in range(len(fits))]
    if len(labels) != len(fits) or len(set(labels)) != len(labels):
        raise MultilevelError(f"names must be {len(fits)} distinct labels, got {labels}")
    _check_kinds(fits, labels, same_family)
    _check_same_rows(fits, labels)
    refitted: list[str] = []
    out = list(fits)
    if refit:
        for i, f in enumerate(fits):
            if _reml(f):
                out[i] = refit_ml(f)
                refitted.append(labels[i])
    elif any(_reml(f) for f in fits):
        fixed = {tuple(f.fixed_names) for f in fits}
        if len(fixed) > 1 or not all(_reml(f) for f in fits):
            raise ModelComparisonError(
                "REML likelihoods of models with different fixed effects (or mixed with ML "
                "fits) cannot be compared; use refit=True to refit them by maximum likelihood")
    return out, labels, refitted


@public_api
def anova(*fits: Any, refit: bool = True,
          names: Sequence[str] | None = None, ddf: str | None = "satterthwaite",
          type: int = 3) -> pd.DataFrame:
    """Likelihood-ratio tests for nested models, as lme4's ``anova(m0, m1, ...)``; with a
    single model, the F table of its fixed-effects terms (lmerTest's ``anova(m)``, see
    :func:`multilevel.inference.f_tests.f_table`; ``ddf`` and ``type`` apply to it).

    Parameters
    ----------
    *fits : LinearMixedModelResult or GeneralizedLinearMixedModelResult
        Two or more models of one kind fitted to the same rows (GLMMs: of one family and link,
        with the same prior weights). They are ordered by number of parameters and each is
        tested against the one before it (chi-square df: the difference in ``n_params``).
        With any gls, lme or nlme fit among them the table is nlme's instead (see
        :mod:`multilevel.inference.structured_comparison`): fits compared as fitted, in the
        order given; REML fits with different fixed effects, mixed methods and fits to
        different responses are refused.
    refit : bool, default True
        Refit REML fits by maximum likelihood first (as lme4). With ``refit=False`` REML fits
        are compared as they are, which is valid only when all share their fixed effects.
        GLMMs are maximum-likelihood fits: nothing is refitted.
    names : sequence of str, optional
        Row labels (default ``m1``, ``m2``, ... in the order given).

    Returns
    -------
    pandas.DataFrame
        Indexed by model name, with columns npar, aic, bic, loglik, deviance, chisq, df,
        p_value and p_value_boundary (the 50:50 chi-bar-square p-value when the larger model
        adds random-effects variances and keeps the fixed effects; NaN otherwise). The models
        refitted by ML are listed in ``.attrs["refitted_ml"]``, the criterion compared in
        ``.attrs["criterion"]``.

    Raises
    ------
    ModelComparisonError
        Models fitted to different rows, or not nested; a linear model with a GLMM; GLMMs of
        different families or links.
    NotApplicableError
        One GLMM (the F tests of its terms are the linear model's).
    """
    if not fits:
        raise ArgumentError("anova() needs one fitted model (F tests of its terms) or two or "
                            "more (likelihood-ratio tests)")
    if any(getattr(f, "kind", None) == "bayes" for f in fits):
        raise ModelComparisonError(
            "anova() tests maximum-likelihood fits; Bayesian fits have no likelihood-ratio "
            "test: rank them by PSIS-LOO with multilevel.compare(fit1, fit2), or see one "
            "model's with multilevel.loo(fit)")
    if len(fits) == 1:
        if is_nlme_kind(fits[0]):
            raise NotApplicableError(
                f"anova() of one {fits[0].__class__.__name__} (nlme's F tests of its terms) is not "
                "available; compare two or more fits, or use fit.coef_table()")
        return f_table(check_fit(fits[0], "model 1"), ddf=ddf, type=type)
    if any(is_nlme_kind(f) for f in fits):
        return nlme_anova(fits, names)
    models, labels, refitted = _prepare(fits, names, refit)
    order = sorted(range(len(models)), key=lambda i: models[i].n_params)
    rows = []
    prev: MixedModelResult | None = None
    for i in order:
        m = models[i]
        row: dict[str, float] = {
            "npar": m.n_params, "aic": m.aic, "bic": m.bic, "loglik": m.loglik,
            "deviance": -2.0 * m.loglik, "chisq": np.nan, "df": np.nan, "p_value": np.nan,
            "p_value_boundary": np.nan}
        if prev is not None:
            if not _nested(prev, m):
                raise ModelComparisonError(
                    f"model {labels[i]!r} does not contain the fixed effects and random-effects "
                    f"terms of {labels[order[order.index(i) - 1]]!r}: the likelihood-ratio test "
                    "needs nested models; use multilevel.compare() to rank non-nested ones")
            df = m.n_params - prev.n_params
            chisq = max(2.0 * (m.loglik - prev.loglik), 0.0)
            row.update(chisq=chisq, df=df)
            if df > 0:
                row["p_value"] = float(stats.chi2.sf(chisq, df))
                adds_variance = (m.model.layout.n_theta > prev.model.layout.n_theta
                                 and list(m.fixed_names) == list(prev.fixed_names))
                if adds_variance:
                    lower = float(stats.chi2.sf(chisq, df - 1)) if df > 1 else 0.0
                    row["p_value_boundary"] = 0.5 * row["p_value"] + 0.5 * lower
        rows.append(row)
        prev = m
    table = pd.DataFrame(rows, index=pd.Index([labels[i] for i in order], name="model"))
    table["npar"] = table["npar"].astype(int)
    table.attrs["refitted_ml"] = refitted
    table.attrs["criterion"] = "REML" if any(_reml(m) for m in models) else "ML"
    return table


@public_api
def compare(*fits: Any, refit: bool = True,
            names: Sequence[str] | None = None) -> pd.DataFrame:
    """Rank models (nested or not) by AIC, with BIC and Akaike / Schwarz weights; Bayesian
    fits (``ml.bayes``) by PSIS-LOO instead, as R's ``loo_compare`` (see
    :func:`multilevel.bayesian.loo.compare_fits`: columns elpd_diff, se_diff, elpd_loo,
    se_elpd_loo, p_loo, se_p_loo, looic, se_looic, best first).

    REML fits are refitted by maximum likelihood first unless ``refit=False`` (then all must be
    REML fits with the same fixed effects). The models must be of one kind (linear, or
    generalized: GLMMs of different families are ranked, their log-likelihoods being complete)
    and fitted to the same rows, response and prior weights.

    Returns
    -------
    pandas.DataFrame
        Indexed by model name, sorted by AIC, with columns npar, loglik, aic, delta_aic,
        aic_weight, bic, delta_bic, bic_weight.
    """
    if any(getattr(f, "kind", None) == "bayes" for f in fits):
        # Bayesian fits are ranked by PSIS-LOO (R's loo_compare); mixing kinds is refused there
        from multilevel.bayesian.loo import compare_fits
        return compare_fits(fits, names)
    if any(is_nlme_kind(f) for f in fits):
        return nlme_compare(fits, names)
    models, labels, refitted = _prepare(fits, names, refit, same_family=False)
    return ranking_table(models, labels, np.array([m.bic for m in models]), refitted)
