"""The report's "Notes": what a reader should know before trusting the numbers, in plain
words: did the optimizer (or the sampler) converge, is the fit singular, were rows dropped.

Each note is a level (``"ok"``, ``"warning"``) and a sentence; the page shows warnings first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

SINGULAR_TEXT = ("The fit is singular: a variance component is estimated as zero or a "
                 "correlation at \u00b11. The random-effects structure is too complex for these "
                 "data; simplify it (drop the random slope or the correlation, e.g. "
                 "(Days || Subject) instead of (Days | Subject), or the term whose variance is "
                 "zero) and compare the two fits with ml.anova.")

# For kinds without lme4's isSingular: a standard deviation this small relative to the
# largest one, or a correlation this close to +-1, counts as on the boundary.
RELATIVE_SD_TOL = 1e-4
CORRELATION_TOL = 1e-6


@dataclass(frozen=True)
class Note:
    """One note: ``level`` is ``"ok"`` or ``"warning"``; ``text`` is plain words."""

    level: str
    text: str


def notes_for(fit: Any, kind: str) -> list[Note]:
    """The notes on ``fit`` (a result of kind ``kind``), warnings first."""
    notes = (_bayes_notes(fit) if kind == "BayesResult"
             else _convergence_notes(fit) + _singularity_notes(fit, kind))
    dropped = getattr(fit, "n_dropped", 0)
    if isinstance(dropped, int) and dropped > 0:
        notes.append(Note("warning", f"{dropped} rows with missing values in the model's "
                                     "columns were left out (listwise deletion); the "
                                     "estimates describe the remaining rows only."))
    return sorted(notes, key=lambda n: n.level != "warning")


def _optsum(fit: Any) -> Any:
    for holder in (fit, getattr(fit, "fit", None)):
        optsum = getattr(holder, "optsum", None)
        if optsum is not None:
            return optsum
    return None


def _convergence_notes(fit: Any) -> list[Note]:
    optsum = _optsum(fit)
    converged = getattr(fit, "converged", None)
    if converged is None and optsum is not None:
        converged = getattr(optsum, "converged", None)
    messages = [str(m) for m in getattr(optsum, "messages", ()) if "singular" not in str(m)]
    if converged is None:
        # nlme's Lindstrom-Bates alternation: a fit that does not converge raises instead of
        # returning, so a result in hand has converged
        iterations = getattr(fit, "iterations", None)
        count = f" after {iterations} iterations" if isinstance(iterations, int) else ""
        return [Note("ok", f"The fitting algorithm converged{count}.")]
    if converged and not messages:
        detail = ""
        if optsum is not None:
            detail = f" ({optsum.backend}, {optsum.feval} evaluations of the objective)"
        return [Note("ok", f"The optimizer converged{detail}.")]
    text = ("The optimizer did not report convergence: the estimates may not be the maximum "
            "of the likelihood. Rescale predictors with very different magnitudes, try "
            "another optimizer (optimizer=\"cobyqa\" or \"lbfgsb\"), or simplify the "
            "random-effects structure.")
    if converged:
        text = "The optimizer converged, but a convergence check raised a concern."
    if messages:
        text += " Messages: " + "; ".join(messages)
    return [Note("warning", text)]


def _singularity_notes(fit: Any, kind: str) -> list[Note]:
    flag = None
    for holder in (fit, getattr(fit, "fit", None)):
        value = getattr(holder, "is_singular", None)
        if isinstance(value, bool):
            flag = value
            break
    varcorr = getattr(fit, "varcorr", None)
    if not isinstance(varcorr, pd.DataFrame) or not (varcorr["group"] != "Residual").any():
        return []  # no random effects: nothing can be singular
    if flag is None:
        flag = _boundary(varcorr)
    if flag:
        return [Note("warning", SINGULAR_TEXT)]
    return [Note("ok", "The fit is not singular: every variance component is away from zero "
                       "and every correlation away from \u00b11.")]


def _boundary(varcorr: pd.DataFrame) -> bool:
    """A standard deviation of (nearly) zero or a correlation of (nearly) +-1 in ``varcorr``."""
    random = varcorr[varcorr["group"] != "Residual"]
    sds = pd.to_numeric(random["sd"], errors="coerce").dropna()
    corrs = pd.to_numeric(random["corr"], errors="coerce").dropna()
    largest = float(sds.abs().max()) if len(sds) else 0.0
    if len(sds) and (sds.abs() <= RELATIVE_SD_TOL * max(largest, 1e-300)).any():
        return True
    return bool(len(corrs) and (1 - corrs.abs() <= CORRELATION_TOL).any())


def _bayes_notes(fit: Any) -> list[Note]:
    d = fit.diagnostics
    notes = [Note("warning", str(m)) for m in d.messages]
    if not d.messages:
        rhat = ("no R-hat (one chain)" if not math.isfinite(d.max_rhat)
                else f"largest R-hat {d.max_rhat:.3f}")
        notes.append(Note("ok", f"The sampler shows no sign of trouble: {d.divergences} "
                                f"divergent transitions, {rhat}, smallest bulk and tail "
                                f"effective sample sizes {d.min_ess_bulk:.0f} and "
                                f"{d.min_ess_tail:.0f}."))
    elif d.divergences == 0:
        notes.append(Note("ok", "No divergent transitions."))
    return notes
