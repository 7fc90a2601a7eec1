"""Parametric bootstrap of a mixed model (lme4's ``bootMer``): simulate responses from the
fitted model, refit each (reusing the design; for a linear model only the [X y] cross-products
change), and collect the estimates -- the variance parameters on the sd/correlation scale,
sigma (where the model has a residual scale) and the fixed effects. A GLMM's responses are
drawn from its family (new random effects, then the family's draws at their means) and refitted
by the same Laplace / quadrature criterion as the fit.

Replicates run through :func:`multilevel.inference.replicates.run_replicates`: all cores, one
random stream per replicate (the result does not depend on the number of workers), a progress
bar, and Ctrl-C returns what was finished.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from multilevel.errors import MultilevelError, public_api, public_methods
from multilevel.inference.arguments import (
    check_count,
    check_fit,
    check_flag,
    check_n_jobs,
    check_probability,
    check_seed,
    check_text,
)
from multilevel.inference.replicates import (
    is_structured,
    run_replicates,
    simulate_refit,
    simulate_refit_structured,
)
from multilevel.inference.reporting import html_report, text_report
from multilevel.results.base import MixedModelResult, register_confint


def _parameters(fit: Any) -> np.ndarray:
    if is_structured(fit):
        return np.asarray(fit.bootstrap_parameters().to_numpy(), dtype=float)
    return np.concatenate([fit.sdcor.to_numpy(), fit.beta])


def _names(fit: Any) -> list[str]:
    if is_structured(fit):
        return list(fit.bootstrap_parameters().index)
    return [*fit.sdcor.index, *fit.fixed_names]


def _replicate(fit: Any, seed: np.random.SeedSequence) -> np.ndarray:
    refit = simulate_refit_structured(fit, seed) if is_structured(fit) else (
        simulate_refit(fit, seed))
    return np.full(len(_parameters(fit)), np.nan) if refit is None else _parameters(refit)


@public_methods
@dataclass(frozen=True)
class BootstrapResult:
    """Parametric bootstrap replicates.

    Attributes
    ----------
    replicates : pandas.DataFrame
        One row per finished replicate, one column per parameter (sd/cor parameters and sigma,
        then fixed effects). A replicate whose refit failed is a row of NaN.
    estimate : pandas.Series
        The estimates of the original fit, same columns.
    seed : int or None
    interrupted : bool
        True when the run was stopped early (fewer rows than requested).
    """

    replicates: pd.DataFrame
    estimate: pd.Series
    seed: int | None
    interrupted: bool

    def _summary(self) -> tuple[list[str], dict[str, pd.DataFrame]]:
        lines = [f"{len(self.replicates)} replicates, {self.n_failed} failed"
                 + (" (interrupted)" if self.interrupted else "")]
        table = pd.concat([self.estimate.rename("estimate"),
                           self.replicates.std().rename("boot_sd"),
                           self.intervals()], axis=1)
        return lines, {"Estimates, bootstrap SD and 95% percentile intervals": table}

    def __str__(self) -> str:
        return text_report("Parametric bootstrap", *self._summary())

    def _repr_html_(self) -> str:
        return html_report("Parametric bootstrap", *self._summary())

    @property
    def n_failed(self) -> int:
        """Replicates whose refit failed."""
        return int(self.replicates.isna().all(axis=1).sum())

    def intervals(self, level: float = 0.95, kind: str = "percentile") -> pd.DataFrame:
        """Bootstrap intervals: ``"percentile"`` (quantiles) or ``"shortest"`` (the shortest
        interval holding ``level`` of the replicates). Columns lower, upper."""
        level = check_probability(level, "level")
        check_text(kind, "kind", ("percentile", "shortest"))
        rows = {}
        for name in self.replicates.columns:
            x = np.sort(self.replicates[name].dropna().to_numpy())
            if x.size < 2:
                rows[name] = (np.nan, np.nan)
            elif kind == "percentile":
                a = (1 - level) / 2
                rows[name] = (float(np.quantile(x, a)), float(np.quantile(x, 1 - a)))
            elif kind == "shortest":
                k = max(int(math.ceil(level * x.size)) - 1, 0)
                widths = x[k:] - x[: x.size - k]
                i = int(np.argmin(widths))
                rows[name] = (float(x[i]), float(x[i + k]))
            else:
                raise MultilevelError(f"unknown interval kind {kind!r}; use 'percentile' or "
                                      "'shortest'")
        return pd.DataFrame.from_dict(rows, orient="index", columns=["lower", "upper"])


@public_api
def bootstrap(fit: MixedModelResult, n: int = 1000, seed: int | None = None,
              n_jobs: int | None = None, progress: bool = True) -> BootstrapResult:
    """Parametric bootstrap: ``n`` responses simulated from ``fit``, each refitted.

    Parameters
    ----------
    fit : LinearMixedModelResult, GeneralizedLinearMixedModelResult, LmeResult or GlsResult
        An ``lme`` or ``gls`` fit draws from its ``simulate`` (random effects, variance
        function and correlation structure) and refits with the same call; its replicates
        are the fixed effects, the random effects' SDs and correlations, the structures'
        parameters and sigma (``fit.bootstrap_parameters()``).
    n : int
        Number of replicates.
    seed : int, optional
        Seed of the random streams (results do not depend on ``n_jobs``).
    n_jobs : int, optional
        Worker processes (default: all cores; 1 runs in this process).
    progress : bool
        Show a progress bar (tqdm).
    """
    if not is_structured(fit):
        check_fit(fit)
    n = check_count(n, "n")
    seed = check_seed(seed)
    n_jobs = check_n_jobs(n_jobs)
    progress = check_flag(progress, "progress")
    names = _names(fit)
    done, interrupted = run_replicates(_replicate, fit, n, seed, n_jobs, progress, "bootstrap")
    table = np.vstack(done) if done else np.empty((0, len(names)))
    return BootstrapResult(replicates=pd.DataFrame(table, columns=names),
                           estimate=pd.Series(_parameters(fit), index=names),
                           seed=seed, interrupted=interrupted or len(table) < n)


def _boot_confint(fit: MixedModelResult, level: float, kind: str = "percentile",
                  **options: Any) -> pd.DataFrame:
    return bootstrap(fit, **options).intervals(level, kind)


register_confint("boot", _boot_confint)

__all__ = ["BootstrapResult", "bootstrap"]
