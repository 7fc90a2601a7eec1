"""Text, HTML and JSON reports of a linear mixed-model fit, in lme4's and lmerTest's layouts."""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from multilevel.errors import NumericalError
from multilevel.results.varcorr import term_covariances, unique_group_names

if TYPE_CHECKING:
    from multilevel.results.base import MixedModelResult
    from multilevel.results.glmm_result import GeneralizedLinearMixedModelResult
    from multilevel.results.lmm_result import LinearMixedModelResult

DIGITS = 4  # lme4 prints with max(3, getOption("digits") - 3) significant digits


def _scientific(x: float, digits: int) -> tuple[int, int, bool]:
    """R's ``scientific()``: the power of ten of ``|x|`` rounded to ``digits`` significant
    digits, the significant digits it really needs (trailing zeros dropped), and whether the
    rounding carried into the next power (99.99 at 3 digits is 1.00e+02)."""
    if x == 0:
        return 0, 1, False
    mantissa, exponent = f"{abs(x):.{digits - 1}e}".split("e")
    kpower = int(exponent)
    nsig = max(1, len(mantissa.replace(".", "").rstrip("0")))
    widens = 0 < kpower <= 22 and abs(x) < 10.0**kpower
    return kpower, nsig, widens


def _special(x: float) -> str:
    return "NaN" if math.isnan(x) else ("Inf" if x > 0 else "-Inf")


def r_format(values: list[float] | np.ndarray, digits: int = DIGITS) -> list[str]:
    """Format numbers together as R's ``format(x, digits = digits)`` (its ``formatReal``): one
    notation for all, fixed unless scientific is narrower; in fixed notation the decimals the
    element needing most has at ``digits`` significant digits, in scientific the mantissa
    digits likewise; right-aligned to a common width."""
    vals = [float(v) for v in values]
    finite = [v for v in vals if math.isfinite(v)]
    if not finite:
        text = [_special(v) for v in vals]
    else:
        neg = any(v < 0 for v in finite)
        rgt = mxsl = mxns = mxe = -(10**9)
        mne = 10**9
        mxl = -(10**9)
        for v in finite:
            kpower, nsig, widens = _scientific(v, digits)
            left = kpower + 1 - (1 if widens else 0)
            sleft = (v < 0) + (1 if left <= 0 else left)
            rgt = max(rgt, nsig - left)
            mxl = max(mxl, left)
            mxsl = max(mxsl, sleft)
            mxns = max(mxns, nsig)
            mxe = max(mxe, kpower)
            mne = min(mne, kpower)
        if mxl < 0:
            mxsl = 1 + neg
        rgt = max(rgt, 0)
        fixed_width = mxsl + rgt + (rgt != 0)
        exp_digits = 2 if (mxe >= 100 or mne <= -99) else 1
        mantissa = mxns - 1
        sci_width = neg + (mantissa > 0) + mantissa + 4 + exp_digits
        if fixed_width <= sci_width:  # R's default scipen = 0
            text = [f"{v:.{rgt}f}" if math.isfinite(v) else _special(v) for v in vals]
        else:
            text = [f"{v:.{mantissa}e}" if math.isfinite(v) else _special(v) for v in vals]
    width = max((len(t) for t in text), default=0)
    return [t.rjust(width) for t in text]


EPS_PVALUE = float(np.finfo(float).eps)  # printCoefmat's eps.Pvalue = .Machine$double.eps


def format_pvalues(pv: list[float], digits: int = 3, eps: float = EPS_PVALUE) -> list[str]:
    """R's ``format.pval``: p-values from 1e-3 up in fixed notation, smaller ones formatted
    together (scientific when narrower), those below ``eps`` as ``< 2e-16``."""
    out = [""] * len(pv)
    tiny = [i for i, p in enumerate(pv) if p < eps]
    rest = [i for i, p in enumerate(pv) if not p < eps]
    fixp = [i for i in rest if pv[i] == 0 or math.floor(math.log10(pv[i])) >= -3]
    sci = [i for i in rest if i not in fixp]
    for group in (fixp, sci):
        for i, t in zip(group, r_format([pv[i] for i in group], digits), strict=True):
            out[i] = t
    if tiny:
        d = max(1, digits - 2)
        if rest:
            nc = max(len(out[i]) for i in rest)
            if d > 1 and d + 6 > nc:
                d = max(1, nc - 7)
            sep = "" if d == 1 and nc <= 6 else " "
        else:
            sep = "" if d == 1 else " "
        for i in tiny:
            out[i] = "<" + sep + r_format([eps], d)[0]
    return out


