"""Nonlinear model expressions in ``jax.numpy``, for the Bayesian nonlinear mixed model.

``ml.nlme`` reads a model such as ``Asym / (1 + exp((xmid - age) / scal))`` into an
allow-listed tree (:func:`multilevel.nonlinear.expression.parse_expression`) and evaluates it
in numpy with forward-mode derivatives. The NUTS sampler needs the same tree as a function
that jax can trace, so that jax differentiates it: :func:`jax_function` turns the tree into
``f(columns, phi)`` built from ``jax.numpy`` operations, and :func:`jax_self_start` gives the
value functions of R's ten self-starting models (``SSlogis`` ...) in ``jax.numpy``.

Names resolve as in the numpy :class:`~multilevel.nonlinear.expression.Evaluator`: a model
parameter first, then a data column, then the constant ``pi``; R's dotted names
(``age.days``) are read back from their parsed form. The tree is checked once when
:func:`jax_function` is called, with the Evaluator's :class:`~multilevel.errors.FormulaError`
messages, so that a bad model fails before any sampling starts.

User functions (``functions={"f": f}``) are called with jax arrays and must therefore be
written with ``jax.numpy``; jax differentiates them. A gradient given as ``(f, gradient)``
is used by ``ml.nlme`` only: here ``f`` alone is traced and jax's derivative replaces it.

This module imports jax at the top: only the Bayesian code imports it, never
``import multilevel``.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from multilevel.errors import ArgumentError, FormulaError
from multilevel.nonlinear.expression import UserFunction, names_in, unmangle
from multilevel.nonlinear.selfstart import SELF_STARTING, self_starting_model

#: ``f(columns, phi)``: data columns and per-row parameter values -> model values per row
ExpressionFunction = Callable[[Mapping[str, jax.Array], Mapping[str, jax.Array]], jax.Array]

# the elementary functions of nonlinear.expression, in jax.numpy (the same names: a test
# holds the two tables together); jax supplies the derivatives
_ELEMENTARY: Mapping[str, Callable[[jax.Array], jax.Array]] = {
    "exp": jnp.exp,
    "log": jnp.log,
    "log10": jnp.log10,
    "log2": jnp.log2,
    "log1p": jnp.log1p,
    "expm1": jnp.expm1,
    "sqrt": jnp.sqrt,
    "sin": jnp.sin,
    "cos": jnp.cos,
    "tan": jnp.tan,
    "atan": jnp.arctan,
    "tanh": jnp.tanh,
    "abs": jnp.abs,
}
_CONSTANTS: Mapping[str, float] = {"pi": math.pi}

# below this |u|, (1 - exp(-u)) / u of SSfol is its Taylor series (error u^3 / 24 < 1e-16):
# the quotient itself is 0 / 0 at u = 0, where the absorption and elimination rates meet
_FOL_SERIES = 1e-5


# ---------------------------------------------------------------------------------------------
# R's self-starting models: the value formulas of nonlinear/selfstart.py, in jax.numpy

def _logis(x: jax.Array, asym: jax.Array, xmid: jax.Array, scal: jax.Array) -> jax.Array:
    # the logistic function itself rather than 1 / (1 + exp(.)): its derivative stays finite
    # where exp overflows
    return asym * jax.nn.sigmoid((x - xmid) / scal)


def _fpl(x: jax.Array, a: jax.Array, b: jax.Array, xmid: jax.Array,
         scal: jax.Array) -> jax.Array:
    return a + (b - a) * jax.nn.sigmoid((x - xmid) / scal)


def _asymp(x: jax.Array, asym: jax.Array, r0: jax.Array, lrc: jax.Array) -> jax.Array:
    return asym + (r0 - asym) * jnp.exp(-jnp.exp(lrc) * x)


def _asymp_off(x: jax.Array, asym: jax.Array, lrc: jax.Array, c0: jax.Array) -> jax.Array:
    # 1 - exp(-t) as -expm1(-t): no cancellation near the offset c0, where t is small
    return -asym * jnp.expm1(-jnp.exp(lrc) * (x - c0))


def _asymp_orig(x: jax.Array, asym: jax.Array, lrc: jax.Array) -> jax.Array:
    return -asym * jnp.expm1(-jnp.exp(lrc) * x)


def _micmen(x: jax.Array, vm: jax.Array, k: jax.Array) -> jax.Array:
    return vm * x / (k + x)


def _gompertz(x: jax.Array, asym: jax.Array, b2: jax.Array, b3: jax.Array) -> jax.Array:
    return asym * jnp.exp(-b2 * jnp.power(b3, x))


def _weibull(x: jax.Array, asym: jax.Array, drop: jax.Array, lrc: jax.Array,
             pwr: jax.Array) -> jax.Array:
    # jax's derivative of x^pwr in pwr is x^pwr log(x) with log(0) read as 0: the limit 0 at
    # x = 0 that selfstart.py's gradient also uses
    return asym - drop * jnp.exp(-jnp.exp(lrc) * jnp.power(x, pwr))


def _biexp(x: jax.Array, a1: jax.Array, lrc1: jax.Array, a2: jax.Array,
           lrc2: jax.Array) -> jax.Array:
    return a1 * jnp.exp(-jnp.exp(lrc1) * x) + a2 * jnp.exp(-jnp.exp(lrc2) * x)


def _one_minus_exp_over(u: jax.Array) -> jax.Array:
    """(1 - exp(-u)) / u, finite with a finite derivative at u = 0 (where it is 1)."""
    small = jnp.abs(u) < _FOL_SERIES
    # the division is taken on a safe u so that its derivative is not NaN where the series
    # branch is chosen (jnp.where passes the derivatives of both branches)
    safe = jnp.where(small, 1.0, u)
    return jnp.where(small, 1.0 - u / 2.0 + u * u / 6.0, -jnp.expm1(-safe) / safe)


def _fol(dose: jax.Array, t: jax.Array, lke: jax.Array, lka: jax.Array,
         lcl: jax.Array) -> jax.Array:
    # (exp(-ke t) - exp(-ka t)) / (ka - ke) = t exp(-ke t) (1 - exp(-u)) / u, u = (ka - ke) t:
    # the same value as selfstart.py's, without its 0 / 0 when ka = ke
    ke = jnp.exp(lke)
    u = ke * jnp.expm1(lka - lke) * t
    return dose * jnp.exp(lke + lka - lcl) * t * jnp.exp(-ke * t) * _one_minus_exp_over(u)


_SELF_START: Mapping[str, Callable[..., jax.Array]] = {
    "SSlogis": _logis,
    "SSfpl": _fpl,
    "SSasymp": _asymp,
    "SSasympOff": _asymp_off,
    "SSasympOrig": _asymp_orig,
    "SSmicmen": _micmen,
    "SSgompertz": _gompertz,
    "SSweibull": _weibull,
    "SSbiexp": _biexp,
    "SSfol": _fol,
}


def jax_self_start(name: str) -> Callable[..., jax.Array]:
    """The value function of R's self-starting model ``name`` in ``jax.numpy``.

    Parameters
    ----------
    name : str
        R's name: ``"SSlogis"``, ``"SSfpl"``, ``"SSasymp"``, ``"SSasympOff"``,
        ``"SSasympOrig"``, ``"SSbiexp"``, ``"SSfol"``, ``"SSgompertz"``, ``"SSmicmen"`` or
        ``"SSweibull"``.

    Returns
    -------
    callable
        ``value(*args)``: the covariate(s), then the parameters in R's order (as
        :meth:`multilevel.nonlinear.selfstart.SelfStartModel.value`; ``SSfol``:
        ``value(Dose, time, lKe, lKa, lCl)``), each a scalar or an array, broadcast by
        jax.numpy. Traceable by ``jax.jit``, ``jax.grad`` and ``jax.vmap``.

    Raises
    ------
    ArgumentError
        ``name`` is not one of R's self-starting models (the message lists them); or, when
        the returned function is called, the wrong number of arguments.
    """
    model = self_starting_model(name)
    value = _SELF_START[model.name]
    names = [*(["Dose", "input"] if model.covariates == 2 else ["input"]), *model.parameters]

    def checked(*args: jax.Array) -> jax.Array:
        if len(args) != len(names):
            raise ArgumentError(f"{model.name} takes {len(names)} arguments "
                                f"({', '.join(names)}); got {len(args)}.")
        return value(*args)

    checked.__name__ = checked.__qualname__ = model.name
    checked.__doc__ = f"R's {model.name}({', '.join(names)}) in jax.numpy."
    return checked


# ---------------------------------------------------------------------------------------------
# the model expression

def _unknown_name(name: str, parameters: Sequence[str], formula: str) -> FormulaError:
    return FormulaError(f"{name!r} is neither a data column nor a parameter "
                        f"({', '.join(parameters)})", formula)


def _not_jax(name: str, exc: Exception) -> ArgumentError:
    return ArgumentError(
        f"functions[{name!r}] cannot be traced by jax ({type(exc).__name__}): the Bayesian "
        "fit needs functions written with jax.numpy (jnp.exp, jnp.where, ... instead of "
        "numpy calls, float() or Python if on the arguments), which jax then differentiates")


@dataclass(frozen=True)
class _Check:
    """The build-time walk of a tree, in the numpy Evaluator's order (arguments before the
    function), raising its errors; returns whether a node depends on the parameters."""

    parameters: tuple[str, ...]
    functions: Mapping[str, UserFunction]
    formula: str
    columns: Collection[str] | None

    def depends(self, node: ast.expr) -> bool:
        if isinstance(node, ast.Constant):
            return False
        if isinstance(node, ast.Name):
            name = unmangle(node.id)
            if name in self.parameters:
                return True
            if (self.columns is not None and name not in self.columns
                    and name not in _CONSTANTS):
                raise _unknown_name(name, self.parameters, self.formula)
            return False
        if isinstance(node, ast.UnaryOp):
            return self.depends(node.operand)
        if isinstance(node, ast.BinOp):
            left = self.depends(node.left)
            return self.depends(node.right) or left
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        moving = [self.depends(a) for a in node.args]
        name = unmangle(node.func.id)
        if name in _ELEMENTARY:
            if len(moving) != 1:
                raise FormulaError(f"{name}() takes one argument, got {len(moving)}",
                                   self.formula)
        elif name in SELF_STARTING:
            model = SELF_STARTING[name]
            n_cov = model.covariates
            if len(moving) != n_cov + len(model.parameters):
                raise FormulaError(f"{model.name} takes {n_cov} covariate(s) and the "
                                   f"parameters {', '.join(model.parameters)}; got "
                                   f"{len(moving)} argument(s)", self.formula)
            if any(moving[:n_cov]):
                raise FormulaError(f"{model.name}'s covariate argument(s) may not depend on "
                                   "the parameters", self.formula)
        elif name in self.functions:
            _probe(name, self.functions[name], len(moving))
        else:
            raise FormulaError(f"function {name!r} is not known: use "
                               f"{', '.join(sorted(_ELEMENTARY))}, R's self-starting models, "
                               "or pass it in functions=", self.formula)
        return any(moving)


def _probe(name: str, fn: UserFunction, n_args: int) -> None:
    """Trace a user function once on scalar arguments: a numpy-only function fails here, at
    build time. Other failures (a function that needs vectors, say) are left to the call."""
    arg = jax.ShapeDtypeStruct((), jnp.result_type(float))
    try:
        jax.eval_shape(fn.value, *([arg] * n_args))
    except jax.errors.JAXTypeError as exc:
        raise _not_jax(name, exc) from None
    except Exception:  # a user's function: reported with its rows when it is called
        pass


@dataclass(frozen=True)
class _Env:
    columns: Mapping[str, jax.Array]
    phi: Mapping[str, jax.Array]


Node = Callable[[_Env], jax.Array]


@dataclass(frozen=True)
class _Compiler:
    """Turns a checked tree into nested closures of jax.numpy operations."""

    parameters: tuple[str, ...]
    functions: Mapping[str, UserFunction]
    formula: str

    def node(self, node: ast.expr) -> Node:
        if isinstance(node, ast.Constant):
            assert isinstance(node.value, int | float)
            number = float(node.value)
            # weakly typed, so that a literal never widens float32 data to float64
            return lambda env: jnp.asarray(number)
        if isinstance(node, ast.Name):
            return self._name(unmangle(node.id))
        if isinstance(node, ast.UnaryOp):
            inner = self.node(node.operand)
            if isinstance(node.op, ast.USub):
                return lambda env: -inner(env)
            return inner
        if isinstance(node, ast.BinOp):
            return self._binary(node)
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        args = [self.node(a) for a in node.args]
        name = unmangle(node.func.id)
        if name in _ELEMENTARY:
            f, (arg,) = _ELEMENTARY[name], args
            return lambda env: f(arg(env))
        if name in SELF_STARTING:
            value = _SELF_START[name]
            return lambda env: value(*(a(env) for a in args))
        return self._user(name, self.functions[name], args)

    def _name(self, name: str) -> Node:
        if name in self.parameters:
            def parameter(env: _Env) -> jax.Array:
                if name not in env.phi:
                    raise ArgumentError(f"phi has no value for the parameter {name!r}; give "
                                        f"all of {', '.join(self.parameters)}")
                return jnp.asarray(env.phi[name])
            return parameter

        def column(env: _Env) -> jax.Array:
            if name in env.columns:
                return jnp.asarray(env.columns[name])
            if name in _CONSTANTS:
                return jnp.asarray(_CONSTANTS[name])
            raise _unknown_name(name, self.parameters, self.formula)
        return column

    def _binary(self, node: ast.BinOp) -> Node:
        left, right, op = self.node(node.left), self.node(node.right), node.op
        if isinstance(op, ast.Add):
            return lambda env: left(env) + right(env)
        if isinstance(op, ast.Sub):
            return lambda env: left(env) - right(env)
        if isinstance(op, ast.Mult):
            return lambda env: left(env) * right(env)
        if isinstance(op, ast.Div):
            return lambda env: left(env) / right(env)
        assert isinstance(op, ast.Pow)
        exponent = node.right
        if isinstance(exponent, ast.Constant) and isinstance(exponent.value, int):
            # x^2 as repeated multiplication: its derivative is finite for x <= 0 too
            k = exponent.value
            return lambda env: jnp.power(left(env), k)
        return lambda env: jnp.power(left(env), right(env))

    def _user(self, name: str, fn: UserFunction, args: list[Node]) -> Node:
        def call(env: _Env) -> jax.Array:
            values = [a(env) for a in args]
            try:
                out = jnp.asarray(fn.value(*values))
            except jax.errors.JAXTypeError as exc:
                raise _not_jax(name, exc) from None
            except Exception as exc:  # a user's function: any failure is reported as theirs
                raise ArgumentError(f"functions[{name!r}] failed: {exc}") from None
            rows = jnp.broadcast_shapes(*(jnp.shape(v) for v in values))
            if out.shape not in (rows, ()):
                raise ArgumentError(f"functions[{name!r}] must return one value per row "
                                    f"(shape {rows}), got shape {out.shape}")
            return out
        return call


def jax_function(tree: ast.expr, parameters: Sequence[str],
                 functions: Mapping[str, UserFunction] | None, formula: str,
                 columns: Collection[str] | None = None) -> ExpressionFunction:
    """The model expression ``tree`` as a function of data columns and parameters in jax.

    Parameters
    ----------
    tree : ast.expr
        The expression, as :func:`multilevel.nonlinear.expression.parse_expression` returns it.
    parameters : sequence of str
        The model's parameter names (``["Asym", "xmid", "scal"]``). A name that is both a
        parameter and a data column is the parameter, as in ``ml.nlme``.
    functions : mapping or None
        User functions by name, as :func:`multilevel.nonlinear.expression.user_functions`
        checks them. Each is called with jax arrays and must be written with ``jax.numpy``;
        a gradient given with it is not used (jax differentiates the function).
    formula : str
        The model formula, quoted in error messages.
    columns : collection of str, optional
        The data's column names. Given, every name of the expression is resolved now; left
        out, names that are neither parameters nor ``pi`` are resolved when the function is
        called.

    Returns
    -------
    callable
        ``f(columns, phi)``: ``columns`` maps data column names to arrays of shape (n,),
        ``phi`` maps every parameter name to its per-row values, shape (n,), or a scalar;
        returns the model values, shape (n,) (the broadcast shape of the columns and
        parameters used). Built from jax.numpy operations: ``jax.jit``, ``jax.grad`` and
        ``jax.vmap`` apply.

    Raises
    ------
    FormulaError
        At once, with the messages of ``ml.nlme``: a name that is neither a data column nor
        a parameter (when ``columns`` is given; otherwise when ``f`` is called), an unknown
        function, a self-starting model or elementary function called with the wrong number
        of arguments, a self-starting model whose covariate depends on the parameters.
    ArgumentError
        At once, a user function that jax cannot trace (numpy-only, or Python control flow
        on its arguments); when ``f`` is called, a user function that fails or returns other
        than one value per row, or ``phi`` without a value for a parameter the tree uses.
    """
    params = tuple(parameters)
    funcs = dict(functions or {})
    _Check(params, funcs, formula, columns).depends(tree)
    body = _Compiler(params, funcs, formula).node(tree)
    used = names_in(tree)[0]

    def model(columns: Mapping[str, jax.Array], phi: Mapping[str, jax.Array]) -> jax.Array:
        value = body(_Env(columns, phi))
        # one value per row even where the tree leaves some rows out ("Asym" with a scalar
        # Asym, a constant): the rows are those of the columns used and of all parameters
        shapes = [jnp.shape(phi[name]) for name in params if name in phi]
        shapes += [jnp.shape(columns[name]) for name in used
                   if name not in params and name in columns]
        return jnp.broadcast_to(value, jnp.broadcast_shapes(value.shape, *shapes))

    return model
