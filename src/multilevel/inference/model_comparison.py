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
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from multilevel.errors import ArgumentError, ModelComparisonError, MultilevelError, public_api
from multilevel.inference.arguments import check_fit, check_flag
from multilevel.inference.f_tests import f_table
from multilevel.results.lmm_result import LinearMixedModelResult


def refit_ml(fit: LinearMixedModelResult) -> LinearMixedModelResult:
    """The same model fitted by maximum likelihood: every other setting is kept, and the
    design and cross-products are shared (``model.replace(reml=False)``)."""
    if not fit.reml:
        return fit
    model = fit.model.replace(reml=False)
    return LinearMixedModelResult.from_model(model, model.optimize())


def _random_terms(fit: LinearMixedModelResult) -> list[tuple[str, frozenset[str]]]:
    return [(t.factor.name, frozenset(t.columns)) for t in fit.model.design.terms]


def _nested(small: LinearMixedModelResult, large: LinearMixedModelResult) -> bool:
    """Fixed effects and random-effects terms of ``small`` are contained in ``large``'s."""
    if not set(small.fixed_names) <= set(large.fixed_names):
        return False
    big = _random_terms(large)
    return all(any(g == G and cols <= COLS for G, COLS in big) for g, cols in _random_terms(small))


def _check_same_rows(fits: Sequence[LinearMixedModelResult], names: list[str]) -> None:
    first = fits[0].model.design
    for fit, name in zip(fits[1:], names[1:], strict=True):
        d = fit.model.design
        if d.nobs != first.nobs or not np.array_equal(d.row_index, first.row_index) or (
                not np.array_equal(d.y, first.y)):
            raise ModelComparisonError(
                f"models {names[0]!r} ({first.nobs} rows) and {name!r} ({d.nobs} rows) were "
                "not fitted to the same observations (check for missing values in columns only "
                "one model uses); refit both on the same rows")


def _prepare(fits: Sequence[LinearMixedModelResult], names: Sequence[str] | None,
             refit: bool) -> tuple[list[LinearMixedModelResult], list[str], list[str]]:
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
    _check_same_rows(fits, labels)
    refitted: list[str] = []
    out = list(fits)
    if refit:
        for i, f in enumerate(fits):
            if f.reml:
                out[i] = refit_ml(f)
                refitted.append(labels[i])
    elif any(f.reml for f in fits):
        fixed = {tuple(f.fixed_names) for f in fits}
        if len(fixed) > 1 or not all(f.reml for f in fits):
            raise ModelComparisonError(
                "REML likelihoods of models with different fixed effects (or mixed with ML "
                "fits) cannot be compared; use refit=True to refit them by maximum likelihood")
    return out, labels, refitted


@public_api
def anova(*fits: LinearMixedModelResult, refit: bool = True,
          names: Sequence[str] | None = None, ddf: str | None = "satterthwaite",
          type: int = 3) -> pd.DataFrame:
    """Likelihood-ratio tests for nested models, as lme4's ``anova(m0, m1, ...)``; with a
    single model, the F table of its fixed-effects terms (lmerTest's ``anova(m)``, see
    :func:`multilevel.inference.f_tests.f_table`; ``ddf`` and ``type`` apply to it).

    Parameters
    ----------
    *fits : LinearMixedModelResult
        Two or more models fitted to the same rows. They are ordered by number of parameters
        and each is tested against the one before it.
    refit : bool, default True
        Refit REML fits by maximum likelihood first (as lme4). With ``refit=False`` REML fits
        are compared as they are, which is valid only when all share their fixed effects.
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
        Models fitted to different rows, or not nested.
    """
    if not fits:
        raise ArgumentError("anova() needs one fitted model (F tests of its terms) or two or "
                            "more (likelihood-ratio tests)")
    if len(fits) == 1:
        return f_table(check_fit(fits[0], "model 1"), ddf=ddf, type=type)
    models, labels, refitted = _prepare(fits, names, refit)
    order = sorted(range(len(models)), key=lambda i: models[i].n_params)
    rows = []
    prev: LinearMixedModelResult | None = None
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
    table.attrs["criterion"] = "REML" if any(m.reml for m in models) else "ML"
    return table


@public_api
def compare(*fits: LinearMixedModelResult, refit: bool = True,
            names: Sequence[str] | None = None) -> pd.DataFrame:
    """Rank models (nested or not) by AIC, with BIC and Akaike / Schwarz weights.

    REML fits are refitted by maximum likelihood first unless ``refit=False`` (then all must be
    REML fits with the same fixed effects). The models must be fitted to the same rows.

    Returns
    -------
    pandas.DataFrame
        Indexed by model name, sorted by AIC, with columns npar, loglik, aic, delta_aic,
        aic_weight, bic, delta_bic, bic_weight.
    """
    models, labels, refitted = _prepare(fits, names, refit)
    aic = np.array([m.aic for m in models])
    bic = np.array([m.bic for m in models])

    def weights(ic: np.ndarray) -> np.ndarray:
        rel = np.exp(-0.5 * (ic - ic.min()))
        return rel / rel.sum()

    table = pd.DataFrame({
        "npar": [m.n_params for m in models], "loglik": [m.loglik for m in models],
        "aic": aic, "delta_aic": aic - aic.min(), "aic_weight": weights(aic),
        "bic": bic, "delta_bic": bic - bic.min(), "bic_weight": weights(bic),
    }, index=pd.Index(labels, name="model")).sort_values("aic", kind="stable")
    table.attrs["refitted_ml"] = refitted
    return table