SIGNIF_LEGEND = "Signif. codes:  0 \u2018***\u2019 0.001 \u2018**\u2019 0.01 \u2018*\u2019 0.05 " \
    "\u2018.\u2019 0.1 \u2018 \u2019 1"


def _stars(p: float) -> str:
    if not math.isfinite(p):
        return ""
    return next(s for cut, s in ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, "."),
                                 (math.inf, " ")) if p <= cut)


def coefmat_lines(table: pd.DataFrame, cs_ind: list[int], tst_ind: int, has_p: bool,
                  digits: int = DIGITS) -> list[str]:
    """R's ``printCoefmat`` as lme4's summary calls it: the ``cs_ind``
    columns (estimate, standard error and, in lmerTest's table, df) rounded together to
    ``digits`` minus the digits before the point, the test statistic to ``digits - 1``
    decimals, the p-values by :func:`format_pvalues` with significance stars and their
    legend."""
    xm = table.to_numpy(dtype=float).copy()
    nrow, nc = xm.shape
    dig_tst = max(1, min(5, digits - 1))
    cells = [["" for _ in range(nc)] for _ in range(nrow)]
    cs = xm[:, cs_ind]
    acs = np.abs(cs[np.isfinite(cs) & (cs != 0)])
    digmin = 1 + (np.floor(np.log10([acs.min(), acs.max()])) if acs.size else np.zeros(2))
    decimals = int(max(1, digits - digmin[0], digits - digmin[1]))
    flat = r_format(np.round(cs, decimals).T.ravel(), digits)
    for j, col in enumerate(cs_ind):
        for i in range(nrow):
            cells[i][col] = flat[j * nrow + i]
    for i, t in enumerate(r_format(np.round(xm[:, tst_ind], dig_tst), digits)):
        cells[i][tst_ind] = t
    # an entry that is not zero but was rounded to print as zero is shown with fewer digits
    fix = [(i, j) for i in range(nrow) for j in cs_ind
           if math.isfinite(xm[i, j]) and (xm[i, j] == 0) != (float(cells[i][j]) == 0)]
    if fix:
        for (i, j), t in zip(fix, r_format([xm[i, j] for i, j in fix], max(1, digits - 1)),
                             strict=True):
            cells[i][j] = t
    header = ["", *table.columns]
    legend: list[str] = []
    if has_p:
        pv = [float(p) for p in xm[:, nc - 1]]
        ok = [i for i, p in enumerate(pv) if not math.isnan(p)]
        for i, t in zip(ok, format_pvalues([pv[i] for i in ok], dig_tst), strict=True):
            cells[i][nc - 1] = t
        if any(pv[i] < 0.1 for i in ok):
            stars = [_stars(p) for p in pv]
            width = max(len(s) for s in stars)
            for row, s in zip(cells, stars, strict=True):
                row.append(s.ljust(width))
            header.append("")
            legend = ["---", SIGNIF_LEGEND]
    rows = [[str(name), *row] for name, row in zip(table.index, cells, strict=True)]
    return _layout(header, rows, "l" + "r" * (len(header) - 1)) + legend


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


def _random_effects_lines(fit: MixedModelResult) -> list[str]:
    vc = fit.varcorr
    layout = fit.model.layout
    covs = term_covariances(layout, fit.theta, fit._re_scale)
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
    if idx < len(var_strings):  # the residual row (models with a residual scale)
        rows.append(["Residual", "", var_strings[idx], sd_strings[idx]]
                    + ([""] * (max_k - 1) if max_k > 1 else []))
    header = ["Groups", "Name", "Variance", "Std.Dev."] + (
        ["Corr"] + [""] * (max_k - 2) if max_k > 1 else [])
    return _layout(header, rows, "l" * len(header), lead=" ")


