"""R's self-starting nonlinear models (``SSlogis``, ``SSfpl``, ... of R's stats package).

Each model gives its value f(covariates, parameters), the analytic gradient with respect to
the parameters (the ``"gradient"`` attribute that R's ``SS*`` functions attach), and starting
values for one group's data computed as R's ``getInitial`` does. Parameter names and order are
R's. Values and gradients broadcast: every covariate and parameter may be a scalar or a 1-D
array of the common length n, so that each row of a mixed model can carry its own parameters.

Starting values follow R's ``selfStart`` initial functions step by step: average y over equal
x values and sort (R's ``sortedXyData``), a linearised fit by least squares, then the
partially linear refinement that R does with ``nls(..., algorithm = "plinear")``. Here that
refinement is variable projection: the conditionally linear coefficients are solved by least
squares inside the residual function and ``scipy.optimize.least_squares`` moves the nonlinear
ones. This module is pure numerics (numpy, scipy): it fits no mixed model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import least_squares

from multilevel.errors import ArgumentError, DataError, NumericalError

Array = NDArray[np.float64]
#: basis(theta) -> (n, k) columns whose coefficients are conditionally linear
Basis = Callable[[Array], Array]


@dataclass(frozen=True)
class SelfStartModel:
    """One self-starting nonlinear model.

    Attributes
    ----------
    name : str
        R's name (``"SSlogis"``).
    parameters : tuple of str
        Parameter names in R's order (``("Asym", "xmid", "scal")``).
    covariates : int
        Number of covariate arguments before the parameters: 1 for most models, 2 for
        ``SSfol`` (``Dose``, then time).
    """

    name: str
    parameters: tuple[str, ...]
    covariates: int
    _value: Callable[..., Array]
    _gradient: Callable[..., Array]
    _initial: Callable[..., dict[str, float]]

    def _arrays(self, args: tuple[ArrayLike, ...]) -> list[Array]:
        expected = self.covariates + len(self.parameters)
        if len(args) != expected:
            names = [*self._covariate_names(), *self.parameters]
            raise ArgumentError(
                f"{self.name} takes {expected} arguments ({', '.join(names)}); got {len(args)}.")
        return _broadcast(self.name, [*self._covariate_names(), *self.parameters], args)

    def _covariate_names(self) -> list[str]:
        return ["Dose", "input"] if self.covariates == 2 else ["input"]

    def value(self, *args: ArrayLike) -> Array:
        """Model value, shape (n,).

        Parameters
        ----------
        *args : float or array of shape (n,)
            The covariates, then the parameters, in R's order (``value(x, Asym, xmid, scal)``;
            ``SSfol``: ``value(Dose, time, lKe, lKa, lCl)``). Scalars broadcast to n.
        """
        return self._value(*self._arrays(args))

    def gradient(self, *args: ArrayLike) -> Array:
        """Gradient of the value with respect to the parameters, shape (n, len(parameters)).

        Arguments as for :meth:`value`; column j belongs to ``parameters[j]``.
        """
        return self._gradient(*self._arrays(args))

    def initial(self, *args: ArrayLike) -> dict[str, float]:
        """Starting values for one group's data, as R's ``getInitial`` computes them.

        Parameters
        ----------
        *args : array of shape (n,)
            The covariate(s), then the response: ``initial(x, y)``; ``SSfol``:
            ``initial(Dose, time, y)``.

        Returns
        -------
        dict
            Parameter name -> starting value, in R's order.

        Raises
        ------
        DataError
            Too few distinct covariate values, non-finite data, or data the model's
            linearisation cannot use; the message names the model and what it needs.
        """
        if len(args) != self.covariates + 1:
            names = [*self._covariate_names(), "y"]
            raise ArgumentError(
                f"{self.name}.initial takes {len(names)} arrays ({', '.join(names)}); "
                f"got {len(args)}.")
        arrays = [np.atleast_1d(np.asarray(a, dtype=float)) for a in args]
        names = [*self._covariate_names(), "y"]
        for nm, a in zip(names, arrays, strict=True):
            if a.ndim != 1:
                raise ArgumentError(f"{self.name}.initial: {nm} must be 1-D; got shape {a.shape}.")
            if not np.all(np.isfinite(a)):
                raise DataError(f"{self.name}.initial: {nm} has missing or infinite values; "
                                "drop those rows first.")
        if len({a.size for a in arrays}) != 1:
            sizes = ", ".join(f"{nm}: {a.size}" for nm, a in zip(names, arrays, strict=True))
            raise ArgumentError(f"{self.name}.initial: the arrays differ in length ({sizes}).")
        values = self._initial(*arrays)
        if not all(np.isfinite(v) for v in values.values()):
            raise NumericalError(f"{self.name}: the starting values are not finite ({values}); "
                                 "give starting values yourself.")
        return values


def _broadcast(model: str, names: list[str], args: tuple[ArrayLike, ...]) -> list[Array]:
    arrays = [np.asarray(a, dtype=float) for a in args]
    lengths = {a.size for a in arrays if a.ndim > 0}
    for nm, a in zip(names, arrays, strict=True):
        if a.ndim > 1:
            raise ArgumentError(f"{model}: {nm} must be a scalar or 1-D; got shape {a.shape}.")
    if len(lengths) > 1:
        sizes = ", ".join(f"{nm}: {a.size}" for nm, a in zip(names, arrays, strict=True)
                          if a.ndim > 0)
        raise ArgumentError(f"{model}: the arrays must share one length or be scalars ({sizes}).")
    return [np.atleast_1d(a) for a in np.broadcast_arrays(*arrays)]


# ---------------------------------------------------------------------------------------------
# values and gradients (the formulas of R's SS* bodies, which R's deriv() generated)

def _logis_value(x: Array, asym: Array, xmid: Array, scal: Array) -> Array:
    return asym / (1.0 + np.exp((xmid - x) / scal))


def _logis_gradient(x: Array, asym: Array, xmid: Array, scal: Array) -> Array:
    e = np.exp((xmid - x) / scal)
    d = 1.0 + e
    xm = asym * e / scal / d**2
    return np.column_stack([1.0 / d, -xm, xm * (xmid - x) / scal])


def _fpl_value(x: Array, a: Array, b: Array, xmid: Array, scal: Array) -> Array:
    return a + (b - a) / (1.0 + np.exp((xmid - x) / scal))


def _fpl_gradient(x: Array, a: Array, b: Array, xmid: Array, scal: Array) -> Array:
    e = np.exp((xmid - x) / scal)
    d = 1.0 + e
    xm = (b - a) * e / scal / d**2
    return np.column_stack([1.0 - 1.0 / d, 1.0 / d, -xm, xm * (xmid - x) / scal])


def _asymp_value(x: Array, asym: Array, r0: Array, lrc: Array) -> Array:
    return asym + (r0 - asym) * np.exp(-np.exp(lrc) * x)


def _asymp_gradient(x: Array, asym: Array, r0: Array, lrc: Array) -> Array:
    e = np.exp(-np.exp(lrc) * x)
    return np.column_stack([1.0 - e, e, -(r0 - asym) * e * np.exp(lrc) * x])


def _asymp_off_value(x: Array, asym: Array, lrc: Array, c0: Array) -> Array:
    return asym * (1.0 - np.exp(-np.exp(lrc) * (x - c0)))


def _asymp_off_gradient(x: Array, asym: Array, lrc: Array, c0: Array) -> Array:
    rate = np.exp(lrc)
    e = np.exp(-rate * (x - c0))
    return np.column_stack([1.0 - e, asym * e * rate * (x - c0), -asym * e * rate])


def _asymp_orig_value(x: Array, asym: Array, lrc: Array) -> Array:
    return asym * (1.0 - np.exp(-np.exp(lrc) * x))


def _asymp_orig_gradient(x: Array, asym: Array, lrc: Array) -> Array:
    rate = np.exp(lrc)
    e = np.exp(-rate * x)
    return np.column_stack([1.0 - e, asym * e * rate * x])


def _micmen_value(x: Array, vm: Array, k: Array) -> Array:
    return vm * x / (k + x)


def _micmen_gradient(x: Array, vm: Array, k: Array) -> Array:
    return np.column_stack([x / (k + x), -vm * x / (k + x) ** 2])


def _gompertz_value(x: Array, asym: Array, b2: Array, b3: Array) -> Array:
    return asym * np.exp(-b2 * b3**x)


def _gompertz_gradient(x: Array, asym: Array, b2: Array, b3: Array) -> Array:
    power = b3**x
    e = np.exp(-b2 * power)
    return np.column_stack([e, -asym * e * power, -asym * e * b2 * b3 ** (x - 1.0) * x])


def _weibull_value(x: Array, asym: Array, drop: Array, lrc: Array, pwr: Array) -> Array:
    return asym - drop * np.exp(-np.exp(lrc) * x**pwr)


def _weibull_gradient(x: Array, asym: Array, drop: Array, lrc: Array, pwr: Array) -> Array:
    ee = np.exp(lrc) * x**pwr
    e = np.exp(-ee)
    d_lrc = drop * e * ee
    # R's formula gives 0 * log(0) = NaN at x = 0; the limit (pwr > 0) is 0.
    log_x = np.log(np.where(x > 0, x, 1.0))
    return np.column_stack([np.ones_like(x), -e, d_lrc, np.where(x > 0, d_lrc * log_x, 0.0)])


def _biexp_value(x: Array, a1: Array, lrc1: Array, a2: Array, lrc2: Array) -> Array:
    return a1 * np.exp(-np.exp(lrc1) * x) + a2 * np.exp(-np.exp(lrc2) * x)


def _biexp_gradient(x: Array, a1: Array, lrc1: Array, a2: Array, lrc2: Array) -> Array:
    e1 = np.exp(-np.exp(lrc1) * x)
    e2 = np.exp(-np.exp(lrc2) * x)
    return np.column_stack([e1, -a1 * e1 * np.exp(lrc1) * x, e2, -a2 * e2 * np.exp(lrc2) * x])


def _fol_value(dose: Array, t: Array, lke: Array, lka: Array, lcl: Array) -> Array:
    ke, ka = np.exp(lke), np.exp(lka)
    return dose * np.exp(lke + lka - lcl) * (np.exp(-ke * t) - np.exp(-ka * t)) / (ka - ke)


def _fol_gradient(dose: Array, t: Array, lke: Array, lka: Array, lcl: Array) -> Array:
    ke, ka = np.exp(lke), np.exp(lka)
    scale = dose * np.exp(lke + lka - lcl)
    ee, ea = np.exp(-ke * t), np.exp(-ka * t)
    num = scale * (ee - ea)
    den = ka - ke
    value = num / den
    d_lke = (num - scale * ee * ke * t) / den + num * ke / den**2
    d_lka = (num + scale * ea * ka * t) / den - num * ka / den**2
    return np.column_stack([d_lke, d_lka, -value])


# ---------------------------------------------------------------------------------------------
# the pieces of R's initial functions

def _sorted_xy(model: str, x: Array, y: Array, need: int, what: str) -> tuple[Array, Array]:
    """R's ``sortedXyData``: mean y at each distinct x, sorted by x; at least ``need`` rows."""
    xs, inverse = np.unique(x, return_inverse=True)
    ys = np.bincount(inverse, weights=y) / np.bincount(inverse)
    if xs.size < need:
        raise DataError(f"{model}: too few distinct input values to fit {what}: "
                        f"{xs.size} distinct, {need} needed.")
    return xs, ys


