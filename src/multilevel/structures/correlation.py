"""nlme's within-group correlation structures (``corAR1``, ``corCAR1``, ``corARMA``,
``corCompSymm``, ``corSymm`` and the spatial ``corExp``, ``corGaus``, ``corLin``, ``corSpher``,
``corRatio``) as pure numerics.

Conventions (nlme's):

- ``params`` are the natural parameters (``coef(obj, unconstrained = FALSE)``): ``phi`` for AR1 /
  CAR1, ``(phi_1..phi_p, theta_1..theta_q)`` for ARMA, ``rho`` for compound symmetry, the
  correlations ``r_12, r_13, ..., r_23, ...`` for corSymm, ``(range[, nugget])`` for spatial.
- ``theta`` are nlme's unconstrained parameters (``coef(obj, unconstrained = TRUE)``). Some
  transforms depend on the data (corCompSymm on the largest group, corLin / corSpher on the
  smallest distance): :meth:`CorrelationStructure.to_unconstrained` and ``to_constrained`` take
  the list of per-group covariates.
- ``times`` is one group's covariate: integer positions for AR1 / ARMA / corSymm (``~ 1`` gives
  1, 2, ..., n), real times for CAR1, an ``(n, d)`` array of coordinates (or a 1-d vector) for
  spatial classes.
- :meth:`CorrelationStructure.factor` is nlme's ``corFactor`` for one group: a matrix ``F`` with
  ``F' F = R^-1`` (the inverse lower Cholesky factor, except corCompSymm's Helmert-type factor);
  :meth:`CorrelationStructure.log_det` is ``log|R|`` (nlme's ``logDet()`` is half of it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.linalg import solve_triangular
from scipy.spatial.distance import pdist, squareform

from multilevel.errors import ArgumentError, DataError, NumericalError
from multilevel.structures.columns import numeric_column

FloatArray = NDArray[np.float64]
Times = Sequence[ArrayLike]


@dataclass(frozen=True)
class CorrelationForm:
    """A parsed nlme correlation form ``~ covariate(s) | group``.

    Attributes
    ----------
    covariates : tuple of str
        Empty for ``~ 1`` (positions 1..n within each group); several for spatial ``~ x + y``.
    groups : tuple of str
        The grouping columns after ``|``, outermost first: one for ``| g``, several for nlme's
        nested ``| a/b`` (the groups are the combinations of their levels); empty for one
        group.
    """

    covariates: tuple[str, ...]
    groups: tuple[str, ...] = ()

    @property
    def group(self) -> str | None:
        """The innermost grouping column (the only one without nesting), or None."""
        return self.groups[-1] if self.groups else None

    @property
    def group_text(self) -> str | None:
        """The grouping as the form writes it (``a/b``), or None."""
        return "/".join(self.groups) if self.groups else None


def parse_correlation_form(form: str) -> CorrelationForm:
    """Parse ``"~ 1 | g"``, ``"~ time | g"``, ``"~ x + y | g"``, ``"~ time"``, and nlme's
    nested groups ``"~ 1 | a/b"`` (any depth)."""
    text = form.strip()
    if not text.startswith("~"):
        raise ArgumentError(f"correlation form {form!r} must start with '~' (e.g. '~ 1 | g').")
    lhs, _, rhs = text[1:].partition("|")
    covs = tuple(c.strip() for c in lhs.split("+"))
    covs = () if covs == ("1",) or covs == ("",) else covs
    groups = tuple(g.strip() for g in rhs.split("/")) if rhs.strip() else ()
    if any(not c.isidentifier() for c in covs) or any(not g.isidentifier() for g in groups):
        raise ArgumentError(f"correlation form {form!r}: covariates must be column names "
                            "joined by '+', with one grouping column after '|' or nested "
                            "ones joined by '/' (e.g. '~ 1 | Dog/Side').")
    return CorrelationForm(covs, groups)


def group_codes(data: Mapping[str, Any], columns: Sequence[str]) -> NDArray[np.intp]:
    """Each row's group among the combinations of ``columns``' levels (nlme's nested
    ``a/b``), numbered in order of first appearance; -1 where a column is missing."""
    n = len(np.asarray(data[columns[0]]))
    codes = np.zeros(n, dtype=np.intp)
    missing = np.zeros(n, dtype=bool)
    for col in columns:
        c = pd.factorize(pd.Series(np.asarray(data[col], dtype=object)), sort=False)[0]
        missing |= c < 0
        # the combination of the codes so far with this column's, renumbered compactly
        pair = codes * (int(c.max(initial=0)) + 1) + np.maximum(c, 0)
        codes = pd.factorize(pair, sort=False)[0].astype(np.intp)
    codes[missing] = -1
    if missing.any():  # renumber the rest in order of first appearance
        kept = codes >= 0
        codes[kept] = pd.factorize(codes[kept], sort=False)[0]
    return codes


def _split(values: FloatArray, codes: NDArray[np.intp] | None) -> list[FloatArray]:
    if codes is None:
        return [values]
    kept = np.flatnonzero(codes >= 0)
    # one stable sort keeps each group's rows in data order (a scan per group is O(n groups));
    # groups in order of first appearance, as nlme's lists
    order = kept[np.argsort(codes[kept], kind="stable")]
    counts = np.bincount(codes[kept], minlength=int(codes.max(initial=-1)) + 1)
    return np.split(values[order], np.cumsum(counts)[:-1])


def _symmetric_from_lags(lag_corr: FloatArray, lags: NDArray[np.intp]) -> FloatArray:
    out: FloatArray = lag_corr[lags]
    return out


@dataclass(frozen=True)
class CorrelationStructure:
    """Base class: an nlme correlation structure built from its form string.

    Parameters
    ----------
    value : float, sequence or None
        Starting values on the natural scale (nlme's ``value``); None gives nlme's defaults.
    form : str
        nlme's form, e.g. ``"~ 1 | Subject"``.
    """

    value: Any = None
    form: str = "~ 1"
    parsed: CorrelationForm = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "parsed", parse_correlation_form(self.form))

    # ---- data ---------------------------------------------------------------------------
    def group_codes(self, data: Mapping[str, Any]) -> NDArray[np.intp] | None:
        """Each row's correlation group (the combinations of the form's grouping columns),
        numbered in order of first appearance, -1 where a grouping column is missing; None
        for one group of all rows."""
        if not self.parsed.groups:
            return None
        return group_codes(data, self.parsed.groups)

    def column_names(self) -> list[str]:
        """The data columns the form reads: the covariates, then the grouping columns."""
        return [*self.parsed.covariates, *self.parsed.groups]

    def covariates(self, data: Mapping[str, Any]) -> list[FloatArray]:
        """Per-group covariates from ``data`` (dict or DataFrame), groups in order of
        appearance; ``~ 1`` gives positions 1..n_i."""
        codes = self.group_codes(data)
        if self.parsed.covariates:
            cols = [self._numeric_covariate(data, c) for c in self.parsed.covariates]
            values = np.column_stack(cols) if len(cols) > 1 else cols[0]
            return _split(values, codes)
        n = len(np.asarray(data[next(iter(data))]))
        parts = _split(np.zeros(n), codes)
        return [np.arange(1.0, p.size + 1) for p in parts]

    def _numeric_covariate(self, data: Mapping[str, Any], name: str) -> FloatArray:
        # a text or factor column cannot be a time or a coordinate: say so before fitting
        what = "coordinate" if isinstance(self, CorSpatial) else "time covariate"
        group = f" | {self.parsed.group_text}" if self.parsed.groups else ""
        return numeric_column(data, name, lambda example: (
            f"{type(self).__name__}(form={self.form!r}): the {what} {name!r} is not "
            f"numeric (it holds {example!r}); give a numeric column, or '~ 1{group}' "
            "for positions 1..n in the data's row order within each group."))

    def check_times(self, times: ArrayLike) -> FloatArray:
        """Validate one group's covariate (overridden where nlme has rules)."""
        return np.asarray(times, dtype=float)

    # ---- parameters ---------------------------------------------------------------------
    def n_parameters(self, times: Times) -> int:
        """Number of parameters given the data's per-group covariates."""
        return self.initial(times).size

    def natural_start(self, times: Times) -> FloatArray:
        """Natural starting values: ``value`` or nlme's default."""
        raise NotImplementedError

    def to_unconstrained(self, params: ArrayLike, times: Times) -> FloatArray:
        """nlme's unconstrained parameters from natural ones."""
        raise NotImplementedError

    def to_constrained(self, theta: ArrayLike, times: Times) -> FloatArray:
        """Natural parameters from nlme's unconstrained ones."""
        raise NotImplementedError

    def initial(self, times: Times) -> FloatArray:
        """Unconstrained starting values as nlme's ``Initialize`` sets them."""
        return self.to_unconstrained(self.natural_start(times), times)

    def parameters(self, times: Times, unconstrained: bool = True) -> FloatArray:
        """Starting parameters, as ``coef(Initialize(obj, data), unconstrained)``."""
        theta = self.initial(times)
        return theta if unconstrained else self.to_constrained(theta, times)

    # ---- matrices -----------------------------------------------------------------------
    def corr_matrix(self, params: ArrayLike, times: ArrayLike) -> FloatArray:
        """Correlation matrix of one group (nlme's ``corMatrix``), natural ``params``."""
        raise NotImplementedError

    def factor(self, params: ArrayLike, times: ArrayLike) -> FloatArray:
        """nlme's ``corFactor`` for one group: ``F`` with ``F' F = R^-1``, lower triangular."""
        r = self.corr_matrix(params, times)
        try:
            lower = np.linalg.cholesky(r)
        except np.linalg.LinAlgError as exc:
            raise NumericalError(
                f"{type(self).__name__}: the correlation matrix at "
                f"{np.asarray(params).tolist()} is not positive definite.") from exc
        out: FloatArray = solve_triangular(lower, np.eye(r.shape[0]), lower=True)
        return out

    def log_det(self, params: ArrayLike, times: ArrayLike) -> float:
        """``log|R|`` of one group (twice nlme's ``logDet`` contribution)."""
        f = self.factor(params, times)
        return float(-2.0 * np.sum(np.log(np.abs(np.diag(f)))))

    def corr_matrices(self, params: ArrayLike, times: Times) -> list[FloatArray]:
        """:meth:`corr_matrix` for every group; groups with equal covariates share work."""
        return _per_group(self.corr_matrix, params, times)

    def factors(self, params: ArrayLike, times: Times) -> list[FloatArray]:
        """:meth:`factor` for every group (shared as :meth:`corr_matrices`)."""
        return _per_group(self.factor, params, times)

    def total_log_det(self, params: ArrayLike, times: Times) -> float:
        """Sum over groups of ``log|R_g|`` (twice nlme's ``logDet(obj)``)."""
        return float(sum(-2.0 * np.sum(np.log(np.abs(np.diag(f))))
                         for f in self.factors(params, times)))

    def _params(self, params: ArrayLike, k: int) -> FloatArray:
        p = np.atleast_1d(np.asarray(params, dtype=float)).ravel()
        if p.size != k:
            raise ArgumentError(f"{type(self).__name__} has {k} parameters; got {p.size}.")
        return p


