"""The timing procedure shared by the Python GLMM adapters (run inside the library's interpreter).

Before timing: the library is imported, one untimed warm-up fit of the cbpp case is done (so
that lazily loaded code is not charged to the first timed fit), the case's data are read and
its model is spelled the way the library reads it (``glmm_cases.spell``).  Then
``common.time_fits`` times the fitting call alone, with the memory bookkeeping of the LMM
benchmarks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import common
import glmm_cases

Speller = Callable[[glmm_cases.GlmmCase, Any], tuple[Any, glmm_cases.Spelling]]
Fitter = Callable[[glmm_cases.GlmmCase, glmm_cases.Spelling, Any], Any]
Extractor = Callable[[Any], dict[str, Any]]

WARMUP_CASE = "cbpp"


def time_case(
    case_id: str,
    repeats: int,
    budget_s: float | None,
    spell: Speller,
    fit_once: Fitter,
    extract: Extractor,
) -> dict[str, Any]:
    """Warm up on cbpp, then time ``repeats`` fits of ``case_id`` (see ``common.time_fits``).

    Returns ``common.time_fits``'s record plus the spelling used (``formula``, ``weights``,
    ``spelling``) and the last fit's ``converged`` flag.
    """
    warm = glmm_cases.get_case(WARMUP_CASE)
    warm_data, warm_spelling = spell(warm, glmm_cases.read_case_data(warm))
    extract(fit_once(warm, warm_spelling, warm_data))

    case = glmm_cases.get_case(case_id)
    data, spelling = spell(case, glmm_cases.read_case_data(case))
    last: dict[str, Any] = {}

    def summarise(model: Any) -> dict[str, Any]:
        last.clear()
        last.update(extract(model))
        return last

    result = common.time_fits(
        lambda d: fit_once(case, spelling, d), summarise, data, repeats=repeats, budget_s=budget_s
    )
    result.update(
        formula=spelling.formula,
        weights=spelling.weights,
        spelling=spelling.note,
        family=case.family,
        converged=last.get("converged"),
    )
    return result