def _right_asymptote(y: Array) -> float:
    """R's ``NLSstRtAsymptote``: beyond the end of the range nearer to the last y."""
    lo, hi = float(y.min()), float(y.max())
    near_hi = abs(hi - y[-1]) < abs(lo - y[-1])
    return hi + (hi - lo) / 8 if near_hi else lo - (hi - lo) / 8


def _left_asymptote(y: Array) -> float:
    """R's ``NLSstLfAsymptote``: beyond the end of the range nearer to the first y."""
    lo, hi = float(y.min()), float(y.max())
    near_hi = abs(hi - y[0]) < abs(lo - y[0])
    return hi + (hi - lo) / 8 if near_hi else lo - (hi - lo) / 8


def _line(model: str, x: Array, y: Array) -> tuple[float, float]:
    """Intercept and slope of the least-squares line (R's ``coef(lm(y ~ x))``)."""
    ok = np.isfinite(x) & np.isfinite(y)
    if np.count_nonzero(ok) < 2 or np.ptp(x[ok]) == 0:
        raise DataError(f"{model}: the linearised data leave fewer than two usable points for "
                        "the starting values; give starting values yourself.")
    slope, intercept = np.polyfit(x[ok], y[ok], 1)
    return float(intercept), float(slope)


def _plinear(model: str, basis: Basis, theta0: list[float], y: Array) -> tuple[Array, Array]:
    """Partially linear least squares (R's ``nls(algorithm = "plinear")``) by variable
    projection: returns the nonlinear parameters and the linear coefficients of ``basis``."""
    def coefficients(theta: Array) -> Array:
        return np.asarray(np.linalg.lstsq(basis(theta), y, rcond=None)[0], dtype=float)

    def residuals(theta: Array) -> Array:
        with np.errstate(all="ignore"):
            r = y - basis(theta) @ coefficients(theta)
        # a step into a region where the model is undefined (b3 < 0 in b3^x) is rejected
        return np.where(np.isfinite(r), r, 1e100)

    start = np.asarray(theta0, dtype=float)
    if not np.all(np.isfinite(start)):
        raise DataError(f"{model}: the linearised fit gives no finite start ({theta0}); "
                        "give starting values yourself.")
    fit = least_squares(residuals, start, method="lm", xtol=1e-12, ftol=1e-12, gtol=1e-12)
    theta = np.asarray(fit.x, dtype=float)
    return theta, coefficients(theta)


