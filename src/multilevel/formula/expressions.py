"""What a formula may contain: the allow-list every expression is checked against.

formulaic evaluates each factor of a formula (``log(x)``, ``I(x^2)``) as Python with ``eval``,
in a context that includes numpy. A formula is often built from text that comes from
elsewhere (a configuration file, a web form, a command-line argument), so every expression is
checked here, twice, before formulaic ever parses or evaluates it:

1. :func:`check_tokens` reads the text as the user wrote it, token by token;
2. :func:`factor_columns` reads each factor formulaic cut out of it as a Python syntax tree.

Allowed: data column names (bare, dotted as in R, or in backticks), numbers, strings, ``TRUE``
and ``FALSE``, the functions of :data:`FUNCTIONS`, ``contr.<name>`` contrasts inside ``C()``,
arithmetic (``+ - * / ^ %in%``, and ``**``, ``%`` and ``//`` inside calls), comparisons, ``&``
between parenthesised comparisons, and keyword arguments. Everything else (attribute access,
subscripts, dunder names, other functions, lambdas, comprehensions, ``:=``, starred arguments,
braces) is a :class:`~multilevel.errors.FormulaError` that names the token.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
from formulaic.transforms import C

from multilevel.errors import FormulaError
from multilevel.formula.identifiers import (
    CONTRASTS,
    IDENTIFIER,
    NUMBER,
    QUOTES,
    closing_quote,
    mask_quoted,
)

#: The functions a formula may call, with what each does (the README lists the same).
FUNCTIONS: Mapping[str, str] = MappingProxyType({
    "I": "arithmetic as written, e.g. I(x^2), I(x > 3)",
    "log": "natural logarithm; log(x, base) for another base",
    "log2": "base-2 logarithm",
    "log10": "base-10 logarithm",
    "log1p": "log(1 + x)",
    "exp": "exponential",
    "expm1": "exp(x) - 1",
    "sqrt": "square root",
    "abs": "absolute value",
    "sin": "sine (radians), e.g. sin(2*pi*Time) for a cycle",
    "cos": "cosine (radians)",
    "tan": "tangent (radians)",
    "poly": "orthogonal polynomials, poly(x, degree); raw=TRUE for raw powers",
    "scale": "centre and divide by the standard deviation",
    "center": "subtract the mean",
    "C": "a factor with chosen contrasts, e.g. C(f, contr.sum); C(f, levels=[...])",
    "factor": "treat a column as a factor (treatment contrasts)",
    "bs": "B-spline basis, bs(x, df=...) or bs(x, knots=[...])",
    "cr": "natural cubic regression spline basis",
    "cs": "natural cubic regression spline basis (as cr)",
    "cc": "cyclic cubic regression spline basis",
    "offset": "a known term added to the linear predictor (a top-level term only)",
})


def _r_log(x: Any, base: float | None = None) -> Any:
    """R's ``log(x, base)``: the natural logarithm unless a base is given."""
    return np.log(x) if base is None else np.log(x) / np.log(base)


def logical_factor(values: Any) -> pd.Series:
    """A logical vector as R's model matrices see it: a factor with levels FALSE and TRUE
    (so its treatment-coded column is ``xTRUE``, as lme4 names it)."""
    index = values.index if isinstance(values, pd.Series) else None
    codes = np.where(np.asarray(values, dtype=bool), "TRUE", "FALSE")
    return pd.Series(pd.Categorical(codes, categories=["FALSE", "TRUE"]), index=index)


def _r_identity(x: Any) -> Any:
    """R's ``I(x)``: x as it is, except that a logical result is a factor, as R's model
    matrices treat it (``I(week > 2)`` gives the column ``I(week > 2)TRUE``)."""
    if np.asarray(x).dtype == bool:
        return logical_factor(x)
    return x


#: What formulaic evaluates formula expressions with, on top of its own transforms (I, log2,
#: log10, exp, poly, scale, center, C, the splines and contr): the R names it lacks. Passing
#: this explicitly also keeps formulaic from capturing the caller's variables.
EVALUATION_CONTEXT: Mapping[str, Any] = MappingProxyType({
    "I": _r_identity,
    "log": _r_log,
    "log1p": np.log1p,
    "expm1": np.expm1,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "pi": np.pi,
    "factor": C,
})

