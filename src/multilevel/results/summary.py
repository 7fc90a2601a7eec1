"""Text, HTML and JSON reports of a linear mixed-model fit, in lme4's layout."""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from multilevel.results.varcorr import term_covariances, unique_group_names

if TYPE_CHECKING:
    from multilevel.results.lmm_result import LinearMixedModelResult

DIGITS = 4  # lme4 prints with max(3, getOption("digits") - 3) significant digits


def _sig(x: float, digits: int = DIGITS) -> str:
    if not np.isfinite(x):
        return "NaN" if np.isnan(x) else ("Inf" if x > 0 else "-Inf")
    if x == 0:
        return "0"
    decimals = max(0, digits - 1 - int(math.floor(math.log10(abs(x)))))
    return f"{x:.{decimals}f}"


def _column(values: list[float], digits: int = DIGITS) -> list[str]:
    """Format a column with a common number of decimals, as R's ``format`` does."""
    finite = [abs(v) for v in values if np.isfinite(v) and v != 0]
    if not finite:
        return [_sig(v, digits) for v in values]
    # enough decimals for the smallest magnitude to show `digits` significant digits
    decimals = max(0, digits - 1 - int(math.floor(math.log10(min(finite)))))
    decimals = min(decimals, max(0, digits - 1 - int(math.floor(math.log10(max(finite))))) + 3)
    return [f"{v:.{decimals}f}" if np.isfinite(v) else _sig(v) for v in values]


