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
from dataclasses import dataclass, field, replace

import numpy as np

from multilevel.families.family import Family


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


# Canonical links, for which the observed and expected information coincide.
_CANONICAL = {"binomial": "logit", "poisson": "log", "Gamma": "inverse",
              "inverse.gaussian": "1/mu^2", "gaussian": "identity"}


@dataclass(frozen=True)
class GLMResponse:
    """A generalized linear response (lme4's ``glmResp``): the family, the data it sees, and
    the family parameter currently in force.

    Given the linear predictor eta, the conditional distribution of y is the family's with
    mean mu = g^-1(eta). PIRLS needs the working weights and residuals (Fisher scoring); the
    criterion needs the conditional log-likelihood, saturated constants included, so that
    -2 log L is the true one (lme4's Laplace deviance is the same number; its nAGQ > 1
    deviance leaves the constants out).

    Attributes
    ----------
    family : Family
        With its parameter set (the negative binomial's size theta).
    y : numpy.ndarray
        The response (proportions for a binomial with trials as weights).
    prior_weights : numpy.ndarray
        Ones when none were given; for the binomial the numbers of trials.
    offset : numpy.ndarray
        Zeros when none was given.
    dispersion : float
        phi for a family with a dispersion parameter (Gamma, inverse Gaussian, Gaussian with a
        non-identity link); 1 otherwise.
    saturated : numpy.ndarray or None
        Per-row log p(y | mu) + dev(y, mu) / 2 when it does not depend on mu (see
        :meth:`with_saturated`).
    binary : numpy.ndarray or None
        For a binomial response of 0s and 1s, y == 1 (set on creation).
    """

    family: Family
    y: np.ndarray
    prior_weights: np.ndarray
    offset: np.ndarray
    dispersion: float = 1.0
    saturated: np.ndarray | None = field(default=None, repr=False, compare=False)
    binary: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.family.name == "binomial" and self.binary is None and bool(
                np.all((self.y == 0.0) | (self.y == 1.0))):
            object.__setattr__(self, "binary", self.y == 1.0)

    def mu(self, eta: np.ndarray) -> np.ndarray:
        """The conditional mean g^-1(eta)."""
        return self.family.link.inverse(eta)

    def valid(self, eta: np.ndarray, mu: np.ndarray) -> bool:
        """Whether eta is in the link's domain and mu in the family's mean space."""
        return (bool(np.all(np.isfinite(eta))) and self.family.link.valid_eta(eta)
                and self.family.valid_mu(mu))

    def working(self, eta: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Square roots of the working weights wt mu'(eta)^2 / (phi V(mu)) and the working
        residuals (y - mu) / mu'(eta) at eta."""
        d = self.family.link.mu_eta(eta)
        w = self.prior_weights * d * d / (self.family.variance(mu) * self.dispersion)
        return np.sqrt(w), (self.y - mu) / d

    def newton_working(self, eta: np.ndarray, mu: np.ndarray,
                       ) -> tuple[np.ndarray, np.ndarray, bool]:
        """Square roots of the observed-information weights, the working residuals
        score / weight, and True: a Newton step, which converges quadratically for any link
        (Fisher scoring only for canonical ones, where the two coincide). Where some observed
        weight is not positive, the Fisher values of :meth:`working` and False (linear
        convergence). Either way the fixed point is the same: the working residual is the
        score over the weight."""
        fisher_sqrt, resid = self.working(eta, mu)
        if self.family.link.name == _CANONICAL.get(self.family.name):
            return fisher_sqrt, resid, True
        w = self.observed_weights(eta, mu)
        if not np.all(w > 0):
            return fisher_sqrt, resid, False
        # the score with respect to eta is fisher * resid; over the observed weight
        return np.sqrt(w), fisher_sqrt * fisher_sqrt * resid / w, True

    def observed_weights(self, eta: np.ndarray, mu: np.ndarray) -> np.ndarray:
        """The observed information -d^2 log p(y | eta) / d eta^2 per observation.

        The Fisher weight minus wt (y - mu) / phi times d/d eta [mu'(eta) / V(mu)], the latter
        by a central difference (its relative error, ~1e-10, is far below what the
        log-determinant it enters needs). Equal to the Fisher weight for a canonical link."""
        link, fam = self.family.link, self.family
        h = 1e-5 * np.maximum(1.0, np.abs(eta))

        def ratio(e: np.ndarray) -> np.ndarray:
            return link.mu_eta(e) / fam.variance(link.inverse(e))

        slope = (ratio(eta + h) - ratio(eta - h)) / (2.0 * h)
        d = link.mu_eta(eta)
        fisher = d * d / fam.variance(mu)
        return self.prior_weights * (fisher - (self.y - mu) * slope) / self.dispersion

    def deviance(self, mu: np.ndarray) -> float:
        """The deviance divided by phi: -2 log L up to a constant in mu (PIRLS's yardstick)."""
        return float(self._dev_resids(mu).sum() / self.dispersion)

    def _dev_resids(self, mu: np.ndarray) -> np.ndarray:
        """The family's deviance residuals; for a 0/1 binomial response the same numbers as
        -2 wt log(mu or 1 - mu), one logarithm per row instead of the general formula's
        two (the binary GLMM's PIRLS evaluates this at every step)."""
        if self.binary is not None:
            return -2.0 * self.prior_weights * np.log(np.where(self.binary, mu, 1.0 - mu))
        return self.family.dev_resids(self.y, mu, self.prior_weights)

    def loglik_terms(self, mu: np.ndarray) -> np.ndarray:
        """log p(y_i | mu_i), saturated constants included."""
        if self.saturated is not None:
            return self.saturated - 0.5 * self._dev_resids(mu)
        return self.family.log_likelihood(
            self.y, mu, self.prior_weights,
            self.dispersion if self.family.has_dispersion else None)

    def with_saturated(self) -> GLMResponse:
        """This response with the per-row constants log p(y | mu) + dev(y, mu) / 2 cached,
        when they do not depend on mu: then log p = constant - deviance / 2 costs no
        log-gamma per evaluation. Checked at two means (it fails, e.g., for a binomial whose
        successes wt * y are not whole numbers, which R's log-likelihood rounds); the
        response is returned unchanged where the check fails or the family has a
        dispersion."""
        if self.family.has_dispersion:
            return self
        fam, y, wt = self.family, self.y, self.prior_weights
        probes = [fam.mustart(y, wt), 0.5 * (fam.mustart(y, wt) + float(np.average(y)))]
        consts = []
        for mu in probes:
            if not fam.valid_mu(mu):
                return self
            consts.append(fam.log_likelihood(y, mu, wt) + 0.5 * fam.dev_resids(y, mu, wt))
        scale = 1e-9 * (1.0 + np.abs(consts[0]))
        if not np.all(np.abs(consts[0] - consts[1]) <= scale):
            return self
        return replace(self, saturated=consts[0])

    def loglik(self, mu: np.ndarray) -> float:
        """The conditional log-likelihood sum_i log p(y_i | mu_i)."""
        return float(self.loglik_terms(mu).sum())

    @staticmethod
    def criterion(logdet_re: float, sum_u2: float, loglik: float) -> float:
        """The Laplace approximation to -2 log L: -2 log p(y | u) + |u|^2 + log|L_Z|^2
        (Bates et al. 2015, the GLMM extension of eq. 34)."""
        return -2.0 * loglik + sum_u2 + logdet_re