#: The same, for expressions that give one value per row (the response, cbind's counts,
#: offsets): there ``I(x > 0)`` stays logical, R's 0/1 response.
VALUE_CONTEXT: Mapping[str, Any] = MappingProxyType(
    {k: v for k, v in EVALUATION_CONTEXT.items() if k != "I"})

_SUMMARY = ("a formula may use data columns, numbers, the functions "
            f"{', '.join(FUNCTIONS)}, arithmetic and comparisons")

_NUMPY_PREFIXES = ("np.", "numpy.", "math.")


def _error(message: str, formula: str, position: int | None) -> FormulaError:
    return FormulaError(message, formula, position)


def _function_error(name: str, formula: str, position: int) -> FormulaError:
    tail = name.split(".")[-1]
    if name.startswith(_NUMPY_PREFIXES) and tail in FUNCTIONS:
        hint = f"write {tail}(...) instead"
    elif name.startswith("contr."):
        hint = f"the contrasts are contr.{', contr.'.join(sorted(CONTRASTS))}"
    elif name == "cbind":
        hint = ("cbind(successes, failures) can only be the whole response of a binomial "
                "model, as in ml.glmer('cbind(s, n - s) ~ x + (1 | g)', data, "
                "family='binomial')")
    else:
        hint = _SUMMARY
    return _error(f"function {name!r} is not allowed in a formula: {hint}", formula, position)


def check_tokens(text: str, formula: str, offset: int) -> None:
    """Check the text of one expression, as written, against the allow-list.

    Parameters
    ----------
    text : str
        An expression of the formula (the response, a term, a random term's left-hand side).
    formula : str
        The whole formula (for the error message).
    offset : int
        Position of ``text`` in ``formula``.

    Raises
    ------
    FormulaError
        Naming the first token that is not allowed, with its position.
    """
    mask_quoted(text, formula, offset)  # unclosed quotes, with their position
    prev = "start"  # "value" after a name, number, quoted name or ')'; else an operator
    i = 0
    while i < len(text):
        ch = text[i]
        pos = offset + i
        if ch.isspace():
            i += 1
            continue
        if ch in QUOTES:
            if prev == "name" and text[i - 1] not in " \t" and ch != "`":
                raise _error("a string prefix (such as f\"...\") is not allowed in a formula",
                             formula, pos - 1)
            i = closing_quote(text, i) + 1
            prev = "value"
            continue
        number = NUMBER.match(text, i)
        if number and (ch.isdigit() or ch == "."):
            if number.group()[-1] in "jJ":
                raise _error(f"complex number {number.group()!r} is not allowed in a formula",
                             formula, pos)
            i = number.end()
            prev = "number"
            continue
        ident = IDENTIFIER.match(text, i)
        if ident:
            _check_name(text, ident.group(), ident.end(), prev, formula, pos)
            i = ident.end()
            prev = "name"
            continue
        prev = _check_operator(text, i, prev, formula, pos)
        i = text.index("%", i + 1) + 1 if ch == "%" else i + 1


def _check_name(text: str, name: str, end: int, prev: str, formula: str, pos: int) -> None:
    rest = text[end:].lstrip()
    if any(part.startswith("__") for part in name.split(".")):
        raise _error(f"the name {name!r} is not allowed in a formula: names beginning with "
                     "'__' are Python internals, not data columns", formula, pos)
    if name.startswith(".") and prev in ("name", "value", "number"):
        raise _error(f"attribute access {name!r} is not allowed in a formula; {_SUMMARY}",
                     formula, pos)
    if prev == "number":
        raise _error(f"a name ({name!r}) directly after a number is not allowed in a formula",
                     formula, pos)
    if name == ".":
        raise _error("the '.' shorthand (all other columns) is not supported; name the "
                     "predictors", formula, pos)
    if rest.startswith("("):
        if name not in FUNCTIONS and not _is_contrast(name):
            raise _function_error(name, formula, pos)
        return
    if name.startswith("contr.") and not _is_contrast(name):
        raise _function_error(name, formula, pos)
    if name in _CODE_KEYWORDS:
        raise _error(f"the Python keyword {name!r} is not allowed in a formula; if it is a "
                     f"column name, write it in backticks: `{name}`", formula, pos)
    if rest.startswith("=") and not rest.startswith("==") and name.startswith("_"):
        raise _error(f"the argument name {name!r} is not allowed in a formula (names "
                     "beginning with '_' are formulaic's own)", formula, pos)


