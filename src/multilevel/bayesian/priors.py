"""Priors of the Bayesian multilevel models, as brms (2.18) names, defaults and applies them.

The layer has four parts, each a plain function over small frozen records:

- :func:`parse_distribution` reads a prior the way brms spells it (``"normal(200, 50)"``,
  ``"student_t(3, 0, 2.5)"``, ``"lkj(2)"``) into a :class:`Distribution`, with Python's ``ast``
  and an allow-list: a call of a known name with numeric literal arguments, never ``eval``.
- :func:`prior` is what the user writes (``ml.prior("normal(0, 5)", class_="b", coef="Days")``);
  :class:`Slot` is one parameter (or block) of the model, classified as brms classifies it.
- :func:`default_priors` reproduces brms's data-dependent defaults; :func:`resolve_priors` applies
  the user's priors over them with brms's precedence; :func:`prior_summary_table` prints the result
  as brms's ``prior_summary`` does.
- :func:`numpyro_distribution` and :func:`log_density` give the density of a resolved prior,
  with numpyro (imported only when called) for sampling and with numpy/scipy for checks.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from multilevel.errors import ArgumentError, shorten

# ---------------------------------------------------------------------------------------------
# Distributions


@dataclass(frozen=True)
class _Form:
    """What a distribution name takes: its parameter names, which of them must be positive,
    and the support of the variable (``lkj``'s is the correlation matrices, not an interval)."""

    params: tuple[str, ...]
    positive: tuple[int, ...]
    support: tuple[float, float]
    location_scale: bool = False  # truncated at a lower bound by a normalising constant


_FORMS: dict[str, _Form] = {
    "normal": _Form(("mu", "sigma"), (1,), (-math.inf, math.inf), True),
    "student_t": _Form(("nu", "mu", "sigma"), (0, 2), (-math.inf, math.inf), True),
    "cauchy": _Form(("mu", "sigma"), (1,), (-math.inf, math.inf), True),
    "exponential": _Form(("rate",), (0,), (0.0, math.inf)),
    "gamma": _Form(("shape", "rate"), (0, 1), (0.0, math.inf)),
    "lognormal": _Form(("mu", "sigma"), (1,), (0.0, math.inf)),
    "beta": _Form(("a", "b"), (0, 1), (0.0, 1.0)),
    "uniform": _Form(("lower", "upper"), (), (-math.inf, math.inf)),
    "lkj": _Form(("eta",), (0,), (-1.0, 1.0)),
    "flat": _Form((), (), (-math.inf, math.inf)),
}

_VALID_FORMS = ("normal(mu, sigma), student_t(nu, mu, sigma), cauchy(mu, sigma), "
                "exponential(rate), gamma(shape, rate), lognormal(mu, sigma), beta(a, b), "
                "uniform(lower, upper), "
                "lkj(eta) (class 'cor' only) or flat; the arguments are numbers, "
                "e.g. 'normal(0, 10)'")

# Longer texts are not priors; the cap also keeps ast.parse away from pathological input.
_MAX_TEXT = 200


def r_number(x: float) -> str:
    """``x`` as R's ``as.character`` writes a double: 15 significant digits, trailing zeros
    dropped, scientific notation when that is shorter than fixed (``1e+05``, ``1e-04``,
    ``288.7``). brms writes the arguments of the priors it computes this way."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Inf" if x > 0 else "-Inf"
    if x == 0:
        return "0"
    mantissa, exponent_text = f"{x:.14e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    exponent = int(exponent_text)
    digits = len(mantissa.lstrip("-").replace(".", ""))
    scientific = f"{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    fixed = f"{x:.{max(0, digits - 1 - exponent)}f}"
    # R prefers fixed notation unless it is wider than scientific (scipen = 0).
    return scientific if len(fixed) > len(scientific) else fixed


def r_round1(x: float) -> float:
    """``round(x, 1)`` as R (>= 4.0.0) computes it: of the two one-decimal candidates around
    ``x``, the one nearer to ``x`` in double arithmetic; on an exact tie, the even last digit.
    (Python's ``round`` rounds the exact binary value instead and differs on some ties.)"""
    if not math.isfinite(x) or x == 0:
        return x
    if x < 0:
        return -r_round1(-x)
    if math.log10(x) + 1 > 15:  # no decimals left to round at double precision
        return x
    i10 = math.floor(10.0 * x)
    down, up = i10 / 10.0, math.ceil(10.0 * x) / 10.0
    d_up, d_down = up - x, x - down
    return up if d_up < d_down or (d_up == d_down and i10 % 2 == 1) else down


def _distribution_error(text: str, why: str) -> ArgumentError:
    return ArgumentError(f"prior {shorten(text)!r} is not a distribution multilevel can read: "
                         f"{why}. Valid forms: {_VALID_FORMS}")


def _check_distribution(name: str, args: tuple[float, ...], text: str) -> None:
    form = _FORMS.get(name)
    if form is None:
        raise _distribution_error(text, f"unknown distribution {name!r}")
    if len(args) != len(form.params):
        wanted = f"{name}({', '.join(form.params)})" if form.params else name
        raise _distribution_error(
            text, f"{name} takes {len(form.params)} argument{'s' * (len(form.params) != 1)} "
                  f"({wanted}), got {len(args)}")
    for value, param in zip(args, form.params, strict=True):
        if not math.isfinite(value):
            raise _distribution_error(
                text, f"{name}'s {param} must be a finite number, got {value}")
    for i in form.positive:
        if args[i] <= 0:
            raise _distribution_error(
                text, f"{name}'s {form.params[i]} must be positive, got {r_number(args[i])}")
    if name == "uniform" and not args[0] < args[1]:
        raise _distribution_error(text, "uniform's lower bound must be below its upper bound")


@dataclass(frozen=True)
class Distribution:
    """A prior distribution, parsed and checked.

    Attributes
    ----------
    name : str
        ``"normal"``, ``"student_t"``, ``"cauchy"``, ``"exponential"``, ``"gamma"``,
        ``"lognormal"``, ``"beta"``, ``"uniform"``, ``"lkj"`` or ``"flat"`` (improper flat).
    args : tuple of float
        The parameters in Stan/brms order: normal(mu, sigma), student_t(nu, mu, sigma),
        cauchy(mu, sigma), exponential(rate), gamma(shape, rate), lognormal(mu, sigma),
        beta(a, b), uniform(lower, upper), lkj(eta); none for flat.
    """

    name: str
    args: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise _distribution_error(repr(self.name), "the name must be text")
        try:
            args = tuple(float(a) for a in self.args)
        except (TypeError, ValueError):
            raise _distribution_error(f"{self.name}{self.args!r}",
                                      "the arguments must be numbers") from None
        object.__setattr__(self, "args", args)
        _check_distribution(self.name, args, f"{self.name}({', '.join(map(r_number, args))})")

    def text(self) -> str:
        """brms's spelling: ``"student_t(3, 288.7, 59.3)"``, ``"lkj(1)"``, ``"(flat)"``."""
        if self.name == "flat":
            return "(flat)"
        return f"{self.name}({', '.join(r_number(a) for a in self.args)})"

    def __str__(self) -> str:
        return self.text()


FLAT = Distribution("flat")


def _number(node: ast.expr, text: str) -> float:
    # A numeric literal, possibly signed: -1, +2.5, 1e-3. Booleans are ints to Python; not here.
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _number(node.operand, text)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) \
            and not isinstance(node.value, bool):
        return float(node.value)
    raise _distribution_error(text, f"argument {shorten(ast.unparse(node), 40)!r} is not a number")


def parse_distribution(text: str) -> Distribution:
    """Read a prior written as brms writes it: ``"normal(200, 50)"``, ``"student_t(3, 0, 2.5)"``,
    ``"lkj(2)"``, ``"flat"`` (also ``""`` and ``"(flat)"``, brms's improper flat prior).

    The text is parsed with Python's ``ast`` and only a call of a known distribution name with
    numeric literal arguments (a leading minus allowed) is accepted; nothing is evaluated.

    Raises
    ------
    ArgumentError
        For anything else (an unknown name, the wrong number of arguments, a non-positive scale,
        an expression), naming the text and the valid forms.
    """
    if not isinstance(text, str):
        raise ArgumentError(f"a prior distribution is given as text such as 'normal(0, 10)', "
                            f"not {type(text).__name__}")
    stripped = text.strip()
    if stripped in ("", "flat", "(flat)", "flat()"):
        return FLAT
    if len(stripped) > _MAX_TEXT:
        raise _distribution_error(text, f"the text is longer than {_MAX_TEXT} characters")
    try:
        tree = ast.parse(stripped, mode="eval")
    except (SyntaxError, ValueError):
        raise _distribution_error(text, "it is not of the form name(number, ...)") from None
    call = tree.body
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
        raise _distribution_error(text, "it is not of the form name(number, ...)")
    if call.keywords:
        raise _distribution_error(text, "arguments are given by position only")
    name = call.func.id
    if name not in _FORMS or name == "flat":
        raise _distribution_error(text, f"unknown distribution {name!r}")
    args = tuple(_number(a, text) for a in call.args)
    _check_distribution(name, args, text)
    return Distribution(name, args)


# ---------------------------------------------------------------------------------------------
# What the user writes, and what the model has

PRIOR_CLASSES = ("b", "Intercept", "sd", "cor", "sigma", "shape", "phi")

# Which of coef / group / nlpar a prior of each class may name (brms's get_prior rows).
_CLASS_FIELDS: dict[str, tuple[str, ...]] = {
    "b": ("coef", "nlpar"), "Intercept": (), "sd": ("coef", "group", "nlpar"),
    "cor": ("group", "nlpar"),
    "sigma": (), "shape": (), "phi": (),
}

# Classes bounded below at 0 (brms's lb = 0): standard deviations and positive dispersions.
_LOWER_ZERO = frozenset({"sd", "sigma", "shape", "phi"})


@dataclass(frozen=True)
class Prior:
    """A prior the user sets on a class of parameters, optionally narrowed by coef / group /
    nlpar (an empty field means all). Build it with :func:`prior`.

    Attributes
    ----------
    distribution : Distribution
    class_ : str
        ``"b"`` (population-level coefficients), ``"Intercept"`` (the intercept of the centred
        design), ``"sd"`` (group-level standard deviations), ``"cor"`` (group-level
        correlations), ``"sigma"`` (residual SD), ``"shape"`` (negative binomial, Gamma),
        ``"phi"`` (beta precision).
    coef, group, nlpar : str
        The coefficient (R's column name, e.g. ``"Days"``, ``"period2"``), the grouping factor,
        the nonlinear parameter.
    """

    distribution: Distribution
    class_: str = "b"
    coef: str = ""
    group: str = ""
    nlpar: str = ""

    def describe(self) -> str:
        """``prior normal(0, 1) on class 'sd' coef 'Days' group 'Subject'``, for messages."""
        where = "".join(f" {field} {getattr(self, field)!r}" for field in ("coef", "group", "nlpar")
                        if getattr(self, field))
        return f"prior {self.distribution.text()} on class {self.class_!r}{where}"


def _check_prior(p: Prior) -> None:
    if not isinstance(p.distribution, Distribution):
        raise ArgumentError("a Prior's distribution is a Distribution; build priors with "
                            "multilevel.prior('normal(0, 10)', class_='b')")
    if not isinstance(p.class_, str) or p.class_ not in _CLASS_FIELDS:
        raise ArgumentError(f"prior class {p.class_!r} is not one multilevel knows; use one of "
                            f"{', '.join(repr(c) for c in PRIOR_CLASSES)}")
    for field in ("coef", "group", "nlpar"):
        value = getattr(p, field)
        if not isinstance(value, str):
            raise ArgumentError(f"the prior's {field} must be text (a name, or '' for all), "
                                f"not {type(value).__name__}")
        if value and field not in _CLASS_FIELDS[p.class_]:
            takes = " and ".join(_CLASS_FIELDS[p.class_]) or "none of coef, group, nlpar"
            raise ArgumentError(f"{p.describe()}: class {p.class_!r} takes {takes}, so "
                                f"{field}={value!r} cannot apply; drop it")
    if p.distribution.name == "lkj" and p.class_ != "cor":
        raise ArgumentError(f"{p.describe()}: lkj is a prior on correlation matrices, for "
                            "class 'cor' only; use e.g. normal or student_t here")
    if p.class_ == "cor" and p.distribution.name != "lkj":
        raise ArgumentError(f"{p.describe()}: correlations take an lkj prior, e.g. "
                            "prior('lkj(2)', class_='cor')")


def prior(spec: str | Distribution, class_: str = "b", coef: str = "", group: str = "",
          nlpar: str = "") -> Prior:
    """A prior on a class of parameters, as brms's ``set_prior`` / ``prior_string``.

    Parameters
    ----------
    spec : str or Distribution
        The distribution as brms writes it, e.g. ``"normal(200, 50)"``, ``"student_t(3, 0, 5)"``,
        ``"lkj(2)"``, ``"exponential(1)"`` (see :func:`parse_distribution`).
    class_ : str
        ``"b"``, ``"Intercept"``, ``"sd"``, ``"cor"``, ``"sigma"``, ``"shape"`` or ``"phi"``.
    coef, group, nlpar : str
        Narrow the prior to one coefficient, one grouping factor, one nonlinear parameter;
        ``""`` (the default) applies it to all.

    Examples
    --------
    >>> prior("normal(200, 50)", nlpar="Asym")    # brms: prior(normal(200, 50), nlpar = "Asym")
    Prior(distribution=Distribution(name='normal', args=(200.0, 50.0)), class_='b', ...)
    >>> prior("lkj(2)", class_="cor")
    Prior(distribution=Distribution(name='lkj', args=(2.0,)), class_='cor', ...)
    >>> prior("student_t(3, 0, 1)", class_="sd", group="herd")
    Prior(distribution=Distribution(name='student_t', args=(3.0, 0.0, 1.0)), class_='sd', ...)

    Raises
    ------
    ArgumentError
        An unreadable distribution, an unknown class, a field the class does not take, lkj on
        anything but ``cor``, or anything but lkj on ``cor``.
    """
    dist = spec if isinstance(spec, Distribution) else parse_distribution(spec)
    if not isinstance(class_, str):
        raise ArgumentError(f"class_ must be text such as 'b' or 'sd', not {type(class_).__name__}")
    result = Prior(dist, class_, coef, group, nlpar)
    _check_prior(result)
    return result


@dataclass(frozen=True)
class Slot:
    """One parameter (or one block, for ``cor``) of a model, classified as brms classifies it.

    Attributes
    ----------
    class_ : str
        As :attr:`Prior.class_`.
    coef : str
        ``b``: the coefficient's name as R names it (``"Days"``, ``"period2"``; ``"Intercept"``
        for a nonlinear parameter's intercept); ``sd``: the term's column (``"Intercept"``,
        ``"Days"``); ``""`` for ``cor``, ``sigma``, ``Intercept``, ``shape``, ``phi``.
    group : str
        ``sd`` / ``cor``: the grouping factor's name.
    nlpar : str
        The nonlinear parameter (nonlinear models).
    """

    class_: str
    coef: str = ""
    group: str = ""
    nlpar: str = ""

    def label(self) -> str:
        """A short name for messages and tables: ``b(Days)``, ``sd(Intercept | Subject)``,
        ``cor(Subject)``, ``b(Asym_Intercept)``, ``sd(Asym_Intercept | Tree)``, ``sigma``."""
        coef = f"{self.nlpar}_{self.coef}" if self.nlpar else self.coef
        if self.class_ == "b":
            return f"b({coef})"
        if self.class_ == "sd":
            return f"sd({coef} | {self.group})"
        if self.class_ == "cor":
            return f"cor({self.nlpar}_* | {self.group})" if self.nlpar else f"cor({self.group})"
        return f"{self.class_}({self.nlpar})" if self.nlpar else self.class_


# ---------------------------------------------------------------------------------------------
# brms's defaults

# Links under which brms reads the response's scale off the link-transformed response
# (brms:::def_scale_prior.brmsterms); any other link keeps location 0 and scale 2.5.
_TRANSFORM_LINKS = ("identity", "log", "inverse", "sqrt", "1/mu^2")

# Families whose mean is modelled on the log scale whatever their link says (brms's "logscale").
_LOG_SCALE_FAMILIES = frozenset({"lognormal"})

_MAD_CONSTANT = 1.4826  # R's mad(): the normal-consistent scale of the median absolute deviation


def _median(x: np.ndarray) -> float:
    """R's ``median``: NaN when any value is NaN; the midpoint of the two middle values computed
    without double rounding of the sum (R averages in long double)."""
    if x.size == 0 or np.isnan(x).any():
        return math.nan
    s = np.sort(x)
    half = (s.size - 1) // 2
    if s.size % 2:
        return float(s[half])
    return math.fsum((float(s[half]), float(s[half + 1]))) / 2.0


def _link_response(y: np.ndarray, link: str) -> np.ndarray:
    # brms moves zeros to 0.1 before links that are infinite at zero.
    if link in ("log", "inverse", "1/mu^2"):
        y = np.where(y == 0, y + 0.1, y)
    with np.errstate(all="ignore"):  # negative values give NaN, as R's (silenced) warnings do
        if link == "log":
            return np.log(y)
        if link == "inverse":
            return 1.0 / y
        if link == "sqrt":
            return np.sqrt(y)
        if link == "1/mu^2":
            return 1.0 / y ** 2
    return y


def _is_factor_like(y: Any) -> bool:
    # R: factors, character and logical responses are not transformed (bernoulli's TRUE/FALSE).
    if isinstance(getattr(y, "dtype", None), pd.CategoricalDtype):
        return True
    return np.asarray(y).dtype.kind in "bOUSM"


def _scale_location(y: Any, link: str, offset: np.ndarray | None) -> tuple[float, float]:
    """brms's response scale and location under ``link``: scale = max(2.5, round(mad, 1)),
    location = round(median, 1) - mean(offset), of the link-transformed response."""
    scale, location = 2.5, 0.0
    if link not in _TRANSFORM_LINKS or _is_factor_like(y):
        return scale, location
    y_link = _link_response(np.asarray(y, dtype=float).ravel(), link)
    center = _median(y_link)
    scale_y = r_round1(_MAD_CONSTANT * _median(np.abs(y_link - center)))
    if math.isfinite(scale_y):
        scale = max(scale, scale_y)
    location_y = r_round1(center)
    if math.isfinite(location_y):
        location = location_y
    if offset is not None and offset.size:  # also when the median was not finite, as brms
        mean_offset = math.fsum(offset.tolist()) / offset.size
        if math.isfinite(mean_offset):
            location -= mean_offset
    return scale, location


_FAMILY_ALIASES = {"negative.binomial": "negbinomial", "negative_binomial": "negbinomial",
                   "negbin": "negbinomial", "nb": "negbinomial"}


def default_priors(slots: Sequence[Slot], family: str, link: str, y: np.ndarray,
                   trials: np.ndarray | None = None, nonlinear: bool = False, *,
                   offset: np.ndarray | None = None) -> dict[Slot, Distribution]:
    """brms 2.18's default prior of each slot (``get_prior``), computed from the response.

    - ``b``: flat (improper); in nonlinear models every nlpar's ``b`` is flat.
    - ``Intercept`` (the centred design's intercept; linear predictors only):
      ``student_t(3, location, scale)`` where, for the identity, log, inverse, sqrt and 1/mu^2
      links, the response is link-transformed (zeros moved to 0.1 first for log, inverse and
      1/mu^2), location = its median rounded to 1 decimal, minus the mean offset, and scale =
      max(2.5, its MAD rounded to 1 decimal); other links (logit, probit, ...) give
      ``student_t(3, 0, 2.5)``. The lognormal family counts as log.
    - ``sd``: ``student_t(3, 0, scale)`` with the scale of the mean's link, lower bound 0.
    - ``sigma``: ``student_t(3, 0, scale)`` with the scale of the response itself (identity,
      or log for lognormal), whatever the mean's link, lower bound 0.
    - ``cor``: ``lkj(1)``; ``shape`` (negative binomial, Gamma) and ``phi`` (beta):
      ``gamma(0.01, 0.01)``.

    Parameters
    ----------
    slots : sequence of Slot
        The model's parameters.
    family, link : str
        R's names (``"gaussian"``, ``"binomial"``, ``"bernoulli"``, ``"poisson"``,
        ``"negbinomial"``, ``"Gamma"``, ``"beta"``, ``"lognormal"``; ``"identity"``, ``"log"``,
        ``"logit"``, ``"inverse"``, ...).
    y : ndarray
        The response. For binomial: the proportions of successes when ``trials`` is given,
        the counts of successes when it is not (brms reads the counts, ``y | trials(n)``).
        For bernoulli 0/1 or booleans.
    trials : ndarray, optional
        The binomial trials: with them, the counts ``y * trials`` are what the defaults read
        (only the identity, log, sqrt, ... links read the response at all; logit gives
        ``student_t(3, 0, 2.5)`` whatever the data).
    nonlinear : bool
        A nonlinear model: there is no centred ``Intercept`` class.
    offset : ndarray, optional
        The linear predictor's offset (``offset(log(size))``): its mean is subtracted from the
        Intercept's location, as brms does.

    Raises
    ------
    ArgumentError
        A slot of an unknown class, or an ``Intercept`` slot in a nonlinear model.
    """
    fam = _FAMILY_ALIASES.get(family.lower(), family.lower())
    y_arr = np.asarray(y)
    if fam == "binomial" and trials is not None and not _is_factor_like(y_arr):
        counts = np.asarray(y_arr, dtype=float) * np.asarray(trials, dtype=float)
        # proportions times trials land a rounding error off the counts brms reads
        rounded = np.rint(counts)
        y_arr = np.where(np.abs(counts - rounded) < 1e-8 * np.maximum(1.0, rounded), rounded,
                         counts)
    off = None if offset is None else np.asarray(offset, dtype=float).ravel()
    mean_link = "log" if fam in _LOG_SCALE_FAMILIES else link
    response_link = "log" if fam in _LOG_SCALE_FAMILIES else "identity"
    mean_scale, location = _scale_location(y_arr, mean_link, off)
    out: dict[Slot, Distribution] = {}
    for slot in slots:
        if slot.class_ == "b":
            out[slot] = FLAT
        elif slot.class_ == "Intercept":
            if nonlinear:
                raise ArgumentError(
                    "nonlinear models have no centred Intercept class: a nonlinear parameter's "
                    "intercept is class 'b', coef 'Intercept', nlpar '<name>'")
            out[slot] = Distribution("student_t", (3.0, location, mean_scale))
        elif slot.class_ == "sd":
            out[slot] = Distribution("student_t", (3.0, 0.0, mean_scale))
        elif slot.class_ == "sigma":
            sigma_scale, _ = _scale_location(y_arr, response_link, None)
            out[slot] = Distribution("student_t", (3.0, 0.0, sigma_scale))
        elif slot.class_ == "cor":
            out[slot] = Distribution("lkj", (1.0,))
        elif slot.class_ in ("shape", "phi"):
            out[slot] = Distribution("gamma", (0.01, 0.01))
        else:
            raise ArgumentError(f"parameter class {slot.class_!r} has no default prior; the "
                                f"classes are {', '.join(PRIOR_CLASSES)}")
    return out


# ---------------------------------------------------------------------------------------------
# Applying the user's priors


@dataclass(frozen=True)
class ResolvedPrior:
    """The prior a parameter gets.

    Attributes
    ----------
    slot : Slot
    distribution : Distribution
        ``name == "flat"`` for an improper flat prior.
    source : str
        ``"user"`` or ``"default"``.
    lower : float or None
        The parameter's lower bound (0.0 for sd, sigma, shape, phi); a location-scale prior
        is truncated there.
    """

    slot: Slot
    distribution: Distribution
    source: str
    lower: float | None


def _matches(p: Prior, slot: Slot) -> bool:
    return p.class_ == slot.class_ and all(
        getattr(p, field) in ("", getattr(slot, field)) for field in ("coef", "group", "nlpar"))


def _specificity(p: Prior) -> tuple[bool, bool, bool]:
    # brms's precedence: a coef-level prior beats a group-level one beats the class-wide one;
    # naming the nlpar narrows further among equals.
    return bool(p.coef), bool(p.group), bool(p.nlpar)


def _check_support(p: Prior, slot: Slot, lower: float | None) -> None:
    # lkj <-> cor is already enforced on the prior itself (_check_prior); what is left is a
    # bounded prior on an unbounded coefficient, and a prior with no mass above a
    # lower-bounded parameter's bound (uniform(-2, -1) on an sd).
    name = p.distribution.name
    if name in ("flat", "lkj"):
        return
    if lower is None:
        low, high = _FORMS[name].support if name != "uniform" else p.distribution.args
        if math.isfinite(low) or math.isfinite(high):
            # Stan (and our sampler) would start the unbounded coefficient outside the
            # support, where the density is 0; brms needs an lb/ub there, which we do not take.
            raise ArgumentError(
                f"{p.describe()}: {slot.label()} is unbounded but {name} only has mass on "
                f"[{r_number(low)}, {r_number(high)}]; use normal, student_t, cauchy or flat")
        return
    top = p.distribution.args[1] if name == "uniform" else _FORMS[name].support[1]
    if top <= lower:
        raise ArgumentError(
            f"{p.describe()}: its support lies below {r_number(lower)}, the lower bound of "
            f"{slot.label()}; choose a distribution with mass above {r_number(lower)}")


def _unmatched_message(p: Prior, slots: Sequence[Slot]) -> str:
    same = [s.label() for s in slots if s.class_ == p.class_]
    if same:
        return (f"{p.describe()} matches no parameter; the model's {p.class_} parameters are: "
                f"{', '.join(same)}")
    return (f"{p.describe()} matches no parameter: the model has no {p.class_} parameters; "
            f"its parameters are: {', '.join(s.label() for s in slots)}")


def resolve_priors(slots: Sequence[Slot], user: Sequence[Prior],
                   defaults: Mapping[Slot, Distribution]) -> list[ResolvedPrior]:
    """The prior of each slot: the most specific user prior that matches it, else its default.

    A user prior matches a slot when the class is equal and each of coef, group, nlpar is
    equal or empty on the prior (empty = all). Among matching priors a coef-level one wins over
    a group-level one over a class-wide one (brms's precedence); naming the nlpar narrows
    further.

    Parameters
    ----------
    slots : sequence of Slot
        The model's parameters; the result follows their order.
    user : sequence of Prior
        The user's priors (:func:`prior`).
    defaults : mapping of Slot to Distribution
        :func:`default_priors`' result; every slot must have one.

    Raises
    ------
    ArgumentError
        A user prior that matches no parameter (the message lists the parameters that exist),
        two priors on the same parameters, a prior whose support does not fit the parameter
        (lkj outside ``cor``, anything but lkj on ``cor``, a distribution wholly below an sd's
        lower bound of 0), or a slot without a default.
    """
    priors = list(user)
    for p in priors:
        if not isinstance(p, Prior):
            raise ArgumentError(f"priors are given with multilevel.prior(...), e.g. "
                                f"prior('normal(0, 5)', class_='b'), not {type(p).__name__}")
        _check_prior(p)
    keys: dict[tuple[str, str, str, str], Prior] = {}
    for p in priors:
        key = (p.class_, p.coef, p.group, p.nlpar)
        if key in keys:
            raise ArgumentError(f"{p.describe()} and {keys[key].describe()} set the same "
                                "parameters twice; keep one")
        keys[key] = p
    out = []
    for slot in slots:
        lower = 0.0 if slot.class_ in _LOWER_ZERO else None
        matching = [(i, p) for i, p in enumerate(priors) if _matches(p, slot)]
        if matching:
            _, best = max(matching, key=lambda ip: _specificity(ip[1]))
            _check_support(best, slot, lower)
            out.append(ResolvedPrior(slot, best.distribution, "user", lower))
            continue
        if slot not in defaults:
            raise ArgumentError(f"no default prior for {slot.label()}; pass the defaults of "
                                "every slot (default_priors)")
        out.append(ResolvedPrior(slot, defaults[slot], "default", lower))
    for p in priors:
        # A prior that matches only to lose to more specific ones is fine (brms keeps it too);
        # one that matches nothing is a typo or a parameter the model does not have.
        if not any(_matches(p, s) for s in slots):
            raise ArgumentError(_unmatched_message(p, slots))
    return out


def prior_summary_table(resolved: Sequence[ResolvedPrior]) -> pd.DataFrame:
    """One row per parameter, with brms ``prior_summary``'s columns: prior, class, coef, group,
    nlpar, lb, ub, source (all text; ``""`` where empty, ``"(flat)"`` for a flat prior)."""
    rows = [{"prior": r.distribution.text(), "class": r.slot.class_, "coef": r.slot.coef,
             "group": r.slot.group, "nlpar": r.slot.nlpar,
             "lb": "" if r.lower is None else r_number(r.lower), "ub": "", "source": r.source}
            for r in resolved]
    columns = ["prior", "class", "coef", "group", "nlpar", "lb", "ub", "source"]
    return pd.DataFrame(rows, columns=columns, dtype=object)


# ---------------------------------------------------------------------------------------------
# Densities


def _truncatable(d: Distribution, lower: float | None) -> bool:
    return lower is not None and _FORMS[d.name].location_scale


def _check_lower(d: Distribution, lower: float | None) -> None:
    if lower is None or d.name in ("flat", "lkj") or _FORMS[d.name].location_scale:
        return
    if d.name == "uniform":
        if d.args[1] <= lower:
            raise ArgumentError(f"{d.text()} has no mass above the lower bound {r_number(lower)}")
        return
    if lower > _FORMS[d.name].support[0]:
        raise ArgumentError(f"{d.text()} cannot be truncated at {r_number(lower)}: only "
                            "location-scale priors (normal, student_t, cauchy) and uniform are "
                            "truncated; positive distributions need no truncation at 0")


def numpyro_distribution(d: Distribution, lower: float | None = None,
                         dim: int | None = None, args: Sequence[Any] | None = None) -> Any:
    """The numpyro distribution of a prior (numpyro is imported here, not at module import).

    Parameters
    ----------
    d : Distribution
    lower : float, optional
        The parameter's lower bound: normal, student_t and cauchy are truncated there
        (``TruncatedDistribution``, normalising constant included, as brms does); uniform's
        lower end is raised to it; exponential, gamma, lognormal and beta already live above 0.
    dim : int, optional
        For ``lkj``, the dimension of the correlation matrix (required): the result is
        ``LKJCholesky(dim, eta)``, a prior on its Cholesky factor. For the others, the
        distribution is expanded to batch shape ``(dim,)`` (independent copies).
    args : sequence, optional
        Values (jax arrays, possibly traced) to use in place of ``d.args``: the sampler passes
        the priors' numbers as arguments of its compiled code, so that one compiled sampler
        serves every prior of the same families.

    Returns
    -------
    numpyro.distributions.Distribution or None
        None for ``flat``: the caller uses an improper flat density.
    """
    import numpyro.distributions as nd

    _check_lower(d, lower)
    a: Sequence[Any] = d.args if args is None else args
    if d.name == "flat":
        return None
    if d.name == "lkj":
        if dim is None or int(dim) < 2:
            raise ArgumentError(f"{d.text()} needs the dimension of the correlation matrix "
                                "(dim >= 2)")
        return nd.LKJCholesky(int(dim), concentration=a[0])
    base: Any
    if d.name == "normal":
        base = nd.Normal(a[0], a[1])
    elif d.name == "student_t":
        base = nd.StudentT(a[0], a[1], a[2])
    elif d.name == "cauchy":
        base = nd.Cauchy(a[0], a[1])
    elif d.name == "exponential":
        base = nd.Exponential(a[0])
    elif d.name == "gamma":
        base = nd.Gamma(a[0], a[1])  # shape, rate: Stan's gamma(alpha, beta)
    elif d.name == "lognormal":
        base = nd.LogNormal(a[0], a[1])
    elif d.name == "beta":
        base = nd.Beta(a[0], a[1])
    else:  # uniform
        if lower is None:
            low = a[0]
        elif args is None:
            low = max(a[0], lower)
        else:
            import jax.numpy as jnp
            low = jnp.maximum(a[0], lower)
        base = nd.Uniform(low, a[1])
    if _truncatable(d, lower):
        base = nd.TruncatedDistribution(base, low=lower)
    return base if dim is None else base.expand((int(dim),))


def _lkj_cholesky_log_density(eta: float, chol: np.ndarray) -> np.ndarray:
    """LKJ(eta) on the Cholesky factor L of a d x d correlation matrix (Lewandowski, Kurowicka
    & Joe 2009): sum over i = 2..d of (d - i + 2 eta - 2) log L_ii, minus the log normalising
    constant (d-1)/2 log(pi) + log Gamma_{d-1}(alpha - 1/2) - (d-1) log Gamma(alpha) with
    alpha = eta + (d-1)/2."""
    chol = np.asarray(chol, dtype=float)
    dim = chol.shape[-1]
    diag = np.diagonal(chol, axis1=-2, axis2=-1)[..., 1:]
    powers = dim - np.arange(2, dim + 1) + 2.0 * eta - 2.0
    unnormalised = np.sum(powers * np.log(diag), axis=-1)
    alpha = eta + 0.5 * (dim - 1)
    log_norm = (0.5 * (dim - 1) * math.log(math.pi) + special.multigammaln(alpha - 0.5, dim - 1)
                - (dim - 1) * special.gammaln(alpha))
    return np.asarray(unnormalised - log_norm)


def _log_sf(d: Distribution, x: float) -> float:
    """log P(X > x) of a location-scale distribution: the truncation's normalising constant."""
    a = d.args
    if d.name == "normal":
        return float(special.log_ndtr((a[0] - x) / a[1]))
    if d.name == "student_t":
        return float(np.log(special.stdtr(a[0], (a[1] - x) / a[2])))
    return float(np.log(0.5 + np.arctan((a[0] - x) / a[1]) / np.pi))  # cauchy


def log_density(d: Distribution, x: np.ndarray, lower: float | None = None) -> np.ndarray:
    """The log density of a prior at ``x`` (numpy/scipy), equal to :func:`numpyro_distribution`'s
    ``log_prob``: with ``lower``, location-scale priors are truncated there (normalising constant
    included) and values below it have log density -inf. ``flat`` gives 0 (improper). For
    ``lkj``, ``x`` holds Cholesky factors of correlation matrices (shape ``(..., d, d)``)."""
    _check_lower(d, lower)
    if d.name == "lkj":
        return _lkj_cholesky_log_density(d.args[0], np.asarray(x, dtype=float))
    x = np.asarray(x, dtype=float)
    a = d.args
    with np.errstate(divide="ignore", invalid="ignore"):
        if d.name == "flat":
            out = np.zeros_like(x)
        elif d.name == "normal":
            z = (x - a[0]) / a[1]
            out = -0.5 * z ** 2 - math.log(a[1]) - 0.5 * math.log(2 * math.pi)
        elif d.name == "student_t":
            nu, z = a[0], (x - a[1]) / a[2]
            out = (special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2)
                   - 0.5 * math.log(nu * math.pi) - math.log(a[2])
                   - (nu + 1) / 2 * np.log1p(z ** 2 / nu))
        elif d.name == "cauchy":
            z = (x - a[0]) / a[1]
            out = -math.log(math.pi * a[1]) - np.log1p(z ** 2)
        elif d.name == "exponential":
            out = np.where(x >= 0, math.log(a[0]) - a[0] * x, -np.inf)
        elif d.name == "gamma":
            out = np.where(x > 0, a[0] * math.log(a[1]) - special.gammaln(a[0])
                           + special.xlogy(a[0] - 1, x) - a[1] * x, -np.inf)
        elif d.name == "lognormal":
            logx = np.log(np.where(x > 0, x, 1.0))
            out = np.where(x > 0, -0.5 * ((logx - a[0]) / a[1]) ** 2 - logx - math.log(a[1])
                           - 0.5 * math.log(2 * math.pi), -np.inf)
        elif d.name == "beta":
            inside = (x > 0) & (x < 1)
            xc = np.where(inside, x, 0.5)
            out = np.where(inside, special.xlogy(a[0] - 1, xc) + special.xlog1py(a[1] - 1, -xc)
                           - special.betaln(a[0], a[1]), -np.inf)
        else:  # uniform, its lower end raised to the bound
            low = a[0] if lower is None else max(a[0], lower)
            out = np.where((x >= low) & (x <= a[1]), -math.log(a[1] - low), -np.inf)
    if lower is not None:
        if _truncatable(d, lower):
            out = out - _log_sf(d, lower)
        out = np.where(x >= lower, out, -np.inf)
    return np.asarray(out, dtype=float)
