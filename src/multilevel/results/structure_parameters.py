"""The parameters of nlme's residual structures as a fit reports them: their names and titles
(as nlme prints them), the working scale of the approximate intervals (the structures'
unconstrained coefficients; a general correlation's on the pdNatural scale of its
correlations, as nlme's ``corNatural``), and the mapping back to the natural scale.

Works on a :class:`multilevel.models.whitening.Whitening` (the structures initialized on the
model's rows) and its unconstrained parameters ``psi`` (variance function's, then the
correlation's).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from multilevel.structures.correlation import CorSymm
from multilevel.structures.variance import VarComb

# nlme names a varComb's components A, B, C, ... (R's LETTERS)
COMPONENT_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

VARIANCE_TITLES = {
    "VarIdent": "Different standard deviations per stratum",
    "VarPower": "Power of variance covariate",
    "VarExp": "Exponential of variance covariate",
    "VarConstPower": "Constant plus power of variance covariate",
    "VarFixed": "fixed weights",
}
CORRELATION_TITLES = {
    "CorAR1": "AR(1)", "CorCAR1": "Continuous AR(1)", "CorCompSymm": "Compound symmetry",
    "CorSymm": "General", "CorExp": "Exponential spatial correlation",
    "CorGaus": "Gaussian spatial correlation", "CorLin": "Linear spatial correlation",
    "CorSpher": "Spherical spatial correlation",
    "CorRatio": "Rational quadratic spatial correlation",
}


def variance_names(var: Any, n: int, data: Any = None) -> list[str]:
    """nlme's names of a variance function's ``n`` (estimated) parameters; a
    :class:`VarComb`'s (its components' sizes read from ``data``) are the components' names
    prefixed by the components' letters, ``A.Female``, ``B.power``, as nlme's varComb."""
    kind = type(var).__name__
    if isinstance(var, VarComb):
        return [f"{letter}.{name}"
                for letter, comp, k in zip(COMPONENT_LETTERS, var.components, var.sizes(data),
                                           strict=False)
                for name in variance_names(comp, k)]
    levels = list(var.levels or ())
    if kind == "VarIdent":
        return levels[1:] if len(levels) == n + 1 else [f"v{i + 1}" for i in range(n)]
    if kind == "VarConstPower":
        if n == 2:
            return ["const", "power"]
        return [f"const.{lev}" for lev in levels] + [f"power.{lev}" for lev in levels]
    base = {"VarPower": "power", "VarExp": "expon"}.get(kind, "par")
    return [base] if n == 1 else (levels if len(levels) == n else
                                  [f"{base}{i + 1}" for i in range(n)])


def correlation_names(cor: Any, n: int) -> list[str]:
    """nlme's names of a correlation structure's ``n`` parameters."""
    kind = type(cor).__name__
    if kind in ("CorAR1", "CorCAR1"):
        return ["Phi"]
    if kind == "CorCompSymm":
        return ["Rho"]
    if kind == "CorARMA":
        return ([f"Phi{i + 1}" for i in range(cor.p)]
                + [f"Theta{i + 1}" for i in range(cor.q)])
    if kind == "CorSymm":
        m = int(round((1 + np.sqrt(1 + 8 * n)) / 2))
        return [f"cor({i + 1},{j + 1})" for i in range(m) for j in range(i + 1, m)]
    if n == 2:
        return ["range", "nugget"]
    return ["range"] if n == 1 else [f"par{i + 1}" for i in range(n)]


class StructureParameters:
    """The residual structures' parameters of one fit (see the module docstring)."""

    def __init__(self, whitening: Any, psi: np.ndarray) -> None:
        self.whitening = whitening
        self.psi = np.asarray(psi, dtype=float)
        self.n_variance = whitening.n_variance if whitening is not None else 0

    @property
    def n(self) -> int:
        """How many parameters the structures have."""
        return int(self.psi.size)

    @property
    def _general_correlation(self) -> bool:
        return self.whitening is not None and isinstance(self.whitening.correlation, CorSymm)

    def working(self) -> np.ndarray:
        """The parameters on the intervals' working scale."""
        if not self._general_correlation:
            return self.psi.copy()
        r = self.whitening.natural(self.psi)[1]
        return np.concatenate([self.psi[:self.n_variance], np.log((1 + r) / (1 - r))])

    def psi_from_working(self, w: np.ndarray) -> np.ndarray:
        """Unconstrained parameters from working-scale ones."""
        if not self._general_correlation:
            return np.asarray(w, dtype=float)
        r = np.tanh(np.asarray(w[self.n_variance:]) / 2.0)
        cor = self.whitening.correlation.to_unconstrained(r, self.whitening.times)
        return np.concatenate([w[:self.n_variance], cor])

    def natural_limits(self, limits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Working-scale (lower, est., upper) columns mapped to the natural scale, each column
        as one parameter vector (as nlme does: ARMA coefficients are mapped jointly)."""
        var_cols, cor_cols = [], []
        for c in range(limits.shape[1]):
            var, cor = self.whitening.natural(self.psi_from_working(limits[:, c]))
            var_cols.append(var)
            cor_cols.append(cor)
        return np.column_stack(var_cols), np.column_stack(cor_cols)

    def names(self) -> tuple[list[str], list[str]]:
        """Names of the variance function's and the correlation's parameters."""
        if self.whitening is None:
            return [], []
        n_cor = self.n - self.n_variance
        var = (variance_names(self.whitening.variance, self.n_variance, self.whitening.rows)
               if self.whitening.variance is not None else [])
        cor = (correlation_names(self.whitening.correlation, n_cor)
               if self.whitening.correlation is not None else [])
        return var, cor

    def sd_multipliers(self, n_rows: int) -> np.ndarray:
        """Each row's variance-function SD multiplier (1 without a variance function)."""
        w = self.whitening
        if w is None or w.variance is None:
            return np.ones(n_rows)
        psi = self.psi[:self.n_variance]
        if getattr(w.variance, "uses_fitted", False):
            # a variance function of the fitted values reads those the fit ended with
            fitted = getattr(w, "fitted", None)
            if fitted is None:
                return np.ones(n_rows)
            return np.asarray(w.variance.weights_from_data(psi, w.rows, fitted), dtype=float)
        return np.asarray(w.variance.weights_from_data(psi, w.rows), dtype=float)

    def whiten(self, arrays: list[np.ndarray], psi: np.ndarray | None = None,
               ) -> tuple[list[np.ndarray], float]:
        """The arrays whitened at ``psi`` (default: the fit's), and the Jacobian term."""
        if self.whitening is None:
            return [np.array(a, dtype=float) for a in arrays], 0.0
        return self.whitening.whiten(self.psi if psi is None else psi,
                                     [np.array(a, dtype=float) for a in arrays])

    def correlated_draws(self, z: np.ndarray) -> np.ndarray:
        """Standard normal draws ``z`` (rows x nsim) given the fitted correlation and variance
        function: S_g L_g z_g in each correlation group (C_g = L_g L_g')."""
        out = np.array(z, dtype=float)
        w = self.whitening
        if w is not None and w.correlation is not None:
            params = w.correlation.to_constrained(self.psi[self.n_variance:], w.times)
            for idx, C in zip(w.members, w.correlation.corr_matrices(params, w.times),
                              strict=True):
                out[idx] = np.linalg.cholesky(C) @ out[idx]
        return out * self.sd_multipliers(out.shape[0])[:, None]

    def summary_lines(self) -> list[str]:
        """nlme's "Correlation Structure:" and "Variance function:" paragraphs."""
        from multilevel.results.nlme_summary import structure_lines

        return structure_lines(self)
