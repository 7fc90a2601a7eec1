"""``family(spec)``: a family from its name, class or instance, as glmer takes it."""

from __future__ import annotations

from multilevel.errors import ArgumentError, _did_you_mean
from multilevel.families.exponential import Binomial, Gamma, Gaussian, InverseGaussian, Poisson
from multilevel.families.family import Family
from multilevel.families.negative_binomial import NegativeBinomial

FAMILIES: dict[str, type[Family]] = {
    "gaussian": Gaussian,
    "binomial": Binomial,
    "poisson": Poisson,
    "gamma": Gamma,
    "inverse_gaussian": InverseGaussian,
    "negative_binomial": NegativeBinomial,
}

# R's spellings and common short forms, after lower-casing and "." / "-" / " " -> "_"
_ALIASES = {
    "normal": "gaussian",
    "inversegaussian": "inverse_gaussian",
    "negbin": "negative_binomial",
    "negativebinomial": "negative_binomial",
    "nbinom2": "negative_binomial",
    # brms's names (its users write them in ml.bayes)
    "negbinomial": "negative_binomial",
    "bernoulli": "binomial",
}


def family(spec: str | Family | type[Family]) -> Family:
    """The family named or given by ``spec``.

    Parameters
    ----------
    spec : str, Family or Family subclass
        A name, case-insensitive, with ``_`` or ``.`` between words (``"binomial"``,
        ``"poisson"``, ``"gamma"``, ``"inverse_gaussian"``, ``"negative_binomial"``,
        ``"gaussian"``; R's ``"inverse.gaussian"`` and ``"Gamma"`` too), which gives the family
        with its default link (and, for the negative binomial, theta to be estimated); a family
        instance such as ``Binomial(link="probit")``, returned as it is; or a family class,
        instantiated with its defaults.

    Returns
    -------
    Family

    Raises
    ------
    ArgumentError
        An unknown name (the message suggests the nearest ones and lists the choices), or a
        value of another type.
    """
    if isinstance(spec, Family):
        return spec
    if isinstance(spec, type) and issubclass(spec, Family) and spec is not Family:
        return spec()
    choices = ", ".join(map(repr, FAMILIES))
    if not isinstance(spec, str):
        raise ArgumentError(f"family must be a family name or a family such as "
                            f"Binomial(link='probit'), got {spec!r}; names: {choices}")
    key = spec.strip().lower()
    for sep in ".- ":
        key = key.replace(sep, "_")
    key = _ALIASES.get(key, key)
    if key not in FAMILIES:
        raise ArgumentError(f"family {spec!r} is not known."
                            f"{_did_you_mean(spec, list(FAMILIES), 0.6)} Choose one of {choices}")
    return FAMILIES[key]()
