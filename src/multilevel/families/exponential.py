"""The exponential-dispersion families of R's ``glm``: Gaussian, binomial, Poisson, Gamma and
inverse Gaussian.

Deviance residuals, starting values and variance functions follow R's ``family`` objects; the
log-likelihood terms are the densities that R's ``dnorm``, ``dbinom``, ``dpois`` and ``dgamma``
evaluate (and the inverse-Gaussian density written out), with the prior weights as described in
:mod:`multilevel.families.family`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from multilevel.errors import ArgumentError, DataError
from multilevel.families.family import (
    Family,
    FloatArray,
    as_float,
    prior_weights,
    quote_rows,
)

LOG_2PI = float(np.log(2.0 * np.pi))


def y_log_y_over_mu(y: FloatArray, mu: FloatArray) -> FloatArray:
    """y log(y / mu), taken as 0 where y = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0) / mu), 0.0)


def _is_integer(x: FloatArray) -> NDArray[np.bool_]:
    # R's glm tolerance for "integer-valued" (binomial successes, Poisson counts)
    return np.abs(x - np.round(x)) <= 1e-7 * np.maximum(1.0, np.abs(x))


@dataclass(frozen=True)
class Gaussian(Family):
    """Normal responses, Var(y) = dispersion / wt."""

    name: ClassVar[str] = "gaussian"
    default_link: ClassVar[str] = "identity"
    allowed_links: ClassVar[tuple[str, ...]] = ("identity", "log", "inverse")
    has_dispersion: ClassVar[bool] = True

    def variance(self, mu: ArrayLike) -> FloatArray:
        return np.ones_like(as_float(mu))

    def dev_resids(self, y: ArrayLike, mu: ArrayLike, wt: ArrayLike | None = None) -> FloatArray:
        y, mu = as_float(y), as_float(mu)
        return prior_weights(wt, y.shape[0]) * (y - mu) ** 2

    def _log_density(self, y: FloatArray, mu: FloatArray, wt: FloatArray,
                     dispersion: float) -> FloatArray:
        var = dispersion / wt
        return -0.5 * (LOG_2PI + np.log(var) + (y - mu) ** 2 / var)

    def _draw(self, mu: FloatArray, wt: FloatArray, dispersion: float,
              rng: np.random.Generator) -> FloatArray:
        return rng.normal(mu, np.sqrt(dispersion / wt))

    def _latent_variance(self, mu: float | None, dispersion: float | None,
                         method: str) -> float:
        if self.link.name != "identity":
            return super()._latent_variance(mu, dispersion, method)
        return self._dispersion(dispersion)