# How the summary's header names each denominator-df method; lmerTest's own methods carry
# lmerTest's class tag, as its printout does.
DDF_TITLES = {
    "satterthwaite": "Satterthwaite's method [lmerModLmerTest]",
    "kenward-roger": "Kenward-Roger's method [lmerModLmerTest]",
    "between-within": "between-within (containment) degrees of freedom",
    "residual": "residual degrees of freedom (n - p)",
}


def ddf_key(ddf: str) -> str:
    """The registry name of a ddf method as users may spell it ("Kenward_Roger")."""
    return ddf.lower().replace("_", "-")


def tests_table(fit: LinearMixedModelResult, ddf: str | None,
                ) -> tuple[pd.DataFrame, str | None, str | None]:
    """``(coef_table, ddf used, note)``: the table with ``ddf`` denominator df, or -- when
    those df cannot be computed for this fit (a :class:`NumericalError`, e.g. a degenerate
    fit) -- the table without df and the reason, so that a report still prints (as lmerTest
    falls back to lme4's summary). Bad ``ddf`` values still raise."""
    try:
        return fit.coef_table(ddf=ddf), ddf, None
    except NumericalError as exc:
        return fit.coef_table(ddf=None), None, str(exc)


def _fixed_lines(ct: pd.DataFrame, ddf: str | None) -> list[str]:
    """The fixed-effects table ``ct`` through R's ``printCoefmat``: lme4's three columns
    without a ddf method, lmerTest's five (with df and p-value) with one."""
    if ddf is None:
        table = ct[["estimate", "std_error", "statistic"]].set_axis(
            ["Estimate", "Std. Error", "t value"], axis=1)
        return coefmat_lines(table, cs_ind=[0, 1], tst_ind=2, has_p=False)
    table = ct[["estimate", "std_error", "df", "statistic", "p_value"]].set_axis(
        ["Estimate", "Std. Error", "df", "t value", "Pr(>|t|)"], axis=1)
    return coefmat_lines(table, cs_ind=[0, 1, 2], tst_ind=3, has_p=True)


def _correlation_lines(fit: MixedModelResult) -> list[str]:
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


def format_summary(fit: LinearMixedModelResult, ddf: str | None = "satterthwaite",
                   note: str | None = None) -> str:
    """The printed report: criterion, formula, scaled residuals, random effects, sizes, fixed
    effects, their correlations and messages, laid out as lmerTest's ``summary(fit)`` (t tests
    with ``ddf`` denominator df and p-values) or, with ``ddf=None``, as lme4's (``note``: why,
    printed under the table)."""
    # first, so that a bad ddf fails before any other work
    ct, ddf, failed = tests_table(fit, ddf)
    note = failed or note
    fixed = _fixed_lines(ct, ddf)
    kind = "REML" if fit.reml else "maximum likelihood"
    title = f"Linear mixed model fit by {kind}"
    if ddf is not None:
        title += f". t-tests use {DDF_TITLES.get(ddf_key(ddf), ddf_key(ddf))}"
    lines = [title, f"Formula: {fit.model.design.formula.text}"]
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
    lines += _body_lines(fit, fixed, note)
    return "\n".join(lines) + "\n"


def _body_lines(fit: MixedModelResult, fixed: list[str], note: str | None) -> list[str]:
    """From the scaled residuals to the messages: the part of lme4's summary that every
    model kind shares (``fixed``: the fixed-effects table's lines)."""
    lines: list[str] = []
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
    if fit.n_zero_weight:
        lines.append(f"({fit.n_zero_weight} observation{'s' if fit.n_zero_weight > 1 else ''} "
                     "with prior weight zero left out)")
    lines.append("")
    lines.append("Fixed effects:")
    lines += fixed
    corr = _correlation_lines(fit)
    if corr:
        lines.append("")
        lines += corr
    dropped = fit.model.design.dropped_fixed
    messages = list(fit.optsum.messages) + ([note] if note else [])
    if dropped:
        messages.insert(0, f"fixed-effect model matrix is rank deficient so dropping "
                           f"{len(dropped)} column(s): {', '.join(dropped)}")
    if messages:
        lines.append("")
        lines += messages
    return lines


