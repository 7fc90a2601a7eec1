"""The (restricted) log-likelihood of a linear model with random effects and nlme's residual
structures at given parameters, sigma included (not profiled out): what nlme's approximate
covariance of the variance parameters differentiates (``lmeApVar``, ``glsApVar``).

On the whitened rows (see :mod:`multilevel.models.whitening`) y* = X* beta + Z* b + e*,
e* ~ N(0, sigma^2 I), b ~ N(0, D). With Lambda Lambda' = D / sigma^2 and
M = I + Lambda' Z*' Z* Lambda, the marginal covariance V = sigma^2 (I + Z* Lambda Lambda' Z*')
has |V| = sigma^(2n) |M| and V^-1 = sigma^-2 (I - Z* Lambda M^-1 Lambda' Z*') (Woodbury), so
only q x q systems are solved (q the number of random effects: O(q^3), fine for the few
hundred levels nlme's fits have). beta is at its generalized least-squares estimate, and

    ML:   -n/2 log(2 pi) - 1/2 log|V| - 1/2 r' V^-1 r
    REML: -(n-p)/2 log(2 pi) - 1/2 log|V| - 1/2 log|X' V^-1 X| - 1/2 r' V^-1 r,

minus the whitening's Jacobian sum_g log|S_g C_g^{1/2}| for the data's own likelihood. At the
fitted sigma this equals nlme's profiled logLik (nlme's REML omits log|X'X|, as here).
"""

from __future__ import annotations

import math

import numpy as np


def gaussian_loglik(X: np.ndarray, y: np.ndarray, Z: np.ndarray | None,
                    Lambda: np.ndarray | None, sigma: float, reml: bool) -> float:
    """The log-likelihood above on whitened ``X``, ``y``, dense ``Z`` (n x q, or None for no
    random effects) and ``Lambda`` (q x q, the relative covariance factor)."""
    n, p = X.shape
    W = np.column_stack([X, y])
    G = W.T @ W
    logdet_m = 0.0
    if Z is not None and Lambda is not None and Z.shape[1]:
        ZL = Z @ Lambda
        M = np.eye(ZL.shape[1]) + ZL.T @ ZL
        c = np.linalg.cholesky(M)
        logdet_m = 2.0 * float(np.sum(np.log(np.diag(c))))
        B = np.linalg.solve(c, ZL.T @ W)
        G = G - B.T @ B
    # G = sigma^2 [X y]' V^-1 [X y]
    XtX, Xty, yty = G[:p, :p], G[:p, p], G[p, p]
    cx = np.linalg.cholesky(XtX)
    w = np.linalg.solve(cx, Xty)
    rss = float(yty - w @ w)
    s2 = sigma * sigma
    ll = -0.5 * n * math.log(2 * math.pi * s2) - 0.5 * logdet_m - 0.5 * rss / s2
    if reml:
        ll += 0.5 * p * math.log(2 * math.pi) - float(np.sum(np.log(np.diag(cx)))) \
            + 0.5 * p * math.log(s2)
    return ll
