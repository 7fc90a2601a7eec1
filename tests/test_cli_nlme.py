"""The ``gls``, ``lme`` and ``nlme`` subcommands (src/multilevel/cli/main.py), their
``--weights`` / ``--correlation`` specs (cli/structure_spec.py) and the demo's growth curve, run
in-process as tests/test_cli.py does.

Each subcommand on the reference CSVs gives the Python API's fit of the same file (to rounding)
and, through it, nlme 3.1-162's numbers (tests/reference/gls/orthodont.json,
tests/reference/lme/orthodont.json, tests/reference/nlme/orange_nlme_shared.json and
classic_orange.json) within issue
8's tolerances: log-likelihood 1e-5 relative, fixed effects 1e-4, variance and correlation
parameters 1e-3. A CSV file carries no factor level order, so Sex is coded with R's default
alphabetical levels (Female first) rather than Orthodont's (Male first): the fixed effects are
compared with R's only for formulas without Sex; the log-likelihood and the structures'
parameters do not depend on the coding and are compared for every case.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

import multilevel as ml
from multilevel.cli import main as cli_main
from multilevel.cli.main import main
from multilevel.cli.structure_spec import MAX_SPEC_LENGTH, parse_correlation, parse_weights
from multilevel.errors import ArgumentError

from reference_data import REF

ORTHODONT = str(REF / "data" / "Orthodont.csv")
ORANGE = str(REF / "data" / "Orange.csv")
GLS_R = json.loads((REF / "gls" / "orthodont.json").read_text())["cases"]
LME_R = json.loads((REF / "lme" / "orthodont.json").read_text())["cases"]
ORANGE_R = json.loads((REF / "nlme" / "orange_nlme_shared.json").read_text())
ORANGE_CASES = json.loads((REF / "nlme" / "classic_orange.json").read_text())["cases"]
LOGIS = "circumference ~ SSlogis(age, Asym, xmid, scal)"
START = {"Asym": 192.0, "xmid": 728.0, "scal": 353.0}


def run(capsys: Any, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def fit_json(capsys: Any, *argv: str) -> dict[str, Any]:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    assert err == ""
    payload: dict[str, Any] = json.loads(out)
    return payload


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Wrap one of the CLI's fitting functions so that the test sees the fit it made."""
    def install(name: str) -> dict[str, Any]:
        real = getattr(cli_main, name)
        seen: dict[str, Any] = {}

        @functools.wraps(real)  # keeps the signature the nlme command inspects
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            seen["kwargs"] = kwargs
            seen["fit"] = real(*args, **kwargs)
            return seen["fit"]

        monkeypatch.setattr(cli_main, name, wrapper)
        return seen
    return install


def csv(path: str) -> pd.DataFrame:
    return pd.read_csv(path)


def check_against_r(fit: Any, payload: dict[str, Any], ref: dict[str, Any],
                    formula: str) -> None:
    assert payload["loglik"] == pytest.approx(ref["logLik"], rel=1e-5)
    assert fit.aic == pytest.approx(ref["AIC"], rel=1e-5)
    assert fit.bic == pytest.approx(ref["BIC"], rel=1e-5)
    if "Sex" not in formula:
        for name, value in ref["fixef"].items():
            assert payload["fixef"][name] == pytest.approx(value, rel=1e-4)
    for ours, theirs in ((fit.variance_parameters, ref["variance"]),
                         (fit.correlation_parameters, ref["correlation"])):
        values = list(theirs.values()) if isinstance(theirs, dict) else theirs
        assert list(ours) == pytest.approx(values, rel=1e-3, abs=1e-4)


def same_fit(payload: dict[str, Any], api: Any) -> None:
    assert payload["loglik"] == pytest.approx(api.loglik, rel=1e-9)
    assert payload["fixef"] == pytest.approx(dict(api.fixef), rel=1e-9)


# -- gls ------------------------------------------------------------------------------------

