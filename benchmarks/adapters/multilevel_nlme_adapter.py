"""nlme-territory adapter for this repository's package: times ``ml.gls``, ``ml.lme`` and
``ml.nlme`` on the cases of ``benchmarks/nlme_cases.py``.

Each case's ``py_call`` is evaluated with ``ml`` (the package) and ``data`` (the case's
DataFrame) bound; only that call is timed.  Of the result it keeps ``loglik``, ``fixef`` and,
where the result has them, ``sigma`` and the structures' parameters.

Several cases may be timed in one process (``CASE`` is a comma-separated list): one untimed
warm-up fit of each engine on a small reference case comes first, so that lazily loaded code is
not charged to the first timed fit.  Run from a source checkout with ``PYTHONPATH=src``
(``benchmarks/nlme_bench.py`` sets it).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import common
import nlme_cases

from adapters import _python_common, multilevel_adapter

NAME = "multilevel"
WARMUP = ("gls/orthodont_ar1", "lme/orthodont_ar1", "nlme/orange_logistic")


def available() -> tuple[bool, str]:
    """``(True, version)`` if ``multilevel.gls``, ``lme`` and ``nlme`` exist."""
    for function in ("gls", "lme", "nlme"):
        ok, info = multilevel_adapter.available(function)
        if not ok:
            return ok, info
    return True, multilevel_adapter.version() or "unknown"


def fit_once(case: nlme_cases.NlmeCase, data: Any) -> Any:
    """The timed call: ``case.py_call`` with ``ml`` and ``data`` bound."""
    import multilevel as ml

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return eval(case.py_call, {"__builtins__": {}}, {"ml": ml, "data": data})  # noqa: S307


def extract(fit: Any) -> dict[str, Any]:
    """loglik, fixef, sigma and the structures' parameters of a fit (untimed)."""
    out: dict[str, Any] = {
        "loglik": float(fit.loglik),
        "fixef": _python_common.named_floats(fit.fixef),
    }
    sigma = getattr(fit, "sigma", None)
    if sigma is not None and not callable(sigma):
        out["sigma"] = float(sigma)
    for name in ("variance_parameters", "correlation_parameters"):
        values = getattr(fit, name, None)
        if values is not None:
            out[name] = _python_common.as_float_list(values)
    return out


def _time_one(case_id: str, repeats: int, budget_s: float | None) -> dict[str, Any]:
    case = nlme_cases.get_case(case_id)
    data = nlme_cases.read_case_data(case)
    last: dict[str, Any] = {}

    def keep(fit: Any) -> dict[str, Any]:  # time_fits keeps only loglik, fixef and theta
        last.clear()
        last.update(extract(fit))
        return last

    try:
        record = common.time_fits(lambda d: fit_once(case, d), keep, data, repeats=repeats,
                                  budget_s=budget_s)
    except Exception as exc:  # a case the package cannot fit yet is reported, not fatal
        return {"error": f"{type(exc).__name__}: {str(exc)[:400]}"}
    record.update({k: v for k, v in last.items() if record.get(k) is None})
    record.pop("theta", None)
    if record.get("loglik") is not None and not math.isfinite(record["loglik"]):
        record["loglik"] = None
    return record


def time_case(case_ids: str, repeats: int, budget_s: float | None) -> dict[str, Any]:
    """Time each of the comma-separated ``case_ids``; ``{"cases": {case_id: record}}``.

    ``repeats`` is an upper bound: each case is fitted at most its ``default_repeats`` times
    unless ``repeats`` is smaller, and at most until ``budget_s`` seconds were spent on it.
    """
    import multilevel  # noqa: F401 - import the package before any timing

    for warm in WARMUP:
        case = nlme_cases.get_case(warm)
        try:
            fit_once(case, nlme_cases.read_case_data(case))
        except Exception:  # the timed fits report the failure
            pass
    out: dict[str, Any] = {}
    for case_id in nlme_cases.select(case_ids):
        n = min(repeats, nlme_cases.get_case(case_id).default_repeats)
        out[case_id] = _time_one(case_id, n, budget_s)
    return {"cases": out}
