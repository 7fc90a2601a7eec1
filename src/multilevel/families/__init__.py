"""families layer: response distributions and links for generalized linear mixed models.

Pure numerics (numpy and scipy): links with R's names (:mod:`.links`), the Family interface
(:mod:`.family`), the exponential-dispersion families (:mod:`.exponential`), the negative
binomial (:mod:`.negative_binomial`), the name resolver (:mod:`.resolve`) and Gauss-Hermite
rules for adaptive quadrature (:mod:`.gauss_hermite`).
"""

from multilevel.families.exponential import Binomial, Gamma, Gaussian, InverseGaussian, Poisson
from multilevel.families.family import Family
from multilevel.families.gauss_hermite import GaussHermiteRule, gauss_hermite
from multilevel.families.links import (
    LINKS,
    Cauchit,
    CLogLog,
    Identity,
    Inverse,
    InverseSquared,
    Link,
    Log,
    Logit,
    Probit,
    Sqrt,
    make_link,
)
from multilevel.families.negative_binomial import NegativeBinomial
from multilevel.families.resolve import FAMILIES, family

__all__ = [
    "FAMILIES", "LINKS", "Binomial", "CLogLog", "Cauchit", "Family", "Gamma", "GaussHermiteRule",
    "Gaussian", "Identity", "Inverse", "InverseGaussian", "InverseSquared", "Link", "Log",
    "Logit", "NegativeBinomial", "Poisson", "Probit", "Sqrt", "family", "gauss_hermite",
    "make_link",
]
