"""Nonlinear mixed models by nlme's Lindstrom-Bates alternation (Lindstrom & Bates 1990;
Pinheiro & Bates 2000, sections 7.2 and 7.5), step for step as nlme's ``nlme`` runs it.

The model (see :mod:`multilevel.models.nlme_spec`): y = f(x, phi) + e with per-row parameters
phi_p = A_p beta + sum over levels B_p b_level, b ~ N(0, sigma^2 T T') per group and level, and
Var(e) = sigma^2 times nlme's variance function and correlation structure (whitening W).

Each iteration:

1. LME step: linearize f at the current (beta, b) -- X = df/dbeta, Z = df/db -- and fit the
   linear mixed model of the working response w = y - f + X beta + Z b by ML or REML with the
   residual structures (:func:`multilevel.models.lme.lme_fit`: the package's LMM engine,
   the structures' parameters optimized around it). This gives T and the structures.
2. PNLS step, at most ``pnls_max_iter`` Gauss-Newton increments from the current (beta, b):
   each re-linearizes f, re-estimates T by ML on that linearization (nlme's C code does the
   same, except for block-diagonal covariances, which is why nlme's REML fits end near ML
   relative factors), solves the penalized
   least-squares problem min |W(w - X beta - Z b)|^2 + |T^-1 b|^2 (sparse normal equations:
   their size is the number of random effects, not rows), and stops when Bates and Watts'
   relative-offset criterion sqrt((N - P) (S - S_lin) / (P S_lin)) is below ``pnls_tol``
   (S the penalized residual sum of squares, S_lin that of the linearized solution, P the
   number of fixed and random effects); otherwise the step is halved until S decreases.
3. Convergence: the fixed effects and the random effects' and structures' parameters (on
   nlme's unconstrained scales) change by at most ``tolerance`` relative.

As nlme, the fixed effects and conditional modes reported are the PNLS solution; sigma, the
log-likelihood (restricted for REML) and the fixed effects' covariance are those of the linear
mixed model of the last linearization at the last T and structures. nlme's default tolerances
(``NlmeControl()``) stop before the exact fixed point -- up to about 1e-3 relative in the fixed
effects on Indometh -- and are the default so that the numbers are nlme's; tighter settings
(``NlmeControl(pnls_tol=1e-8, tolerance=1e-8)``) give the converged fixed point, which
nlme reaches with the same settings. Why this algorithm rather than a Laplace or quadrature
fit of the exact marginal likelihood (lme4's ``nlmer``): the issue asks for nlme's estimates,
and nlme's are those of this alternation.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from multilevel.data.design import ModelDesign, build_design
from multilevel.errors import ArgumentError, MultilevelWarning, NumericalError
from multilevel.models.lme import LmeFit, lme_fit
from multilevel.models.lmm import ModelStages
from multilevel.models.nlme_spec import (
    NlmeSpec,
    parse_spec,
    start_vector,
    structure_columns,
)
from multilevel.models.whitening import Whitening
from multilevel.optim.optsummary import OptSummary
from multilevel.structures.correlation import CorrelationStructure
from multilevel.structures.variance import VarianceFunction

# working-frame column names (prefixed so as not to meet the data's own)
_W, _X, _Z, _G = "nlme_w", "nlme_x", "nlme_z", "nlme_g"


@dataclass(frozen=True)
class NlmeControl:
    """The iteration settings, named and defaulted as nlme's ``nlmeControl``.

    Attributes
    ----------
    max_iter : int
        Alternations (nlme's ``maxIter``, 50).
    pnls_max_iter : int
        Gauss-Newton increments per PNLS step (``pnlsMaxIter``, 7).
    pnls_tol : float
        Relative-offset criterion that ends a PNLS step (``pnlsTol``, 1e-3).
    tolerance : float
        Relative change of every parameter that ends the alternation (``tolerance``, 1e-5).
    min_scale : float
        Smallest step-halving factor (``minScale``, 1e-3).
    """

    max_iter: int = 50
    pnls_max_iter: int = 7
    pnls_tol: float = 1e-3
    tolerance: float = 1e-5
    min_scale: float = 1e-3

    def __post_init__(self) -> None:
        for name in ("max_iter", "pnls_max_iter"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ArgumentError(f"NlmeControl: {name} must be a positive integer, got "
                                    f"{v!r:.60}")
        for name in ("pnls_tol", "tolerance", "min_scale"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v < 1:
                raise ArgumentError(f"NlmeControl: {name} must be a number in (0, 1), got "
                                    f"{v!r:.60}")


@dataclass(frozen=True)
class NlmeFit:
    """What :func:`lindstrom_bates` returns."""

    beta: np.ndarray
    b: list[np.ndarray]  # per level: groups x the level's effects
    model: ModelStages  # the last linearization's LMM (whitened), at ``opt.final``
    opt: OptSummary
    deviance: float  # its criterion at T and psi, with the whitening's Jacobian
    iterations: int
    structures: Whitening | None
    psi: np.ndarray
    variance_parameters: np.ndarray
    correlation_parameters: np.ndarray
    X: np.ndarray  # the last linearization's fixed-effects columns, data scale
    design: Any = None  # the last linearization's LMM design on the data's scale


def _lme_formula(spec: NlmeSpec) -> str:
    fixed = " + ".join(f"{_X}{i}" for i in range(len(spec.fixed)))
    terms = []
    for L, level in enumerate(spec.levels):
        for block in level.blocks:
            cols = [f"{_Z}{L}_{j}" for j in block.effects]
            if block.diagonal:
                terms += [f"(0 + {c} | {_G}{L})" for c in cols]
            else:
                terms.append(f"(0 + {' + '.join(cols)} | {_G}{L})")
    return f"{_W} ~ 0 + {fixed} + {' + '.join(terms)}"


def _factors(model: ModelStages, theta: np.ndarray, spec: NlmeSpec) -> list[np.ndarray]:
    """Each level's relative factor T (block-diagonal, effects x effects) from an LMM of the
    working frame at ``theta``."""
    out = []
    for L, lv in enumerate(spec.levels):
        names = [f"{_Z}{L}_{j}" for j in range(len(lv.effects))]
        T = np.zeros((len(names), len(names)))
        for t, term in enumerate(model.layout.terms):
            if term.group.split(".")[0] == f"{_G}{L}":
                idx = [names.index(c) for c in term.columns]
                T[np.ix_(idx, idx)] = model.layout.term_factor(theta, t)
        out.append(T)
    return out


def _theta(layout: Any, factors: list[np.ndarray], spec: NlmeSpec) -> np.ndarray:
    """The LMM's theta (its ``layout``) for the levels' relative factors (the inverse of
    :func:`_factors`)."""
    theta = np.zeros(layout.n_theta)
    for term in layout.terms:
        L = int(term.group.split(".")[0][len(_G):])
        names = [f"{_Z}{L}_{j}" for j in range(len(spec.levels[L].effects))]
        idx = [names.index(c) for c in term.columns]
        block = factors[L][np.ix_(idx, idx)]
        # the lower Cholesky factor with a non-negative diagonal (the LMM's parametrization)
        sign = np.where(np.diag(block) < 0, -1.0, 1.0)
        block = block * sign[None, :]
        cols, rows = np.triu_indices(len(idx))
        theta[term.theta_offset:term.theta_offset + term.n_theta] = block[rows, cols]
    return theta


def _nlme_coefficients(spec: NlmeSpec, factors: list[np.ndarray]) -> np.ndarray:
    """The random effects' parameters on nlme's scales (pdLogChol: log diagonal and
    off-diagonal of the Cholesky factor of T T'; pdDiag: log SDs), for the convergence test."""
    out: list[float] = []
    for lv, T in zip(spec.levels, factors, strict=True):
        for block in lv.blocks:
            idx = list(block.effects)
            psi = T[np.ix_(idx, idx)] @ T[np.ix_(idx, idx)].T
            if block.diagonal:
                out += list(0.5 * np.log(np.maximum(np.diag(psi), 1e-300)))
            else:
                try:
                    R = np.linalg.cholesky(psi).T
                except np.linalg.LinAlgError:
                    R = np.diag(np.sqrt(np.maximum(np.diag(psi), 1e-300)))
                out += list(np.log(np.maximum(np.abs(np.diag(R)), 1e-300)))
                out += list(R[np.triu_indices(len(idx), 1)])
    return np.asarray(out)


def _relative_change(old: np.ndarray, new: np.ndarray, tol: float) -> float:
    """nlme's convergence measure: |old - new| / |new|, or / 1 where |new| < tol."""
    if not new.size:
        return 0.0
    den = np.where(np.abs(new) < tol, 1.0, new)
    return float(np.max(np.abs((old - new) / den)))


class _Linearization:
    """The model linearized at one (beta, b): f, the working response and the columns of
    the LME step, whitened or not."""

    def __init__(self, spec: NlmeSpec, beta: np.ndarray, b: list[np.ndarray]) -> None:
        self.f, jac = spec.evaluate(spec.phi(beta, b))
        self.X = np.column_stack([jac[:, e.parameter] * e.column for e in spec.fixed])
        self.Z = [np.column_stack([jac[:, e.parameter] * e.column for e in lv.effects])
                  for lv in spec.levels]
        w = spec.y - self.f + self.X @ beta
        for lv, Zl, bl in zip(spec.levels, self.Z, b, strict=True):
            w = w + np.einsum("nk,nk->n", Zl, bl[lv.codes])
        self.w = w

    def check(self, spec: NlmeSpec, beta: np.ndarray, when: str) -> None:
        """Refuse a point where the model or its derivatives are not finite, or where the
        fixed effects cannot be told apart (a derivative column that is zero or a combination
        of the others): the LME step could not be fitted there."""
        at = ", ".join(f"{n} = {v:.6g}" for n, v in zip(spec.fixed_names, beta, strict=True))
        hint = ("; give start= values closer to the estimates (ml.nls_list gives per-group "
                "estimates to start from)")
        bad = [n for n, col in zip(spec.fixed_names, self.X.T, strict=True)
               if not np.all(np.isfinite(col))]
        if not np.all(np.isfinite(self.f)) or bad:
            what = f"the derivative with respect to {', '.join(bad)}" if bad else "the model"
            raise NumericalError(f"nlme: {what} cannot be evaluated on every row {when} "
                                 f"({at}){hint}")
        scale = np.linalg.norm(self.X, axis=0)
        flat = [n for n, sc in zip(spec.fixed_names, scale, strict=True) if sc == 0.0]
        if flat or np.linalg.matrix_rank(self.X / np.where(scale > 0, scale, 1.0)) < len(beta):
            which = ", ".join(flat) if flat else "some of " + ", ".join(spec.fixed_names)
            raise NumericalError(f"nlme: the model does not depend on {which} {when} ({at}): "
                                 f"the fixed effects cannot be estimated there{hint}")

    def frame(self, base: pd.DataFrame) -> pd.DataFrame:
        cols: dict[str, np.ndarray] = {_W: self.w}
        for i in range(self.X.shape[1]):
            cols[f"{_X}{i}"] = self.X[:, i]
        for L, Zl in enumerate(self.Z):
            for j in range(Zl.shape[1]):
                cols[f"{_Z}{L}_{j}"] = Zl[:, j]
        return base.assign(**cols)


def _quiet_model(design: ModelDesign, reml: bool,
                 start: np.ndarray | None = None) -> ModelStages:
    with warnings.catch_warnings():
        # the working columns' scales say nothing about the user's data
        warnings.simplefilter("ignore", MultilevelWarning)
        return ModelStages(design.formula, None, reml=reml, calc_derivs=False, start=start,
                           design=design)


class _Designs:
    """The LME step's design, built once from the formula; each linearization only swaps
    its columns in (the model matrix, grouping codes and term layout do not change)."""

    def __init__(self, spec: NlmeSpec, formula: str, lin: _Linearization,
                 base: pd.DataFrame) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MultilevelWarning)
            self.template = build_design(formula, lin.frame(base))
        if self.template.X.shape[1] != len(spec.fixed):
            raise NumericalError("nlme: the fixed effects cannot be told apart at the starting "
                                 "values; give start= values (ml.nls_list gives per-group "
                                 "estimates to start from)")
        self.layout = _quiet_model(self.template, reml=False).layout
        # each random-effects term's columns: (level, effect) of the linearization's Z
        self.columns = [[(int(c[len(_Z):].split("_")[0]), int(c.split("_")[-1]))
                         for c in term.columns] for term in self.template.terms]

    def at(self, lin: _Linearization, whiten: Any = None) -> ModelDesign:
        """The design of the linearization ``lin`` (its rows whitened by ``whiten``)."""
        zs = [np.column_stack([lin.Z[L][:, j] for L, j in cols]) for cols in self.columns]
        arrays = [lin.X, lin.w, *zs]
        if whiten is not None:
            arrays = whiten(arrays)
        X, y, *Z = arrays
        terms = tuple(replace(t, Z=z) for t, z in zip(self.template.terms, Z, strict=True))
        return replace(self.template, X=X, y=y, terms=terms)


class _Pnls:
    """nlme's PNLS step at fixed structures (whitening ``whiten``)."""

    def __init__(self, spec: NlmeSpec, designs: _Designs, whiten: Any,
                 control: NlmeControl) -> None:
        self.spec = spec
        self.designs = designs
        self.whiten = whiten
        self.control = control
        self.sizes = [len(lv.labels) * len(lv.effects) for lv in spec.levels]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(int)
        self.cols = [self.offsets[L] + lv.codes[:, None] * len(lv.effects)
                     + np.arange(len(lv.effects))[None, :] for L, lv in enumerate(spec.levels)]
        self.n_random = int(self.offsets[-1])
        # nlme's P: every random effect of every group and the fixed effects
        self.n_par = self.n_random + len(spec.fixed)

    def objective(self, lin: _Linearization, b: list[np.ndarray],
                  factors: list[np.ndarray]) -> float:
        """The penalized residual sum of squares at the point ``lin`` was linearized at (its
        random effects ``b``)."""
        (r,) = self.whiten([self.spec.y - lin.f])
        return float(r @ r + sum(float(np.sum(_u(bl, T) ** 2))
                                 for bl, T in zip(b, factors, strict=True)))

    def ml_factors(self, lin: _Linearization, factors: list[np.ndarray],
                   ) -> list[np.ndarray]:
        """T re-estimated by ML on the linearized model (structures fixed), from ``factors``."""
        design = self.designs.at(lin, self.whiten)
        start = _theta(self.designs.layout, factors, self.spec)
        model = _quiet_model(design, reml=False, start=start)
        opt = model.optimize()
        return _factors(model, np.asarray(opt.final, dtype=float), self.spec)

    def linear_solution(self, lin: _Linearization, factors: list[np.ndarray],
                        ) -> tuple[np.ndarray, list[np.ndarray], float]:
        """The penalized least-squares solution of the linearized model at T: (beta, b, its
        penalized residual sum of squares)."""
        spec = self.spec
        n = spec.y.size
        arrays = self.whiten([lin.w, lin.X, *lin.Z])
        w, X, Zs = arrays[0], arrays[1], arrays[2:]
        if self.n_random:
            data, rows, cols = [], [], []
            for L, Zl in enumerate(Zs):
                V = Zl @ factors[L]  # d f / d u with b = T u
                data.append(V.ravel())
                rows.append(np.repeat(np.arange(n), V.shape[1]))
                cols.append(self.cols[L].ravel())
            Z = sp.csc_matrix((np.concatenate(data), (np.concatenate(rows),
                                                      np.concatenate(cols))),
                              shape=(n, self.n_random))
            lu = splu((Z.T @ Z + sp.identity(self.n_random, format="csc")).tocsc())
            ZtX = np.asarray(Z.T @ X)
            zw = Z.T @ w
            # Schur complement on beta: the random effects' block is sparse
            S = X.T @ X - ZtX.T @ lu.solve(ZtX)
            beta = np.linalg.solve(S, X.T @ w - ZtX.T @ lu.solve(zw))
            u = lu.solve(zw - ZtX @ beta)
            resid = w - X @ beta - Z @ u
            pred = float(resid @ resid + u @ u)
        else:
            beta = np.linalg.lstsq(X, w, rcond=None)[0]
            u = np.zeros(0)
            resid = w - X @ beta
            pred = float(resid @ resid)
        b = []
        for L, lv in enumerate(spec.levels):
            q = len(lv.effects)
            uu = u[self.offsets[L]:self.offsets[L + 1]].reshape(len(lv.labels), q)
            b.append(uu @ factors[L].T)
        return beta, b, pred

    def run(self, beta: np.ndarray, b: list[np.ndarray], factors: list[np.ndarray],
            lin: _Linearization, ml_factors: bool,
            ) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray], _Linearization]:
        """Up to ``pnls_max_iter`` increments from (beta, b), linearized as ``lin``, with the
        LME step's T (``ml_factors``: already the ML estimate on ``lin``); returns (beta, b,
        T, the linearization at the returned point)."""
        c = self.control
        factor = 1.0
        # nlme's C code re-estimates no block-diagonal (pdBlocked) covariance in PNLS
        blocked = any(len(lv.blocks) > 1 for lv in self.spec.levels)
        for step in range(c.pnls_max_iter):
            # the first increment's ML re-estimation is the ML LME step's own result
            if not blocked and not (step == 0 and ml_factors):
                factors = self.ml_factors(lin, factors)
            current = self.objective(lin, b, factors)
            new_beta, new_b, pred = self.linear_solution(lin, factors)
            nrdof = self.spec.y.size - self.n_par
            criterion = (math.sqrt(max(nrdof * (current - pred), 0.0) / (self.n_par * pred))
                         if pred > 0 else 0.0)
            if not np.isfinite(current):
                raise NumericalError("nlme: the model cannot be evaluated at the current "
                                     "estimates; give start= values (ml.nls_list gives "
                                     "per-group estimates)")
            if criterion < c.pnls_tol:
                return beta, b, factors, lin
            dbeta = new_beta - beta
            db = [nb - ob for nb, ob in zip(new_b, b, strict=True)]
            while True:
                if factor < c.min_scale:
                    # nlme stops with "step halving factor reduced below minimum": keep the
                    # last point, as nlmeControl(returnObject = TRUE) does
                    return beta, b, factors, lin
                trial_beta = beta + factor * dbeta
                trial_b = [ob + factor * d for ob, d in zip(b, db, strict=True)]
                # the model and its derivatives come together: an accepted trial point is
                # the next linearization
                trial = _Linearization(self.spec, trial_beta, trial_b)
                value = self.objective(trial, trial_b, factors)
                factor /= 2.0
                if np.isfinite(value) and value < current:
                    break
            factor = min(1.0, factor * 4.0)
            beta, b, lin = trial_beta, trial_b, trial
        return beta, b, factors, lin