def _table(header: list[str], rows: list[list[str]], left: int = 0) -> list[str]:
    """Right-aligned columns, the first ``left`` columns left-aligned."""
    cols = list(zip(*([header] + rows), strict=True)) if rows else [[h] for h in header]
    widths = [max(len(c) for c in col) for col in cols]
    out = []
    for r in [header] + rows:
        cells = [c.ljust(w) if i < left else c.rjust(w)
                 for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        out.append(" " + " ".join(cells).rstrip())
    return out


def _random_effects_lines(fit: LinearMixedModelResult) -> list[str]:
    vc = fit.varcorr
    layout = fit.model.layout
    covs = term_covariances(layout, fit.theta, fit.sigma)
    names = unique_group_names(layout)
    rows: list[list[str]] = []
    var_strings = _column(list(vc.loc[vc["term2"].isna(), "variance"].astype(float)))
    sd_strings = _column(list(vc.loc[vc["term2"].isna(), "sd"].astype(float)))
    max_k = max(t.k for t in layout.terms)
    idx = 0
    for name, term, cov in zip(names, layout.terms, covs, strict=True):
        sd = np.sqrt(np.diag(cov))
        for a, col in enumerate(term.columns):
            corr = []
            for b in range(a):
                d = sd[a] * sd[b]
                corr.append(f"{cov[a, b] / d:.2f}" if d > 0 else "NaN")
            corr += [""] * (max_k - 1 - len(corr))
            rows.append([name if a == 0 else "", col, var_strings[idx], sd_strings[idx]]
                        + (corr if max_k > 1 else []))
            idx += 1
    rows.append(["Residual", "", var_strings[idx], sd_strings[idx]]
                + ([""] * (max_k - 1) if max_k > 1 else []))
    header = ["Groups", "Name", "Variance", "Std.Dev."] + (
        ["Corr"] + [""] * (max_k - 2) if max_k > 1 else [])
    return _table(header, rows, left=2)


def _fixed_lines(fit: LinearMixedModelResult) -> list[str]:
    ct = fit.coef_table()
    est = _column(list(ct["estimate"]))
    se = _column(list(ct["std_error"]))
    tv = [f"{v:.2f}" for v in ct["statistic"]]
    rows = [[n, e, s, t] for n, e, s, t in zip(ct.index, est, se, tv, strict=True)]
    return _table(["", "Estimate", "Std. Error", "t value"], rows, left=1)


def _correlation_lines(fit: LinearMixedModelResult) -> list[str]:
    p = len(fit.beta)
    if p < 2:
        return []
    V = fit.vcov.to_numpy()
    sd = np.sqrt(np.diag(V))
    C = V / np.outer(sd, sd)
    # lme4 abbreviates the row names to 11 characters and the column names to 6
    abbrev = [_abbreviate(n) for n in fit.fixed_names]
    rows = [[_abbreviate(fit.fixed_names[i], 11)] + [f"{C[i, j]:.3f}" for j in range(i)]
            for i in range(1, p)]
    return ["Correlation of Fixed Effects:"] + _table([""] + abbrev[: p - 1], rows, left=1)


def _abbreviate(name: str, width: int = 6) -> str:
    """R's ``abbreviate(name, minlength = width)``: drop lower-case vowels from the right,
    then other lower-case letters from the right (never the first character), then
    truncate -- "(Intercept)" becomes "(Intr)"."""
    chars = list(name.replace(" ", ""))
    for drop in ("aeiou", "abcdefghijklmnopqrstuvwxyz"):
        i = len(chars) - 1
        while len(chars) > width and i > 0:
            if chars[i] in drop:
                del chars[i]
            i -= 1
    return "".join(chars[:width]) if len(chars) > width else "".join(chars)


def format_summary(fit: LinearMixedModelResult) -> str:
    """The printed report: criterion, formula, scaled residuals, random effects, sizes, fixed
    effects, their correlations and messages, laid out as lme4's ``summary(fit)``."""
    kind = "REML" if fit.reml else "maximum likelihood"
    lines = [f"Linear mixed model fit by {kind}",
             f"Formula: {fit.model.design.formula.text}"]
    if fit.model.design.weights is not None:
        lines.append(" Weights: given")
    if fit.model.design.offset is not None:
        lines.append(" Offset: given")
    lines.append("")
    if fit.reml:
        lines.append(f"REML criterion at convergence: {fit.objective:.1f}")
    else:
        lines += _table(["AIC", "BIC", "logLik", "deviance", "df.resid"],
                        [[f"{fit.aic:.1f}", f"{fit.bic:.1f}", f"{fit.loglik:.1f}",
                          f"{fit.objective:.1f}", str(fit.df_resid)]])
    lines.append("")
    q = np.quantile(fit.residuals("pearson", scaled=True), [0, 0.25, 0.5, 0.75, 1])
    lines.append("Scaled residuals: ")
    lines += _table(["Min", "1Q", "Median", "3Q", "Max"], [[f"{v:.4f}" for v in q]])
    lines.append("")
    lines.append("Random effects:")
    lines += _random_effects_lines(fit)
    groups = ", ".join(f"{k}, {v}" for k, v in fit.ngroups.items())
    lines.append(f"Number of obs: {fit.nobs}, groups:  {groups}")
    if fit.n_dropped:
        lines.append(f"({fit.n_dropped} observation{'s' if fit.n_dropped > 1 else ''} "
                     "deleted due to missingness)")
    lines.append("")
    lines.append("Fixed effects:")
    lines += _fixed_lines(fit)
    corr = _correlation_lines(fit)
    if corr:
        lines.append("")
        lines += corr
    dropped = fit.model.design.dropped_fixed
    messages = list(fit.optsum.messages)
    if dropped:
        messages.insert(0, f"fixed-effect model matrix is rank deficient so dropping "
                           f"{len(dropped)} column(s): {', '.join(dropped)}")
    if messages:
        lines.append("")
        lines += messages
    return "\n".join(lines) + "\n"


def _html_table(frame: pd.DataFrame) -> str:
    return frame.to_html(float_format=lambda v: _sig(v), na_rep="", border=0)


def format_html(fit: LinearMixedModelResult) -> str:
    """Notebook rendering: the header lines and the two tables as HTML."""
    kind = "REML" if fit.reml else "maximum likelihood"
    head = (f"<p><b>Linear mixed model fit by {kind}</b><br>"
            f"Formula: <code>{html.escape(fit.model.design.formula.text)}</code><br>"
            f"nobs = {fit.nobs}; groups: "
            + html.escape(", ".join(f"{k} ({v})" for k, v in fit.ngroups.items()))
            + f"; logLik = {fit.loglik:.2f}</p>")
    msgs = "".join(f"<p><i>{html.escape(m)}</i></p>" for m in fit.optsum.messages)
    return (head + "<p>Random effects</p>" + _html_table(fit.varcorr)
            + "<p>Fixed effects</p>" + _html_table(fit.coef_table()) + msgs)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def to_dict(fit: LinearMixedModelResult) -> dict[str, Any]:
    """JSON-ready dictionary: estimates, variance components, fit statistics, optimizer."""
    ct = fit.coef_table()
    return {
        "formula": fit.model.design.formula.text,
        "reml": fit.reml,
        "nobs": fit.nobs,
        "n_dropped": fit.n_dropped,
        "ngroups": fit.ngroups,
        "fixef": {k: float(v) for k, v in fit.fixef.items()},
        "coef_table": {name: {c: _clean(float(row[c])) for c in ct.columns}
                       for name, row in ct.iterrows()},
        "vcov": fit.vcov.to_numpy().tolist(),
        "varcorr": [{k: _clean(v) for k, v in r.items()}
                    for r in fit.varcorr.to_dict(orient="records")],
        "theta": dict(zip(fit.theta_names, map(float, fit.theta), strict=True)),
        "sigma": fit.sigma,
        "loglik": fit.loglik,
        "objective": fit.objective,
        "aic": fit.aic,
        "bic": fit.bic,
        "df_resid": fit.df_resid,
        "is_singular": fit.is_singular,
        "converged": fit.converged,
        "dropped_fixed": list(fit.model.design.dropped_fixed),
        "optsum": {k: v for k, v in fit.optsum.to_dict().items() if k != "fitlog"},
    }
