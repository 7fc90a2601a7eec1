"""What the report says about a fit, gathered once from the fit's public vocabulary: the call
(formula, data, method, family), the summary text, the coefficient table, the variance
components and ICC, and the fit statistics.

Every model kind answers ``coef_table()`` and ``summary()``; the rest is read where the kind
has it (a ``gls`` fit has no random effects, a Bayesian one no AIC) and the report says so
in words instead of showing an empty table.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

import multilevel
from multilevel.errors import ArgumentError, MultilevelError

# The kinds, by the class name of their result (the presentation layer sees only the public
# API, in which not every result class is exported).
KIND_TITLES = {
    "LinearMixedModelResult": "Linear mixed model (as lme4's lmer)",
    "GeneralizedLinearMixedModelResult": "Generalized linear mixed model (as lme4's glmer)",
    "LmeResult": "Linear mixed-effects model (as nlme's lme)",
    "GlsResult": "Generalized least squares (as nlme's gls)",
    "NlmeResult": "Nonlinear mixed-effects model (as nlme's nlme)",
    "BayesResult": "Bayesian multilevel model (as brms's brm)",
}

# What the test statistic column means, per kind (the caption under the coefficient table).
TEST_CAPTIONS = {
    "LinearMixedModelResult": "t tests; denominator degrees of freedom by {ddf}",
    "GeneralizedLinearMixedModelResult": "Wald z tests (as glmer's summary)",
    "LmeResult": "t tests with nlme's between/within-group degrees of freedom",
    "GlsResult": "t tests with the residual degrees of freedom (as nlme's gls)",
    "NlmeResult": "t tests with nlme's degrees of freedom",
    "BayesResult": "posterior means, posterior SDs and 95 % credible intervals; R-hat and "
                   "effective sample sizes per coefficient",
}


@dataclass(frozen=True)
class FitFacts:
    """The numbers and texts of one report, read from a fit.

    Attributes
    ----------
    kind : str
        The result's class name (a key of ``KIND_TITLES``).
    call : list of (label, text)
        Formula, random part, structures, data, method, family.
    summary : str
        The fit's printed summary.
    coefficients : pandas.DataFrame
        ``fit.coef_table()`` (for linear mixed models with the ``ddf`` asked for).
    test_caption : str
        What the statistic and p-values of ``coefficients`` are.
    varcorr : pandas.DataFrame or None
        Variance components (None: the kind has no random effects).
    icc : pandas.Series or None
        ``ml.icc`` (adjusted, conditional) where it is defined; ``icc_note`` says why not.
    statistics : list of (label, value)
        AIC, BIC, log-likelihood, observations, groups, ... (numbers or text).
    has_random_effects : bool
        Whether a caterpillar plot of the group effects applies.
    """

    kind: str
    call: list[tuple[str, str]]
    summary: str
    coefficients: pd.DataFrame
    test_caption: str
    varcorr: pd.DataFrame | None
    icc: pd.Series | None
    icc_note: str
    statistics: list[tuple[str, Any]] = field(default_factory=list)
    has_random_effects: bool = True

    @property
    def title(self) -> str:
        """The kind in words (the first row of ``call``)."""
        return self.call[0][1]


def kind_of(fit: Any) -> str:
    """The result's class name, checked to be a fitted model the report knows."""
    kind = type(fit).__name__
    if kind not in KIND_TITLES or not callable(getattr(fit, "coef_table", None)):
        raise ArgumentError(
            f"fit must be a fitted model (the result of ml.lmer, ml.glmer, ml.lme, ml.gls, "
            f"ml.nlme, ml.bayes or ml.bayes_nlme), got {kind}; fit the model first and pass "
            "its result")
    return kind


def gather(fit: Any, data_name: str | None, ddf: str | None) -> FitFacts:
    """Read everything the report shows from ``fit``."""
    kind = kind_of(fit)
    if kind == "LinearMixedModelResult":
        coefficients = fit.coef_table(ddf=ddf)
        caption = (TEST_CAPTIONS[kind].format(ddf=_DDF_WORDS.get(ddf or "", ddf))
                   if ddf is not None else "Wald z tests (lme4's table has no df)")
    else:
        coefficients = fit.coef_table()
        caption = TEST_CAPTIONS[kind]
    varcorr = getattr(fit, "varcorr", None)
    has_random = isinstance(varcorr, pd.DataFrame) and bool(
        (varcorr["group"].astype(str) != "Residual").any())
    icc, icc_note = _icc(fit, kind, has_random)
    return FitFacts(kind=kind, call=_call(fit, kind, data_name), summary=_summary(fit),
                    coefficients=coefficients, test_caption=caption,
                    varcorr=varcorr if has_random else None, icc=icc, icc_note=icc_note,
                    statistics=_statistics(fit, kind), has_random_effects=has_random)


_DDF_WORDS = {"satterthwaite": "Satterthwaite's method (as lmerTest)",
              "kenward-roger": "Kenward-Roger's method (as lmerTest and pbkrtest)",
              "between-within": "the between-within rule (as SAS's DDFM=BW)",
              "residual": "the residual degrees of freedom, n - p"}


def _summary(fit: Any) -> str:
    return str(fit.summary()).rstrip("\n")


def kind_title(fit: Any, kind: str) -> str:
    """The kind in words; a Bayesian nonlinear model (``ml.bayes_nlme``) named as such."""
    if kind == "BayesResult" and getattr(fit.model, "nonlinear", None) is not None:
        return "Bayesian nonlinear multilevel model (as brms's brm with nl = TRUE)"
    return KIND_TITLES[kind]


