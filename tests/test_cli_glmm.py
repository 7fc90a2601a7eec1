"""``multilevel fit --family ...``: generalized linear mixed models from the command line, run
in-process through ``multilevel.cli.main.main``.

References (tests/reference/glmm/, made by tests/reference/make_glmm_refs.R with lme4 1.1-31):

- cbpp_prop_weights.json: ``glmer(incidence/size ~ period + (1 | herd), data = cbpp,
  family = binomial, weights = size)``, the same model as the cbind form. lme4's default
  ``tolPwrss = 1e-7`` leaves its deviance 5.7e-4 (3e-6 relative) above the optimum, hence the
  1e-5 relative tolerance on it.
- cbpp_nagq5.json: the same with ``nAGQ = 5`` (``logLik_complete`` adds the saturated-model term
  that lme4's ``logLik`` leaves out for nAGQ > 1).
- cbpp_probit.json: ``family = binomial(link = "probit")``.
- rates_offset_poisson.json: ``glmer(y ~ x + offset(log(exposure)) + (1 | g), data = rates,
  family = poisson)``, data tests/reference/data/rates_sim.csv.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from multilevel.cli.main import main

REF_DIR = Path(__file__).parent / "reference"
GLMM = REF_DIR / "glmm"
CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
LAPLACE = json.loads((GLMM / "cbpp_prop_weights.json").read_text())
AGQ5 = json.loads((GLMM / "cbpp_nagq5.json").read_text())
PROBIT = json.loads((GLMM / "cbpp_probit.json").read_text())
RATES = json.loads((GLMM / "rates_offset_poisson.json").read_text())

JSON_KEYS = {"formula", "family", "link", "nagq", "nobs", "n_dropped", "n_zero_weight",
             "ngroups", "fixef", "coef_table", "vcov", "vcov_method", "varcorr", "theta",
             "dispersion", "nb_size", "loglik", "deviance", "aic", "bic", "df_resid",
             "is_singular", "converged", "dropped_fixed", "optsum"}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def fit_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    code, out, err = run(capsys, "fit", *argv, "--json")
    assert code == 0, err
    payload: dict = json.loads(out)
    return payload


def user_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run the command; assert status 2, nothing on stdout, exactly one error line."""
    code, out, err = run(capsys, *argv)
    assert code == 2, (code, out, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    return lines[0]


# -- fits -----------------------------------------------------------------------------------

def test_fit_prints_the_glmer_summary(capsys):
    code, out, err = run(capsys, "fit", CBPP, "--data", "cbpp", "--family", "binomial")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == ("Generalized linear mixed model fit by maximum likelihood "
                        "(Laplace Approximation) ['glmerMod']")
    assert lines[1] == " Family: binomial  ( logit )"
    assert lines[2] == f"Formula: {CBPP}"
    assert lines[4].split() == ["AIC", "BIC", "logLik", "deviance", "df.resid"]
    assert lines[5].split()[3] == f"{LAPLACE['deviance']:.1f}"
    assert "Number of obs: 56, groups:  herd, 15" in out
    assert "Estimate Std. Error z value Pr(>|z|)" in out
    assert "df" not in out.split("Fixed effects:")[1].splitlines()[1]  # z tests, no df column
    assert err == ""


def test_fit_json_is_the_glmm_to_dict(capsys):
    payload = fit_json(capsys, CBPP, "--data", "cbpp", "--family", "binomial")
    assert set(payload) == JSON_KEYS
    assert payload["family"] == "binomial"
    assert payload["link"] == "logit"
    assert payload["nagq"] == 1
    assert payload["nobs"] == LAPLACE["nobs"]
    assert payload["vcov_method"] == "hessian"
    assert payload["deviance"] == pytest.approx(LAPLACE["deviance"], rel=1e-5)
    for name, value in LAPLACE["fixef"].items():
        assert payload["fixef"][name] == pytest.approx(value, rel=1e-3)


def test_nagq_gives_adaptive_quadrature_with_the_complete_loglik(capsys):
    payload = fit_json(capsys, CBPP, "--data", "cbpp", "--family", "binomial", "--nagq", "5")
    assert payload["nagq"] == 5
    assert payload["loglik"] == pytest.approx(AGQ5["logLik_complete"], rel=1e-6)
    code, out, _ = run(capsys, "fit", CBPP, "--data", "cbpp", "--family", "binomial",
                       "--nagq", "5")
    assert code == 0
    assert "(Adaptive Gauss-Hermite Quadrature, nAGQ = 5)" in out.splitlines()[0]


def test_nagq_zero(capsys):
    payload = fit_json(capsys, CBPP, "--data", "cbpp", "--family", "binomial", "--nagq", "0")
    assert payload["nagq"] == 0


def test_link(capsys):
    payload = fit_json(capsys, CBPP, "--data", "cbpp", "--family", "binomial",
                       "--link", "probit")
    assert payload["link"] == "probit"
    assert payload["loglik"] == pytest.approx(PROBIT["logLik"], rel=1e-6)
    code, out, _ = run(capsys, "fit", CBPP, "--data", "cbpp", "--family", "binomial",
                       "--link", "probit")
    assert code == 0
    assert out.splitlines()[1] == " Family: binomial  ( probit )"


@pytest.mark.parametrize("name", ["Binomial", "binomial"])
def test_family_names_as_the_resolver_takes_them(capsys, name):
    payload = fit_json(capsys, CBPP, "--data", "cbpp", "--family", name)
    assert payload["family"] == "binomial"


def test_poisson_with_an_offset_from_a_csv_file(capsys):
    payload = fit_json(capsys, RATES["formula"], "--data",
                       str(REF_DIR / RATES["data_file"]), "--family", "poisson")
    assert payload["family"] == "poisson"
    assert payload["link"] == "log"
    assert payload["loglik"] == pytest.approx(RATES["logLik"], rel=1e-5)


def test_csv_codes_are_numbers_unless_made_factors(capsys):
    """A CSV file has no factor type: cbpp's period codes 1-4 are read as a number, and
    factor(period) gives lme4's model (cbpp's period is a factor in R)."""
    path = str(REF_DIR / "data" / "cbpp.csv")
    numeric = fit_json(capsys, CBPP, "--data", path, "--family", "binomial")
    assert list(numeric["fixef"]) == ["(Intercept)", "period"]
    as_factor = fit_json(capsys, CBPP.replace("period", "factor(period)"), "--data", path,
                         "--family", "binomial")
    assert as_factor["fixef"]["factor(period)2"] == pytest.approx(
        LAPLACE["fixef"]["period2"], rel=1e-3)


def test_demo_shows_the_glmm_after_the_lmm(capsys):
    code, out, _ = run(capsys, "demo", "--skip-bayes")
    assert code == 0
    lmm = out.index("Linear mixed model fit by REML")
    glmm = out.index("Generalized linear mixed model fit by maximum likelihood "
                     "(Laplace Approximation)")
    assert lmm < glmm
    assert f">>> ml.glmer({CBPP!r}, ml.datasets.load('cbpp'), family='binomial')" in out
    assert "Number of obs: 56, groups:  herd, 15" in out


# -- errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("extra", "named"), [
    (["--ml"], "--ml"),
    (["--ddf", "satterthwaite"], "--ddf"),
    (["--ddf", "none"], "--ddf"),
])
def test_lmer_only_flags_conflict_with_family(capsys, extra, named):
    line = user_error(capsys, "fit", CBPP, "--data", "cbpp", "--family", "binomial", *extra)
    assert named in line and "--family" in line


