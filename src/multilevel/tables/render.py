"""A model table written out: aligned text, HTML, LaTeX (booktabs) and Markdown.

Each renderer walks :meth:`Table.lines` (section, label, per model (number, stars)) and puts a
rule where the section changes: coefficients, variance components, statistics.
"""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multilevel.tables.model_table import Table

LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                 "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                 "^": r"\textasciicircum{}"}


def _sections(table: Table) -> list[tuple[bool, str, list[tuple[str, str]]]]:
    """(starts a new section, label, cells) per printed line."""
    out = []
    previous = None
    for section, label, cells in table.lines():
        out.append((previous is not None and section != previous, label, cells))
        previous = section
    return out


# -- text ------------------------------------------------------------------------------------------
def text(table: Table) -> str:
    """Columns aligned on the decimal point's side (numbers right-aligned, stars after)."""
    star_width = 3 if table.stars else 0

    def cell(number: str, stars: str) -> str:
        if not number:
            return ""
        # an SE or interval closes its bracket under the first star of the estimate above
        width = max(star_width - 1, 0) if number[:1] in "([" else star_width
        return number + stars.ljust(width)

    rows = [(new, label, [cell(n, s) for n, s in cells]) for new, label, cells in _sections(table)]
    head = ["", *table.names]
    width0 = max([len(label) for _, label, _ in rows] + [0])
    widths = [max([len(head[i + 1])] + [len(cells[i]) for _, _, cells in rows])
              for i in range(len(table.names))]
    total = width0 + sum(w + 2 for w in widths)

    def line(label: str, cells: list[str]) -> str:
        return (label.ljust(width0) + "".join("  " + c.rjust(w) for c, w in
                                              zip(cells, widths, strict=True))).rstrip()

    out = [line("", table.names), "=" * total]
    for new, label, cells in rows:
        if new:
            out.append("-" * total)
        out.append(line(label, cells))
    out.append("=" * total)
    out.extend(table.notes)
    return "\n".join(out) + "\n"


# -- HTML ------------------------------------------------------------------------------------------
def html_table(table: Table) -> str:
    """A self-contained ``<table>``: header row, one body row per line (a rule above each new
    section), the notes in the footer."""
    rule = ' style="border-top: 1px solid"'
    n = len(table.names) + 1
    head = "".join(f"<th>{html.escape(name)}</th>" for name in table.names)
    body = []
    for new, label, cells in _sections(table):
        tds = "".join(f'<td style="text-align: right">{html.escape(num + star)}</td>'
                      for num, star in cells)
        body.append(f"<tr{rule if new else ''}><th style=\"text-align: left\">"
                    f"{html.escape(label)}</th>{tds}</tr>")
    notes = "".join(f'<tr><td colspan="{n}" style="text-align: left"><small>'
                    f"{html.escape(note)}</small></td></tr>" for note in table.notes)
    return (f'<table class="multilevel-table"><thead><tr><th></th>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody><tfoot>{notes}</tfoot></table>")


# -- LaTeX -----------------------------------------------------------------------------------------
def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped (``sd_x`` -> ``sd\\_x``)."""
    return re.sub(r"[\\&%$#_{}~^]", lambda m: LATEX_SPECIAL[m.group(0)], text)


def _latex_cell(number: str, stars: str) -> str:
    if not number:
        return ""
    sup = f"^{{{stars}}}" if stars else ""
    return f"${number}{sup}$"


def latex(table: Table, caption: str | None = None, label: str | None = None) -> str:
    """A ``table`` float holding a booktabs ``tabular``: \\toprule, the names, \\midrule, the
    lines (a \\midrule between sections), \\bottomrule and the notes."""
    for arg, value in (("caption", caption), ("label", label)):
        if value is not None and not isinstance(value, str):
            from multilevel.errors import ArgumentError
            raise ArgumentError(f"{arg} must be a string or None, got {value!r:.60}")
    k = len(table.names)
    out = [r"\begin{table}[htbp]", r"\centering"]
    if caption is not None:
        out.append(rf"\caption{{{latex_escape(caption)}}}")
    if label is not None:
        out.append(rf"\label{{{label}}}")  # a key, not text: written as given
    out += [rf"\begin{{tabular}}{{l{'c' * k}}}", r"\toprule",
            " & ".join(["", *(latex_escape(n) for n in table.names)]) + r" \\", r"\midrule"]
    for new, text_label, cells in _sections(table):
        if new:
            out.append(r"\midrule")
        out.append(" & ".join([latex_escape(text_label),
                               *(_latex_cell(num, star) for num, star in cells)]) + r" \\")
    out.append(r"\bottomrule")
    for note in table.notes:
        # the stars' key with the stars raised as in the cells
        shown = re.sub(r"(\*+) p < ([0-9.]+)", r"$^{\1}p < \2$", note) if "p <" in note \
            else latex_escape(note)
        out.append(rf"\multicolumn{{{k + 1}}}{{l}}{{\footnotesize{{{shown}}}}} \\")
    out += [r"\end{tabular}", r"\end{table}"]
    return "\n".join(out) + "\n"


# -- Markdown --------------------------------------------------------------------------------------
def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*")


def markdown(table: Table) -> str:
    """A pipe table (labels left, numbers right; stars escaped), the notes as lines below."""
    out = ["| " + " | ".join(["", *(_md(n) for n in table.names)]) + " |",
           "|" + "|".join([":---", *(["---:"] * len(table.names))]) + "|"]
    for _, label, cells in _sections(table):
        out.append("| " + " | ".join([_md(label), *(_md(n + s) for n, s in cells)]) + " |")
    text_notes = [""] + [_md(note) for note in table.notes] if table.notes else []
    return "\n".join(out + text_notes) + "\n"
