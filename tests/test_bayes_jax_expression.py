"""Nonlinear model expressions in jax.numpy (multilevel.bayesian.jax_expression).

The reference is our own numpy code, which the nlme tests check against R: every value here
must equal the numpy Evaluator's (nonlinear/expression.py) or selfstart.py's to 1e-12
relative, and jax's derivatives must equal the Evaluator's forward-mode derivatives and
selfstart.py's analytic gradients (R's deriv() formulas) to 1e-8 relative. Parameter values
are close to R's fits of the data sets each model is usually shown on (cited per model).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

from multilevel.bayesian import jax_expression  # noqa: E402
from multilevel.bayesian.jax_expression import jax_function, jax_self_start  # noqa: E402
from multilevel.errors import ArgumentError, FormulaError  # noqa: E402
from multilevel.nonlinear import expression  # noqa: E402
from multilevel.nonlinear.expression import (  # noqa: E402
    Evaluator,
    parse_expression,
    user_functions,
)
from multilevel.nonlinear.selfstart import SELF_STARTING  # noqa: E402

FORMULA = "y ~ <expression>"
N = 9


@pytest.fixture(autouse=True)
def x64() -> Iterator[None]:
    """Double precision for the 1e-12 comparisons; the global setting is restored after."""
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", before)


def _rows(seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    columns = {"x": np.linspace(0.5, 4.0, N), "age.days": np.linspace(118.0, 1582.0, N),
               "z": rng.normal(size=N)}
    phi = {"a": 1.3 + 0.2 * rng.normal(size=N), "b": 0.7 + 0.1 * rng.normal(size=N),
           "c": 2.1 + 0.1 * rng.normal(size=N)}
    return columns, phi


def _agree(text: str, functions: dict[str, object] | None = None) -> None:
    """Value and per-row derivatives of ``text``: jax against the numpy Evaluator."""
    columns, phi = _rows()
    params = ("a", "b", "c")
    tree = parse_expression(text, FORMULA)
    funcs = user_functions(functions)
    reference = Evaluator(params, funcs, FORMULA).run(tree, columns, phi)
    f = jax_function(tree, params, funcs, FORMULA, columns=list(columns))
    jcols = {k: jnp.asarray(v) for k, v in columns.items()}
    jphi = {k: jnp.asarray(v) for k, v in phi.items()}
    value = np.asarray(f(jcols, jphi))
    assert value.shape == (N,)
    np.testing.assert_allclose(value, np.broadcast_to(reference.v, (N,)), rtol=1e-12,
                               atol=1e-300)
    grad = jax.grad(lambda p: f(jcols, p).sum())(jphi)
    for j, name in enumerate(params):
        expected = reference.d.get(j, np.zeros(N))
        scale = np.abs(expected).max() + 1e-300
        np.testing.assert_allclose(np.asarray(grad[name]), expected, rtol=1e-8,
                                   atol=1e-12 * scale, err_msg=f"{text}: d/d{name}")


def test_the_tables_match_the_numpy_evaluator() -> None:
    assert set(jax_expression._ELEMENTARY) == set(expression._ELEMENTARY)
    assert jax_expression._CONSTANTS == expression._CONSTANTS
    assert set(jax_expression._SELF_START) == set(SELF_STARTING)


# each elementary function on an argument in its domain, with the parameters inside
ELEMENTARY = {
    "exp": "exp(a * x / 3)",
    "log": "log(a + x)",
    "log10": "log10(a * x)",
    "log2": "log2(b + x)",
    "log1p": "log1p(b * x)",
    "expm1": "expm1(a * z)",
    "sqrt": "sqrt(c + x)",
    "sin": "sin(a * x)",
    "cos": "cos(b * x + c)",
    "tan": "tan(b * z / 3)",
    "atan": "atan(a * z)",
    "tanh": "tanh(b * z)",
    "abs": "abs(z - b)",
}


@pytest.mark.parametrize("name", sorted(ELEMENTARY))
def test_elementary_functions(name: str) -> None:
    assert name + "(" in ELEMENTARY[name]
    _agree(ELEMENTARY[name])


@pytest.mark.parametrize("text", [
    "a + x", "a - x", "a * x", "a / x", "x / a", "x ^ a", "a ^ b", "a ^ 2", "z ^ 3",
    "(a - z) ^ 2", "a ^ -1", "2 ^ b", "-a + x", "- (a * b)", "+a", "pi * a", "a * 2.5e-1",
    "3", "a", "x", ".5 * a",
])
def test_operators_numbers_and_pi(text: str) -> None:
    _agree(text)


@pytest.mark.parametrize("text", [
    "a / (1 + exp((b * 1000 - age.days) / (c * 150)))",
    "exp(log(sqrt(a * x))) + tanh(sin(x) * cos(b)) - log1p(abs(z * c))",
    "SSlogis(age.days, a * 100, b * 1000, c * 150) / log1p(x)",
    "SSmicmen(exp(x), a, b) + SSasymp(x, c, a, log(b))",
    "SSfol(4.02, x, log(b / 5), log(a), log(c / 10))",
    "f(x, a) * g(b ^ 2) + a",
])
def test_dotted_names_nested_calls_and_user_functions(text: str) -> None:
    _agree(text, {"f": lambda x, a: a * jnp.exp(-x),
                  "g": (lambda u: jnp.sqrt(u), lambda u: (0.5 / np.sqrt(u))[:, None])})


def test_a_parameter_that_is_also_a_column_is_the_parameter() -> None:
    columns, phi = _rows()
    tree = parse_expression("a * x", FORMULA)
    f = jax_function(tree, ("a",), None, FORMULA, columns=["a", "x"])
    out = f({"a": jnp.full(N, 100.0), "x": jnp.asarray(columns["x"])}, {"a": phi["a"]})
    np.testing.assert_allclose(np.asarray(out), phi["a"] * columns["x"], rtol=1e-15)


def test_scalar_parameters_give_one_value_per_row() -> None:
    tree = parse_expression("a + 0 * b", FORMULA)
    f = jax_function(tree, ("a", "b"), None, FORMULA, columns=["x"])
    assert f({"x": jnp.ones(N)}, {"a": 2.0, "b": jnp.ones(N)}).shape == (N,)
    assert f({"x": jnp.ones(N)}, {"a": 2.0, "b": 1.0}).shape == ()


# ---------------------------------------------------------------------------------------------
# the self-starting models: (covariates, parameters) near R's fits to the usual data sets

def _seq(lo: float, hi: float) -> np.ndarray:
    return np.linspace(lo, hi, 12)


SELF_START_CASES: dict[str, tuple[list[np.ndarray], list[float]]] = {
    # Orange, nls(circumference ~ SSlogis(age, Asym, xmid, scal))
    "SSlogis": ([_seq(118, 1582)], [192.7, 728.8, 353.5]),
    # ChickWeight.1, SSfpl(Time, A, B, xmid, scal)
    "SSfpl": ([_seq(0, 21)], [27.45, 348.97, 19.39, 6.67]),
    # Loblolly, SSasymp(age, Asym, R0, lrc)
    "SSasymp": ([_seq(3, 25)], [94.13, -8.25, -3.22]),
    # CO2, SSasympOff(conc, Asym, lrc, c0)
    "SSasympOff": ([_seq(95, 1000)], [38.14, -4.38, 51.22]),
    # Loblolly, SSasympOrig(age, Asym, lrc)
    "SSasympOrig": ([_seq(3, 25)], [94.0, -3.2]),
    # Puromycin (treated), SSmicmen(conc, Vm, K)
    "SSmicmen": ([_seq(0.02, 1.1)], [212.68, 0.0641]),
    # DNase run 1 on log(conc), SSgompertz(log(conc), Asym, b2, b3)
    "SSgompertz": ([_seq(-3.0, 2.5)], [4.61, 2.27, 0.72]),
    # ChickWeight.6, SSweibull(Time, Asym, Drop, lrc, pwr): x = 0 included
    "SSweibull": ([_seq(0, 21)], [158.5, 110.5, -5.99, 2.65]),
    # Indometh subject 1, SSbiexp(time, A1, lrc1, A2, lrc2)
    "SSbiexp": ([_seq(0.25, 8)], [2.03, 0.58, 0.19, -1.79]),
    # Theoph subject 1, SSfol(Dose, Time, lKe, lKa, lCl): t = 0 included
    "SSfol": ([np.full(12, 4.02), _seq(0, 24.4)], [-2.92, 0.58, -3.92]),
}


def _per_row(values: list[float], n: int, seed: int) -> list[np.ndarray]:
    """Each parameter varied row by row (as random effects do), by about 2%."""
    rng = np.random.default_rng(seed)
    return [v + 0.02 * max(abs(v), 0.1) * rng.normal(size=n) for v in values]


@pytest.mark.parametrize("name", sorted(SELF_START_CASES))
def test_self_starting_value_and_gradient(name: str) -> None:
    covariates, centre = SELF_START_CASES[name]
    model = SELF_STARTING[name]
    params = _per_row(centre, covariates[0].size, seed=len(name))
    value = jax_self_start(name)
    got = np.asarray(value(*covariates, *params))
    expected = model.value(*covariates, *params)
    np.testing.assert_allclose(got, expected, rtol=1e-12,
                               atol=1e-12 * np.abs(expected).max())

    def total(ps: list[jax.Array]) -> jax.Array:
        return jnp.sum(value(*covariates, *ps))

    grad = jax.grad(total)([jnp.asarray(p) for p in params])
    analytic = model.gradient(*covariates, *params)
    assert len(grad) == analytic.shape[1] == len(model.parameters)
    for j, pname in enumerate(model.parameters):
        column = analytic[:, j]
        np.testing.assert_allclose(np.asarray(grad[j]), column, rtol=1e-8,
                                   atol=1e-10 * np.abs(column).max(),
                                   err_msg=f"{name}: d/d{pname}")


@pytest.mark.parametrize("name", sorted(SELF_START_CASES))
def test_self_starting_models_in_an_expression(name: str) -> None:
    model = SELF_STARTING[name]
    covariates, centre = SELF_START_CASES[name]
    cov_names = ["dose", "t"][: model.covariates] if model.covariates == 2 else ["t"]
    text = f"{name}({', '.join(cov_names + list(model.parameters))})"
    n = covariates[0].size
    columns = dict(zip(cov_names, covariates, strict=True))
    phi = dict(zip(model.parameters, _per_row(centre, n, seed=1), strict=True))
    tree = parse_expression(text, FORMULA)
    reference = Evaluator(model.parameters, {}, FORMULA).run(tree, columns, phi)
    f = jax_function(tree, model.parameters, None, FORMULA, columns=cov_names)
    np.testing.assert_allclose(np.asarray(f(columns, phi)), reference.v, rtol=1e-12,
                               atol=1e-12 * np.abs(reference.v).max())


def test_logistic_derivatives_stay_finite_where_exp_overflows() -> None:
    # (xmid - x) / scal = 1000 / 0.5: exp overflows in 1 / (1 + exp(.))
    grad = jax.grad(lambda p: jax_self_start("SSlogis")(jnp.asarray([0.0, 2000.0]), *p).sum())(
        [jnp.asarray(2.0), jnp.asarray(1000.0), jnp.asarray(0.5)])
    assert all(np.all(np.isfinite(np.asarray(g))) for g in grad)
    assert float(grad[0]) == pytest.approx(1.0)  # one row at 0, one at Asym


def test_first_order_model_where_absorption_meets_elimination() -> None:
    # ka = ke: selfstart.py's quotient is 0 / 0; the limit is Dose ke ka / Cl t exp(-ke t)
    fol = jax_self_start("SSfol")
    t = jnp.asarray(_seq(0, 24))
    lke, lcl, dose = -1.0, -3.0, 4.0
    at = fol(dose, t, lke, lke, lcl)
    ke = np.exp(lke)
    limit = dose * np.exp(2 * lke - lcl) * np.asarray(t) * np.exp(-ke * np.asarray(t))
    np.testing.assert_allclose(np.asarray(at), limit, rtol=1e-12)
    grad = jax.grad(lambda p: fol(dose, t, *p).sum())(
        [jnp.asarray(lke), jnp.asarray(lke), jnp.asarray(lcl)])
    near = jax.grad(lambda p: fol(dose, t, *p).sum())(
        [jnp.asarray(lke), jnp.asarray(lke + 1e-7), jnp.asarray(lcl)])
    for g, h in zip(grad, near, strict=True):
        assert np.isfinite(float(g))
        assert float(g) == pytest.approx(float(h), rel=1e-5)
    # just outside the series branch the two forms agree with selfstart.py
    lka = lke + 3e-5
    np.testing.assert_allclose(np.asarray(fol(dose, t, lke, lka, lcl)),
                               SELF_STARTING["SSfol"].value(dose, np.asarray(t), lke, lka, lcl),
                               rtol=1e-9, atol=1e-15)


def test_jax_self_start_errors() -> None:
    with pytest.raises(ArgumentError, match="unknown self-starting model 'SSlogit'"):
        jax_self_start("SSlogit")
    with pytest.raises(ArgumentError, match=r"SSlogis takes 4 arguments \(input, Asym, xmid"):
        jax_self_start("SSlogis")(1.0, 2.0, 3.0)


# ---------------------------------------------------------------------------------------------
# jax transformations

def test_jit_and_vmap() -> None:
    columns, phi = _rows()
    params = ("a", "b", "c")
    tree = parse_expression("SSlogis(age.days, a * 100, b * 1000, c * 150) + f(x, a)",
                            FORMULA)
    f = jax_function(tree, params, {"f": expression.UserFunction(lambda x, a: a * jnp.sin(x))},
                     FORMULA, columns=list(columns))
    direct = np.asarray(f(columns, phi))
    np.testing.assert_allclose(np.asarray(jax.jit(f)(columns, phi)), direct, rtol=1e-14)
    # over rows
    by_row = jax.vmap(f)(columns, phi)
    np.testing.assert_allclose(np.asarray(by_row), direct, rtol=1e-14)
    # over draws of the parameters, jitted, with its gradient
    draws = {k: np.stack([v, 1.01 * v, 0.99 * v]) for k, v in phi.items()}
    batched = jax.jit(jax.vmap(f, in_axes=(None, 0)))(columns, draws)
    assert batched.shape == (3, N)
    for i in range(3):
        np.testing.assert_allclose(np.asarray(batched[i]),
                                   np.asarray(f(columns, {k: v[i] for k, v in draws.items()})),
                                   rtol=1e-14)
    grads = jax.jit(jax.vmap(jax.grad(lambda p: f(columns, p).sum())))(draws)
    assert grads["a"].shape == (3, N)


def test_float32_data_stay_float32() -> None:
    jax.config.update("jax_enable_x64", False)
    tree = parse_expression("2.5 * a / (1 + x ^ 2) + pi", FORMULA)
    f = jax_function(tree, ("a",), None, FORMULA, columns=["x"])
    out = f({"x": jnp.ones(3, dtype=jnp.float32)}, {"a": jnp.ones(3, dtype=jnp.float32)})
    assert out.dtype == jnp.float32


# ---------------------------------------------------------------------------------------------
# errors: the numpy Evaluator's messages, raised when jax_function is called

def _numpy_error(text: str, columns: list[str], params: tuple[str, ...] = ("a", "b"),
                 functions: dict[str, object] | None = None) -> str:
    tree = parse_expression(text, FORMULA)
    data = {c: np.ones(3) for c in columns}
    with pytest.raises(FormulaError) as info:
        Evaluator(params, user_functions(functions), FORMULA).run(
            tree, data, {p: np.ones(3) for p in params})
    return str(info.value)


@pytest.mark.parametrize(("text", "match"), [
    ("a * age + b", "'age' is neither a data column nor a parameter"),
    ("a * age.days + b", "'age.days' is neither a data column nor a parameter"),
    ("a * expit(x)", "function 'expit' is not known"),
    ("SSlogis(x, a, b)", "SSlogis takes 1 covariate"),
    ("SSfol(x, x, a, b)", "SSfol takes 2 covariate"),
    ("exp(a, x)", r"exp\(\) takes one argument, got 2"),
    ("SSmicmen(x * a, a, b)", "SSmicmen's covariate argument"),
    ("SSfol(x, exp(b) + x, a, b, a)", "SSfol's covariate argument"),
    # the first error in the Evaluator's order: left to right, arguments before the call
    ("exp(b) * unknown(x) + nowhere", "function 'unknown' is not known"),
    ("exp(nowhere) * unknown(x)", "'nowhere' is neither"),
    ("SSlogis(x, a) + exp(b, b)", "SSlogis takes 1 covariate"),
])
def test_formula_errors_at_build_time(text: str, match: str) -> None:
    message = _numpy_error(text, ["x"])
    tree = parse_expression(text, FORMULA)
    with pytest.raises(FormulaError, match=match) as info:
        jax_function(tree, ("a", "b"), None, FORMULA, columns=["x"])
    assert str(info.value) == message


def test_unknown_name_without_columns_is_reported_when_called() -> None:
    tree = parse_expression("a * age", FORMULA)
    f = jax_function(tree, ("a", "b"), None, FORMULA)  # columns unknown: no error yet
    with pytest.raises(FormulaError) as info:
        f({"x": jnp.ones(3)}, {"a": jnp.ones(3), "b": jnp.ones(3)})
    assert str(info.value) == _numpy_error("a * age", ["x"])
    # the structural checks need no columns
    with pytest.raises(FormulaError, match="covariate argument"):
        jax_function(parse_expression("SSlogis(a, a, b, b)", FORMULA), ("a", "b"), None,
                     FORMULA)


def test_missing_parameter_value() -> None:
    f = jax_function(parse_expression("a * x + b", FORMULA), ("a", "b"), None, FORMULA,
                     columns=["x"])
    with pytest.raises(ArgumentError, match="phi has no value for the parameter 'b'"):
        f({"x": jnp.ones(3)}, {"a": jnp.ones(3)})


@pytest.mark.parametrize("fn", [
    lambda x, a: a * np.exp(-x),            # numpy on a tracer
    lambda x, a: a * np.asarray(x),
    lambda x, a: a if float(a) > 0 else x,  # a value the trace does not have
    lambda x, a: jnp.where(a > 0, a, x) if a > 0 else x,
])
def test_numpy_only_user_function(fn: object) -> None:
    tree = parse_expression("b + myfun(x, a)", FORMULA)
    funcs = user_functions({"myfun": fn})
    with pytest.raises(ArgumentError, match=r"functions\['myfun'\] cannot be traced by jax.*"
                                            r"written with jax\.numpy"):
        jax_function(tree, ("a", "b"), funcs, FORMULA, columns=["x"])


def test_user_function_failures_when_called() -> None:
    tree = parse_expression("b + myfun(x, a)", FORMULA)
    # fine on the scalar probe, wrong on rows: reported with the function's name
    wrong_shape = user_functions({"myfun": lambda x, a: jnp.stack([x, a])})
    f = jax_function(tree, ("a", "b"), wrong_shape, FORMULA, columns=["x"])
    with pytest.raises(ArgumentError, match=r"functions\['myfun'\] must return one value per"):
        f({"x": jnp.ones(3)}, {"a": jnp.ones(3), "b": jnp.ones(3)})
    indexing = user_functions({"myfun": lambda x, a: a * x[jnp.asarray([0, 0, 0])]})
    f = jax_function(tree, ("a", "b"), indexing, FORMULA, columns=["x"])
    np.testing.assert_allclose(np.asarray(f({"x": jnp.arange(1.0, 4.0)},
                                            {"a": jnp.ones(3), "b": jnp.zeros(3)})), 1.0)
    arity = user_functions({"myfun": lambda x: x})
    f = jax_function(tree, ("a", "b"), arity, FORMULA, columns=["x"])
    with pytest.raises(ArgumentError, match=r"functions\['myfun'\] failed"):
        f({"x": jnp.ones(3)}, {"a": jnp.ones(3), "b": jnp.ones(3)})


def test_module_does_not_load_with_multilevel() -> None:
    import subprocess
    import sys

    code = ("import sys, multilevel; "
            "print('jax' in sys.modules, 'multilevel.bayesian.jax_expression' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]