def _u(b: np.ndarray, T: np.ndarray) -> np.ndarray:
    """u = T^-1 b per group (0 where T is singular: b has no part there)."""
    return b @ np.linalg.pinv(T).T


@dataclass(frozen=True)
class NlmeSetup:
    """What the LME steps of :func:`lindstrom_bates` work on, built once by
    :func:`nlme_setup`: the working frame, the residual structures on it and the LME
    formula. :meth:`fit_at` gives the final fit at given estimates without iterating (a saved
    fit loaded again).

    Attributes
    ----------
    spec : NlmeSpec
    base : pandas.DataFrame
        The model's rows with one grouping column per level (``nlme_g0``, ``nlme_g1``, ...).
    structures : Whitening or None
        The variance function and correlation structure on ``base`` (None without either).
    correlation : CorrelationStructure or None
        The correlation argument with nlme's default group, the innermost level, when it
        names none.
    formula : str
        The LME step's formula on the working columns.
    """

    spec: NlmeSpec
    base: pd.DataFrame
    structures: Whitening | None
    correlation: CorrelationStructure | None
    formula: str

    def with_structures(self, structures: Whitening | None) -> NlmeSetup:
        """The same set-up with other structures on the same rows (e.g. with the fitted
        values a fitted-value variance function last read: ``structures.with_fitted``)."""
        return replace(self, structures=structures)

    def fit_at(self, beta: np.ndarray, b: list[np.ndarray], theta: np.ndarray,
               psi: np.ndarray, reml: bool, iterations: int) -> NlmeFit:
        """nlme's final LME model of the linearization at the fixed effects ``beta`` and the
        random effects ``b`` (per level, groups x effects), at the LME step's ``theta`` and
        the structures' unconstrained parameters ``psi``, without iterating; ``iterations``
        is recorded as the alternations it took.

        Raises
        ------
        ArgumentError
            Estimates of other shapes than the model's.
        """
        spec = self.spec
        beta = np.asarray(beta, dtype=float)
        n_psi = self.structures.start.size if self.structures is not None else 0
        shapes = [(len(lv.labels), len(lv.effects)) for lv in spec.levels]
        if (beta.shape != (len(spec.fixed),) or len(b) != len(shapes)
                or any(np.shape(bl) != sh for bl, sh in zip(b, shapes, strict=False))
                or np.shape(psi) != (n_psi,)):
            raise ArgumentError("nlme: the fixed effects, random effects or structure "
                                "parameters given do not have the model's shapes (fixed "
                                f"{len(spec.fixed)}, random {shapes}, structures {n_psi})")
        lin = _Linearization(spec, beta, b)
        designs = _Designs(spec, self.formula, lin, self.base)
        model = _quiet_model(designs.at(lin), reml=reml)
        theta = np.asarray(theta, dtype=float)
        if theta.shape != (model.layout.n_theta,):
            raise ArgumentError(f"nlme: theta has {theta.size} values; the LME step's random "
                                f"effects have {model.layout.n_theta} parameters")
        factors = _factors(model, theta, spec)
        return _wrap_up(spec, designs, self.structures, np.asarray(psi, dtype=float), beta, b,
                        factors, lin, reml, iterations)


