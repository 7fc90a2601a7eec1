"""A variance function or correlation structure given on the command line as the text of its
constructor call, e.g. ``VarIdent(form='~ 1 | Sex')``, ``CorARMA(p=1, q=1)`` or
``VarComb(VarIdent(form='~1|Sex'), VarPower(form='~age'))``.

The text is data, not code: Python's ``ast`` reads its syntax tree, and only what an allow-list
names is accepted -- the structure classes, their documented arguments by keyword or position,
literal values (numbers, 'text', True/False/None, [lists] and {'name': number} mappings of
numbers) and, inside ``VarComb``, further variance functions. Nothing is evaluated or imported;
anything else (a name, an attribute, an operator, a call of something else, ``*args``) is a
one-line :class:`~multilevel.errors.ArgumentError` that names the option and what is wrong.
"""

from __future__ import annotations

import ast
import dataclasses
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from multilevel import (
    CorAR1,
    CorARMA,
    CorCAR1,
    CorCompSymm,
    CorExp,
    CorGaus,
    CorLin,
    CorRatio,
    CorSpher,
    CorSymm,
    PdBlocked,
    PdDiag,
    PdSymm,
    VarComb,
    VarConstPower,
    VarExp,
    VarFixed,
    VarIdent,
    VarPower,
)
from multilevel.errors import ArgumentError, MultilevelError

if TYPE_CHECKING:  # the base classes, for annotations only (the CLI uses the public names)
    from multilevel.structures import CorrelationStructure, VarianceFunction

# A spec is a short constructor call; longer text is refused before parsing (the parser's
# memory and recursion grow with the text, and no real structure needs more).
MAX_SPEC_LENGTH = 1000
# ARMA orders beyond this are no model of within-group correlation (and would only allocate).
MAX_ARMA_ORDER = 100

EXAMPLES = {"--weights": "VarIdent(form='~ 1 | Sex')",
            "--correlation": "CorAR1(form='~ 1 | Subject')",
            "--random": "PdDiag('lKa + lCl ~ 1')"}

# The arguments each class takes from a spec: its constructor's, less those that are set by
# fitting (``levels``) or that the class does not use (``value`` of VarConstPower / VarFixed).
_SPATIAL = ("value", "form", "nugget", "metric")
VARIANCE_FUNCTIONS: dict[str, tuple[type[VarianceFunction], tuple[str, ...]]] = {
    "VarIdent": (VarIdent, ("form", "value")),
    "VarPower": (VarPower, ("form", "value")),
    "VarExp": (VarExp, ("form", "value")),
    "VarConstPower": (VarConstPower, ("form", "const", "power")),
    "VarFixed": (VarFixed, ("form",)),
}
CORRELATION_STRUCTURES: dict[str, tuple[type[CorrelationStructure], tuple[str, ...]]] = {
    "CorAR1": (CorAR1, ("value", "form")),
    "CorCAR1": (CorCAR1, ("value", "form")),
    "CorARMA": (CorARMA, ("value", "form", "p", "q")),
    "CorCompSymm": (CorCompSymm, ("value", "form")),
    "CorSymm": (CorSymm, ("value", "form")),
    "CorExp": (CorExp, _SPATIAL),
    "CorGaus": (CorGaus, _SPATIAL),
    "CorLin": (CorLin, _SPATIAL),
    "CorSpher": (CorSpher, _SPATIAL),
    "CorRatio": (CorRatio, _SPATIAL),
}
COMBINATION = "VarComb"


class _Bad(Exception):
    """A fault in the spec; :func:`_parse` adds the option and the spec to its message."""


def parse_weights(spec: str) -> VarianceFunction | VarComb:
    """The variance function that ``--weights SPEC`` describes."""
    tree = _parse(spec, "--weights")
    try:
        return _variance(tree)
    except _Bad as exc:
        raise _error("--weights", spec, str(exc)) from None


def parse_correlation(spec: str) -> CorrelationStructure:
    """The correlation structure that ``--correlation SPEC`` describes."""
    tree = _parse(spec, "--correlation")
    try:
        return _correlation(tree)
    except _Bad as exc:
        raise _error("--correlation", spec, str(exc)) from None


def parse_random(spec: str) -> Any:
    """``--random``: nlme's formula text as it is (``'Asym ~ 1 | Tree'``), or a covariance
    structure's call, ``PdDiag('lKa + lCl ~ 1')``, ``PdSymm('Asym + xmid ~ 1')`` or
    ``PdBlocked(['Asym ~ 1', PdDiag('xmid + scal ~ 1')])`` (read as data, as the other
    specs)."""
    if not spec.strip().startswith("Pd"):
        return spec
    call = _parse(spec, "--random")
    try:
        return _pd(call)
    except _Bad as exc:
        raise _error("--random", spec, str(exc)) from None