def _per_group(method: Any, params: ArrayLike, times: Times) -> list[FloatArray]:
    """``method(params, t)`` for each group's covariates ``t``, computed once per distinct
    ``t`` (balanced designs repeat the same times in every group)."""
    cache: dict[bytes, FloatArray] = {}
    out = []
    for t in times:
        arr = np.ascontiguousarray(t, dtype=float)
        key = arr.tobytes() + str(arr.shape).encode()
        if key not in cache:
            cache[key] = method(params, arr)
        out.append(cache[key])
    return out


def _start_value(value: Any, who: str, sizes: Sequence[int] = (1,),
                 what: str = "value") -> FloatArray | None:
    """``value`` as finite floats of one of the allowed ``sizes`` (None stays None): an
    ArgumentError naming the structure and the argument otherwise."""
    if value is None:
        return None
    try:
        v = np.atleast_1d(np.asarray(value, dtype=float)).ravel()
    except (TypeError, ValueError) as exc:
        raise ArgumentError(f"{who}: {what}= must be numbers; got {value!r:.60}.") from exc
    if v.size not in sizes:
        raise ArgumentError(f"{who}: {what}= takes {' or '.join(map(str, sizes))} number(s); "
                            f"got {v.size}.")
    if not np.all(np.isfinite(v)):
        raise ArgumentError(f"{who}: {what}= must be finite; got {v.tolist()}.")
    return v


