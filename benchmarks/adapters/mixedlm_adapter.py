"""Adapter for the PyPI package ``mixedlm`` (1.3.0, Rust core).

API used (mixedlm 1.3.0)::

    import mixedlm
    res = mixedlm.lmer(formula, df, REML=True)   # -> mixedlm.models.lmer.LmerResult
    float(res.logLik())     # LogLik (a float subclass); -deviance/2 (REML crit if REML)
    res.fixef()             # dict name -> value, e.g. {"(Intercept)": .., "service.1": ..}
    res.theta               # ndarray, lme4's theta (relative Cholesky factor)

The data frame has factor columns as pandas ``category`` (see ``common.read_pandas``).
Install it in a separate environment: ``pip install -r benchmarks/requirements-peers.txt``.
"""

from __future__ import annotations

from typing import Any

import common

from adapters import _python_common

NAME = "mixedlm"


def available(function: str = "lmer") -> tuple[bool, str]:
    """``(True, version)`` if ``mixedlm.<function>`` is importable, else ``(False, reason)``."""
    try:
        import mixedlm

        getattr(mixedlm, function)  # triggers mixedlm's lazy import of the fitting code
    except Exception as exc:  # pragma: no cover - depends on the environment
        return False, f"import mixedlm failed: {exc!r}"
    return True, version() or "unknown"


def version() -> str | None:
    """The installed mixedlm version, or ``None``."""
    try:
        from importlib.metadata import version as _v

        return _v("mixedlm")
    except Exception:
        return None


def load(spec: common.ModelSpec) -> Any:
    """Read the model's data into a pandas DataFrame (factors as ``category``)."""
    import mixedlm

    mixedlm.lmer  # noqa: B018 - import the fitting stack before any timing
    return common.read_pandas(spec)


def fit_once(spec: common.ModelSpec, data: Any) -> Any:
    """The timed call: ``mixedlm.lmer(formula, data, REML=...)``."""
    import mixedlm

    return mixedlm.lmer(spec.formula, data, REML=spec.reml)


def extract(model: Any) -> dict[str, Any]:
    """Log-likelihood, fixed effects and theta of a fitted mixedlm model."""
    return {
        "loglik": float(model.logLik()),
        "fixef": {str(k): float(v) for k, v in model.fixef().items()},
        "theta": _python_common.as_float_list(model.theta),
        "converged": bool(getattr(model, "converged", True)),
    }


def fit(model_id: str) -> dict[str, Any]:
    """Fit ``model_id`` once: ``{"loglik", "fixef", "theta", "seconds"}``."""
    return _python_common.fit_and_time_once(model_id, load, fit_once, extract)


def time_model(model_id: str, repeats: int, budget_s: float | None = None) -> dict[str, Any]:
    """Timed repeated fits of ``model_id`` (see ``common.time_fits``)."""
    return _python_common.time_model(model_id, repeats, budget_s, load, fit_once, extract)