def nlme_setup(spec: NlmeSpec, weights: VarianceFunction | None = None,
               correlation: CorrelationStructure | None = None) -> NlmeSetup:
    """The working frame, structures and LME formula of an ``nlme`` fit (see
    :class:`NlmeSetup`)."""
    base = spec.rows.copy()
    for L, lv in enumerate(spec.levels):
        base[f"{_G}{L}"] = np.array(lv.labels, dtype=object)[lv.codes]
    # the correlation's default group, nlme's innermost level: its own column when there is
    # one level (so that summaries name it), else the combined nested labels
    inner = spec.levels[0].name if len(spec.levels) == 1 else f"{_G}{len(spec.levels) - 1}"
    if correlation is not None and not correlation.parsed.group:
        # nlme's default: positions within the innermost level
        correlation = replace(correlation, form=f"{correlation.form.strip()} | {inner}")
    structures = (Whitening.build(weights, correlation, base)
                  if weights is not None or correlation is not None else None)
    return NlmeSetup(spec=spec, base=base, structures=structures, correlation=correlation,
                     formula=_lme_formula(spec))


def lindstrom_bates(spec: NlmeSpec, beta: np.ndarray, reml: bool,
                    weights: VarianceFunction | None = None,
                    correlation: CorrelationStructure | None = None,
                    control: NlmeControl | None = None) -> NlmeFit:
    """Alternate LME and PNLS steps from the fixed effects ``beta`` (random effects 0).

    A variance function of the fitted values (nlme's default ``VarPower()``) reads, in each
    iteration, the model's fitted values at the start of that iteration (nlme's update of the
    structures before its LME step), held fixed through the LME and PNLS steps."""
    control = control or NlmeControl()
    setup = nlme_setup(spec, weights, correlation)
    base, structures, correlation = setup.base, setup.structures, setup.correlation
    formula = setup.formula
    method = "REML" if reml else "ML"
    designs: _Designs | None = None
    b = [np.zeros((len(lv.labels), len(lv.effects))) for lv in spec.levels]
    factors: list[np.ndarray] | None = None
    lin = _Linearization(spec, beta, b)
    psi = structures.start if structures is not None else np.empty(0)
    lin.check(spec, beta, "at the starting values")
    designs = _Designs(spec, formula, lin, base)
    for it in range(1, control.max_iter + 1):
        # LME step
        fitted = None
        if structures is not None and structures.uses_fitted:
            fitted = lin.f
            structures = structures.with_fitted(fitted)
        fit: LmeFit = lme_fit(formula, base, None, weights, correlation, method,
                              fitted=fitted, design=designs.at(lin))
        lme_factors = _factors(fit.model, np.asarray(fit.opt.final, dtype=float), spec)
        old_coefs = np.concatenate([
            _nlme_coefficients(spec, factors) if factors is not None else
            np.full(sum(len(lv.effects) for lv in spec.levels), np.nan), psi])
        psi = fit.psi if fit.psi is not None else np.empty(0)

        def whiten(arrays: list[np.ndarray], psi: np.ndarray = psi,
                   structures: Whitening | None = structures) -> list[np.ndarray]:
            if structures is None:
                return arrays
            return structures.whiten(psi, [np.array(a, dtype=float) for a in arrays])[0]

        # PNLS step
        pnls = _Pnls(spec, designs, whiten, control)
        new_beta, b, factors, lin = pnls.run(beta, b, lme_factors, lin, ml_factors=not reml)
        if not np.all(np.isfinite(new_beta)):
            raise NumericalError("nlme: the penalized nonlinear least-squares step diverged; "
                                 "give start= values (ml.nls_list gives per-group estimates)")
        fixed_change = _relative_change(beta, new_beta, control.tolerance)
        new_coefs = np.concatenate([_nlme_coefficients(spec, factors), psi])
        struct_change = (_relative_change(old_coefs, new_coefs, control.tolerance)
                         if it > 1 else math.inf)
        old_beta, beta = beta, new_beta
        lin.check(spec, beta, f"after {it} iteration(s)")
        if max(fixed_change, struct_change) <= control.tolerance:
            return _wrap_up(spec, designs, structures, psi, beta, b, factors, lin, reml, it)
    worst = spec.fixed_names[int(np.argmax(np.abs(beta - old_beta)
                                           / (np.abs(beta) + 1e-8)))]
    raise NumericalError(f"nlme: the Lindstrom-Bates iterations did not converge in "
                         f"{control.max_iter} steps (the fixed effect {worst!r} still moves); "
                         "give start= values closer to the estimates (ml.nls_list gives "
                         "per-group estimates) or raise NlmeControl(max_iter=...)")


