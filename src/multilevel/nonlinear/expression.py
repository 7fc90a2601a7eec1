"""Nonlinear model expressions: ``Asym / (1 + exp((xmid - age) / scal))`` as data, not code.

The right-hand side of an ``nlme`` model is read with Python's ``ast`` after R's ``^`` is
written as ``**``, and only an allow-listed tree is accepted: numbers, names (data columns,
the model's parameters, ``pi``), ``+ - * / ^``, unary minus, and calls of the elementary
functions below, of R's self-starting models (``SSlogis(age, Asym, xmid, scal)``) and of
Python functions the user passes by name. Nothing is ever ``eval``-ed.

Evaluation is forward-mode differentiation: every intermediate value carries its derivative
with respect to each parameter, row by row, as a dict from the parameter's position to an
array (absent = zero). So any expression gets its exact gradient, and the self-starting
models contribute their analytic gradients through the chain rule. A user function without a
gradient gets central differences with respect to the arguments that depend on parameters.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from multilevel.errors import ArgumentError, FormulaError
from multilevel.nonlinear.selfstart import SELF_STARTING, SelfStartModel

Array = NDArray[np.float64]
Derivs = dict[int, Array]

# name -> (value, derivative) of the elementary functions, both of the argument's value
_ELEMENTARY: Mapping[str, tuple[Callable[[Array], Array], Callable[[Array], Array]]] = {
    "exp": (np.exp, np.exp),
    "log": (np.log, lambda x: 1.0 / x),
    "log10": (np.log10, lambda x: 1.0 / (x * math.log(10.0))),
    "log2": (np.log2, lambda x: 1.0 / (x * math.log(2.0))),
    "log1p": (np.log1p, lambda x: 1.0 / (1.0 + x)),
    "expm1": (np.expm1, np.exp),
    "sqrt": (np.sqrt, lambda x: 0.5 / np.sqrt(x)),
    "sin": (np.sin, np.cos),
    "cos": (np.cos, lambda x: -np.sin(x)),
    "tan": (np.tan, lambda x: 1.0 / np.cos(x) ** 2),
    "atan": (np.arctan, lambda x: 1.0 / (1.0 + x * x)),
    "tanh": (np.tanh, lambda x: 1.0 - np.tanh(x) ** 2),
    "abs": (np.abs, np.sign),
}
_CONSTANTS = {"pi": math.pi}
# central-difference step of user functions without a gradient, relative to |argument|
_STEP = 6e-6


@dataclass(frozen=True)
class Value:
    """A value and its derivatives with respect to the parameters (absent = zero)."""

    v: Array
    d: Derivs = field(default_factory=dict)


def _scale(d: Derivs, factor: Array) -> Derivs:
    return {k: g * factor for k, g in d.items()}


def _add(a: Derivs, b: Derivs, sign: float = 1.0) -> Derivs:
    out = dict(a)
    for k, g in b.items():
        out[k] = out[k] + sign * g if k in out else sign * g
    return out


def _binary(op: ast.operator, a: Value, b: Value) -> Value:
    if isinstance(op, ast.Add):
        return Value(a.v + b.v, _add(a.d, b.d))
    if isinstance(op, ast.Sub):
        return Value(a.v - b.v, _add(a.d, b.d, -1.0))
    if isinstance(op, ast.Mult):
        return Value(a.v * b.v, _add(_scale(a.d, b.v), _scale(b.d, a.v)))
    if isinstance(op, ast.Div):
        q = a.v / b.v
        return Value(q, _add(_scale(a.d, 1.0 / b.v), _scale(b.d, -q / b.v)))
    # power: d(a^b) = b a^(b-1) da + a^b log(a) db (the log only where b has derivatives)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.power(a.v, b.v)
        d = _scale(a.d, b.v * np.power(a.v, b.v - 1.0)) if a.d else {}
        if b.d:
            d = _add(d, _scale(b.d, p * np.log(a.v)))
    return Value(p, d)


@dataclass(frozen=True)
class UserFunction:
    """A Python function of the model: ``value(*args)`` returns one value per row;
    ``gradient(*args)``, if given, the (n, len(args)) derivatives with respect to the
    arguments."""

    value: Callable[..., Any]
    gradient: Callable[..., Any] | None = None


def user_functions(functions: Mapping[str, Any] | None) -> dict[str, UserFunction]:
    """Check ``functions={"name": f}`` or ``{"name": (f, gradient)}``."""
    out: dict[str, UserFunction] = {}
    for name, spec in (functions or {}).items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ArgumentError(f"functions: {name!r:.60} is not a valid function name")
        if name in _ELEMENTARY or name in SELF_STARTING:
            raise ArgumentError(f"functions: {name!r} would hide the built-in {name}; "
                                "give your function another name")
        if callable(spec):
            out[name] = UserFunction(spec)
        elif (isinstance(spec, tuple) and len(spec) == 2 and callable(spec[0])
              and callable(spec[1])):
            out[name] = UserFunction(spec[0], spec[1])
        else:
            raise ArgumentError(f"functions[{name!r}] must be a callable or a pair "
                                "(function, gradient)")
    return out


# R names may hold dots (``age.days``, ``.x``): they are written as Python identifiers for the
# parser (``.`` -> DOT) and read back wherever a name is looked up
DOT = "_dot_"
_R_NAME = re.compile(r"(?<![\w.])([A-Za-z.][\w.]*)")


def _mangle(text: str) -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        if "." not in name or re.fullmatch(r"\.\d.*", name):
            return name  # no dot, or a number such as .5
        return name.replace(".", DOT)
    return _R_NAME.sub(one, text)


def unmangle(name: str) -> str:
    """An R name as written, from its parsed form."""
    return name.replace(DOT, ".")


def parse_expression(text: str, formula: str) -> ast.expr:
    """The allow-listed tree of one R expression (``^`` read as a power; names may hold
    dots, as R's)."""
    try:
        tree = ast.parse(_mangle(text.replace("^", "**").strip()), mode="eval")
    except SyntaxError as exc:
        raise FormulaError(f"cannot read {text.strip()!r} as an expression ({exc.msg})",
                           formula) from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Expression | ast.Name | ast.Load | ast.operator
                      | ast.unaryop):
            if isinstance(node, ast.operator) and not isinstance(
                    node, ast.Add | ast.Sub | ast.Mult | ast.Div | ast.Pow):
                raise FormulaError(f"operator {type(node).__name__} is not allowed in a "
                                   "nonlinear model (use + - * / ^)", formula)
            if isinstance(node, ast.unaryop) and not isinstance(node, ast.USub | ast.UAdd):
                raise FormulaError("only unary minus is allowed in a nonlinear model",
                                   formula)
            continue
        if isinstance(node, ast.BinOp | ast.UnaryOp):
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not \
                isinstance(node.value, bool):
            continue
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not \
                node.keywords:
            continue
        piece = unmangle(ast.unparse(node))
        raise FormulaError(f"{piece!r} is not allowed in a nonlinear model: it "
                           "may use numbers, data columns, parameters, + - * / ^ and calls "
                           f"of {', '.join(sorted(_ELEMENTARY))}, R's self-starting models "
                           "or functions passed in functions=", formula)
    return tree.body