@dataclass(frozen=True)
class Binomial(Family):
    """Proportions of successes ``y`` in ``wt`` trials (0/1 responses: ``wt`` = 1)."""

    name: ClassVar[str] = "binomial"
    default_link: ClassVar[str] = "logit"
    allowed_links: ClassVar[tuple[str, ...]] = ("logit", "probit", "cauchit", "log", "cloglog")

    def variance(self, mu: ArrayLike) -> FloatArray:
        mu = as_float(mu)
        return mu * (1.0 - mu)

    def valid_mu(self, mu: ArrayLike) -> bool:
        mu = as_float(mu)
        return bool(np.all(np.isfinite(mu)) and np.all((mu > 0) & (mu < 1)))

    def dev_resids(self, y: ArrayLike, mu: ArrayLike, wt: ArrayLike | None = None) -> FloatArray:
        y, mu = as_float(y), as_float(mu)
        w = prior_weights(wt, y.shape[0])
        return 2.0 * w * (y_log_y_over_mu(y, mu) + y_log_y_over_mu(1.0 - y, 1.0 - mu))

    def _log_density(self, y: FloatArray, mu: FloatArray, wt: FloatArray,
                     dispersion: float) -> FloatArray:
        # R's binomial()$aic: successes round(wt * y) out of round(wt) trials
        n = np.round(wt)
        k = np.round(wt * y)
        return (special.gammaln(n + 1.0) - special.gammaln(k + 1.0)
                - special.gammaln(n - k + 1.0)
                + special.xlogy(k, mu) + special.xlog1py(n - k, -mu))

    def mustart(self, y: ArrayLike, wt: ArrayLike | None = None) -> FloatArray:
        y = as_float(y)
        w = prior_weights(wt, y.shape[0])
        # R's binomial()$initialize: pulled half a success towards 1/2, so never 0 or 1
        return (w * np.where(w == 0, 0.0, y) + 0.5) / (w + 1.0)

    def _validate(self, y: FloatArray, wt: ArrayLike | None, column: str,
                  labels: ArrayLike | None) -> None:
        bad = (y < 0) | (y > 1)
        if bad.any():
            what = "proportions" if wt is not None else "0/1 values or proportions"
            raise DataError(
                f"the response {column!r} of a binomial model must be {what} in [0, 1]: "
                f"{quote_rows(bad, y, labels)}. For counts of successes, give cbind(successes, "
                "failures) as the response, or the proportion with weights= the trials")
        if wt is not None:
            w = prior_weights(wt, y.shape[0])
            bad = w <= 0
            if bad.any():
                raise DataError(
                    f"the weights of a binomial model are the numbers of trials and must be "
                    f"positive: {quote_rows(bad, w, labels)}. Drop the rows with no trials")
        # R's binomial()$initialize warns "non-integer #successes" at this tolerance; its
        # log-likelihood rounds the successes, so such a fit's likelihood would be another
        # response's: refused here
        successes = prior_weights(wt, y.shape[0]) * y
        bad = np.abs(successes - np.round(successes)) > 1e-3
        if bad.any():
            if wt is None:
                raise DataError(
                    f"the response {column!r} of a binomial model must be 0/1 (or a "
                    f"proportion with weights= the numbers of trials), but has proportions "
                    f"without weights: {quote_rows(bad, y, labels)}. Give weights= the trials "
                    "behind each proportion, or cbind(successes, failures) as the response")
            raise DataError(
                f"the response {column!r} of a binomial model times its weights (the numbers "
                f"of trials) must be whole numbers of successes, but is not in "
                f"{quote_rows(bad, successes, labels)}. Check that the weights are the "
                "numbers of trials behind each proportion")
        one_outcome(y, column, "binomial model", ((0.0, "0 (failure)"), (1.0, "1 (success)")))

    def _draw(self, mu: FloatArray, wt: FloatArray, dispersion: float,
              rng: np.random.Generator) -> FloatArray:
        trials = np.round(wt).astype(np.int64)
        if np.any(trials < 1):
            raise ArgumentError("binomial draws need positive integer numbers of trials "
                                "as weights")
        return rng.binomial(trials, np.clip(mu, 0.0, 1.0)) / trials

    def _latent_variance(self, mu: float | None, dispersion: float | None,
                         method: str) -> float:
        # The variance of the standard logistic, normal and Gumbel (minimum) distributions
        # whose distribution functions are the inverse links (Nakagawa & Schielzeth 2013;
        # Nakagawa, Johnson & Schielzeth 2017).
        fixed = {"logit": np.pi ** 2 / 3.0, "probit": 1.0, "cloglog": np.pi ** 2 / 6.0}
        if self.link.name not in fixed:
            return super()._latent_variance(mu, dispersion, method)
        return float(fixed[self.link.name])


def one_outcome(y: FloatArray, column: str, model: str,
                edges: tuple[tuple[float, str], ...]) -> None:
    """Refuse a response that sits at one edge of the mean space in every row: the intercept
    would run off to infinity (the data are separated by the intercept alone)."""
    for value, name in edges:
        if y.shape[0] and np.all(y == value):
            raise DataError(
                f"the response {column!r} is {name} in all {y.shape[0]} rows used: a {model} "
                "of it has no finite estimates (the intercept diverges). Check the response "
                "column and the rows kept")


