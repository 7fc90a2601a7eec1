"""A formula cannot run code: every expression goes through the allow-list of
multilevel.formula.expressions before formulaic parses or evaluates it (issue 6, section 2),
and the formula items of sections 3, 4 and 7: a bad response, re_form, repeated random terms
and absurd parameter counts are FormulaErrors.

Data: sleepstudy (shipped with the package, as in lme4) and small simulated frames whose
seeds are given where they are built. Expected values of the allowed transforms are the same
transform computed with numpy on the same column.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import multilevel as ml
from multilevel.cli.main import main
from multilevel.data.design import MAX_COVARIANCE_PARAMETERS, build_design
from multilevel.errors import ColumnNotFoundError, FormulaError, MultilevelError
from multilevel.formula.expressions import FUNCTIONS
from multilevel.formula.parser import MAX_RANDOM_TERMS, parse_formula


@pytest.fixture(scope="module")
def sleep() -> pd.DataFrame:
    return ml.datasets.load("sleepstudy")


@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    # seed 11: 8 groups of 6, a positive predictor x, a 3-level factor f, a count n
    rng = np.random.default_rng(11)
    n = 48
    g = np.repeat([f"g{i}" for i in range(8)], 6)
    x = rng.uniform(0.5, 4.0, n)
    f = np.tile(["a", "b", "c"], n // 3)
    y = 1.0 + 0.5 * x + np.repeat(rng.normal(0, 0.5, 8), 6) + rng.normal(0, 0.3, n)
    return pd.DataFrame({"y": y, "x": x, "f": f, "g": g, "n": rng.integers(1, 9, n)})


def _exploit(path: object) -> str:
    return (f"Reaction ~ I(Days + 0*Days.__class__.__init__.__globals__['sys'].modules['os']"
            f".system('touch {path}')) + (1|Subject)")


def test_the_reported_exploit_runs_nothing_from_the_api(sleep, tmp_path):
    target = tmp_path / "F"
    with pytest.raises(FormulaError, match="__class__"):
        ml.lmer(_exploit(target), sleep)
    assert not target.exists()


def test_the_reported_exploit_runs_nothing_from_the_cli(sleep, tmp_path, capsys):
    target = tmp_path / "F"
    csv = tmp_path / "sleep.csv"
    sleep.to_csv(csv, index=False)
    status = main(["fit", _exploit(target), "--data", str(csv)])
    assert status == 2
    assert not target.exists()
    assert "not allowed" in capsys.readouterr().err


# One formula per class of forbidden construct, the token the message must name, and a file
# the construct would create if it were evaluated.
FORBIDDEN = [
    ("attribute access", "y ~ I(x).real + (1|g)", ".real"),
    ("attribute after a name in backticks", "y ~ `x`.real + (1|g)", ".real"),
    ("numpy prefix", "y ~ np.log(x) + (1|g)", "write log(...)"),
    ("module attribute", "y ~ I(os.system('touch {f}')) + (1|g)", "os.system"),
    ("subscript", "y ~ I(x[0]) + (1|g)", "["),
    ("dunder name", "y ~ I(__builtins__) + (1|g)", "__builtins__"),
    ("dunder import", "y ~ __import__('os').system('touch {f}') + (1|g)", "__import__"),
    ("unknown function", "y ~ foo(x) + (1|g)", "foo"),
    ("builtin open", "y ~ I(open('{f}', 'w')) + (1|g)", "open"),
    ("builtin exec", "y ~ exec(\"open('{f}', 'w')\") + (1|g)", "exec"),
    ("getattr", "y ~ getattr(x, 'real') + (1|g)", "getattr"),
    ("lambda", "y ~ I((lambda: open('{f}', 'w'))()) + (1|g)", "lambda"),
    ("comprehension", "y ~ I([v for v in x]) + (1|g)", "for"),
    ("generator", "y ~ I(sum(v for v in x)) + (1|g)", "sum"),
    ("walrus", "y ~ I((z := x)) + (1|g)", ":="),
    ("starred argument", "y ~ log(*x) + (1|g)", "*"),
    ("keyword unpacking", "y ~ log(**x) + (1|g)", "**"),
    ("f-string", "y ~ I(f\"{{open('{f}', 'w')}}\") + (1|g)", "string prefix"),
    ("braces", "y ~ {open('{f}', 'w')} + (1|g)", "{"),
    ("complex number", "y ~ I(x + 1j) + (1|g)", "1j"),
    ("formulaic's own argument", "y ~ scale(x, _state=1) + (1|g)", "_state"),
    ("call of a call", "y ~ I(log(x)(2)) + (1|g)", "allow-list"),
    ("R's $", "y ~ d$x + (1|g)", "$"),
    ("semicolon", "y ~ x; open('{f}', 'w') + (1|g)", ";"),
    ("unknown contrast", "y ~ C(f, contr.custom) + (1|g)", "contr.custom"),
    ("in the random-effects term", "y ~ x + (I(x.__class__) | g)", "__class__"),
    ("in the response", "open('{f}', 'w') ~ x + (1|g)", "open"),
    ("in offset()", "y ~ x + offset(open('{f}', 'w')) + (1|g)", "open"),
    ("offset() inside another term", "y ~ I(offset(x)) + (1|g)", "offset"),
    ("'&' without parentheses", "y ~ I(x > 1 & x < 3) + (1|g)", "&"),
]


@pytest.mark.parametrize(("what", "formula", "token"), FORBIDDEN,
                         ids=[case[0] for case in FORBIDDEN])
def test_each_forbidden_construct_is_a_formula_error_naming_it(small, tmp_path, what, formula,
                                                               token):
    target = tmp_path / "created"
    with pytest.raises(FormulaError) as info:
        ml.lmer(formula.replace("{f}", str(target)), small)
    assert token in str(info.value)
    assert not target.exists()


def test_formulaic_never_sees_a_forbidden_expression(monkeypatch, small):
    # The allow-list runs before formulaic parses anything: formulaic's parser evaluates
    # the function of every call while looking for stateful transforms.
    import formulaic

    def refuse(*args, **kwargs):
        raise AssertionError("formulaic was called")

    monkeypatch.setattr(formulaic.Formula, "__new__", refuse)
    with pytest.raises(FormulaError):
        parse_formula("y ~ I(__import__('os')) + (1|g)")


def test_the_callers_variables_are_not_visible_to_a_formula(small):
    # formulaic's model_matrix captures the calling frame by default; multilevel passes an
    # explicit context, so a local variable is not a column.
    secret = np.ones(len(small))  # noqa: F841 - the formula must not be able to see it
    with pytest.raises(ColumnNotFoundError, match="secret"):
        ml.lmer("y ~ I(secret * 2) + (1|g)", small)


def _column(design, name: str) -> np.ndarray:
    return design.X[:, list(design.fixed_names).index(name)]


@pytest.mark.parametrize(("term", "name", "expected"), [
    ("I(x^2)", "I(x^2)", lambda d: d.x ** 2),
    ("log(x)", "log(x)", lambda d: np.log(d.x)),
    ("log(x, 2)", "log(x, 2)", lambda d: np.log2(d.x)),
    ("log2(x)", "log2(x)", lambda d: np.log2(d.x)),
    ("log10(x)", "log10(x)", lambda d: np.log10(d.x)),
    ("log1p(x)", "log1p(x)", lambda d: np.log1p(d.x)),
    ("exp(x)", "exp(x)", lambda d: np.exp(d.x)),
    ("expm1(x)", "expm1(x)", lambda d: np.expm1(d.x)),
    ("sqrt(x)", "sqrt(x)", lambda d: np.sqrt(d.x)),
    ("abs(x - 2)", "abs(x - 2)", lambda d: np.abs(d.x - 2)),
    ("sin(2*pi*x)", "sin(2 * pi * x)", lambda d: np.sin(2 * np.pi * d.x)),  # R's name
    ("cos(x)", "cos(x)", lambda d: np.cos(d.x)),
    ("tan(x)", "tan(x)", lambda d: np.tan(d.x)),
    ("center(x)", "center(x)", lambda d: d.x - d.x.mean()),
    ("scale(x)", "scale(x)", lambda d: (d.x - d.x.mean()) / d.x.std(ddof=1)),
    ("I(x > 2)", "I(x > 2)TRUE", lambda d: (d.x > 2).astype(float)),  # R: a logical is a factor
    ("I((x > 1) & (x < 3))", "I((x > 1) & (x < 3))TRUE",
     lambda d: ((d.x > 1) & (d.x < 3)).astype(float)),
    ("poly(x, 2, raw = TRUE)", "poly(x, 2, raw = TRUE)2", lambda d: d.x ** 2),  # R's name
])
def test_allowed_transforms_compute_what_they_say(small, term, name, expected):
    design = build_design(f"y ~ {term} + (1|g)", small)
    np.testing.assert_allclose(_column(design, name), expected(small), rtol=1e-12)


@pytest.mark.parametrize("term", ["poly(x, 2)", "C(f, contr.sum)", "C(f, contr.treatment)",
                                  "C(f, contr.helmert)", "factor(n)", "bs(x, df=4)",
                                  "cr(x, df=4)", "cs(x, df=4)", "cc(x, df=4)",
                                  "C(f, levels=['c', 'b', 'a'])", "x %in% f"])
def test_allowed_encodings_fit(small, term):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = ml.lmer(f"y ~ {term} + (1|g)", small)
    assert np.isfinite(fit.fixef.to_numpy()).all()
    assert np.isfinite(fit.predict(small.head(3))).all()  # replays the stateful encoding


def test_every_documented_function_is_tested_here():
    tested = {"I", "log", "log2", "log10", "log1p", "exp", "expm1", "sqrt", "abs", "sin",
              "cos", "tan", "poly",
              "scale", "center", "C", "factor", "bs", "cr", "cs", "cc", "offset"}
    assert set(FUNCTIONS) == tested


def test_ordered_factor_keeps_polynomial_contrasts(small):
    data = small.assign(o=pd.Categorical(small.f, categories=["a", "b", "c"], ordered=True))
    design = build_design("y ~ o + (1|g)", data)
    assert design.fixed_names == ("(Intercept)", "o.L", "o.Q")  # R: lmer(y ~ o + (1|g))


# ---- formula items of sections 3, 4 and 7

@pytest.mark.parametrize("formula", ["- ~ x + (1|g)", "+ ~ x + (1|g)", "1 ~ x + (1|g)",
                                     "y + x ~ x + (1|g)", "log( ~ x + (1|g)"])
def test_a_response_that_is_not_a_column_or_expression_is_a_formula_error(formula, small):
    with pytest.raises(FormulaError, match="response"):
        ml.lmer(formula, small)


@pytest.mark.parametrize("formula", ["y ~ x + (1|g) + (1|g)", "y ~ x + (x|g) + (1 + x|g)",
                                     "y ~ x + (x||g) + (1|g)", "y ~ (1|g) + (1|g:h) + (1|h:g)",
                                     "y ~ (1|g/h) + (1|g)"])
def test_a_repeated_random_term_is_refused(formula):
    with pytest.raises(FormulaError, match="more than once"):
        parse_formula(formula)


@pytest.mark.parametrize("formula", ["y ~ (1|g/g)", "y ~ (1|g:g)", "y ~ (1|g/h/g)",
                                     "y ~ (1|" + "/".join(["g"] * 10) + ")"])
def test_a_grouping_factor_nested_in_itself_is_refused(formula):
    with pytest.raises(FormulaError, match="nested in or crossed with itself"):
        parse_formula(formula)


def test_five_hundred_copies_of_a_term_are_refused_at_once():
    with pytest.raises(FormulaError, match="more than once"):
        parse_formula("y ~ x + " + " + ".join(["(1|g)"] * 500))


def test_too_many_random_terms_are_refused():
    formula = "y ~ " + " + ".join(f"(1|g{i})" for i in range(MAX_RANDOM_TERMS + 1))
    with pytest.raises(FormulaError, match=f"more than {MAX_RANDOM_TERMS}"):
        parse_formula(formula)


def test_too_many_covariance_parameters_are_refused_before_fitting():
    # seed 5: a 25-level factor as a correlated random slope has 25*26/2 = 325 parameters
    rng = np.random.default_rng(5)
    data = pd.DataFrame({"y": rng.normal(size=500), "f": rng.integers(0, 25, 500).astype(str),
                         "g": np.repeat(np.arange(50), 10)})
    assert 25 * 26 // 2 > MAX_COVARIANCE_PARAMETERS
    with pytest.raises(FormulaError, match="covariance parameters"):
        ml.lmer("y ~ 1 + (0 + f | g)", data)


def test_re_form_takes_only_its_documented_values(sleep):
    fit = ml.lmer("Reaction ~ Days + (Days | Subject)", sleep)
    new = sleep.head(4)
    population = fit.predict(new, re_form="NA")
    np.testing.assert_allclose(population, fit.fixef["(Intercept)"] + fit.fixef["Days"]
                               * new.Days.to_numpy(), rtol=1e-12)
    for value in ["~0", "~ 0", "~1", " NA "]:
        np.testing.assert_array_equal(fit.predict(new, re_form=value), population)
    np.testing.assert_array_equal(fit.predict(new, re_form="~(Days | Subject)"),
                                  fit.predict(new))
    for bad in ["banana", "0", "~ Days + (1|Subject)", "~ (1|Nope)", "~ offset(Days)", 3,
                float("nan")]:
        with pytest.raises(FormulaError, match="re_form"):
            fit.predict(new, re_form=bad)


def test_every_error_of_the_formula_layer_is_typed(small):
    # A few hundred formulas spliced from the pieces above: whatever they do, only
    # multilevel errors escape (the invariant of section 4, for the formula layer).
    pieces = ["x", "Days.n", "`a b`", "log(", ")", "(", "|", "||", "~", "+", "-", "*", "/",
              ":", "^", "0", "1", "'s'", "`", "np.", "__", "[0]", "offset(x)", "(1|g)",
              "I(x^2)", "%in%", ",", "=", "TRUE", "C(f, contr.poly)", "\\", "{", "ß"]
    rng = np.random.default_rng(2024)
    for _ in range(300):
        k = int(rng.integers(1, 8))
        text = "y ~ " + " ".join(rng.choice(pieces, k)) + " + (1|g)"
        try:
            parse_formula(text)
        except MultilevelError:
            pass
