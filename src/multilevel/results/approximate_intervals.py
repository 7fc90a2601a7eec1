"""nlme's approximate intervals for the variance-covariance parameters (``intervals.lme``,
``intervals.gls``, ``intervals.nlme``): the covariance of the estimates on an unconstrained
working scale is the inverse of minus the numerical Hessian of the (restricted) log-likelihood
there, with sigma a parameter of its own (log sigma) rather than profiled out (nlme's
``apVar``); Wald intervals on that scale are mapped back to the natural one.

The working scale of the random effects' covariance is nlme's ``pdNatural``: the log standard
deviations, then log((1 + r) / (1 - r)) of each correlation (pairs (1,2), (1,3), ..., (2,3),
... in that order); of the variance functions and correlation structures, their own
unconstrained coefficients (a general correlation, ``corSymm``, also on the pdNatural scale of
its correlations).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from multilevel.errors import NotApplicableError
from multilevel.results.summary import _layout, _named_vector, r_format

# Relative step of the central differences: large enough that the rounding noise of a
# log-likelihood of size ~1e3 stays below 1e-6 of a Hessian entry, small enough that the
# truncation error (step^2) does too.
REL_STEP = 1e-4

COLUMNS = ["lower", "est.", "upper"]


def numerical_hessian(f: Callable[[np.ndarray], float], x: np.ndarray,
                      rel_step: float = REL_STEP) -> np.ndarray:
    """Hessian of ``f`` at ``x`` by central differences, steps ``rel_step * max(|x_i|, 1)``."""
    x = np.asarray(x, dtype=float)
    k = x.size
    h = rel_step * np.maximum(np.abs(x), 1.0)
    f0 = f(x)
    H = np.empty((k, k))
    for i in range(k):
        ei = np.zeros(k)
        ei[i] = h[i]
        H[i, i] = (f(x + ei) - 2.0 * f0 + f(x - ei)) / h[i] ** 2
        for j in range(i):
            ej = np.zeros(k)
            ej[j] = h[j]
            H[i, j] = H[j, i] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej)
                                 + f(x - ei - ej)) / (4.0 * h[i] * h[j])
    return H


def approximate_covariance(loglik: Callable[[np.ndarray], float], pars: np.ndarray,
                           ) -> np.ndarray:
    """nlme's ``apVar``: the inverse of minus the Hessian of ``loglik`` at its maximum
    ``pars`` (working scale). A Hessian that is not negative definite (a fit on a boundary,
    where the working scale runs off to infinity) raises NotApplicableError, as nlme refuses
    the intervals then."""
    H = numerical_hessian(loglik, pars)
    H = 0.5 * (H + H.T)
    if not np.all(np.linalg.eigvalsh(H) < 0):
        raise NotApplicableError(
            "the approximate covariance of the variance-covariance parameters is not positive "
            "definite (the fit is probably on a boundary, e.g. a variance or a correlation "
            "parameter at its limit), so there are no approximate intervals for them; use "
            "intervals(which='fixed'), or simplify the model")
    return np.linalg.inv(-H)


def wald_limits(est: np.ndarray, se: np.ndarray, quantile: float) -> np.ndarray:
    """(lower, estimate, upper) rows: est -/+ quantile * se."""
    est = np.asarray(est, dtype=float)
    return np.column_stack([est - quantile * se, est, est + quantile * se])


def normal_quantile(level: float) -> float:
    """The two-sided standard normal quantile for ``level``."""
    return float(stats.norm.ppf(0.5 + level / 2.0))


def interval_frame(rows: np.ndarray, names: list[str]) -> pd.DataFrame:
    """A (lower, est., upper) DataFrame, as nlme names the columns."""
    return pd.DataFrame(np.asarray(rows, dtype=float).reshape(-1, 3), index=names,
                        columns=COLUMNS)


def natural_from_covariance(D: np.ndarray) -> np.ndarray:
    """nlme's ``pdNatural`` coefficients of a covariance matrix: log SDs, then
    log((1 + r) / (1 - r)) of the correlations, pairs in the order (1,2), (1,3), ..., (2,3)."""
    sd = np.sqrt(np.diag(D))
    R = D / np.outer(sd, sd)
    iu = np.triu_indices(D.shape[0], 1)
    r = np.clip(R[iu], -1 + 1e-15, 1 - 1e-15)
    return np.concatenate([np.log(sd), np.log((1 + r) / (1 - r))])


def covariance_from_natural(v: np.ndarray, k: int) -> np.ndarray:
    """The covariance matrix of ``k`` effects from its pdNatural coefficients."""
    sd = np.exp(v[:k])
    R = np.eye(k)
    iu = np.triu_indices(k, 1)
    R[iu] = np.tanh(v[k:] / 2.0)
    R[(iu[1], iu[0])] = R[iu]
    return R * np.outer(sd, sd)


def natural_to_sdcor(v: np.ndarray, k: int) -> np.ndarray:
    """pdNatural coefficients (or interval limits on their scale) as SDs and correlations."""
    return np.concatenate([np.exp(v[:k]), np.tanh(np.asarray(v[k:]) / 2.0)])


def sdcor_names(columns: list[str]) -> list[str]:
    """nlme's names of the SDs and correlations of one random-effects term:
    ``sd((Intercept))``, ``sd(age)``, ``cor((Intercept),age)``."""
    k = len(columns)
    return ([f"sd({c})" for c in columns]
            + [f"cor({columns[i]},{columns[j]})" for i in range(k) for j in range(i + 1, k)])


_LABELS = {"fixed": "Fixed effects:", "coef": "Coefficients:",
           "corStruct": "Correlation structure:", "varStruct": "Variance function:"}


class ApproximateIntervals(dict[str, Any]):
    """What ``intervals()`` returns: a dict of (lower, est., upper) tables, keyed as nlme's
    (``fixed`` or ``coef``, ``reStruct`` (factor -> table), ``corStruct``, ``varStruct``,
    ``sigma``); ``str()`` prints nlme's ``print(intervals(fit))`` layout."""

    def __init__(self, values: dict[str, Any], level: float, mixed: bool) -> None:
        super().__init__(values)
        self.level = level
        self.mixed = mixed

    def __str__(self) -> str:
        lines = [f"Approximate {100 * self.level:g}% confidence intervals"]
        for key, value in self.items():
            if key == "reStruct":
                lines += ["", " Random Effects:"]
                for group, table in value.items():
                    # nlme names a nested level by its own factor (Variety, not Variety:Block)
                    lines += [f"  Level: {group.split(':')[0]} ", *_matrix_lines(table)]
            elif key == "sigma":
                lines += ["", " Within-group standard error:" if self.mixed
                          else " Residual standard error:"]
                lines += _named_vector(list(value.index), r_format(value.to_numpy(), 7))
            else:
                lines += ["", f" {_LABELS.get(key, key)}", *_matrix_lines(value)]
        return "\n".join(lines)


def _matrix_lines(table: pd.DataFrame) -> list[str]:
    """A numeric matrix as R prints it: each column formatted on its own (7 digits), names
    right-aligned over the columns, row names left-aligned."""
    cols = [r_format(table[c].to_numpy(dtype=float), 7) for c in table.columns]
    rows = [[str(name), *(col[i] for col in cols)] for i, name in enumerate(table.index)]
    return _layout(["", *map(str, table.columns)], rows, "l" + "r" * len(cols))
