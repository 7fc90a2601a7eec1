"""Generalized least squares with nlme's variance functions and correlation structures, as
nlme's ``gls``: y = X beta + e, Var(e_g) = sigma^2 S_g C_g S_g within each group g, S_g the
variance function's sd multipliers and C_g the correlation structure's matrix.

For given variance and correlation parameters the rows are whitened group by group,
y* = F_g S_g^-1 y with F_g' F_g = C_g^-1 (nlme's ``corFactor``); then beta is ordinary least
squares on the whitened data, sigma is profiled out, and the log-likelihood is (Pinheiro &
Bates 2000, section 5.1; N rows, p coefficients, RSS* the whitened residual sum of squares)

    ML:   -N/2 (log 2 pi + 1 + log(RSS*/N)) - sum_g log|S_g C_g^{1/2}|
    REML: -(N-p)/2 (log 2 pi + 1 + log(RSS*/(N-p))) - sum_g log|S_g C_g^{1/2}| - log|R*|,

R* the triangular factor of the whitened X. The variance and correlation parameters are
optimized on nlme's unconstrained scale (BOBYQA, as the rest of the package).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from formulaic import model_matrix

from multilevel.data.design import r_contrasts
from multilevel.data.frame import logical_as_factor, to_pandas
from multilevel.errors import ArgumentError, DataError, FormulaError
from multilevel.formula.expressions import EVALUATION_CONTEXT
from multilevel.formula.parser import parse_formula
from multilevel.formula.rnames import r_column_names
from multilevel.models.whitening import Optimum, Whitening, alternate_fitted
from multilevel.optim.optsummary import OptSummary
from multilevel.structures.correlation import CorrelationStructure
from multilevel.structures.variance import VarComb, VarianceFunction

METHODS = ("REML", "ML")


@dataclass(frozen=True)
class GlsFit:
    """What :func:`gls_fit` returns: the estimates and what the result needs (the fields of
    :class:`multilevel.results.gls_result.GlsResult`, which the public ``multilevel.gls``
    makes of it: results sit above models)."""

    fixef: pd.Series
    vcov: pd.DataFrame
    sigma: float
    loglik: float
    method: str
    variance_parameters: np.ndarray
    correlation_parameters: np.ndarray
    optsum: OptSummary | None
    nobs: int
    X: np.ndarray
    y: np.ndarray
    whitening: Whitening
    psi: np.ndarray
    formula: str
    rows: Any
    fixed_spec: Any
    structures: tuple[Any, Any]


@dataclass(frozen=True)
class GlsSetup:
    """A ``gls`` model before any optimization, as :func:`gls_setup` builds it: the model
    matrix and response of the rows used, and the residual structures initialized on those
    rows. :func:`gls_fit` optimizes the structures' parameters; :meth:`fit_at` gives the fit
    at given parameters without optimizing (a saved fit loaded again).

    Attributes
    ----------
    formula : str
    method : {"REML", "ML"}
    X : numpy.ndarray, shape (n, p)
    y : numpy.ndarray, shape (n,)
    names : list of str
        The coefficients' names (R's).
    rows : pandas.DataFrame
        The data rows used, in the model's order.
    fixed_spec : formulaic ModelSpec
        The encoding of X, replayed on new data.
    structures : Whitening
        The variance function and correlation structure on ``rows``.
    arguments : tuple
        The ``weights`` and ``correlation`` arguments as given.
    """

    formula: str
    method: str
    X: np.ndarray
    y: np.ndarray
    names: list[str]
    rows: Any
    fixed_spec: Any
    structures: Whitening
    arguments: tuple[Any, Any]

    def with_structures(self, structures: Whitening) -> GlsSetup:
        """The same set-up with other structures on the same rows (e.g. with the fitted
        values a fitted-value variance function last read: ``structures.with_fitted``)."""
        return replace(self, structures=structures)

    def fit_at(self, psi: np.ndarray, optsum: OptSummary | None) -> GlsFit:
        """The fit at the structures' unconstrained parameters ``psi`` without optimizing
        (beta and sigma follow exactly), with the optimizer record ``optsum``.

        Raises
        ------
        ArgumentError
            ``psi`` of another length than the structures' parameters.
        """
        psi = np.asarray(psi, dtype=float)
        if psi.shape != self.structures.start.shape:
            raise ArgumentError(f"psi has {psi.size} values; the structures on these rows "
                                f"have {self.structures.start.size} parameters")
        n, p = self.X.shape
        ll, beta, r, rss = whitened_least_squares(self.X, self.y, self.structures, psi,
                                                  self.method)
        sigma2 = rss / (n - p if self.method == "REML" else n)
        rinv = np.linalg.inv(r)
        # nlme's varBeta takes the residual variance on N - p df for ML fits too
        vcov = rss / (n - p) * rinv @ rinv.T
        var_nat, cor_nat = self.structures.natural(psi)
        names = self.names
        return GlsFit(fixef=pd.Series(beta, index=names, name="estimate"),
                      vcov=pd.DataFrame(vcov, index=names, columns=names),
                      sigma=math.sqrt(sigma2), loglik=ll, method=self.method,
                      variance_parameters=var_nat, correlation_parameters=cor_nat,
                      optsum=optsum, nobs=n, X=self.X, y=self.y, whitening=self.structures,
                      psi=psi, formula=self.formula, rows=self.rows,
                      fixed_spec=self.fixed_spec, structures=self.arguments)


def gls_setup(formula: str, data: Any, weights: VarianceFunction | VarComb | None = None,
              correlation: CorrelationStructure | None = None,
              method: str = "REML") -> GlsSetup:
    """The steps of a ``gls`` fit before its optimization: check the arguments, build the
    model matrix on the rows of ``data`` with every column used, and initialize the
    structures on those rows (see :class:`GlsSetup`; the arguments are :func:`gls_fit`'s)."""
    if method not in METHODS:
        raise ArgumentError(f"method must be 'REML' or 'ML', got {method!r:.60}")
    parsed = parse_formula(formula)  # the allow-listed formula checks
    if parsed.random:
        raise FormulaError("gls fits no random effects; remove the (... | g) terms or use "
                           "ml.lmer", formula)
    frame = to_pandas(data)
    structure_cols = []
    if weights is not None:
        structure_cols += weights.column_names()
    if correlation is not None:
        structure_cols += correlation.column_names()  # nested groups: every column
    missing = [c for c in structure_cols if c not in frame.columns]
    if missing:
        raise DataError(f"gls: column(s) {', '.join(map(repr, missing))} of the variance or "
                        "correlation form are not in the data")
    frame = frame.dropna(subset=structure_cols) if structure_cols else frame
    fixed = r_contrasts(parsed.fixed, frame)
    try:
        mm = model_matrix(f"{parsed.response} ~ {fixed}", logical_as_factor(frame),
                          na_action="drop", context=EVALUATION_CONTEXT)
    except Exception as exc:  # formulaic raises several exception types
        raise FormulaError(f"cannot build the model matrix: {exc}", formula) from exc
    rows = frame.loc[mm.rhs.index]
    y = np.asarray(mm.lhs, dtype=float)[:, 0]
    X = np.asarray(mm.rhs, dtype=float)
    n, p = X.shape
    if n <= p:
        raise DataError(f"gls: {n} observations for {p} coefficients")
    return GlsSetup(formula=formula, method=method, X=X, y=y,
                    names=r_column_names(list(mm.rhs.columns)), rows=rows,
                    fixed_spec=mm.rhs.model_spec,
                    structures=Whitening.build(weights, correlation, rows),
                    arguments=(weights, correlation))


def whitened_least_squares(X: np.ndarray, y: np.ndarray, structures: Whitening,
                           psi: np.ndarray, method: str,
                           ) -> tuple[float, np.ndarray, np.ndarray, float]:
    """Least squares on the rows whitened at ``psi``: (the log-likelihood of the module
    docstring, beta, the triangular factor R* of the whitened X, the whitened RSS)."""
    n, p = X.shape
    (Xs, ys), logdet = structures.whiten(psi, [X, y])
    q, r = np.linalg.qr(Xs)
    beta = np.linalg.solve(r, q.T @ ys)
    rss = float(np.sum((ys - Xs @ beta) ** 2))
    if method == "ML":
        ll = -n / 2 * (math.log(2 * math.pi) + 1 + math.log(rss / n)) - logdet
    else:
        ll = (-(n - p) / 2 * (math.log(2 * math.pi) + 1 + math.log(rss / (n - p)))
              - logdet - float(np.sum(np.log(np.abs(np.diag(r))))))
    return ll, beta, r, rss


def gls_fit(formula: str, data: Any, weights: VarianceFunction | VarComb | None = None,
            correlation: CorrelationStructure | None = None, method: str = "REML") -> GlsFit:
    """Fit a linear model with correlated and/or heteroscedastic errors, as nlme's ``gls``
    (the public :func:`multilevel.gls` wraps the estimates into a ``GlsResult``).

    Parameters
    ----------
    formula : str
        ``"response ~ predictors"`` (no random-effects terms).
    data : pandas.DataFrame or polars.DataFrame
    weights : variance function, optional
        e.g. ``multilevel.structures.VarIdent(form="~ 1 | Sex")``,
        ``VarPower(form="~ age")``, ``VarComb(...)``. ``VarPower()``, ``VarExp()`` and
        ``VarConstPower()`` without a form are of the fitted values X beta
        (``form="~ fitted(.)"``), updated between optimizations as nlme does.
    correlation : correlation structure, optional
        e.g. ``multilevel.structures.CorAR1(form="~ 1 | Subject")``.
    method : {"REML", "ML"}

    Returns
    -------
    GlsFit
    """
    setup = gls_setup(formula, data, weights, correlation, method)
    X, y, structures = setup.X, setup.y, setup.structures

    # reads the current structures: the optimization swaps in structures with refreshed
    # fitted values
    def fit_at(theta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, float]:
        return whitened_least_squares(X, y, structures, theta, method)

    def optimize(current: Whitening, start: np.ndarray) -> Optimum:
        nonlocal structures
        structures = current
        return structures.optimize(lambda t: -2.0 * fit_at(t)[0], start)

    def estimate(current: Whitening, psi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        nonlocal structures
        structures = current
        beta = fit_at(psi)[1]
        return X @ beta, beta  # nlme's gls: the fitted values X beta; beta counts too

    structures, theta, opt = alternate_fitted(structures, structures.start, optimize, estimate)
    return setup.with_structures(structures).fit_at(theta, opt)
