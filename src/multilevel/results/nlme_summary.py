"""The summary of an nlme-style fit (gls, lme, nlme) in the layout of nlme's
``print(summary(fit))``: the title and model line, AIC / BIC / logLik, the random effects with
their SDs and correlations, the correlation structure and variance function with their
parameters, the fixed-effects table (Value, Std.Error, DF, t-value, p-value), the correlation
of the fixed effects, the quantiles of the standardized residuals and the sizes.

The numbers are kept on the object (``tTable``, ``corFixed``, ``residual_quantiles``, ...) and
``str()`` prints them; the formatting reuses the R number formatting of
:mod:`multilevel.results.summary`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from multilevel.errors import public_methods
from multilevel.results.structure_parameters import (
    CORRELATION_TITLES,
    VARIANCE_TITLES,
    variance_names,
)
from multilevel.results.summary import _abbreviate, _layout, _named_vector, r_format
from multilevel.structures.variance import VarComb

if TYPE_CHECKING:
    from multilevel.results.structure_parameters import StructureParameters

DIGITS = 7  # nlme prints with getOption("digits")


def structure_lines(sp: StructureParameters) -> list[str]:
    """nlme's "Correlation Structure:" and "Variance function:" paragraphs."""
    w = sp.whitening
    if w is None:
        return []
    cor_names = sp.names()[1]
    var, cor = w.natural(sp.psi)
    out: list[str] = []
    if w.correlation is not None:
        kind = type(w.correlation).__name__
        title = CORRELATION_TITLES.get(kind, kind)
        if kind == "CorARMA":
            title = f"ARMA({w.correlation.p},{w.correlation.q})"
        out += [f"Correlation Structure: {title}",
                f" Formula: {_form(w.correlation.form)} ", " Parameter estimate(s):"]
        if kind == "CorSymm":
            out += _correlation_matrix_lines(cor)
        elif cor.size:
            out += _named_vector(cor_names, r_format(cor, DIGITS))
    if isinstance(w.variance, VarComb):
        # nlme's print of a varComb: each component's paragraph under one title
        out.append("Combination of variance functions: ")
        start = 0
        for comp, k in zip(w.variance.components, w.variance.sizes(w.rows), strict=True):
            out += _variance_lines(comp, var[start:start + k])
            start += k
    elif w.variance is not None:
        out.append("Variance function:")
        out += _variance_lines(w.variance, var)
    return out


def _variance_lines(var_fn: Any, values: np.ndarray) -> list[str]:
    """One variance function's structure, formula and (natural) parameter estimates."""
    kind = type(var_fn).__name__
    out = [f" Structure: {VARIANCE_TITLES.get(kind, kind)}",
           f" Formula: {_form(var_fn.form)} ", " Parameter estimates:"]
    if kind == "VarIdent" and var_fn.levels:
        # nlme shows the reference stratum's multiplier 1 too
        out += _named_vector(list(var_fn.levels), r_format([1.0, *values], DIGITS))
    elif values.size:
        out += _named_vector(variance_names(var_fn, values.size), r_format(values, DIGITS))
    return out


def _correlation_matrix_lines(cor: np.ndarray) -> list[str]:
    """A general correlation as nlme prints it: the lower triangle, three decimals."""
    m = int(round((1 + math.sqrt(1 + 8 * cor.size)) / 2))
    R = np.eye(m)
    R[np.triu_indices(m, 1)] = cor
    rows = [[str(i + 1)] + [f"{R[j, i]:.3f}" for j in range(i)] + [""] * (m - 1 - i)
            for i in range(1, m)]
    return [" Correlation: "] + _layout(["", *map(str, range(1, m))], rows, "l" * m)


def _form(form: str) -> str:
    """A one-sided formula as R deparses it: ``~1 | Subject``, ``~age``, ``~1 | Dog/Side``,
    ``~x + y | g``."""
    text = "".join(form.split())
    for op in ("|", "+", "*", "-"):
        text = f" {op} ".join(text.split(op))
    return text.replace("~ - ", "~-")  # a leading minus is unary


