"""What every fitted mixed model answers, whatever its response: the result vocabulary of
DESIGN.md written once (lme4's names), over a few hooks each model kind fills in.

A result class derives from :class:`MixedModelResult` and provides the attributes ``model``
(its stages: ``design``, ``layout``, ``blocks``), ``theta``, ``beta``, ``optsum``, ``_factor``
(the blocked Cholesky factor at the optimum) and ``_modes`` (spherical conditional modes per
block), and the hooks:

- ``_re_scale``: what the relative covariance factors are scaled by (sigma for the linear
  model, 1 for a GLMM);
- ``_residual_sd``: the residual SD shown in ``varcorr`` and ``sdcor``, NaN for none (a GLMM
  whose family has no dispersion);
- ``_condvar_factor``: the random-effects cross-products and blocked Cholesky factor whose
  inverse gives the conditional variances (at the final working weights for a GLMM);
- ``_vcov_array`` and ``n_params``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import scipy.linalg as sla

from multilevel.errors import ArgumentError
from multilevel.linalg.blocked_cholesky import re_factor_dense
from multilevel.linalg.cross_products import CrossProducts
from multilevel.optim.convergence import SINGULAR_TOL
from multilevel.optim.optsummary import OptSummary
from multilevel.results.surface import ResultSurface
from multilevel.results.varcorr import sdcor_parameters, varcorr_frame

ConfintMethod = Callable[..., pd.DataFrame]
# Confidence-interval methods by name, (fit, level, **options) -> DataFrame(lower, upper), for
# every model kind; "wald" is built in (results.lmm_result), the inference layer registers
# "profile" and "boot".
CONFINT_METHODS: dict[str, ConfintMethod] = {}

# Procedures of the inference layer that result methods call (fit.contrast, fit.profile).
INFERENCE_HOOKS: dict[str, Callable[..., Any]] = {}

# The public model classes by kind ("lmer": multilevel.api.LinearMixedModel, "glmer":
# multilevel.api.GeneralizedLinearMixedModel), which multilevel.api registers: a model rebuilt
# in a layer below the API (a loaded fit's) is made of these, so that it answers ``.fit()`` as
# one the user built does.
MODEL_CLASSES: dict[str, type] = {}


def register_confint(name: str, method: ConfintMethod) -> None:
    """Make a confidence-interval method available to ``confint(method=name)``."""
    CONFINT_METHODS[name] = method


class MixedModelResult(ResultSurface):
    """The shared vocabulary of fitted mixed models (see the module docstring for the hooks)."""

    model: Any
    theta: np.ndarray
    beta: np.ndarray
    optsum: OptSummary
    _factor: Any
    _modes: list[np.ndarray]

    # -- hooks --------------------------------------------------------------------------------
    @property
    def _re_scale(self) -> float:
        raise NotImplementedError

    @property
    def _residual_sd(self) -> float:
        raise NotImplementedError

    @property
    def _condvar_factor(self) -> tuple[CrossProducts, Any]:
        raise NotImplementedError

    @property
    def _vcov_array(self) -> np.ndarray:
        raise NotImplementedError

    @property
    def n_params(self) -> int:
        """Parameters counted by AIC."""
        raise NotImplementedError

    def residuals(self, kind: str = "response", scaled: bool = False) -> np.ndarray:
        """Residuals of the kind named (each model kind documents its kinds)."""
        raise NotImplementedError

    # -- the vocabulary ------------------------------------------------------------------------
    @property
    def fixed_names(self) -> list[str]:
        """Names of the fixed-effects coefficients."""
        return list(self.model.design.fixed_names)

    @property
    def fixef(self) -> pd.Series:
        """Fixed-effects estimates, indexed by coefficient name."""
        return pd.Series(self.beta, index=self.fixed_names, name="estimate")

    def _kept_data(self) -> tuple[Any, Any]:
        return getattr(self.model, "data", None), self.model.design.row_index

    def model_matrix(self, newdata: Any = None) -> pd.DataFrame:
        """The fixed-effects model matrix (columns ``fixed_names``) of the rows used, or of
        ``newdata`` with the fit's encoding (factor levels, contrasts) replayed."""
        from multilevel.results.prediction import fixed_matrix

        design = self.model.design
        return fixed_matrix(design.fixed_spec, design.formula.fixed, self.fixed_names,
                            design.X, newdata)

    @property
    def vcov(self) -> pd.DataFrame:
        """Covariance matrix of the fixed-effects estimates."""
        return pd.DataFrame(self._vcov_array, index=self.fixed_names, columns=self.fixed_names)

    @property
    def sdcor(self) -> pd.Series:
        """Variance parameters as standard deviations and correlations, then sigma, named
        as lme4's ``confint`` names them."""
        return sdcor_parameters(self.model.layout, self.theta, self._re_scale, self._residual_sd)

    @property
    def theta_names(self) -> list[str]:
        """Names of theta's elements, as lme4's ``getME(fit, "theta")``."""
        return self.model.layout.names()

    @property
    def varcorr(self) -> pd.DataFrame:
        """Variance components: group, term1, term2, variance, sd, corr (residual last, when
        the model has a residual scale)."""
        return varcorr_frame(self.model.layout, self.theta, self._re_scale, self._residual_sd)

    def _block_effects(self) -> list[np.ndarray]:
        """Conditional modes b = Lambda u per block, shape (levels, k)."""
        templates = self.model.layout.templates(self.theta)
        return [u @ T.T for u, T in zip(self._modes, templates, strict=True)]

    def _block_meta(self, b: int) -> tuple[str, list[str], tuple[str, ...]]:
        blk = self.model.blocks[b]
        terms = [self.model.design.terms[i] for i in blk.terms]
        cols = [c for t in terms for c in t.columns]
        return terms[0].factor.name, cols, terms[0].factor.levels

    @cached_property
    def ranef(self) -> dict[str, pd.DataFrame]:
        """Conditional modes of the random effects: grouping factor -> DataFrame (levels x
        terms). Terms on the same factor share one frame, as in lme4's ``ranef``."""
        out: dict[str, pd.DataFrame] = {}
        for b, eff in enumerate(self._block_effects()):
            name, cols, levels = self._block_meta(b)
            out[name] = pd.DataFrame(eff, index=pd.Index(levels, name=name), columns=cols)
        return dict(sorted(out.items(), key=lambda kv: self._group_order(kv[0])))

    def _group_order(self, name: str) -> int:
        return [t.factor.name for t in self.model.design.terms].index(name)

    @cached_property
    def ranef_condvar(self) -> dict[str, np.ndarray]:
        """Conditional covariance of the random effects given the data, per grouping factor:
        an array (levels, k, k) for the block of that factor's terms (lme4's ``condVar``;
        beta treated as known). With several grouping factors this inverts the q x q
        random-effects factor densely: O(q^3) time, O(q^2) memory."""
        A, f = self._condvar_factor
        templates = self.model.layout.templates(self.theta)
        if A.n_blocks == 1:
            Linv = np.linalg.inv(f.first_diag)
            inv_blocks = [np.matmul(np.swapaxes(Linv, 1, 2), Linv)]
        else:
            L = re_factor_dense(A, f)
            Linv = sla.solve_triangular(L, np.eye(L.shape[0]), lower=True)
            inv_blocks = []
            start = 0
            for nl, k in zip(A.n_levels, A.n_columns, strict=True):
                cols = Linv[:, start:start + nl * k].reshape(-1, nl, k)
                inv_blocks.append(np.einsum("rla,rlb->lab", cols, cols))
                start += nl * k
        out = {}
        for b, (S, T) in enumerate(zip(inv_blocks, templates, strict=True)):
            name = self._block_meta(b)[0]
            out[name] = self._re_scale**2 * np.matmul(np.matmul(T, S), T.T)
        return out

    def ranef_frame(self) -> pd.DataFrame:
        """Tidy random effects: group, term, level, condval, condsd (lme4's
        ``as.data.frame(ranef(fit, condVar = TRUE))``)."""
        rows = []
        for name, frame in self.ranef.items():
            var = self.ranef_condvar[name]
            for a, col in enumerate(frame.columns):
                rows.append(pd.DataFrame({
                    "group": name, "term": col, "level": frame.index.astype(str),
                    "condval": frame[col].to_numpy(),
                    "condsd": np.sqrt(np.maximum(var[:, a, a], 0.0))}))
        return pd.concat(rows, ignore_index=True)

    @property
    def objective(self) -> float:
        """The minimized criterion: ML deviance (-2 log L) or REML criterion."""
        return float(self.optsum.fmin)

    @property
    def loglik(self) -> float:
        """Log-likelihood at the optimum (the REML log-likelihood for REML fits)."""
        return -0.5 * self.objective

    @property
    def aic(self) -> float:
        """Akaike information criterion (from the REML criterion for REML fits, as lme4)."""
        return self.objective + 2 * self.n_params

    @property
    def bic(self) -> float:
        """Bayesian information criterion, log(n) penalty."""
        return self.objective + math.log(self.nobs) * self.n_params

    @property
    def nobs(self) -> int:
        """Number of observations used."""
        return self.model.nobs

    @property
    def df_resid(self) -> int:
        """Residual degrees of freedom: nobs minus the number of parameters."""
        return self.nobs - self.n_params

    @property
    def ngroups(self) -> dict[str, int]:
        """Number of levels of each grouping factor."""
        out: dict[str, int] = {}
        for t in self.model.design.terms:
            out.setdefault(t.factor.name, t.n_levels)
        return out

    @property
    def n_dropped(self) -> int:
        """Rows dropped for missing values."""
        return self.model.design.n_dropped

    @property
    def n_zero_weight(self) -> int:
        """Complete rows dropped because their prior weight is zero (they carry no
        information; not counted in ``nobs``)."""
        return self.model.design.n_zero_weight

    @property
    def is_singular(self) -> bool:
        """True for a boundary fit (a variance of zero or a perfect correlation): some
        diagonal element of a relative factor below 1e-4 (lme4's ``isSingular``)."""
        lower = self.model.layout.lower_bounds()
        return bool(np.any(self.theta[lower == 0] < SINGULAR_TOL))

    @property
    def converged(self) -> bool:
        """True when the optimizer reported convergence."""
        return self.optsum.converged

    def _re_contribution(self, effects: list[np.ndarray] | None = None) -> np.ndarray:
        eff = self._block_effects() if effects is None else effects
        out = np.zeros(self.nobs)
        for blk, b in zip(self.model.blocks, eff, strict=True):
            out += np.einsum("nk,nk->n", blk.Z, b[blk.codes])
        return out


