"""Families of contrasts among marginal means (emmeans's ``pairwise``, ``revpairwise``,
``trt.vs.ctrl``, ``consec`` and custom weights), and the multiplicity adjustments of such a family
of t (or z) tests and their simultaneous intervals, as emmeans applies them
(``summary(..., adjust=)``).

- ``"tukey"``: the studentized range of the ``n_means`` means compared pairwise,
  P(Q > sqrt(2) |t|) with ``df`` (Tukey-Kramer); only for one set of pairwise comparisons;
- ``"dunnettx"``: Dunnett's many-to-one test approximated in closed form, as emmeans's
  ``dunnettx``: a mix of the Tukey probability for the number of means m with
  m (m - 1) / 2 = k contrasts, weighted (k - 1) / k, and the Sidak probability F(t^2; 1, df)^k,
  weighted 1 / k;
- ``"sidak"``: 1 - (1 - p)^k; ``"bonferroni"``: min(1, k p); ``"holm"``: Holm's step-down
  (R's ``p.adjust``); ``"none"``.

Intervals get the matching critical values; Holm's method has none of its own, so its intervals
are Bonferroni's (as emmeans's). A family of one contrast is never adjusted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import optimize, stats

from multilevel.errors import ArgumentError

CONTRAST_METHODS = ("pairwise", "revpairwise", "trt.vs.ctrl", "consec")
# emmeans's default adjustment of each family, but 'mvt' for consec (not available here)
DEFAULT_ADJUST = {"pairwise": "tukey", "revpairwise": "tukey", "trt.vs.ctrl": "dunnettx",
                  "consec": "sidak", "custom": "none"}
ADJUSTMENTS = ("tukey", "dunnettx", "sidak", "bonferroni", "holm", "none")


def check_adjust(adjust: object) -> str:
    """``adjust`` as one of :data:`ADJUSTMENTS`, or an ArgumentError naming it."""
    if not isinstance(adjust, str) or adjust.lower() not in ADJUSTMENTS:
        hint = (" (emmeans's 'mvt' needs the multivariate t distribution, which multilevel "
                "does not provide; 'holm' or 'sidak' are valid at any correlation)"
                if isinstance(adjust, str) and adjust == "mvt" else "")
        raise ArgumentError(f"adjust must be one of {', '.join(map(repr, ADJUSTMENTS))}, got "
                            f"{adjust!r:.60}{hint}")
    return adjust.lower()


def effective_adjust(adjust: str, pairwise: bool, n_contrasts: int) -> tuple[str, str | None]:
    """The adjustment actually applied, and a note when it differs from the one asked for."""
    if n_contrasts <= 1 and adjust != "none":
        return "none", None
    if adjust == "tukey" and not pairwise:
        return "sidak", ("the Tukey adjustment is only for one set of pairwise comparisons; "
                         "the Sidak adjustment was used instead")
    return adjust, None


def t_sf(x: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Upper tail of t on ``df`` (the normal's where df is infinite)."""
    return np.where(np.isfinite(df), stats.t.sf(x, np.where(np.isfinite(df), df, 1.0)),
                    stats.norm.sf(x))


def t_ppf(q: float, df: np.ndarray) -> np.ndarray:
    """Quantile ``q`` of t on ``df`` (the normal's where df is infinite)."""
    return np.where(np.isfinite(df), stats.t.ppf(q, np.where(np.isfinite(df), df, 1.0)),
                    stats.norm.ppf(q))


def _tukey_means(k: int) -> float:
    """The (fractional) number of means whose pairwise comparisons are k contrasts."""
    return (1 + np.sqrt(1 + 8 * k)) / 2


def _dunnettx_cdf(x: float, k: int, df: float) -> float:
    tukey = float(stats.studentized_range.cdf(np.sqrt(2) * x, _tukey_means(k), df))
    one = stats.chi2.cdf(x * x, 1) if not np.isfinite(df) else stats.f.cdf(x * x, 1, df)
    weight = (k - 1) / k
    return weight * tukey + (1 - weight) * float(one) ** k


