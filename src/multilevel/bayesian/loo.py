"""Out-of-sample predictive accuracy of Bayesian fits: PSIS-LOO, WAIC and their comparison.

The expected log pointwise predictive density of a new observation is estimated from the
pointwise log-likelihood matrix (draws x observations) in ``fit.posterior.log_likelihood``:

- PSIS-LOO (Vehtari, Gelman & Gabry 2017): importance sampling of each leave-one-out posterior
  with Pareto-smoothed weights; ArviZ's ``loo`` does the smoothing. The fitted Pareto shape k
  of each observation says whether its estimate can be trusted (k <= 0.5 good, <= 0.7 ok,
  above that unreliable).
- WAIC (Watanabe 2010): the log pointwise predictive density minus the posterior variance of
  each observation's log-likelihood (p_waic_i > 0.4 flags an unreliable term), computed here
  from the matrix directly.

The totals and their standard errors are computed from the pointwise values as R's ``loo``
package does (se = sqrt(n * var(pointwise)), with the n - 1 variance; ArviZ uses n), so that
``ml.loo(fit)`` prints R's ``loo(fit)`` numbers for the same matrix. :func:`compare_loo` is
``loo_compare``: each model's elpd difference from the best one, with the standard error
sqrt(n * var(pointwise differences)).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from multilevel.errors import (
    ArgumentError,
    ModelComparisonError,
    MultilevelWarning,
    NumericalError,
)

# Pareto k limits of the diagnostic table (Vehtari et al. 2017; R's loo 2.5)
K_OK = 0.5
K_BAD = 0.7
K_VERY_BAD = 1.0
# WAIC: a posterior variance of an observation's log-likelihood above this flags its term
P_WAIC_LIMIT = 0.4
# observations named in a warning before "..."
_SHOWN = 10


class LooWarning(MultilevelWarning):
    """PSIS-LOO or WAIC is unreliable for some observations (Pareto k > 0.7, p_waic_i > 0.4)."""


def _shown_rows(rows: np.ndarray) -> str:
    listed = ", ".join(str(int(i)) for i in rows[:_SHOWN])
    return listed + (", ..." if rows.size > _SHOWN else "")


def _frozen(values: np.ndarray) -> np.ndarray:
    """A read-only copy: the results are immutable, their arrays included."""
    out = np.array(values, dtype=float)
    out.setflags(write=False)
    return out


def _se(pointwise: np.ndarray) -> float:
    """Standard error of a sum of n pointwise values: sqrt(n * var), var with n - 1 (loo)."""
    n = pointwise.size
    return float(math.sqrt(n * np.var(pointwise, ddof=1))) if n > 1 else float("nan")


def _estimates_text(rows: list[tuple[str, float, float]]) -> list[str]:
    """R's estimates table: one decimal, right-aligned columns Estimate and SE."""
    width = max(len(name) for name, _, _ in rows)
    est = [f"{e:.1f}" for _, e, _ in rows]
    se = [f"{s:.1f}" if math.isfinite(s) else "NA" for _, _, s in rows]
    w1 = max(len("Estimate"), *(len(t) for t in est))
    w2 = max(len("SE"), *(len(t) for t in se))
    lines = [f"{'':<{width}} {'Estimate':>{w1}} {'SE':>{w2}}"]
    lines += [f"{name:<{width}} {e:>{w1}} {s:>{w2}}"
              for (name, _, _), e, s in zip(rows, est, se, strict=True)]
    return lines


def _html_table(rows: list[tuple[str, float, float]], caption: str) -> str:
    body = "".join(f"<tr><th>{name}</th><td>{e:.1f}</td><td>{s:.1f}</td></tr>"
                   for name, e, s in rows)
    return (f"<table><caption>{caption}</caption><thead><tr><th></th><th>Estimate</th>"
            f"<th>SE</th></tr></thead><tbody>{body}</tbody></table>")