# Python keywords that only make sense as code (lambdas, comprehensions, conditions). Other
# keywords are read as column names, as R reads them (gasoline's ``yield``, a ``class``).
_CODE_KEYWORDS = frozenset({"lambda", "if", "else", "elif", "for", "while", "in", "is", "not",
                            "and", "or", "async", "await", "def", "return"})


def _is_contrast(name: str) -> bool:
    head, _, tail = name.partition(".")
    return head == "contr" and tail in CONTRASTS


# Characters that have no meaning in an lme4 formula and only a harmful or confusing one in
# Python: R's $ and @ are attribute access, { } formulaic's raw Python blocks.
_FORBIDDEN = {
    "{": "braces ('{') are not allowed in a formula; write arithmetic inside I(...)",
    "}": "braces ('}') are not allowed in a formula; write arithmetic inside I(...)",
    "$": "'$' is not allowed in a formula; refer to the column by its name",
    "@": "'@' is not allowed in a formula",
    ";": "';' is not allowed in a formula",
    "\\": "a backslash is not allowed in a formula outside quotes",
    "?": "'?' is not allowed in a formula",
    "#": "'#' is not allowed in a formula",
    "|": "'|' is only allowed inside a random-effects term such as (1 | g)",
    "~": "'~' is only allowed once, between the response and the predictors",
}


def _check_operator(text: str, i: int, prev: str, formula: str, pos: int) -> str:
    """Check the operator character at ``text[i]``; return the kind of token it is."""
    ch = text[i]
    following = text[i + 1:i + 2]
    if ch in _FORBIDDEN:
        raise _error(_FORBIDDEN[ch], formula, pos)
    if ch == "!" and following != "=":
        raise _error("'!' is not allowed in a formula; write a comparison such as x == 0",
                     formula, pos)
    if ch == ":" and following == "=":
        raise _error("':=' is not allowed in a formula", formula, pos)
    if ch == "%":
        if not text.startswith("%in%", i):
            raise _error("'%' is not allowed in a formula except in the operator %in%",
                         formula, pos)
        return "op"
    if ch == "[":
        if prev in ("name", "value", "number"):
            raise _error("subscripts ('[') are not allowed in a formula; refer to whole "
                         "columns", formula, pos)
        return "open"  # a list, as in C(f, levels=['a', 'b'])
    if ch == "]":
        return "value"
    if ch == "(" and prev in ("value", "number"):
        raise _error("only the functions of the allow-list can be called in a formula; "
                     f"{_SUMMARY}", formula, pos)
    if ch == "*" and prev in ("open", "comma"):
        raise _error("starred arguments ('*') are not allowed in a formula", formula, pos)
    if ch == ")":
        return "value"
    if ch == "(":
        return "open"
    if ch == ",":
        return "comma"
    if ch == "=" and following == "=":
        return "op"
    if ch.isalnum() or ch == "_" or not ch.isascii():
        raise _error(f"unexpected character {ch!r} in a formula", formula, pos)
    return "op"


# --------------------------------------------------------------------------------------
# The second check: the syntax tree of each factor formulaic cut out of the formula.

_BINARY = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.Mod, ast.FloorDiv)
_COMPARE = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_BACKTICKED = re.compile(r"`([^`]*)`")


@lru_cache(maxsize=1024)
def factor_columns(expr: str, formula: str) -> tuple[str, ...]:
    """The data columns one factor (formulaic syntax) uses as values, after checking its
    syntax tree against the allow-list.

    Parameters
    ----------
    expr : str
        One factor as formulaic evaluates it, e.g. ``"log(`Days.n`)"``.
    formula : str
        The whole formula (for the error message).

    Raises
    ------
    FormulaError
        Naming the construct that is not allowed.
    """
    quoted: dict[str, str] = {}

    def placeholder(match: re.Match[str]) -> str:
        name = f"_ml_quoted_{len(quoted)}_"
        quoted[name] = match.group(1)
        return name

    code = _BACKTICKED.sub(placeholder, expr)
    try:
        tree = ast.parse(code.strip(), mode="eval")
    except SyntaxError as exc:
        raise FormulaError(f"cannot read the expression {expr!r}: {exc.msg}",
                           formula) from exc
    columns: list[str] = []
    _walk(tree.body, columns, expr, formula)
    return tuple(dict.fromkeys(quoted.get(c, c) for c in columns))