def names_in(tree: ast.expr) -> tuple[list[str], list[str]]:
    """The variable names and the called function names of a tree, each in order, unique."""
    callee = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    names: list[str] = []
    calls: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            target = calls if id(node) in callee else names
            if unmangle(node.id) not in target:
                target.append(unmangle(node.id))
    return names, calls


@dataclass(frozen=True)
class Evaluator:
    """Evaluates a parsed tree on data columns and per-row parameter values."""

    parameters: tuple[str, ...]
    functions: Mapping[str, UserFunction]
    formula: str

    def run(self, tree: ast.expr, columns: Mapping[str, Array],
            phi: Mapping[str, Array]) -> Value:
        """The value of ``tree`` and its derivatives with respect to each parameter."""
        return self._eval(tree, columns, phi)

    def _eval(self, node: ast.expr, columns: Mapping[str, Array],
              phi: Mapping[str, Array]) -> Value:
        if isinstance(node, ast.Constant):
            assert isinstance(node.value, int | float)
            return Value(np.asarray(float(node.value)))
        if isinstance(node, ast.Name):
            name = unmangle(node.id)
            if name in phi:
                return Value(phi[name], {self.parameters.index(name): np.ones_like(
                    phi[name])})
            if name in columns:
                return Value(columns[name])
            if name in _CONSTANTS:
                return Value(np.asarray(_CONSTANTS[name]))
            raise FormulaError(f"{name!r} is neither a data column nor a parameter "
                               f"({', '.join(self.parameters)})", self.formula)
        if isinstance(node, ast.UnaryOp):
            inner = self._eval(node.operand, columns, phi)
            if isinstance(node.op, ast.USub):
                return Value(-inner.v, {k: -g for k, g in inner.d.items()})
            return inner
        if isinstance(node, ast.BinOp):
            return _binary(node.op, self._eval(node.left, columns, phi),
                           self._eval(node.right, columns, phi))
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        args = [self._eval(a, columns, phi) for a in node.args]
        name = unmangle(node.func.id)
        if name in _ELEMENTARY:
            if len(args) != 1:
                raise FormulaError(f"{name}() takes one argument, got {len(args)}",
                                   self.formula)
            f, df = _ELEMENTARY[name]
            with np.errstate(divide="ignore", invalid="ignore"):
                return Value(f(args[0].v), _scale(args[0].d, df(args[0].v)))
        if name in SELF_STARTING:
            return self._self_start(SELF_STARTING[name], args)
        if name in self.functions:
            return self._user(name, self.functions[name], args)
        raise FormulaError(f"function {name!r} is not known: use {', '.join(sorted(_ELEMENTARY))}"
                           ", R's self-starting models, or pass it in functions=",
                           self.formula)

    def _self_start(self, model: SelfStartModel, args: list[Value]) -> Value:
        n_cov = model.covariates
        if len(args) != n_cov + len(model.parameters):
            raise FormulaError(f"{model.name} takes {n_cov} covariate(s) and the parameters "
                               f"{', '.join(model.parameters)}; got {len(args)} argument(s)",
                               self.formula)
        if any(a.d for a in args[:n_cov]):
            raise FormulaError(f"{model.name}'s covariate argument(s) may not depend on the "
                               "parameters", self.formula)
        values = [a.v for a in args]
        grad = model.gradient(*values)
        d: Derivs = {}
        for j, a in enumerate(args[n_cov:]):
            d = _add(d, _scale(a.d, grad[:, j]))
        return Value(model.value(*values), d)

    def _user(self, name: str, fn: UserFunction, args: list[Value]) -> Value:
        values = [a.v for a in args]
        try:
            out = np.asarray(fn.value(*values), dtype=float)
        except Exception as exc:  # a user's function: any failure is reported as theirs
            raise ArgumentError(f"functions[{name!r}] failed: {exc}") from None
        n = max((np.size(v) for v in values), default=1)
        if out.shape not in ((n,), ()):
            raise ArgumentError(f"functions[{name!r}] must return one value per row "
                                f"({n}), got shape {out.shape}")
        d: Derivs = {}
        moving = [j for j, a in enumerate(args) if a.d]
        if not moving:
            return Value(out, d)
        if fn.gradient is not None:
            try:
                grad = np.asarray(fn.gradient(*values), dtype=float)
            except Exception as exc:  # a user's function
                raise ArgumentError(f"the gradient of functions[{name!r}] failed: {exc}") \
                    from None
            if grad.ndim != 2 or grad.shape[1] != len(args):
                raise ArgumentError(f"the gradient of functions[{name!r}] must be an array "
                                    f"(rows, {len(args)}), got shape {grad.shape}")
            columns = {j: grad[:, j] for j in moving}
        else:
            columns = {}
            for j in moving:
                h = _STEP * np.maximum(np.abs(values[j]), 1.0)
                up = [*values[:j], values[j] + h, *values[j + 1:]]
                down = [*values[:j], values[j] - h, *values[j + 1:]]
                columns[j] = (np.asarray(fn.value(*up), dtype=float)
                              - np.asarray(fn.value(*down), dtype=float)) / (2 * h)
        for j in moving:
            d = _add(d, _scale(args[j].d, columns[j]))
        return Value(out, d)
