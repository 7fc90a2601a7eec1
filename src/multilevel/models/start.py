"""Starting values for theta.

lme4 starts every relative factor at the identity (theta = 1 on the diagonal, 0 below). For
models whose random effects are all random intercepts (crossed or nested) a far better start
costs one pass over the residuals: for each grouping factor, the one-way random-effects ANOVA
estimate of its variance relative to the residual variance (Searle, Casella & McCulloch 1992,
sec. 3.5), computed from the ordinary least-squares residuals. From there BOBYQA needs a
third to a half of the evaluations (InstEval: 108 -> 29), which is what matters when one
evaluation factors a dense 1,000 x 1,000 block. The answer is the same optimum: the fit is
polished and checked at the end whatever the start (:mod:`multilevel.optim.convergence`).

The estimate is that of a random *intercept*: a level's effect shifts every one of its rows by
the same amount. A scalar term whose column varies over the rows (a slope-only term such as
``(0 + z | g)``) is not that model, and its ANOVA "estimate" can start the optimizer in the
wrong basin (a REML criterion of -21.4 where lme4's start reaches -467.7), so
:func:`anova_applies` admits only terms whose column is one constant (the intercept, or a
constant multiple of it, whose theta is the intercept's divided by the constant).
"""

from __future__ import annotations

import numpy as np

from multilevel.errors import MultilevelError
from multilevel.models.moments import CrossedFactors, variance_components

# Smallest start: a variance estimated as zero may still be positive at the optimum, and
# BOBYQA's first steps scale with the start.
MIN_START = 0.05
# BOBYQA's initial trust-region radius as a fraction of the start (NLopt's default, 0.75 of
# the distance to the bound, is made for lme4's start of 1 and overshoots a good start).
STEP_FRACTION = 0.1
MIN_STEP = 0.02


def intercept_constant(Z: np.ndarray) -> float | None:
    """The constant c when the single-column ``Z`` is c (non-zero, finite) in every row, else
    None: the term is then c times a random intercept."""
    if Z.shape[1] != 1 or Z.shape[0] == 0:
        return None
    c = float(Z[0, 0])
    if c == 0.0 or not np.isfinite(c) or not np.all(Z[:, 0] == c):
        return None
    return c


def anova_applies(Zs: list[np.ndarray]) -> bool:
    """True when every random-effects block is one (scaled) random intercept."""
    return all(intercept_constant(Z) is not None for Z in Zs)


def anova_start(X: np.ndarray, y: np.ndarray, codes: list[np.ndarray],
                weights: np.ndarray | None = None,
                constants: list[float] | None = None) -> np.ndarray | None:
    """sigma_b / sigma for each random-intercept grouping factor, from OLS residuals.

    Parameters
    ----------
    X, y : the fixed-effects matrix and the response (offset already removed)
    codes : per grouping factor, the level code of each row
    weights : prior weights, or None
    constants : per grouping factor, the constant value of its Z column (1 for an
        intercept; see :func:`intercept_constant`); all 1 when None

    Returns
    -------
    numpy.ndarray or None
        None when the estimate is not finite (data on a scale where the residual sums of
        squares overflow or vanish): the caller then uses lme4's start.
    """
    w = np.ones_like(y) if weights is None else weights
    cs = [1.0] * len(codes) if constants is None else constants
    # overflow and invalid values are detected on the result, not warned about on the way
    with np.errstate(all="ignore"):
        if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y)) and np.all(np.isfinite(w))):
            return None
        sw = np.sqrt(w)
        Xw, yw = X * sw[:, None], y * sw
        if not (np.all(np.isfinite(Xw)) and np.all(np.isfinite(yw))):
            return None
        try:
            beta = np.linalg.lstsq(Xw, yw, rcond=None)[0]
        except np.linalg.LinAlgError:
            return None
        r = y - X @ beta
        n_obs = float(w.sum())
        out = []
        for c, const in zip(codes, cs, strict=True):
            n = np.bincount(c, weights=w)
            groups = len(n)
            mean = np.bincount(c, weights=w * r) / np.where(n > 0, n, 1.0)
            msb = float(np.sum(n * mean**2)) / max(groups - 1, 1)
            msw = float(np.sum(w * (r - mean[c]) ** 2)) / max(n_obs - groups, 1.0)
            n0 = (n_obs - float(np.sum(n**2)) / n_obs) / max(groups - 1, 1)
            ratio = max((msb - msw) / (n0 * msw), 0.0) if msw > 0 and n0 > 0 else 1.0
            if not np.isfinite(ratio):  # max(nan, 0.0) is nan: checked, not assumed
                return None
            out.append(max(float(np.sqrt(ratio)) / abs(const), MIN_START))
    theta = np.array(out)
    return theta if np.all(np.isfinite(theta)) else None


def initial_step(start: np.ndarray) -> np.ndarray:
    """BOBYQA's initial step for a data-driven start."""
    return np.maximum(STEP_FRACTION * start, MIN_STEP)


def moments_start(X: np.ndarray, y: np.ndarray, codes: list[np.ndarray],
                  constants: list[float]) -> np.ndarray | None:
    """sigma_b / sigma for each random-intercept grouping factor from the Gao–Owen moment
    estimates of the OLS residuals (:mod:`multilevel.models.moments`), or None when they do
    not exist (one row per combination of levels, a non-finite result).

    Unlike the one-way ANOVA of :func:`anova_start`, the moment equations account for the
    other factors, so with crossed factors the start is close to the optimum (the 1 M-row
    comparison of docs/moments.md: within a few per cent); it costs a sort per pair of factors,
    which is worth it where one evaluation factors a block of many thousand levels."""
    with np.errstate(all="ignore"):
        try:
            beta = np.linalg.lstsq(X, y, rcond=None)[0]
        except np.linalg.LinAlgError:
            return None
        r = y - X @ beta
        names = [f"g{k}" for k in range(len(codes))]
        try:
            est = variance_components(r, CrossedFactors.from_codes(names, codes))
        except MultilevelError:
            return None
        if not est.sigma2_resid > 0:
            return None
        theta = np.sqrt(est.sigma2 / est.sigma2_resid) / np.abs(np.asarray(constants))
    theta = np.maximum(theta, MIN_START)
    return theta if np.all(np.isfinite(theta)) else None