def _walk(node: ast.AST, columns: list[str], expr: str, formula: str) -> None:
    def refuse(what: str) -> FormulaError:
        return FormulaError(f"{what} is not allowed in a formula (in {expr!r}); {_SUMMARY}",
                            formula)

    if isinstance(node, ast.Name):
        if node.id.startswith("__"):
            raise refuse(f"the name {node.id!r}")
        columns.append(node.id)
    elif isinstance(node, ast.Constant):
        if node.value is not None and not isinstance(node.value, bool | int | float | str):
            raise refuse(f"the constant {node.value!r}")
    elif isinstance(node, ast.BinOp):
        if isinstance(node.op, ast.BitAnd):
            if not all(isinstance(side, ast.Compare) or (
                    isinstance(side, ast.BinOp) and isinstance(side.op, ast.BitAnd))
                    for side in (node.left, node.right)):
                # Python's & binds tighter than comparisons: a > 1 & b < 2 is not R's.
                raise refuse("'&' between anything but comparisons in parentheses")
        elif not isinstance(node.op, _BINARY):
            raise refuse(f"the operator {type(node.op).__name__}")
        _walk(node.left, columns, expr, formula)
        _walk(node.right, columns, expr, formula)
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, ast.UAdd | ast.USub):
            raise refuse(f"the operator {type(node.op).__name__}")
        _walk(node.operand, columns, expr, formula)
    elif isinstance(node, ast.Compare):
        if not all(isinstance(op, _COMPARE) for op in node.ops):
            raise refuse("'in', 'is' and 'not' comparisons")
        for side in (node.left, *node.comparators):
            _walk(side, columns, expr, formula)
    elif isinstance(node, ast.Call):
        _walk_call(node, columns, expr, formula, refuse)
    elif isinstance(node, ast.List | ast.Tuple):
        for element in node.elts:
            if isinstance(element, ast.Starred):
                raise refuse("a starred element ('*')")
            _walk(element, columns, expr, formula)
    elif isinstance(node, ast.Attribute):
        raise refuse(f"attribute access {ast.unparse(node)!r}")
    elif isinstance(node, ast.Subscript):
        raise refuse(f"the subscript {ast.unparse(node)!r}")
    else:
        raise refuse(f"{type(node).__name__.lower()} {ast.unparse(node)!r}")


def _walk_call(node: ast.Call, columns: list[str], expr: str, formula: str,
               refuse: Any) -> None:
    func = node.func
    if isinstance(func, ast.Name):
        if func.id == "offset":
            raise refuse("offset(...) inside another term (write it as a term of its own, "
                         "as in y ~ x + offset(log(n)))")
        if func.id not in FUNCTIONS:
            raise refuse(f"the function {func.id!r}")
    elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        if not _is_contrast(f"{func.value.id}.{func.attr}"):
            raise refuse(f"the function {ast.unparse(func)!r}")
    else:
        raise refuse(f"calling {ast.unparse(func)!r}")
    for arg in node.args:
        if isinstance(arg, ast.Starred):
            raise refuse("a starred argument ('*')")
        _walk_argument(arg, columns, expr, formula)
    for kw in node.keywords:
        if kw.arg is None:
            raise refuse("unpacking keyword arguments ('**')")
        if kw.arg.startswith("_"):
            raise refuse(f"the argument name {kw.arg!r}")
        _walk_argument(kw.value, columns, expr, formula)


def _walk_argument(node: ast.expr, columns: list[str], expr: str, formula: str) -> None:
    """An argument may also be a contrast, ``contr.poly`` or ``contr.treatment(...)``."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and (
            _is_contrast(f"{node.value.id}.{node.attr}")):
        return
    _walk(node, columns, expr, formula)