@pytest.mark.parametrize("extra", [["--link", "probit"], ["--nagq", "5"]])
def test_glmm_only_flags_need_family(capsys, extra):
    line = user_error(capsys, "fit", CBPP, "--data", "cbpp", *extra)
    assert extra[0] in line and "--family" in line


def test_unknown_family_is_one_line_with_a_suggestion(capsys):
    line = user_error(capsys, "fit", CBPP, "--data", "cbpp", "--family", "binomal")
    assert "'binomal'" in line and "Did you mean 'binomial'?" in line


def test_link_the_family_does_not_take(capsys):
    line = user_error(capsys, "fit", CBPP, "--data", "cbpp", "--family", "binomial",
                      "--link", "sqrt")
    assert "'sqrt'" in line and "logit" in line


def test_unknown_link(capsys):
    line = user_error(capsys, "fit", CBPP, "--data", "cbpp", "--family", "poisson",
                      "--link", "lgo")
    assert "'lgo'" in line


@pytest.mark.parametrize("value", ["-1", "1.5", "many"])
def test_bad_nagq_on_the_command_line(capsys, value):
    line = user_error(capsys, "fit", CBPP, "--data", "cbpp", "--family", "binomial",
                      "--nagq", value)
    assert "--nagq" in line and "--help" in line


def test_quadrature_needs_one_scalar_term(capsys):
    line = user_error(capsys, "fit", CBPP + " + (1 | period)", "--data", "cbpp",
                      "--family", "binomial", "--nagq", "5")
    assert "single scalar random-effects term" in line


def test_gaussian_identity_is_the_linear_model(capsys):
    line = user_error(capsys, "fit", "incidence ~ period + (1 | herd)", "--data", "cbpp",
                      "--family", "gaussian")
    assert "drop --family" in line


def test_response_the_family_cannot_take(capsys):
    line = user_error(capsys, "fit", "Reaction ~ Days + (1 | Subject)", "--data",
                      "sleepstudy", "--family", "poisson")
    assert "Reaction" in line and "counts" in line