def _wrap_up(spec: NlmeSpec, designs: _Designs, structures: Whitening | None,
             psi: np.ndarray, beta: np.ndarray, b: list[np.ndarray],
             factors: list[np.ndarray], lin: _Linearization, reml: bool,
             iterations: int) -> NlmeFit:
    """nlme's final MEestimate: the LMM of the last linearization at the last T and
    structures (sigma, log-likelihood and the fixed effects' covariance come from it)."""
    design = designs.at(lin)
    logdet = 0.0
    whitened = design
    if structures is not None:
        holder: list[float] = []

        def whiten(arrays: list[np.ndarray]) -> list[np.ndarray]:
            out, jacobian = structures.whiten(psi, [np.array(a, dtype=float) for a in arrays])
            holder.append(jacobian)
            return out

        whitened = designs.at(lin, whiten)
        logdet = holder[0]
    model = _quiet_model(whitened, reml=reml)
    theta = _theta(model.layout, factors, spec)
    criterion = float(model.objective(theta))
    opt = OptSummary(backend="nlme", initial=theta, final=theta,
                     lower=model.layout.lower_bounds(), fmin=criterion, feval=0,
                     elapsed=0.0, return_code="nlme", converged=True, messages=(),
                     fitlog=(), settings={})
    if structures is not None:
        var, cor = structures.natural(psi)
    else:
        var, cor = np.empty(0), np.empty(0)
    return NlmeFit(beta=beta, b=b, model=model, opt=opt, deviance=criterion + 2.0 * logdet,
                   iterations=iterations, structures=structures, psi=psi,
                   variance_parameters=var, correlation_parameters=cor, X=lin.X,
                   design=design)


