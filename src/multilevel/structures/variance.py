"""nlme's residual variance functions (``varIdent``, ``varPower``, ``varExp``, ``varConstPower``,
``varFixed``, ``varComb``) as pure numerics.

The residual of observation ``i`` has standard deviation ``sigma * s_i``, where ``s_i`` is the
*sd multiplier* computed here by :meth:`VarianceFunction.weights`. nlme's ``varWeights()``
returns the reciprocals ``1 / s_i``; :meth:`VarianceFunction.var_weights` returns those, and
:meth:`VarianceFunction.loglik` is nlme's ``logLik(varFunc)`` = ``sum(log(1 / s_i))``.

Every method takes ``theta``, the *unconstrained* parameter vector in nlme's order (what
``coef(obj, unconstrained = TRUE)`` prints); :meth:`VarianceFunction.to_constrained` gives the
natural values (``coef(obj, unconstrained = FALSE)``).

Strata come from the part of the form after ``|``. Their order is nlme's: the order in which the
levels first appear in the data, except that named starting values put the named levels (in the
order given) after the unnamed one (``varIdent``'s reference stratum). :meth:`initialize` fixes
that order; an object that was not initialized derives it from the strata of each call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from multilevel.errors import ArgumentError, DataError
from multilevel.structures.columns import numeric_column

FloatArray = NDArray[np.float64]
Value = float | Sequence[float] | Mapping[str, float] | None

FITTED = "fitted"


@dataclass(frozen=True)
class VarianceForm:
    """A parsed nlme variance form ``~ covariate | g1 * g2``.

    Attributes
    ----------
    covariate : str or None
        Column name, ``"fitted"`` for nlme's ``fitted(.)``, or None for ``~ 1``.
    strata : tuple of str
        Grouping columns after ``|`` (their labels are joined with ``*`` as nlme does).
    """

    covariate: str | None
    strata: tuple[str, ...]


def parse_variance_form(form: str) -> VarianceForm:
    """Parse ``"~ x"``, ``"~ fitted(.)"``, ``"~ 1 | g"``, ``"~ x | g1 * g2"``."""
    text = form.strip()
    if not text.startswith("~"):
        raise ArgumentError(f"variance form {form!r} must start with '~' (e.g. '~ age | Sex').")
    body = text[1:]
    lhs, _, rhs = body.partition("|")
    cov = lhs.strip()
    if cov in ("", "1"):
        covariate: str | None = None
    elif cov in ("fitted", "fitted(.)"):
        covariate = FITTED
    elif cov.isidentifier():
        covariate = cov
    else:
        raise ArgumentError(f"variance form {form!r}: the covariate must be one column name, "
                            "'fitted' or '1'.")
    strata = tuple(s.strip() for s in rhs.split("*")) if rhs.strip() else ()
    if any(not s.isidentifier() for s in strata):
        raise ArgumentError(f"variance form {form!r}: strata after '|' must be column names "
                            "joined by '*'.")
    return VarianceForm(covariate, strata)


def _labels(strata: ArrayLike | None, n: int | None = None) -> NDArray[np.str_] | None:
    if strata is None:
        return None
    arr = np.asarray(strata)
    if arr.ndim == 2:  # several factors: nlme joins their labels with "*"
        return np.array(["*".join(str(v) for v in row) for row in arr])
    return np.array([str(v) for v in arr.ravel()])


def _first_appearance(labels: NDArray[np.str_]) -> tuple[str, ...]:
    _, idx = np.unique(labels, return_index=True)
    return tuple(str(labels[i]) for i in np.sort(idx))


def _codes(labels: NDArray[np.str_], levels: tuple[str, ...], form: str) -> NDArray[np.intp]:
    lookup = {lev: i for i, lev in enumerate(levels)}
    unknown = sorted(set(labels.tolist()) - lookup.keys())
    if unknown:
        raise DataError(f"variance function {form!r}: stratum {unknown[0]!r} was not among the "
                        f"levels it was initialized with ({', '.join(map(repr, levels))}); "
                        "initialize it on data holding every stratum.")
    return np.array([lookup[str(v)] for v in labels], dtype=np.intp)


@dataclass(frozen=True)
class CodedStrata:
    """Strata already coded against a variance function's levels (see
    :meth:`VarianceFunction.weights_function`): accepted wherever ``strata`` are, so that an
    optimization does not turn the labels into codes again at every evaluation."""

    levels: tuple[str, ...]
    codes: NDArray[np.intp]


@dataclass(frozen=True)
class VarianceFunction:
    """Base class: one nlme variance function built from its form string.

    Parameters
    ----------
    form : str
        nlme's form, e.g. ``"~ age | Sex"``.
    value : float, sequence, mapping or None
        Starting values on the natural scale, as nlme's ``value`` argument (a mapping names the
        strata); None gives nlme's defaults.
    levels : tuple of str or None
        Strata levels in nlme's order, set by :meth:`initialize`.
    """

    form: str = "~ 1"
    value: Any = None
    levels: tuple[str, ...] | None = None
    parsed: VarianceForm = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "parsed", parse_variance_form(self.form))
        self._check_start("value", self.value)

    def _check_start(self, argument: str, value: Any, positive: bool = False) -> None:
        """Starting values must be finite numbers (and > 0 where ``positive``): an
        ArgumentError at construction naming the argument, as nlme refuses them."""
        if value is None:
            return
        items = list(value.values()) if isinstance(value, Mapping) else value
        try:
            v = np.atleast_1d(np.asarray(items, dtype=float)).ravel()
        except (TypeError, ValueError) as exc:
            raise ArgumentError(f"{type(self).__name__}(form={self.form!r}): {argument}= "
                                f"must be numbers; got {value!r:.60}.") from exc
        if not np.all(np.isfinite(v)):
            raise ArgumentError(f"{type(self).__name__}(form={self.form!r}): {argument}= "
                                f"must be finite; got {v.tolist()}.")
        if positive and np.any(v <= 0):
            raise ArgumentError(f"{type(self).__name__}(form={self.form!r}): {argument}= "
                                f"must be > 0 (nlme's rule); got {v[v <= 0][0]:g}. Give "
                                f"positive starting values or leave {argument}= out.")

    # ---- strata -------------------------------------------------------------------------
    def _named_value(self) -> Any:
        return self.value

    def _order_levels(self, seen: tuple[str, ...]) -> tuple[str, ...]:
        value = self._named_value()
        if isinstance(value, Mapping):
            named = [str(k) for k in value]
            missing = [k for k in named if k not in seen]
            if missing:
                raise DataError(f"variance function {self.form!r}: starting value names "
                                f"stratum {missing[0]!r}, which is not in the data.")
            return tuple(lev for lev in seen if lev not in named) + tuple(named)
        return seen

    def initialize(self, strata: ArrayLike | None = None) -> VarianceFunction:
        """A copy with the strata levels fixed in nlme's order (nlme's ``Initialize``)."""
        labels = _labels(strata)
        if not self.parsed.strata:
            return self
        if labels is None:
            raise ArgumentError(f"variance function {self.form!r} needs the strata "
                                f"({' * '.join(self.parsed.strata)}) to be initialized.")
        return dataclasses.replace(self, levels=self._order_levels(_first_appearance(labels)))

    def _levels_and_codes(self, strata: ArrayLike | None,
                          n: int) -> tuple[tuple[str, ...], NDArray[np.intp]]:
        if not self.parsed.strata:
            return ("",), np.zeros(n, dtype=np.intp)
        if isinstance(strata, CodedStrata):
            return strata.levels, strata.codes
        labels = _labels(strata)
        if labels is None:
            raise ArgumentError(f"variance function {self.form!r} needs the strata "
                                f"({' * '.join(self.parsed.strata)}).")
        levels = self.levels or self._order_levels(_first_appearance(labels))
        return levels, _codes(labels, levels, self.form)

    def n_levels(self, strata: ArrayLike | None = None) -> int:
        """Number of strata (1 without ``|``)."""
        if not self.parsed.strata:
            return 1
        if self.levels is not None:
            return len(self.levels)
        labels = _labels(strata)
        if labels is None:
            raise ArgumentError(f"variance function {self.form!r} needs the strata.")
        return len(_first_appearance(labels))

    # ---- parameters (overridden) --------------------------------------------------------
    def n_parameters(self, strata: ArrayLike | None = None) -> int:
        """Number of free parameters given the strata of the data."""
        raise NotImplementedError

    def initial(self, strata: ArrayLike | None = None) -> FloatArray:
        """Unconstrained starting values as nlme's ``Initialize`` sets them."""
        raise NotImplementedError

    def to_constrained(self, theta: ArrayLike) -> FloatArray:
        """Natural-scale parameters (``coef(obj, unconstrained = FALSE)``)."""
        return np.asarray(theta, dtype=float).copy()

    def parameters(self, unconstrained: bool = True,
                   strata: ArrayLike | None = None) -> FloatArray:
        """This object's (starting) parameters, as ``coef(obj, unconstrained)``."""
        theta = self.initial(strata)
        return theta if unconstrained else self.to_constrained(theta)

    def weights(self, theta: ArrayLike, covariate: ArrayLike | None = None,
                strata: ArrayLike | None = None) -> FloatArray:
        """sd multipliers ``s_i`` (residual sd = sigma * s_i); nlme's varWeights are 1/s_i."""
        raise NotImplementedError

    # ---- derived ------------------------------------------------------------------------
    def var_weights(self, theta: ArrayLike, covariate: ArrayLike | None = None,
                    strata: ArrayLike | None = None) -> FloatArray:
        """nlme's ``varWeights()``: ``1 / weights(...)``."""
        return 1.0 / self.weights(theta, covariate, strata)

    def loglik(self, theta: ArrayLike, covariate: ArrayLike | None = None,
               strata: ArrayLike | None = None) -> float:
        """nlme's ``logLik(varFunc)``: ``sum(log(varWeights))`` = ``-sum(log s_i)``."""
        return float(-np.sum(np.log(self.weights(theta, covariate, strata))))

    def log_det(self, theta: ArrayLike, covariate: ArrayLike | None = None,
                strata: ArrayLike | None = None) -> float:
        """``log det diag(s_i^2)``: the variance function's term of ``log|V| / sigma^2``."""
        return -2.0 * self.loglik(theta, covariate, strata)

    def columns(self, data: Mapping[str, Any],
                fitted: ArrayLike | None = None) -> tuple[FloatArray | None, Any]:
        """The covariate and strata this form reads from ``data`` (a dict or DataFrame)."""
        cov: FloatArray | None = None
        name = self.parsed.covariate
        if name == FITTED:
            if fitted is None:
                raise ArgumentError(f"variance function {self.form!r} needs the fitted values.")
            cov = np.asarray(fitted, dtype=float)
        elif name is not None:
            cov = self._numeric_covariate(data, name)
        strata = None
        if self.parsed.strata:
            strata = np.column_stack([np.asarray(data[s]).astype(str) for s in self.parsed.strata])
        return cov, strata

    def _numeric_covariate(self, data: Mapping[str, Any], name: str) -> FloatArray:
        # a text or factor column has no powers or exponentials: say so before fitting
        return numeric_column(data, name, lambda example: (
            f"{type(self).__name__}(form={self.form!r}): the variance covariate {name!r} "
            f"is not numeric (it holds {example!r}); give a numeric column, or "
            f"VarIdent(form='~ 1 | {name}') for one variance per level of {name!r}."))

    def weights_from_data(self, theta: ArrayLike, data: Mapping[str, Any],
                          fitted: ArrayLike | None = None) -> FloatArray:
        """:meth:`weights` with the covariate and strata read from ``data``."""
        cov, strata = self.columns(data, fitted)
        return self.weights(theta, cov, strata)

    def weights_function(self, data: Mapping[str, Any], fitted: ArrayLike | None = None,
                         ) -> Callable[[ArrayLike], FloatArray]:
        """:meth:`weights_from_data` as a function of ``theta`` alone: the covariate read and
        the strata coded once, for the many evaluations of an optimization."""
        cov, strata = self.columns(data, fitted)
        if strata is not None and self.parsed.strata:
            strata = CodedStrata(*self._levels_and_codes(strata, len(strata)))
        return lambda theta: self.weights(theta, cov, strata)

    def initialize_data(self, data: Mapping[str, Any]) -> VarianceFunction:
        """:meth:`initialize` with the strata read from ``data``."""
        return self.initialize(self.columns(data, np.zeros(1))[1])

    @property
    def uses_fitted(self) -> bool:
        """Whether the covariate is nlme's ``fitted(.)`` (the model's fitted values)."""
        return self.parsed.covariate == FITTED

    def column_names(self) -> list[str]:
        """The data columns the form reads (the covariate unless fitted, the strata)."""
        cov = self.parsed.covariate
        return [c for c in [cov, *self.parsed.strata] if c and c != FITTED]

    def start_from_data(self, data: Mapping[str, Any]) -> FloatArray:
        """Unconstrained starting values, the strata read from ``data``."""
        return self.initial(self.columns(data, np.zeros(1))[1])

    def natural_from_data(self, theta: ArrayLike, data: Mapping[str, Any]) -> FloatArray:
        """:meth:`to_constrained` (``data`` is for :class:`VarComb`, whose split needs it)."""
        return self.to_constrained(theta)

    def _covariate(self, covariate: ArrayLike | None) -> FloatArray:
        if covariate is None:
            raise ArgumentError(f"variance function {self.form!r} needs its covariate "
                                f"({self.parsed.covariate}).")
        return np.asarray(covariate, dtype=float).ravel()

    def _check(self, theta: ArrayLike, k: int) -> FloatArray:
        t = np.asarray(theta, dtype=float).ravel()
        if t.size != k:
            raise ArgumentError(f"variance function {self.form!r} has {k} parameters; "
                                f"got {t.size}.")
        return t

    def _per_level(self, value: Any, default: float, levels: tuple[str, ...]) -> FloatArray:
        if value is None:
            return np.full(len(levels), default)
        if isinstance(value, Mapping):
            return np.array([float(value[lev]) if lev in value else default for lev in levels])
        v = np.atleast_1d(np.asarray(value, dtype=float))
        if v.size == 1:
            return np.full(len(levels), float(v[0]))
        if v.size != len(levels):
            raise ArgumentError(f"variance function {self.form!r}: {v.size} starting values "
                                f"for {len(levels)} strata.")
        return v


