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


def _decimals_needed(x: float, digits: int) -> int:
    """Decimals R's ``format`` needs to show ``x`` with ``digits`` significant digits, with
    trailing zeros dropped (0.5 needs 1, 35.0717 needs 2 at 4 digits)."""
    if x == 0 or not math.isfinite(x):
        return 0
    e = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    target = round(x, e)
    while e > 0 and round(x, e - 1) == target:
        e -= 1
    return e


def r_format(values: list[float], digits: int = DIGITS) -> list[str]:
    """Format numbers together as R's ``format(x, digits = digits)``: one number of decimals,
    the most any element needs, right-aligned to a common width."""
    decimals = max((_decimals_needed(v, digits) for v in values), default=0)
    text = [f"{v:.{decimals}f}" if math.isfinite(v) else ("NaN" if math.isnan(v) else
                                                          ("Inf" if v > 0 else "-Inf"))
            for v in values]
    width = max((len(t) for t in text), default=0)
    return [t.rjust(width) for t in text]


def _sig(x: float, digits: int = DIGITS) -> str:
    return r_format([x], digits)[0]


def _layout(header: list[str], rows: list[list[str]], align: str, lead: str = "") -> list[str]:
    """Columns separated by one space; ``align`` has one letter per column, "l" or "r"."""
    table = [header] + rows
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    out = []
    for r in table:
        cells = [c.ljust(w) if a == "l" else c.rjust(w)
                 for c, w, a in zip(r, widths, align, strict=True)]
        out.append(lead + " ".join(cells))
    return out


def _named_vector(names: list[str], values: list[str]) -> list[str]:
    """A named vector as R prints it: one common width, names right-aligned over the values,
    a trailing space."""
    width = max(len(t) for t in [*names, *values])
    return [" ".join(n.rjust(width) for n in names) + " ",
            " ".join(v.rjust(width) for v in values) + " "]


def _random_effects_lines(fit: LinearMixedModelResult) -> list[str]:
    vc = fit.varcorr
    layout = fit.model.layout
    covs = term_covariances(layout, fit.theta, fit.sigma)
    names = unique_group_names(layout)
    rows: list[list[str]] = []
    var_strings = r_format(list(vc.loc[vc["term2"].isna(), "variance"].astype(float)))
    sd_strings = r_format(list(vc.loc[vc["term2"].isna(), "sd"].astype(float)))
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
    return _layout(header, rows, "l" * len(header), lead=" ")


def _fixed_lines(fit: LinearMixedModelResult) -> list[str]:
    """R's ``printCoefmat``: estimates and standard errors rounded together to
    ``digits - floor(log10(largest)) - 1`` decimals, t values to 3 decimals, then formatted."""
    ct = fit.coef_table(ddf=None)
    est_se = np.abs(np.concatenate([ct["estimate"], ct["std_error"]]))
    est_se = est_se[np.isfinite(est_se) & (est_se > 0)]
    digmin = 1 + np.floor(np.log10([est_se.min(), est_se.max()])) if est_se.size else [0, 0]
    decimals = int(max(1, DIGITS - digmin[0], DIGITS - digmin[1]))
    both = r_format([round(v, decimals) for v in [*ct["estimate"], *ct["std_error"]]])
    p = len(ct)
    tv = r_format([round(v, 3) for v in ct["statistic"]])
    rows = [[n, e, s, t] for n, e, s, t in zip(ct.index, both[:p], both[p:], tv, strict=True)]
    return _layout(["", "Estimate", "Std. Error", "t value"], rows, "lrrr")


def _correlation_lines(fit: LinearMixedModelResult) -> list[str]:
    p = len(fit.beta)
    if p < 2:
        return []
    V = fit.vcov.to_numpy()
    sd = np.sqrt(np.diag(V))
    C = V / np.outer(sd, sd)
    # lme4 abbreviates the row names to 11 characters and the column names to 6
    cols = [_abbreviate(n) for n in fit.fixed_names[: p - 1]]
    rows = [[_abbreviate(fit.fixed_names[i], 11)]
            + [f"{C[i, j]:.3f}" for j in range(i)] + [""] * (p - 1 - i) for i in range(1, p)]
    return ["Correlation of Fixed Effects:"] + _layout([""] + cols, rows, "l" + "r" * (p - 1))


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
        lines += _named_vector(["AIC", "BIC", "logLik", "deviance", "df.resid"],
                               [f"{fit.aic:.1f}", f"{fit.bic:.1f}", f"{fit.loglik:.1f}",
                                f"{fit.objective:.1f}", str(fit.df_resid)])
    lines.append("")
    q = np.quantile(fit.residuals("pearson", scaled=True), [0, 0.25, 0.5, 0.75, 1])
    lines.append("Scaled residuals: ")
    # lme4 zaps the quantiles to digits + 1 significant digits of the largest before printing
    mx = float(np.max(np.abs(q)))
    q = np.round(q, max(0, DIGITS + 1 - round(math.log10(mx)))) if mx > 0 else q
    lines += _named_vector(["Min", "1Q", "Median", "3Q", "Max"], r_format(list(q)))
    lines.append("")
    lines.append("Random effects:")
    lines += _random_effects_lines(fit)
    groups = "; ".join(f"{k}, {v}" for k, v in fit.ngroups.items())
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
            + "<p>Fixed effects</p>" + _html_table(fit.coef_table(ddf=None)) + msgs)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def to_dict(fit: LinearMixedModelResult) -> dict[str, Any]:
    """JSON-ready dictionary: estimates, variance components, fit statistics, optimizer."""
    ct = fit.coef_table(ddf=None)
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