def adjusted_p(t: np.ndarray, df: np.ndarray, adjust: str, n_means: int) -> np.ndarray:
    """Two-sided p values of one family of tests (t ratios ``t`` on ``df``), adjusted."""
    t = np.abs(np.asarray(t, dtype=float))
    df = np.asarray(df, dtype=float)
    p = 2 * t_sf(t, df)
    k = t.size
    if adjust == "none":
        return p
    if adjust == "bonferroni":
        return np.minimum(1.0, k * p)
    if adjust == "sidak":
        return 1 - (1 - p) ** k
    if adjust == "holm":
        order = np.argsort(p, kind="stable")
        stepped = np.minimum(1.0, (k - np.arange(k)) * p[order])
        out = np.empty(k)
        out[order] = np.maximum.accumulate(stepped)
        return out
    if adjust == "tukey":
        return np.array([float(stats.studentized_range.sf(np.sqrt(2) * ti, n_means, d))
                         for ti, d in zip(t, df, strict=True)])
    # dunnettx
    return np.array([1 - _dunnettx_cdf(float(ti), k, float(d))
                     for ti, d in zip(t, df, strict=True)])


def critical_values(level: float, df: np.ndarray, adjust: str, n_means: int) -> np.ndarray:
    """Multipliers of the standard errors for simultaneous intervals of one family."""
    df = np.asarray(df, dtype=float)
    k = df.size
    if adjust == "none":
        return t_ppf((1 + level) / 2, df)
    if adjust in ("bonferroni", "holm"):
        return t_ppf(1 - (1 - level) / (2 * k), df)
    if adjust == "sidak":
        return t_ppf((1 + level ** (1 / k)) / 2, df)
    if adjust == "tukey":
        return np.array([float(stats.studentized_range.ppf(level, n_means, d)) / np.sqrt(2)
                         for d in df])
    return np.array([optimize.brentq(lambda x, d=d: _dunnettx_cdf(x, k, d) - level, 1e-6,
                                     100.0, xtol=1e-12) for d in df])


def contrast_coefficients(method: Any, labels: list[str],
                          ) -> tuple[list[str], np.ndarray, str, bool]:
    """The contrast names, coefficient matrix (n_contrasts, n_means), family kind and whether
    it is one set of pairwise comparisons."""
    n = len(labels)
    if isinstance(method, Mapping):
        names, rows = [], []
        for name, w in method.items():
            try:
                coef = np.asarray(w, dtype=float).reshape(-1)
            except (TypeError, ValueError):
                raise ArgumentError(f"contrast {name!r} must be numbers, one weight per mean "
                                    f"({n}: {', '.join(labels)}), got {w!r:.60}") from None
            if not np.all(np.isfinite(coef)):
                raise ArgumentError(f"contrast {name!r} has a NaN or infinite weight")
            if coef.size != n:
                raise ArgumentError(f"contrast {name!r} has {coef.size} weights; it needs one "
                                    f"per mean ({n}: {', '.join(labels)})")
            names.append(str(name))
            rows.append(coef)
        if not rows:
            raise ArgumentError("the dict of contrasts is empty; give name -> weights")
        return names, np.array(rows), "custom", False
    if not isinstance(method, str) or method not in CONTRAST_METHODS:
        # checked first: a Series or array would compare element-wise in the tests below
        raise ArgumentError(f"method must be one of {', '.join(map(repr, CONTRAST_METHODS))} "
                            f"or a dict of name -> weights, got {method!r:.60}")
    pairs: list[tuple[int, int]]
    if method == "pairwise":
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    elif method == "revpairwise":
        pairs = [(j, i) for i in range(n) for j in range(i + 1, n)]
    elif method == "trt.vs.ctrl":
        pairs = [(j, 0) for j in range(1, n)]
    else:  # consec
        pairs = [(j, j - 1) for j in range(1, n)]
    C = np.zeros((len(pairs), n))
    for r, (i, j) in enumerate(pairs):
        C[r, i], C[r, j] = 1.0, -1.0
    names = [f"{labels[i]} - {labels[j]}" for i, j in pairs]
    return names, C, method, method in ("pairwise", "revpairwise")