def _logit_proportion(y: Array) -> Array:
    lo, spread = y.min(), np.ptp(y)
    prop = (y - lo + 0.05 * spread) / (1.1 * spread)
    return np.asarray(np.log(prop / (1.0 - prop)), dtype=float)


def _decay_rate_start(model: str, x: Array, y: Array) -> float:
    """log rate of |y - right asymptote| decaying exponentially in x (used by several)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_diff = np.log(np.abs(y - _right_asymptote(y)))
        return float(np.log(-_line(model, x, log_diff)[1]))


# ---------------------------------------------------------------------------------------------
# initial functions, one per model, in R's steps

def _logis_initial(x: Array, y: Array) -> dict[str, float]:
    xs, ys = _sorted_xy("SSlogis", x, y, 4, "a logistic model")
    xmid, scal = _line("SSlogis", _logit_proportion(ys), xs)
    theta, lin = _plinear("SSlogis", lambda t: (1 / (1 + np.exp((t[0] - xs) / t[1])))[:, None],
                          [xmid, scal], ys)
    return {"Asym": lin[0], "xmid": theta[0], "scal": theta[1]}


def _fpl_initial(x: Array, y: Array) -> dict[str, float]:
    xs, ys = _sorted_xy("SSfpl", x, y, 5, "a four-parameter logistic model")
    xmid, scal = _line("SSfpl", _logit_proportion(ys), xs)

    def basis(t: Array) -> Array:
        return np.column_stack([np.ones_like(xs), 1 / (1 + np.exp((t[0] - xs) / np.exp(t[1])))])

    theta, lin = _plinear("SSfpl", basis, [xmid, np.log(abs(scal))], ys)
    return {"A": lin[0], "B": lin[0] + lin[1], "xmid": theta[0], "scal": np.exp(theta[1])}


def _asymp_initial(x: Array, y: Array) -> dict[str, float]:
    xs, ys = _sorted_xy("SSasymp", x, y, 3, "an asymptotic regression model")
    if xs.size == 3:
        return _asymp_three_points(xs, ys)
    lrc = _decay_rate_start("SSasymp", xs, ys)

    def basis(t: Array) -> Array:
        e = np.exp(-np.exp(t[0]) * xs)
        return np.column_stack([1 - e, e])

    theta, lin = _plinear("SSasymp", basis, [lrc], ys)
    return {"Asym": lin[0], "R0": lin[1], "lrc": theta[0]}


def _asymp_three_points(xs: Array, ys: Array) -> dict[str, float]:
    """R's closed form for exactly three equally spaced x values."""
    ydiff = np.diff(ys)
    if np.prod(ydiff) <= 0:
        raise DataError("SSasymp: the three mean responses are not monotone; cannot fit an "
                        "asymptotic regression model to these data.")
    xdiff = np.diff(xs)
    if xdiff[0] != xdiff[1]:
        raise DataError("SSasymp: three distinct input values must be equally spaced to fit an "
                        "asymptotic regression model; give starting values yourself.")
    frac = (ys[2] - ys[0]) / (ys[1] - ys[0])
    expm_rd = frac - 1
    rc = -np.log(expm_rd) / xdiff[0]
    expm_rx1 = np.exp(-rc * xs[0])
    bma = ydiff[0] / (expm_rx1 * (expm_rd - 1))
    asym = ys[0] - bma * expm_rx1
    return {"Asym": float(asym), "R0": float(bma + asym), "lrc": float(np.log(rc))}


