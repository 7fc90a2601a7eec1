"""The report as one HTML5 page: no scripts, no external resources (the style sheet is inline,
the figures are data URIs, the favicon is an empty data URI so that a browser asks for none).

Every number in a table cell also carries its full-precision value in ``data-value``, so that
a reader (or a test) can take the exact number while the cell shows a rounded one.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from typing import Any

import pandas as pd

from multilevel.report.facts import FitFacts
from multilevel.report.figures import Figure
from multilevel.report.notes import Note

# The sections, in page order: (element id, heading). Tests and the browser check read this.
SECTIONS = [("model", "Model"), ("notes", "Notes"), ("coefficients", "Fixed effects"),
            ("variance-components", "Variance components and ICC"),
            ("fit-statistics", "Fit statistics"), ("plots", "Diagnostic plots"),
            ("summary", "Printed summary")]

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto;
       max-width: 60em; padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { padding: 0.2em 0.7em; text-align: right; border-bottom: 1px solid #e4e4e4; }
th:first-child, td:first-child, td.text { text-align: left; }
thead th { border-bottom: 2px solid #888; }
caption { caption-side: bottom; text-align: left; font-size: 0.85em; color: #555;
          padding-top: 0.3em; }
dl.call { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dl.call dt { font-weight: 600; }
dl.call dd { margin: 0; font-family: ui-monospace, Menlo, Consolas, monospace; }
ul.notes { padding-left: 1.2em; }
li.warning { color: #8a1c00; }
li.warning::marker { content: "\\26A0  "; }
li.ok::marker { content: "\\2713  "; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; }
figcaption { font-size: 0.85em; color: #555; }
p.missing { font-style: italic; color: #555; }
footer { margin-top: 2em; font-size: 0.8em; color: #777; }
"""

EPSILON = 2.220446049250313e-16  # double precision; R's format.pval cut-off

COLUMN_LABELS = {"estimate": "Estimate", "std_error": "Std. error", "statistic": "t value",
                 "df": "df", "p_value": "p", "ci_lower": "95 % CI lower",
                 "ci_upper": "95 % CI upper", "rhat": "R-hat", "ess_bulk": "Bulk ESS",
                 "ess_tail": "Tail ESS"}


