"""brms's ``summary()`` layout for Bayesian fits (text and HTML)."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from multilevel.bayesian.result import BayesResult

_COLUMNS = ["Estimate", "Est.Error", "l-95% CI", "u-95% CI", "Rhat", "Bulk_ESS", "Tail_ESS"]
_FOOTER = ("Draws were sampled using NUTS (numpyro). For each parameter, Bulk_ESS\n"
           "and Tail_ESS are effective sample size measures, and Rhat is the potential\n"
           "scale reduction factor on split chains (at convergence, Rhat = 1).")


def _rows(result: BayesResult, variables: list[tuple[str, str]]) -> pd.DataFrame:
    s = result.posterior_summary()
    out = pd.DataFrame(
        [[s.loc[v, "estimate"], s.loc[v, "std_error"], s.loc[v, "ci_lower"],
          s.loc[v, "ci_upper"], s.loc[v, "rhat"], s.loc[v, "ess_bulk"], s.loc[v, "ess_tail"]]
         for _, v in variables],
        index=[label for label, _ in variables], columns=_COLUMNS)
    return out


def _format(table: pd.DataFrame) -> str:
    def cell(col: str, x: float) -> str:
        if not np.isfinite(x):
            return "NA"
        if col in ("Bulk_ESS", "Tail_ESS"):
            return f"{x:.0f}"
        return f"{x:.2f}"
    cells = [[cell(str(c), float(v)) for c, v in row.items()] for _, row in table.iterrows()]
    labels = [str(i) for i in table.index]
    lw = max(len(x) for x in labels)
    widths = [max(len(c), *(len(r[j]) for r in cells)) for j, c in enumerate(table.columns)]
    lines = [" " * lw + " " + " ".join(c.rjust(w) for c, w in zip(table.columns, widths,
                                                                  strict=True))]
    for label, row in zip(labels, cells, strict=True):
        lines.append(label.ljust(lw) + " " + " ".join(v.rjust(w) for v, w in
                                                     zip(row, widths, strict=True)))
    return "\n".join(lines)


def sections(result: BayesResult) -> list[tuple[str, pd.DataFrame]]:
    """The summary's tables: (title, table) for each grouping factor, the population-level
    effects and the family-specific parameters."""
    model = result.model
    out: list[tuple[str, pd.DataFrame]] = []
    groups: dict[str, list[tuple[str, str]]] = {}
    for block in model.blocks:
        rows = groups.setdefault(block.group, [])
        for t in range(block.k):
            rows.append((f"sd({block.term_label(t)})", block.sd_variable(block.terms[t])))
        for a in range(block.k):
            for b in range(a + 1, block.k):
                rows.append((f"cor({block.term_label(a)},{block.term_label(b)})",
                             block.cor_variable(block.terms[a], block.terms[b])))
    for group, rows in sorted(groups.items()):  # brms lists grouping factors by name
        n = result.ngroups[group]
        out.append((f"~{group} (Number of levels: {n})", _rows(result, rows)))
    fixed = [(v[2:], v) for _, v in result.model.fixed_variables()]
    out.append(("Population-Level Effects:", _rows(result, fixed)))
    if model.family.extra is not None:
        out.append(("Family Specific Parameters:",
                    _rows(result, [(model.family.extra, model.family.extra)])))
    return out


def _header(result: BayesResult) -> list[str]:
    model = result.model
    fam = model.family
    links = f"mu = {fam.link}"
    if fam.extra is not None:
        links += f"; {fam.extra} = identity"
    s = result.settings
    data = result.data_name or "data"
    lines = [f" Family: {fam.name}", f"  Links: {links}"]
    if model.nonlinear is None:
        lines.append(f"Formula: {model.formula}")
    else:
        lines.append(f"Formula: {model.formula}")
        for part in model.parts:
            lines.append(f"         {part.nlpar} ~ {part.formula}")
    lines += [f"   Data: {data} (Number of observations: {model.nobs})",
              f"  Draws: {s.chains} chains, each with iter = {s.warmup + s.draws * s.thin}; "
              f"warmup = {s.warmup}; thin = {s.thin};",
              f"         total post-warmup draws = {result.ndraws}"]
    if model.n_dropped:
        lines.append(f"         ({model.n_dropped} rows with missing values dropped)")
    return lines


def summary_text(result: BayesResult) -> str:
    """The text of ``summary()``."""
    lines = _header(result) + [""]
    groups = [(t, tab) for t, tab in sections(result) if t.startswith("~")]
    if groups:
        lines.append("Group-Level Effects: ")
        for title, table in groups:
            lines += [title, _format(table), ""]
    for title, table in sections(result):
        if title.startswith("~"):
            continue
        lines += [title, _format(table), ""]
    lines.append(_FOOTER)
    msgs = result.diagnostics.messages
    if msgs:
        lines.append("")
        lines += [f"Warning: {m}" for m in msgs]
    return "\n".join(lines)


def summary_html(result: BayesResult) -> str:
    """The summary as HTML (notebooks)."""
    parts = ["<div class='multilevel-bayes'><pre>"
             + html.escape("\n".join(_header(result))) + "</pre>"]
    for title, table in sections(result):
        parts.append(f"<h4>{html.escape(title)}</h4>")
        parts.append(table.to_html(float_format=lambda x: f"{x:.2f}", na_rep="NA"))
    for m in result.diagnostics.messages:
        parts.append(f"<p><b>Warning:</b> {html.escape(m)}</p>")
    parts.append("</div>")
    return "\n".join(parts)