def z_table_lines(ct: pd.DataFrame) -> list[str]:
    """A coefficient table with z tests through R's ``printCoefmat``, as glmer prints it."""
    table = ct[["estimate", "std_error", "statistic", "p_value"]].set_axis(
        ["Estimate", "Std. Error", "z value", "Pr(>|z|)"], axis=1)
    return coefmat_lines(table, cs_ind=[0, 1], tst_ind=2, has_p=True)


def format_glmm_summary(fit: GeneralizedLinearMixedModelResult) -> str:
    """glmer's printed summary: method and family, fit statistics, scaled (Pearson)
    residuals, random effects (a residual row only for a family with a dispersion), z tests
    of the fixed effects, their correlations and messages."""
    lines = [f"Generalized linear mixed model fit by maximum likelihood ({fit.method_title}) "
             "['glmerMod']",
             f" Family: {fit.family_title}  ( {fit.family.link.name} )",
             f"Formula: {fit.model.design.formula.text}"]
    if fit.model.design.weights is not None and fit.model.design.response_name.startswith(
            "cbind(") is False:
        lines.append(" Weights: given")
    if fit.model.design.offset is not None:
        lines.append(" Offset: given")
    lines.append("")
    lines += _named_vector(["AIC", "BIC", "logLik", "deviance", "df.resid"],
                           [f"{fit.aic:.1f}", f"{fit.bic:.1f}", f"{fit.loglik:.1f}",
                            f"{fit.deviance:.1f}", str(fit.df_resid)])
    lines.append("")
    lines += _body_lines(fit, z_table_lines(fit.coef_table()), None)
    return "\n".join(lines) + "\n"


def _html_table(frame: pd.DataFrame) -> str:
    return frame.to_html(float_format=lambda v: _sig(v), na_rep="", border=0)


def format_html(fit: LinearMixedModelResult, ddf: str | None = "satterthwaite") -> str:
    """Notebook rendering: the header lines and the two tables as HTML (the fixed effects
    with ``ddf`` denominator df and p-values, as :func:`format_summary`)."""
    ct, ddf, note = tests_table(fit, ddf)
    cols = ["estimate", "std_error", "statistic"] if ddf is None else [
        "estimate", "std_error", "df", "statistic", "p_value"]
    kind = "REML" if fit.reml else "maximum likelihood"
    tests = "" if ddf is None else (
        f"; t-tests use {html.escape(DDF_TITLES.get(ddf_key(ddf), ddf_key(ddf)))}")
    head = (f"<p><b>Linear mixed model fit by {kind}</b><br>"
            f"Formula: <code>{html.escape(fit.model.design.formula.text)}</code><br>"
            f"nobs = {fit.nobs}; groups: "
            + html.escape(", ".join(f"{k} ({v})" for k, v in fit.ngroups.items()))
            + f"; logLik = {fit.loglik:.2f}{tests}</p>")
    msgs = "".join(f"<p><i>{html.escape(m)}</i></p>"
                   for m in [*fit.optsum.messages, *([note] if note else [])])
    return (head + "<p>Random effects</p>" + _html_table(fit.varcorr)
            + "<p>Fixed effects</p>" + _html_table(ct[cols]) + msgs)


