"""Starting values for theta.

lme4 starts every relative factor at the identity (theta = 1 on the diagonal, 0 below). For
models whose random effects are all scalar (random intercepts, crossed or nested) a far better
start costs one pass over the residuals: for each grouping factor, the one-way random-effects
ANOVA estimate of its variance relative to the residual variance (Searle, Casella & McCulloch
1992, sec. 3.5), computed from the ordinary least-squares residuals. From there BOBYQA needs a
third to a half of the evaluations (InstEval: 108 -> 29), which is what matters when one
evaluation factors a dense 1,000 x 1,000 block. The answer is the same optimum: the fit is
polished and checked at the end whatever the start (:mod:`multilevel.optim.convergence`).
"""

from __future__ import annotations

import numpy as np

# Smallest start: a variance estimated as zero may still be positive at the optimum, and
# BOBYQA's first steps scale with the start.
MIN_START = 0.05
# BOBYQA's initial trust-region radius as a fraction of the start (NLopt's default, 0.75 of
# the distance to the bound, is made for lme4's start of 1 and overshoots a good start).
STEP_FRACTION = 0.1
MIN_STEP = 0.02


def anova_start(X: np.ndarray, y: np.ndarray, codes: list[np.ndarray],
                weights: np.ndarray | None = None) -> np.ndarray:
    """sigma_b / sigma for each scalar grouping factor, from OLS residuals.

    Parameters
    ----------
    X, y : the fixed-effects matrix and the response (offset already removed)
    codes : per grouping factor, the level code of each row
    weights : prior weights, or None
    """
    w = np.ones_like(y) if weights is None else weights
    sw = np.sqrt(w)
    beta = np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)[0]
    r = y - X @ beta
    n_obs = float(w.sum())
    out = []
    for c in codes:
        n = np.bincount(c, weights=w)
        groups = len(n)
        mean = np.bincount(c, weights=w * r) / np.where(n > 0, n, 1.0)
        msb = float(np.sum(n * mean**2)) / max(groups - 1, 1)
        msw = float(np.sum(w * (r - mean[c]) ** 2)) / max(n_obs - groups, 1.0)
        n0 = (n_obs - float(np.sum(n**2)) / n_obs) / max(groups - 1, 1)
        ratio = max((msb - msw) / (n0 * msw), 0.0) if msw > 0 and n0 > 0 else 1.0
        out.append(max(float(np.sqrt(ratio)), MIN_START))
    return np.array(out)


def initial_step(start: np.ndarray) -> np.ndarray:
    """BOBYQA's initial step for a data-driven start."""
    return np.maximum(STEP_FRACTION * start, MIN_STEP)