GLS_CASES = {  # R case: formula, command-line options, the same as API arguments
    "plain_reml": ("distance ~ age", [], {}),
    "plain_ml": ("distance ~ age", ["--method", "ML"], {"method": "ML"}),
    "ar1": ("distance ~ age * Sex", ["--correlation", "CorAR1(form='~ 1 | Subject')"],
            {"correlation": ml.CorAR1(form="~ 1 | Subject")}),
    "varident_ml": ("distance ~ age * Sex",
                    ["--weights", "VarIdent(form='~ 1 | Sex')", "--method", "ml"],
                    {"weights": ml.VarIdent(form="~ 1 | Sex"), "method": "ML"}),
    "compsymm_varident": ("distance ~ age * Sex",
                          ["--correlation", "CorCompSymm(form='~ 1 | Subject')",
                           "--weights", "VarIdent('~ 1 | Sex')"],
                          {"correlation": ml.CorCompSymm(form="~ 1 | Subject"),
                           "weights": ml.VarIdent(form="~ 1 | Sex")}),
    "varpower_car1": ("distance ~ age + Sex",
                      ["--weights", "VarPower(form='~ age')",
                       "--correlation", "CorCAR1(form = '~ age | Subject')"],
                      {"weights": ml.VarPower(form="~ age"),
                       "correlation": ml.CorCAR1(form="~ age | Subject")}),
}


@pytest.mark.parametrize("case", list(GLS_CASES))
def test_gls_command_is_the_api_fit_and_matches_nlme(capsys, recorded, case):
    formula, options, kwargs = GLS_CASES[case]
    seen = recorded("gls")
    payload = fit_json(capsys, "gls", formula, "--data", ORTHODONT, *options)
    api = ml.gls(formula, csv(ORTHODONT), **kwargs)
    same_fit(payload, api)
    assert seen["kwargs"] == kwargs | {"method": kwargs.get("method", "REML")}
    check_against_r(seen["fit"], payload, GLS_R[case], formula)


def test_gls_prints_a_summary(capsys):
    code, out, err = run(capsys, "gls", "distance ~ age", "--data", ORTHODONT,
                         "--correlation", "CorAR1(form='~ 1 | Subject')")
    assert code == 0
    assert err == ""
    fit = ml.gls("distance ~ age", csv(ORTHODONT), correlation=ml.CorAR1(form="~ 1 | Subject"))
    assert "(Intercept)" in out and "age" in out
    assert f"{fit.fixef['age']:.3f}" in out  # 0.652 (nlme's 0.652398)


# -- lme ------------------------------------------------------------------------------------

LME_CASES = {
    "plain": ("distance ~ age", ["--random", "~ 1 | Subject"], {"random": "~ 1 | Subject"}),
    "ar1": ("distance ~ age * Sex", ["--random", "~ 1 | Subject", "--correlation", "CorAR1()"],
            {"random": "~ 1 | Subject", "correlation": ml.CorAR1()}),
    "varident_ml": ("distance ~ age * Sex",
                    ["--random", "~ 1 | Subject", "--weights", "VarIdent(form='~ 1 | Sex')",
                     "--method", "ML"],
                    {"random": "~ 1 | Subject", "weights": ml.VarIdent(form="~ 1 | Sex"),
                     "method": "ML"}),
    "slope_car1": ("distance ~ age", ["--random", "~ age | Subject",
                                      "--correlation", "CorCAR1(form='~ age | Subject')"],
                   {"random": "~ age | Subject",
                    "correlation": ml.CorCAR1(form="~ age | Subject")}),
}


@pytest.mark.parametrize("case", list(LME_CASES))
def test_lme_command_is_the_api_fit_and_matches_nlme(capsys, recorded, case):
    formula, options, kwargs = LME_CASES[case]
    seen = recorded("lme")
    payload = fit_json(capsys, "lme", formula, "--data", ORTHODONT, *options)
    api = ml.lme(formula, csv(ORTHODONT), **kwargs)
    same_fit(payload, api)
    ref = LME_R[case]
    fit = seen["fit"]
    assert payload["loglik"] == pytest.approx(ref["logLik"], rel=1e-5)
    if case == "slope_car1":  # at its boundary (tests/test_lme.py): phi -> 0 as in nlme
        assert fit.correlation_parameters[0] < 0.01
    else:
        check_against_r(fit, payload, ref, formula)


def test_lme_takes_lme4_random_terms_in_the_formula(capsys):
    inline = fit_json(capsys, "lme", "distance ~ age + (1 | Subject)", "--data", ORTHODONT)
    nlme_style = fit_json(capsys, "lme", "distance ~ age", "--data", ORTHODONT,
                          "--random", "~ 1 | Subject")
    assert inline["loglik"] == pytest.approx(nlme_style["loglik"], rel=1e-9)
    assert inline["loglik"] == pytest.approx(LME_R["plain"]["logLik"], rel=1e-5)