def fixed_df(X: np.ndarray, levels: list[np.ndarray]) -> np.ndarray:
    """nlme's denominator df of each fixed effect (``getFixDF`` on the linearization's
    fixed-effects columns X): a column is estimated in the innermost stratum within whose
    groups it varies (the groups of each level, outermost first, then the observations);
    stratum s has m_s - m_(s-1) df less its columns; a constant column is the intercept, which
    takes one df from the outermost stratum and gets the largest df; without one, every
    stratum but the outermost gains one."""
    n, p = X.shape
    sizes = [1] + [int(c.max()) + 1 for c in levels] + [n]
    df = np.array([sizes[i] - sizes[i - 1] for i in range(1, len(sizes))], dtype=float)
    scale = np.where(X[0] == 0, 1.0, X[0])
    constant = np.all(np.abs(np.where(X[0] == 0, X, X / scale - 1.0)) < 1.5e-8, axis=0)
    stratum = np.zeros(p, dtype=int)
    for j in np.flatnonzero(~constant):
        stratum[j] = len(levels)  # the observations
        for i, codes in enumerate(levels):
            lo = np.full(int(codes.max()) + 1, np.inf)
            hi = np.full(int(codes.max()) + 1, -np.inf)
            np.minimum.at(lo, codes, X[:, j])
            np.maximum.at(hi, codes, X[:, j])
            if np.all(hi - lo <= 1e-10 * max(float(np.abs(X[:, j]).max()), 1.0)):
                stratum[j] = i
                break
    for j in np.flatnonzero(~constant):
        df[stratum[j]] -= 1
    if constant.any():
        df[0] -= 1
    else:
        df[1:] += 1
    return np.where(constant, df.max(), df[stratum])


