"""The lme4 formula parser: random-term expansion, fixed-part passthrough, syntax errors.

Expected structures follow lme4's ``findbars`` / ``expandDoubleVerts`` / ``expandSlash``
(lme4 1.1-31): ``(x || g)`` is ``(1 | g) + (0 + x | g)``; ``(1 | a/b)`` is ``(1 | a) +
(1 | b:a)``, the nested factor named inner-first (tests/reference/lme4_extra/pastes_nested.json,
R call ``lmer(strength ~ 1 + (1 | batch/cask), data = Pastes)``, has groups "cask:batch" and
"batch"). Error positions are 0-based offsets into the formula, computed here from the formula
text itself (``str.index``), never copied from the parser's output.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from formulaic import model_matrix

from multilevel.errors import FormulaError
from multilevel.formula import ParsedFormula, RandomTermSpec, parse_formula

REF = Path(__file__).parent / "reference"

# A tiny frame to turn a term's left-hand side into the columns it means.
SMALL = pd.DataFrame({"x": [1.0, 2.0, 4.0], "z": [0.5, -1.0, 3.0],
                      "f": pd.Categorical(["a", "b", "a"])})


def columns(lhs: str) -> list[str]:
    """Columns of the model matrix of a random term's left-hand side (formulaic naming)."""
    return list(model_matrix(lhs, SMALL).columns)


def terms(formula: str) -> list[tuple[list[str], str]]:
    """(columns, group name) of every expanded random term."""
    return [(columns(t.lhs), t.group_name) for t in parse_formula(formula).random]


# -- random terms ---------------------------------------------------------------------------

def test_result_types_and_parts():
    p = parse_formula("Reaction ~ Days + (Days | Subject)")
    assert isinstance(p, ParsedFormula)
    assert p.text == "Reaction ~ Days + (Days | Subject)"
    assert p.response == "Reaction"
    assert p.fixed == "Days"
    assert len(p.random) == 1
    assert isinstance(p.random[0], RandomTermSpec)
    assert p.random[0].group_factors == ("Subject",)
    assert p.random[0].group_name == "Subject"


def test_implicit_intercept_in_random_term():
    # (x | g) is (1 + x | g), as in R
    assert terms("y ~ (x | g)") == [(["Intercept", "x"], "g")]


def test_explicit_intercept_in_random_term():
    assert terms("y ~ (1 + x | g)") == [(["Intercept", "x"], "g")]


def test_no_intercept_random_term():
    assert terms("y ~ (0 + x | g)") == [(["x"], "g")]


def test_random_intercept_only():
    assert terms("y ~ x + (1 | g)") == [(["Intercept"], "g")]


def test_double_bar_expands_to_separate_terms():
    # lme4's expandDoubleVerts: (x || g) -> (1 | g) + (0 + x | g)
    assert terms("y ~ x + (x || g)") == [(["Intercept"], "g"), (["x"], "g")]


def test_double_bar_without_intercept_has_no_intercept_term():
    assert terms("y ~ (0 + x || g)") == [(["x"], "g")]


def test_double_bar_three_terms():
    assert terms("y ~ (1 + x + z || g)") == [(["Intercept"], "g"), (["x"], "g"), (["z"], "g")]


def test_nested_grouping_inner_first():
    p = parse_formula("y ~ 1 + (1 | a/b)")
    got = [(t.group_name, t.group_factors) for t in p.random]
    assert got == [("a", ("a",)), ("b:a", ("b", "a"))]
    assert all(columns(t.lhs) == ["Intercept"] for t in p.random)


def test_nested_grouping_names_match_lme4_pastes():
    ref = json.loads((REF / "lme4_extra" / "pastes_nested.json").read_text())
    p = parse_formula(ref["formula"])  # strength ~ 1 + (1 | batch/cask)
    assert {t.group_name for t in p.random} == set(ref["ngrps"]) == {"cask:batch", "batch"}


def test_nested_random_slope_repeats_lhs_for_each_level():
    assert terms("y ~ (x | a/b)") == [(["Intercept", "x"], "a"), (["Intercept", "x"], "b:a")]


def test_interaction_grouping_factor():
    p = parse_formula("y ~ (1 | a:b)")
    assert len(p.random) == 1
    assert p.random[0].group_factors == ("a", "b")
    assert p.random[0].group_name == "a:b"


def test_crossed_terms():
    p = parse_formula("diameter ~ 1 + (1 | plate) + (1 | sample)")
    assert [t.group_name for t in p.random] == ["plate", "sample"]
    assert p.fixed == "1"


def test_several_terms_on_one_factor():
    assert terms("y ~ x + (1 | g) + (0 + x | g)") == [(["Intercept"], "g"), (["x"], "g")]


