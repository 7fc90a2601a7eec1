"""The ``multilevel`` command, run in-process through ``multilevel.cli.main.main`` and once as
the installed console script.

Reference: tests/reference/lme4_shared/sleepstudy_reml.json and sleepstudy_ml.json (lme4
1.1-31, ``lmer(Reaction ~ Days + (Days | Subject), data = sleepstudy[, REML = FALSE])``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import multilevel as ml
from multilevel.cli.main import main

from reference_data import load_data

REF_DIR = Path(__file__).parent / "reference" / "lme4_shared"
REML_REF = json.loads((REF_DIR / "sleepstudy_reml.json").read_text())
ML_REF = json.loads((REF_DIR / "sleepstudy_ml.json").read_text())
FORMULA = REML_REF["formula"]  # Reaction ~ Days + (Days | Subject)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error_line(code: int, err: str) -> str:
    assert code != 0
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error:")
    assert "Traceback" not in err
    return lines[0]


def test_fit_prints_the_summary(capsys):
    code, out, err = run(capsys, "fit", FORMULA, "--data", "sleepstudy")
    assert code == 0
    assert out.startswith("Linear mixed model fit by REML")
    assert f"REML criterion at convergence: {REML_REF['reml_criterion']:.1f}" in out
    assert "Number of obs: 180, groups:  Subject, 18" in out
    assert "Fixed effects:" in out
    assert err == ""


def test_fit_json(capsys):
    code, out, _ = run(capsys, "fit", FORMULA, "--data", "sleepstudy", "--json")
    assert code == 0
    payload = json.loads(out)
    assert payload["loglik"] == pytest.approx(REML_REF["logLik"], rel=1e-6)
    assert payload["reml"] is True
    assert payload["nobs"] == REML_REF["nobs"]
    for name, value in REML_REF["fixef"].items():
        assert payload["fixef"][name] == pytest.approx(value, rel=1e-5)


def test_fit_ml(capsys):
    code, out, _ = run(capsys, "fit", FORMULA, "--data", "sleepstudy", "--ml", "--json")
    assert code == 0
    payload = json.loads(out)
    assert payload["reml"] is False
    assert payload["loglik"] == pytest.approx(ML_REF["logLik"], rel=1e-6)
    assert payload["objective"] == pytest.approx(ML_REF["deviance"], rel=1e-6)


def test_fit_ml_summary(capsys):
    code, out, _ = run(capsys, "fit", FORMULA, "--data", "sleepstudy", "--ml")
    assert code == 0
    assert out.startswith("Linear mixed model fit by maximum likelihood")
    assert "df.resid" in out


def test_fit_csv_file(capsys, tmp_path):
    path = tmp_path / "sleep.csv"
    load_data("sleepstudy").to_csv(path, index=False)
    code, out, _ = run(capsys, "fit", FORMULA, "--data", str(path), "--json")
    assert code == 0
    payload = json.loads(out)
    assert payload["loglik"] == pytest.approx(REML_REF["logLik"], rel=1e-6)
    assert payload["ngroups"] == REML_REF["ngrps"]


def test_fit_optimizer_option(capsys):
    code, out, _ = run(capsys, "fit", FORMULA, "--data", "sleepstudy", "--json",
                       "--optimizer", "lbfgsb")
    assert code == 0
    payload = json.loads(out)
    assert payload["optsum"]["backend"] == "lbfgsb"
    assert payload["objective"] == pytest.approx(REML_REF["reml_criterion"], rel=1e-6)


def test_fit_warning_goes_to_stderr(capsys):
    # Dyestuff2 gives a singular fit (tests/reference/lme4_shared/dyestuff2.json)
    code, out, err = run(capsys, "fit", "Yield ~ 1 + (1 | Batch)", "--data", "Dyestuff2")
    assert code == 0
    assert "boundary (singular) fit" in out
    assert err.startswith("warning:")
    assert "singular" in err


def test_demo(capsys):
    code, out, _ = run(capsys, "demo")
    assert code == 0
    assert "Linear mixed model fit by REML" in out
    assert "REML criterion at convergence: 1743.6" in out
    bayes = out.index(">>> ml.bayes('Reaction ~ Days + (Days | Subject)'")
    assert out.index("Linear mixed model fit by REML") < bayes
    assert "Population-Level Effects:" in out[bayes:]
    assert "total post-warmup draws = 4000" in out[bayes:]


def test_datasets_lists_sleepstudy(capsys):
    code, out, _ = run(capsys, "datasets")
    assert code == 0
    names = {line.split()[0] for line in out.splitlines()[1:] if line.strip()}
    assert {"sleepstudy", "Penicillin", "Dyestuff"} <= names


def test_datasets_describe(capsys):
    code, out, _ = run(capsys, "datasets", "sleepstudy")
    assert code == 0
    assert "sleepstudy" in out


def test_unknown_column_is_one_error_line(capsys):
    code, out, err = run(capsys, "fit", "Reaction ~ Days + (Days | Subjct)", "--data",
                         "sleepstudy")
    line = assert_one_error_line(code, err)
    assert "Subjct" in line
    assert "Subject" in line
    assert out == ""


def test_bad_formula_is_one_error_line(capsys):
    code, _, err = run(capsys, "fit", "Reaction ~ Days + (Days | Subject", "--data",
                       "sleepstudy")
    assert "unmatched" in assert_one_error_line(code, err)


def test_missing_file_is_one_error_line(capsys, tmp_path):
    missing = tmp_path / "no_such_file.csv"
    code, _, err = run(capsys, "fit", FORMULA, "--data", str(missing))
    assert "no_such_file.csv" in assert_one_error_line(code, err)


def test_unknown_dataset_name_is_one_error_line(capsys):
    code, _, err = run(capsys, "datasets", "sleepstudyy")
    assert "sleepstudyy" in assert_one_error_line(code, err)


def test_unknown_optimizer_is_one_error_line(capsys):
    code, _, err = run(capsys, "fit", FORMULA, "--data", "sleepstudy", "--optimizer", "nope")
    assert "nope" in assert_one_error_line(code, err)


def test_unparseable_csv_is_one_error_line(capsys, tmp_path):
    path = tmp_path / "broken.csv"
    path.write_text('Reaction,Days,Subject\n"1,2,3\n4,5\n')
    code, _, err = run(capsys, "fit", FORMULA, "--data", str(path))
    assert_one_error_line(code, err)


def _console_script() -> str:
    candidate = Path(sys.executable).parent / "multilevel"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("multilevel")
    assert found, "the 'multilevel' console script is not installed"
    return found


def test_console_script_demo():
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([_console_script(), "demo", "--skip-bayes"], capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "REML criterion at convergence: 1743.6" in proc.stdout


def test_console_script_user_error_exit_code():
    proc = subprocess.run([_console_script(), "fit", "y ~ (1 | g)", "--data", "nowhere.csv"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert proc.stderr.startswith("error:")
    assert "Traceback" not in proc.stderr


def test_csv_level_named_none_is_not_missing(tmp_path, capsys):
    """A factor level spelled "None" (nlme's Alfalfa has one) is data, not a missing value."""
    df = ml.datasets.load("sleepstudy")
    df["Subject"] = df["Subject"].astype(str).replace({"308": "None"})
    path = tmp_path / "sleep.csv"
    df.to_csv(path, index=False)
    rc = main(["fit", "Reaction ~ Days + (1 | Subject)", "--data", str(path), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["nobs"] == 180 and out["n_dropped"] == 0


def test_compare_nested_prints_the_lrt(capsys):
    rc = main(["compare", "Reaction ~ Days + (1 | Subject)",
               "Reaction ~ Days + (Days | Subject)", "--data", "sleepstudy"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "Likelihood-ratio tests (refitted by ML)" in out
    assert "42.139" in out  # lme4's Chisq for anova(m0, m1): 42.1392985 (reference/lme4_anova)


def test_compare_non_nested_falls_back_to_aic(capsys):
    rc = main(["compare", "Reaction ~ Days + (1 | Subject)", "Reaction ~ 1 + (Days | Subject)",
               "--data", "sleepstudy"])
    captured = capsys.readouterr()
    assert rc == 0
    assert "Information criteria" in captured.out and "aic_weight" in captured.out
    assert "nested" in captured.err


def test_fit_with_ddf_chooses_the_json_table(capsys):
    rc = main(["fit", "Reaction ~ Days + (Days | Subject)", "--data", "sleepstudy", "--ddf",
               "kenward-roger", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["ddf"] == "kenward-roger"
    assert "coef_table_ddf" not in out
    # lmerTest summary(ddf = "Kenward-Roger") via pbkrtest: 17.0000 (reference/lme4_shared/
    # sleepstudy_reml.json, "kenward_roger")
    assert out["coef_table"]["(Intercept)"]["df"] == pytest.approx(16.999999999999996,
                                                                   rel=1e-3)


def test_fit_json_defaults_to_satterthwaite(capsys):
    rc = main(["fit", "Reaction ~ Days + (Days | Subject)", "--data", "sleepstudy", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["ddf"] == "satterthwaite"
    # lmerTest 3.1-3: 16.9997 and 17.0000 (reference/lme4_shared/sleepstudy_reml.json)
    assert out["coef_table"]["(Intercept)"]["df"] == pytest.approx(16.99972628849272,
                                                                   rel=1e-3)


def test_fit_ddf_chooses_the_printed_summary(capsys):
    rc = main(["fit", "Reaction ~ Days + (Days | Subject)", "--data", "sleepstudy", "--ddf",
               "none"])
    out = capsys.readouterr().out
    assert rc == 0
    assert out.startswith("Linear mixed model fit by REML\n")
    assert "Pr(>|t|)" not in out
    rc = main(["fit", "Reaction ~ Days + (Days | Subject)", "--data", "sleepstudy"])
    out = capsys.readouterr().out
    assert "t-tests use Satterthwaite's method" in out.splitlines()[0]
    assert out.count("Fixed effects:") == 1


def test_power_command(capsys):
    rc = main(["power", "Reaction ~ Days + (1 | Subject)", "--data", "sleepstudy", "--test",
               "Days", "--effect", "0", "--nsim", "20", "--seed", "1", "--quiet", "--ddf",
               "none"])
    out = capsys.readouterr().out
    assert rc == 0
    assert out.startswith("Power for the test of Days")
    assert "of 20 simulations" in out


def test_power_command_unknown_effect_name(capsys):
    rc = main(["power", "Reaction ~ Days + (1 | Subject)", "--data", "sleepstudy", "--test",
               "Dayz", "--nsim", "5", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error:") and "Dayz" in err