def _check_open_interval(v: FloatArray | None, low: float, high: float, who: str,
                         what: str = "value=") -> None:
    """Each starting value in the open interval (low, high), nlme's rule."""
    if v is None:
        return
    bad = v[(v <= low) | (v >= high)]
    if bad.size:
        raise ArgumentError(f"{who}: {what} must lie strictly between {low:g} and {high:g} "
                            f"(nlme's rule); got {bad[0]:g}. Give a starting value inside "
                            "that range or leave it out for nlme's default.")


# ---- serial structures with integer positions ----------------------------------------------

def _integer_positions(times: ArrayLike, who: str) -> NDArray[np.intp]:
    t = np.asarray(times, dtype=float).ravel()
    if not np.all(np.isfinite(t)) or np.any(t != np.round(t)):
        bad = t[~np.isfinite(t) | (t != np.round(t))][0]
        raise DataError(f"{who}: the time covariate must hold integer positions within each "
                        f"group (found {bad}); use CorCAR1 for continuous times.")
    if np.unique(t).size != t.size:
        dup = t[np.argsort(t)][np.flatnonzero(np.diff(np.sort(t)) == 0)[0]]
        raise DataError(f"{who}: the time covariate must have unique values within a group "
                        f"(time {dup:g} repeats).")
    return t.astype(np.intp)