def format_glmm_html(fit: GeneralizedLinearMixedModelResult) -> str:
    """Notebook rendering of a GLMM: header lines, random effects and the z table as HTML."""
    head = (f"<p><b>Generalized linear mixed model fit by maximum likelihood "
            f"({html.escape(fit.method_title)})</b><br>"
            f"Family: {html.escape(fit.family_title)} ({html.escape(fit.family.link.name)})"
            f"<br>Formula: <code>{html.escape(fit.model.design.formula.text)}</code><br>"
            f"nobs = {fit.nobs}; groups: "
            + html.escape(", ".join(f"{k} ({v})" for k, v in fit.ngroups.items()))
            + f"; logLik = {fit.loglik:.2f}</p>")
    ct = fit.coef_table()[["estimate", "std_error", "statistic", "p_value"]]
    msgs = "".join(f"<p><i>{html.escape(m)}</i></p>" for m in fit.optsum.messages)
    return (head + "<p>Random effects</p>" + _html_table(fit.varcorr)
            + "<p>Fixed effects</p>" + _html_table(ct) + msgs)


def strict_json(value: Any) -> Any:
    """``value`` with every float that JSON cannot hold (NaN, +-Inf) replaced by None, numpy
    scalars and arrays turned into Python numbers and lists, tuples into lists, and keys into
    strings, so that ``json.dumps(..., allow_nan=False)`` succeeds."""
    if isinstance(value, dict):
        return {str(k): strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [strict_json(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    return value if isinstance(value, str) else str(value)


def to_dict(fit: LinearMixedModelResult, ddf: str | None = "satterthwaite") -> dict[str, Any]:
    """JSON-ready dictionary: estimates, the coefficient table (``coef_table(ddf)``'s columns,
    the method named under ``"ddf"``), variance components, fit statistics, optimizer. Floats
    keep full precision; values JSON cannot hold (NaN, Inf: a df of a z test, a missing
    correlation) are None. When the df cannot be computed for this fit, the table has none,
    ``"ddf"`` is None and ``"ddf_note"`` says why."""
    ct, ddf, note = tests_table(fit, ddf)
    return strict_json({
        "formula": fit.model.design.formula.text,
        "reml": fit.reml,
        **_sizes(fit),
        "ddf": None if ddf is None else ddf_key(ddf),
        "ddf_note": note,
        **_estimates(fit, ct),
        "sigma": fit.sigma,
        "loglik": fit.loglik,
        "objective": fit.objective,
        **_fit_statistics(fit),
    })


def _sizes(fit: MixedModelResult) -> dict[str, Any]:
    return {"nobs": fit.nobs, "n_dropped": fit.n_dropped, "n_zero_weight": fit.n_zero_weight,
            "ngroups": fit.ngroups, "fixef": {k: float(v) for k, v in fit.fixef.items()}}


def _estimates(fit: MixedModelResult, ct: pd.DataFrame) -> dict[str, Any]:
    return {"coef_table": {name: {c: float(row[c]) for c in ct.columns}
                           for name, row in ct.iterrows()},
            "vcov": fit.vcov.to_numpy(),
            "varcorr": fit.varcorr.to_dict(orient="records"),
            "theta": dict(zip(fit.theta_names, map(float, fit.theta), strict=True))}


def _fit_statistics(fit: MixedModelResult) -> dict[str, Any]:
    return {"aic": fit.aic, "bic": fit.bic, "df_resid": fit.df_resid,
            "is_singular": fit.is_singular, "converged": fit.converged,
            "dropped_fixed": list(fit.model.design.dropped_fixed),
            "optsum": {k: v for k, v in fit.optsum.to_dict().items() if k != "fitlog"}}


def glmm_to_dict(fit: GeneralizedLinearMixedModelResult) -> dict[str, Any]:
    """JSON-ready dictionary of a GLMM fit (see
    :meth:`~multilevel.results.glmm_result.GeneralizedLinearMixedModelResult.to_dict`)."""
    return strict_json({
        "formula": fit.model.design.formula.text,
        "family": fit.family.name,
        "link": fit.family.link.name,
        "nagq": fit.nagq,
        **_sizes(fit),
        **_estimates(fit, fit.coef_table()),
        "vcov_method": fit.vcov_method,
        "dispersion": fit.dispersion if fit.family.has_dispersion else None,
        "nb_size": fit.nb_size,
        "loglik": fit.loglik,
        "deviance": fit.deviance,
        **_fit_statistics(fit),
    })