@dataclass(frozen=True, eq=False)
class LooResult:
    """PSIS-LOO of a fit, as R's ``loo(fit)``.

    Attributes
    ----------
    elpd, se : float
        Expected log pointwise predictive density (elpd_loo) and its standard error.
    p, p_se : float
        Effective number of parameters (p_loo = lppd - elpd_loo) and its standard error.
    ic, ic_se : float
        looic = -2 elpd and its standard error.
    pointwise : ndarray, shape (n,)
        elpd_loo of each observation (the fitted rows, in order).
    pareto_k : ndarray, shape (n,)
        Estimated Pareto shape of each observation's importance weights.
    n_draws, n_obs : int
        Size of the log-likelihood matrix.
    good_k : float
        The sample-size-dependent limit min(1 - 1 / log10(n_draws), 0.7) below which k is
        trustworthy (Vehtari et al. 2024; ArviZ's ``good_k``).
    """

    elpd: float
    se: float
    p: float
    p_se: float
    ic: float
    ic_se: float
    pointwise: np.ndarray = field(repr=False)
    pareto_k: np.ndarray = field(repr=False)
    n_draws: int
    n_obs: int
    good_k: float = K_BAD

    @property
    def n_bad(self) -> int:
        """Observations with k > 0.7 (unreliable)."""
        return int(np.sum(self.pareto_k > K_BAD))

    @property
    def n_very_bad(self) -> int:
        """Observations with k > 1 (the importance weights have no finite mean)."""
        return int(np.sum(self.pareto_k > K_VERY_BAD))

    @property
    def bad_observations(self) -> np.ndarray:
        """Positions (among the fitted rows, from 0) of the observations with k > 0.7."""
        return np.flatnonzero(self.pareto_k > K_BAD)

    def _rows(self) -> list[tuple[str, float, float]]:
        return [("elpd_loo", self.elpd, self.se), ("p_loo", self.p, self.p_se),
                ("looic", self.ic, self.ic_se)]

    def estimates(self) -> pd.DataFrame:
        """R's ``loo(fit)$estimates``: rows elpd_loo, p_loo, looic; columns estimate, se."""
        rows = self._rows()
        return pd.DataFrame({"estimate": [e for _, e, _ in rows], "se": [s for _, _, s in rows]},
                            index=[name for name, _, _ in rows])

    def k_table(self) -> pd.DataFrame:
        """Counts and shares of the Pareto k values in (-Inf, 0.5], (0.5, 0.7], (0.7, 1],
        (1, Inf)."""
        edges = [-np.inf, K_OK, K_BAD, K_VERY_BAD, np.inf]
        labels = ["(-Inf, 0.5]", "(0.5, 0.7]", "(0.7, 1]", "(1, Inf)"]
        kinds = ["good", "ok", "bad", "very bad"]
        counts = [int(np.sum((self.pareto_k > lo) & (self.pareto_k <= hi)))
                  for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
        n = max(self.n_obs, 1)
        return pd.DataFrame({"kind": kinds, "count": counts,
                             "percent": [100.0 * c / n for c in counts]}, index=labels)

    def __str__(self) -> str:
        lines = [f"Computed from {self.n_draws} by {self.n_obs} log-likelihood matrix", ""]
        lines += _estimates_text(self._rows())
        lines.append("------")
        if np.all(self.pareto_k <= K_OK):
            lines.append("All Pareto k estimates are good (k <= 0.5).")
        else:
            lines.append("Pareto k diagnostic values:")
            table = self.k_table()
            lines.append(f"{'':<24}{'Count':>6} {'Pct.':>6}")
            for label, row in table.iterrows():
                kind = f"({row['kind']})"
                lines.append(f"{label:>11}   {kind:<10}{row['count']:>6} "
                             f"{row['percent']:>5.1f}%")
            if self.n_bad:
                lines.append(f"Observations with k > 0.7 (from 0): "
                             f"{_shown_rows(self.bad_observations)}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"<LooResult elpd_loo={self.elpd:.1f} (se {self.se:.1f}), p_loo={self.p:.1f}, "
                f"{self.n_bad} observations with k > 0.7>")

    def _repr_html_(self) -> str:
        table = self.k_table()
        body = "".join(f"<tr><th>{label}</th><td>{row['kind']}</td><td>{row['count']}</td>"
                       f"<td>{row['percent']:.1f}%</td></tr>" for label, row in table.iterrows())
        return (_html_table(self._rows(), f"PSIS-LOO from {self.n_draws} by {self.n_obs} "
                                           "log-likelihood matrix")
                + "<table><caption>Pareto k diagnostic values</caption><thead><tr><th></th>"
                "<th></th><th>Count</th><th>Pct.</th></tr></thead><tbody>"
                f"{body}</tbody></table>")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (the pointwise values as lists)."""
        return {"criterion": "loo", "elpd_loo": self.elpd, "se_elpd_loo": self.se,
                "p_loo": self.p, "se_p_loo": self.p_se, "looic": self.ic,
                "se_looic": self.ic_se, "n_draws": self.n_draws, "n_obs": self.n_obs,
                "n_bad": self.n_bad, "n_very_bad": self.n_very_bad, "good_k": self.good_k,
                "k_counts": {str(k): int(v) for k, v in self.k_table()["count"].items()},
                "pareto_k": [float(v) for v in self.pareto_k],
                "pointwise": [float(v) for v in self.pointwise]}


@dataclass(frozen=True, eq=False)
class WaicResult:
    """WAIC of a fit, as R's ``waic(fit)``.

    Attributes
    ----------
    elpd, se : float
        elpd_waic = lppd - p_waic and its standard error.
    p, p_se : float
        p_waic (the summed posterior variances of the pointwise log-likelihoods) and its
        standard error.
    ic, ic_se : float
        waic = -2 elpd_waic and its standard error.
    pointwise : ndarray, shape (n,)
        elpd_waic of each observation.
    p_pointwise : ndarray, shape (n,)
        p_waic of each observation (above 0.4: WAIC unreliable there).
    n_draws, n_obs : int
    """

    elpd: float
    se: float
    p: float
    p_se: float
    ic: float
    ic_se: float
    pointwise: np.ndarray = field(repr=False)
    p_pointwise: np.ndarray = field(repr=False)
    n_draws: int
    n_obs: int

    @property
    def n_bad(self) -> int:
        """Observations with p_waic_i > 0.4."""
        return int(np.sum(self.p_pointwise > P_WAIC_LIMIT))

    def _rows(self) -> list[tuple[str, float, float]]:
        return [("elpd_waic", self.elpd, self.se), ("p_waic", self.p, self.p_se),
                ("waic", self.ic, self.ic_se)]

    def estimates(self) -> pd.DataFrame:
        """R's ``waic(fit)$estimates``: rows elpd_waic, p_waic, waic; columns estimate, se."""
        rows = self._rows()
        return pd.DataFrame({"estimate": [e for _, e, _ in rows], "se": [s for _, _, s in rows]},
                            index=[name for name, _, _ in rows])

    def __str__(self) -> str:
        lines = [f"Computed from {self.n_draws} by {self.n_obs} log-likelihood matrix", ""]
        lines += _estimates_text(self._rows())
        if self.n_bad:
            share = 100.0 * self.n_bad / max(self.n_obs, 1)
            lines += ["", f"{self.n_bad} ({share:.1f}%) p_waic estimates greater than 0.4. "
                          "We recommend trying loo instead."]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"<WaicResult elpd_waic={self.elpd:.1f} (se {self.se:.1f}), "
                f"p_waic={self.p:.1f}, {self.n_bad} observations with p_waic > 0.4>")

    def _repr_html_(self) -> str:
        return _html_table(self._rows(), f"WAIC from {self.n_draws} by {self.n_obs} "
                                         "log-likelihood matrix")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (the pointwise values as lists)."""
        return {"criterion": "waic", "elpd_waic": self.elpd, "se_elpd_waic": self.se,
                "p_waic": self.p, "se_p_waic": self.p_se, "waic": self.ic,
                "se_waic": self.ic_se, "n_draws": self.n_draws, "n_obs": self.n_obs,
                "n_bad": self.n_bad, "pointwise": [float(v) for v in self.pointwise],
                "p_pointwise": [float(v) for v in self.p_pointwise]}


# -- computing ------------------------------------------------------------------------------
def check_bayes_fit(fit: Any, what: str, name: str = "fit") -> Any:
    """``fit`` must be a Bayesian fit (``ml.bayes`` / ``ml.bayes_nlme``)."""
    if getattr(fit, "kind", None) != "bayes" or not hasattr(fit, "posterior"):
        raise ArgumentError(f"{what} needs a Bayesian fit (the result of multilevel.bayesian or "
                            f"multilevel.bayes_nlme) as {name}, got {type(fit).__name__}; "
                            "for lmer/glmer/lme fits compare information criteria with "
                            "multilevel.compare()")
    return fit


def log_lpd(loglik: np.ndarray) -> np.ndarray:
    """Log pointwise predictive density of each observation: log mean_s exp(loglik[s, i]),
    from a (chains, draws, n) matrix."""
    from scipy.special import logsumexp
    flat = loglik.reshape(-1, loglik.shape[-1])
    return np.asarray(logsumexp(flat, axis=0) - math.log(flat.shape[0]))


def _loglik_matrix(idata: Any) -> np.ndarray:
    ll = np.asarray(idata.log_likelihood["y"].values, dtype=float)
    if not np.all(np.isfinite(ll)):
        bad = np.flatnonzero(~np.all(np.isfinite(ll), axis=(0, 1)))
        raise NumericalError(f"the log-likelihood is not finite for observations "
                            f"{_shown_rows(bad)} (from 0) at some draws: PSIS-LOO and WAIC "
                            "need finite values; check the model and data for those rows")
    return ll


def psis_loo(idata: Any, reff: float | None = None) -> LooResult:
    """PSIS-LOO of an ``InferenceData`` with a ``log_likelihood`` group (variable ``y``).

    ``reff``: the relative efficiency of the draws (ArviZ's; None estimates it from the
    posterior's effective sample sizes, which needs a posterior group).
    """
    import arviz as az
    ll = _loglik_matrix(idata)
    with warnings.catch_warnings():
        # ArviZ's own warnings become our LooWarning in :func:`loo`
        warnings.simplefilter("ignore")
        res = az.loo(idata, pointwise=True, reff=reff, var_name="y")
    pointwise = np.asarray(res.loo_i.values, dtype=float)
    k = np.asarray(res.pareto_k.values, dtype=float)
    lpd = log_lpd(ll)
    elpd = float(pointwise.sum())
    p_i = lpd - pointwise
    return LooResult(elpd=elpd, se=_se(pointwise), p=float(p_i.sum()), p_se=_se(p_i),
                     ic=-2.0 * elpd, ic_se=2.0 * _se(pointwise), pointwise=_frozen(pointwise),
                     pareto_k=_frozen(k), n_draws=int(res.n_samples), n_obs=int(res.n_data_points),
                     good_k=float(getattr(res, "good_k", K_BAD)))


def waic_of(idata: Any) -> WaicResult:
    """WAIC of an ``InferenceData`` with a ``log_likelihood`` group (variable ``y``).

    p_waic_i is the variance of observation i's log-likelihood over the draws with the
    S - 1 divisor, as R's ``loo::waic`` (ArviZ divides by S, so its p_waic is (S - 1) / S of
    this one)."""
    ll = _loglik_matrix(idata)
    flat = ll.reshape(-1, ll.shape[-1])
    p_i = np.var(flat, axis=0, ddof=1)
    pointwise = log_lpd(ll) - p_i
    elpd = float(pointwise.sum())
    return WaicResult(elpd=elpd, se=_se(pointwise), p=float(p_i.sum()), p_se=_se(p_i),
                      ic=-2.0 * elpd, ic_se=2.0 * _se(pointwise), pointwise=_frozen(pointwise),
                      p_pointwise=_frozen(p_i), n_draws=int(flat.shape[0]),
                      n_obs=int(flat.shape[1]))


def warn_loo(result: LooResult, stacklevel: int = 3, label: str = "") -> None:
    """A :class:`LooWarning` when some Pareto k exceed 0.7."""
    if result.n_bad:
        where = f" of {label}" if label else ""
        warnings.warn(
            f"{result.n_bad} observations{where} with a Pareto k above 0.7 (observations "
            f"{_shown_rows(result.bad_observations)}, counted from 0; {result.n_very_bad} "
            "above 1): the PSIS-LOO estimate is unreliable for them; refit without them "
            "(reloo) or use k-fold CV", LooWarning, stacklevel=stacklevel)


def loo(fit: Any, stacklevel: int = 4) -> LooResult:
    """PSIS-LOO of a Bayesian fit, as R's ``loo(fit)`` (brms).

    Parameters
    ----------
    fit : BayesResult
        A fit of ``ml.bayes`` or ``ml.bayes_nlme``.
    stacklevel : int
        Where the warning points: 4 is the caller of ``fit.loo()``.

    Returns
    -------
    LooResult
        elpd_loo, p_loo, looic with standard errors, the Pareto k of each observation and the
        pointwise elpd. A :class:`LooWarning` is issued when some k exceed 0.7.
    """
    check_bayes_fit(fit, "loo()")
    result = psis_loo(fit.posterior)
    warn_loo(result, stacklevel=stacklevel)
    return result


def waic(fit: Any, stacklevel: int = 3) -> WaicResult:
    """WAIC of a Bayesian fit, as R's ``waic(fit)`` (brms); ``stacklevel`` as for :func:`loo`
    (3 is the caller of ``fit.waic()``).

    Returns
    -------
    WaicResult
        elpd_waic, p_waic, waic with standard errors and the pointwise values; a
        :class:`LooWarning` is issued when some p_waic_i exceed 0.4 (then prefer ``loo``).
    """
    check_bayes_fit(fit, "waic()")
    result = waic_of(fit.posterior)
    if result.n_bad:
        warnings.warn(f"{result.n_bad} of {result.n_obs} observations have p_waic above 0.4: "
                      "the WAIC estimate is unreliable for them; use multilevel.loo(fit) "
                      "(PSIS-LOO) instead", LooWarning, stacklevel=stacklevel)
    return result


# -- comparing ------------------------------------------------------------------------------
COMPARE_COLUMNS = ["elpd_diff", "se_diff", "elpd_loo", "se_elpd_loo", "p_loo", "se_p_loo",
                   "looic", "se_looic"]


def compare_loo(results: Sequence[LooResult], names: Sequence[str]) -> pd.DataFrame:
    """R's ``loo_compare``: one row per model, best (highest elpd_loo) first; elpd_diff is
    each model's elpd_loo minus the best one's, se_diff the standard error of that difference
    from the pointwise differences (0 for the best model itself)."""
    order = sorted(range(len(results)), key=lambda i: -results[i].elpd)
    best = results[order[0]]
    rows = []
    for i in order:
        r = results[i]
        diff = r.pointwise - best.pointwise
        rows.append({"elpd_diff": float(diff.sum()),
                     "se_diff": 0.0 if i == order[0] else _se(diff),
                     "elpd_loo": r.elpd, "se_elpd_loo": r.se, "p_loo": r.p, "se_p_loo": r.p_se,
                     "looic": r.ic, "se_looic": r.ic_se})
    table = pd.DataFrame(rows, index=pd.Index([names[i] for i in order], name="model"),
                         columns=COMPARE_COLUMNS)
    table.attrs["criterion"] = "loo"
    table.attrs["n_bad"] = {names[i]: results[i].n_bad for i in order}
    return table


def _check_same_data(fits: Sequence[Any], labels: list[str]) -> None:
    first = fits[0].model
    for fit, label in zip(fits[1:], labels[1:], strict=True):
        m = fit.model
        if m.nobs != first.nobs:
            raise ModelComparisonError(
                f"models {labels[0]!r} ({first.nobs} observations) and {label!r} ({m.nobs}) "
                "were not fitted to the same observations (check for missing values in columns "
                "only one model uses): their elpd are sums over different data; refit both on "
                "the same rows")
        if not np.array_equal(np.asarray(m.y), np.asarray(first.y)) or not np.array_equal(
                np.asarray(m.wt), np.asarray(first.wt)):
            raise ModelComparisonError(
                f"models {labels[0]!r} and {label!r} were fitted to different responses (or "
                "binomial trials / weights): their predictive densities are of different data "
                "and cannot be compared; refit both with the same response")


def compare_fits(fits: Sequence[Any], names: Sequence[str] | None = None) -> pd.DataFrame:
    """``ml.compare`` of Bayesian fits: PSIS-LOO of each and :func:`compare_loo`.

    Raises
    ------
    ModelComparisonError
        A non-Bayesian fit among them, or fits to different observations or responses.
    """
    if len(fits) < 2:
        raise ArgumentError("comparing models needs two or more fits (multilevel.loo(fit) "
                            "gives one model's PSIS-LOO)")
    if names is not None and (isinstance(names, str) or not hasattr(names, "__iter__")):
        raise ArgumentError(f"names must be a list of {len(fits)} labels, got "
                            f"{type(names).__name__} {names!r}")
    labels = [str(n) for n in names] if names is not None else \
        [f"m{i + 1}" for i in range(len(fits))]
    if len(labels) != len(fits) or len(set(labels)) != len(labels):
        raise ArgumentError(f"names must be {len(fits)} distinct labels, got {labels}")
    other = [lab for f, lab in zip(fits, labels, strict=True)
             if getattr(f, "kind", None) != "bayes"]
    if other:
        raise ModelComparisonError(
            f"model {other[0]!r} is not a Bayesian fit while others are: PSIS-LOO needs "
            "posterior draws and a likelihood-based criterion (AIC) needs maximum-likelihood "
            "fits, so Bayesian and non-Bayesian models cannot be ranked together; fit all "
            "with multilevel.bayesian (or all with lmer/glmer)")
    _check_same_data(fits, labels)
    results = []
    for fit, label in zip(fits, labels, strict=True):
        r = psis_loo(fit.posterior)
        warn_loo(r, stacklevel=5, label=label)  # the caller of ml.compare
        results.append(r)
    return compare_loo(results, labels)