@dataclass(frozen=True)
class VarIdent(VarianceFunction):
    """nlme's ``varIdent(value, form = ~ 1 | g)``: a different sd per stratum.

    The first stratum is the reference (ratio 1); the others have ratios ``exp(theta)``.
    """

    form: str = "~ 1 | g"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.parsed.strata:
            raise ArgumentError(f"varIdent form {self.form!r} needs strata: '~ 1 | g'.")
        # the starting values are SD ratios
        self._check_start("value", self.value, positive=True)

    def n_parameters(self, strata: ArrayLike | None = None) -> int:
        return self.n_levels(strata) - 1

    def initial(self, strata: ArrayLike | None = None) -> FloatArray:
        levels = self.levels or self.initialize(strata).levels or ()
        if len(levels) <= 1:
            return np.zeros(0)
        if isinstance(self.value, Mapping):
            return np.log(np.array([float(self.value[lev]) for lev in levels[1:]]))
        return np.log(self._per_level(self.value, 1.0, levels[1:]))

    def to_constrained(self, theta: ArrayLike) -> FloatArray:
        return np.exp(np.asarray(theta, dtype=float))

    def weights(self, theta: ArrayLike, covariate: ArrayLike | None = None,
                strata: ArrayLike | None = None) -> FloatArray:
        if isinstance(strata, CodedStrata):
            n = strata.codes.size
        else:
            labels = _labels(strata)
            n = 0 if labels is None else labels.size
        levels, codes = self._levels_and_codes(strata, n)
        t = self._check(theta, max(len(levels) - 1, 0))
        ratios = np.concatenate([[1.0], np.exp(t)])
        return ratios[codes]