def nlme_estimate(model: str, data: Any, fixed: Any = None, random: Any = None,
                  groups: str | None = None, start: Any = None, method: str = "ML",
                  weights: Any = None, correlation: Any = None, functions: Any = None,
                  control: NlmeControl | None = None) -> tuple[NlmeSpec, NlmeFit]:
    """Read the specification and run the alternation (the public ``multilevel.nlme`` turns
    the estimates into a result)."""
    if method not in ("ML", "REML"):
        raise ArgumentError(f"method must be 'ML' or 'REML', got {method!r:.60}")
    if control is not None and not isinstance(control, NlmeControl):
        raise ArgumentError(f"control must be an ml.NlmeControl, got {control!r:.60}")
    extra = structure_columns(weights, correlation)
    spec = parse_spec(model, data, fixed, random, groups, functions, start, extra)
    beta = start_vector(spec, start)
    return spec, lindstrom_bates(spec, beta, method == "REML", weights, correlation, control)


def ranef_frames(spec: NlmeSpec, b: list[np.ndarray]) -> dict[str, pd.DataFrame]:
    """Each level's conditional modes, groups x effects, named as nlme."""
    return {lv.name: pd.DataFrame(bl, index=pd.Index(lv.labels, name=lv.name),
                                  columns=[e.name for e in lv.effects])
            for lv, bl in zip(spec.levels, b, strict=True)}
