"""Adapter for this repository's package, ``multilevel``.

API used::

    import multilevel as ml
    res = ml.lmer(formula, df, reml=True)
    res.loglik    # float (log-likelihood; the REML criterion / -2 for REML fits)
    res.fixef     # pandas Series indexed by coefficient name
    res.theta     # array-like, lme4's theta

Run from a source checkout with ``PYTHONPATH=src`` (``benchmarks/run.py`` sets it).
"""

from __future__ import annotations

from typing import Any

import common

from adapters import _python_common

NAME = "multilevel"


def available(function: str = "lmer") -> tuple[bool, str]:
    """Return ``(True, version)`` if ``multilevel.<function>`` exists, else ``(False, reason)``."""
    try:
        import multilevel as ml
    except Exception as exc:  # pragma: no cover - depends on the checkout
        return False, f"import multilevel failed: {exc!r}"
    if not callable(getattr(ml, function, None)):
        return False, f"multilevel.{function} does not exist yet"
    return True, version() or "unknown"


def version() -> str | None:
    """The package version (``multilevel.__version__`` or the installed metadata)."""
    try:
        import multilevel as ml

        v = getattr(ml, "__version__", None)
        if v:
            return str(v)
        from importlib.metadata import version as _v

        return _v("multilevel")
    except Exception:
        return None


def load(spec: common.ModelSpec) -> Any:
    """Read the model's data into a pandas DataFrame (factors as ``category``)."""
    import multilevel  # noqa: F401 - import the package before any timing

    return common.read_pandas(spec)


def fit_once(spec: common.ModelSpec, data: Any) -> Any:
    """The timed call: ``ml.lmer(formula, data, reml=...)``."""
    import multilevel as ml

    return ml.lmer(spec.formula, data, reml=spec.reml)


def extract(model: Any) -> dict[str, Any]:
    """Log-likelihood, fixed effects and theta of a fitted ``multilevel`` model."""
    return {
        "loglik": float(_python_common.value(model.loglik)),
        "fixef": _python_common.named_floats(_python_common.value(model.fixef)),
        "theta": _python_common.as_float_list(_python_common.value(getattr(model, "theta", None))),
    }


def fit(model_id: str) -> dict[str, Any]:
    """Fit ``model_id`` once: ``{"loglik", "fixef", "theta", "seconds"}``."""
    return _python_common.fit_and_time_once(model_id, load, fit_once, extract)


def time_model(model_id: str, repeats: int, budget_s: float | None = None) -> dict[str, Any]:
    """Timed repeated fits of ``model_id`` (see ``common.time_fits``)."""
    return _python_common.time_model(model_id, repeats, budget_s, load, fit_once, extract)