def _pd(call: ast.Call) -> PdDiag | PdSymm | PdBlocked:
    name = _class_name(call)
    if name not in ("PdDiag", "PdSymm", "PdBlocked") or call.keywords or len(call.args) != 1:
        raise _Bad(f"{name} is not a random-effects structure: write PdDiag('a + b ~ 1'), "
                   "PdSymm('a + b ~ 1') or PdBlocked(['a ~ 1', 'b + c ~ 1'])")
    (arg,) = call.args
    if name == "PdBlocked":
        if not isinstance(arg, ast.List) or not arg.elts:
            raise _Bad("PdBlocked takes a list of blocks, e.g. PdBlocked(['a ~ 1', 'b ~ 1'])")
        blocks = [_pd(b) if isinstance(b, ast.Call) else _text(b, "a PdBlocked block")
                  for b in arg.elts]
        return _build(lambda: PdBlocked(blocks))  # type: ignore[arg-type]
    text = _text(arg, name)
    return _build(lambda: (PdDiag if name == "PdDiag" else PdSymm)(text))


def _error(option: str, spec: str, message: str) -> ArgumentError:
    return ArgumentError(f"{option} {spec!r:.80}: {message}")


def _parse(spec: str, option: str) -> ast.Call:
    if len(spec) > MAX_SPEC_LENGTH:
        raise _error(option, spec, f"longer than {MAX_SPEC_LENGTH} characters; a structure is "
                                   f"one short call, e.g. {EXAMPLES[option]}")
    try:
        tree = ast.parse(spec.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise _error(option, spec, f"not a structure's call; write it as, e.g., "
                                   f"{EXAMPLES[option]}") from None
    if not isinstance(tree, ast.Call):
        raise _error(option, spec, f"not a structure's call; write it as, e.g., "
                                   f"{EXAMPLES[option]}")
    return tree


def _class_name(call: ast.Call) -> str:
    if not isinstance(call.func, ast.Name):
        raise _Bad(f"{_source(call.func)!r} is not a structure's name (write the class's bare "
                   "name, e.g. VarIdent, without a module)")
    return call.func.id


def _variance(call: ast.Call) -> VarianceFunction | VarComb:
    name = _class_name(call)
    if name == COMBINATION:
        if call.keywords:
            raise _Bad(f"{COMBINATION} takes variance functions by position only, e.g. "
                       f"{COMBINATION}(VarIdent(form='~ 1 | Sex'), VarPower(form='~ age'))")
        if not call.args:
            raise _Bad(f"{COMBINATION}() needs one or more variance functions")
        parts = []
        for arg in call.args:
            if not isinstance(arg, ast.Call):
                raise _Bad(f"{COMBINATION} combines variance functions; "
                           f"{_source(arg)!r} is not one")
            part = _variance(arg)
            if isinstance(part, VarComb):
                raise _Bad(f"a {COMBINATION} inside a {COMBINATION}: list its variance "
                           "functions in the outer one")
            parts.append(part)
        return _build(lambda: VarComb(*parts))
    if name not in VARIANCE_FUNCTIONS:
        if name in CORRELATION_STRUCTURES:
            raise _Bad(f"{name} is a correlation structure: give it to --correlation")
        raise _Bad(_unknown(name, [*VARIANCE_FUNCTIONS, COMBINATION], "variance function"))
    cls, allowed = VARIANCE_FUNCTIONS[name]
    return _instance(call, name, cls, allowed, _CHECKS)


def _correlation(call: ast.Call) -> CorrelationStructure:
    name = _class_name(call)
    if name not in CORRELATION_STRUCTURES:
        if name in VARIANCE_FUNCTIONS or name == COMBINATION:
            raise _Bad(f"{name} is a variance function: give it to --weights")
        raise _Bad(_unknown(name, list(CORRELATION_STRUCTURES), "correlation structure"))
    cls, allowed = CORRELATION_STRUCTURES[name]
    return _instance(call, name, cls, allowed, _CORRELATION_CHECKS)


def _unknown(name: str, known: list[str], what: str) -> str:
    # R's spellings (varIdent, corAR1) differ from ours in the case of the first letter only
    close = [k for k in known if k.lower() == name.lower()]
    hint = f"; did you mean {close[0]}?" if close else f" (one of {', '.join(known)})"
    return f"{name!r} is not a {what}{hint}"


def _positional_order(cls: type, allowed: tuple[str, ...]) -> list[str]:
    """The parameters that positional arguments fill: the constructor's own order, up to the
    first parameter a spec may not set (so that a position means what it means in Python)."""
    order = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.name not in allowed:
            break
        order.append(f.name)
    return order


def _instance(call: ast.Call, name: str, cls: type, allowed: tuple[str, ...],
              checks: dict[str, Callable[[ast.AST, str], Any]]) -> Any:
    order = _positional_order(cls, allowed)
    if len(call.args) > len(order):
        by_name = ", ".join(f"{a}=..." for a in allowed)
        raise _Bad(f"{name} takes at most {len(order)} argument(s) by position "
                   f"({', '.join(order) or 'none'}); give the others by name: {by_name}")
    kwargs: dict[str, Any] = {}
    given = [(param, arg) for param, arg in zip(order, call.args, strict=False)]
    for arg in call.args:
        if isinstance(arg, ast.Starred):
            raise _Bad(f"'{_source(arg)}' is not allowed; give each argument")
    for kw in call.keywords:
        if kw.arg is None:
            raise _Bad(f"'**{_source(kw.value)}' is not allowed; name each argument")
        given.append((kw.arg, kw.value))
    for param, node in given:
        if param not in allowed:
            raise _Bad(f"{name} has no argument {param!r} (it takes {', '.join(allowed)})")
        if param in kwargs:
            raise _Bad(f"{name}'s argument {param!r} is given twice")
        kwargs[param] = checks[param](node, f"{name}'s {param}")
    return _build(lambda: cls(**kwargs))


def _build(make: Callable[[], Any]) -> Any:
    try:
        return make()
    except MultilevelError as exc:  # the structure's own checks (a form without strata, ...)
        raise _Bad(str(exc)) from None


# ---- literal values ---------------------------------------------------------------------------

def _source(node: ast.AST) -> str:
    try:
        return ast.unparse(node)
    except Exception:  # unparse of a tree the parser made does not fail; a guard for messages
        return type(node).__name__


def _not_literal(node: ast.AST, where: str, takes: str) -> _Bad:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        if node.value.lstrip().startswith("~"):
            return _Bad(f"{where} must be {takes}; a form is given by name: "
                        f"form={node.value!r:.60}")
        return _Bad(f"{where} must be {takes}; got the text {node.value!r:.60}")
    return _Bad(f"{where} must be {takes}; got {_source(node)[:60]} (only literal values "
                "are read, nothing is evaluated)")


def _number(node: ast.AST, where: str) -> float:
    value: Any = None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = _number(node.operand, where)
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.Constant):
        value = node.value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _not_literal(node, where, "a number")
    number = float(value)
    if not math.isfinite(number):
        raise _Bad(f"{where} must be a finite number; got {_source(node)[:40]}")
    return number