def formula_of(fit: Any, kind: str) -> str:
    """The model formula as the user wrote it."""
    if kind == "LmeResult":
        return str(fit.call.formula)
    if kind == "GlsResult":
        return str(fit.formula)
    if kind == "NlmeResult":
        return str(fit.call["model"])
    if kind == "BayesResult":
        return str(fit.model.formula)
    return str(fit.model.design.formula.text)


def _call(fit: Any, kind: str, data_name: str | None) -> list[tuple[str, str]]:
    rows = [("Model", kind_title(fit, kind)), ("Formula", formula_of(fit, kind))]
    if kind == "LmeResult":
        if fit.call.random is not None:
            rows.append(("Random", str(fit.call.random)))
        rows += _structure_rows(fit.call.weights, fit.call.correlation)
    elif kind == "NlmeResult":
        for key in ("fixed", "random", "groups"):
            if fit.call.get(key) is not None:
                rows.append((key.capitalize(), str(fit.call[key])))
        rows += _structure_rows(fit.call.get("weights"), fit.call.get("correlation"))
    elif kind == "GlsResult":
        variance = [s for s in fit.structures if type(s).__name__.startswith("Var")]
        correlation = [s for s in fit.structures if type(s).__name__.startswith("Cor")]
        rows += _structure_rows(variance[0] if variance else None,
                                correlation[0] if correlation else None)
    if data_name is None and kind == "BayesResult":
        data_name = fit.data_name
    rows.append(("Data", f"{data_name or 'data'} ({_used_rows(fit)})"))
    rows += _method_rows(fit, kind)
    return rows


def _structure_rows(weights: Any, correlation: Any) -> list[tuple[str, str]]:
    return ([("Variance function", repr(weights))] if weights is not None else []) + (
        [("Correlation structure", repr(correlation))] if correlation is not None else [])


def _used_rows(fit: Any) -> str:
    n = nobs(fit)
    dropped = getattr(fit, "n_dropped", 0)
    text = f"{n} observations used" if n is not None else "observations"
    if isinstance(dropped, int) and dropped > 0:
        text += f"; {dropped} rows with missing values dropped"
    return text


def _method_rows(fit: Any, kind: str) -> list[tuple[str, str]]:
    if kind == "LinearMixedModelResult":
        return [("Method", "REML" if fit.reml else "maximum likelihood")]
    if kind == "GeneralizedLinearMixedModelResult":
        return [("Family", f"{fit.family_title} ({fit.family.link.name} link)"),
                ("Method", f"maximum likelihood ({fit.method_title})")]
    if kind == "BayesResult":
        family = fit.model.family
        link = getattr(family.link, "name", family.link)
        s = fit.settings
        return [("Family", f"{family.name} ({link} link)"),
                ("Method", f"NUTS: {s.chains} chains, {s.warmup} warmup and {s.draws} kept "
                           f"draws each, seed {s.seed}")]
    method = str(fit.method)
    return [("Method", {"REML": "REML", "ML": "maximum likelihood"}.get(method, method))]


def nobs(fit: Any) -> int | None:
    """Number of observations used (from the fit, or the linear mixed model inside it)."""
    for holder in (fit, getattr(fit, "fit", None)):
        value = getattr(holder, "nobs", None)
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return int(value)  # numpy's integers too
    return None


def _icc(fit: Any, kind: str, has_random: bool) -> tuple[pd.Series | None, str]:
    """``ml.icc`` where it is defined, else None and the reason in words."""
    if not has_random:
        return None, ("not defined: the model has no random effects (a gls model's "
                      "within-group correlation is in its correlation structure)")
    if kind == "NlmeResult":
        return None, ("not reported for nonlinear models: the share of variance between "
                      "groups changes along the curve")
    if kind == "BayesResult":
        return None, ("not computed for Bayesian fits here; the posterior of the variance "
                      "components is in the table above")
    target = fit
    if kind == "LmeResult":
        if fit.call.weights is not None or fit.call.correlation is not None:
            return None, ("not reported: with a variance function or a correlation structure "
                          "the residual variance is not one number to set against the group "
                          "variance")
        target = fit.fit  # without structures, the lme fit is the linear mixed model inside
    try:
        return multilevel.icc(target), ""
    except MultilevelError as exc:  # a family with no latent-scale residual variance, ...
        return None, f"not defined for this model: {exc}"


def _statistics(fit: Any, kind: str) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    if kind != "BayesResult":
        reml = bool(getattr(fit, "reml", False))
        rows += [("AIC", fit.aic), ("BIC", fit.bic),
                 ("log-likelihood (REML)" if reml else "log-likelihood", fit.loglik)]
        deviance = getattr(fit, "deviance", None)
        if isinstance(deviance, float) and not reml:
            rows.append(("deviance", deviance))
        sigma = getattr(fit, "sigma", None)
        # a GLMM's sigma is its dispersion (1 for binomial and Poisson), not a residual SD
        if kind != "GeneralizedLinearMixedModelResult" and isinstance(sigma, float) \
                and math.isfinite(sigma):
            rows.append(("residual SD", sigma))
    n = nobs(fit)
    if n is not None:
        rows.append(("observations", n))
    groups = getattr(fit, "ngroups", None)
    if isinstance(groups, dict):
        rows += [(f"groups: {name}", int(count)) for name, count in groups.items()]
    if kind == "BayesResult":
        rows += [("posterior draws", fit.ndraws),
                 ("AIC, BIC", "not defined for a Bayesian fit: compare models with "
                              "ml.loo(fit) (PSIS-LOO)")]
    return rows