def count_check(family: str, y: FloatArray, column: str, labels: ArrayLike | None) -> None:
    bad = y < 0
    if bad.any():
        raise DataError(f"the response {column!r} of a {family} model must be counts, "
                        f"but has negative values: {quote_rows(bad, y, labels)}")
    bad = ~_is_integer(y)
    if bad.any():
        raise DataError(f"the response {column!r} of a {family} model must be whole counts, "
                        f"but has non-integer values: {quote_rows(bad, y, labels)}. For rates, "
                        "model the counts with offset=log(exposure)")
    one_outcome(y, column, f"{family} model", ((0.0, "0"),))


def log_link_latent(mu: float, extra: float, method: str) -> float:
    """Nakagawa, Johnson & Schielzeth (2017), Table 1, log link: the latent residual variance
    of a count with mean mu and squared coefficient of variation 1/mu + extra (extra = 1/theta
    for the negative binomial, 0 for the Poisson)."""
    cv2 = 1.0 / mu + extra
    if method == "lognormal":
        return float(np.log1p(cv2))
    if method == "delta":
        return float(cv2)
    return float(special.polygamma(1, 1.0 / cv2))


@dataclass(frozen=True)
class Poisson(Family):
    """Counts with Var(y) = mu."""

    name: ClassVar[str] = "poisson"
    default_link: ClassVar[str] = "log"
    allowed_links: ClassVar[tuple[str, ...]] = ("log", "identity", "sqrt")
    positive_mean: ClassVar[bool] = True

    def variance(self, mu: ArrayLike) -> FloatArray:
        return as_float(mu).copy()

    def dev_resids(self, y: ArrayLike, mu: ArrayLike, wt: ArrayLike | None = None) -> FloatArray:
        y, mu = as_float(y), as_float(mu)
        w = prior_weights(wt, y.shape[0])
        return 2.0 * w * (y_log_y_over_mu(y, mu) - (y - mu))

    def _log_density(self, y: FloatArray, mu: FloatArray, wt: FloatArray,
                     dispersion: float) -> FloatArray:
        return wt * (special.xlogy(y, mu) - mu - special.gammaln(y + 1.0))

    def mustart(self, y: ArrayLike, wt: ArrayLike | None = None) -> FloatArray:
        return as_float(y) + 0.1

    def _validate(self, y: FloatArray, wt: ArrayLike | None, column: str,
                  labels: ArrayLike | None) -> None:
        count_check("poisson", y, column, labels)

    def _draw(self, mu: FloatArray, wt: FloatArray, dispersion: float,
              rng: np.random.Generator) -> FloatArray:
        return rng.poisson(mu).astype(np.float64)

    def _latent_variance(self, mu: float | None, dispersion: float | None,
                         method: str) -> float:
        if self.link.name == "log":
            return log_link_latent(self._need_mu(mu), 0.0, method)
        if self.link.name == "sqrt":
            # the delta method: Var(sqrt(y)) ~ 1/4 whatever mu (Nakagawa et al. 2017)
            return 0.25
        return super()._latent_variance(mu, dispersion, method)


def positive_check(family: str, y: FloatArray, column: str, labels: ArrayLike | None) -> None:
    bad = y <= 0
    if bad.any():
        article = "an" if family[0].lower() in "aeiou" else "a"
        raise DataError(f"the response {column!r} of {article} {family} model must be positive: "
                        f"{quote_rows(bad, y, labels)}. Drop those rows, or choose a family "
                        "that allows zeros")
    if y.shape[0] > 1 and np.all(y == y[0]):
        raise DataError(f"the response {column!r} is {y[0]:.6g} in every row used: the "
                        f"dispersion of {family} responses that never vary is 0, and the model "
                        "has no maximum")


