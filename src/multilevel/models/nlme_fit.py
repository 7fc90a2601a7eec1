"""Nonlinear mixed models by nlme's Lindstrom-Bates alternation (Lindstrom & Bates 1990;
Pinheiro & Bates 2000, sections 7.2 and 7.5).

The model (see :mod:`multilevel.models.nlme_spec`): y = f(x, phi) + e with per-row parameters
phi_p = A_p beta + sum over levels B_p b_level, b ~ N(0, sigma^2 T T') per group and level, and
Var(e) = sigma^2 times nlme's variance function and correlation structure. Two steps alternate
until the fixed effects, the random effects' relative factors and the structures' parameters
settle:

1. PNLS, penalized nonlinear least squares: for the current T and structures, minimize
   |W (y - f)|^2 + sum |u|^2 over beta and u, with b = T u per group (so a singular T needs
   no inverse) and W the whitening of the residual structures. Gauss-Newton with step
   halving; each step solves the sparse normal equations of the linearized problem, whose
   size is the number of random effects, not rows.
2. LME: linearize f at that solution (X = df/dbeta, Z = df/db) and fit the linear mixed
   model of the working response w = y - f + X beta + Z b by ML or REML, with the residual
   structures (:func:`multilevel.models.lme.lme_fit`: the package's own LMM engine inside,
   the structures' parameters optimized around it). This gives the new T and structures.

As nlme, the log-likelihood, sigma, the random effects' covariance, the structures and the
fixed effects' covariance reported are those of the last LME step; the fixed effects and the
conditional modes are the last PNLS solution. Why this algorithm rather than a Laplace or
quadrature fit of the exact marginal likelihood: the issue asks for nlme's estimates, and
nlme's are those of this alternation (they differ from a Laplace fit, lme4's ``nlmer``, by
the linearization).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from multilevel.errors import ArgumentError, NumericalError
from multilevel.models.lme import LmeFit, lme_fit
from multilevel.models.lmm import ModelStages
from multilevel.models.nlme_spec import NlmeSpec
from multilevel.models.whitening import Whitening
from multilevel.optim.optsummary import OptSummary
from multilevel.structures.correlation import CorrelationStructure
from multilevel.structures.variance import VarianceFunction

MAX_ITERATIONS = 100
# Convergence of the alternation (relative change of beta, of the relative factors and of the
# structures' parameters): the LME step's optimizer answers to about 1e-7, so a tighter rule
# could oscillate.
TOLERANCE = 1e-6
# PNLS: Gauss-Newton until the relative decrease of the objective is below this
PNLS_TOLERANCE = 1e-12
PNLS_MAX_ITERATIONS = 200
# working-frame column names (prefixed so as not to meet the data's own)
_W, _X, _Z, _G = "nlme_w", "nlme_x", "nlme_z", "nlme_g"


@dataclass(frozen=True)
class NlmeFit:
    """What :func:`lindstrom_bates` returns."""

    beta: np.ndarray
    b: list[np.ndarray]  # per level: groups x the level's effects
    lme: LmeFit
    iterations: int
    fitted: np.ndarray  # f at the final PNLS solution, in the data's rows
    structures: Whitening | None
    psi: np.ndarray


def _factor_of_level(fit: LmeFit, spec: NlmeSpec, level: int) -> np.ndarray:
    """The level's relative factor T (its effects x effects, block-diagonal) from the LME
    step's fitted theta."""
    layout = fit.model.layout
    theta = np.asarray(fit.opt.final, dtype=float)
    q = len(spec.levels[level].effects)
    T = np.zeros((q, q))
    names = [f"{_Z}{level}_{j}" for j in range(q)]
    for t, term in enumerate(layout.terms):
        if term.group != f"{_G}{level}":
            continue
        idx = [names.index(c) for c in term.columns]
        T[np.ix_(idx, idx)] = layout.term_factor(theta, t)
    return T


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