@dataclass(frozen=True)
class VarPower(VarianceFunction):
    """nlme's ``varPower(value = 0, form = ~ fitted(.))``: sd multiplier ``|v|^delta``.

    One ``delta`` per stratum; unconstrained and natural scales coincide.
    """

    form: str = "~ fitted"

    def n_parameters(self, strata: ArrayLike | None = None) -> int:
        return self.n_levels(strata)

    def _init_levels(self, strata: ArrayLike | None) -> tuple[str, ...]:
        if not self.parsed.strata:
            return ("",)
        return self.levels or self.initialize(strata).levels or ()

    def initial(self, strata: ArrayLike | None = None) -> FloatArray:
        return self._per_level(self.value, 0.0, self._init_levels(strata))

    def _sd(self, t: FloatArray, v: FloatArray) -> FloatArray:
        return np.abs(v) ** t

    def weights(self, theta: ArrayLike, covariate: ArrayLike | None = None,
                strata: ArrayLike | None = None) -> FloatArray:
        v = self._covariate(covariate)
        levels, codes = self._levels_and_codes(strata, v.size)
        t = self._check(theta, len(levels))
        return self._sd(t[codes], v)


@dataclass(frozen=True)
class VarExp(VarPower):
    """nlme's ``varExp(value = 0, form = ~ fitted(.))``: sd multiplier ``exp(t * v)``."""

    def _sd(self, t: FloatArray, v: FloatArray) -> FloatArray:
        return np.exp(t * v)