def test_random_terms_anywhere_in_the_sum():
    p = parse_formula("y ~ (1 | g) + x + (0 + z | h) + z")
    assert [t.group_name for t in p.random] == ["g", "h"]
    assert columns(p.fixed) == ["Intercept", "x", "z"]


# -- fixed part and response ----------------------------------------------------------------

def test_only_random_terms_gives_intercept_fixed_part():
    assert parse_formula("y ~ (1 | g)").fixed == "1"


def test_r_power_becomes_python_power_in_fixed_part():
    p = parse_formula("y ~ I(x^2) + (1 | g)")
    assert "^" not in p.fixed
    mm = model_matrix(p.fixed, SMALL)
    # I(x^2) must be the square of x (R's ^), not x XOR 2
    np.testing.assert_array_equal(mm.iloc[:, 1].to_numpy(), SMALL["x"].to_numpy() ** 2)


def test_r_power_in_random_term():
    (t,) = parse_formula("y ~ (0 + I(x^2) | g)").random
    mm = model_matrix(t.lhs, SMALL)
    np.testing.assert_array_equal(mm.to_numpy()[:, 0], SMALL["x"].to_numpy() ** 2)


@pytest.mark.parametrize("fixed", ["0 + x", "x*z", "C(f)", "x + z", "x:z", "1"])
def test_fixed_part_passthrough(fixed):
    p = parse_formula(f"y ~ {fixed} + (1 | g)")
    assert p.fixed == fixed
    assert p.random[0].group_name == "g"


def test_fixed_part_no_intercept_means_no_intercept_column():
    assert columns(parse_formula("y ~ 0 + x + (1 | g)").fixed) == ["x"]


def test_fixed_part_interaction_columns():
    assert columns(parse_formula("y ~ x*z + (1 | g)").fixed) == ["Intercept", "x", "z", "x:z"]


def test_response_expression():
    p = parse_formula("log(y) ~ x + (1 | g)")
    assert p.response == "log(y)"


def test_whitespace_does_not_matter():
    a = parse_formula("y~x+(x||g)")
    b = parse_formula("  y  ~  x  +  ( x  ||  g )  ")
    assert a.response == b.response
    assert a.fixed.replace(" ", "") == b.fixed.replace(" ", "")
    assert [(columns(t.lhs), t.group_name) for t in a.random] == \
        [(columns(t.lhs), t.group_name) for t in b.random]


# -- syntax errors and their positions ------------------------------------------------------

def error_of(formula: str) -> FormulaError:
    with pytest.raises(FormulaError) as info:
        parse_formula(formula)
    assert info.value.formula == formula
    return info.value


def test_unmatched_open_parenthesis_points_at_it():
    f = "y ~ x + (1 | g"
    assert error_of(f).position == f.index("(")


def test_unmatched_open_parenthesis_first_term_points_at_it():
    f = "y ~ (x | g"
    assert error_of(f).position == f.index("(")


def test_unmatched_close_parenthesis_points_at_it():
    f = "y ~ x) + (1 | g)"
    assert error_of(f).position == f.index(")")


def test_empty_group_after_bar():
    f = "y ~ x + (1 |)"
    err = error_of(f)
    assert err.position == f.index("|") + 1
    assert "grouping factor" in str(err)


def test_nothing_before_bar():
    f = "y ~ x + (| g)"
    assert error_of(f).position == f.index("|")


def test_bar_outside_parentheses():
    f = "y ~ x + 1 | g"
    err = error_of(f)
    assert err.position == f.index("|")
    assert "parentheses" in str(err)


def test_two_tildes_points_at_second():
    f = "y ~ x ~ z + (1 | g)"
    assert error_of(f).position == f.rindex("~")


def test_no_tilde():
    err = error_of("y + x + (1 | g)")
    assert "~" in str(err)


def test_missing_response():
    f = "~ x + (1 | g)"
    err = error_of(f)
    assert err.position == 0
    assert "response" in str(err)


def test_double_plus_points_at_empty_term():
    f = "y ~ x ++ z + (1 | g)"
    assert error_of(f).position == f.index("++") + 1


def test_trailing_plus():
    f = "y ~ x + (1 | g) +"
    assert error_of(f).position == len(f)


def test_non_name_grouping_factor():
    f = "y ~ x + (1 | g + h)"
    assert error_of(f).position == f.index("g + h")


def test_error_message_shows_formula_and_caret():
    f = "y ~ x ~ z + (1 | g)"
    lines = str(error_of(f)).splitlines()
    assert lines[1].strip() == f
    # the caret sits under the offending character (both lines indented by 4)
    assert lines[2].index("^") - 4 == f.rindex("~")
    assert lines[1].index(f) == 4


def test_non_string_formula():
    with pytest.raises(FormulaError):
        parse_formula(42)  # type: ignore[arg-type]


def test_formula_error_is_a_value_error():
    with pytest.raises(ValueError):
        parse_formula("y ~ (1 | g")
