"""Predictions with standard errors and confidence intervals on new data, for every fitted
model kind (ggeffects' ``ggpredict`` / ``predict(..., se.fit = TRUE)``).

The uncertainty is that of the fixed effects alone. For a model linear in its fixed effects
the linear predictor is eta = X beta with variance diag(X V X') (X the fit's model matrix of
``newdata``, V the fixed effects' covariance); for a nonlinear model the delta method gives
var = G V G' with G the gradient of the level-0 prediction in the fixed effects (central
differences); for a Bayesian fit the draws of the population mean give the posterior mean,
SD and quantiles directly.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from multilevel.data.frame import to_pandas
from multilevel.errors import ArgumentError, DataError, NotApplicableError, public_api
from multilevel.results.base import confidence_level
from multilevel.results.glmm_result import GeneralizedLinearMixedModelResult
from multilevel.results.gls_result import GlsResult
from multilevel.results.lme_result import LmeResult
from multilevel.results.lmm_result import LinearMixedModelResult
from multilevel.results.nlme_result import NlmeResult

COLUMNS = ("estimate", "std_error", "conf_low", "conf_high")
_POPULATION = ("NA", "~0", "~ 0")
# Central-difference step relative to each coefficient's size: the cube root of the machine
# epsilon balances truncation (h^2) against rounding (eps / h).
_RELATIVE_STEP = float(np.finfo(float).eps) ** (1 / 3)


def _is_bayes(fit: Any) -> bool:
    # The Bayesian result's module imports JAX; a fit of that class exists only once it is loaded.
    module = sys.modules.get("multilevel.bayesian.result")
    return module is not None and isinstance(fit, module.BayesResult)


def _new_frame(newdata: Any) -> pd.DataFrame:
    if newdata is None:
        raise ArgumentError("predictions needs newdata: a DataFrame (or dict of columns) with "
                            "every predictor of the model, one row per prediction")
    if not (isinstance(newdata, pd.DataFrame | dict)
            or type(newdata).__module__.startswith("polars")):
        raise ArgumentError(f"newdata must be a pandas or polars DataFrame (or a dict of "
                            f"columns), got {type(newdata).__name__}")
    frame = to_pandas(newdata).reset_index(drop=True)
    if len(frame) == 0:
        raise DataError("newdata has no rows; give one row per prediction")
    taken = [c for c in COLUMNS if c in frame.columns]
    if taken:
        raise ArgumentError(f"newdata already has a column {taken[0]!r}, a name the result "
                            f"uses for its own column; rename it")
    return frame


def _population(re_form: Any) -> bool:
    """True for the population level (re_form 'NA' or '~0'), False for None (every random
    effect); an ArgumentError for anything else where only these two apply."""
    if re_form is None:
        return False
    if isinstance(re_form, str) and re_form.strip() in _POPULATION:
        return True
    raise ArgumentError(f"re_form must be 'NA' (the population level) or None (with every "
                        f"random effect) for this model kind, got {re_form!r:.60}")


def _linear_variance(fit: Any, newdata: pd.DataFrame) -> np.ndarray:
    """diag(X V X') for the fit's model matrix of ``newdata``."""
    X = fit.model_matrix(newdata).to_numpy()
    V = fit.vcov.loc[fit.fixed_names, fit.fixed_names].to_numpy()
    return np.einsum("ij,jk,ik->i", X, V, X)


def _nlme_prediction(fit: NlmeResult, frame: pd.DataFrame, level: int | None,
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The prediction at ``level`` and its delta-method variance G V G'."""
    def at(beta: np.ndarray) -> np.ndarray:
        moved = dataclasses.replace(fit, fixef=pd.Series(beta, index=fit.fixef.index,
                                                         name="estimate"))
        return np.asarray(moved.predict(frame, level=level), dtype=float)

    beta = fit.fixef.to_numpy(dtype=float)
    estimate = np.asarray(fit.predict(frame, level=level), dtype=float)
    G = np.empty((estimate.size, beta.size))
    for j in range(beta.size):
        h = _RELATIVE_STEP * max(abs(beta[j]), 1.0)
        up, down = beta.copy(), beta.copy()
        up[j] += h
        down[j] -= h
        G[:, j] = (at(up) - at(down)) / (2 * h)
    V = fit.vcov.to_numpy()
    return estimate, np.einsum("ij,jk,ik->i", G, V, G)


def _bayes_predictions(fit: Any, frame: pd.DataFrame, level: float, scale: str,
                       re_form: Any) -> pd.DataFrame:
    draws = np.asarray(fit.predict(frame, re_form=None if not _population(re_form) else "NA",
                                   scale=scale, summary=False), dtype=float)
    lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return frame.assign(estimate=draws.mean(axis=0), std_error=draws.std(axis=0, ddof=1),
                        conf_low=lo, conf_high=hi)


@public_api
def predictions(fit: Any, newdata: Any, level: float = 0.95, scale: str = "response",
                re_form: str | None = "NA", df: float | None = None) -> pd.DataFrame:
    """Predictions on ``newdata`` with standard errors and confidence intervals from the
    uncertainty of the fixed effects (ggeffects' ``ggpredict``).

    The estimate is the model's prediction at the population level (``re_form="NA"``, the
    default) or, with ``re_form=None``, with the random effects of the groups named in
    ``newdata`` (conditional predictions). The interval reflects the fixed effects' covariance
    V only: eta = X beta with variance diag(X V X') for linear, generalized linear and gls/lme
    fits (X = ``fit.model_matrix(newdata)``); for a conditional prediction the random effects
    are taken as known. For a generalized linear mixed model the interval is built on the link
    scale and mapped through the inverse link when ``scale="response"`` (ggeffects' approach,
    so that a probability's interval stays within 0 and 1); ``std_error`` stays on the link
    scale, as ggeffects reports it. For a nonlinear (nlme) fit the delta method: the gradient
    G of the prediction in the fixed effects, by central differences, and variance
    diag(G V G'). For a Bayesian fit the posterior of the mean at each row: estimate the
    posterior mean, ``std_error`` the posterior SD, the interval the equal-tailed posterior
    quantiles (``df`` does not apply).

    Parameters
    ----------
    fit : fitted model
        From ``lmer``, ``glmer``, ``lme``, ``gls``, ``nlme`` or ``bayes``.
    newdata : pandas or polars DataFrame, or dict of columns
        Every predictor of the fixed part (and, with ``re_form=None``, the grouping columns),
        with the fit's factor levels.
    level : float, default 0.95
        Confidence level of the interval.
    scale : {"response", "link"}
        For generalized models, the scale of ``estimate`` and the interval; the same for
        models with an identity link.
    re_form : "NA" or None (or, for ``lmer``/``glmer``, a formula of random terms)
        ``"NA"`` (or ``"~0"``): population level; None: with every random effect.
    df : float, optional
        Degrees of freedom of a t critical value; default the normal one (as ggeffects for
        glmer and lme fits; ggeffects uses n minus every parameter for lmer fits).

    Returns
    -------
    pandas.DataFrame
        ``newdata``'s columns, then ``estimate``, ``std_error``, ``conf_low``, ``conf_high``.

    Examples
    --------
    >>> import multilevel as ml, pandas as pd
    >>> fit = ml.lmer("Reaction ~ Days + (Days | Subject)", ml.datasets.load("sleepstudy"))
    >>> p = ml.predictions(fit, pd.DataFrame({"Days": [0.0, 9.0]}))
    >>> list(p.columns)
    ['Days', 'estimate', 'std_error', 'conf_low', 'conf_high']
    """
    level = confidence_level(level)
    if not isinstance(scale, str) or scale not in ("response", "link"):
        raise ArgumentError(f"scale must be 'response' or 'link', got {scale!r:.60}")
    if df is not None and (isinstance(df, bool) or not isinstance(df, int | float)
                           or not df > 0):
        raise ArgumentError(f"df must be a positive number (or None for the normal critical "
                            f"value), got {df!r:.60}")
    frame = _new_frame(newdata)
    if _is_bayes(fit):
        if df is not None:
            raise NotApplicableError("df does not apply to a Bayesian fit: its interval is "
                                     "the posterior quantiles; leave df=None")
        return _bayes_predictions(fit, frame, level, scale, re_form)

    inverse = None
    if isinstance(fit, GeneralizedLinearMixedModelResult):
        eta = np.asarray(fit.predict(frame, type="link", re_form=re_form), dtype=float)
        variance = _linear_variance(fit, frame)
        if scale == "response":
            inverse = fit.family.link.inverse
    elif isinstance(fit, LinearMixedModelResult):
        eta = np.asarray(fit.predict(frame, re_form=re_form), dtype=float)
        variance = _linear_variance(fit, frame)
    elif isinstance(fit, LmeResult):
        eta = np.asarray(fit.predict(frame, level=0 if _population(re_form) else None),
                         dtype=float)
        variance = _linear_variance(fit, frame)
    elif isinstance(fit, GlsResult):
        _population(re_form)  # checked; a gls fit has no random effects to include
        eta = np.asarray(fit.predict(frame), dtype=float)
        variance = _linear_variance(fit, frame)
    elif isinstance(fit, NlmeResult):
        eta, variance = _nlme_prediction(fit, frame, 0 if _population(re_form) else None)
    else:
        raise NotApplicableError(f"predictions applies to fits of lmer, glmer, lme, gls, nlme "
                                 f"and bayes, not to a {type(fit).__name__}")
    se = np.sqrt(np.maximum(variance, 0.0))
    q = stats.norm.ppf(0.5 + level / 2) if df is None else stats.t.ppf(0.5 + level / 2, df)
    low, high = eta - q * se, eta + q * se
    if inverse is not None:
        eta, low, high = (np.asarray(inverse(v), dtype=float) for v in (eta, low, high))
        # a decreasing inverse link (the Gamma family's 1 / eta) swaps the ends
        low, high = np.minimum(low, high), np.maximum(low, high)
    return frame.assign(estimate=eta, std_error=se, conf_low=low, conf_high=high)
