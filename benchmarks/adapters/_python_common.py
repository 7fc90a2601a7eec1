"""Helpers shared by the Python-library adapters (run inside the library's interpreter)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import common


def fit_and_time_once(
    model_id: str,
    load: Callable[[common.ModelSpec], Any],
    fit_once: Callable[[common.ModelSpec, Any], Any],
    extract: Callable[[Any], dict[str, Any]],
) -> dict[str, Any]:
    """Load the data of ``model_id`` (untimed), fit once (timed) and summarise."""
    spec = common.get_model(model_id)
    data = load(spec)
    t0 = time.perf_counter()
    model = fit_once(spec, data)
    seconds = time.perf_counter() - t0
    out = extract(model)
    out["seconds"] = seconds
    return out


def time_model(
    model_id: str,
    repeats: int,
    budget_s: float | None,
    load: Callable[[common.ModelSpec], Any],
    fit_once: Callable[[common.ModelSpec, Any], Any],
    extract: Callable[[Any], dict[str, Any]],
) -> dict[str, Any]:
    """Warm up on sleepstudy, load ``model_id``'s data, then time repeated fits."""
    warm_spec = common.get_model("sleepstudy")
    extract(fit_once(warm_spec, load(warm_spec)))
    spec = common.get_model(model_id)
    data = load(spec)
    return common.time_fits(
        lambda d: fit_once(spec, d), extract, data, repeats=repeats, budget_s=budget_s
    )


def as_float_list(values: Any) -> list[float]:
    """Convert an array-like of numbers to a list of Python floats."""
    if values is None:
        return []
    try:
        return [float(v) for v in values]
    except TypeError:
        return [float(values)]


def value(obj: Any) -> Any:
    """``obj()`` if it is a method, else ``obj`` (a result may expose either)."""
    return obj() if callable(obj) else obj


def named_floats(values: Any) -> dict[str, float]:
    """A mapping or Series of coefficients as ``{name: float}`` (positions if unnamed)."""
    items = values.items() if hasattr(values, "items") else enumerate(values)
    return {str(k): float(v) for k, v in items}
