"""Gauss-Hermite quadrature against the standard normal density (lme4's ``GHrule``).

A rule of order k has nodes z and weights w with sum_i w_i f(z_i) = E f(Z), Z ~ N(0, 1),
exact for polynomials f of degree up to 2k - 1. Adaptive quadrature (nAGQ > 1) centres and
scales these nodes at each group's conditional mode and standard deviation.

The nodes are the roots of the probabilists' Hermite polynomial He_k (Golub-Welsch with
Newton polishing, as numpy's ``hermegauss`` computes them); the weights for the weight
function exp(-z^2 / 2) are divided by sqrt(2 pi) so that they sum to 1.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from numbers import Integral

import numpy as np
from numpy.polynomial import hermite_e

from multilevel.errors import ArgumentError
from multilevel.families.family import FloatArray

# lme4 stops at 100. Past about 370 nodes the outermost weights (below 1e-300) underflow in
# numpy's computation; 300 leaves a margin and is far more than any adaptive rule needs.
MAX_ORDER = 300


@dataclass(frozen=True)
class GaussHermiteRule:
    """Nodes and weights of a Gauss-Hermite rule for the standard normal density.

    Attributes
    ----------
    z : numpy.ndarray
        The k nodes, increasing, symmetric about 0 (read-only).
    w : numpy.ndarray
        The k weights, positive, summing to 1 (read-only).
    log_density : numpy.ndarray
        log phi(z), the standard normal log-density at each node (lme4's ``ldnorm``).
    """

    z: FloatArray
    w: FloatArray
    log_density: FloatArray

    @property
    def order(self) -> int:
        """The number of nodes k."""
        return int(self.z.shape[0])


def gauss_hermite(k: int) -> GaussHermiteRule:
    """The Gauss-Hermite rule of order ``k`` (1 <= k <= 300), cached.

    Parameters
    ----------
    k : int
        The number of nodes (lme4's nAGQ).

    Returns
    -------
    GaussHermiteRule

    Raises
    ------
    ArgumentError
        ``k`` is not an integer in [1, 300].
    """
    if isinstance(k, bool) or not isinstance(k, Integral) or not 1 <= k <= MAX_ORDER:
        raise ArgumentError(f"the number of quadrature nodes must be an integer from 1 to "
                            f"{MAX_ORDER}, got {k!r}")
    return _rule(int(k))


@functools.lru_cache(maxsize=64)
def _rule(k: int) -> GaussHermiteRule:
    z, w = hermite_e.hermegauss(k)
    # The rule is symmetric; averaging with its mirror image removes the last rounding
    # asymmetry (and puts the middle node of an odd rule exactly at 0).
    z = 0.5 * (z - z[::-1])
    w = 0.5 * (w + w[::-1])
    w = w / w.sum()
    log_density = -0.5 * (np.log(2.0 * np.pi) + z ** 2)
    for a in (z, w, log_density):
        a.flags.writeable = False
    return GaussHermiteRule(z=z, w=w, log_density=log_density)
