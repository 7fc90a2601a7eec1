"""The Family interface: what the GLMM machinery asks of a response distribution.

A family pairs a distribution of the exponential-dispersion kind with a link. It knows its
variance function V(mu), the deviance residuals, the log-likelihood of each observation, whether
it has a dispersion parameter, R's starting values, how to check a response before fitting, how
to draw responses, and the residual variance on the latent (link) scale used by Nakagawa's R2
and ICC.

Prior weights ``wt`` mean what they mean in R's ``glm``:

- binomial: the number of trials behind a proportion ``y`` (for 0/1 data, weights of 1);
- Poisson and negative binomial: frequency weights (an observation counted ``wt`` times);
- Gaussian, Gamma and inverse Gaussian: precision weights, Var(y) = dispersion V(mu) / wt.

An observation with weight 0 contributes nothing to the deviance or the log-likelihood.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from multilevel.errors import ArgumentError, DataError
from multilevel.errors import quote_rows as quote_any_rows
from multilevel.families.links import Link, make_link

FloatArray = NDArray[np.float64]

# How many offending rows a message quotes: enough to see the pattern, short on big data.
QUOTED_ROWS = 3

LATENT_METHODS = ("lognormal", "delta", "trigamma")


def as_float(x: ArrayLike) -> FloatArray:
    """``x`` as a float64 array."""
    return np.asarray(x, dtype=np.float64)


def prior_weights(wt: ArrayLike | None, n: int) -> FloatArray:
    """The prior weights as a float array of length ``n`` (ones when ``wt`` is None)."""
    return np.ones(n) if wt is None else np.broadcast_to(as_float(wt), (n,)).astype(np.float64)


def quote_rows(bad: NDArray[np.bool_], values: FloatArray,
               labels: ArrayLike | None = None) -> str:
    """``row 3 (-1.0), row 7 (2.5) and 4 more`` for the first offending rows.

    ``labels`` are the row labels to print in place of 0-based positions.
    """
    names = None if labels is None else np.asarray(labels)
    return quote_any_rows(np.flatnonzero(bad), lambda r: float(values[r]), QUOTED_ROWS,
                          None if names is None else names.__getitem__)


@dataclass(frozen=True)
class Family:
    """A response distribution and its link (R's ``family`` object).

    Parameters
    ----------
    link : str or Link, optional
        The link, by R's name (``"logit"``, ``"log"``, ``"1/mu^2"``, ...) or as a
        :class:`~multilevel.families.links.Link`; the family's canonical link when omitted.

    Attributes
    ----------
    name : str
        R's name of the family (``"binomial"``, ``"Gamma"``, ``"inverse.gaussian"``, ...).
    default_link : str
        The link used when none is given.
    allowed_links : tuple of str
        The links this family accepts (R's list for the family).
    has_dispersion : bool
        Whether the family has a dispersion parameter to estimate (Gaussian, Gamma, inverse
        Gaussian). The negative binomial's size theta is a parameter of its own, not a
        dispersion.
    """

    link: Link = field(default=None)  # type: ignore[assignment]  # resolved in __post_init__

    name: ClassVar[str] = ""
    default_link: ClassVar[str] = ""
    allowed_links: ClassVar[tuple[str, ...]] = ()
    has_dispersion: ClassVar[bool] = False
    # the mean must be finite and positive (R's validmu for Poisson, Gamma, negative binomial)
    positive_mean: ClassVar[bool] = False

    def __post_init__(self) -> None:
        spec: str | Link = self.default_link if self.link is None else self.link
        resolved = make_link(spec)
        if resolved.name not in self.allowed_links:
            raise ArgumentError(
                f"the {self.name} family does not take the {resolved.name!r} link; "
                f"allowed links: {', '.join(map(repr, self.allowed_links))}")
        object.__setattr__(self, "link", resolved)

    def __str__(self) -> str:
        return f"{self.name}({self.link.name})"

    # -- the distribution -------------------------------------------------------------------

    def variance(self, mu: ArrayLike) -> FloatArray:
        """The variance function V(mu): Var(y) = dispersion * V(mu) / wt."""
        raise NotImplementedError

    def valid_mu(self, mu: ArrayLike) -> bool:
        """Whether every mu is inside the family's mean space (R's ``validmu``): finite and
        positive for the families that set ``positive_mean``, anything otherwise."""
        if not self.positive_mean:
            return True
        mu = as_float(mu)
        return bool(np.all(np.isfinite(mu)) and np.all(mu > 0))

    def dev_resids(self, y: ArrayLike, mu: ArrayLike, wt: ArrayLike | None = None) -> FloatArray:
        """Each observation's contribution to the deviance (R's ``family$dev.resids``):
        ``wt`` times the unit deviance; their sum is the deviance."""
        raise NotImplementedError

    def log_likelihood(self, y: ArrayLike, mu: ArrayLike, wt: ArrayLike | None = None,
                       dispersion: float | None = None) -> FloatArray:
        """The log-likelihood of each observation given its mean.

        Parameters
        ----------
        y, mu : array_like
            Responses and their means, one per observation.
        wt : array_like, optional
            Prior weights (see the module docstring for what they mean per family); ones when
            omitted.
        dispersion : float, optional
            The dispersion parameter; required where :attr:`has_dispersion`, ignored otherwise.

        Returns
        -------
        numpy.ndarray
            One log-likelihood term per observation (0 where the weight is 0), the saturated
            constants included: their sum is the model's log-likelihood.
        """
        y, mu = as_float(y), as_float(mu)
        w = prior_weights(wt, y.shape[0])
        phi = self._dispersion(dispersion)
        out = np.zeros_like(y)
        keep = w > 0
        out[keep] = self._log_density(y[keep], mu[keep], w[keep], phi)
        return out

    def _log_density(self, y: FloatArray, mu: FloatArray, wt: FloatArray,
                     dispersion: float) -> FloatArray:
        raise NotImplementedError

    def _dispersion(self, dispersion: float | None) -> float:
        if not self.has_dispersion:
            return 1.0
        if dispersion is None or not np.isfinite(dispersion) or dispersion <= 0:
            raise ArgumentError(f"the {self.name} family needs a positive, finite dispersion, "
                                f"got dispersion={dispersion!r}")
        return float(dispersion)

    # -- before and after fitting ---------------------------------------------------------------

    def mustart(self, y: ArrayLike, wt: ArrayLike | None = None) -> FloatArray:
        """Starting values of mu for the first iteration (R's ``family$initialize``)."""
        return as_float(y).copy()

    def validate(self, y: ArrayLike, wt: ArrayLike | None = None, column: str = "response",
                 labels: ArrayLike | None = None) -> None:
        """Check that ``y`` (and ``wt``) can be modelled by this family, before any fitting.

        Parameters
        ----------
        y : array_like
            The response.
        wt : array_like, optional
            The prior weights (for the binomial, the number of trials).
        column : str
            The response's name, quoted in the message.
        labels : array_like, optional
            Row labels quoted in the message in place of 0-based positions.

        Raises
        ------
        DataError
            Naming the first offending rows and their values.
        """
        y = as_float(y)
        bad = ~np.isfinite(y)
        if bad.any():
            raise DataError(f"the response {column!r} must be finite for the {self.name} "
                            f"family: {quote_rows(bad, y, labels)}. Drop or fix those rows")
        if wt is not None:
            w = prior_weights(wt, y.shape[0])
            bad = ~np.isfinite(w) | (w < 0)
            if bad.any():
                raise DataError(f"weights must be finite and non-negative: "
                                f"{quote_rows(bad, w, labels)}")
        self._validate(y, wt, column, labels)

    def _validate(self, y: FloatArray, wt: ArrayLike | None, column: str,
                  labels: ArrayLike | None) -> None:
        """The family's own checks of a finite response."""

    def simulate(self, mu: ArrayLike, wt: ArrayLike | None = None,
                 dispersion: float | None = None,
                 rng: np.random.Generator | None = None) -> FloatArray:
        """Draw one response per mean (as R's ``simulate`` for a fitted ``glm``).

        Parameters
        ----------
        mu : array_like
            Means, one per observation.
        wt : array_like, optional
            Prior weights; for the binomial the numbers of trials (the draws are then
            proportions), for Gaussian, Gamma and inverse Gaussian precision weights. Poisson
            and negative binomial draws ignore them, as R does.
        dispersion : float, optional
            Required where :attr:`has_dispersion`.
        rng : numpy.random.Generator, optional
            The source of randomness; a fresh unseeded one when omitted.

        Returns
        -------
        numpy.ndarray
            One draw per element of ``mu``.
        """
        mu = as_float(mu)
        w = prior_weights(wt, mu.shape[0])
        phi = self._dispersion(dispersion)
        return self._draw(mu, w, phi, np.random.default_rng() if rng is None else rng)

    def _draw(self, mu: FloatArray, wt: FloatArray, dispersion: float,
              rng: np.random.Generator) -> FloatArray:
        raise NotImplementedError

    def latent_variance(self, mu: float | None = None, dispersion: float | None = None,
                        method: str = "lognormal") -> float:
        """The residual variance on the latent (link) scale, for Nakagawa's R2 and the ICC.

        Parameters
        ----------
        mu : float, optional
            The mean on the response scale at which the approximation is taken (Nakagawa,
            Johnson & Schielzeth 2017 use exp(beta0 + total random-effect variance / 2) for log
            links). Needed for Poisson, negative binomial; ignored by the binomial links.
        dispersion : float, optional
            The dispersion (Gaussian, Gamma, inverse Gaussian).
        method : {"lognormal", "delta", "trigamma"}
            The approximation for log links (Nakagawa et al. 2017, Table 1); "lognormal" is
            their recommendation and the default of R's performance package.

        Returns
        -------
        float

        Raises
        ------
        ArgumentError
            For a family and link with no latent-scale variance defined here, a missing ``mu``
            or ``dispersion``, or an unknown ``method``.
        """
        if method not in LATENT_METHODS:
            raise ArgumentError(f"method must be one of {', '.join(map(repr, LATENT_METHODS))}, "
                                f"got {method!r}")
        return self._latent_variance(mu, dispersion, method)

    def _latent_variance(self, mu: float | None, dispersion: float | None,
                         method: str) -> float:
        raise ArgumentError(f"the latent-scale residual variance is not defined for the "
                            f"{self.name} family with the {self.link.name!r} link")

    def _need_mu(self, mu: float | None) -> float:
        if mu is None or not np.isfinite(mu) or mu <= 0:
            raise ArgumentError(f"the latent-scale variance of the {self.name} family needs "
                                f"the mean mu > 0 on the response scale, got mu={mu!r}")
        return float(mu)
