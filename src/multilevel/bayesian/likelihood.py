"""The response distributions of Bayesian fits, as JAX log densities per observation.

Each family of the GLMM issue, parameterized as brms parameterizes it so that priors mean
the same thing: Gaussian with ``sigma``; binomial with trials; Poisson; Gamma with ``shape``
(mean mu, rate shape / mu); inverse Gaussian with ``shape`` (lambda); the negative binomial
(NB2) with ``shape`` (size theta, Var = mu + mu^2 / theta).

Prior weights mean what they mean for the frequentist fits of the same family
(:mod:`multilevel.families.family`): the trials of a binomial proportion, frequency weights
for counts, precision weights for the Gaussian, Gamma and inverse Gaussian. So a Bayesian fit
with flat priors has the same likelihood as ``lmer``/``glmer`` (brms's ``weights()`` instead
multiplies each log density; with unit weights the two agree).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from jax.scipy.special import gammaln, ndtr

from multilevel.errors import ArgumentError
from multilevel.families.family import Family

_INVERSE_LINKS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "identity": lambda eta: eta,
    "log": jnp.exp,
    "logit": jax.nn.sigmoid,
    "probit": ndtr,
    "cloglog": lambda eta: -jnp.expm1(-jnp.exp(eta)),
    "cauchit": lambda eta: 0.5 + jnp.arctan(eta) / math.pi,
    "inverse": lambda eta: 1.0 / eta,
    "sqrt": lambda eta: eta * eta,
    "1/mu^2": lambda eta: 1.0 / jnp.sqrt(eta),
}

# brms's name of each family's extra parameter (none for binomial and Poisson)
_EXTRA = {"gaussian": "sigma", "Gamma": "shape", "inverse.gaussian": "shape",
          "negative.binomial": "shape"}


@dataclass(frozen=True)
class ResponseFamily:
    """A family as the sampler needs it: the link's inverse, the extra parameter, the density.

    Attributes
    ----------
    family : Family
        The frequentist family object (validation, simulation, names).
    extra : str or None
        ``"sigma"`` (Gaussian) or ``"shape"`` (Gamma, inverse Gaussian, negative binomial
        with its size estimated); None when the family has no free extra parameter.
    fixed_shape : float or None
        The negative binomial's size when the user fixed it (``NegativeBinomial(theta=2)``).
    """

    family: Family
    extra: str | None
    fixed_shape: float | None

    @property
    def name(self) -> str:
        """R's name of the family (``"gaussian"``, ``"binomial"``, ``"Gamma"``, ...)."""
        return self.family.name

    @property
    def link(self) -> str:
        """R's name of the link."""
        return self.family.link.name

    def inverse_link(self, eta: Any) -> jax.Array:
        """mu = g^-1(eta) (jax arrays, or numpy arrays of draws)."""
        return _INVERSE_LINKS[self.link](jnp.asarray(eta))

    def log_density(self, y: jax.Array, eta: jax.Array, wt: jax.Array,
                    extra: jax.Array | None) -> jax.Array:
        """Log density of each observation given the linear predictor ``eta``."""
        name = self.name
        if name == "binomial":
            successes = y * wt
            if self.link == "logit":  # stable in the tails
                log_p, log_q = jax.nn.log_sigmoid(eta), jax.nn.log_sigmoid(-eta)
            else:
                p = jnp.clip(self.inverse_link(eta), 1e-300, 1.0)
                log_p, log_q = jnp.log(p), jnp.log1p(-jnp.clip(p, 0.0, 1.0 - 1e-16))
            comb = gammaln(wt + 1.0) - gammaln(successes + 1.0) - gammaln(wt - successes + 1.0)
            return (comb + jnp.where(successes > 0, successes * log_p, 0.0)
                    + jnp.where(wt - successes > 0, (wt - successes) * log_q, 0.0))
        mu = self.inverse_link(eta)
        if name == "gaussian":
            assert extra is not None
            return (0.5 * jnp.log(wt) - jnp.log(extra) - 0.5 * math.log(2 * math.pi)
                    - 0.5 * wt * ((y - mu) / extra) ** 2)
        if name == "poisson":
            return wt * (jnp.where(y > 0, y * jnp.log(mu), 0.0) - mu - gammaln(y + 1.0))
        if name == "Gamma":
            assert extra is not None
            shape = extra * wt
            return (shape * jnp.log(shape / mu) - gammaln(shape) + (shape - 1.0) * jnp.log(y)
                    - shape * y / mu)
        if name == "inverse.gaussian":
            assert extra is not None
            lam = extra * wt
            return (0.5 * (jnp.log(lam) - math.log(2 * math.pi) - 3.0 * jnp.log(y))
                    - lam * (y - mu) ** 2 / (2.0 * mu * mu * y))
        if name == "negative.binomial":
            size = extra if self.fixed_shape is None else jnp.asarray(self.fixed_shape)
            assert size is not None
            return wt * (gammaln(y + size) - gammaln(size) - gammaln(y + 1.0)
                         + size * (jnp.log(size) - jnp.log(size + mu))
                         + jnp.where(y > 0, y * (jnp.log(mu) - jnp.log(size + mu)), 0.0))
        raise ArgumentError(f"the {name} family is not available for Bayesian fits")


def response_family(family: Family) -> ResponseFamily:
    """The sampler's view of ``family``."""
    name = family.name
    if name not in ("gaussian", "binomial", "poisson", "Gamma", "inverse.gaussian",
                    "negative.binomial"):
        raise ArgumentError(f"the {name} family is not available for Bayesian fits; use "
                            "gaussian, binomial, poisson, gamma, inverse_gaussian or "
                            "negative_binomial")
    if family.link.name not in _INVERSE_LINKS:
        raise ArgumentError(f"the {family.link.name} link is not available for Bayesian fits")
    fixed = None
    if name == "negative.binomial":
        theta = getattr(family, "theta", None)
        fixed = None if theta is None else float(theta)
    extra = _EXTRA.get(name)
    if fixed is not None:
        extra = None
    return ResponseFamily(family, extra, fixed)