def _asymp_off_initial(x: Array, y: Array) -> dict[str, float]:
    xs, ys = _sorted_xy("SSasympOff", x, y, 4, "the 'asympOff' model")
    lrc = _decay_rate_start("SSasympOff", xs, ys)

    def basis(t: Array) -> Array:
        return np.column_stack([np.ones_like(xs), np.exp(-np.exp(t[0]) * xs)])

    theta, lin = _plinear("SSasympOff", basis, [lrc], ys)
    with np.errstate(invalid="ignore"):
        c0 = np.exp(-theta[0]) * np.log(-lin[1] / lin[0])
    return {"Asym": lin[0], "lrc": theta[0], "c0": c0}


def _asymp_orig_initial(x: Array, y: Array) -> dict[str, float]:
    xs, ys = _sorted_xy("SSasympOrig", x, y, 3, "the 'asympOrig' model")
    with np.errstate(divide="ignore", invalid="ignore"):
        rates = np.log(1 - ys / _right_asymptote(ys)) / xs
    rates = rates[~np.isnan(rates)]  # R: mean(..., na.rm = TRUE)
    if rates.size == 0:
        raise DataError("SSasympOrig: no point gives a rate estimate; give starting values "
                        "yourself.")
    lrc = float(np.log(abs(rates.mean())))
    theta, lin = _plinear("SSasympOrig", lambda t: (1 - np.exp(-np.exp(t[0]) * xs))[:, None],
                          [lrc], ys)
    return {"Asym": lin[0], "lrc": theta[0]}