# -- the specs' structures, fitted -----------------------------------------------------------

OVARY = "follicles ~ sin2piTime + cos2piTime"  # columns the R script computed (no sin() here)
CLASSIC = {  # nlme's classic fits (tests/reference/{gls,lme}/classic.json) with the spec examples
    ("gls", "dialyzer_varcomb"): (
        ["rate ~ (pressure + I(pressure^2)) * factor(QB)", "--data",
         str(REF / "data" / "Dialyzer.csv"),
         "--weights", "VarComb(VarIdent(form='~1|QB'), VarPower(form='~pressure'))"]),
    ("gls", "ovary_arma11_ml"): (
        [OVARY, "--data", str(REF / "data" / "Ovary.csv"), "--method", "ML",
         "--correlation", "CorARMA(form='~ 1 | Mare', p=1, q=1)"]),
    ("gls", "ovary_exp_nugget"): (
        [OVARY, "--data", str(REF / "data" / "Ovary.csv"),
         "--correlation", "CorExp(form='~ Time | Mare', nugget=True)"]),
    ("lme", "ovary_arma11"): (
        [OVARY, "--data", str(REF / "data" / "Ovary.csv"), "--random", "~ 1 | Mare",
         "--correlation", "CorARMA(p=1, q=1)"]),
}


@pytest.mark.parametrize(("command", "case"), list(CLASSIC))
def test_spec_structures_match_nlme(capsys, recorded, command, case):
    """VarComb, CorARMA and a spatial structure with a nugget, given as specs, fitted as nlme
    fits them (the log-likelihood within 1e-5, the structures' parameters within 1e-3)."""
    ref = json.loads((REF / command / "classic.json").read_text())["cases"][case]
    seen = recorded(command)
    payload = fit_json(capsys, command, *CLASSIC[command, case])
    assert payload["loglik"] == pytest.approx(ref["logLik"], rel=1e-5)
    fit = seen["fit"]
    for ours, theirs in ((fit.variance_parameters, ref["variance"]),
                         (fit.correlation_parameters, ref["correlation"])):
        values = list(theirs.values()) if isinstance(theirs, dict) else theirs
        assert list(ours) == pytest.approx(values, rel=1e-3, abs=1e-4)


# -- nlme -----------------------------------------------------------------------------------

def check_orange(payload: dict[str, Any], fit: Any) -> None:
    assert payload["loglik"] == pytest.approx(ORANGE_R["logLik"], rel=1e-5)
    for name, value in ORANGE_R["fixef"].items():
        assert payload["fixef"][name] == pytest.approx(value, rel=1e-4)
    sds = [row["sd"] for row in ORANGE_R["varcomp"]]
    assert fit.varcorr.sd.dropna().to_numpy() == pytest.approx(sds, rel=1e-3)
    assert fit.aic == pytest.approx(ORANGE_R["AIC"], rel=1e-5)


def test_nlme_command_is_the_api_fit_and_matches_nlme(capsys, recorded):
    seen = recorded("nlme")
    payload = fit_json(capsys, "nlme", LOGIS, "--data", ORANGE, "--fixed",
                       "Asym + xmid + scal ~ 1", "--random", "Asym ~ 1 | Tree",
                       "--start", "Asym=192,xmid=728,scal=353")
    assert seen["kwargs"] == {"random": "Asym ~ 1 | Tree", "fixed": "Asym + xmid + scal ~ 1",
                              "start": START, "method": "ML"}
    api = ml.nlme(LOGIS, csv(ORANGE), random="Asym ~ 1 | Tree",
                  fixed="Asym + xmid + scal ~ 1", start=START)
    same_fit(payload, api)
    check_orange(payload, seen["fit"])


def test_nlme_groups_and_defaults(capsys, recorded):
    """--groups is nlme's groups = ~ Tree (the bare name or the formula); without --fixed and
    --start the API's defaults (every parameter ~ 1, the self-starting values) give the same
    fit."""
    seen = recorded("nlme")
    for groups in ("Tree", "~ Tree"):
        payload = fit_json(capsys, "nlme", LOGIS, "--data", ORANGE, "--random", "Asym ~ 1",
                           "--groups", groups)
        assert seen["kwargs"] == {"random": "Asym ~ 1", "groups": "~ Tree", "method": "ML"}
        same_fit(payload, ml.nlme(LOGIS, csv(ORANGE), random="Asym ~ 1", groups="~ Tree"))
        check_orange(payload, seen["fit"])