def _lags(pos: NDArray[np.intp]) -> NDArray[np.intp]:
    out: NDArray[np.intp] = np.abs(pos[:, None] - pos[None, :])
    return out


def _fisher(r: FloatArray) -> FloatArray:
    out: FloatArray = np.log((1.0 + r) / (1.0 - r))
    return out


def _inv_fisher(u: FloatArray) -> FloatArray:
    out: FloatArray = np.tanh(u / 2.0)  # (exp(u) - 1) / (exp(u) + 1)
    return out


@dataclass(frozen=True)
class CorAR1(CorrelationStructure):
    """nlme's ``corAR1(value = 0, form = ~ 1)``: ``cor = phi^|t_i - t_j|``, integer times.

    Unconstrained: ``log((1 + phi) / (1 - phi))``. Times must be integers without duplicates
    within a group (nlme falls back to ``corARMA(p = 1)`` for gaps: the same correlations).
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_open_interval(_start_value(self.value, "CorAR1"), -1.0, 1.0, "CorAR1")

    def check_times(self, times: ArrayLike) -> FloatArray:
        return _integer_positions(times, "corAR1").astype(float)

    def natural_start(self, times: Times) -> FloatArray:
        return np.atleast_1d(np.asarray(0.0 if self.value is None else self.value, dtype=float))

    def to_unconstrained(self, params: ArrayLike, times: Times) -> FloatArray:
        return _fisher(self._params(params, 1))

    def to_constrained(self, theta: ArrayLike, times: Times) -> FloatArray:
        return _inv_fisher(self._params(theta, 1))

    def corr_matrix(self, params: ArrayLike, times: ArrayLike) -> FloatArray:
        phi = self._params(params, 1)[0]
        lags = _lags(_integer_positions(times, "corAR1"))
        out: FloatArray = phi ** lags.astype(float)
        return out

    def factor(self, params: ArrayLike, times: ArrayLike) -> FloatArray:
        pos = _integer_positions(times, "corAR1")
        if pos.size > 1 and np.all(np.diff(pos) == 1):  # nlme's closed form (AR1_fact)
            phi = self._params(params, 1)[0]
            s = math.sqrt(1.0 - phi * phi)
            f = np.diag(np.r_[1.0, np.full(pos.size - 1, 1.0 / s)])
            f[np.arange(1, pos.size), np.arange(pos.size - 1)] = -phi / s
            return f
        return super().factor(params, times)


@dataclass(frozen=True)
class CorCAR1(CorrelationStructure):
    """nlme's ``corCAR1(value = 0.2, form = ~ 1)``: ``cor = phi^|t_i - t_j|``, real times.

    ``0 < phi < 1``; unconstrained: ``log(phi / (1 - phi))``.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_open_interval(_start_value(self.value, "CorCAR1"), 0.0, 1.0, "CorCAR1")

    def check_times(self, times: ArrayLike) -> FloatArray:
        t = np.asarray(times, dtype=float).ravel()
        if np.unique(t).size != t.size:
            raise DataError("corCAR1: the time covariate must have unique values within a "
                            "group.")
        return t

    def natural_start(self, times: Times) -> FloatArray:
        return np.atleast_1d(np.asarray(0.2 if self.value is None else self.value, dtype=float))

    def to_unconstrained(self, params: ArrayLike, times: Times) -> FloatArray:
        p = self._params(params, 1)
        out: FloatArray = np.log(p / (1.0 - p))
        return out

    def to_constrained(self, theta: ArrayLike, times: Times) -> FloatArray:
        e = np.exp(self._params(theta, 1))
        out: FloatArray = e / (1.0 + e)
        return out

    def corr_matrix(self, params: ArrayLike, times: ArrayLike) -> FloatArray:
        phi = self._params(params, 1)[0]
        t = self.check_times(times)
        out: FloatArray = phi ** np.abs(t[:, None] - t[None, :])
        return out