def _micmen_initial(x: Array, y: Array) -> dict[str, float]:
    xs, ys = _sorted_xy("SSmicmen", x, y, 3, "a Michaelis-Menten model")
    with np.errstate(divide="ignore"):
        intercept, slope = _line("SSmicmen", 1 / xs, 1 / ys)  # Lineweaver-Burk
    theta, lin = _plinear("SSmicmen", lambda t: (xs / (t[0] + xs))[:, None],
                          [abs(slope / intercept)], ys)
    return {"Vm": lin[0], "K": theta[0]}


def _gompertz_initial(x: Array, y: Array) -> dict[str, float]:
    xs, ys = _sorted_xy("SSgompertz", x, y, 4, "the Gompertz model")
    log_y = np.log(np.abs(ys))
    # R's NLSstAsymptotic on log|y|: b0 + b1 (1 - exp(-exp(lrc) x))
    lrc0 = _decay_rate_start("SSgompertz", xs, log_y)

    def asymptotic(t: Array) -> Array:
        return np.column_stack([np.ones_like(xs), 1 - np.exp(-np.exp(t[0]) * xs)])

    theta, lin = _plinear("SSgompertz", asymptotic, [lrc0], log_y)
    start = [lin[1], np.exp(-np.exp(theta[0]))]
    theta, lin = _plinear("SSgompertz", lambda t: np.exp(-t[0] * t[1] ** xs)[:, None], start, ys)
    return {"Asym": lin[0], "b2": theta[0], "b3": theta[1]}


def _weibull_initial(x: Array, y: Array) -> dict[str, float]:
    xs, ys = _sorted_xy("SSweibull", x, y, 5, "the Weibull growth model")
    if np.any(xs < 0):
        raise DataError("SSweibull: all 'x' values must be non-negative to fit the Weibull "
                        "growth model.")
    right, left = _right_asymptote(ys), _left_asymptote(ys)
    pos = xs > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.log(-np.log((right - ys[pos]) / (right - left)))
    lrc, pwr = _line("SSweibull", np.log(xs[pos]), z)

    def basis(t: Array) -> Array:
        return np.column_stack([np.ones_like(xs), -np.exp(-np.exp(t[0]) * xs ** t[1])])

    theta, lin = _plinear("SSweibull", basis, [lrc, pwr], ys)
    return {"Asym": lin[0], "Drop": lin[1], "lrc": theta[0], "pwr": theta[1]}


