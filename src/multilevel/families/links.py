"""Link functions: eta = g(mu), mu = g^-1(eta) and dmu/deta, with R's names and safeguards.

The names are those of R's ``make.link`` (``"logit"``, ``"probit"``, ``"cloglog"``,
``"cauchit"``, ``"log"``, ``"identity"``, ``"inverse"``, ``"sqrt"``, ``"1/mu^2"``), and so is
the behaviour at the edges, because PIRLS runs through them with wild trial values of eta:

- the inverse links of the binomial links never return exactly 0 or 1 (logit clamps
  exp(eta) to [eps, 1/eps] outside |eta| > 30; probit and cauchit clamp eta where their
  distribution function reaches eps; cloglog clamps mu to [eps, 1 - eps]), and their
  derivatives never return 0, so that working weights stay finite and positive;
- the log link's inverse and derivative are bounded below by eps.

Here eps is the double-precision machine epsilon (R's ``.Machine$double.eps``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special, stats

from multilevel.errors import ArgumentError, _did_you_mean

EPS = float(np.finfo(float).eps)

FloatArray = NDArray[np.float64]

# Beyond |eta| = 30 the logistic function is within eps of 0 or 1 (R's THRESH in family.c).
_LOGIT_THRESHOLD = 30.0
# Where the normal and Cauchy distribution functions reach eps: eta is clamped to +-these.
_PROBIT_THRESHOLD = float(-stats.norm.ppf(EPS))
_CAUCHIT_THRESHOLD = float(-stats.cauchy.ppf(EPS))
# exp(700) is finite; beyond it the cloglog derivative is eps anyway (R's bound).
_CLOGLOG_ETA_MAX = 700.0


def _array(x: ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


@dataclass(frozen=True)
class Link:
    """A link function g: the linear predictor eta = g(mu).

    Subclasses implement :meth:`link`, :meth:`inverse` and :meth:`mu_eta`; all take and return
    float arrays of the same shape (scalars are accepted and give 0-d arrays).

    Attributes
    ----------
    name : str
        R's name of the link (``binomial(link = name)``).
    """

    name: ClassVar[str] = ""

    def link(self, mu: ArrayLike) -> FloatArray:
        """eta = g(mu)."""
        raise NotImplementedError

    def inverse(self, eta: ArrayLike) -> FloatArray:
        """mu = g^-1(eta)."""
        raise NotImplementedError

    def mu_eta(self, eta: ArrayLike) -> FloatArray:
        """The derivative dmu/deta at eta."""
        raise NotImplementedError

    def valid_eta(self, eta: ArrayLike) -> bool:
        """Whether every eta is in the domain of the inverse link (R's ``valideta``)."""
        return True

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Logit(Link):
    """log(mu / (1 - mu)): the canonical link of the binomial."""

    name: ClassVar[str] = "logit"

    def link(self, mu: ArrayLike) -> FloatArray:
        return special.logit(_array(mu))

    def inverse(self, eta: ArrayLike) -> FloatArray:
        eta = _array(eta)
        odds = np.exp(np.clip(eta, -_LOGIT_THRESHOLD, _LOGIT_THRESHOLD))
        odds = np.where(eta < -_LOGIT_THRESHOLD, EPS, odds)
        odds = np.where(eta > _LOGIT_THRESHOLD, 1.0 / EPS, odds)
        return odds / (1.0 + odds)

    def mu_eta(self, eta: ArrayLike) -> FloatArray:
        eta = _array(eta)
        inside = np.abs(eta) <= _LOGIT_THRESHOLD
        # exp(-|eta|) / (1 + exp(-|eta|))^2 is the same number without overflow for eta > 0
        e = np.exp(-np.abs(np.where(inside, eta, 0.0)))
        return np.where(inside, e / (1.0 + e) ** 2, EPS)


@dataclass(frozen=True)
class Probit(Link):
    """Phi^-1(mu), the standard normal quantile function."""

    name: ClassVar[str] = "probit"

    def link(self, mu: ArrayLike) -> FloatArray:
        return special.ndtri(_array(mu))

    def inverse(self, eta: ArrayLike) -> FloatArray:
        eta = np.clip(_array(eta), -_PROBIT_THRESHOLD, _PROBIT_THRESHOLD)
        return special.ndtr(eta)

    def mu_eta(self, eta: ArrayLike) -> FloatArray:
        return np.maximum(stats.norm.pdf(_array(eta)), EPS)


@dataclass(frozen=True)
class Cauchit(Link):
    """The standard Cauchy quantile function of mu."""

    name: ClassVar[str] = "cauchit"

    def link(self, mu: ArrayLike) -> FloatArray:
        return np.asarray(stats.cauchy.ppf(_array(mu)), dtype=np.float64)

    def inverse(self, eta: ArrayLike) -> FloatArray:
        eta = np.clip(_array(eta), -_CAUCHIT_THRESHOLD, _CAUCHIT_THRESHOLD)
        return np.asarray(stats.cauchy.cdf(eta), dtype=np.float64)

    def mu_eta(self, eta: ArrayLike) -> FloatArray:
        return np.maximum(stats.cauchy.pdf(_array(eta)), EPS)


@dataclass(frozen=True)
class CLogLog(Link):
    """log(-log(1 - mu)), the complementary log-log link."""

    name: ClassVar[str] = "cloglog"

    def link(self, mu: ArrayLike) -> FloatArray:
        return np.log(-np.log1p(-_array(mu)))

    def inverse(self, eta: ArrayLike) -> FloatArray:
        with np.errstate(over="ignore"):  # exp(eta) = inf gives mu = 1, clamped below
            mu = -np.expm1(-np.exp(_array(eta)))
        return np.clip(mu, EPS, 1.0 - EPS)

    def mu_eta(self, eta: ArrayLike) -> FloatArray:
        eta = np.minimum(_array(eta), _CLOGLOG_ETA_MAX)
        # exp(eta - exp(eta)) loses nothing where exp(eta) * exp(-exp(eta)) would underflow
        return np.maximum(np.exp(eta - np.exp(eta)), EPS)


@dataclass(frozen=True)
class Log(Link):
    """log(mu): the canonical link of the Poisson."""

    name: ClassVar[str] = "log"

    def link(self, mu: ArrayLike) -> FloatArray:
        return np.log(_array(mu))

    def inverse(self, eta: ArrayLike) -> FloatArray:
        return np.maximum(np.exp(_array(eta)), EPS)

    def mu_eta(self, eta: ArrayLike) -> FloatArray:
        return np.maximum(np.exp(_array(eta)), EPS)


@dataclass(frozen=True)
class Identity(Link):
    """mu itself: the canonical link of the Gaussian."""

    name: ClassVar[str] = "identity"

    def link(self, mu: ArrayLike) -> FloatArray:
        return _array(mu).copy()

    def inverse(self, eta: ArrayLike) -> FloatArray:
        return _array(eta).copy()

    def mu_eta(self, eta: ArrayLike) -> FloatArray:
        return np.ones_like(_array(eta))


@dataclass(frozen=True)
class Inverse(Link):
    """1 / mu: the canonical link of the Gamma."""

    name: ClassVar[str] = "inverse"

    def link(self, mu: ArrayLike) -> FloatArray:
        return 1.0 / _array(mu)

    def inverse(self, eta: ArrayLike) -> FloatArray:
        return 1.0 / _array(eta)

    def mu_eta(self, eta: ArrayLike) -> FloatArray:
        return -1.0 / _array(eta) ** 2

    def valid_eta(self, eta: ArrayLike) -> bool:
        eta = _array(eta)
        return bool(np.all(np.isfinite(eta)) and np.all(eta != 0))


@dataclass(frozen=True)
class Sqrt(Link):
    """sqrt(mu), a variance-stabilising link for counts."""

    name: ClassVar[str] = "sqrt"

    def link(self, mu: ArrayLike) -> FloatArray:
        return np.sqrt(_array(mu))

    def inverse(self, eta: ArrayLike) -> FloatArray:
        return _array(eta) ** 2

    def mu_eta(self, eta: ArrayLike) -> FloatArray:
        return 2.0 * _array(eta)

    def valid_eta(self, eta: ArrayLike) -> bool:
        eta = _array(eta)
        return bool(np.all(np.isfinite(eta)) and np.all(eta > 0))


@dataclass(frozen=True)
class InverseSquared(Link):
    """1 / mu^2: the canonical link of the inverse Gaussian."""

    name: ClassVar[str] = "1/mu^2"

    def link(self, mu: ArrayLike) -> FloatArray:
        return 1.0 / _array(mu) ** 2

    def inverse(self, eta: ArrayLike) -> FloatArray:
        return 1.0 / np.sqrt(_array(eta))

    def mu_eta(self, eta: ArrayLike) -> FloatArray:
        return -1.0 / (2.0 * _array(eta) ** 1.5)

    def valid_eta(self, eta: ArrayLike) -> bool:
        eta = _array(eta)
        return bool(np.all(np.isfinite(eta)) and np.all(eta > 0))


LINKS: dict[str, type[Link]] = {cls.name: cls for cls in (
    Logit, Probit, Cauchit, CLogLog, Log, Identity, Inverse, Sqrt, InverseSquared)}

# Spellings accepted besides R's names (Python identifiers cannot hold "1/mu^2").
_ALIASES = {"inverse_squared": "1/mu^2", "inverse_square": "1/mu^2"}


def make_link(spec: str | Link) -> Link:
    """The link named ``spec`` (R's names, case-insensitive), or ``spec`` itself if a Link.

    Raises
    ------
    ArgumentError
        ``spec`` is neither a known link name nor a :class:`Link`.
    """
    if isinstance(spec, Link):
        return spec
    if isinstance(spec, type) and issubclass(spec, Link) and spec in LINKS.values():
        return spec()
    if not isinstance(spec, str):
        raise ArgumentError(f"link must be a link name or a Link, got {spec!r}; "
                            f"choose one of {', '.join(map(repr, LINKS))}")
    key = spec.strip().lower().replace(" ", "")
    key = _ALIASES.get(key, key)
    if key not in LINKS:
        raise ArgumentError(f"link {spec!r} is not known.{_did_you_mean(spec, list(LINKS), 0.6)}"
                            f" Choose one of {', '.join(map(repr, LINKS))}")
    return LINKS[key]()