def random_effects_lines(lhs: str, groups: list[str], varcorr: pd.DataFrame) -> list[str]:
    """nlme's "Random effects:" paragraph: per grouping factor, outermost first, its formula
    (``~age | Subject``; a nested factor ``a:b`` as nlme's ``a %in% b``) and its SDs, with
    correlations for a general covariance; the residual SD with the innermost factor."""
    out = ["Random effects:"]
    for i, group in enumerate(groups):
        last = i == len(groups) - 1
        shown = " %in% ".join(group.split(":"))
        out.append(f" Formula: ~{lhs} | {shown}")
        out += _group_lines(varcorr, group, last)
        if not last:
            out.append("")
    return out


def _group_lines(varcorr: pd.DataFrame, group: str, with_residual: bool) -> list[str]:
    sds = varcorr[varcorr["term2"].isna()]
    terms = sds[sds["group"] == group]
    resid = sds[sds["group"] == "Residual"]
    names = [str(t) for t in terms["term1"]]
    values = [float(v) for v in terms["sd"]]
    if with_residual and len(resid):
        names.append("Residual")
        values.append(float(resid["sd"].iloc[0]))
    k = len(terms)
    if k == 1:
        # nlme prints this row as a matrix: each number formatted alone, each column as wide
        # as its name or number
        text = [r_format([v], DIGITS)[0] for v in values]
        widths = [max(len(n), len(t)) for n, t in zip(names, text, strict=True)]
        return ["        " + " ".join(n.rjust(w) for n, w in zip(names, widths, strict=True)),
                "StdDev: " + " ".join(t.rjust(w) for t, w in zip(text, widths, strict=True))]
    sd_text = r_format(values, DIGITS)
    cors = varcorr[varcorr["term2"].notna() & (varcorr["group"] == group)]
    rows = []
    for i, name in enumerate(names):
        cells = [name, sd_text[i]]
        if i == 0:
            cells.append(_abbreviate(names[0]))
        elif i < k:
            for j in range(i):
                match = cors[((cors["term1"] == names[j]) & (cors["term2"] == name))
                             | ((cors["term1"] == name) & (cors["term2"] == names[j]))]
                cells.append(f"{float(match['corr'].iloc[0]):.3f}" if len(match) else "")
        rows.append(cells)
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    header = ["", "StdDev", "Corr"] + [""] * (width - 3)
    return ([" Structure: General positive-definite, Log-Cholesky parametrization"]
            + _layout(header, rows, "l" * width))


