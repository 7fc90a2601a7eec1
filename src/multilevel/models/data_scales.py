"""The scale of the data: which variables floating point cannot hold, what to tell the user.

The profiled criterion is computed from cross-products of the response, the fixed- and
random-effects columns and the prior weights. A variable of order 1e160 overflows them; one of
order 1e-160 falls into subnormal numbers and loses precision silently. :func:`check_scales`
refuses such data before any fitting, :func:`scale_diagnosis` names the variables to rescale
in every :class:`~multilevel.errors.NumericalError`, and :func:`warn_scales` gives lme4's
"very different scales" warning (the fit itself stays exact: X is centred).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from multilevel.data.design import ModelDesign
from multilevel.errors import MultilevelWarning, NumericalError

# lme4's check.scaleX tolerance: warn when the standard deviations of the fixed-effects columns
# differ by more than this factor, or one is beyond it or its inverse.
SCALE_RATIO_WARN = 1e3
# A variable whose typical magnitude is beyond 10**+-this is named when the likelihood cannot
# be evaluated (the one farthest from 1 is always named).
EXTREME_LOG10 = 4.0
# A variable of magnitude beyond 10**+-this is refused: its square, summed over the rows,
# overflows or falls into subnormal numbers (doubles are normal down to 2.2e-308).
MAX_LOG10_SCALE = 150.0


def magnitude(values: np.ndarray) -> float | None:
    """Typical size of a variable: the root mean square of its deviations from the mean
    (of its values when constant), or None when it is all zero or not finite."""
    v = np.asarray(values, dtype=float)
    finite = v[np.isfinite(v)]
    if finite.size == 0:
        return None
    with np.errstate(all="ignore"):
        scale = float(np.max(np.abs(finite)))
        if scale == 0.0:
            return None
        # rms computed on values divided by their largest, so that it cannot overflow
        unit = finite / scale
        spread = float(np.sqrt(np.mean((unit - unit.mean()) ** 2))) * scale
    return spread if spread > 0 and math.isfinite(spread) else scale


def variable_scales(d: ModelDesign, y: np.ndarray) -> list[tuple[float, str, float, bool]]:
    """``(|log10 magnitude|, label, magnitude, is_weights)`` for the response ``y`` (offset
    removed), every column of X and of the random-effects terms, and the prior weights,
    farthest from 1 first (see :func:`magnitude`)."""
    candidates: list[tuple[str, np.ndarray]] = [(f"the response {d.response_name!r}", y)]
    candidates += [(f"the predictor {name!r}", d.X[:, j])
                   for j, name in enumerate(d.fixed_names)]
    for t in d.terms:
        candidates += [(f"{name!r} in the random-effects term for {t.factor.name!r}",
                        t.Z[:, j]) for j, name in enumerate(t.columns)
                       if name != "(Intercept)"]
    scored = []
    for label, values in candidates:
        size = magnitude(values)
        if size is not None:
            scored.append((abs(math.log10(size)), label, size, False))
    if d.weights is not None:
        positive = d.weights[d.weights > 0]
        if positive.size:
            extremes = {float(positive.max()), float(positive.min())}
            scored += [(abs(math.log10(m)), "the prior weights", m, True)
                       for m in extremes]
    scored.sort(key=lambda s: -s[0])
    return scored


def scale_diagnosis(design: ModelDesign, y: np.ndarray) -> str:
    """Which variables are on an extreme scale, and what to do: the tail of every
    :class:`~multilevel.errors.NumericalError` raised for these data."""
    scored = variable_scales(design, y)
    if not scored:
        return "rescale the response and the predictors to values of order 1"
    named = [s for s in scored if s[0] > EXTREME_LOG10] or scored[:1]
    advice = []
    for _, label, size, is_weights in named:
        if is_weights:
            advice.append(f"the prior weights reach {size:.0e}: multiply them by a "
                          "constant such as one over their mean (this multiplies sigma^2 by "
                          "the same constant and leaves the fixed effects unchanged)")
        else:
            advice.append(f"{label} has values of order {size:.0e}: rescale it to "
                          "values of order 1 (divide by a power of ten, or standardize)")
    return "; ".join(advice) + ". Then refit (rescaling a variable only changes the units "\
        "of its coefficients and variance components)"


def check_scales(design: ModelDesign, y: np.ndarray) -> None:
    """Refuse, before any work, variables whose squares leave floating point's normal
    range (beyond 10**+-``MAX_LOG10_SCALE``): their cross-products overflow, or underflow
    into subnormal numbers and lose precision silently (a predictor of order 1e-160 moves
    the fixed effects by 1e-5 relative).

    A variable's magnitude (:func:`magnitude`) is at least 1e-16 of its largest absolute
    value, so when every largest value lies within the bounds with that margin the full
    diagnosis is skipped: a few vectorized maxima instead of a pass per column."""
    d = design
    arrays = [y[:, None], d.X] + [t.Z for t in d.terms]
    if d.weights is not None:
        arrays.append(d.weights[d.weights > 0][:, None])
    largest = np.concatenate([np.abs(a).max(axis=0) if a.size else np.zeros(a.shape[1])
                              for a in arrays])
    largest = largest[largest > 0]
    margin = 10.0 ** (MAX_LOG10_SCALE - 16)
    if largest.size == 0 or (largest.max() < 10.0 ** MAX_LOG10_SCALE
                             and largest.min() > 1.0 / margin
                             and (d.weights is None or arrays[-1].size == 0
                                  or float(arrays[-1].min()) > 1.0 / margin)):
        return
    scored = variable_scales(design, y)
    if scored and scored[0][0] > MAX_LOG10_SCALE:
        raise NumericalError("the data are on a scale where the likelihood cannot be "
                             f"evaluated in floating point: {scale_diagnosis(design, y)}")


def warn_scales(design: ModelDesign) -> None:
    """lme4's check.scaleX warning, by its rule: among the columns of X that are not 0/1
    indicators, a standard deviation beyond 1e3 or below 1e-3, or two that differ by more
    than a factor ``SCALE_RATIO_WARN``. The fit itself stays exact (X is centred), but lme4's
    users know the warning as the cue to rescale."""
    X = design.X
    if X.shape[0] < 2:
        return
    continuous = ~np.all((X == 0.0) | (X == 1.0), axis=0)
    if not continuous.any():
        return
    # X is finite and within 10**+-150 here (checked before), so the variances cannot overflow
    sds = X[:, continuous].std(axis=0, ddof=1)
    sds = sds[np.isfinite(sds) & (sds > 0)]
    if sds.size == 0:
        return
    log_sd = np.log(sds)
    spread = float(log_sd.max() - log_sd.min())
    if max(spread, float(np.abs(log_sd).max())) > math.log(SCALE_RATIO_WARN):
        warnings.warn("Some predictor variables are on very different scales: consider "
                      "rescaling", MultilevelWarning, stacklevel=4)
