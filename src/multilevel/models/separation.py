"""Fixed effects that diverge: separation in binomial and count GLMMs, and fitted means that
the data contradict.

The log-likelihood of a binomial GLMM has no maximum when some combination d of the columns of
X separates the outcomes (Albert & Anderson 1984): x_i'd >= 0 in every row whose response is
1, x_i'd <= 0 in every row whose response is 0, x_i'd = 0 in rows with both outcomes, and
x_i'd != 0 somewhere. Along beta + t d the fitted probabilities of the rows with x_i'd != 0 move
to their observed 0 or 1 as t grows, every other row stays as it was, and the likelihood keeps
rising towards its supremum: the estimates run off to infinity. The same happens to a log-link
count model when the counts are 0 in every row that some x_i'd < 0 singles out (a factor level
with only zero counts). The random effects cannot do this -- their penalty keeps the modes
finite -- so separation is a property of X and the response alone, and the offset does not
matter. glm warns "fitted probabilities numerically 0 or 1 occurred"; lme4 says nothing.

:func:`divergence_messages` diagnoses a finished fit, at the cost of one pass over the fitted
means when nothing is wrong:

1. Rows whose fitted mean lies within ``EDGE_TOL`` of the edge of the mean space (a probability
   of 0 or 1, a count mean of 0). None: nothing diverged.
2. Among them, rows the data contradict (a success fitted with probability ~0, a positive count
   with mean ~0): the model cannot fit them at all (typically an offset on the wrong scale).
3. Otherwise, a linear program looks for a separating direction d (Konis 2007, the method of
   R's ``detectseparation``): the sparsest one by L1 norm, with the columns of X scaled to a
   largest absolute value of 1. Its nonzero components name the fixed effects that diverge,
   with the sign of the direction they run off in.

Each finding is one message for the optimizer record; the fit is then marked unconverged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import optimize

from multilevel.families.exponential import Binomial, Poisson
from multilevel.families.family import Family
from multilevel.families.negative_binomial import NegativeBinomial

# A fitted mean this close to the edge of the mean space is "numerically" on it: a logit of
# +-18.4, a log mean of -18.4; sound fits almost never come near it, diverging ones pass it
# (PIRLS stops there on a flat deviance, at logits of 20-40).
EDGE_TOL = 1e-8
# Links that map the whole real line onto the binomial's (0, 1): only these can diverge.
BINOMIAL_OPEN_LINKS = ("logit", "probit", "cloglog", "cauchit")
# Components of the L1-minimal separating direction smaller than this (relative to the
# largest) are zero; the linear program's own feasibility tolerance is 1e-7.
DIRECTION_TOL = 1e-6
# Rows quoted in a message.
QUOTED = 3


def _edges(family: Family, y: np.ndarray, mu: np.ndarray,
           ) -> tuple[np.ndarray, np.ndarray] | None:
    """Rows fitted at the lower and at the upper edge of the mean space, or None for a
    family whose mean space has no edge the data can reach."""
    if isinstance(family, Binomial):
        return mu <= EDGE_TOL, mu >= 1.0 - EDGE_TOL
    if isinstance(family, Poisson | NegativeBinomial):
        return mu <= EDGE_TOL, np.zeros(y.shape[0], dtype=bool)
    return None


def _can_separate(family: Family) -> bool:
    if isinstance(family, Binomial):
        return family.link.name in BINOMIAL_OPEN_LINKS
    return isinstance(family, Poisson | NegativeBinomial) and family.link.name == "log"


def separating_direction(X: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                         ) -> np.ndarray | None:
    """The sparsest (least L1 norm) direction d with x_i'd <= 0 on ``lower`` rows,
    x_i'd >= 0 on ``upper`` rows, x_i'd = 0 on all others and
    sum_upper x_i'd - sum_lower x_i'd >= 1, in the units of X's columns scaled to a largest
    absolute value of 1; None when there is none (no separation).

    Parameters
    ----------
    X : (n, p) array
        The fixed-effects design.
    lower, upper : (n,) bool arrays
        Rows whose response sits at the lower edge (0) or the upper edge (1) of the mean
        space; a row in neither must keep x_i'd = 0.
    """
    n, p = X.shape
    if p == 0 or not (lower.any() or upper.any()):
        return None
    scale = np.max(np.abs(X), axis=0)
    Xs = X / np.where(scale > 0, scale, 1.0)
    kind = np.where(lower, -1.0, np.where(upper, 1.0, 0.0))
    # identical rows give identical constraints: a factor design has few distinct rows
    rows, counts = np.unique(np.column_stack([Xs, kind]), axis=0, return_counts=True)
    Xu, ku = rows[:, :p], rows[:, p]
    inner, signed = Xu[ku == 0], ku[ku != 0, None] * Xu[ku != 0]
    # variables: d+ and d- (d = d+ - d-), both >= 0; minimise sum(d+ + d-)
    cost = np.ones(2 * p)
    norm = -(counts[ku != 0, None] * signed).sum(axis=0)
    A_ub = np.vstack([np.hstack([-signed, signed]), np.concatenate([norm, -norm])[None, :]])
    b_ub = np.concatenate([np.zeros(signed.shape[0]), [-1.0]])
    A_eq = np.hstack([inner, -inner]) if inner.shape[0] else None
    b_eq = np.zeros(inner.shape[0]) if inner.shape[0] else None
    found = optimize.linprog(cost, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=b_eq,
                             bounds=(0, None), method="highs")
    if found.status != 0:  # infeasible: no separating direction
        return None
    d = found.x[:p] - found.x[p:]
    top = float(np.max(np.abs(d)))
    if not top > 0:
        return None
    return np.where(np.abs(d) > DIRECTION_TOL * top, d, 0.0)


def _quote(rows: np.ndarray, y: np.ndarray, mu: np.ndarray, labels: np.ndarray | None) -> str:
    shown = ", ".join(f"row {r if labels is None else labels[r]} (y = {y[r]:.4g}, fitted "
                      f"{mu[r]:.3g})" for r in rows[:QUOTED])
    return shown + (f" and {rows.size - QUOTED} more" if rows.size > QUOTED else "")


def _names(d: np.ndarray, names: Sequence[str]) -> tuple[str, str]:
    idx = [int(j) for j in np.flatnonzero(d)]
    parts = [f"{names[j]!r} ({'+' if d[j] > 0 else '-'}Inf)" for j in idx]
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return (f"fixed effect {listed} diverges" if len(parts) == 1
            else f"fixed effects {listed} diverge"), ("it grows" if len(parts) == 1
                                                      else "they grow")


def divergence_messages(X: np.ndarray, y: np.ndarray, mu: np.ndarray, family: Family,
                        names: Sequence[str], labels: np.ndarray | None = None,
                        ) -> list[str]:
    """What went wrong with a fit whose fitted means reach the edge of the mean space: rows
    the data contradict, or the fixed effects that diverge because the data are separated
    (see the module docstring). Empty for a sound fit.

    Parameters
    ----------
    X : (n, p) array
        The fixed-effects design.
    y : (n,) array
        The response (binomial: proportions).
    mu : (n,) array
        Fitted means at the estimates (random effects at their modes).
    family : Family
    names : sequence of str
        The fixed effects' names, one per column of X.
    labels : (n,) array, optional
        Row labels to quote in place of 0-based positions.
    """
    edges = _edges(family, y, mu)
    if edges is None:
        return []
    at_lower, at_upper = edges
    if not (at_lower.any() or at_upper.any()):
        return []
    messages = []
    wrong = (at_lower & (y > 0)) | (at_upper & (y < 1))
    if wrong.any():
        rows = np.flatnonzero(wrong)
        shown = _quote(rows, y, mu, labels)
        what = "probabilities numerically 0 or 1" if isinstance(family, Binomial) \
            else "means numerically 0"
        messages.append(
            f"the model cannot fit {rows.size} row(s) whose responses it gives fitted {what}, "
            f"against the data: {shown}. The estimates are not meaningful; check the scales "
            "of the offset and the predictors (an offset for a log link is log(exposure), "
            "not the exposure)")
        return messages
    if not _can_separate(family):
        return messages
    lower = y <= 0
    upper = (y >= 1) if isinstance(family, Binomial) else np.zeros(y.shape[0], dtype=bool)
    d = separating_direction(X, lower, upper)
    if d is None:
        return messages
    head, grow = _names(d, names)
    n_edge = int((at_lower | at_upper).sum())
    if isinstance(family, Binomial):
        what = (f"the data are (quasi-)completely separated: a combination of the fixed "
                f"effects predicts the outcome exactly (fitted probabilities numerically 0 or "
                f"1 in {n_edge} of {y.shape[0]} rows)")
        fix = ("remove or merge the separating predictor (or the factor levels that have a "
               "single outcome), or fit a penalized (bias-reduced) model")
    else:
        what = (f"the counts are 0 in every row that a combination of the fixed effects "
                f"singles out (fitted means numerically 0 in {n_edge} of {y.shape[0]} rows)")
        fix = ("remove or merge the factor levels (or predictor values) whose counts are all "
               "0, or fit a penalized model")
    messages.append(f"{head}: {what}, so the likelihood keeps increasing as {grow} and has no "
                    f"maximum. The estimates, their standard errors and the log-likelihood "
                    f"are not meaningful: {fix}")
    return messages
