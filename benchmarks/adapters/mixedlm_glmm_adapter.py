"""GLMM adapter for the PyPI package ``mixedlm`` (1.3.0, Rust core).

API used (mixedlm 1.3.0, ``mixedlm/models/glmer_fit.py``)::

    import mixedlm
    from mixedlm.families import Binomial, Poisson
    res = mixedlm.glmer(formula, df, family=Binomial(), nAGQ=1, weights=None, offset=None,
                        control=None)          # -> mixedlm.models.glmer.GlmerResult
    float(res.logLik())   # -deviance/2 + the saturated log-likelihood: R's logLik, constants in
    res.fixef()           # dict name -> value
    res.theta             # ndarray, lme4's theta
    res.converged         # bool

``family`` is a family *instance* (the default is ``Binomial()``); the defaults are the Laplace
approximation (``nAGQ=1``) and ``GlmerControl()``: COBYQA, after a first ``nAGQ=0`` stage.  A
two-level factor (pandas ``category``) response is read as 0/1 with the second level as 1,
and grouped binomial data are written ``successes/trials ~ ...``; ``cbind(...)`` is not parsed.
"""

from __future__ import annotations

from typing import Any

import glmm_cases

from adapters import _glmm_python, _python_common, mixedlm_adapter

NAME = "mixedlm"


def available() -> tuple[bool, str]:
    """Return ``(True, version)`` if ``mixedlm.glmer`` is importable, else ``(False, reason)``."""
    return mixedlm_adapter.available("glmer")


version = mixedlm_adapter.version


def spell(case: glmm_cases.GlmmCase, df: Any) -> tuple[Any, glmm_cases.Spelling]:
    """mixedlm reads factor responses and ``s/n`` responses, not ``cbind``."""
    return glmm_cases.spell(case, df, cbind=False, slash=True, factor_response=True)


def fit_once(case: glmm_cases.GlmmCase, spelling: glmm_cases.Spelling, data: Any) -> Any:
    """The timed call: ``mixedlm.glmer(formula, data, family=Family())``."""
    import mixedlm
    from mixedlm import families

    family = {"binomial": families.Binomial, "poisson": families.Poisson}[case.family]()
    weights = None if spelling.weights is None else data[spelling.weights].to_numpy(float)
    return mixedlm.glmer(spelling.formula, data, family=family, weights=weights)


def extract(model: Any) -> dict[str, Any]:
    """Log-likelihood, fixed effects, theta and convergence of a mixedlm GLMM fit."""
    return {
        "loglik": float(model.logLik()),
        "fixef": _python_common.named_floats(model.fixef()),
        "theta": _python_common.as_float_list(model.theta),
        "converged": bool(getattr(model, "converged", True)),
    }


def time_case(case_id: str, repeats: int, budget_s: float | None = None) -> dict[str, Any]:
    """Timed repeated fits of ``case_id`` (see ``_glmm_python.time_case``)."""
    return _glmm_python.time_case(case_id, repeats, budget_s, spell, fit_once, extract)
