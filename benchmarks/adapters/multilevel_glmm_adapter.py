"""GLMM adapter for this repository's package, ``multilevel``.

API used::

    import multilevel as ml
    res = ml.glmer(formula, df, family="binomial" | "poisson", nagq=1, weights=None, offset=None)
    res.loglik      # float, R's logLik (constants included)
    res.fixef       # pandas Series (or mapping) of coefficients
    res.theta       # array-like, lme4's theta
    res.converged   # bool

Each of these may be a property or a method.  Whether ``glmer`` reads ``cbind(s, n - s)`` and
two-level factor responses is found out before timing, by fitting a tiny data set each way;
where it does not, the model is given as the proportion with the trials as weights, or as a
0/1 response (``glmm_cases.spell``), and the result records which spelling was timed.

Run from a source checkout with ``PYTHONPATH=src`` (``benchmarks/glmm_bench.py`` sets it).
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import glmm_cases

from adapters import _glmm_python, _python_common, multilevel_adapter

NAME = "multilevel"


def available() -> tuple[bool, str]:
    """Return ``(True, version)`` if ``multilevel.glmer`` exists, else ``(False, reason)``."""
    return multilevel_adapter.available("glmer")


version = multilevel_adapter.version


def _tiny_data() -> Any:
    """80 rows in 8 groups: a factor response, and successes out of 5 trials (seed 1)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(1)
    n = 80
    hit = rng.random(n) < 0.4
    return pd.DataFrame({
        "r": pd.Categorical(np.where(hit, "yes", "no"), categories=["no", "yes"]),
        "s": rng.integers(0, 6, size=n),
        "n": np.full(n, 5),
        "g": pd.Categorical(np.repeat(np.arange(8), n // 8).astype(str)),
    })


@functools.cache
def capabilities() -> dict[str, Any]:
    """Which response spellings ``glmer`` reads: ``{"cbind": bool, "factor_response": bool}``.

    The reasons for a ``False`` are kept under ``"errors"``.
    """
    import multilevel as ml

    tiny = _tiny_data()
    probes = {
        "cbind": "cbind(s, n - s) ~ 1 + (1|g)",
        "factor_response": "r ~ 1 + (1|g)",
    }
    found: dict[str, Any] = {"errors": {}}
    for name, formula in probes.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ml.glmer(formula, tiny, family="binomial")
            found[name] = True
        except Exception as exc:
            found[name] = False
            found["errors"][name] = f"{type(exc).__name__}: {str(exc)[:300]}"
    return found


def spell(case: glmm_cases.GlmmCase, df: Any) -> tuple[Any, glmm_cases.Spelling]:
    """lme4's spelling where ``glmer`` reads it, else an equivalent one."""
    can = capabilities()
    return glmm_cases.spell(
        case, df, cbind=can["cbind"], slash=False, factor_response=can["factor_response"]
    )


def fit_once(case: glmm_cases.GlmmCase, spelling: glmm_cases.Spelling, data: Any) -> Any:
    """The timed call: ``ml.glmer(formula, data, family=...)`` (default ``nagq=1``)."""
    import multilevel as ml

    if spelling.weights is None:
        return ml.glmer(spelling.formula, data, family=case.family)
    weights = data[spelling.weights].to_numpy(float)
    return ml.glmer(spelling.formula, data, family=case.family, weights=weights)


def extract(model: Any) -> dict[str, Any]:
    """Log-likelihood, fixed effects, theta and convergence of a ``multilevel`` GLMM fit."""
    converged = getattr(model, "converged", None)
    return {
        "loglik": float(_python_common.value(model.loglik)),
        "fixef": _python_common.named_floats(_python_common.value(model.fixef)),
        "theta": _python_common.as_float_list(_python_common.value(getattr(model, "theta", None))),
        "converged": None if converged is None else bool(_python_common.value(converged)),
    }


def time_case(case_id: str, repeats: int, budget_s: float | None = None) -> dict[str, Any]:
    """Timed repeated fits of ``case_id``; the result also holds the probed ``capabilities``."""
    result = _glmm_python.time_case(case_id, repeats, budget_s, spell, fit_once, extract)
    result["capabilities"] = capabilities()
    return result