def confidence_level(level: Any) -> float:
    """``level`` as a float strictly between 0 and 1, or an ArgumentError naming it."""
    if isinstance(level, bool) or not isinstance(level, int | float | np.floating):
        raise ArgumentError(f"level must be a number between 0 and 1 (e.g. 0.95), got "
                            f"{type(level).__name__} {level!r:.60}")
    if not 0 < float(level) < 1:
        raise ArgumentError(f"level must be strictly between 0 and 1 (e.g. 0.95), got {level}")
    return float(level)


def check_simulation_arguments(nsim: Any, seed: Any) -> tuple[int, int | None]:
    """``nsim`` (a whole number >= 1) and ``seed`` (None or a whole number >= 0) checked."""
    if isinstance(nsim, bool) or not isinstance(nsim, int | np.integer) or nsim < 1:
        raise ArgumentError(f"nsim must be a whole number of at least 1, got "
                            f"{type(nsim).__name__} {nsim!r:.60}")
    if seed is not None and (isinstance(seed, bool)
                             or not isinstance(seed, int | np.integer) or seed < 0):
        raise ArgumentError(f"seed must be None or a non-negative whole number, got "
                            f"{type(seed).__name__} {seed!r:.60}")
    return int(nsim), None if seed is None else int(seed)


def check_newdata(newdata: Any, allow_new_levels: Any) -> bool:
    """Check predict()'s ``newdata`` type and ``allow_new_levels`` flag; returns the flag."""
    if not isinstance(allow_new_levels, bool | np.bool_):
        raise ArgumentError(f"allow_new_levels must be True or False, got "
                            f"{allow_new_levels!r}")
    if newdata is not None and not (isinstance(newdata, pd.DataFrame | dict)
                                    or type(newdata).__module__.startswith("polars")):
        raise ArgumentError(f"newdata must be a pandas or polars DataFrame (or a dict of "
                            f"columns), got {type(newdata).__name__}")
    return bool(allow_new_levels)