@dataclass(frozen=True)
class VarConstPower(VarPower):
    """nlme's ``varConstPower(const = 1, power = 0, form)``: sd multiplier ``c + |v|^p``.

    Unconstrained parameters: ``log(c)`` for every stratum, then ``p`` for every stratum.
    """

    const: Any = None
    power: Any = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_start("const", self.const, positive=True)
        self._check_start("power", self.power)

    def _named_value(self) -> Any:
        return self.const if isinstance(self.const, Mapping) else self.power

    def n_parameters(self, strata: ArrayLike | None = None) -> int:
        return 2 * self.n_levels(strata)

    def initial(self, strata: ArrayLike | None = None) -> FloatArray:
        levels = self._init_levels(strata)
        return np.concatenate([np.log(self._per_level(self.const, 1.0, levels)),
                               self._per_level(self.power, 0.0, levels)])

    def to_constrained(self, theta: ArrayLike) -> FloatArray:
        t = np.asarray(theta, dtype=float).copy()
        k = t.size // 2
        t[:k] = np.exp(t[:k])
        return t

    def weights(self, theta: ArrayLike, covariate: ArrayLike | None = None,
                strata: ArrayLike | None = None) -> FloatArray:
        v = self._covariate(covariate)
        levels, codes = self._levels_and_codes(strata, v.size)
        t = self._check(theta, 2 * len(levels))
        k = len(levels)
        return np.exp(t[:k])[codes] + np.abs(v) ** t[k:][codes]


