"""The response's part of the criterion (lme4's ``lmResp``): what turns the three numbers the
blocked Cholesky factor gives -- log|L_Z|^2, log|L_X|^2 and the penalized weighted residual
sum of squares r^2 -- into -2 log-likelihood.

For the Gaussian response with prior weights W (Bates et al. 2015, eqs. 34 and 41),

    -2 log L(theta, sigma) = log|L_Z|^2 - log|W| + m log(2 pi sigma^2) + r^2 / sigma^2
                             [+ log|L_X|^2 for REML],

with m = n (ML) or n - p (REML); profiling sigma out (sigma^2 = r^2 / m) gives the criterion
the optimizer sees, log|L_Z|^2 - log|W| + m (1 + log(2 pi r^2 / m)) [+ log|L_X|^2]. Every
caller -- the optimizer's objective, Satterthwaite's Hessian in (theta, sigma), the profile --
evaluates it here, once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class GaussianResponse:
    """The Gaussian response's constants in the criterion.

    Attributes
    ----------
    nobs : int
        Observations used (n).
    n_fixed : int
        Fixed-effects coefficients (p).
    log_det_w : float
        log|W|, the sum of the log prior weights (0 without weights).
    """

    nobs: int
    n_fixed: int
    log_det_w: float

    def criterion(self, logdet_re: float, logdet_x: float, pwrss: float, reml: bool,
                  sigma: float | None = None) -> float:
        """-2 log-likelihood (ML) or the REML criterion from the factor's three numbers;
        profiled over sigma when ``sigma`` is None, else at that residual SD. +Inf where it is
        undefined (no residual left, or no degrees of freedom)."""
        m = self.nobs - self.n_fixed if reml else self.nobs
        if pwrss <= 0 or m <= 0:
            return math.inf
        if sigma is not None:
            s2 = sigma * sigma
            value = logdet_re - self.log_det_w + m * math.log(2 * math.pi * s2) + pwrss / s2
            return value + logdet_x if reml else value
        # the same operations, in the same order, as the profiled criterion has always been
        # computed: the optimizer's path (and so lme4's printed digits) depends on the last bit
        if not reml:
            return logdet_re - self.log_det_w + m * (1 + math.log(2 * math.pi * pwrss / m))
        return (logdet_re + logdet_x - self.log_det_w
                + m * (1 + math.log(2 * math.pi * pwrss / m)))