def test_nlme_with_a_correlation_structure_matches_nlme(capsys, recorded):
    """nlme(..., correlation = corAR1()) on Orange (classic_orange.json, case asym_ar1)."""
    ref = ORANGE_CASES["asym_ar1"]
    seen = recorded("nlme")
    payload = fit_json(capsys, "nlme", LOGIS, "--data", ORANGE, "--random", "Asym ~ 1 | Tree",
                       "--start", "Asym=192,xmid=728,scal=353", "--correlation", "CorAR1()")
    same_fit(payload, ml.nlme(LOGIS, csv(ORANGE), random="Asym ~ 1 | Tree", start=START,
                              correlation=ml.CorAR1()))
    assert payload["loglik"] == pytest.approx(ref["logLik"], rel=1e-5)
    for name, value in ref["fixef"].items():
        assert payload["fixef"][name] == pytest.approx(value, rel=1e-4)
    assert list(seen["fit"].correlation_parameters) == pytest.approx(
        [ref["corStruct"]["Phi"]], rel=1e-3)


def test_nlme_of_an_expression_matches_nlme(capsys):
    """The logistic written out (classic_orange.json, case expression)."""
    ref = ORANGE_CASES["expression"]
    payload = fit_json(capsys, "nlme", "circumference ~ Asym / (1 + exp((xmid - age) / scal))",
                       "--data", ORANGE, "--fixed", "Asym + xmid + scal ~ 1",
                       "--random", "Asym ~ 1 | Tree", "--start", "Asym=192,xmid=728,scal=353")
    assert payload["loglik"] == pytest.approx(ref["logLik"], rel=1e-5)
    for name, value in ref["fixef"].items():
        assert payload["fixef"][name] == pytest.approx(value, rel=1e-4)


def test_nlme_reml_is_the_api_reml_fit(capsys):
    payload = fit_json(capsys, "nlme", LOGIS, "--data", ORANGE, "--random", "Asym ~ 1 | Tree",
                       "--method", "REML")
    same_fit(payload, ml.nlme(LOGIS, csv(ORANGE), random="Asym ~ 1 | Tree", method="REML"))


def test_nlme_prints_a_summary(capsys):
    code, out, err = run(capsys, "nlme", LOGIS, "--data", ORANGE, "--random", "Asym ~ 1 | Tree")
    assert code == 0
    assert err == ""
    assert "Asym" in out and "xmid" in out and "scal" in out
    assert "191.0" in out  # nlme's Asym: 191.0499


@pytest.fixture(scope="module")
def orange_fit() -> Any:
    return ml.nlme(LOGIS, csv(ORANGE), random="Asym ~ 1 | Tree")


def test_nlme_passes_fixed_lists_start_and_structures(capsys, monkeypatch, orange_fit):
    """What the nlme command hands to ml.nlme: repeated --fixed as a list of formulas, merged
    --start values, and the structures its specs describe (checked on a stand-in, as Orange
    has no covariate for a list of fixed formulas)."""
    seen: dict[str, Any] = {}

    def fake(formula: str, data: Any, random: str, fixed: Any = None,
             start: dict[str, float] | None = None, method: str = "ML", weights: Any = None,
             correlation: Any = None) -> Any:
        seen.update(formula=formula, rows=len(data), random=random, fixed=fixed, start=start,
                    method=method, weights=weights, correlation=correlation)
        return orange_fit

    monkeypatch.setattr(cli_main, "nlme", fake)
    code, _, err = run(capsys, "nlme", LOGIS, "--data", ORANGE, "--random", "Asym ~ 1 | Tree",
                       "--fixed", "Asym ~ 1", "--fixed", "xmid + scal ~ 1",
                       "--start", "Asym=192", "--start", "xmid=728, scal=353",
                       "--weights", "VarPower(form='~ age')",
                       "--correlation", "CorAR1(form='~ 1 | Tree')", "--method", "reml")
    assert code == 0, err
    assert seen == {"formula": LOGIS, "rows": 35, "random": "Asym ~ 1 | Tree",
                    "fixed": ["Asym ~ 1", "xmid + scal ~ 1"], "start": START,
                    "method": "REML", "weights": ml.VarPower(form="~ age"),
                    "correlation": ml.CorAR1(form="~ 1 | Tree")}