@dataclass(frozen=True)
class VarFixed(VarianceFunction):
    """nlme's ``varFixed(~ x)``: sd multiplier ``sqrt(|x|)``, no parameters."""

    def n_parameters(self, strata: ArrayLike | None = None) -> int:
        return 0

    def initial(self, strata: ArrayLike | None = None) -> FloatArray:
        return np.zeros(0)

    def weights(self, theta: ArrayLike, covariate: ArrayLike | None = None,
                strata: ArrayLike | None = None) -> FloatArray:
        self._check(theta, 0)
        return np.sqrt(np.abs(self._covariate(covariate)))


class VarComb:
    """nlme's ``varComb(...)``: the product of several variance functions' sd multipliers.

    Parameters are the components' parameters concatenated in order. The covariate and strata
    of each component are read from ``data`` (:meth:`weights_from_data`).
    """

    def __init__(self, *components: VarianceFunction) -> None:
        if not components:
            raise ArgumentError("VarComb needs at least one variance function.")
        for c in components:
            if not isinstance(c, VarianceFunction):
                raise ArgumentError(f"VarComb combines variance functions (VarIdent, VarPower, "
                                    f"...); got {type(c).__name__}. List the components of a "
                                    "nested VarComb directly.")
        self.components: tuple[VarianceFunction, ...] = tuple(components)

    def __repr__(self) -> str:
        return f"VarComb({', '.join(map(repr, self.components))})"

    @property
    def form(self) -> str:
        """The components' forms, as nlme's ``formula(varComb)`` lists them."""
        return ", ".join(c.form for c in self.components)

    def initialize_data(self, data: Mapping[str, Any]) -> VarComb:
        """Initialize every component on ``data``."""
        return VarComb(*(c.initialize_data(data) for c in self.components))

    @property
    def uses_fitted(self) -> bool:
        """Whether a component's covariate is nlme's ``fitted(.)``."""
        return any(c.uses_fitted for c in self.components)

    def column_names(self) -> list[str]:
        """The data columns the components read."""
        return [name for c in self.components for name in c.column_names()]

    def start_from_data(self, data: Mapping[str, Any]) -> FloatArray:
        """Unconstrained starting values of the components, concatenated."""
        return self.parameters(data)

    def natural_from_data(self, theta: ArrayLike, data: Mapping[str, Any]) -> FloatArray:
        """:meth:`to_constrained`."""
        return self.to_constrained(theta, data)

    def _sizes(self, data: Mapping[str, Any]) -> list[int]:
        return [c.n_parameters(c.columns(data, np.zeros(1))[1]) for c in self.components]

    def n_parameters(self, data: Mapping[str, Any]) -> int:
        """Number of free parameters given the data."""
        return sum(self._sizes(data))

    def parameters(self, data: Mapping[str, Any], unconstrained: bool = True) -> FloatArray:
        """Starting parameters, concatenated (``coef(varComb, unconstrained)``)."""
        parts = [c.parameters(unconstrained, c.columns(data, np.zeros(1))[1])
                 for c in self.components]
        return np.concatenate(parts) if parts else np.zeros(0)

    def to_constrained(self, theta: ArrayLike, data: Mapping[str, Any]) -> FloatArray:
        """Natural-scale parameters."""
        return np.concatenate([c.to_constrained(t) for c, t in
                               zip(self.components, self._split(theta, data), strict=True)])

    def split(self, theta: ArrayLike, data: Mapping[str, Any]) -> list[FloatArray]:
        """``theta`` cut into the components' parameter vectors, in order."""
        return self._split(theta, data)

    def sizes(self, data: Mapping[str, Any]) -> list[int]:
        """Each component's number of parameters given the data."""
        return self._sizes(data)

    def _split(self, theta: ArrayLike, data: Mapping[str, Any]) -> list[FloatArray]:
        t = np.asarray(theta, dtype=float).ravel()
        sizes = self._sizes(data)
        if t.size != sum(sizes):
            raise ArgumentError(f"varComb has {sum(sizes)} parameters; got {t.size}.")
        return np.split(t, np.cumsum(sizes)[:-1])

    def weights_from_data(self, theta: ArrayLike, data: Mapping[str, Any],
                          fitted: ArrayLike | None = None) -> FloatArray:
        """sd multipliers: the product of the components'."""
        out: FloatArray | None = None
        for comp, t in zip(self.components, self._split(theta, data), strict=True):
            w = comp.weights_from_data(t, data, fitted)
            out = w if out is None else out * w
        assert out is not None
        return out

    def weights_function(self, data: Mapping[str, Any], fitted: ArrayLike | None = None,
                         ) -> Callable[[ArrayLike], FloatArray]:
        """:meth:`weights_from_data` as a function of ``theta`` alone (each component's
        columns read once)."""
        sizes = self._sizes(data)
        parts = [c.weights_function(data, fitted) for c in self.components]

        def weights(theta: ArrayLike) -> FloatArray:
            t = np.asarray(theta, dtype=float).ravel()
            if t.size != sum(sizes):
                raise ArgumentError(f"varComb has {sum(sizes)} parameters; got {t.size}.")
            out: FloatArray | None = None
            for part, ti in zip(parts, np.split(t, np.cumsum(sizes)[:-1]), strict=True):
                w = part(ti)
                out = w if out is None else out * w
            assert out is not None
            return out

        return weights

    def loglik(self, theta: ArrayLike, data: Mapping[str, Any],
               fitted: ArrayLike | None = None) -> float:
        """nlme's ``logLik(varComb)``: ``-sum(log s_i)``."""
        return float(-np.sum(np.log(self.weights_from_data(theta, data, fitted))))