class _Pnls:
    """Penalized nonlinear least squares at fixed relative factors and structures."""

    def __init__(self, spec: NlmeSpec, factors: list[np.ndarray],
                 whiten: Any) -> None:
        self.spec = spec
        self.factors = factors
        self.whiten = whiten
        self.sizes = [len(lv.labels) * len(lv.effects) for lv in spec.levels]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(int)
        n = spec.y.size
        # column of each (row, level, effect k) in the u vector
        self.cols = [
            self.offsets[L] + lv.codes[:, None] * len(lv.effects)
            + np.arange(len(lv.effects))[None, :] for L, lv in enumerate(spec.levels)]
        self.rows = np.arange(n)

    def b_of(self, u: np.ndarray) -> list[np.ndarray]:
        out = []
        for L, lv in enumerate(self.spec.levels):
            q = len(lv.effects)
            uu = u[self.offsets[L]:self.offsets[L + 1]].reshape(len(lv.labels), q)
            out.append(uu @ self.factors[L].T)
        return out

    def objective(self, beta: np.ndarray, u: np.ndarray) -> tuple[float, np.ndarray,
                                                                   np.ndarray, np.ndarray]:
        phi = self.spec.phi(beta, self.b_of(u))
        f, jac = self.spec.evaluate(phi)
        (r,) = self.whiten([self.spec.y - f])
        value = float(r @ r + u @ u)
        return value, f, jac, r

    def solve(self, beta: np.ndarray, u: np.ndarray,
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        spec = self.spec
        n = spec.y.size
        value, f, jac, r = self.objective(beta, u)
        if not np.isfinite(value):
            raise NumericalError("nlme: the model cannot be evaluated at the starting values; "
                                 "give start= values (ml.nls_list gives per-group estimates)")
        for _ in range(PNLS_MAX_ITERATIONS):
            X = np.column_stack([jac[:, e.parameter] * e.column for e in spec.fixed])
            zcols = []
            for lv in spec.levels:
                zcols += [jac[:, e.parameter] * e.column for e in lv.effects]
            arrays = self.whiten([X, np.column_stack(zcols)] if zcols else [X])
            Xw = arrays[0]
            Q = int(self.offsets[-1])
            if zcols:
                Zw = arrays[1]
                data, rows, cols = [], [], []
                at = 0
                for L, lv in enumerate(spec.levels):
                    q = len(lv.effects)
                    V = Zw[:, at:at + q] @ self.factors[L]  # d f / d u
                    at += q
                    data.append(V.ravel())
                    rows.append(np.repeat(self.rows, q))
                    cols.append(self.cols[L].ravel())
                Z = sp.csc_matrix((np.concatenate(data), (np.concatenate(rows),
                                                          np.concatenate(cols))), shape=(n, Q))
                ZtZ = (Z.T @ Z + sp.identity(Q, format="csc")).tocsc()
                ZtX = np.asarray(Z.T @ Xw)
                lu = splu(ZtZ)
                # Schur complement on beta: the random effects' block is sparse
                S = Xw.T @ Xw - ZtX.T @ lu.solve(ZtX)
                rz = Z.T @ r - u
                rx = Xw.T @ r
                dbeta = np.linalg.solve(S, rx - ZtX.T @ lu.solve(rz))
                du = lu.solve(rz - ZtX @ dbeta)
            else:
                dbeta = np.linalg.lstsq(Xw, r, rcond=None)[0]
                du = np.zeros(0)
            step = 1.0
            while True:
                new_beta, new_u = beta + step * dbeta, u + step * du
                new_value, nf, njac, nr = self.objective(new_beta, new_u)
                if np.isfinite(new_value) and new_value <= value:
                    break
                step /= 2.0
                if step < 1e-10:
                    return beta, u, f, jac
            decrease = value - new_value
            beta, u, value, f, jac, r = new_beta, new_u, new_value, nf, njac, nr
            if decrease <= PNLS_TOLERANCE * (value + PNLS_TOLERANCE):
                return beta, u, f, jac
        return beta, u, f, jac


def _refuse_fitted(weights: VarianceFunction | None) -> None:
    if weights is not None and getattr(getattr(weights, "parsed", None), "covariate",
                                       None) == "fitted":
        raise ArgumentError("nlme: variance functions of the fitted values are not "
                            "supported yet; use a covariate form such as VarPower(form='~ "
                            "age')")


def lindstrom_bates(spec: NlmeSpec, beta: np.ndarray,
                    weights: VarianceFunction | None = None,
                    correlation: CorrelationStructure | None = None) -> NlmeFit:
    """Alternate PNLS and LME (ML) steps from the fixed effects ``beta``; see
    :func:`reml_at` for REML."""
    _refuse_fitted(weights)
    frame = spec.rows.copy()
    for L, lv in enumerate(spec.levels):
        frame[f"{_G}{L}"] = np.array(lv.labels, dtype=object)[lv.codes]
    inner = f"{_G}{len(spec.levels) - 1}"
    if correlation is not None:
        form = correlation.parsed
        if form.group:
            # a correlation group named in the form: nlme requires it to be the innermost
            # level; our whitening only needs it nested in every level
            pass
        else:
            correlation = replace(correlation, form=f"{correlation.form.strip()} | {inner}")
    structures = (Whitening.build(weights, correlation, frame)
                  if weights is not None or correlation is not None else None)
    psi = structures.start if structures is not None else np.empty(0)

    def whiten(arrays: list[np.ndarray]) -> list[np.ndarray]:
        if structures is None:
            return arrays
        return structures.whiten(psi, [a.copy() for a in arrays])[0]

    formula = _lme_formula(spec)
    factors = [np.eye(len(lv.effects)) for lv in spec.levels]
    u = np.zeros(sum(len(lv.labels) * len(lv.effects) for lv in spec.levels))
    b: list[np.ndarray] = []
    beta_old = beta.copy()
    psi_old = psi.copy()
    for it in range(1, MAX_ITERATIONS + 1):
        pnls = _Pnls(spec, factors, whiten)
        # carry the random effects over on the b scale: u = T^-1 b (0 where T is singular)
        if it > 1:
            u = _u_from_b(b, factors)
        beta, u, f, jac = pnls.solve(beta, u)
        if not np.all(np.isfinite(beta)):
            raise NumericalError("nlme: the penalized nonlinear least-squares step diverged; "
                                 "give start= values (ml.nls_list gives per-group estimates)")
        b = pnls.b_of(u)
        X = np.column_stack([jac[:, e.parameter] * e.column for e in spec.fixed])
        w = spec.y - f + X @ beta
        cols: dict[str, np.ndarray] = {}
        for i in range(X.shape[1]):
            cols[f"{_X}{i}"] = X[:, i]
        for L, lv in enumerate(spec.levels):
            for j, e in enumerate(lv.effects):
                z = jac[:, e.parameter] * e.column
                cols[f"{_Z}{L}_{j}"] = z
                w = w + z * b[L][lv.codes, j]
        work = frame.assign(**{_W: w}, **cols)
        fit = lme_fit(formula, work, None, weights, correlation, "ML")
        new_factors = [_factor_of_level(fit, spec, L) for L in range(len(spec.levels))]
        if fit.psi is not None and fit.psi.size:
            psi = fit.psi
        change = max(float(np.max(np.abs(Tn - To)) / (1.0 + np.max(np.abs(To))))
                     for Tn, To in zip(new_factors, factors, strict=True))
        beta_change = (float(np.max(np.abs(beta - beta_old) / (np.abs(beta) + 1e-8)))
                       if it > 1 else 1.0)
        psi_change = (float(np.max(np.abs(psi - psi_old) / (1.0 + np.abs(psi_old))))
                      if psi.size else 0.0)
        factors, beta_old, psi_old = new_factors, beta.copy(), psi.copy()
        if change < TOLERANCE and beta_change < TOLERANCE and psi_change < TOLERANCE:
            return NlmeFit(beta=beta, b=b, lme=fit, iterations=it, fitted=f,
                           structures=structures, psi=psi)
    worst = _worst_parameter(spec, beta, beta_old)
    raise NumericalError(f"nlme: the Lindstrom-Bates iterations did not converge in "
                         f"{MAX_ITERATIONS} steps (the fixed effect {worst!r} still moves); "
                         "give start= values closer to the estimates (ml.nls_list gives "
                         "per-group estimates)")


def reml_at(fit: NlmeFit) -> tuple[ModelStages, OptSummary, float]:
    """nlme's REML fit of a nonlinear model: the estimates of the ML alternation (nlme's
    PNLS step re-estimates the random effects' precision by ML inside each increment, so its
    REML fits end at the ML relative factors and fixed effects: checked on Theoph and
    Loblolly), with sigma and the log-likelihood of the linearized model's REML criterion at
    those parameters. Returns the REML model, its optimizer record at that theta and the REML
    deviance with the structures' Jacobian."""
    model = fit.lme.model
    theta = np.asarray(fit.lme.opt.final, dtype=float)
    reml_model = ModelStages(model.design.formula, None, reml=True, calc_derivs=False,
                             design=model.design)
    criterion = float(reml_model.objective(theta))
    jacobian = fit.lme.deviance - float(fit.lme.opt.fmin)
    opt = replace(fit.lme.opt, fmin=criterion, gradient=None, hessian=None)
    return reml_model, opt, criterion + jacobian


def _u_from_b(b: list[np.ndarray], factors: list[np.ndarray]) -> np.ndarray:
    out = []
    for bl, T in zip(b, factors, strict=True):
        out.append((np.linalg.pinv(T) @ bl.T).T.ravel())
    return np.concatenate(out) if out else np.zeros(0)


def _worst_parameter(spec: NlmeSpec, beta: np.ndarray, old: np.ndarray) -> str:
    rel = np.abs(beta - old) / (np.abs(beta) + 1e-8)
    return spec.fixed_names[int(np.argmax(rel))]


def ranef_frames(spec: NlmeSpec, b: list[np.ndarray]) -> dict[str, pd.DataFrame]:
    """Each level's conditional modes, groups x effects, named as nlme."""
    return {lv.name: pd.DataFrame(bl, index=pd.Index(lv.labels, name=lv.name),
                                  columns=[e.name for e in lv.effects])
            for lv, bl in zip(spec.levels, b, strict=True)}
