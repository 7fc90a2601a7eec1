"""Comparing fits of nlme's kinds (gls, lme, nlme) with each other and with lmer fits, as
nlme's ``anova(m1, m2, ...)``: built only on what every fit reports -- ``loglik``,
``n_params``, ``nobs``, the estimation method (``reml`` / ``method``), the fixed effects'
names and the response.

nlme compares the fits as they were fitted (no refit): the models are taken in the order given
and each is tested against the one before it (likelihood ratio 2 |logLik_i - logLik_(i-1)| on
|df_i - df_(i-1)| degrees of freedom). Where nlme warns that REML comparisons of models with
different fixed effects are not meaningful, we refuse (a REML likelihood is that of residual
contrasts that change with the fixed effects); fits to different responses or numbers of rows,
and a mix of REML and ML fits, are refused too. BIC is nlme's for every row (log(N - p) for
REML fits, where lme4's lmer uses log N).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from multilevel.errors import ArgumentError, ModelComparisonError, MultilevelError
from multilevel.results.base import MixedModelResult
from multilevel.results.glmm_result import GeneralizedLinearMixedModelResult
from multilevel.results.lmm_result import LinearMixedModelResult


def is_nlme_kind(fit: Any) -> bool:
    """A fit of nlme's kinds (gls, lme, nlme): not one of the lme4-style results, but with
    the comparison vocabulary."""
    return not isinstance(fit, MixedModelResult) and all(
        hasattr(fit, name) for name in ("loglik", "n_params", "aic", "bic", "fixef"))


def _is_reml(fit: Any) -> bool:
    if isinstance(fit, LinearMixedModelResult):
        return bool(fit.reml)
    reml = getattr(fit, "reml", None)
    return bool(reml) if reml is not None else getattr(fit, "method", "ML") == "REML"


def _nobs(fit: Any) -> int:
    if hasattr(fit, "nobs"):
        return int(fit.nobs)
    return int(fit.lme.nobs)  # an nlme fit without its own count: its last LME step's


def _response(fit: Any) -> np.ndarray | None:
    if isinstance(fit, MixedModelResult):
        return np.asarray(fit.model.design.y, dtype=float)
    try:
        value = getattr(fit, "response", None)  # an nlme fit may not keep it
    except MultilevelError:
        return None
    return None if value is None else np.asarray(value, dtype=float)


def _bic(fit: Any) -> float:
    """BIC as nlme counts it: log(N - p) for REML fits (an lmer fit's own uses log N)."""
    if isinstance(fit, LinearMixedModelResult):
        n = fit.nobs - (len(fit.fixed_names) if fit.reml else 0)
        return -2.0 * fit.loglik + float(np.log(n)) * fit.n_params
    return float(fit.bic)


def _fixed_names(fit: Any) -> list[str]:
    return list(fit.fixef.index)


def check_comparable(fits: Sequence[Any], names: list[str]) -> None:
    """Refuse GLMMs, fits to different data, mixed methods and REML fits with different
    fixed effects (see the module docstring)."""
    for fit, name in zip(fits, names, strict=True):
        if not (isinstance(fit, MixedModelResult) or is_nlme_kind(fit)):
            raise ArgumentError(f"model {name!r} must be a fitted model (the result of "
                                "multilevel.lmer, gls, lme or nlme), got "
                                f"{type(fit).__name__} {fit!r:.60}")
        if isinstance(fit, GeneralizedLinearMixedModelResult):
            raise ModelComparisonError(
                f"model {name!r} is a GLMM: its likelihood is not comparable with a Gaussian "
                "gls/lme fit's; compare models of one kind")
    n0, y0 = _nobs(fits[0]), _response(fits[0])
    for fit, name in zip(fits[1:], names[1:], strict=True):
        n, y = _nobs(fit), _response(fit)
        if n != n0 or (y is not None and y0 is not None and (
                y.shape != y0.shape or not np.allclose(y, y0, rtol=1e-12, atol=0.0))):
            raise ModelComparisonError(
                f"models {names[0]!r} ({n0} rows) and {name!r} ({n} rows) were not fitted to "
                "the same response and rows (check the response and missing values in columns "
                "only one model uses); refit both on the same data")
    remls = [_is_reml(f) for f in fits]
    if len(set(remls)) > 1:
        i = remls.index(not remls[0])
        raise ModelComparisonError(
            f"models {names[0]!r} and {names[i]!r} were fitted by different methods (REML and "
            "ML): their likelihoods are not comparable; refit them with the same method")
    if remls[0]:
        first = _fixed_names(fits[0])
        for fit, name in zip(fits[1:], names[1:], strict=True):
            if _fixed_names(fit) != first:
                raise ModelComparisonError(
                    f"REML fits {names[0]!r} and {name!r} have different fixed effects "
                    f"({', '.join(first)} against {', '.join(_fixed_names(fit))}): their "
                    "restricted likelihoods are of different residual contrasts, so the "
                    "comparison is not meaningful (nlme warns); refit both with method='ML'")


def labels_for(fits: Sequence[Any], names: Sequence[str] | None) -> list[str]:
    """Row labels: ``names`` checked, or m1, m2, ..."""
    if len(fits) < 2:
        raise ArgumentError("comparing models needs two or more fits")
    if names is not None and (isinstance(names, str) or not hasattr(names, "__iter__")):
        raise ArgumentError(f"names must be a list of {len(fits)} labels, got "
                            f"{type(names).__name__} {names!r}")
    labels = list(names) if names is not None else [f"m{i + 1}" for i in range(len(fits))]
    if len(labels) != len(fits) or len(set(labels)) != len(labels):
        raise ArgumentError(f"names must be {len(fits)} distinct labels, got {labels}")
    return labels


def nlme_anova(fits: Sequence[Any], names: Sequence[str] | None = None) -> pd.DataFrame:
    """nlme's ``anova(m1, m2, ...)`` table (see the module docstring): columns npar, aic,
    bic, loglik, deviance, chisq, df, p_value (and p_value_boundary, NaN: nlme reports no
    boundary correction), in the order given."""
    labels = labels_for(fits, names)
    check_comparable(fits, labels)
    rows = []
    for i, m in enumerate(fits):
        row: dict[str, float] = {
            "npar": m.n_params, "aic": m.aic, "bic": _bic(m), "loglik": m.loglik,
            "deviance": -2.0 * m.loglik, "chisq": np.nan, "df": np.nan, "p_value": np.nan,
            "p_value_boundary": np.nan}
        if i:
            prev = fits[i - 1]
            df = abs(m.n_params - prev.n_params)
            chisq = 2.0 * abs(m.loglik - prev.loglik)
            row.update(chisq=chisq, df=df)
            if df > 0:
                row["p_value"] = float(stats.chi2.sf(chisq, df))
        rows.append(row)
    table = pd.DataFrame(rows, index=pd.Index(labels, name="model"))
    table["npar"] = table["npar"].astype(int)
    table.attrs["refitted_ml"] = []
    table.attrs["criterion"] = "REML" if _is_reml(fits[0]) else "ML"
    return table


def nlme_compare(fits: Sequence[Any], names: Sequence[str] | None = None) -> pd.DataFrame:
    """AIC / BIC ranking with Akaike and Schwarz weights of comparable fits (no refit)."""
    labels = labels_for(fits, names)
    check_comparable(fits, labels)
    return ranking_table(fits, labels, np.array([_bic(m) for m in fits]), [])


def ranking_table(fits: Sequence[Any], labels: Sequence[str], bic: np.ndarray,
                  refitted: list[str]) -> pd.DataFrame:
    """The AIC / BIC ranking of ``fits`` (their own ``bic`` given: nlme's and lme4's count
    the observations differently for REML fits) with Akaike and Schwarz weights, best AIC
    first; ``refitted`` names the fits refitted by ML for it."""
    aic = np.array([m.aic for m in fits])

    def weights(ic: np.ndarray) -> np.ndarray:
        rel = np.exp(-0.5 * (ic - ic.min()))
        return rel / rel.sum()

    table = pd.DataFrame({
        "npar": [m.n_params for m in fits], "loglik": [m.loglik for m in fits],
        "aic": aic, "delta_aic": aic - aic.min(), "aic_weight": weights(aic),
        "bic": bic, "delta_bic": bic - bic.min(), "bic_weight": weights(bic),
    }, index=pd.Index(labels, name="model")).sort_values("aic", kind="stable")
    table.attrs["refitted_ml"] = refitted
    return table