# -- the demo -------------------------------------------------------------------------------

def test_demo_ends_with_the_growth_curve(capsys):
    code, out, _ = run(capsys, "demo", "--skip-bayes")
    assert code == 0
    line = (">>> ml.nlme('circumference ~ SSlogis(age, Asym, xmid, scal)', "
            "ml.datasets.load('Orange'), random='Asym ~ 1 | Tree')")
    assert line in out
    assert out.index("ml.glmer(") < out.index(line)
    assert "191.0" in out[out.index(line):]  # nlme's Asym: 191.0499


# -- the specs, read as data ----------------------------------------------------------------

def test_specs_build_the_structures():
    assert parse_weights("VarIdent(form='~ 1 | Sex')") == ml.VarIdent(form="~ 1 | Sex")
    assert parse_weights("VarIdent('~1|Sex', {'Female': 1.2})") == ml.VarIdent(
        form="~1|Sex", value={"Female": 1.2})
    assert parse_weights("VarConstPower(form='~ age', const=2, power=-0.5)") == (
        ml.VarConstPower(form="~ age", const=2.0, power=-0.5))
    assert parse_weights("VarFixed('~ age')") == ml.VarFixed(form="~ age")
    comb = parse_weights("VarComb(VarIdent(form='~1|Sex'), VarPower(form='~age'))")
    assert isinstance(comb, ml.VarComb)
    assert comb.components == (ml.VarIdent(form="~1|Sex"), ml.VarPower(form="~age"))
    assert parse_correlation("CorAR1(form='~ Time | Subject')") == ml.CorAR1(
        form="~ Time | Subject")
    assert parse_correlation("CorARMA(p=1, q=1)") == ml.CorARMA(p=1, q=1)
    assert parse_correlation("CorARMA([0.2, -0.1], p=2)") == ml.CorARMA(value=[0.2, -0.1], p=2)
    assert parse_correlation("CorAR1(-0.3)") == ml.CorAR1(value=-0.3)
    assert parse_correlation(" CorExp(0.5, '~ x + y | g', nugget=True, metric='manhattan') ") == (
        ml.CorExp(value=0.5, form="~ x + y | g", nugget=True, metric="manhattan"))
    assert parse_correlation("CorSymm(form='~ 1 | Subject')") == ml.CorSymm(form="~ 1 | Subject")


def test_a_spec_is_never_run(tmp_path, capsys):
    marker = tmp_path / "ran"
    spec = f"VarIdent(form=__import__('pathlib').Path({str(marker)!r}).touch())"
    code, _, err = run(capsys, "gls", "distance ~ age", "--data", ORTHODONT, "--weights", spec)
    assert code == 2
    assert "only literal values are read" in err
    assert not marker.exists()
    for call in (f"__import__('pathlib').Path({str(marker)!r}).touch()",
                 f"VarComb(open({str(marker)!r}, 'w'))"):
        with pytest.raises(ArgumentError):
            parse_weights(call)
    assert not marker.exists()


