"""Split an lme4 formula into its response, fixed part and random-effects terms.

lme4's language adds bars to R's model formulas: ``(lhs | g)`` is a correlated random-effects
term, ``(lhs || g)`` an uncorrelated one, ``g1/g2`` nests and ``g1:g2`` crosses grouping
factors. Everything outside the bars is an ordinary fixed-effects formula, which formulaic
builds; here we only cut the random terms out, expand them the way lme4's ``findbars`` /
``expandDoubleVerts`` do, and translate R-only syntax (``I(x^2)``) into formulaic's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from formulaic import Formula

from multilevel.errors import FormulaError


@lru_cache(maxsize=512)
def term_labels(expr: str) -> tuple[str, ...]:
    """formulaic's term labels of a right-hand side (``"1"`` for the intercept), cached:
    formula parsing costs more than building a small model matrix."""
    return tuple(str(t) for t in Formula(expr))


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
    """

    lhs: str
    group_factors: tuple[str, ...]
    group_name: str


@dataclass(frozen=True)
class ParsedFormula:
    """An lme4 formula cut into parts.

    Attributes
    ----------
    text : str
        The formula as the user wrote it.
    response : str
        The left-hand side (a column name or an expression formulaic can evaluate).
    fixed : str
        The fixed-effects right-hand side in formulaic syntax (``"1"`` if only the intercept).
    random : tuple of RandomTermSpec
        The random-effects terms in the order written, after ``||`` and ``/`` expansion.
    """

    text: str
    response: str
    fixed: str
    random: tuple[RandomTermSpec, ...]


def _split_top_level(text: str, sep: str, formula: str, offset: int) -> list[tuple[str, int]]:
    """Split ``text`` at occurrences of the one-character ``sep`` outside parentheses.

    Returns the pieces with their offsets in ``formula`` (for error positions)."""
    pieces: list[tuple[str, int]] = []
    opened: list[int] = []  # positions of the parentheses still open
    start = 0
    for i, ch in enumerate(text):
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


def _r_to_formulaic(expr: str) -> str:
    """Translate R-only arithmetic in a formula expression to Python (``^`` inside calls)."""
    # Inside I(...) and other calls R's ^ is a power; Python's ^ is XOR. Outside calls
    # (a top-level ``(a + b)^2``) it is formula crossing, which formulaic reads as ``**``.
    return expr.replace("^", "**")


_NAME = re.compile(r"^[A-Za-z_.][A-Za-z0-9_.]*$")


def _parse_group(text: str, formula: str, offset: int) -> list[tuple[tuple[str, ...], str]]:
    """Expand a grouping expression: ``a/b`` -> ``a``, ``b:a``; ``a:b`` stays one factor."""
    stripped = text.strip()
    if not stripped:
        raise FormulaError("a random-effects term has no grouping factor after '|'",
                           formula, offset)
    if stripped.startswith("(") and stripped.endswith(")"):
        stripped = stripped[1:-1].strip()
    nested = [p.strip() for p in stripped.split("/")]
    out: list[tuple[tuple[str, ...], str]] = []
    outer: list[str] = []
    for part in nested:
        factors = [f.strip() for f in part.split(":")]
        for f in factors:
            if not _NAME.match(f):
                pos = offset + text.find(f) if f else offset
                raise FormulaError(
                    f"grouping factor {f!r} must be a column name (or names joined by ':' "
                    "or '/')", formula, pos)
        # lme4 writes the inner factor first: (1 | a/b) gives groups "a" and "b:a".
        combined = factors + outer
        out.append((tuple(combined), ":".join(combined)))
        outer = combined
    return out


def _lhs_terms(lhs: str, formula: str, offset: int) -> tuple[bool, list[str]]:
    """The intercept flag and the term labels of a random term's left-hand side."""
    try:
        labels = list(term_labels(_r_to_formulaic(lhs)))
    except Exception as exc:  # formulaic raises several exception types for bad syntax
        raise FormulaError(f"cannot parse random-effects term {lhs!r}: {exc}", formula,
                           offset) from exc
    has_intercept = "1" in labels
    return has_intercept, [lab for lab in labels if lab != "1"]


def _random_term(body: str, formula: str, offset: int) -> list[RandomTermSpec]:
    """Parse the inside of ``( ... | ... )`` into one or more expanded terms."""
    double = "||" in body
    if double:
        lhs, grp = body.split("||", 1)
        grp_offset = offset + len(lhs) + 2
    else:
        lhs, grp = body.split("|", 1)
        grp_offset = offset + len(lhs) + 1
    if "|" in grp:
        raise FormulaError("a random-effects term has more than one bar", formula, grp_offset)
    if not lhs.strip():
        raise FormulaError("a random-effects term has nothing before '|'; write (1 | g) "
                           "for a random intercept", formula, offset)
    groups = _parse_group(grp, formula, grp_offset)
    lhs_formulaic = _r_to_formulaic(lhs.strip())
    if double:
        # lme4's expandDoubleVerts: one term for the intercept and one per other term,
        # so that no correlation is estimated between them.
        has_intercept, labels = _lhs_terms(lhs, formula, offset)
        pieces = (["1"] if has_intercept else []) + [f"0 + {lab}" for lab in labels]
    else:
        _lhs_terms(lhs, formula, offset)  # validate the syntax now, with a position
        pieces = [lhs_formulaic]
    return [RandomTermSpec(lhs=piece, group_factors=factors, group_name=name)
            for factors, name in groups for piece in pieces]


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
        With the position of the problem for a syntax error, a missing response or a
        term that lme4 would not accept.
    """
    if text.count("~") != 1:
        pos = text.find("~", text.find("~") + 1) if text.count("~") > 1 else None
        raise FormulaError("the formula needs exactly one '~' separating the response from "
                           "the predictors, as in 'y ~ x + (1 | g)'", text, pos)
    lhs, rhs = text.split("~")
    response = lhs.strip()
    if not response:
        raise FormulaError("the formula has no response before '~'", text, 0)
    rhs_offset = len(lhs) + 1
    fixed: list[str] = []
    random: list[RandomTermSpec] = []
    for piece, off in _split_top_level(rhs, "+", text, rhs_offset):
        stripped = piece.strip()
        lead = off + len(piece) - len(piece.lstrip())
        if not stripped:
            raise FormulaError("empty term (two '+' in a row or a trailing '+')", text, lead)
        if stripped.startswith("(") and stripped.endswith(")") and "|" in stripped:
            random.extend(_random_term(stripped[1:-1], text, lead + 1))
        elif "|" in stripped:
            raise FormulaError("a random-effects term must be in parentheses, as in "
                               "'(1 | g)'", text, lead + stripped.find("|"))
        else:
            fixed.append(_r_to_formulaic(stripped))
    fixed_text = " + ".join(fixed) if fixed else "1"
    try:
        term_labels(fixed_text)
    except Exception as exc:
        raise FormulaError(f"cannot parse the fixed-effects part {fixed_text!r}: {exc}",
                           text, rhs_offset) from exc
    return ParsedFormula(text=text, response=_r_to_formulaic(response), fixed=fixed_text,
                         random=tuple(random))