def _arma_untransform(u: FloatArray, sign: float) -> FloatArray:
    # partial autocorrelations r_k = tanh(u_k / 2) -> coefficients by the Durbin-Levinson
    # recursion (nlme's ARMA_untransPar; sign -1 for the AR part, +1 for the MA part)
    pars = np.zeros(u.size)
    for i in range(u.size):
        r = math.tanh(u[i] / 2.0)
        prev = pars[:i].copy()
        pars[:i] = prev + sign * r * prev[::-1]
        pars[i] = r
    return pars


def _arma_transform(pars: FloatArray, sign: float, who: str) -> FloatArray:
    # the inverse of _arma_untransform (nlme's ARMA_transPar with -sign)
    a = pars.astype(float).copy()
    for n in range(a.size - 1, -1, -1):
        r = a[n]
        if r * r >= 1.0:
            raise ArgumentError(f"{who}: the parameters do not define a stationary, invertible "
                                "process (a partial autocorrelation is not inside (-1, 1)).")
        prev = a[:n].copy()
        a[:n] = (prev - sign * r * prev[::-1]) / (1.0 - r * r)
        a[n] = math.log((1.0 + r) / (1.0 - r))
    return a


def arma_autocorrelation(phi: ArrayLike, theta: ArrayLike, max_lag: int) -> FloatArray:
    """Autocorrelations at lags 0..max_lag of ``x_t = sum phi_j x_{t-j} + e_t + sum theta_j
    e_{t-j}`` (stationary AR part)."""
    ph = np.atleast_1d(np.asarray(phi, dtype=float))
    th = np.atleast_1d(np.asarray(theta, dtype=float))
    p, q = ph.size, th.size
    theta0 = np.r_[1.0, th]
    psi = np.zeros(q + 1)  # psi weights of the MA(infinity) form
    psi[0] = 1.0
    for i in range(1, q + 1):
        psi[i] = theta0[i] + sum(ph[j] * psi[i - j - 1] for j in range(min(p, i)))
    c = np.array([sum(theta0[j] * psi[j - k] for j in range(k, q + 1))
                  for k in range(max(p, q, max_lag) + 1)])
    # gamma_k - sum_j phi_j gamma_|k-j| = c_k for k = 0..p gives gamma_0..gamma_p
    a = np.eye(p + 1)
    for k in range(p + 1):
        for j in range(1, p + 1):
            a[k, abs(k - j)] -= ph[j - 1]
    gamma = np.zeros(max(p, q, max_lag) + 1)
    gamma[:p + 1] = np.linalg.solve(a, c[:p + 1])
    for k in range(p + 1, gamma.size):
        gamma[k] = sum(ph[j] * gamma[k - j - 1] for j in range(p)) + c[k]
    return np.asarray(gamma[:max_lag + 1] / gamma[0], dtype=float)


@dataclass(frozen=True)
class CorARMA(CorrelationStructure):
    """nlme's ``corARMA(value, form = ~ 1, p, q)``: ARMA(p, q) correlations at integer lags.

    Natural parameters ``(phi_1..phi_p, theta_1..theta_q)``; unconstrained: each part mapped to
    partial autocorrelations ``r`` and then ``log((1 + r) / (1 - r))`` (nlme's transform).
    """

    p: int = 0
    q: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.p < 0 or self.q < 0 or self.p + self.q == 0:
            raise ArgumentError("corARMA needs p >= 0, q >= 0 and p + q > 0.")
        v = _start_value(self.value, "CorARMA", (self.p + self.q,))
        _check_open_interval(v, -1.0, 1.0, "CorARMA")
        if v is not None:  # stationary AR part, invertible MA part
            _arma_transform(v[:self.p], -1.0, "CorARMA: value=")
            _arma_transform(v[self.p:], 1.0, "CorARMA: value=")

    def check_times(self, times: ArrayLike) -> FloatArray:
        return _integer_positions(times, "corARMA").astype(float)

    def natural_start(self, times: Times) -> FloatArray:
        if self.value is None:
            return np.zeros(self.p + self.q)
        return self._params(self.value, self.p + self.q)

    def to_unconstrained(self, params: ArrayLike, times: Times) -> FloatArray:
        v = self._params(params, self.p + self.q)
        return np.r_[_arma_transform(v[:self.p], -1.0, "corARMA"),
                     _arma_transform(v[self.p:], 1.0, "corARMA")]

    def to_constrained(self, theta: ArrayLike, times: Times) -> FloatArray:
        u = self._params(theta, self.p + self.q)
        return np.r_[_arma_untransform(u[:self.p], -1.0), _arma_untransform(u[self.p:], 1.0)]

    def corr_matrix(self, params: ArrayLike, times: ArrayLike) -> FloatArray:
        v = self._params(params, self.p + self.q)
        lags = _lags(_integer_positions(times, "corARMA"))
        acf = arma_autocorrelation(v[:self.p], v[self.p:], int(lags.max(initial=0)))
        return _symmetric_from_lags(acf, lags)