BAD_WEIGHTS = [
    ("__import__('os').system('true')", "is not a structure's name"),
    ("varIdent(form='~1|Sex')", "did you mean VarIdent?"),
    ("VarBogus()", "is not a variance function (one of VarIdent"),
    ("VarIdent(form=~1|Sex)", "put a form in quotes"),
    ("CorAR1()", "CorAR1 is a correlation structure: give it to --correlation"),
    ("VarIdent(form='~ age')", "needs strata"),
    ("VarIdent(form='~1|Sex', form='~1|Sex')", "given twice"),
    ("VarIdent('~1|Sex', form='~1|Sex')", "given twice"),
    ("VarIdent(x)", "must be text in quotes"),
    ("VarIdent(*a)", "'*a' is not allowed"),
    ("VarIdent(**a)", "'**a' is not allowed"),
    ("VarIdent(form='~1|Sex', value=1e999)", "finite number"),
    ("VarIdent(form='~1|Sex', value=True)", "must be a number"),
    ("VarIdent(form='~1|Sex', value='big')", "got the text 'big'"),
    ("VarIdent(form='~1|Sex', value={1: 2})", "strata in quotes"),
    ("VarIdent(form='~1|Sex', value={'Female': 1, 'Female': 2})", "given twice"),
    ("VarIdent(form='~1|Sex', value=[1, 'a'])", "must be a number"),
    ("ml.VarIdent()", "without a module"),
    ("VarIdent", "not a structure's call"),
    ("", "not a structure's call"),
    ("VarIdent(", "not a structure's call"),
    ("VarIdent(form='~1|Sex')()", "is not a structure's name"),
    ("VarConstPower('~ age', 1)", "by position (form)"),
    ("VarFixed(value=1)", "has no argument 'value'"),
    ("VarIdent(levels=('a',))", "has no argument 'levels'"),
    ("VarComb()", "needs one or more variance functions"),
    ("VarComb(1)", "is not one"),
    ("VarComb(weights=VarPower())", "by position only"),
    ("VarComb(VarComb(VarFixed('~ age')))", "inside a VarComb"),
    ("VarComb(CorAR1())", "give it to --correlation"),
    ("VarPower(form='~ age', value=2 ** 10)", "only literal values are read"),
    ("V" * (MAX_SPEC_LENGTH + 1), f"longer than {MAX_SPEC_LENGTH} characters"),
]
BAD_CORRELATIONS = [
    ("CorARMA(p=True)", "must be a whole number"),
    ("CorARMA(p=1.5)", "must be a whole number"),
    ("CorARMA(p=100000)", "between 0 and 100"),
    ("CorARMA(p=-1)", "between 0 and 100"),
    ("CorARMA()", "p + q > 0"),
    ("CorExp(metric='cosine')", "metric 'cosine'"),
    ("CorExp(nugget=1)", "must be True or False"),
    ("CorAR1(value={'a': 1})", "no strata to name"),
    ("CorAR1('~ 1 | Subject')", "a form is given by name: form='~ 1 | Subject'"),
    ("VarIdent(form='~1|Sex')", "VarIdent is a variance function: give it to --weights"),
    ("VarComb(VarPower())", "give it to --weights"),
    ("corAR1()", "did you mean CorAR1?"),
    ("CorSymm([0.1, x])", "must be a number"),
    ("CorAR1(1j)", "must be a number"),
    ("CorAR1(lambda: 0)", "only literal values are read"),
    ("CorAR1(0.2, '~ 1 | Subject', 3)", "at most 2 argument(s) by position"),
    ("CorAR1(form='~ 1 | Subject | Sex')", "correlation form"),
]


@pytest.mark.parametrize(("option", "spec", "expected"),
                         [("--weights", *c) for c in BAD_WEIGHTS]
                         + [("--correlation", *c) for c in BAD_CORRELATIONS])
def test_a_bad_spec_is_one_error_line(capsys, option, spec, expected):
    for command in (["gls", "distance ~ age"], ["lme", "distance ~ age", "--random",
                                                "~ 1 | Subject"]):
        code, out, err = run(capsys, *command, "--data", ORTHODONT, option, spec)
        assert code == 2
        assert out == ""
        lines = err.splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith("error: ")
        assert expected in lines[0]


