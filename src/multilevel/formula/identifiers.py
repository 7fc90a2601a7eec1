"""Names in formula text as R writes them, and how formulaic must be given them.

R allows dots in names (``Sepal.Length``, ``Days.n``) and any name at all in backticks
(``` `my var` ```); Python reads ``a.b`` as attribute access. Before formulaic sees an
expression, every name that Python would misread is put in backticks, formulaic's quoting for
names that are not Python identifiers. The scanning here is aware of quotes and backticks, so
that a ``+``, ``|`` or ``~`` inside a quoted name is never read as an operator.
"""

from __future__ import annotations

import keyword
import re

from multilevel.errors import FormulaError

QUOTES = "`\"'"

# R's identifiers: a letter (any script) or a dot not followed by a digit, then letters,
# digits, dots and underscores. A leading underscore is not R but is common in Python data.
IDENTIFIER = re.compile(r"(?:[^\W\d]|\.(?!\d))[\w.]*")
NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[jJ]?")
# A name written as R would write it without backticks (used to decide where R prints them).
R_SYNTACTIC = re.compile(r"^(?:[^\W\d_]|\.(?!\d))[\w.]*$")

# Contrast functions of C(); the one attribute form a formula may use (``contr.poly``).
CONTRASTS = frozenset({"treatment", "sum", "poly", "helmert", "diff", "SAS"})


def mask_quoted(text: str, formula: str = "", offset: int = 0) -> str:
    """``text`` with every character inside backticks or string quotes replaced by ``_``.

    The result has the same length, so positions found in it (of ``+``, ``|``, ``~``)
    are positions in ``text``.

    Raises
    ------
    FormulaError
        If a backtick or quote is never closed.
    """
    out = list(text)
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in QUOTES:
            end = closing_quote(text, i)
            if end < 0:
                what = "backtick" if ch == "`" else "quote"
                raise FormulaError(f"unmatched {what} {ch}: a quoted name or string is never "
                                   "closed", formula or text, offset + i)
            out[i + 1:end] = "_" * (end - i - 1)
            i = end + 1
        else:
            i += 1
    return "".join(out)


def closing_quote(text: str, start: int) -> int:
    """Index of the quote closing the one at ``start`` (-1 if none); a backslash escapes a
    quote inside a string, as in R and Python."""
    quote = text[start]
    i = start + 1
    while i < len(text):
        if text[i] == "\\" and quote != "`":
            i += 2
            continue
        if text[i] == quote:
            return i
        i += 1
    return -1


def needs_backticks(name: str) -> bool:
    """Whether formulaic must be given ``name`` in backticks (not a Python identifier, or a
    Python keyword such as ``class``)."""
    return not name.isidentifier() or keyword.iskeyword(name)


def backticked(name: str) -> str:
    """``name`` as formulaic reads it: in backticks when it is not a plain identifier."""
    return f"`{name}`" if needs_backticks(name) else name


def r_name(name: str) -> str:
    """``name`` as R prints it in a coefficient name: backticks only where R needs them."""
    return name if R_SYNTACTIC.match(name) else f"`{name}`"


def to_formulaic(expr: str) -> str:
    """Translate one R formula expression into formulaic's syntax.

    Dotted and other non-Python names go in backticks (``Days.n`` -> ```Days.n```), R's
    ``^`` becomes ``**`` and ``TRUE`` / ``FALSE`` become Python's. Function names (a name
    followed by ``(``) and ``contr.<name>`` are left for the allow-list to judge. Quoted text
    and ``%in%`` are copied as they are. The expression must already have passed
    :func:`multilevel.formula.expressions.check_tokens`.
    """
    out: list[str] = []
    i = 0
    while i < len(expr):
        ch = expr[i]
        if ch in QUOTES:
            end = closing_quote(expr, i)
            out.append(expr[i:end + 1])
            i = end + 1
            continue
        if ch == "%":
            end = expr.find("%", i + 1)
            out.append(expr[i:end + 1])
            i = end + 1
            continue
        number = NUMBER.match(expr, i)
        if number and (ch.isdigit() or ch == "."):
            out.append(number.group())
            i = number.end()
            continue
        ident = IDENTIFIER.match(expr, i)
        if ident:
            name = ident.group()
            i = ident.end()
            out.append(_translate_name(name, expr[i:].lstrip().startswith("(")))
            continue
        out.append("**" if ch == "^" else ch)
        i += 1
    return "".join(out)


def _translate_name(name: str, called: bool) -> str:
    if called or name == "." or name.startswith("contr."):
        return name
    if name in ("TRUE", "FALSE"):
        return name.title()
    if name in ("True", "False", "None"):
        return name
    return backticked(name)


def split_names(text: str, seps: str) -> list[tuple[str, int]]:
    """Split ``text`` at any of the characters ``seps`` outside backticks and quotes.

    Returns the pieces with their offsets in ``text``."""
    masked = mask_quoted(text)
    pieces: list[tuple[str, int]] = []
    start = 0
    for i, ch in enumerate(masked):
        if ch in seps:
            pieces.append((text[start:i], start))
            start = i + 1
    pieces.append((text[start:], start))
    return pieces


def unquote_name(text: str) -> str | None:
    """The column name of ``text`` if it is a single name (bare or in backticks), else None."""
    stripped = text.strip()
    if len(stripped) >= 2 and stripped[0] == "`" and stripped[-1] == "`" and (
            "`" not in stripped[1:-1]):
        return stripped[1:-1]
    match = IDENTIFIER.fullmatch(stripped)
    return stripped if match else None