def _biexp_initial(x: Array, y: Array) -> dict[str, float]:
    xs, ys = _sorted_xy("SSbiexp", x, y, 5, "a biexponential model")
    n = xs.size
    n_last = max(3, round(n / 2))  # Python's round, like R's, rounds half to even
    with np.errstate(divide="ignore", invalid="ignore"):
        intercept2, slope2 = _line("SSbiexp", xs[n - n_last:], np.log(ys[n - n_last:]))
        lrc2 = np.log(abs(slope2))
        res = ys - np.exp(intercept2) * np.exp(-np.exp(lrc2) * xs)
        lrc1 = np.log(abs(_line("SSbiexp", xs[:n - n_last], np.log(np.abs(res[:n - n_last])))[1]))

    def basis(t: Array) -> Array:
        return np.column_stack([np.exp(-np.exp(t[0]) * xs), np.exp(-np.exp(t[1]) * xs)])

    theta, lin = _plinear("SSbiexp", basis, [lrc1, lrc2], ys)
    return {"A1": lin[0], "lrc1": theta[0], "A2": lin[1], "lrc2": theta[1]}


def _fol_initial(dose: Array, t: Array, y: Array) -> dict[str, float]:
    # R's SSfol start uses the rows as given (no averaging or sorting by time).
    n = y.size
    if n < 4:
        raise DataError(f"SSfol: must have at least 4 observations to fit an 'SSfol' model; "
                        f"got {n}.")
    top = int(np.argmax(y))
    if top == n - 1:
        lke = -2.5
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            lke = float(np.log((np.log(y[top]) - np.log(y[-1])) / (t[-1] - t[top])))

    def first(th: Array) -> Array:
        return ((np.exp(-t * np.exp(lke)) - np.exp(-t * np.exp(th[0]))) * dose)[:, None]

    theta, _ = _plinear("SSfol", first, [lke + 1], y)

    def second(th: Array) -> Array:
        ka, ke = np.exp(th[0]), np.exp(th[1])
        return (dose * (np.exp(-t * ke) - np.exp(-t * ka)) / (ka - ke))[:, None]

    theta, lin = _plinear("SSfol", second, [theta[0], lke], y)
    lka, lke = float(theta[0]), float(theta[1])
    with np.errstate(invalid="ignore"):
        lcl = lke + lka - np.log(lin[0])
    return {"lKe": lke, "lKa": lka, "lCl": lcl}


def _model(name: str, parameters: tuple[str, ...], value: Callable[..., Array],
           gradient: Callable[..., Array], initial: Callable[..., dict[str, float]],
           covariates: int = 1) -> SelfStartModel:
    def initial_as_floats(*arrays: Array) -> dict[str, float]:
        return {k: float(v) for k, v in initial(*arrays).items()}

    return SelfStartModel(name, parameters, covariates, value, gradient, initial_as_floats)


SELF_STARTING: dict[str, SelfStartModel] = {m.name: m for m in [
    _model("SSlogis", ("Asym", "xmid", "scal"), _logis_value, _logis_gradient, _logis_initial),
    _model("SSfpl", ("A", "B", "xmid", "scal"), _fpl_value, _fpl_gradient, _fpl_initial),
    _model("SSasymp", ("Asym", "R0", "lrc"), _asymp_value, _asymp_gradient, _asymp_initial),
    _model("SSasympOff", ("Asym", "lrc", "c0"), _asymp_off_value, _asymp_off_gradient,
           _asymp_off_initial),
    _model("SSasympOrig", ("Asym", "lrc"), _asymp_orig_value, _asymp_orig_gradient,
           _asymp_orig_initial),
    _model("SSmicmen", ("Vm", "K"), _micmen_value, _micmen_gradient, _micmen_initial),
    _model("SSgompertz", ("Asym", "b2", "b3"), _gompertz_value, _gompertz_gradient,
           _gompertz_initial),
    _model("SSweibull", ("Asym", "Drop", "lrc", "pwr"), _weibull_value, _weibull_gradient,
           _weibull_initial),
    _model("SSbiexp", ("A1", "lrc1", "A2", "lrc2"), _biexp_value, _biexp_gradient,
           _biexp_initial),
    _model("SSfol", ("lKe", "lKa", "lCl"), _fol_value, _fol_gradient, _fol_initial,
           covariates=2),
]}
"""R's self-starting models by R name (``SELF_STARTING["SSlogis"].initial(x, y)``)."""


def self_starting_model(name: str) -> SelfStartModel:
    """The self-starting model called ``name`` in R (``"SSlogis"``, ...).

    Raises
    ------
    ArgumentError
        ``name`` is not one of R's self-starting models; the message lists them.
    """
    try:
        return SELF_STARTING[name]
    except KeyError:
        raise ArgumentError(f"unknown self-starting model {name!r}; "
                            f"available: {', '.join(SELF_STARTING)}.") from None
