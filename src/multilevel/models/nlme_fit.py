"""Nonlinear mixed models by nlme's Lindstrom-Bates alternation (Lindstrom & Bates 1990;
Pinheiro & Bates 2000, section 7.5), for R's self-starting models.

Each group's parameters are phi_g = beta + b_g for the parameters with a random effect (beta
alone for the others), and y = f(x, phi_g) + e. Two steps alternate until the relative
covariance factor T of the random effects settles:

1. penalized nonlinear least squares (PNLS): for the current T, minimize
   |y - f|^2 + sum_g |T^-1 b_g|^2 over beta and every b_g (Gauss-Newton/Levenberg-Marquardt);
2. linear mixed-effects (LME) step: linearize f at that solution (X = df/dbeta, Z = df/db)
   and fit the linear mixed model to the working response w = y - f + X beta + Z b by ML or
   REML with the package's own engine, which gives the new T.

As nlme, the log-likelihood, sigma, the random-effects covariance and the fixed effects'
covariance reported are those of the last LME step; the fixed effects and the conditional
modes are the last PNLS solution. This is why nlme's numbers differ slightly from a Laplace
fit of the same model (lme4's nlmer): the issue asks for nlme's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize

from multilevel.errors import ArgumentError, FormulaError, NumericalError
from multilevel.models.nls_list import grouped_columns, self_starting_call
from multilevel.nonlinear.selfstart import SELF_STARTING, SelfStartModel

_MODEL = re.compile(r"^\s*([A-Za-z_.][\w.]*)\s*~\s*(SS\w+)\s*\((.*)\)\s*$")
_RANDOM = re.compile(r"^\s*(.+?)\s*~\s*1\s*\|\s*([A-Za-z_.][\w.]*)\s*$")
MAX_ITERATIONS = 100
# Convergence of the alternation (relative change of beta and of the relative factor).
TOLERANCE = 1e-6


@dataclass(frozen=True)
class NlmeProblem:
    """The parsed model and data."""

    model: SelfStartModel
    response: str
    covariates: list[str]
    parameters: list[str]  # the formula's labels, in the model's order
    random: list[str]  # labels with a random effect
    group: str
    x: list[np.ndarray]
    y: np.ndarray
    codes: np.ndarray
    levels: list[str]


def parse_problem(formula: str, data: Any, fixed: str | None, random: str) -> NlmeProblem:
    """Check the formula, ``fixed`` and ``random`` and read the columns they use."""
    match = _MODEL.match(formula) if isinstance(formula, str) else None
    if match is None or match.group(2) not in SELF_STARTING:
        raise FormulaError("nlme needs 'response ~ SSmodel(covariates, parameters)' with one of "
                           f"R's self-starting models ({', '.join(sorted(SELF_STARTING))})",
                           str(formula))
    response, name, inner = match.groups()
    model, covariates, labels = self_starting_call(name, inner, formula)
    if fixed is not None:
        lhs, _, rhs = str(fixed).partition("~")
        named = [p.strip() for p in lhs.split("+")]
        if rhs.strip() != "1" or sorted(named) != sorted(labels):
            raise ArgumentError(f"fixed must be '{' + '.join(labels)} ~ 1' (parameters that "
                                f"depend on covariates are not supported yet), got {fixed!r}")
    rmatch = _RANDOM.match(random) if isinstance(random, str) else None
    if rmatch is None:
        raise ArgumentError(f"random must be nlme's 'parameters ~ 1 | group', e.g. "
                            f"'{labels[0]} ~ 1 | group', got {random!r:.60}")
    rand = [p.strip() for p in rmatch.group(1).split("+")]
    unknown = [p for p in rand if p not in labels]
    if unknown:
        raise ArgumentError(f"random effect on {', '.join(unknown)}, which "
                            f"{'is' if len(unknown) == 1 else 'are'} not a parameter of the "
                            f"model ({', '.join(labels)})")
    group = rmatch.group(2)
    grouped = grouped_columns(data, response, covariates, group, "nlme")
    return NlmeProblem(model=model, response=response, covariates=covariates,
                       parameters=labels, random=[p for p in labels if p in rand], group=group,
                       x=grouped.x, y=grouped.y, codes=grouped.codes, levels=grouped.levels)


def lindstrom_bates(problem: NlmeProblem, start: dict[str, float] | None, reml: bool,
                    lmm_fit: Any) -> tuple[np.ndarray, np.ndarray, Any, int]:
    """Alternate PNLS and LME steps; returns (beta, b (groups x random), the last LME fit,
    iterations). ``lmm_fit(frame, formula, reml)`` fits the LME step's linear mixed model."""
    p = problem
    labels, model = p.parameters, p.model
    if start is None:
        init = model.initial(*p.x, p.y)
        beta = np.array([init[name] for name in model.parameters])
    else:
        try:
            beta = np.array([float(start[name]) for name in labels])
        except KeyError as exc:
            raise ArgumentError(f"start needs a value for every parameter "
                                f"({', '.join(labels)}); missing {exc}") from None
    ridx = [labels.index(r) for r in p.random]
    k, G = len(ridx), len(p.levels)
    b = np.zeros((G, k))
    T = np.eye(k)  # relative covariance factor: b_g = sigma T u_g

    def phis(be: np.ndarray, bb: np.ndarray) -> list[np.ndarray]:
        out = [np.full(p.y.shape[0], v) for v in be]
        for j, i in enumerate(ridx):
            out[i] = out[i] + bb[p.codes, j]
        return out

    fit = None
    beta_old = beta.copy()
    for it in range(1, MAX_ITERATIONS + 1):
        # a variance at zero: its random effect is held at 0 by a penalty near infinity
        Tinv = np.linalg.inv(T + 1e-10 * np.eye(k))

        def residuals(v: np.ndarray, Tinv: np.ndarray = Tinv) -> np.ndarray:
            be, bb = v[:len(labels)], v[len(labels):].reshape(G, k)
            fitted = model.value(*p.x, *phis(be, bb))
            return np.concatenate([p.y - fitted, -(bb @ Tinv.T).ravel()])

        sol = optimize.least_squares(residuals, np.concatenate([beta, b.ravel()]),
                                     method="lm", xtol=1e-12, ftol=1e-12, gtol=1e-12)
        if not np.all(np.isfinite(sol.x)):
            raise NumericalError("nlme: the penalized nonlinear least-squares step diverged; "
                                 "give start= values (ml.nls_list gives per-group estimates)")
        beta, b = sol.x[:len(labels)], sol.x[len(labels):].reshape(G, k)
        grad = model.gradient(*p.x, *phis(beta, b))
        X, Z = grad, grad[:, ridx]
        w = p.y - model.value(*p.x, *phis(beta, b)) + X @ beta + np.einsum(
            "nk,nk->n", Z, b[p.codes])
        cols = {"w": w, p.group: np.array(p.levels, dtype=object)[p.codes]}
        cols.update({f"x{i}": X[:, i] for i in range(X.shape[1])})
        cols.update({f"z{j}": Z[:, j] for j in range(k)})
        formula = (f"w ~ 0 + {' + '.join(f'x{i}' for i in range(X.shape[1]))} + "
                   f"(0 + {' + '.join(f'z{j}' for j in range(k))} | {p.group})")
        fit = lmm_fit(pd.DataFrame(cols), formula, reml)
        T_new = fit.model.layout.term_factor(fit.theta, 0)
        change = np.max(np.abs(T_new - T)) / (1.0 + np.max(np.abs(T)))
        beta_change = np.max(np.abs(beta - beta_old) / (np.abs(beta) + 1e-8)) if it > 1 else 1.0
        T, beta_old = T_new, beta.copy()
        # nlme's rule: the fixed effects settle to 1e-6 relative; the relative factor too
        # (the LME step's own optimizer answers to ~1e-7, so a tighter rule can oscillate)
        if change < TOLERANCE and beta_change < TOLERANCE:
            return beta, b, fit, it
    raise NumericalError(f"nlme: the Lindstrom-Bates iterations did not converge in "
                         f"{MAX_ITERATIONS} steps")
