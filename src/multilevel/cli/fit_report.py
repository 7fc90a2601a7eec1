"""What ``multilevel gls / lme / nlme`` print: the fit's ``summary()`` (nlme's layout), and for
``--json`` its ``to_dict()`` where the result has one, else the result vocabulary every fit
shares (``fixef``, ``coef_table()`` or ``vcov``, ``loglik``, ``aic``, ``bic``, ``sigma``,
``varcorr``, the structures' natural-scale parameters).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

TITLES = {"GlsResult": "Generalized least squares fit",
          "LmeResult": "Linear mixed-effects model fit",
          "NlmeResult": "Nonlinear mixed-effects model fit"}


def summary_text(fit: Any) -> str:
    """The fit's printed summary, ending in a newline."""
    text = str(fit.summary())
    return text if text.endswith("\n") else text + "\n"


def fit_dict(fit: Any) -> dict[str, Any]:
    """The fit as JSON-ready data: its ``to_dict()``, or the shared vocabulary."""
    to_dict = getattr(fit, "to_dict", None)
    if callable(to_dict):
        return dict(to_dict())
    table = coefficients(fit)
    out: dict[str, Any] = {
        "model": _title(fit), "method": fit.method, "nobs": nobs(fit),
        "loglik": fit.loglik, "aic": fit.aic, "bic": fit.bic, "n_params": fit.n_params,
        "sigma": fit.sigma, "fixef": {str(k): float(v) for k, v in fit.fixef.items()},
        "coef_table": {str(name): {str(c): _plain(v) for c, v in row.items()}
                       for name, row in table.iterrows()},
    }
    varcorr = getattr(fit, "varcorr", None)
    if isinstance(varcorr, pd.DataFrame):
        out["varcorr"] = [{str(c): _plain(v) for c, v in row.items()}
                          for _, row in varcorr.iterrows()]
    for name in ("variance_parameters", "correlation_parameters"):
        values = getattr(fit, name, None)
        if values is not None:
            out[name] = [_plain(v) for v in np.asarray(values, dtype=float).ravel()]
    return {k: _plain(v) for k, v in out.items()}


def coefficients(fit: Any) -> pd.DataFrame:
    """The fixed-effects table: ``coef_table()`` where the result has one, else estimates and
    standard errors from ``vcov`` with their z ratios."""
    table = getattr(fit, "coef_table", None)
    if callable(table):
        out: pd.DataFrame = table()
        return out
    names = list(fit.fixef.index)
    se = np.sqrt(np.diag(fit.vcov.loc[names, names].to_numpy()))
    estimate = fit.fixef.to_numpy(dtype=float)
    return pd.DataFrame({"estimate": estimate, "std_error": se, "statistic": estimate / se},
                        index=fit.fixef.index)


def nobs(fit: Any) -> int | None:
    """Number of observations, from the result or the linear mixed model inside it."""
    for holder in (fit, getattr(fit, "fit", None), getattr(fit, "lme", None)):
        value = getattr(holder, "nobs", None)
        if isinstance(value, int | np.integer):
            return int(value)
    return None


def _title(fit: Any) -> str:
    return TITLES.get(type(fit).__name__, type(fit).__name__)


def _plain(value: Any) -> Any:
    """A JSON value: numpy scalars as Python's, NaN and missing as null."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or value is pd.NA:
        return None
    return value