def number(value: Any) -> str:
    """A number for a table cell: four decimals, or four significant digits in scientific
    notation when it is very small or very large; whole numbers as they are."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            value = float(value)
        except (TypeError, ValueError):
            return html.escape(str(value))
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return ""
    if math.isinf(value):
        return "\u221e" if value > 0 else "-\u221e"
    if value.is_integer() and abs(value) < 1e7:  # df of nlme and gls, counts
        return f"{value:.0f}"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e7):
        return f"{value:.4g}"
    return f"{value:.4f}"


def p_value(value: Any) -> str:
    """A p-value as R prints it: below the machine epsilon (where it is no longer accurate)
    as '< 2.2e-16', small ones in scientific notation."""
    v = float(value)
    if math.isnan(v):
        return ""
    return "&lt; 2.2e-16" if v < EPSILON else (f"{v:.3g}" if v < 1e-3 else f"{v:.4f}")


def whole(value: Any) -> str:
    """A count estimated as a real number (effective sample sizes), rounded."""
    return f"{float(value):.0f}"


FORMATTERS = {"p_value": p_value, "ess_bulk": whole, "ess_tail": whole}


def _cell(value: Any, formatter: Any = number) -> str:
    try:
        exact = float(value)
    except (TypeError, ValueError):
        return f"<td>{html.escape(str(value))}</td>"
    if math.isnan(exact):
        return "<td></td>"
    return f'<td data-value="{exact!r}">{formatter(value)}</td>'


def _table(header: list[str], rows: Iterable[str], caption: str = "",
           table_id: str = "") -> str:
    head = "".join(f'<th scope="col">{html.escape(h)}</th>' for h in header)
    ident = f' id="{table_id}"' if table_id else ""
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (f"<table{ident}>{cap}<thead><tr>{head}</tr></thead><tbody>"
            f"{''.join(rows)}</tbody></table>")


def coefficient_table(table: pd.DataFrame, caption: str) -> str:
    """``coef_table()`` as an HTML table: a df column of infinities (z tests) is left out and
    the statistic then called a z value."""
    columns = [c for c in table.columns if c in COLUMN_LABELS]
    if "df" in columns:
        df = pd.to_numeric(table["df"], errors="coerce")
        if not df.apply(lambda v: math.isfinite(v)).any():
            columns.remove("df")
    labels = dict(COLUMN_LABELS)
    if "statistic" in columns and "df" not in columns:
        labels["statistic"] = "z value"
    if "rhat" in columns:  # a posterior summary: mean, SD and credible interval
        labels.update(estimate="Posterior mean", std_error="Posterior SD",
                      ci_lower="95 % CrI lower", ci_upper="95 % CrI upper")
    rows = []
    for name, row in table.iterrows():
        cells = "".join(_cell(row[c], FORMATTERS.get(c, number)) for c in columns)
        rows.append(f'<tr><th scope="row">{html.escape(str(name))}</th>{cells}</tr>')
    return _table(["Term"] + [labels[c] for c in columns], rows, caption, "coefficient-table")


def variance_table(varcorr: pd.DataFrame) -> str:
    """``varcorr`` as lme4 prints it: one row per variance, one per correlation."""
    rows = []
    for _, row in varcorr.iterrows():
        group = html.escape(str(row["group"]))
        term1 = row.get("term1")
        term2 = row.get("term2")
        if _present(term2):
            term = f"corr({term1}, {term2})"
            cells = "<td></td><td></td>" + _cell(row["corr"])
        else:
            term = str(term1) if _present(term1) else ""
            cells = _cell(row["variance"]) + _cell(row["sd"]) + "<td></td>"
        rows.append(f'<tr><th scope="row">{group}</th><td class="text">{html.escape(term)}</td>'
                    f"{cells}</tr>")
    return _table(["Group", "Term", "Variance", "Std. deviation", "Correlation"], rows,
                  table_id="variance-table")


def _present(value: Any) -> bool:
    if value is None or value is pd.NA:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    return str(value) != ""


def icc_block(facts: FitFacts) -> str:
    """The ICC table (adjusted and conditional), or why there is none."""
    if facts.icc is None:
        return f"<p id=\"icc\">Intraclass correlation: {html.escape(facts.icc_note)}.</p>"
    words = {"adjusted": "adjusted (group variance / (group + residual variance))",
             "conditional": "conditional (also counting the variance of the fixed effects)"}
    rows = [f'<tr><th scope="row">{html.escape(words.get(str(k), str(k)))}</th>{_cell(v)}</tr>'
            for k, v in facts.icc.items()]
    caption = "As performance::icc in R" + (
        "; on the latent scale of the link" if facts.kind.startswith("Generalized") else "") + "."
    return "<div id=\"icc\">" + _table(["ICC", "value"], rows, caption, "icc-table") + "</div>"


def statistics_table(rows: list[tuple[str, Any]]) -> str:
    """The fit statistics, one per row."""
    body = []
    for label, value in rows:
        cell = _cell(value) if isinstance(value, int | float) else (
            f"<td>{html.escape(str(value))}</td>")
        body.append(f'<tr><th scope="row">{html.escape(label)}</th>{cell}</tr>')
    return _table(["Statistic", "Value"], body, table_id="statistics-table")


def figure_block(figure: Figure) -> str:
    """One figure: the embedded image with its caption, or the reason it is missing."""
    if figure.data_uri is None:
        return (f'<div id="{figure.element_id}"><p class="missing">'
                f"{html.escape(figure.note)}</p></div>")
    return (f'<figure id="{figure.element_id}"><img src="{figure.data_uri}" '
            f'alt="{html.escape(figure.alt)}"><figcaption>{html.escape(figure.caption)}'
            "</figcaption></figure>")


def notes_block(notes: list[Note]) -> str:
    """The notes, warnings first."""
    items = "".join(f'<li class="{n.level}">{html.escape(n.text)}</li>' for n in notes)
    return f'<ul class="notes">{items}</ul>'


def render(title: str, facts: FitFacts, notes: list[Note], figures: list[Figure],
           footer: str) -> str:
    """The whole page."""
    call = "".join(f"<dt>{html.escape(label)}</dt><dd>{html.escape(text)}</dd>"
                   for label, text in facts.call)
    variance = (variance_table(facts.varcorr) if facts.varcorr is not None
                else "<p>The model has no random effects.</p>")
    bodies = {
        "model": f'<dl class="call">{call}</dl>',
        "notes": notes_block(notes),
        "coefficients": coefficient_table(facts.coefficients, facts.test_caption),
        "variance-components": variance + icc_block(facts),
        "fit-statistics": statistics_table(facts.statistics),
        "plots": "".join(figure_block(f) for f in figures),
        "summary": f"<pre>{html.escape(facts.summary)}</pre>",
    }
    sections = "".join(f'<section id="{ident}"><h2>{html.escape(heading)}</h2>'
                       f"{bodies[ident]}</section>\n" for ident, heading in SECTIONS)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            "<link rel=\"icon\" href=\"data:,\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
            f"<header><h1>{html.escape(title)}</h1></header>\n<main>\n{sections}</main>\n"
            f"<footer>{html.escape(footer)}</footer>\n</body>\n</html>\n")