@public_methods
@dataclass(frozen=True)
class NlmeSummary:
    """A summary in nlme's layout; ``str()`` prints it.

    Attributes
    ----------
    title : str
        e.g. "Linear mixed-effects model fit by REML".
    aic, bic, loglik : float
    tTable : pandas.DataFrame
        Value, Std.Error, DF (lme; gls has none), t-value, p-value.
    corFixed : pandas.DataFrame
        Correlation of the fixed-effects estimates.
    residual_quantiles : pandas.Series
        Min, Q1, Med, Q3, Max of the standardized (Pearson) within-group residuals.
    nobs : int
    ngroups : dict
    sigma : float
    """

    title: str
    formula: str
    aic: float
    bic: float
    loglik: float
    tTable: pd.DataFrame
    corFixed: pd.DataFrame
    residual_quantiles: pd.Series
    nobs: int
    sigma: float
    ngroups: dict[str, int] = field(default_factory=dict)
    random_lines: list[str] = field(default_factory=list, repr=False)
    structure_lines: list[str] = field(default_factory=list, repr=False)
    mixed: bool = True
    model: str | None = None  # a nonlinear model's "Model:" line

    def __str__(self) -> str:
        lines = [self.title]
        if not self.mixed or self.model is not None:
            lines.append(f"  Model: {self.model if self.model is not None else self.formula} ")
        ic = r_format([self.aic], DIGITS) + r_format([self.bic], DIGITS) + \
            r_format([self.loglik], DIGITS)
        lines += _layout(["AIC", "BIC", "logLik"], [ic], "rrr", lead="  ")
        lines.append("")
        if self.random_lines:
            lines += self.random_lines + [""]
        lines += self.structure_lines
        if self.mixed:
            lines.append(f"Fixed effects:  {self.formula} ")
        else:
            lines += ([""] if self.structure_lines else []) + ["Coefficients:"]
        lines += self._table_lines()
        lines += self._correlation_lines()
        lines += ["", "Standardized Within-Group Residuals:" if self.mixed
                  else "Standardized residuals:"]
        lines += _named_vector(list(self.residual_quantiles.index),
                               r_format(self.residual_quantiles.to_numpy(), DIGITS))
        lines.append("")
        if self.mixed:
            lines.append(f"Number of Observations: {self.nobs}")
            groups = list(self.ngroups.values())
            if len(groups) == 1:
                lines.append(f"Number of Groups: {groups[0]} ")
            else:
                lines.append("Number of Groups: ")
                lines += _named_vector([" %in% ".join(g.split(":")) for g in self.ngroups],
                                       [str(g) for g in groups])
        else:
            p = len(self.tTable)
            lines += [f"Residual standard error: {r_format([self.sigma], DIGITS)[0]} ",
                      f"Degrees of freedom: {self.nobs} total; {self.nobs - p} residual"]
        return "\n".join(lines)

    def _table_lines(self) -> list[str]:
        t = self.tTable
        cols = {}
        for name in t.columns:
            x = t[name].to_numpy(dtype=float)
            if name == "p-value":
                cols[name] = r_format(np.round(x, 4), DIGITS)
            elif name == "DF":
                cols[name] = [str(int(v)) for v in x]
            else:
                cols[name] = r_format(_zapsmall(x), DIGITS)
        rows = [[str(n), *(cols[c][i] for c in t.columns)] for i, n in enumerate(t.index)]
        return _layout(["", *t.columns], rows, "l" + "r" * len(t.columns))

    def _correlation_lines(self) -> list[str]:
        C = self.corFixed.to_numpy()
        p = C.shape[0]
        if p < 2:
            return []
        names = list(self.corFixed.index)
        # nlme's print.correlation: the whole matrix rounded to 3 decimals and formatted
        # together (R's format: common decimals and width), the lower triangle shown, the
        # columns left-aligned
        text = np.array(r_format(np.round(C, 3).ravel(), DIGITS)).reshape(p, p)
        cols = [_abbreviate(n) for n in names[: p - 1]]
        rows = [[names[i]] + [str(text[i, j]) for j in range(i)] + [""] * (p - 1 - i)
                for i in range(1, p)]
        title = [" Correlation: "] if self.mixed else ["", " Correlation: "]
        return title + _layout([""] + cols, rows, "l" * p)


def _zapsmall(x: np.ndarray, digits: int = DIGITS) -> np.ndarray:
    """R's ``zapsmall``: rounded to ``digits`` significant digits of the largest entry (R
    rounds the number of decimals, digits - log10(max), to the nearest whole number)."""
    finite = np.abs(x[np.isfinite(x)])
    mx = float(finite.max()) if finite.size else 0.0
    decimals = digits if mx <= 0 else max(0, int(math.floor(digits - math.log10(mx) + 0.5)))
    return np.round(x, decimals)


def residual_quantiles(pearson: np.ndarray) -> pd.Series:
    """Min, Q1, Med, Q3, Max (R's default quantile type 7)."""
    q = np.quantile(np.asarray(pearson, dtype=float), [0, 0.25, 0.5, 0.75, 1.0])
    return pd.Series(q, index=["Min", "Q1", "Med", "Q3", "Max"])


def fixed_correlation(vcov: pd.DataFrame) -> pd.DataFrame:
    """The correlation matrix of the fixed-effects estimates."""
    V = vcov.to_numpy()
    sd = np.sqrt(np.diag(V))
    return pd.DataFrame(V / np.outer(sd, sd), index=vcov.index, columns=vcov.columns)


def t_table(coef_table: pd.DataFrame, with_df: bool) -> pd.DataFrame:
    """nlme's tTable from a coef_table (estimate, std_error, df, statistic, p_value)."""
    out = pd.DataFrame({"Value": coef_table["estimate"],
                        "Std.Error": coef_table["std_error"]}, index=coef_table.index)
    if with_df:
        out["DF"] = coef_table["df"]
    out["t-value"] = coef_table["statistic"]
    out["p-value"] = coef_table["p_value"]
    return out
