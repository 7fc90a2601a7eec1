"""The negative binomial of type 2 (NB2): counts with Var(y) = mu + mu^2 / theta.

theta is the size (R's ``dnbinom(size = theta)``, glmmTMB's ``nbinom2``, lme4's ``glmer.nb``,
MASS's ``negative.binomial(theta)``). It is a parameter of its own rather than a dispersion:
given theta the family is a one-parameter exponential family, which is how the model fits it
(PIRLS with theta held fixed, theta optimised outside). ``theta=None`` marks a family whose
theta is still to be estimated; anything that needs theta then raises an ``ArgumentError``
until :meth:`NegativeBinomial.with_theta` supplies one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from numbers import Real
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from multilevel.errors import ArgumentError
from multilevel.families.exponential import count_check, log_link_latent, y_log_y_over_mu
from multilevel.families.family import Family, FloatArray, as_float, prior_weights


@dataclass(frozen=True)
class NegativeBinomial(Family):
    """NB2 counts: Var(y) = mu + mu^2 / theta.

    Parameters
    ----------
    link : str or Link, optional
        ``"log"`` (default), ``"identity"`` or ``"sqrt"``.
    theta : float or None, keyword
        The size, > 0; None (default) means the model estimates it.
    """

    theta: float | None = None

    name: ClassVar[str] = "negative.binomial"
    default_link: ClassVar[str] = "log"
    allowed_links: ClassVar[tuple[str, ...]] = ("log", "identity", "sqrt")
    positive_mean: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if isinstance(self.link, Real):  # NegativeBinomial(2): theta meant, link given
            raise ArgumentError(f"NegativeBinomial's first argument is the link; give the size "
                                f"by name: NegativeBinomial(theta={self.link!r})")
        theta = self.theta
        if theta is not None:
            if isinstance(theta, bool) or not isinstance(theta, Real) \
                    or not np.isfinite(theta) or theta <= 0:
                raise ArgumentError(f"the negative binomial's theta must be a positive, finite "
                                    f"number or None (to be estimated), got theta={theta!r}")
            object.__setattr__(self, "theta", float(theta))
        super().__post_init__()

    def __str__(self) -> str:
        size = "theta estimated" if self.theta is None else f"theta={self.theta:g}"
        return f"{self.name}({self.link.name}, {size})"

    def with_theta(self, theta: float) -> NegativeBinomial:
        """The same family with its size set to ``theta``."""
        return replace(self, theta=theta)

    @property
    def size(self) -> float:
        """theta, or an ``ArgumentError`` while it is still to be estimated."""
        if self.theta is None:
            raise ArgumentError("the negative binomial's theta is not set (theta=None means it "
                                "is to be estimated by the model); use with_theta(value) or "
                                "NegativeBinomial(theta=value)")
        return self.theta

    def variance(self, mu: ArrayLike) -> FloatArray:
        mu = as_float(mu)
        return mu + mu ** 2 / self.size

    def dev_resids(self, y: ArrayLike, mu: ArrayLike, wt: ArrayLike | None = None) -> FloatArray:
        y, mu = as_float(y), as_float(mu)
        w = prior_weights(wt, y.shape[0])
        theta = self.size
        # log1p keeps the digits of log((y + theta) / (mu + theta)) when theta is large; a
        # theta that underflows to 0 (an optimizer's trial size) gives log1p(-1): an infinite
        # deviance, which marks the point infeasible, without numpy's warning
        with np.errstate(divide="ignore"):
            return 2.0 * w * (y_log_y_over_mu(y, mu)
                              - (y + theta) * np.log1p((y - mu) / (mu + theta)))

    def _log_density(self, y: FloatArray, mu: FloatArray, wt: FloatArray,
                     dispersion: float) -> FloatArray:
        theta = self.size
        # log dnbinom(y, size = theta, mu = mu). For a large theta (near-Poisson) the
        # differences lgamma(theta + y) - lgamma(theta) and theta log(theta / (theta + mu))
        # lose every digit; the binomial coefficient through betaln and log1p keep them:
        # Gamma(theta + y) / (Gamma(theta) y!) = 1 / ((theta + y) B(theta, y + 1)).
        log_choose = -np.log(theta + y) - special.betaln(theta, y + 1.0)
        return wt * (log_choose - theta * np.log1p(mu / theta)
                     + special.xlogy(y, mu) - special.xlogy(y, theta + mu))

    def mustart(self, y: ArrayLike, wt: ArrayLike | None = None) -> FloatArray:
        y = as_float(y)
        # MASS's negative.binomial()$initialize: zeros start at 1/6
        return y + (y == 0) / 6.0

    def _validate(self, y: FloatArray, wt: ArrayLike | None, column: str,
                  labels: ArrayLike | None) -> None:
        count_check("negative binomial", y, column, labels)

    def _draw(self, mu: FloatArray, wt: FloatArray, dispersion: float,
              rng: np.random.Generator) -> FloatArray:
        theta = self.size
        return rng.negative_binomial(theta, theta / (theta + mu)).astype(np.float64)

    def _latent_variance(self, mu: float | None, dispersion: float | None,
                         method: str) -> float:
        if self.link.name != "log":
            return super()._latent_variance(mu, dispersion, method)
        return log_link_latent(self._need_mu(mu), 1.0 / self.size, method)