@dataclass(frozen=True)
class Gamma(Family):
    """Positive responses with Var(y) = dispersion mu^2 / wt (shape wt / dispersion)."""

    name: ClassVar[str] = "Gamma"
    default_link: ClassVar[str] = "inverse"
    allowed_links: ClassVar[tuple[str, ...]] = ("inverse", "identity", "log")
    positive_mean: ClassVar[bool] = True
    has_dispersion: ClassVar[bool] = True

    def variance(self, mu: ArrayLike) -> FloatArray:
        return as_float(mu) ** 2

    def dev_resids(self, y: ArrayLike, mu: ArrayLike, wt: ArrayLike | None = None) -> FloatArray:
        y, mu = as_float(y), as_float(mu)
        w = prior_weights(wt, y.shape[0])
        with np.errstate(divide="ignore"):
            log_ratio = np.log(np.where(y == 0, 1.0, y / mu))
        return -2.0 * w * (log_ratio - (y - mu) / mu)

    def _log_density(self, y: FloatArray, mu: FloatArray, wt: FloatArray,
                     dispersion: float) -> FloatArray:
        shape = wt / dispersion
        scale = mu / shape
        return (-special.gammaln(shape) - shape * np.log(scale)
                + (shape - 1.0) * np.log(y) - y / scale)

    def _validate(self, y: FloatArray, wt: ArrayLike | None, column: str,
                  labels: ArrayLike | None) -> None:
        positive_check("Gamma", y, column, labels)

    def _draw(self, mu: FloatArray, wt: FloatArray, dispersion: float,
              rng: np.random.Generator) -> FloatArray:
        shape = wt / dispersion
        return rng.gamma(shape, mu / shape)

    def _latent_variance(self, mu: float | None, dispersion: float | None,
                         method: str) -> float:
        if self.link.name != "log":
            return super()._latent_variance(mu, dispersion, method)
        # The squared coefficient of variation of a Gamma is 1/shape = the dispersion
        # (Nakagawa et al. 2017, Table 1: ln(1 + 1/nu), 1/nu, trigamma(nu)).
        cv2 = self._dispersion(dispersion)
        if method == "lognormal":
            return float(np.log1p(cv2))
        if method == "delta":
            return cv2
        return float(special.polygamma(1, 1.0 / cv2))


@dataclass(frozen=True)
class InverseGaussian(Family):
    """Positive responses with Var(y) = dispersion mu^3 / wt (lambda = wt / dispersion)."""

    name: ClassVar[str] = "inverse.gaussian"
    default_link: ClassVar[str] = "1/mu^2"
    allowed_links: ClassVar[tuple[str, ...]] = ("1/mu^2", "inverse", "identity", "log")
    has_dispersion: ClassVar[bool] = True

    def variance(self, mu: ArrayLike) -> FloatArray:
        return as_float(mu) ** 3

    def dev_resids(self, y: ArrayLike, mu: ArrayLike, wt: ArrayLike | None = None) -> FloatArray:
        y, mu = as_float(y), as_float(mu)
        w = prior_weights(wt, y.shape[0])
        return w * (y - mu) ** 2 / (y * mu ** 2)

    def _log_density(self, y: FloatArray, mu: FloatArray, wt: FloatArray,
                     dispersion: float) -> FloatArray:
        lam = wt / dispersion
        return (0.5 * (np.log(lam) - LOG_2PI - 3.0 * np.log(y))
                - lam * (y - mu) ** 2 / (2.0 * mu ** 2 * y))

    def _validate(self, y: FloatArray, wt: ArrayLike | None, column: str,
                  labels: ArrayLike | None) -> None:
        positive_check("inverse Gaussian", y, column, labels)

    def _draw(self, mu: FloatArray, wt: FloatArray, dispersion: float,
              rng: np.random.Generator) -> FloatArray:
        return rng.wald(mu, wt / dispersion)