NLME = ["nlme", LOGIS, "--data", ORANGE]
GLS = ["gls", "distance ~ age", "--data", ORTHODONT]
BAD_COMMANDS = [
    ([*GLS, "--weights", "VarIdent(form='~1|Foo')"], "'Foo'"),  # refused by the fit
    ([*GLS, "--correlation", "CorAR1(form='~1|Foo')"], "'Foo'"),
    (["gls", "distance ~ age", "--data", ORTHODONT, "--method", "foo"], "'foo' is not ML or REML"),
    (["lme", "distance ~ age", "--data", ORTHODONT, "--random", "~ 1 | Subject",
      "--method", ""], "is not ML or REML"),
    (["gls", "distance ~ age + (1 | Subject)", "--data", ORTHODONT], "no random effects"),
    (["lme", "distance ~ age", "--data", ORTHODONT], "no random-effects term"),
    (["lme", "distance ~ age", "--data", ORTHODONT, "--random", "~ 1 | Foo"], "'Foo'"),
    (["gls", "distance ~ age", "--data", "no_such_file.csv"], "no such file"),
    (["gls", "distance ~ age"], "--data"),
    ([*NLME], "random needs a grouping factor"),
    ([*NLME, "--random", "Asym ~ 1 | Tree", "--start", "Asym"], "'Asym' is not name=value"),
    ([*NLME, "--random", "Asym ~ 1 | Tree", "--start", "=1"], "is not name=value"),
    ([*NLME, "--random", "Asym ~ 1 | Tree", "--start", "Asym=big"], "Asym: 'big' is not a number"),
    ([*NLME, "--random", "Asym ~ 1 | Tree", "--start", "Asym=inf"], "not a finite number"),
    ([*NLME, "--random", "Asym ~ 1 | Tree", "--start", "Asym=1,Asym=2"], "Asym is given twice"),
    ([*NLME, "--random", "Asym ~ 1 | Tree", "--start", "Asym=192,xmid=728,scal=353",
      "--start", "Asym=190"], "--start gives Asym twice"),
    ([*NLME, "--random", "Asym ~ 1 | Tree", "--start", "Asym=192"], "xmid"),
    ([*NLME, "--random", "Asym ~ 1", "--groups", "Forest"], "'Forest'"),
    ([*NLME, "--random", "Foo ~ 1 | Tree"], "Foo"),
    (["nlme", "circumference ~ SSbogus(age, Asym, xmid, scal)", "--data", ORANGE,
      "--random", "Asym ~ 1 | Tree"], "self-starting"),
    ([*NLME, "--random", "Asym ~ 1 | Tree", "--weights", "VarPower(x=1)"],
     "VarPower has no argument 'x'"),
    ([*NLME, "--random", "Asym ~ 1 | Tree", "--correlation", "CorAR1(phi=0.3)"],
     "CorAR1 has no argument 'phi'"),
]


@pytest.mark.parametrize(("argv", "expected"), BAD_COMMANDS)
def test_a_bad_command_is_one_error_line(capsys, argv, expected):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert expected in lines[0]


def test_json_has_no_nan(capsys):
    """The JSON is strict (no NaN): the empty correlations of varcorr are null."""
    payload = fit_json(capsys, "lme", "distance ~ age", "--data", ORTHODONT,
                       "--random", "~ 1 | Subject")
    assert np.isfinite(payload["loglik"])


THEOPH = str(REF / "data" / "Theoph.csv")
THEOPH_R = json.loads((REF / "nlme" / "classic_theoph.json").read_text())["cases"]["fol_diag"]


def test_nlme_random_covariance_structures_on_the_command_line(capsys):
    """--random takes PdDiag / PdBlocked specs (read as data) with --groups: Theoph's
    pdDiag fit of nlme."""
    payload = fit_json(capsys, "nlme", "conc ~ SSfol(Dose, Time, lKe, lKa, lCl)", "--data",
                       THEOPH, "--random", "PdDiag('lKa + lCl ~ 1')", "--groups", "Subject",
                       "--start", "lKe=-2.43,lKa=0.48,lCl=-3.21")
    assert payload["loglik"] == pytest.approx(THEOPH_R["logLik"], rel=1e-5)
    assert payload["fixef"] == pytest.approx(THEOPH_R["fixef"], rel=1e-4)
    blocked = fit_json(capsys, "nlme", LOGIS, "--data", ORANGE, "--groups", "Tree",
                       "--random", "PdBlocked(['Asym ~ 1', PdDiag('xmid ~ 1')])")
    api = ml.nlme(LOGIS, pd.read_csv(ORANGE), groups="~ Tree",
                  random=ml.PdBlocked(["Asym ~ 1", ml.PdDiag("xmid ~ 1")]))
    assert blocked["loglik"] == pytest.approx(api.loglik, rel=1e-9)


@pytest.mark.parametrize("spec,message", [
    ("PdDiag(form='Asym ~ 1')", "not a random-effects structure"),
    ("PdDiag(Asym ~ 1)", "not a structure's call"),
    ("PdBlocked('Asym ~ 1')", "takes a list of blocks"),
    ("PdFoo('Asym ~ 1')", "not a random-effects structure"),
    ("PdDiag('Asym ~ 1 | Tree')", "groups"),
    ("PdDiag(__import__('os'))", "must be text in quotes"),
])
def test_bad_random_structure_specs_are_one_line_errors(capsys, spec, message):
    code, out, err = run(capsys, "nlme", LOGIS, "--data", ORANGE, "--groups", "Tree",
                         "--random", spec)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert message in err
