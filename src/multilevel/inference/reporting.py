"""Text and HTML renderings shared by the inference results (tables are pandas DataFrames,
so notebooks get HTML and terminals get aligned text from the same object)."""

from __future__ import annotations

import html

import pandas as pd


def html_report(title: str, lines: list[str], tables: dict[str, pd.DataFrame]) -> str:
    """A heading, a few lines of text, and titled tables, as HTML."""
    parts = [f"<p><b>{html.escape(title)}</b></p>"]
    parts += [f"<p>{html.escape(line)}</p>" for line in lines if line]
    for name, table in tables.items():
        parts.append(f"<p>{html.escape(name)}</p>" + table.to_html(border=0, na_rep=""))
    return "".join(parts)


def text_report(title: str, lines: list[str], tables: dict[str, pd.DataFrame]) -> str:
    """The same as plain text."""
    out = [title, *[line for line in lines if line]]
    for name, table in tables.items():
        out += ["", f"{name}:", table.to_string()]
    return "\n".join(out)
