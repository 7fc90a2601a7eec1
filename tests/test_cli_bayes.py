"""The ``bayes`` and ``bayes-nlme`` subcommands (src/multilevel/cli/main.py, cli/bayes_command.py),
run in-process as tests/test_cli.py does.

One short sampler run (2 chains x 300 draws of the random-intercept sleepstudy model, seed 1)
is printed as brms's summary and, with the same arguments, as JSON: the two must carry the same
posterior (the same seed gives the same draws) and the priors given on the command line. The
posterior mean of Days is checked against lmer's estimate (10.467, lme4 1.1-31 REML; a flat-ish
prior on 180 observations puts the posterior mean within a fraction of its SD of it).
``bayes-nlme``'s parsing is checked on what it passes to ``ml.bayes_nlme``.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

import multilevel as ml
from multilevel.cli import main as cli_main
from multilevel.cli.bayes_command import parse_prior
from multilevel.cli.main import main

pytest.importorskip("numpyro")

FORMULA = "Reaction ~ Days + (1 | Subject)"
SAMPLER = ["--chains", "2", "--draws", "300", "--warmup", "300", "--seed", "1", "--quiet"]
PRIORS = ["--prior", "normal(0, 50):coef=Days", "--prior", "exponential(0.02):class=sigma"]
LMER_DAYS = 10.467  # lme4: fixef(lmer(Reaction ~ Days + (1 | Subject), sleepstudy))["Days"]


def run(capsys: Any, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def csv(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("bayes") / "sleepstudy.csv"
    ml.datasets.load("sleepstudy").to_csv(path, index=False)
    return str(path)


def test_bayes_prints_brms_summary_and_json(capsys: Any, csv: str) -> None:
    code, out, err = run(capsys, "bayes", FORMULA, "--data", csv, *SAMPLER, *PRIORS, "--loo")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["Family:", "gaussian"]
    assert "Formula: Reaction ~ Days + (1 | Subject)" in out
    assert "Draws: 2 chains, each with iter = 600; warmup = 300; thin = 1;" in out
    assert "~Subject (Number of levels: 18)" in out
    header = "Estimate Est.Error l-95% CI u-95% CI Rhat Bulk_ESS Tail_ESS"
    assert out.count(header) == 3  # group-level, population-level, family-specific
    days = next(line for line in lines if line.startswith("Days ")).split()
    assert float(days[1]) == pytest.approx(LMER_DAYS, abs=0.5)
    # --loo: R's print(loo(fit)) after the summary
    assert "Computed from 600 by 180 log-likelihood matrix" in out
    assert any(line.startswith("elpd_loo") for line in lines)

    code, out_json, err = run(capsys, "bayes", FORMULA, "--data", csv, *SAMPLER, *PRIORS,
                              "--loo", "--json")
    assert code == 0, err
    data = json.loads(out_json)
    assert data["kind"] == "bayes" and data["nobs"] == 180
    assert data["settings"]["chains"] == 2 and data["settings"]["draws"] == 300
    # the same seed, the same draws: the JSON's posterior mean is the printed one
    assert data["summary"]["b_Days"]["estimate"] == pytest.approx(float(days[1]), abs=0.006)
    priors = {(p["class"], p["coef"]): p["prior"] for p in data["priors"]}
    assert priors[("b", "Days")] == "normal(0, 50)"
    assert priors[("sigma", "")] == "exponential(0.02)"
    assert data["loo"]["n_obs"] == 180 and data["loo"]["elpd_loo"] < 0


@pytest.mark.parametrize(("argv", "message"), [
    (["--prior", "normal(0, 10):klass=b"], "not field=value"),
    (["--prior", "normul(0, 10)"], "unknown distribution 'normul'"),
    (["--prior", "normal(0, 10):coef=Days:coef=x"], "coef is given twice"),
    (["--prior", ":class=b"], "no distribution"),
    (["--chains", "0"], "less than 1"),
    (["--target-accept", "1.5"], "not between 0 and 1"),
    (["--family", "binomial", "--link", "nonsense"], "nonsense"),
])
def test_bayes_usage_errors(capsys: Any, csv: str, argv: list[str], message: str) -> None:
    code, out, err = run(capsys, "bayes", FORMULA, "--data", csv, *argv)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err


def test_prior_spec_is_read_as_brms_prior() -> None:
    p = parse_prior("student_t(3, 0, 20):class=sd:group=Subject")
    assert p == ml.prior("student_t(3, 0, 20)", class_="sd", group="Subject")
    assert parse_prior("normal(200, 50):nlpar=Asym") == ml.prior("normal(200, 50)",
                                                                  nlpar="Asym")
    assert parse_prior("normal(0,10)") == ml.prior("normal(0, 10)", class_="b")


def test_bayes_nlme_passes_params_and_priors(capsys: Any, monkeypatch: pytest.MonkeyPatch,
                                             ) -> None:
    seen: dict[str, Any] = {}

    def fake(model: str, data: Any, **kwargs: Any) -> Any:
        seen.update(model=model, nrows=len(data), **kwargs)
        return SimpleNamespace(summary=lambda: "a summary\n", to_dict=lambda: {"kind": "bayes"})

    monkeypatch.setattr(cli_main, "bayes_nlme", fake)
    code, out, err = run(capsys, "bayes-nlme", "circumference ~ SSlogis(age, Asym, xmid, scal)",
                         "--data", "Orange", "--param", "Asym=1 + (1 | Tree)",
                         "--param", "xmid = 1", "--prior", "normal(200, 50):nlpar=Asym",
                         "--chains", "1", "--target-accept", "0.95", "--quiet")
    assert code == 0, err
    assert out == "a summary\n"
    assert seen["params"] == {"Asym": "1 + (1 | Tree)", "xmid": "1"}
    assert seen["priors"] == [ml.prior("normal(200, 50)", nlpar="Asym")]
    assert seen["chains"] == 1 and seen["target_accept"] == 0.95 and not seen["progress"]
    assert seen["nrows"] == 35
    code, out, err = run(capsys, "bayes-nlme", "y ~ a * x", "--data", "Orange",
                         "--param", "a=1", "--param", "a=1 + (1 | Tree)")
    assert code == 2 and "--param gives a twice" in err
    code, out, err = run(capsys, "bayes-nlme", "y ~ a * x", "--data", "Orange", "--param", "a")
    assert code == 2 and "NAME=FORMULA" in err