def _values(node: ast.AST, where: str, strata: bool = True) -> Any:
    """A starting value: a number, a list of numbers, a {'stratum': number} mapping (where
    there are strata), or None."""
    takes = ("a number, a list of numbers, a {'stratum': number} mapping or None" if strata
             else "a number, a list of numbers or None")
    if isinstance(node, ast.Constant) and node.value is None:
        return None
    if isinstance(node, ast.List | ast.Tuple):
        return [_number(item, where) for item in node.elts]
    if isinstance(node, ast.Dict):
        if not strata:
            raise _Bad(f"{where} must be {takes}; a correlation structure has no strata "
                       "to name")
        out: dict[str, float] = {}
        for key, item in zip(node.keys, node.values, strict=True):
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                shown = "**" + _source(item) if key is None else _source(key)
                raise _Bad(f"{where}: the keys of a mapping are strata in quotes, e.g. "
                           f"{{'Female': 1.2}}; got {shown!r:.40}")
            if key.value in out:
                raise _Bad(f"{where}: stratum {key.value!r:.40} is given twice")
            out[key.value] = _number(item, where)
        return out
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        raise _not_literal(node, where, takes)
    if isinstance(node, ast.Constant | ast.UnaryOp):
        return _number(node, where)
    raise _not_literal(node, where, takes)


def _text(node: ast.AST, where: str) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    hint = " (only literal values are read, nothing is evaluated)"
    if _source(node).startswith("~"):
        hint = f" (put a form in quotes: '{_source(node)}')"
    raise _Bad(f"{where} must be text in quotes; got {_source(node)[:60]}{hint}")


def _order(node: ast.AST, where: str) -> int:
    sign, inner = 1, node
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        sign, inner = (-1 if isinstance(node.op, ast.USub) else 1), node.operand
    value = inner.value if isinstance(inner, ast.Constant) else None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _not_literal(node, where, "a whole number")
    value *= sign
    if not 0 <= value <= MAX_ARMA_ORDER:
        raise _Bad(f"{where} must be between 0 and {MAX_ARMA_ORDER}; got {value}")
    return value


def _flag(node: ast.AST, where: str) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, bool):
        return node.value
    raise _not_literal(node, where, "True or False")


def _correlation_values(node: ast.AST, where: str) -> Any:
    """A correlation structure's starting value: a number or a list of numbers (no strata)."""
    return _values(node, where, strata=False)


_CHECKS: dict[str, Callable[[ast.AST, str], Any]] = {
    "form": _text, "metric": _text, "value": _values, "const": _values, "power": _values,
    "p": _order, "q": _order, "nugget": _flag,
}
_CORRELATION_CHECKS = {**_CHECKS, "value": _correlation_values}
