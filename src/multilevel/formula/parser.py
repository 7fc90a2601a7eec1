"""Split an lme4 formula into its response, fixed part and random-effects terms.

lme4's language adds bars to R's model formulas: ``(lhs | g)`` is a correlated random-effects
term, ``(lhs || g)`` an uncorrelated one, ``g1/g2`` nests and ``g1:g2`` crosses grouping
factors. Everything outside the bars is an ordinary fixed-effects formula, which formulaic
builds; here we only cut the random terms and ``offset(...)`` out, expand the random terms the
way lme4's ``findbars`` / ``expandDoubleVerts`` do, and translate R-only syntax (``I(x^2)``,
``Days.n``) into formulaic's. Every expression is checked against the allow-list of
:mod:`multilevel.formula.expressions` before formulaic sees it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

from formulaic import Formula

from multilevel.errors import FormulaError
from multilevel.formula.expressions import check_tokens, factor_columns
from multilevel.formula.identifiers import (
    backticked,
    mask_quoted,
    split_names,
    to_formulaic,
    unquote_name,
)

#: The most random-effects terms (after ``||`` and ``/`` expansion) a formula may have. Each
#: term adds at least one covariance parameter, and the optimizer's work grows with the
#: square of their number (see ``multilevel.data.design.MAX_COVARIANCE_PARAMETERS``).
MAX_RANDOM_TERMS = 200


class FactorText(NamedTuple):
    """One factor of a term, as formulaic reads it.

    Attributes
    ----------
    text : str
        The factor in formulaic syntax (names that are not identifiers in backticks).
    kind : str
        ``"column"`` (a bare data column), ``"expression"`` (evaluated, such as ``log(x)``)
        or ``"literal"`` (``1`` for the intercept).
    column : str or None
        The column name of a ``"column"`` factor.
    """

    text: str
    kind: str
    column: str | None


_KINDS = {"LOOKUP": "column", "PYTHON": "expression", "LITERAL": "literal"}


@lru_cache(maxsize=512)
def formula_terms(expr: str) -> tuple[tuple[FactorText, ...], ...]:
    """formulaic's terms of a right-hand side (already checked by the allow-list), each a
    tuple of its factors; cached: formula parsing costs more than a small model matrix."""
    out = []
    for term in Formula(expr):
        factors = []
        for f in term.factors:
            kind = _KINDS[f.eval_method.name]
            text = backticked(f.expr) if kind == "column" else f.expr
            factors.append(FactorText(text, kind, f.expr if kind == "column" else None))
        out.append(tuple(factors))
    return tuple(out)


@lru_cache(maxsize=512)
def term_labels(expr: str) -> tuple[str, ...]:
    """The terms of a right-hand side in formulaic syntax (``"1"`` for the intercept), so that
    a label can be put back into a formula; cached."""
    return tuple(":".join(f.text for f in term) for term in formula_terms(expr))


@lru_cache(maxsize=512)
def expression_columns(expr: str, formula: str = "") -> tuple[str, ...]:
    """The data columns a right-hand side (formulaic syntax) uses as values, each factor
    checked against the allow-list.

    Raises
    ------
    FormulaError
        If a factor is not allowed, or formulaic cannot parse ``expr``.
    """
    try:
        terms = formula_terms(expr)
    except Exception as exc:  # formulaic raises several exception types for bad syntax
        raise FormulaError(f"cannot parse {expr!r}: {exc}", formula) from exc
    columns: list[str] = []
    for term in terms:
        for factor in term:
            if factor.column is not None:
                columns.append(factor.column)
            elif factor.kind == "expression":
                columns.extend(factor_columns(factor.text, formula))
    return tuple(dict.fromkeys(columns))


@dataclass(frozen=True)
class RandomTermSpec:
    """One ``(lhs | group)`` term after expansion.

    Attributes
    ----------
    lhs : str
        The model formula (formulaic syntax) of the term's columns, e.g. ``"1 + Days"``.
    group_factors : tuple of str
        Column names whose interaction forms the grouping factor (``("cask", "batch")`` for
        ``cask:batch``).
    group_name : str
        The grouping factor's name as lme4 prints it (``"cask:batch"``).
    written : str
        The grouping factor as the formula writes it, outer factors first: ``"batch:cask"``
        for the inner term of ``(1 | batch/cask)`` (brms's name); "" on specs built by hand,
        where :attr:`written_name` falls back to :attr:`group_name`.
    """

    lhs: str
    group_factors: tuple[str, ...]
    group_name: str
    # how it was written is presentation (brms's names), not identity: a term written back
    # as ``(lhs | group_text)`` is the same term
    written: str = field(default="", compare=False)

    @property
    def written_name(self) -> str:
        """The grouping factor as written (see :attr:`written`)."""
        return self.written or self.group_name

    @property
    def group_text(self) -> str:
        """The grouping factor as a formula writes it (names in backticks where needed), so
        that ``f"({lhs} | {group_text})"`` parses back to this term."""
        return ":".join(backticked(f) for f in self.group_factors)


@dataclass(frozen=True)
class ParsedFormula:
    """An lme4 formula cut into parts.

    Attributes
    ----------
    text : str
        The formula as the user wrote it.
    response : str
        The left-hand side: a column name (as in the data, without backticks) or an expression
        in formulaic syntax (``log(y)``).
    fixed : str
        The fixed-effects right-hand side in formulaic syntax (``"1"`` if only the intercept).
    random : tuple of RandomTermSpec
        The random-effects terms in the order written, after ``||`` and ``/`` expansion.
    offsets : tuple of str
        The expressions of ``offset(...)`` terms (formulaic syntax), added to the linear
        predictor as lme4 does.
    counts : tuple of (str, str) or None
        For a ``cbind(successes, failures)`` response (binomial models only), its two
        arguments, each a column name or an expression in formulaic syntax (evaluate it with
        :func:`response_factor`); ``response`` is then the ``cbind(...)`` text as written.
        None for any other response.
    """

    text: str
    response: str
    fixed: str
    random: tuple[RandomTermSpec, ...]
    offsets: tuple[str, ...] = ()
    counts: tuple[str, str] | None = None


def _split_top_level(text: str, sep: str, formula: str, offset: int) -> list[tuple[str, int]]:
    """Split ``text`` at occurrences of the one-character ``sep`` outside parentheses,
    backticks and quotes.

    Returns the pieces with their offsets in ``formula`` (for error positions)."""
    masked = mask_quoted(text, formula, offset)
    pieces: list[tuple[str, int]] = []
    opened: list[int] = []  # positions of the parentheses still open
    start = 0
    for i, ch in enumerate(masked):
        if ch in "([":
            opened.append(i)
        elif ch in ")]":
            if not opened:
                raise FormulaError("unmatched ')'", formula, offset + i)
            opened.pop()
        elif ch == sep and not opened:
            pieces.append((text[start:i], offset + start))
            start = i + 1
    if opened:
        raise FormulaError("unmatched '(': a parenthesis is never closed", formula,
                           offset + opened[0])
    pieces.append((text[start:], offset + start))
    return pieces


def _unwrap(text: str) -> tuple[str, int]:
    """``text`` without parentheses that enclose all of it (``((1 | g))`` -> ``1 | g``), and
    how many characters were removed at the front."""
    removed = 0
    while True:
        stripped = text.strip()
        lead = len(text) - len(text.lstrip())
        if not (stripped.startswith("(") and stripped.endswith(")")):
            return text, removed
        masked = mask_quoted(stripped)
        depth = 0
        for i, ch in enumerate(masked):
            depth += (ch == "(") - (ch == ")")
            if depth == 0 and i < len(stripped) - 1:
                return text, removed  # the first '(' closes before the end: (a) + (b)
        text = stripped[1:-1]
        removed += lead + 1


def _outside_parentheses(text: str, char: str) -> int:
    """Position of the first ``char`` at parenthesis depth 0 (outside quotes), or -1."""
    depth = 0
    for i, ch in enumerate(mask_quoted(text)):
        depth += (ch == "(") - (ch == ")")
        if ch == char and depth == 0:
            return i
    return -1


def _parse_group(text: str, formula: str, offset: int,
                 ) -> list[tuple[tuple[str, ...], str, str]]:
    """Expand a grouping expression: ``a/b`` -> ``a``, ``b:a``; ``a:b`` stays one factor.
    Each group also carries its name as written, outer first (``a:b`` for ``b:a``)."""
    inner, removed = _unwrap(text)
    if not inner.strip():
        raise FormulaError("a random-effects term has no grouping factor after '|'",
                           formula, offset)
    out: list[tuple[tuple[str, ...], str, str]] = []
    outer: list[str] = []
    written: list[str] = []
    for part, part_offset in split_names(inner, "/"):
        factors: list[str] = []
        for piece, piece_offset in split_names(part, ":"):
            name = unquote_name(piece)
            pos = offset + removed + part_offset + piece_offset + (
                len(piece) - len(piece.lstrip()))
            if name is None:
                raise FormulaError(
                    f"grouping factor {piece.strip()!r} must be a column name (or names "
                    "joined by ':' or '/'); put a name with spaces or symbols in backticks, "
                    "as in (1 | `my group`)", formula, pos)
            factors.append(name)
        # lme4 writes the inner factor first: (1 | a/b) gives groups "a" and "b:a".
        combined = factors + outer
        repeated = sorted({f for f in combined if combined.count(f) > 1})
        if repeated:
            raise FormulaError(
                f"grouping factor {repeated[0]!r} is nested in or crossed with itself in "
                f"'{text.strip()}'; name each grouping factor once", formula, offset)
        written = written + factors
        out.append((tuple(combined), ":".join(combined), ":".join(written)))
        outer = combined
    return out


def _rhs_columns(expr: str, what: str, formula: str, offset: int) -> None:
    """Check every factor of ``expr`` against the allow-list (and that formulaic parses it)."""
    try:
        expression_columns(expr, formula)
    except FormulaError as exc:
        if exc.position is not None or not exc.formula:
            raise
        message = str(exc).split(" (at character")[0]
        raise FormulaError(f"in the {what}: {message}", formula, offset) from exc


def _lhs_terms(lhs: str) -> tuple[bool, list[str]]:
    """The intercept flag and the term labels of a random term's left-hand side."""
    labels = list(term_labels(lhs))
    return "1" in labels, [lab for lab in labels if lab != "1"]


def _random_term(body: str, formula: str, offset: int) -> list[RandomTermSpec]:
    """Parse the inside of ``( ... | ... )`` into one or more expanded terms."""
    bar = _outside_parentheses(body, "|")
    double = body[bar:bar + 2] == "||"
    lhs, grp = body[:bar], body[bar + (2 if double else 1):]
    grp_offset = offset + bar + (2 if double else 1)
    if _outside_parentheses(grp, "|") >= 0:
        raise FormulaError("a random-effects term has more than one bar", formula, grp_offset)
    if not lhs.strip():
        raise FormulaError("a random-effects term has nothing before '|'; write (1 | g) "
                           "for a random intercept", formula, offset)
    check_tokens(lhs, formula, offset)
    groups = _parse_group(grp, formula, grp_offset)
    lhs_formulaic = to_formulaic(lhs.strip())
    _rhs_columns(lhs_formulaic, f"random-effects term ({lhs.strip()} | ...)", formula, offset)
    if double:
        # lme4's expandDoubleVerts: one term for the intercept and one per other term,
        # so that no correlation is estimated between them.
        has_intercept, labels = _lhs_terms(lhs_formulaic)
        pieces = (["1"] if has_intercept else []) + [f"0 + {lab}" for lab in labels]
    else:
        pieces = [lhs_formulaic]
    return [RandomTermSpec(lhs=piece, group_factors=factors, group_name=name, written=written)
            for factors, name, written in groups for piece in pieces]


def _check_distinct(random: list[RandomTermSpec], formula: str) -> None:
    """Refuse a random-effects term written twice (after expansion), and absurdly many."""
    seen: set[tuple[frozenset[str], frozenset[str]]] = set()
    for spec in random:
        key = (frozenset(term_labels(spec.lhs)), frozenset(spec.group_factors))
        if key in seen:
            raise FormulaError(
                f"the random-effects term ({spec.lhs.replace('**', '^')} | {spec.group_name}) "
                "appears more than once (after expanding '||' and '/'); a repeated term "
                "cannot be estimated. Remove the copy", formula)
        seen.add(key)
    if len(random) > MAX_RANDOM_TERMS:
        raise FormulaError(
            f"the formula has {len(random)} random-effects terms after expanding '||' and "
            f"'/'; more than {MAX_RANDOM_TERMS} cannot be estimated in reasonable time. "
            "Simplify the random-effects structure", formula)


# Characters that, outside parentheses, make a left-hand side arithmetic that R evaluates as a
# whole, where formulaic would read formula operators: ``a - b`` as "the term a without the term
# b", ``y^2`` as the term y. ``:`` and ``%in%`` stay formula operators (and are refused).
_ARITHMETIC = frozenset("+-*/<>=!&")

#: The function that makes a binomial response of two counts, as R's ``cbind(s, f)``.
CBIND = "cbind"


def _top_level_operator(expr: str) -> str | None:
    """The first arithmetic operator of ``expr`` outside parentheses and quotes, or None."""
    depth = 0
    for ch in mask_quoted(expr):
        depth += (ch in "([") - (ch in ")]")
        if depth == 0 and ch in _ARITHMETIC:
            return ch
    return None


def response_factor(expr: str) -> str:
    """The formulaic factor that evaluates a response (or a ``cbind`` argument) that is not a
    plain column: ``expr`` itself when formulaic reads it as one factor (``log(y)``), else
    ``I(expr)``, so that arithmetic is computed as R computes it (``I(size - incidence)``)."""
    return f"I({expr})" if _top_level_operator(expr) else expr


def _lhs_value(text: str, formula: str, offset: int, what: str, example: str, *,
               sums: bool) -> str:
    """One value of the left-hand side (the response, or an argument of ``cbind``): a column
    name, or an expression in formulaic syntax, checked against the allow-list.

    ``sums`` allows a ``+`` outside parentheses (``cbind(s, n1 + n2)``); in the response
    itself ``y + x`` would read as two responses, so it is refused there."""
    check_tokens(text, formula, offset)
    start = offset + len(text) - len(text.lstrip())  # where the value begins, for messages
    body = _unwrap(text)[0]  # R reads (a - b) as a - b
    name = unquote_name(body)
    if name is not None and name not in ("TRUE", "FALSE", "True", "False", "None"):
        return name  # a column: no need to ask formulaic
    expr = to_formulaic(body.strip())
    problem = (f"{what} {text.strip()!r} must be a column name or an expression of columns "
               f"such as {example}")
    operator = _top_level_operator(expr)
    if operator == "+" and not sums:
        raise FormulaError(f"{problem}; for the sum of several columns write I(a + b)",
                           formula, start)
    factor = response_factor(expr)
    try:
        terms = [t for t in formula_terms(factor) if t[0].kind != "literal"]
    except Exception as exc:  # formulaic raises several exception types for bad syntax
        raise FormulaError(problem, formula, start) from exc
    if len(terms) != 1 or len(terms[0]) != 1:
        raise FormulaError(problem, formula, start)
    only = terms[0][0]
    if only.column is not None:
        return only.column
    _rhs_columns(only.text, what.removeprefix("the "), formula, start)
    if not factor_columns(only.text, formula):
        raise FormulaError(f"{problem}; it uses no column of the data", formula, start)
    return expr if operator else only.text


def _cbind_arguments(lhs: str, formula: str) -> list[tuple[str, int]] | None:
    """The arguments of a left-hand side that is one call of ``cbind``, with their positions
    in ``formula``; None when it is anything else (``cbind(a, b) / 2`` included, which the
    allow-list then refuses)."""
    stripped = lhs.strip()
    rest = stripped[len(CBIND):]
    if not stripped.startswith(CBIND) or not rest.lstrip().startswith("("):
        return None
    body = rest.lstrip()
    opened = len(lhs) - len(lhs.lstrip()) + len(CBIND) + len(rest) - len(body)
    depth = 0
    for i, ch in enumerate(mask_quoted(body, formula, opened)):
        depth += (ch == "(") - (ch == ")")
        if depth == 0:
            return _split_top_level(body[1:i], ",", formula, opened + 1) if (
                i == len(body) - 1) else None
    raise FormulaError("unmatched '(': the parenthesis of cbind( is never closed", formula,
                       opened)


def _cbind_response(pieces: list[tuple[str, int]], formula: str) -> tuple[str, tuple[str, str]]:
    """The response text and the two count expressions of ``cbind(successes, failures)``."""
    if len(pieces) != 2 or not all(piece.strip() for piece, _ in pieces):
        raise FormulaError(
            f"cbind(...) as the response takes exactly two arguments, the number of successes "
            f"and the number of failures, as in cbind(s, n - s); got {len(pieces)}"
            f"{'' if len(pieces) != 2 else ' with one of them empty'}", formula,
            formula.find(CBIND))
    counts = [_lhs_value(piece, formula, pos, "the cbind argument", "size - incidence",
                         sums=True)
              for piece, pos in pieces]
    text = f"{CBIND}({', '.join(piece.strip() for piece, _ in pieces)})"
    return text, (counts[0], counts[1])


def _response(lhs: str, formula: str) -> tuple[str, tuple[str, str] | None]:
    """The response (a column name, or an expression in formulaic syntax such as ``log(y)``),
    and the two counts of a ``cbind(successes, failures)`` response (else None)."""
    pieces = _cbind_arguments(lhs, formula)
    if pieces is not None:
        return _cbind_response(pieces, formula)
    return _lhs_value(lhs, formula, 0, "the response", "log(y)", sums=False), None


def _offset_term(stripped: str) -> str | None:
    """The argument of a top-level ``offset(...)`` term, or None if ``stripped`` is not one."""
    if not stripped.startswith("offset") or not stripped.endswith(")"):
        return None
    rest = stripped[len("offset"):].lstrip()
    inner, removed = _unwrap(rest)
    return inner if removed else None


def parse_formula(text: str) -> ParsedFormula:
    """Parse an lme4 mixed-model formula (see :func:`_parse_formula`); results are cached."""
    if not isinstance(text, str):
        raise FormulaError(f"the formula must be a string, got {type(text).__name__}")
    return _parse_formula(text)


@lru_cache(maxsize=256)
def _parse_formula(text: str) -> ParsedFormula:
    """Parse an lme4 mixed-model formula.

    Parameters
    ----------
    text : str
        For example ``"Reaction ~ Days + (Days | Subject)"``.

    Returns
    -------
    ParsedFormula

    Raises
    ------
    FormulaError
        With the position of the problem for a syntax error, a missing response, a term that
        lme4 would not accept, or anything outside the allow-list of
        :mod:`multilevel.formula.expressions`.
    """
    tildes = [i for i, ch in enumerate(mask_quoted(text, text, 0)) if ch == "~"]
    if len(tildes) != 1:
        raise FormulaError("the formula needs exactly one '~' separating the response from "
                           "the predictors, as in 'y ~ x + (1 | g)'", text,
                           tildes[1] if len(tildes) > 1 else None)
    lhs, rhs = text[:tildes[0]], text[tildes[0] + 1:]
    if not lhs.strip():
        raise FormulaError("the formula has no response before '~'", text, 0)
    response, counts = _response(lhs, text)
    rhs_offset = len(lhs) + 1
    fixed: list[str] = []
    offsets: list[str] = []
    random: list[RandomTermSpec] = []
    for piece, off in _split_top_level(rhs, "+", text, rhs_offset):
        stripped = piece.strip()
        lead = off + len(piece) - len(piece.lstrip())
        if not stripped:
            raise FormulaError("empty term (two '+' in a row or a trailing '+')", text, lead)
        body, removed = _unwrap(stripped)
        bar = _outside_parentheses(body, "|") if removed else -1
        offset_arg = _offset_term(stripped)
        if bar >= 0:
            random.extend(_random_term(body, text, lead + removed))
        elif "|" in mask_quoted(stripped):
            raise FormulaError("a random-effects term must be in parentheses, as in "
                               "'(1 | g)'", text, lead + stripped.find("|"))
        elif offset_arg is not None:
            check_tokens(offset_arg, text, lead + stripped.find("(") + 1)
            expr = to_formulaic(offset_arg.strip())
            _rhs_columns(f"I({expr})", "offset", text, lead)
            offsets.append(expr)
        else:
            check_tokens(stripped, text, lead)
            fixed.append(to_formulaic(stripped))
    fixed_text = " + ".join(fixed) if fixed else "1"
    _rhs_columns(fixed_text, "fixed-effects part", text, rhs_offset)
    _check_distinct(random, text)
    return ParsedFormula(text=text, response=response, fixed=fixed_text, random=tuple(random),
                         offsets=tuple(offsets), counts=counts)