@dataclass(frozen=True)
class CorCompSymm(CorrelationStructure):
    """nlme's ``corCompSymm(value = 0, form = ~ 1)``: every pair correlates ``rho``.

    ``-1 / (m - 1) < rho < 1`` with ``m`` the largest group; unconstrained:
    ``log((rho + 1 / (m - 1)) / (1 - rho))``.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        # the lower limit -1 / (m - 1) needs the data: checked when initialized
        _check_open_interval(_start_value(self.value, "CorCompSymm"), -1.0, 1.0,
                             "CorCompSymm")

    @staticmethod
    def _inf(times: Times) -> float:
        m = max(np.asarray(t).shape[0] for t in times)
        return -1.0 / (m - 1) if m > 1 else -math.inf

    def natural_start(self, times: Times) -> FloatArray:
        return np.atleast_1d(np.asarray(0.0 if self.value is None else self.value, dtype=float))

    def to_unconstrained(self, params: ArrayLike, times: Times) -> FloatArray:
        rho = self._params(params, 1)
        inf = self._inf(times)
        if not inf < rho[0] < 1.0:
            raise ArgumentError(f"corCompSymm: rho must lie in ({inf:g}, 1) for groups of "
                                f"this size; got {rho[0]:g}.")
        out: FloatArray = np.log((rho - inf) / (1.0 - rho))
        return out

    def to_constrained(self, theta: ArrayLike, times: Times) -> FloatArray:
        e = np.exp(self._params(theta, 1))
        out: FloatArray = (e + self._inf(times)) / (e + 1.0)
        return out

    def corr_matrix(self, params: ArrayLike, times: ArrayLike) -> FloatArray:
        rho = self._params(params, 1)[0]
        n = np.asarray(times).shape[0]
        return np.full((n, n), rho) + (1.0 - rho) * np.eye(n)

    def factor(self, params: ArrayLike, times: ArrayLike) -> FloatArray:
        # nlme's compSymm_fact: the Helmert basis diagonalizes R (eigenvalues 1 + (n-1) rho
        # once and 1 - rho n-1 times); F = D^-1/2 H, not triangular
        rho = self._params(params, 1)[0]
        n = np.asarray(times).shape[0]
        f = np.zeros((n, n))
        f[0, :] = 1.0 / math.sqrt(n * (1.0 + (n - 1) * rho))
        for i in range(1, n):
            a = -1.0 / math.sqrt((1.0 - rho) * i * (i + 1))
            f[i, :i] = a
            f[i, i] = -i * a
        return f

    def log_det(self, params: ArrayLike, times: ArrayLike) -> float:
        rho = self._params(params, 1)[0]
        n = np.asarray(times).shape[0]
        return math.log(1.0 + (n - 1) * rho) + (n - 1) * math.log(1.0 - rho)

    def total_log_det(self, params: ArrayLike, times: Times) -> float:
        return float(sum(self.log_det(params, t) for t in times))


def _n_from_pairs(k: int) -> int:
    m = int(round((1 + math.sqrt(1 + 8 * k)) / 2))
    if m * (m - 1) // 2 != k:
        raise ArgumentError(f"corSymm: {k} parameters is not m(m-1)/2 for any size m.")
    return m


@dataclass(frozen=True)
class CorSymm(CorrelationStructure):
    """nlme's ``corSymm(value, form = ~ 1)``: unstructured correlations between positions.

    Natural parameters: ``r_12, r_13, ..., r_1m, r_23, ...`` for positions 1..m (``m`` the
    largest position). Unconstrained: nlme's spherical parametrization of the upper Cholesky
    factor's columns, angles ``a`` mapped to ``log(a / (pi - a))``.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.value is None:
            return
        k = np.atleast_1d(np.asarray(self.value, dtype=float)).size
        v = _start_value(self.value, "CorSymm", (k,))
        _check_open_interval(v, -1.0, 1.0, "CorSymm")
        assert v is not None
        r = self._matrix(v)  # k must be m(m-1)/2
        if np.any(np.linalg.eigvalsh(r) <= 0):
            raise ArgumentError("CorSymm: the correlations of value= are not positive "
                                "definite (nlme's rule); give correlations of a valid matrix.")

    @staticmethod
    def _max_position(times: Times) -> int:
        return int(max(_integer_positions(t, "corSymm").max() for t in times))

    def check_times(self, times: ArrayLike) -> FloatArray:
        pos = _integer_positions(times, "corSymm")
        if pos.size and pos.min() < 1:
            raise DataError("corSymm: positions must be integers from 1.")
        return pos.astype(float)

    def natural_start(self, times: Times) -> FloatArray:
        m = self._max_position(times)
        if self.value is None:
            return np.zeros(m * (m - 1) // 2)
        return self._params(self.value, m * (m - 1) // 2)

    @staticmethod
    def _matrix(params: FloatArray) -> FloatArray:
        m = _n_from_pairs(params.size)
        r = np.eye(m)
        iu = np.triu_indices(m, 1)
        r[iu] = params
        r.T[iu] = params
        return r

    def to_unconstrained(self, params: ArrayLike, times: Times) -> FloatArray:
        p = np.atleast_1d(np.asarray(params, dtype=float))
        r = self._matrix(p)
        try:
            u = np.linalg.cholesky(r).T
        except np.linalg.LinAlgError as exc:
            raise ArgumentError("corSymm: the correlations are not positive definite.") from exc
        out: list[float] = []
        for i in range(1, r.shape[0]):
            col = u[:i + 1, i]
            tail = np.sqrt(np.cumsum(col[::-1] ** 2)[::-1])[:i]
            a = np.arccos(np.clip(col[:i] / tail, -1.0, 1.0))
            out.extend(np.log(a / (math.pi - a)))
        return np.asarray(out, dtype=np.float64)

    def to_constrained(self, theta: ArrayLike, times: Times) -> FloatArray:
        th = np.atleast_1d(np.asarray(theta, dtype=float))
        m = _n_from_pairs(th.size)
        u = np.zeros((m, m))
        k = 0
        for i in range(m):
            rest = 1.0
            for j in range(i):
                e = math.exp(th[k])
                a = math.pi * e / (1.0 + e)
                u[j, i] = rest * math.cos(a)
                rest *= math.sin(a)
                k += 1
            u[i, i] = rest
        r = u.T @ u
        out: FloatArray = r[np.triu_indices(m, 1)]
        return out

    def corr_matrix(self, params: ArrayLike, times: ArrayLike) -> FloatArray:
        full = self._matrix(np.atleast_1d(np.asarray(params, dtype=float)))
        pos = self.check_times(times).astype(np.intp) - 1
        if pos.size and pos.max() >= full.shape[0]:
            raise DataError(f"corSymm: position {pos.max() + 1} is beyond the {full.shape[0]} "
                            "positions the parameters describe.")
        out: FloatArray = full[np.ix_(pos, pos)]
        return out


# ---- spatial structures --------------------------------------------------------------------

_METRICS = {"euclidean": "euclidean", "manhattan": "cityblock", "maximum": "chebyshev"}


@dataclass(frozen=True)
class CorSpatial(CorrelationStructure):
    """Base of nlme's spatial classes: ``cor(d) = (1 - nugget) * f(d / range)`` for ``d > 0``.

    Natural parameters ``range`` (and ``nugget`` when ``nugget=True``); unconstrained:
    ``log(range)`` (``log(range - min distance)`` for corLin and corSpher) and
    ``log(nugget / (1 - nugget))``. ``metric`` is nlme's: euclidean, manhattan or maximum.
    """

    nugget: bool = False
    metric: str = "euclidean"
    shifted = False  # corLin / corSpher measure the range from the smallest distance

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.metric not in _METRICS:
            raise ArgumentError(f"metric {self.metric!r} is not one of nlme's "
                                f"{', '.join(_METRICS)}.")
        who = type(self).__name__
        v = _start_value(self.value, who, (1, 2) if self.nugget else (1,))
        if v is not None:
            if v[0] <= 0:
                raise ArgumentError(f"{who}: the range (value[0]) must be > 0 (nlme's rule); "
                                    f"got {v[0]:g}. Give a positive range or leave value= "
                                    "out for nlme's default.")
            _check_open_interval(v[1:], 0.0, 1.0, who, "the nugget (value[1])")

    def check_times(self, times: ArrayLike) -> FloatArray:
        # two points at distance zero would correlate 1: nlme refuses them as well
        x = np.asarray(times, dtype=float)
        d = self.distances(x)
        if np.any(d[np.triu_indices(d.shape[0], 1)] == 0):
            raise DataError(f"{type(self).__name__}: two rows of a group share the same "
                            "coordinates (distance zero); give each row of a group distinct "
                            "coordinates or average the duplicates.")
        return x

    def distances(self, times: ArrayLike) -> FloatArray:
        """Pairwise distances of one group's coordinates, as a square matrix."""
        x = np.asarray(times, dtype=float)
        x = x[:, None] if x.ndim == 1 else x
        if x.shape[0] < 2:
            return np.zeros((x.shape[0], x.shape[0]))
        out: FloatArray = squareform(pdist(x, _METRICS[self.metric]))
        return out

    def min_distance(self, times: Times) -> float:
        """Smallest distance between two points of one group, over all groups (nlme's minD)."""
        ds = [self.distances(t)[np.triu_indices(np.asarray(t).shape[0], 1)] for t in times]
        flat = np.concatenate(ds) if ds else np.zeros(0)
        if flat.size == 0:
            raise DataError(f"{type(self).__name__}: no group has two points.")
        return float(flat.min())

    def _k(self) -> int:
        return 2 if self.nugget else 1

    def natural_start(self, times: Times) -> FloatArray:
        if self.value is None:
            start = self.min_distance(times) * (1.1 if self.shifted else 0.9)
            return np.r_[start, 0.1] if self.nugget else np.r_[start]
        v = np.atleast_1d(np.asarray(self.value, dtype=float))
        if self.nugget and v.size == 1:
            v = np.r_[v, 0.1]
        return self._params(v, self._k())

    def to_unconstrained(self, params: ArrayLike, times: Times) -> FloatArray:
        v = self._params(params, self._k()).copy()
        shift = self.min_distance(times) if self.shifted else 0.0
        if v[0] <= shift:
            raise ArgumentError(f"{type(self).__name__}: range must exceed {shift:g}; "
                                f"got {v[0]:g}.")
        v[0] = math.log(v[0] - shift)
        if self.nugget:
            if not 0.0 < v[1] < 1.0:
                raise ArgumentError(f"{type(self).__name__}: nugget must lie in (0, 1).")
            v[1] = math.log(v[1] / (1.0 - v[1]))
        return v

    def to_constrained(self, theta: ArrayLike, times: Times) -> FloatArray:
        u = self._params(theta, self._k()).copy()
        u[0] = math.exp(u[0]) + (self.min_distance(times) if self.shifted else 0.0)
        if self.nugget:
            u[1] = 1.0 / (1.0 + math.exp(-u[1]))
        return u

    def shape(self, scaled: FloatArray) -> FloatArray:
        """The correlation function ``f`` of distance / range."""
        raise NotImplementedError

    def corr_matrix(self, params: ArrayLike, times: ArrayLike) -> FloatArray:
        v = self._params(params, self._k())
        d = self.distances(times)
        scale = 1.0 - v[1] if self.nugget else 1.0
        r = scale * self.shape(d / v[0])
        np.fill_diagonal(r, 1.0)
        return r


@dataclass(frozen=True)
class CorExp(CorSpatial):
    """nlme's ``corExp``: ``f(s) = exp(-s)``."""

    def shape(self, scaled: FloatArray) -> FloatArray:
        out: FloatArray = np.exp(-scaled)
        return out


@dataclass(frozen=True)
class CorGaus(CorSpatial):
    """nlme's ``corGaus``: ``f(s) = exp(-s^2)``."""

    def shape(self, scaled: FloatArray) -> FloatArray:
        out: FloatArray = np.exp(-scaled * scaled)
        return out


@dataclass(frozen=True)
class CorLin(CorSpatial):
    """nlme's ``corLin``: ``f(s) = 1 - s`` for ``s < 1``, else 0 (range measured from minD)."""

    shifted = True

    def shape(self, scaled: FloatArray) -> FloatArray:
        out: FloatArray = np.where(scaled < 1.0, 1.0 - scaled, 0.0)
        return out


@dataclass(frozen=True)
class CorSpher(CorSpatial):
    """nlme's ``corSpher``: ``f(s) = 1 - 1.5 s + 0.5 s^3`` for ``s < 1``, else 0."""

    shifted = True

    def shape(self, scaled: FloatArray) -> FloatArray:
        out: FloatArray = np.where(scaled < 1.0, 1.0 - 1.5 * scaled + 0.5 * scaled ** 3, 0.0)
        return out


@dataclass(frozen=True)
class CorRatio(CorSpatial):
    """nlme's ``corRatio``: ``f(s) = 1 / (1 + s^2)``."""

    def shape(self, scaled: FloatArray) -> FloatArray:
        out: FloatArray = 1.0 / (1.0 + scaled * scaled)
        return out
